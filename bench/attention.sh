#!/usr/bin/env bash
# Causal attention alone (B 1, H 4, Dh 64) through Loom's flash attention
# kernels next to PyTorch's scaled_dot_product_attention, forward and
# forward + backward, T in 512 ... 8192, at 1 and 2 threads, interleaved
# (peer, Loom, peer). Prints medians in ms, the ratio Loom / PyTorch (the
# peer's better run) and each process's peak RSS in MB (the whole process:
# LLVM's JIT for Loom, torch's libraries for the peer; what matters is how it
# grows with T). Loom's forward is `bench/models/attention.loom` `forward`,
# its forward + backward the gradient of `loss` = mean(o * o).
#
#   bash bench/attention.sh [REPEATS]
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-5}
scripts/setup.sh >/dev/null
python=.venv-peer/bin/python
[ -x "$python" ] || python=python3
peer() {
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONWARNINGS=ignore \
    "$python" bench/peer/attention.py "$@" 2>/dev/null | tail -1
}
field() { sed -n "s/.*[ ^]$2=\([^ ]*\).*/\1/p" <<<" $1"; }
loom() { # threads T function [flags...]
  local threads=$1 t=$2 fn=$3; shift 3
  local out
  out=$( { OMP_NUM_THREADS=$threads /usr/bin/time -f "rss_kb=%M" \
    build/bin/loom_bench bench/models/attention.loom "$fn" N=1 "$repeats" \
    --config "T=$t" "$@"; } 2>&1)
  echo "$(grep 'per call' <<<"$out" | tail -1) $(grep rss_kb <<<"$out")"
}
printf '%-8s %3s %6s %12s %12s %8s %10s %10s\n' pass thr T "loom ms" \
  "torch ms" loom/pt "loom MB" "torch MB"
for threads in 1 2; do
  for mode in forward backward; do
    for t in 512 1024 2048 4096 8192; do
      if [ $mode = forward ]; then
        args=(forward); pargs=()
      else
        args=(loss --grad); pargs=(--backward)
      fi
      p1=$(peer --t "$t" --threads "$threads" --repeats "$repeats" "${pargs[@]}")
      l=$(loom "$threads" "$t" "${args[@]}")
      p2=$(peer --t "$t" --threads "$threads" --repeats "$repeats" "${pargs[@]}")
      lms=$(sed -n 's/.*median \([0-9.]*\) ms.*/\1/p' <<<"$l")
      lmb=$(( $(field "$l" rss_kb) / 1024 ))
      awk -v mode="$mode" -v thr="$threads" -v t="$t" -v l="$lms" \
        -v t1="$(field "$p1" ms)" -v t2="$(field "$p2" ms)" -v lmb="$lmb" \
        -v pmb="$(field "$p1" peak_rss_mb)" 'BEGIN {
          if (t1 == "") { printf "%-8s %3s %6s %12.1f %12s %8s %10s %10s\n",
            mode, thr, t, l, "skip", "-", lmb, "-"; exit }
          p = t1 < t2 ? t1 : t2;
          printf "%-8s %3s %6s %12.1f %12.1f %8.2f %10s %10s\n", mode, thr, t,
            l, p, l / p, lmb, pmb }'
    done
  done
done
