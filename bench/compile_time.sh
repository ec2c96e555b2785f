#!/usr/bin/env bash
# Compile time, in one run on this machine: for each entry function of the
# four examples, the GPT-mini training step (AdamW), the same step at 1, 4
# and 12 layers, and the GPT-2-small step, the cold compile (an empty disk
# cache) and the warm one (the next process, loading from the disk cache),
# with the per-call time of the compiled code; beside the GPT-mini step at
# 1, 4 and 12 layers, JAX's jit compile of the same step (XLA on the CPU,
# from scripts/jax-venv.sh; "skip" without it). One table.
#
#   bash bench/compile_time.sh [--quick]
#
#   --quick   leave out the GPT-2-small step (a minute of training-step calls)
#
# Run it on an otherwise idle machine (../shared/BENCHMARKING.md).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
case "${1:-}" in
  "") ;;
  --quick) quick=1 ;;
  *) echo "usage: bench/compile_time.sh [--quick]" >&2; exit 2 ;;
esac

scripts/setup.sh >/dev/null
bin=build/bin
jax=.venv-jax/bin/python
cache=$(mktemp -d /tmp/loom-compile-cache-XXXXXX)
trap 'rm -rf "$cache"' EXIT
export LOOM_CACHE_DIR=$cache OMP_NUM_THREADS=2

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "machine: $cpu, $(nproc) cores; 2 threads; cache $cache (empty at start)"
if [ -x "$jax" ] && "$jax" -c 'import jax, optax' 2>/dev/null; then
  echo "peer: jax $("$jax" -c 'import jax; print(jax.__version__)') (XLA, CPU)"
else
  echo "peer: JAX skipped: no .venv-jax with jax and optax (bash scripts/jax-venv.sh installs them from PyPI)"
fi
printf '%-44s %9s %9s %11s %12s\n' work "cold s" "warm s" "call ms" "JAX cold s"

field() { # line key -> value of key=value
  sed -n "s/.*[ ^]$2=\([^ ]*\).*/\1/p" <<<" $1"
}

# row NAME JAX_SECONDS FILE FUNCTION BINDINGS [loom_bench options...]
row() {
  local name=$1 peer=$2; shift 2
  local cold warm
  cold=$($bin/loom_bench "$1" "$2" "$3" 1 "${@:4}" 2>&1 | tail -1)
  warm=$($bin/loom_bench "$1" "$2" "$3" 1 "${@:4}" 2>&1 | tail -1)
  if ! grep -q "from the disk cache" <<<"$warm"; then
    echo "error: the second compile of $name did not load from the cache:" >&2
    echo "$warm" >&2
    exit 1
  fi
  printf '%-44s %9s %9s %11s %12s\n' "$name" \
    "$(sed -n 's/.*: compile \([0-9.]*\) s.*/\1/p' <<<"$cold")" \
    "$(sed -n 's/.*: compile \([0-9.]*\) s.*/\1/p' <<<"$warm")" \
    "$(sed -n 's/.*median \([0-9.]*\) ms.*/\1/p' <<<"$warm")" "$peer"
}

jax_step() { # layers -> JAX's compile seconds of the GPT-mini step
  if [ ! -x "$jax" ]; then echo skip; return; fi
  local line
  line=$(cd bench/peer && "../../$jax" jax_gpt_step.py --threads 2 \
    --repeats 1 --warmup 0 --layers "$1" 2>/dev/null | tail -1)
  [ -n "$(field "$line" compile_step_s)" ] && field "$line" compile_step_s ||
    echo skip
}

gpt=examples/gpt.loom
for fn in logits loss; do row "gpt $fn" - $gpt $fn B=8,T=256; done
for fn in encode mlm_logits nsp_logits classify loss finetune_loss; do
  row "bert $fn" - examples/bert.loom $fn B=8,T=128
done
for fn in encode logits loss; do
  row "transformer $fn" - examples/transformer.loom $fn B=8,S=32,T=32
done
row "transformer decode" - examples/transformer.loom decode B=8,S=32,T=32
for fn in logits loss; do
  row "seq2seq_lstm $fn" - examples/seq2seq_lstm.loom $fn B=8,S=16,T=16
done
row "gpt loss gradient" - $gpt loss B=8,T=256 --grad
for layers in 1 4 12; do
  row "GPT-mini train step, $layers layers" "$(jax_step "$layers")" \
    $gpt loss B=8,T=256 --train adamw --config "layers=$layers"
done
if [ "$quick" = 0 ]; then
  row "GPT-2-small train step (B4 T64)" - $gpt loss B=4,T=64 --train adamw \
    --config vocab=50257,d=768,layers=12,heads=12,ctx=1024
fi
