//===- NvptxPipeline.h - loom IR to PTX kernels and launch plans -*- C++ -*-=//
//
// The GPU target: the same loom IR as the CPU pipeline's, lowered to one
// module of NVPTX kernels (PTX text, assembled by the CUDA driver or ptxas)
// and, per entry function, the launch sequence a host runs
// (loom/GpuProgram.h). Nothing here needs a GPU or the CUDA driver.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_CODEGEN_NVPTX_NVPTXPIPELINE_H
#define LOOM_CODEGEN_NVPTX_NVPTXPIPELINE_H

#include "loom/GpuProgram.h"

#include "mlir/Support/LLVM.h"

#include "llvm/Support/Error.h"

#include <string>
#include <vector>

namespace mlir {
class ModuleOp;
class OpPassManager;
class DialectRegistry;
} // namespace mlir

namespace loom {

/// The modes of NvptxPipelineOptions::tensorCores, as messages list them.
inline constexpr llvm::StringLiteral kTensorCoreModes =
    "3xtf32, tf32, bf16 or none";
/// Whether `mode` is one of them.
inline bool isTensorCoreMode(llvm::StringRef mode) {
  return mode == "3xtf32" || mode == "tf32" || mode == "bf16" || mode == "none";
}

struct NvptxPipelineOptions {
  /// Dim bindings NAME=VALUE (every dim must end up bound).
  std::vector<std::string> bind;
  /// `loom-autodiff` / `loom-optimizer` options, as for the CPU pipeline.
  std::string autodiff;
  std::string optimizer;
  /// The GPU architecture: sm_80, sm_90 (or any sm_XY the NVPTX backend
  /// knows).
  std::string arch = "sm_90";
  /// Threads per block of the parallel kernels.
  int64_t blockSize = 256;
  /// f32 contractions: "3xtf32" (tensor cores, f32 accuracy from three tf32
  /// products), "tf32" (one; about 1e-3 relative) or "none" (CUDA cores).
  std::string tensorCores = "3xtf32";
  /// Stop after "linalg" (fused linalg on tensors), "kernels" (host launch
  /// sequences and gpu.func kernels), "nvvm" (kernels in the LLVM/NVVM
  /// dialects) or "ptx" (all: the kernels as a gpu.binary).
  std::string stopAfter = "ptx";
  /// The CUDA toolkit (for libdevice, which the math functions call);
  /// empty: $CUDA_HOME, else /usr/local/cuda.
  std::string toolkit;
};

/// The pipeline as text: the pass list nested in `builtin.module(...)`.
std::string nvptxPipelineText(const NvptxPipelineOptions &options);

mlir::LogicalResult buildNvptxPipeline(mlir::OpPassManager &pm,
                                       const NvptxPipelineOptions &options);

/// Registers the NVPTX passes and `loom-nvptx-pipeline`.
void registerNvptxPipeline();

/// What the NVPTX pipeline needs beyond the CPU's dialects: the NVVM
/// target's serialization and the GPU/NVVM translations to LLVM IR.
void registerNvptxDialects(mlir::DialectRegistry &registry);

/// The CUDA toolkit directory the pipeline uses (see `toolkit`), empty when
/// none is found.
std::string findCudaToolkit(const std::string &preferred = "");

/// After the whole pipeline: the PTX of `module`'s kernels and the launch
/// plan of each of its public functions (buffers, workspace slots reused
/// once their last launch has run, launches). Errors name the op that the
/// plan cannot express.
/// With `requirePtx` false, the launch plans of a module the pipeline
/// stopped at "kernels" (for running its kernels elsewhere, e.g. on the CPU
/// in tests).
llvm::Expected<gpu::Program> extractGpuProgram(mlir::ModuleOp module,
                                               llvm::StringRef arch,
                                               llvm::StringRef bindings,
                                               bool requirePtx = true);

} // namespace loom

#endif // LOOM_CODEGEN_NVPTX_NVPTXPIPELINE_H
