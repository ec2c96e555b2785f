#!/usr/bin/env bash
# Loom's main job: build, train the GPT example (a byte-level language
# model, a small configuration of examples/gpt.loom) on a corpus every
# Debian machine has (the GPL-3 text of base-files), then generate text
# from the trained checkpoint with the KV-cache decode step.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
CORPUS=/usr/share/common-licenses/GPL-3
CONFIG=d=128,layers=3,heads=4,ctx=128
mkdir -p out
./build/bin/loomc train examples/gpt.loom --data "$CORPUS" --config "$CONFIG" \
  --batch 8 --ctx 128 --steps 400 --lr 3e-3 \
  --schedule warmup-cosine:warmup=40,total=400,min=1e-4 --clip 1.0 \
  --log out/gpt-train.csv --ckpt-out out/gpt.safetensors --seed 1
./build/bin/loomc generate examples/gpt.loom --config "$CONFIG" \
  --ckpt out/gpt.safetensors --prompt "The " --max-tokens 120 \
  --temperature 0.8 --top-k 40 --seed 1
