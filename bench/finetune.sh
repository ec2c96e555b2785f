#!/usr/bin/env bash
# Fine-tuning a real pretrained encoder from the command line, against the
# same architecture trained from scratch: all-MiniLM-L6-v2 (imported with
# `loomc import`) classifies which license a paragraph of
# /usr/share/common-licenses comes from (6 labels, 281 training and 69
# held-out paragraphs: bench/license-data.sh; the held-out split is fixed).
#
#   bash bench/finetune.sh [STEPS]     (default 150; ~25 min on 2 cores)
#
# Runs, each printing its held-out accuracy:
#   1. the LR finder on the pretrained model (its suggestion);
#   2. pretrained, all layers, AdamW at the LR used (warmup-cosine), and at
#      the LR finder's suggestion;
#   3. pretrained with gradual unfreezing (head, then upper layers, lower
#      layers, embeddings; one stage per STEPS/4) and discriminative LRs
#      (each group below the head at 1/2.6 of the one above);
#   4. from scratch (same architecture, same tokenizer, random weights) at
#      the same LR and at 10x;
#   5. DistilBERT-style: a 3-layer student initialized from MiniLM's first 3
#      layers, fine-tuned on the labels alone, and distilled from the
#      fine-tuned MiniLM of run 2 (distill_loss: temperature 2, alpha 0.5).
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-150}
lr=1e-4
out=${FINETUNE_OUT:-/tmp/loom-finetune}
mkdir -p "$out"
bash scripts/setup.sh >/dev/null
bash scripts/fetch-minilm.sh
minilm=${LOOM_MINILM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/loom/hf/all-MiniLM-L6-v2}
loomc=build/bin/loomc
[ -s "$out/minilm.safetensors" ] ||
  $loomc import "$minilm" -o "$out/minilm.safetensors" | tee "$out/import.txt"
# The same architecture for the runs from scratch: MiniLM's configuration.
arch=$(sed -n 's/^config: //p' "$out/import.txt" | tr ' ' ',')
bash bench/license-data.sh "$out/licenses.tsv"
common=(examples/hf/bert.loom --data "$out/licenses.tsv" --batch 16 --ctx 64
  --seed 1 --log-every 50)
schedule="warmup-cosine:warmup=$((steps / 10)),total=$steps"
groups="emb=tok,pos,seg,ln;lower=encoder.0,encoder.1,encoder.2"
groups+=";upper=encoder.3,encoder.4,encoder.5;head=pooler,classifier"

run() { # name args... (the loss: --fn finetune_loss unless given)
  local name=$1; shift
  # FINETUNE_ONLY="name ...": only these runs (the others keep their logs).
  [ -z "${FINETUNE_ONLY:-}" ] || [[ " $FINETUNE_ONLY " == *" $name "* ]] ||
    return 0
  [[ " $* " == *" --fn "* ]] || set -- --fn finetune_loss "$@"
  echo "== $name"
  $loomc train "${common[@]}" "$@" 2>"$out/$name.log" | tee "$out/$name.txt" |
    grep -E "accuracy|suggested"
}
run finder --init "$out/minilm.safetensors" --lr-find "$out/finder.csv" \
  --lr-find-steps 60
run pretrained --init "$out/minilm.safetensors" --steps "$steps" --lr "$lr" \
  --schedule "$schedule" --ckpt-out "$out/pretrained.safetensors"
suggested=$(sed -n 's/^suggested lr: //p' "$out/finder.txt")
run pretrained-at-suggestion --init "$out/minilm.safetensors" \
  --steps "$steps" --lr "${suggested:-$lr}" --schedule "$schedule"
run pretrained-unfreeze --init "$out/minilm.safetensors" --steps "$steps" \
  --lr "$lr" --schedule "$schedule" --groups "$groups" --lr-decay 2.6 \
  --unfreeze-every $((steps / 4))
run scratch --tokenizer "$minilm" --config "$arch" --steps "$steps" \
  --lr "$lr" --schedule "$schedule"
run scratch-10x --tokenizer "$minilm" --config "$arch" --steps "$steps" \
  --lr 1e-3 --schedule "$schedule"
run student-3 --init "$out/minilm.safetensors" --config layers=3 \
  --steps "$steps" --lr "$lr" --schedule "$schedule"
run student-3-distilled --fn distill_loss --init "$out/minilm.safetensors" \
  --config layers=3 --teacher "$out/pretrained.safetensors" --steps "$steps" \
  --lr "$lr" --schedule "$schedule"
