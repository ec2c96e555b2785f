#!/usr/bin/env bash
# Builds Loom (installing what is missing) and runs every test through ctest:
# the lit (FileCheck) suite and the GoogleTest suites.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ctest --preset default -j2 "$@"
