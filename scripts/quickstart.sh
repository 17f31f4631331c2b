#!/usr/bin/env bash
# keyward end to end on one machine, from nothing:
#
#   1. installs what is missing (swtpm, libtss2, a Rust toolchain's build),
#   2. starts a DEVELOPMENT software TPM under the data directory
#      (NOT FOR PRODUCTION: its state is a plain directory; a real
#      deployment uses the machine's TPM, tcti = "device:/dev/tpmrm0"),
#   3. starts a local DEMO x402 server (resource server, facilitator and
#      Solana JSON-RPC on a local Solana VM with the real SPL Token program;
#      NOT a real network: its USDC is play money),
#   4. initializes the vault, the signer identity, the ledger and the audit
#      log, starts keywardd and creates a `solana` signing key,
#   5. pays the demo server with `keyward x402 fetch` three times: the first
#      payment to a new payee is prompted and then approved by a person, the
#      second is auto-approved, the third (over the global cap) is refused,
#   6. prints the audit log, verifies its hash chain and explains each request.
#
# Usage: scripts/quickstart.sh [DATA_DIR]   (default: ./.keyward-dev; wiped first)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DATA=${1:-$ROOT/.keyward-dev}
case "$DATA" in /*) ;; *) DATA=$ROOT/$DATA ;; esac

say() { printf '\n== %s\n' "$*"; }

if ! command -v swtpm >/dev/null || ! ldconfig -p 2>/dev/null | grep -q libtss2-esys; then
    say "installing missing packages"
    bash scripts/install-deps.sh
fi
say "building keywardd, keyward and the demo x402 server (the first build of the Solana VM takes minutes)"
cargo build -q --locked -p signer -p cli -p x402-harness --bins
BIN=$ROOT/target/debug
KW() { "$BIN/keyward" --socket "$DATA/run/keywardd.sock" --pin "$DATA/signer.pub" "$@"; }

rm -rf "$DATA"
mkdir -p "$DATA/tpm"
say "starting a DEVELOPMENT software TPM in $DATA/tpm (NOT FOR PRODUCTION)"
PORT=$(( 20000 + RANDOM % 20000 ))
swtpm socket --tpm2 --tpmstate dir="$DATA/tpm" \
    --server type=tcp,port=$PORT,bindaddr=127.0.0.1 --ctrl type=tcp,port=$((PORT + 1)),bindaddr=127.0.0.1 \
    --flags not-need-init,startup-clear --daemon --pid file="$DATA/tpm/swtpm.pid"
DAEMON_PID=
DEMO_PID=
cleanup() {
    [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null || true
    [ -n "$DEMO_PID" ] && kill "$DEMO_PID" 2>/dev/null && wait "$DEMO_PID" 2>/dev/null || true
    [ -f "$DATA/tpm/swtpm.pid" ] && kill "$(cat "$DATA/tpm/swtpm.pid")" 2>/dev/null || true
}
trap cleanup EXIT
export TSS2_LOG=all+NONE

say "starting the DEMO x402 server (local Solana VM; NOT a real network)"
"$BIN/keyward-x402-demo" --payer-file "$DATA/payer.hex" --fund 5000000 > "$DATA/demo.json" 2>"$DATA/demo.log" &
DEMO_PID=$!
for _ in $(seq 1 300); do
    [ -s "$DATA/demo.json" ] && break
    sleep 0.1
done
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
DEMO=$(cat "$DATA/demo.json")
echo "$DEMO"
BASE=$(echo "$DEMO" | field resource_base)
RPC=$(echo "$DEMO" | field rpc_url)
FEE_PAYER=$(echo "$DEMO" | field fee_payer)
MINT=$(echo "$DEMO" | field mint)

cat > "$DATA/policy.toml" <<POLICY
# Development policy (strict profile). Amounts are atomic units (USDC: 6 decimals).
policy_id = "quickstart-1"
profile = "strict"

[global]
max_requests_per_minute = 600
allowed_chains = ["solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"]
allowed_schemes = ["v1-solana-exact", "v2-solana-exact"]
trusted_authorities = ["$BASE"]

[global.assets.usdc]
per_tx_cap = 1000000
daily_cap = 50000000

[user]
max_requests_per_minute = 60
confirm_new_destination = true
confirm_authority_change = true
approval_ttl_s = 300

[user.assets.usdc]
per_tx_limit = 500000
daily_limit = 10000000

# The Solana registry: what a payment may move, and who may land it.
[networks."solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"]
aliases = ["solana-devnet"]
max_compute_unit_limit = 20000
max_compute_unit_price = 1000
fee_payers = ["$FEE_PAYER"]

[networks."solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1".assets.usdc]
mint = "$MINT"
token_program = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
decimals = 6
POLICY

cat > "$DATA/keywardd.toml" <<CONFIG
[daemon]
socket = "$DATA/run/keywardd.sock"
pin_file = "$DATA/signer.pub"
audit_log = "$DATA/audit/audit.jsonl"
policy_file = "$DATA/policy.toml"
state_dir = "$DATA/state"

[vault]
dir = "$DATA/vault"
# The development TPM started above. NOT FOR PRODUCTION.
tcti = "swtpm:host=127.0.0.1,port=$PORT"

[signing]
unseal_window_ms = 2000

[[peer]]
uid = $(id -u)
role = "admin"

# Only a grant lets a peer spend with a key (docs/x402.md, "Key grants").
[[grant]]
key = "agent-hot"
uid = $(id -u)
actions = ["x402_payment"]
CONFIG

say "keyward init"
"$BIN/keyward" init --config "$DATA/keywardd.toml"

say "starting keywardd"
"$BIN/keywardd" run --config "$DATA/keywardd.toml" 2>"$DATA/keywardd.log" &
DAEMON_PID=$!
for _ in $(seq 1 100); do
    [ -S "$DATA/run/keywardd.sock" ] && break
    sleep 0.1
done
KW ping

say "keyward key create agent-hot --kind solana"
KW key create agent-hot --kind solana
KW --json key list | sed -n 's/.*"name":"agent-hot","kind":"solana","public_key":"\([0-9a-f]*\)".*/\1/p' > "$DATA/payer.hex"
sleep 1   # the demo funds the new key's token account with 5 demo USDC

PAY=("$BIN/keyward" --socket "$DATA/run/keywardd.sock" --pin "$DATA/signer.pub" x402 fetch
     --key agent-hot --rpc "$RPC" --json)
request_of() { sed -n 's/.*"request_id":"\([0-9a-f]*\)".*/\1/p'; }

say "payment 1: GET $BASE/weather (0.01 USDC to a new payee): prompted; waiting for a person"
"${PAY[@]}" "$BASE/weather" --wait 120 > "$DATA/fetch-1.json" &
FETCH=$!
ID1=
for _ in $(seq 1 100); do
    ID1=$(KW --json approvals list | request_of | head -n1)
    [ -n "$ID1" ] && break
    sleep 0.2
done
KW approvals show "$ID1"
HASH1=$(KW --json approvals show "$ID1" | field intent_hash)
say "a person approves payment 1, bound to intent hash $HASH1"
KW approvals approve "$ID1" --intent-hash "$HASH1"
wait "$FETCH" && echo "exit status 0: delivered"
cat "$DATA/fetch-1.json"; echo

say "payment 2: the same payee again, inside the limits: auto-approved"
set +e
"${PAY[@]}" "$BASE/weather" > "$DATA/fetch-2.json"; echo "exit status $?: delivered"
cat "$DATA/fetch-2.json"; echo
ID2=$(request_of < "$DATA/fetch-2.json")

say "payment 3: GET $BASE/premium (2 USDC, over the 1 USDC global cap): refused, nothing signed"
"${PAY[@]}" "$BASE/premium" > "$DATA/fetch-3.json"; echo "exit status $? (2 = refused)"
set -e
cat "$DATA/fetch-3.json"; echo
ID3=$(request_of < "$DATA/fetch-3.json")

say "the audit log ($DATA/audit/audit.jsonl)"
cat "$DATA/audit/audit.jsonl"
say "keyward audit verify"
"$BIN/keyward" audit verify --log "$DATA/audit/audit.jsonl"
for id in "$ID1" "$ID2" "$ID3"; do
    say "keyward audit explain $id"
    "$BIN/keyward" audit explain "$id" --log "$DATA/audit/audit.jsonl"
done
say "keyward status"
KW status
