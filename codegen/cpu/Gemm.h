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

/// Unit attribute on a GEMM whose init operand is not read: the result is
/// the product alone (its zero fill was dropped), so the kernel overwrites
/// the output instead of accumulating into it.
constexpr llvm::StringLiteral kZeroInitAttr = "loom.zero_init";

/// The kernel's symbol (runtime/include/loom/Kernels.h).
constexpr llvm::StringLiteral kSgemmSymbol = "loom_sgemm";

} // namespace loom::cpu

#endif // LOOM_CODEGEN_CPU_GEMM_H
