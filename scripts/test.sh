#!/usr/bin/env bash
# The whole test suite: unit, integration and doc tests of every crate, plus
# one pass of every benchmark in test mode so that bench code cannot rot.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export TSS2_LOG=all+NONE
cargo test --workspace --locked
cargo test --workspace --locked --benches
