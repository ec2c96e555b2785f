#!/usr/bin/env bash
# Loom's main job at this stage: build, then compile an example with its
# symbolic dims bound (shapes specialized, FLOPs counted).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
./build/bin/loomc compile examples/ir/attention.mlir --bind B=2,T=16
