#!/usr/bin/env bash
# Loom's main job at this stage: build, then compile the GPT example and run
# it: `loomc run` executes the training objective (`loss`) on random tokens,
# and the embedding host program calls `logits` through the C++ API.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
./build/bin/loomc check examples/gpt.loom
./build/bin/loomc run examples/gpt.loom --fn loss --bind B=4,T=64 --seed 1
./build/bin/gpt_host
