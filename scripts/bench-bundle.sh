#!/usr/bin/env bash
# Bundle benchmark (issue 7): verify of a bundle with FILES files totalling
# BYTES against sha256sum over the same files, and restore against cp -a.
# Both sides run in the same invocation on warm page cache; figures are
# reported as ratios. Usage: bash scripts/bench-bundle.sh [FILES] [MIB]
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${1:-10000}
MIB=${2:-1024}
cargo build -q --release --locked -p cli -p signer --bins
K=$PWD/target/release/keyward
W=$(mktemp -d /var/tmp/keyward-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/proj/out" "$W/proj/runs"
per=$(( MIB * 1048576 / FILES ))
python3 - "$W/proj/out" "$FILES" "$per" <<'PY'
import os, sys
d, n, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
block = os.urandom(per + 4096)
for i in range(n):
    sub = os.path.join(d, "%03d" % (i % 100))
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, "f%05d.bin" % i), "wb") as f:
        f.write(block[i % 4096 : i % 4096 + per])
PY
(cd "$W/proj" && find out -type f | sort > "$W/outputs.txt")
echo '{"restoration_result":{"condition":"RESTORED_IDENTICAL","verified":true}}' > "$W/PROOF.json"
python3 -c 'import os;print(os.urandom(32).hex())' > "$W/key"
"$K" bundle make "$W/proj/runs/r1" --project-root "$W/proj" --outputs-from "$W/outputs.txt" --proof "$W/PROOF.json" --key-file "$W/key" >/dev/null
t() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
cat "$W"/proj/out/*/* > /dev/null   # warm the cache for both sides
sha1=$(cd "$W/proj" && t taskset -c 0 xargs -a "$W/outputs.txt" sha256sum)
ver1=$(t taskset -c 0 "$K" bundle verify "$W/proj/runs/r1" --project-root "$W/proj")
ver2=$(t "$K" bundle verify "$W/proj/runs/r1" --project-root "$W/proj")
mkdir "$W/cp" "$W/cps" "$W/restore"
cpa=$(t cp -a "$W/proj/out" "$W/cp/")
cps=$(t sh -c "cp -a '$W/proj/out' '$W/cps/' && sync")
rst=$(t "$K" bundle restore "$W/proj/runs/r1" --project-root "$W/proj" --restore-root "$W/restore")
r() { echo "scale=2; $1 / $2" | bc -l; }
echo "files=$FILES total=${MIB}MiB"
echo "sha256sum (1 core):         ${sha1}s"
echo "keyward verify (1 core):    ${ver1}s  ratio $(r "$ver1" "$sha1")x of sha256sum"
echo "keyward verify (2 cores):   ${ver2}s  ratio $(r "$ver2" "$sha1")x of sha256sum"
echo "cp -a:                      ${cpa}s"
echo "cp -a && sync:              ${cps}s"
echo "keyward restore:            ${rst}s  ratio $(r "$rst" "$cpa")x of cp -a, $(r "$rst" "$cps")x of cp -a && sync"
