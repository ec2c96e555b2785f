#!/usr/bin/env bash
# Loom's NVPTX target on a GPU, beside PyTorch (cuBLAS, SDPA) in the same run.
#
#   bash bench/gpu.sh --prepare   # here (the CPU machine): build, check the
#                                 # PTX (ptxas) and the launch plans (run on
#                                 # the CPU), write .gpu-bundle/
#   bash bench/gpu.sh --run       # on the GPU machine, over .gpu-bundle/
#   bash bench/gpu.sh             # both, where one machine has both
#
# GPU machines here have the CUDA driver, nvcc and PyTorch but no LLVM or
# MLIR, so the compiler runs here: .gpu-bundle/ holds the PTX and manifests
# (loomc compile --target=nvptx --emit=ptx), the numerics checks
# (build/bin/loom_gpu_bundle: every example entry function and AdamW steps
# with inputs and the CPU pipeline's outputs) and tools/loom-gpu-run, which
# needs nothing but libcuda. Carry the folder (about 25 MB) to the device
# (`run` with carry [".gpu-bundle"]) and run `bash bench/gpu.sh --run`.
#
# --run prints every check (PASS/FAIL), then one table: GEMM 4096^3 (f32
# accuracy as 3xtf32, one tf32 product, bf16 operands), causal
# attention forward and forward + backward (B 4, H 16, T 4096, Dh 64) and
# the GPT-mini training step (B 8, T 256): the device time of Loom's
# launches (median of 10; CUDA events), PyTorch's, the ratio Loom / PyTorch
# and Loom's fraction of the H200 datasheet peaks (f32 SIMT 67 TFLOP/s,
# TF32 494, bf16 989 dense).
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=.gpu-bundle
mode=${1:-both}

prepare() {
  scripts/setup.sh >/dev/null
  echo "== the PTX of every example (ptxas, sm_80 and sm_90) and the launch plans run on the CPU"
  build/tests/e2e/loom-e2e-tests --gtest_brief=1 \
    --gtest_filter='*GpuPtx*:*GpuEmulated*:GpuManifest*:GpuRuntime*'
  rm -rf "$bundle"
  mkdir -p "$bundle/bench" "$bundle/bin"
  echo "== numerics checks"
  build/bin/loom_gpu_bundle "$bundle/check" >/dev/null
  echo "== benchmark programs"
  local loomc=build/bin/loomc
  # The GEMM three ways: f32 accuracy (3xtf32, the default), then one tf32
  # product and bf16 operands (--tensor-cores), each beside its peer.
  $loomc compile bench/models/gemm.loom --target=nvptx --emit=ptx --fn mm \
    --bind M=4096,K=4096,N=4096 -o "$bundle/bench/gemm"
  for cores in tf32 bf16; do
    $loomc compile bench/models/gemm.loom --target=nvptx --emit=ptx --fn mm \
      --tensor-cores=$cores --bind M=4096,K=4096,N=4096 \
      -o "$bundle/bench/gemm_$cores"
  done
  $loomc compile bench/models/attention.loom --target=nvptx --emit=ptx \
    --fn forward --bind N=1 --config B=4,H=16,T=4096,D=64 \
    -o "$bundle/bench/attn_fwd"
  $loomc compile bench/models/attention.loom --target=nvptx --emit=ptx \
    --fn loss --grad --bind N=1 --config B=4,H=16,T=4096,D=64 \
    -o "$bundle/bench/attn_fwdbwd"
  $loomc compile examples/gpt.loom --target=nvptx --emit=ptx --fn loss \
    --step adamw --bind B=8,T=256 -o "$bundle/bench/gpt_step"
  # What the GPU would reject at load time (a block's static shared memory
  # over 48 KB, say) fails here, not in the minutes a GPU is lent.
  if command -v ptxas >/dev/null; then
    for dir in "$bundle"/bench/*/; do
      ptxas -arch=sm_90 -v "$dir/kernels.ptx" -o /dev/null 2>"$dir/ptxas.log" || {
        cat "$dir/ptxas.log" >&2
        echo "ptxas rejects the PTX of $dir" >&2
        exit 1
      }
      if grep -q '[1-9][0-9]* bytes spill' "$dir/ptxas.log"; then
        echo "warning: kernels of $dir spill:" >&2
        grep -B2 '[1-9][0-9]* bytes spill' "$dir/ptxas.log" >&2
      fi
    done
    echo "== benchmark PTX assembled by ptxas (sm_90)"
  else
    echo "*** ptxas not found: the benchmark PTX was NOT assembled ***" >&2
  fi
  cp build/bin/loom-gpu-run "$bundle/bin/"
  mkdir -p "$bundle/src"
  cp runtime/Cuda.cpp runtime/GpuProgram.cpp runtime/Json.cpp \
    runtime/Json.h runtime/Utf8.cpp runtime/Utf8.h \
    tools/loom-gpu-run/main.cpp "$bundle/src/"
  cp -r runtime/include "$bundle/src/"
  # The sources --run builds loom-gpu-run from when the binary does not run
  # there: they must build alone.
  echo "== loom-gpu-run built from the bundle's sources alone"
  c++ -O2 -std=c++20 -I"$bundle/src/include" -I"$bundle/src" \
    "$bundle"/src/*.cpp -ldl -o "$bundle/src-build-check"
  rm -f "$bundle/src-build-check"
  cp bench/peer/gpu_peer.py "$bundle/"
  grep -qx '/.gpu-bundle/' .git/info/exclude 2>/dev/null ||
    echo '/.gpu-bundle/' >>.git/info/exclude
  echo "prepared $bundle ($(du -sh "$bundle" | cut -f1))"
}

run() {
  [ -d "$bundle" ] || { echo "no $bundle: run bash bench/gpu.sh --prepare first" >&2; exit 1; }
  local runner=$bundle/bin/loom-gpu-run
  if ! "$runner" 2>&1 | grep -q usage; then
    echo "(building loom-gpu-run here)"
    c++ -O2 -std=c++20 -I"$bundle/src/include" -I"$bundle/src" \
      "$bundle"/src/*.cpp -ldl -o /tmp/loom-gpu-run
    runner=/tmp/loom-gpu-run
  fi
  nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader || true
  echo "== numerics: every example entry function and AdamW steps, GPU vs the CPU pipeline"
  local pass=0 failed=0
  for dir in "$bundle"/check/*/; do
    dir=${dir%/}
    # shellcheck disable=SC2046
    if out=$("$runner" "$dir" $(cat "$dir/args") --inputs "$dir/inputs" \
        --expect "$dir/expect" 2>&1); then
      pass=$((pass + 1))
    else
      failed=$((failed + 1))
    fi
    echo "$(basename "$dir"): $(grep -c PASS <<<"$out") outputs pass$(grep -q -e FAIL -e error <<<"$out" && echo "; $out" | tr '\n' ' ')"
  done
  echo "numerics: $pass cases pass, $failed fail"

  echo "== timing (10 runs after a warm-up; Loom's launches, CUDA events)"
  declare -A loom
  for work in gemm:mm:0 gemm_tf32:mm:0 gemm_bf16:mm:0 attn_fwd:forward:0 \
              attn_fwdbwd:loss_grad:0 gpt_step:train_step:256; do
    IFS=: read -r name fn intmax <<<"$work"
    local line
    line=$("$runner" "$bundle/bench/$name" --fn "$fn" --repeats 10 \
      --int-max "$((intmax > 0 ? intmax : 2))" 2>&1 | tail -1 || true)
    echo "loom $name: $line"
    loom[$name]=$(sed -n 's/.*kernels median \([0-9.]*\) ms.*/\1/p' <<<"$line")
  done
  # What CUDA graphs save on the step's ~700 launches (call times).
  echo "loom gpt_step, launches one by one: $(LOOM_CUDA_GRAPHS=0 "$runner" \
    "$bundle/bench/gpt_step" --fn train_step --repeats 10 --int-max 256 2>&1 |
    tail -1 || true)"
  declare -A peer
  local peer_out
  peer_out=$(python3 "$bundle/gpu_peer.py" --repeats 10 2>&1 || true)
  echo "$peer_out" | grep -v '^peer ' || true
  while read -r tag name med _; do
    [ "$tag" = peer ] && peer[$name]=$med
  done <<<"$peer_out"

  # FLOPs: GEMM 2n^3; causal attention forward 2 B H T^2 Dh (two products,
  # half the scores), forward + backward 3.5x that.
  local gemm_flop=$((2 * 4096 * 4096 * 4096))
  local attn_flop=$((2 * 4 * 16 * 4096 * 4096 * 64))
  printf '\n%-22s %12s %12s %10s %12s %10s\n' work "loom ms" "torch ms" \
    loom/torch "loom TFLOP/s" "% of peak"
  row() { # name peer_name flop peak_tflops label
    local l=${loom[$1]:-} p=${peer[$2]:-}
    awk -v l="$l" -v p="$p" -v f="$3" -v peak="$4" -v label="$5" 'BEGIN {
      r = (l != "" && p != "") ? sprintf("%.2f", l / p) : "-";
      t = (l != "" && f > 0) ? f / (l * 1e-3) / 1e12 : 0;
      printf "%-22s %12s %12s %10s %12s %10s\n", label, (l == "" ? "-" : l),
        (p == "" ? "-" : p), r, (t > 0 ? sprintf("%.2f", t) : "-"),
        (t > 0 ? sprintf("%.1f%%", 100 * t / peak) : "-") }'
  }
  # f32 accuracy: Loom's 3xtf32 against cuBLAS's f32 (SIMT peak); one
  # tf32 product against cuBLAS's TF32; bf16 operands against cuBLAS on
  # bf16 tensors (Loom's stay f32 in memory, rounded as they are read).
  row gemm gemm_f32 "$gemm_flop" 67 "GEMM f32 (3xtf32)"
  row gemm_tf32 gemm_tf32 "$gemm_flop" 494 "GEMM tf32"
  row gemm_bf16 gemm_bf16 "$gemm_flop" 989 "GEMM bf16"
  row attn_fwd attn_fwd "$attn_flop" 67 "attention fwd"
  row attn_fwdbwd attn_fwdbwd "$((attn_flop * 7 / 2))" 67 "attention fwd+bwd"
  row gpt_step gpt_step 0 1 "GPT-mini train step"
  [ "$failed" -eq 0 ]
}

case "$mode" in
  --prepare) prepare ;;
  --run) run ;;
  both) prepare && run ;;
  *) echo "usage: bash bench/gpu.sh [--prepare|--run]" >&2; exit 2 ;;
esac
