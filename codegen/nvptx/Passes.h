//===- Passes.h - NVPTX code generation passes ------------------*- C++ -*-===//

#ifndef LOOM_CODEGEN_NVPTX_PASSES_H
#define LOOM_CODEGEN_NVPTX_PASSES_H

#include "mlir/Pass/Pass.h"

namespace loom::nvptx {

/// On an `scf.parallel` before `loom-gpu-outline-kernels`: its innermost
/// dim (of exactly this many iterations) is the threads of one block, its
/// other dims the blocks; its body may hold `gpu.barrier`s and workgroup
/// `memref.alloca`s (the block's shared memory).
inline constexpr llvm::StringLiteral kBlockThreadsAttr = "loom.block_threads";

#define GEN_PASS_DECL
#include "codegen/nvptx/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "codegen/nvptx/Passes.h.inc"

} // namespace loom::nvptx

#endif // LOOM_CODEGEN_NVPTX_PASSES_H
