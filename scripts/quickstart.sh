#!/usr/bin/env bash
# keyward end to end on one machine, from nothing:
#
#   1. installs what is missing (swtpm, libtss2, a Rust toolchain's build),
#   2. starts a DEVELOPMENT software TPM under the data directory
#      (NOT FOR PRODUCTION: its state is a plain directory; a real
#      deployment uses the machine's TPM, tcti = "device:/dev/tpmrm0"),
#   3. initializes the vault, the signer identity, the ledger and the audit
#      log, starts keywardd and creates a signing key,
#   4. runs three requests: one prompted and then approved (the first
#      payment to a new payee), one auto-approved, one denied (an untrusted
#      payment authority),
#   5. prints the audit log, verifies its hash chain and explains each request.
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
say "building keywardd and keyward"
cargo build -q --locked -p signer -p cli --bins
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
cleanup() {
    [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null || true
    [ -f "$DATA/tpm/swtpm.pid" ] && kill "$(cat "$DATA/tpm/swtpm.pid")" 2>/dev/null || true
}
trap cleanup EXIT
export TSS2_LOG=all+NONE

cat > "$DATA/policy.toml" <<POLICY
# Development policy (strict profile). Amounts are atomic units (USDC: 6 decimals).
policy_id = "quickstart-1"
profile = "strict"

[global]
max_requests_per_minute = 600
allowed_chains = ["solana:mainnet"]
allowed_schemes = ["v1-solana-exact", "v2-solana-exact"]
trusted_authorities = ["https://facilitator.example"]

[global.assets.usdc]
per_tx_cap = 5000000
daily_cap = 50000000

[user]
max_requests_per_minute = 60
confirm_new_destination = true
confirm_authority_change = true
approval_ttl_s = 300

[user.assets.usdc]
per_tx_limit = 1000000
daily_limit = 10000000
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

say "keyward key create agent-hot"
KW key create agent-hot

intent() { # idempotency-key amount authority
    cat <<INTENT
{"actor": "agent", "action": "x402_payment", "key": "agent-hot", "chain_id": "solana:mainnet",
 "asset_id": "usdc", "amount_atomic": "$2", "max_amount_atomic": "$2", "payee": "WeatherApiMerchant1",
 "rationale": "pay for one weather API call", "idempotency_key": "$1",
 "request_expiry": $(( $(date +%s) + 600 )), "correlation_id": "quickstart",
 "message_hex": "$(printf '%s' "$1" | od -An -tx1 | tr -d ' \n')",
 "x402": {"scheme_id": "v2-solana-exact", "payment_authority": "$3"}}
INTENT
}
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

say "request 1: the first payment to a new payee is prompted"
intent qs-1 250000 https://facilitator.example > "$DATA/intent-1.json"
R1=$(KW --json submit "$DATA/intent-1.json")
echo "$R1"
ID1=$(echo "$R1" | field request_id)
KW approvals show "$ID1"
HASH1=$(KW --json approvals show "$ID1" | field intent_hash)
say "a person approves request 1, bound to intent hash $HASH1"
KW approvals approve "$ID1" --intent-hash "$HASH1"

say "request 2: the same payee again, inside the limits: auto-approved"
intent qs-2 250000 https://facilitator.example > "$DATA/intent-2.json"
KW sign "$DATA/intent-2.json"
ID2=$(KW --json submit "$DATA/intent-2.json" | field request_id)

say "request 3: an untrusted payment authority: denied"
intent qs-3 250000 https://rogue-facilitator.example > "$DATA/intent-3.json"
R3=$(KW --json submit "$DATA/intent-3.json")
echo "$R3"
ID3=$(echo "$R3" | field request_id)

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
