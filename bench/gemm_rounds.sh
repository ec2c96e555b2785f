#!/usr/bin/env bash
# Alternating rounds of the PyTorch peer and Loom on bench/run.sh's two GEMM
# shapes at 1 and 2 threads: per cell, each round's median of 15 calls for
# both sides, then the median of the round medians, their ratio (Loom /
# PyTorch) and in how many rounds Loom was at least as fast. On a shared
# machine one run of each side says little; rounds see the same minutes.
#
#   bash bench/gemm_rounds.sh [ROUNDS]   (default 7; needs a build and
#                                         scripts/peer-venv.sh's .venv-peer)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
python=.venv-peer/bin/python
[ -x "$python" ] || python=python3
bin=build/bin
[ -x "$bin/loom_bench" ] || { echo "build/bin/loom_bench missing: build first"; exit 1; }

peer() { # args of bench/peer/gemm.py -> median ms
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 PYTHONWARNINGS=ignore \
    "$python" bench/peer/gemm.py "$@" --repeats 15 2>/dev/null | tail -1 |
    sed -n 's/.* ms=\([0-9.]*\).*/\1/p'
}
median() { tr ' ' '\n' | sed '/^$/d' | sort -n |
  awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

echo "fma_peak: $($bin/fma_peak 1 | sed 's/.*gflops=//') / $($bin/fma_peak 2 | sed 's/.*gflops=//') GFLOP/s"
for t in 1 2; do
  for shape in "1024 1024 1024" "2048 768 3072"; do
    read -r m k n <<<"$shape"
    P="" L="" wins=0
    for _ in $(seq "$rounds"); do
      p=$(peer --m "$m" --k "$k" --n "$n" --threads "$t")
      l=$(OMP_NUM_THREADS=$t $bin/loom_bench bench/models/gemm.loom mm \
        "M=$m,K=$k,N=$n" 15 2>&1 | tail -1 |
        sed -n 's/.*median \([0-9.]*\) ms.*/\1/p')
      if [ -z "$p" ]; then
        echo "GEMM ${m}x${k}x${n} threads $t: peer skipped (no torch)"
        continue 2
      fi
      P+="$p " L+="$l "
      awk -v a="$l" -v b="$p" 'BEGIN { exit !(a <= b) }' && wins=$((wins + 1))
    done
    pm=$(median <<<"$P") lm=$(median <<<"$L")
    echo "GEMM ${m}x${k}x${n} threads $t: PyTorch $pm ms, Loom $lm ms," \
      "ratio $(awk -v a="$lm" -v b="$pm" 'BEGIN {printf "%.3f", a / b}')," \
      "Loom at least as fast in $wins of $rounds rounds" \
      "(PyTorch [$P], Loom [$L])"
  done
done
