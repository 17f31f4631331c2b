#!/usr/bin/env bash
# Bounded fuzzing of the IPC frame parser and handshake messages, the x402
# challenge/receipt parsers and the Solana message decoders (libFuzzer
# through cargo-fuzz). Each target runs for FUZZ_SECONDS (default 30) and a
# crash fails the script; the crashing input is left in fuzz/artifacts/.
#
# cargo-fuzz needs unstable rustc flags. A nightly toolchain is used when
# installed; otherwise the stable toolchain with RUSTC_BOOTSTRAP=1 (the same
# compiler, with its unstable flags unlocked for this build only).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-30}"
if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --version 0.13.2 --locked
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    run() { cargo +nightly fuzz "$@"; }
else
    run() { RUSTC_BOOTSTRAP=1 cargo fuzz "$@"; }
fi
cd fuzz
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in frame handshake x402_challenge solana_message; do
    echo "== fuzz $target for ${seconds}s"
    if ! run run -O "$target" -- -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
        tail -60 "$log"
        echo "fuzz: $target found a failing input (see fuzz/artifacts/$target/)" >&2
        exit 1
    fi
    grep -E '^(Done|stat::number_of_executed_units)' "$log"
done
