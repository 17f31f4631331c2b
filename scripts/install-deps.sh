#!/usr/bin/env bash
# Installs what keyward needs on a fresh Debian-family machine, and nothing
# that is already there. Idempotent; safe to run before every command.
set -euo pipefail

APT_PACKAGES=(swtpm swtpm-tools libtss2-dev tpm2-tools pkg-config)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for tool in cargo rustc cargo-fmt cargo-clippy; do
    command -v "$tool" >/dev/null || { echo "install-deps: $tool is missing (install a Rust toolchain with rustfmt and clippy)" >&2; exit 1; }
done
echo "install-deps: ready ($(rustc --version))"
