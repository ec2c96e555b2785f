//===- Gemm.h - Contractions that the loom_sgemm kernel computes -*- C++
//-*-===//
//
// One predicate shared by the passes that prepare (on tensors) and call (on
// buffers) the packed GEMM kernel of runtime/kernels, so both agree on which
// contractions take that path.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_CODEGEN_CPU_GEMM_H
#define LOOM_CODEGEN_CPU_GEMM_H

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>

namespace mlir::linalg {
class LinalgOp;
} // namespace mlir::linalg

namespace loom::cpu {

/// The loops of a contraction C[b](m, n) += A[b](m, k) * B[b](k, n), as loop
/// positions of the linalg op (`batch` is -1 when there is none). Operands
/// may be indexed in any order (a transposed operand is a permutation).
struct GemmLoops {
  int64_t batch = -1;
  int64_t m = 0, n = 0, k = 0;
};

/// `op`'s loops when it is an f32 contraction with one M, one N and one K
/// loop, at most one batch loop, static loop ranges and projected
/// permutation indexing maps; std::nullopt otherwise.
std::optional<GemmLoops> matchGemm(mlir::linalg::LinalgOp op);

/// f32 lanes of the host's widest vector registers: 16 with AVX-512, else 8
/// (the register blocks of loom-cpu-tile-and-vectorize and the steps of
/// compiled GEMM epilogues are sized from it).
int64_t hostVectorWidth();

/// Unit attribute on a GEMM whose init operand is not read: the result is
/// the product alone (its zero fill was dropped), so the kernel overwrites
/// the output instead of accumulating into it.
constexpr llvm::StringLiteral kZeroInitAttr = "loom.zero_init";

/// The kernel's symbols (runtime/include/loom/Kernels.h).
constexpr llvm::StringLiteral kSgemmSymbol = "loom_sgemm";
constexpr llvm::StringLiteral kSgemmEpilogueSymbol = "loom_sgemm_epilogue";

/// A GEMM and the elementwise generic that loom-cpu-gemm-to-call runs as its
/// epilogue share an id: `loom.epilogue = id` on the GEMM (and its thread
/// tiles), `loom.epilogue_of = id` on the generic.
constexpr llvm::StringLiteral kEpilogueAttr = "loom.epilogue";
constexpr llvm::StringLiteral kEpilogueOfAttr = "loom.epilogue_of";
/// On the epilogue generic: the number of its operand that reads the
/// product.
constexpr llvm::StringLiteral kEpilogueOperandAttr = "loom.epilogue_operand";

} // namespace loom::cpu

#endif // LOOM_CODEGEN_CPU_GEMM_H
