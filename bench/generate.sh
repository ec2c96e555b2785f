#!/usr/bin/env bash
# KV-cache generation, GPT-mini (examples/gpt.loom defaults: d 256, 4 layers,
# 4 heads, vocab 256, ctx 256), greedy, prompt 32 bytes, 224 new tokens, at
# batch 1 and 8 and 1 and 2 threads: Loom's derived decode step
# (loom::Generator, build/bin/loom_generate_bench) next to Hugging Face's
# GPT2LMHeadModel with the same weights and its own KV cache
# (bench/peer/gpt_generate.py), interleaved peer, Loom, peer; and what
# `loomc sample` does (the whole window recomputed per token, 8 tokens
# timed). Medians; the ratio is Loom's tokens/s over the peer's better run.
# Also says whether both produced the same greedy tokens.
#
#   bash bench/generate.sh [REPEATS]
#
# The weights: a checkpoint trained here for 300 steps on the GPL-3 text
# (build/bench/gpt-generate.safetensors, made once), so the greedy text is
# not degenerate.
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-5}
scripts/setup.sh >/dev/null
python=.venv-peer/bin/python
[ -x "$python" ] || python=python3
text=/usr/share/common-licenses/GPL-3
ckpt=build/bench/gpt-generate.safetensors
if [ ! -f "$ckpt" ]; then
  mkdir -p build/bench
  echo "training the benchmark's checkpoint (300 steps) ..." >&2
  build/bin/loomc train examples/gpt.loom --data "$text" --batch 8 --ctx 128 \
    --steps 300 --lr 3e-3 --clip 1.0 \
    --schedule warmup-cosine:warmup=30,total=300,min=1e-4 \
    --ckpt-out "$ckpt" --seed 1 --log-every 100 >&2
fi
field() { sed -n "s/.*[ ^]$2=\([^ ]*\).*/\1/p" <<<" $1"; }
peer() { # threads batch
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONWARNINGS=ignore \
    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 \
    "$python" bench/peer/gpt_generate.py "$ckpt" "$text" --threads "$1" \
    --batch "$2" --repeats "$repeats" 2>/dev/null | tail -1
}
loom() { # threads batch [window]
  OMP_NUM_THREADS=$1 build/bin/loom_generate_bench "$ckpt" "$text" \
    --batch "$2" --repeats "$repeats" --window "${3:-0}"
}
best() { awk -v a="$1" -v b="$2" 'BEGIN { print (b > a ? b : a) }'; }
echo "machine: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) cores"
printf '%-8s %-6s %14s %14s %8s %16s %14s %s\n' threads batch \
  "loom tok/s" "peer tok/s" "ratio" "loomc-sample t/s" "loom/sample" "same tokens"
for threads in 1 2; do
  for batch in 1 8; do
    p1=$(peer "$threads" "$batch")
    l=$(loom "$threads" "$batch" 8)
    p2=$(peer "$threads" "$batch")
    lt=$(field "$l" decode_tps)
    wt=$(field "$l" window_tps)
    if [[ $p1 == skip:* || -z $p1 ]]; then
      printf '%-8s %-6s %14s %14s %8s %16s %14s %s\n' "$threads" "$batch" \
        "$lt" skip - "$wt" "$(awk -v a="$lt" -v b="$wt" 'BEGIN{printf "%.1f", a/b}')" \
        "${p1:-peer failed}"
      continue
    fi
    pt=$(best "$(field "$p1" decode_tps)" "$(field "$p2" decode_tps)")
    same=no
    [ "$(field "$l" ids)" = "$(field "$p1" ids)" ] && same=yes
    printf '%-8s %-6s %14s %14s %8s %16s %14s %s\n' "$threads" "$batch" "$lt" \
      "$pt" "$(awk -v a="$lt" -v b="$pt" 'BEGIN{printf "%.2f", a/b}')" "$wt" \
      "$(awk -v a="$lt" -v b="$wt" 'BEGIN{printf "%.1f", a/b}')" "$same"
  done
done
echo "peer: $(sed 's/ ids=.*//' <<<"$p1")"
echo "ratio: Loom tokens/s over the peer's (above 1: Loom is faster); prefill of 32 tokens not included"
