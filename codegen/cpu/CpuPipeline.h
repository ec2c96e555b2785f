//===- CpuPipeline.h - loom IR to LLVM for the host CPU ---------*- C++ -*-===//

#ifndef LOOM_CODEGEN_CPU_CPUPIPELINE_H
#define LOOM_CODEGEN_CPU_CPUPIPELINE_H

#include "mlir/Support/LLVM.h"

#include <string>
#include <vector>

namespace mlir {
class OpPassManager;
class DialectRegistry;
} // namespace mlir

namespace loom {

/// The OpenMP runtime JIT-compiled parallel loops call into (the one the
/// GEMM kernel's team links: runtime/CMakeLists.txt).
inline constexpr const char *kOpenMPRuntime = LOOM_OPENMP_RUNTIME;

struct CpuPipelineOptions {
  /// Dim bindings NAME=VALUE for loom-specialize; empty when the IR is
  /// already static (the frontend binds dims itself).
  std::vector<std::string> bind;
  /// Options of `loom-autodiff` (e.g. "function=loss trainable=wte"); when
  /// set, the gradient function is derived before parameters are
  /// materialized. Empty: no autodiff.
  std::string autodiff;
  /// Options of `loom-optimizer` (e.g. "kind=adamw weight-decay=0.01");
  /// when set, the gradient function becomes `train_step`. Needs autodiff.
  std::string optimizer;
  /// Options of `loom-derive-decode` (e.g. "function=logits capacity=256");
  /// when set, the function becomes `<function>_decode`, whose key/value
  /// caches are updated in place (and layers are not outlined). Empty: no
  /// decode step.
  std::string decode;
  /// Stop after this stage: "linalg" (tensors on linalg), or "llvm" (all).
  std::string stopAfter = "llvm";
  /// Threads for parallel loops (OpenMP); 1 compiles serial code. Without
  /// the OpenMP runtime on the machine, code is compiled serial.
  int threads = 2;
  /// f32 contractions call the packed GEMM kernel (loom_sgemm); false keeps
  /// them as register-tiled vector loops (the earlier path, for comparison).
  bool gemmKernel = true;
  /// The elementwise op that consumes a kernel GEMM's product runs inside
  /// the kernel, on each finished tile (loom-cpu-fuse-gemm-epilogues); false
  /// runs it as its own pass over memory (for comparison).
  bool gemmEpilogues = true;
  /// f32 attention (forward, lse, gradient) calls the flash attention
  /// kernels; false materializes the [Tq x Tk] scores in linalg (the
  /// earlier path, for comparison).
  bool attentionKernel = true;
  /// The flash attention kernels' block shape (loom-cpu-attention-to-call's
  /// block-q / block-k); 0: the kernels' measured default.
  int64_t attentionBlockQ = 0, attentionBlockK = 0;
  /// The layers of a repeat compile once, as a function called per layer
  /// (loom-outline-layers); false inlines every layer.
  bool outlineLayers = true;
  /// Vector writes into function arguments of at least this many bytes
  /// are non-temporal (loom-cpu-streaming-stores; 8 MB: the updated
  /// parameters and moments of a training step); -1: none.
  int64_t streamingStoreBytes = int64_t(8) << 20;
};

/// The passes from loom IR (static or bound shapes) to the LLVM dialect.
/// Functions take bare pointers: `f(params, inputs..., outputs...)`.
mlir::LogicalResult buildCpuPipeline(mlir::OpPassManager &pm,
                                     const CpuPipelineOptions &options);

/// The pipeline as text: the pass list nested in `builtin.module(...)`.
std::string cpuPipelineText(const CpuPipelineOptions &options);

/// Registers upstream and loom passes and `loom-cpu-pipeline`.
void registerCpuPipeline();

/// Every dialect the CPU pipeline produces, plus LLVM IR translations.
void registerCpuDialects(mlir::DialectRegistry &registry);

} // namespace loom

#endif // LOOM_CODEGEN_CPU_CPUPIPELINE_H
