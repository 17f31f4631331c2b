#!/usr/bin/env bash
# Build, the strict-profile self-check and the full red-team ledger (the end-to-end
# main job is scripts/quickstart.sh). Evidence of the
# red-team ledger, whose evidence lands in ./redteam-out. The operator
# commands are ready too: target/release/keyward kes --help.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release --locked -p signer -p redteam -p cli -p kes-tool
echo "== keywardd self-check (strict profile)"
target/release/keywardd self-check
echo "== red-team ledger"
target/release/keyward-redteam --out redteam-out
