#!/usr/bin/env bash
# Loom next to PyTorch on this machine, in one run: builds, measures the f32
# FMA peak (build/bin/fma_peak), then for each workload and at 1 and 2
# threads runs the peer, Loom, the peer and Loom again (interleaved, so both
# see the same machine) and prints one table: medians (min-max) in ms, the
# ratio Loom / PyTorch (below 1: Loom is faster; each side's figure is the
# better of its two runs) and the fraction of the FMA peak each reaches
# (from Loom's FLOP count of the same work).
#
#   bash bench/run.sh [--repeats N] [--quick]
#
#   --repeats N  timed calls per measurement (default 7)
#   --quick      skip the GPT-2-small training step (its compile takes minutes)
#
# The peer is PyTorch from scripts/peer-venv.sh (.venv-peer); without it the
# peer columns say "skip". Run on an otherwise idle machine
# (../shared/BENCHMARKING.md): the figures of a busy machine are noise.
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=7
quick=0
while (($#)); do
  case "$1" in
    --repeats) repeats=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    *) echo "usage: bench/run.sh [--repeats N] [--quick]" >&2; exit 2 ;;
  esac
done

scripts/setup.sh >/dev/null
python=.venv-peer/bin/python
[ -x "$python" ] || python=python3
bin=build/bin

peer() { # script args...
  # OPENBLAS_CORETYPE=Haswell halves OpenBLAS GEMM speed (BENCHMARKING.md);
  # unset for the peer only. torch's allocator gets huge pages too.
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 PYTHONWARNINGS=ignore \
    "$python" "$@" 2>/dev/null | tail -1
}
field() { # line key -> value of key=value
  sed -n "s/.*[ ^]$2=\([^ ]*\).*/\1/p" <<<" $1"
}

peak1=$(field "$($bin/fma_peak 1)" gflops)
peak2=$(field "$($bin/fma_peak 2)" gflops)
isa=$(field "$($bin/fma_peak 1)" isa)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "machine: $cpu, $(nproc) cores, vector ISA $isa, Loom's GEMM kernels $($bin/loom_bench --kernels)"
echo "FMA peak: $peak1 GFLOP/s (1 thread), $peak2 GFLOP/s (2 threads)"
echo "torch: $(peer bench/peer/gemm.py --m 8 --k 8 --n 8 --repeats 1 | cut -d' ' -f1)"
echo
printf '%-34s %3s %26s %26s %7s %6s %6s\n' work thr "loom ms (min-max)" \
  "torch ms (min-max)" loom/pt "loom%" "pt%"

# row NAME THREADS LOOM_LINE PEER_LINE1 PEER_LINE2 PEER_KEY
# PEER_KEY: the peer's median field (its min/max fields are KEY_min/max,
# or min_ms/max_ms when KEY is ms).
row() {
  local name=$1 threads=$2 loom=$3 p1=$4 p2=$5 key=$6
  local peak=$peak1
  [ "$threads" = 2 ] && peak=$peak2
  local lmed lmin lmax gf
  lmed=$(sed -n 's/.*median \([0-9.]*\) ms.*/\1/p' <<<"$loom")
  lmin=$(sed -n 's/.*(min \([0-9.]*\),.*/\1/p' <<<"$loom")
  lmax=$(sed -n 's/.*max \([0-9.]*\),.*/\1/p' <<<"$loom")
  gf=$(sed -n 's/.*; \([0-9.]*\) GFLOP\/s.*/\1/p' <<<"$loom")
  local minkey=${key%_ms}_min_ms maxkey=${key%_ms}_max_ms
  [ "$key" = ms ] && minkey=min_ms maxkey=max_ms
  local t1 t2 n1 n2 x1 x2
  t1=$(field "$p1" "$key"); t2=$(field "$p2" "$key")
  n1=$(field "$p1" "$minkey"); n2=$(field "$p2" "$minkey")
  x1=$(field "$p1" "$maxkey"); x2=$(field "$p2" "$maxkey")
  if [ -z "$lmed" ]; then
    printf '%-34s %3s   loom failed: %s\n' "$name" "$threads" "$loom"
    return
  fi
  awk -v name="$name" -v thr="$threads" -v lmed="$lmed" -v lmin="$lmin" \
    -v lmax="$lmax" -v gf="$gf" -v peak="$peak" -v t1="$t1" -v t2="$t2" \
    -v n1="$n1" -v n2="$n2" -v x1="$x1" -v x2="$x2" 'BEGIN {
      flop = gf * lmed / 1e3;   # GFLOP of one call
      loom = sprintf("%.1f (%.1f-%.1f)", lmed, lmin, lmax);
      if (t1 == "" && t2 == "") {
        printf "%-34s %3s %26s %26s %7s %5.0f%% %6s\n", name, thr, loom,
          "skip", "-", 100 * gf / peak, "-";
        exit;
      }
      if (t1 == "") t1 = t2; if (t2 == "") t2 = t1;
      if (n1 == "") n1 = n2; if (n2 == "") n2 = n1;
      if (x1 == "") x1 = x2; if (x2 == "") x2 = x1;
      t = t1 < t2 ? t1 : t2; n = n1 < n2 ? n1 : n2; x = x1 > x2 ? x1 : x2;
      pt = sprintf("%.1f (%.1f-%.1f)", t, n, x);
      printf "%-34s %3s %26s %26s %7.2f %5.0f%% %5.0f%%\n", name, thr, loom,
        pt, lmed / t, 100 * gf / peak, 100 * flop / (t / 1e3) / peak;
    }'
}

better() { # two loom_bench lines -> the one with the lower median
  local m1 m2
  m1=$(sed -n 's/.*median \([0-9.]*\) ms.*/\1/p' <<<"$1")
  m2=$(sed -n 's/.*median \([0-9.]*\) ms.*/\1/p' <<<"$2")
  if [ -z "$m1" ] || { [ -n "$m2" ] && awk -v a="$m1" -v b="$m2" \
    'BEGIN { exit !(b < a) }'; }; then
    echo "$2"
  else
    echo "$1"
  fi
}

loom() { # threads args...
  local threads=$1; shift
  OMP_NUM_THREADS=$threads $bin/loom_bench "$@" "$repeats" 2>&1 | tail -1
}

gpt_mini=(--batch 8 --ctx 256 --vocab 256 --d 256 --layers 4 --heads 4)
gpt2=(--batch 4 --ctx 1024 --seq 64 --vocab 50257 --d 768 --layers 12
  --heads 12)
gpt2_config=vocab=50257,d=768,layers=12,heads=12,ctx=1024

for threads in 1 2; do
  for shape in "1024 1024 1024" "2048 768 3072"; do
    read -r m k n <<<"$shape"
    gemm=(bench/peer/gemm.py --m "$m" --k "$k" --n "$n" --threads "$threads"
      --repeats "$repeats")
    p1=$(peer "${gemm[@]}")
    mm=(bench/models/gemm.loom mm "M=$m,K=$k,N=$n")
    l=$(loom "$threads" "${mm[@]}")
    p2=$(peer "${gemm[@]}")
    l=$(better "$l" "$(loom "$threads" "${mm[@]}")")
    row "GEMM ${m}x${k}x${n}" "$threads" "$l" "$p1" "$p2" ms
  done

  gpt=(bench/peer/gpt_train_step.py "${gpt_mini[@]}" --threads "$threads"
    --repeats "$repeats")
  p1=$(peer "${gpt[@]}" --only fwd)
  l=$(loom "$threads" examples/gpt.loom loss B=8,T=256)
  p2=$(peer "${gpt[@]}" --only fwd)
  l=$(better "$l" "$(loom "$threads" examples/gpt.loom loss B=8,T=256)")
  row "GPT-mini forward (loss)" "$threads" "$l" "$p1" "$p2" fwd_ms

  p1=$(peer "${gpt[@]}" --only step)
  step=(examples/gpt.loom loss B=8,T=256 --train adamw)
  l=$(loom "$threads" "${step[@]}")
  p2=$(peer "${gpt[@]}" --only step)
  l=$(better "$l" "$(loom "$threads" "${step[@]}")")
  row "GPT-mini train step (AdamW)" "$threads" "$l" "$p1" "$p2" step_ms

  bert=(bench/peer/bert_forward.py --threads "$threads" --repeats "$repeats")
  p1=$(peer "${bert[@]}")
  enc=(examples/bert.loom encode B=8,T=128 --config drop=0)
  l=$(loom "$threads" "${enc[@]}")
  p2=$(peer "${bert[@]}")
  l=$(better "$l" "$(loom "$threads" "${enc[@]}")")
  row "BERT-mini forward (encode)" "$threads" "$l" "$p1" "$p2" ms
done

if [ "$quick" = 0 ]; then
  threads=2
  gpt=(bench/peer/gpt_train_step.py "${gpt2[@]}" --threads "$threads"
    --repeats "$repeats" --only step)
  step=(examples/gpt.loom loss B=4,T=64 --train adamw --config "$gpt2_config")
  p1=$(peer "${gpt[@]}")
  l=$(loom "$threads" "${step[@]}")
  p2=$(peer "${gpt[@]}")
  l=$(better "$l" "$(loom "$threads" "${step[@]}")")
  row "GPT-2-small train step (AdamW)" "$threads" "$l" "$p1" "$p2" step_ms
fi
