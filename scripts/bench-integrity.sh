#!/usr/bin/env bash
# The cost of signed, anchored journals (issue 14) on the end-to-end signing
# benchmark: the same benchmark at BASELINE (default: the commit before the
# change) and at the working tree, one after the other in one run, on this
# machine. Prints both tables and the ratios. Not part of CI (two release
# builds). Usage: bash scripts/bench-integrity.sh [BASELINE_REV]
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev="${1:-8325fcc}"
base_dir="${BASELINE_DIR:-/tmp/keyward-bench-baseline}"
base_target="${BASELINE_TARGET:-/tmp/keyward-bench-baseline-target}"
if [ ! -d "$base_dir" ]; then
  git worktree add -f "$base_dir" "$base_rev" >/dev/null
fi
echo "== baseline $base_rev"
(cd "$base_dir" && CARGO_TARGET_DIR="$base_target" cargo bench -q -p signer --bench signing 2>/dev/null) | tee /tmp/bench-base.txt
echo "== current $(git rev-parse --short HEAD)$(git diff --quiet || echo +changes)"
cargo bench -q -p signer --bench signing 2>/dev/null | tee /tmp/bench-cur.txt
echo "== ratios (current / baseline)"
python3 - <<'PY'
import re
def rows(p):
    out = {}
    for l in open(p):
        m = re.match(r"\s*(\d+)\s+(\d+)\s+[\d.]+%\s+(\d+)\s+(\d+)", l)
        if m:
            out[int(m.group(1))] = tuple(float(x) for x in m.group(2, 3, 4))
    return out
b, c = rows("/tmp/bench-base.txt"), rows("/tmp/bench-cur.txt")
print("clients   throughput   p50 latency   p99 latency")
for k in sorted(b):
    if k in c:
        print(f"{k:>7}   {c[k][0]/b[k][0]:>9.2f}x   {c[k][1]/b[k][1]:>10.2f}x   {c[k][2]/b[k][2]:>10.2f}x")
PY
