#!/usr/bin/env bash
# Instruction counts per operation under callgrind: keyward's KES and Ed25519
# against kes-summed-ed25519 and ed25519-dalek, built and counted in the same
# run. Unlike wall-clock time on a shared 2-core VM, the counts repeat exactly.
# Per operation = (count for 11 iterations - count for 1) / 10, which cancels
# process start-up and setup.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "bench-instructions: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
cargo build -q --release --locked -p crypto --example kes_ops
BIN=target/release/examples/kes_ops

ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" "$1" "$2" 2>&1 | awk '/Collected :/ { print $4 }'; }
per_op() { local one eleven; one=$(ir "$1" 1); eleven=$(ir "$1" 11); echo $(( (eleven - one) / 10 )); }

declare -A n
for fam in sum6 compact_sum6; do
    for op in keygen/keyward keygen/kes-summed sign/keyward sign/kes-summed verify/keyward verify/kes-summed \
              keygen+update/keyward update-setup/kes-summed update-setup+update/kes-summed \
              evolve64/keyward evolve64/kes-summed; do
        n[$fam/$op]=$(per_op "$fam/$op")
    done
    n[$fam/update/keyward]=$(( ${n[$fam/keygen+update/keyward]} - ${n[$fam/keygen/keyward]} ))
    n[$fam/update/kes-summed]=$(( ${n[$fam/update-setup+update/kes-summed]} - ${n[$fam/update-setup/kes-summed]} ))
done
for op in sign/keyward sign/dalek verify/keyward verify/dalek-from-bytes; do
    n[ed25519/$op]=$(per_op "ed25519/$op")
done
scrub=$(per_op scrub_stack)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
printf '%-24s %14s %14s %8s\n' operation keyward baseline ratio
for fam in sum6 compact_sum6; do
    for op in keygen sign verify update evolve64; do
        a=${n[$fam/$op/keyward]}; b=${n[$fam/$op/kes-summed]}
        printf '%-24s %14d %14d %8s  (baseline: kes-summed-ed25519)\n' "$fam $op" "$a" "$b" "$(ratio "$a" "$b")"
    done
done
printf '%-24s %14d %14d %8s  (baseline: ed25519-dalek sign)\n' "ed25519 sign" "${n[ed25519/sign/keyward]}" "${n[ed25519/sign/dalek]}" "$(ratio "${n[ed25519/sign/keyward]}" "${n[ed25519/sign/dalek]}")"
printf '%-24s %14d %14d %8s  (baseline: ed25519-dalek verify from key bytes)\n' "ed25519 verify" "${n[ed25519/verify/keyward]}" "${n[ed25519/verify/dalek-from-bytes]}" "$(ratio "${n[ed25519/verify/keyward]}" "${n[ed25519/verify/dalek-from-bytes]}")"
echo
echo "One secmem::scrub_stack() (32 KiB) counts $scrub instructions: glibc's memset uses"
echo "'rep stosb' here, which callgrind counts per byte although the CPU retires it in"
echo "about a thousand cycles. keyward's keygen, sign and update each end with one scrub;"
echo "without it, sign is $(( ${n[sum6/sign/keyward]} - scrub )) (ratio $(ratio $(( ${n[sum6/sign/keyward]} - scrub )) ${n[sum6/sign/kes-summed]})),"
echo "update $(( ${n[sum6/update/keyward]} - scrub )) (ratio $(ratio $(( ${n[sum6/update/keyward]} - scrub )) ${n[sum6/update/kes-summed]})),"
echo "Ed25519 sign $(( ${n[ed25519/sign/keyward]} - scrub )) (ratio $(ratio $(( ${n[ed25519/sign/keyward]} - scrub )) ${n[ed25519/sign/dalek]}))."
