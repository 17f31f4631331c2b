#!/usr/bin/env bash
# The whole test suite: unit, integration and doc tests of every crate, plus
# one pass of every benchmark in test mode so that bench code cannot rot.
# Ends with one line totalling every cargo test result.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export TSS2_LOG=all+NONE
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked --benches 2>&1 | tee "$log"
cargo test --workspace --locked 2>&1 | tee -a "$log"
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
