#!/usr/bin/env bash
# GPT-mini training step (vocab 256, ctx 256, d 256, 4 layers, 4 heads,
# batch 8, AdamW): Loom's compiled step next to PyTorch's, in the same run,
# interleaved (peer, Loom, peer) at 1 and 2 threads. Medians in ms and the
# ratio Loom / PyTorch. Needs a build (scripts/setup.sh) and, for the peer,
# scripts/peer-venv.sh; without torch the peer lines say "skip:".
#
#   bash bench/train_step_compare.sh [REPEATS]
#
# Run it on an otherwise idle machine (see ../shared/BENCHMARKING.md).
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-5}
python=.venv-peer/bin/python
[ -x "$python" ] || python=python3
peer() { # threads
  # OPENBLAS_CORETYPE=Haswell halves OpenBLAS GEMM speed (BENCHMARKING.md);
  # unset for the peer only. torch's allocator gets huge pages too.
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 \
    "$python" bench/peer/gpt_train_step.py --threads "$1" --repeats "$repeats"
}
for threads in 1 2; do
  p1=$(peer "$threads" | tail -1)
  loom=$(OMP_NUM_THREADS=$threads build/bin/loom_bench examples/gpt.loom loss \
    B=8,T=256 "$repeats" --train adamw | tail -1)
  p2=$(peer "$threads" | tail -1)
  echo "threads=$threads"
  echo "  peer:  $p1"
  echo "  loom:  $loom"
  echo "  peer:  $p2"
  l=$(sed -n 's/.*median \([0-9.]*\) ms.*/\1/p' <<<"$loom")
  t=$(printf '%s\n%s\n' "$p1" "$p2" | sed -n 's/.*step_ms=\([0-9.]*\).*/\1/p' |
    sort -n | head -1)
  if [ -n "$l" ] && [ -n "$t" ]; then
    awk -v l="$l" -v t="$t" 'BEGIN { printf "  step: loom %.1f ms, torch %.1f ms (best of two), loom/torch = %.2f\n", l, t, l / t }'
  fi
done
