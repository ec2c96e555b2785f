//===- Bf16Mma.h - mma.sync m16n8k16 on bf16 operands -----------*- C++ -*-===//
//
// The tensor-core product of the contraction kernels under
// `tensor-cores=bf16`: `nvgpu.mma.sync` m16n8k16 with bf16 operands (each
// f32 rounded to the nearest bf16, about 4e-3 relative) and f32
// accumulators. Lane (g, t) = (lane / 4, lane % 4) holds a fragment of A
// as 4 pairs (rows g, g + 8 at columns 2t, 2t + 1, then the same rows at
// columns 2t + 8, 2t + 9), of B as 2 pairs (rows 2t, 2t + 1, then 2t + 8,
// 2t + 9, at column g), and the accumulator as for tf32 (rows g, g + 8,
// columns 2t, 2t + 1). MLIR 22 lowers this product to NVVM only through
// `loom-gpu-lower-bf16-mma` (LowerBf16Mma.cpp).
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_CODEGEN_NVPTX_BF16MMA_H
#define LOOM_CODEGEN_NVPTX_BF16MMA_H

#include "mlir/IR/Builders.h"

namespace loom::nvptx {

class Bf16Mma {
public:
  Bf16Mma(mlir::OpBuilder &b, mlir::Location loc) : b(b), loc(loc) {}

  /// The depth of one product.
  static constexpr int64_t kDepth = 16;

  /// A fragment of f32 `values` in register order (8 for A, 4 for B), each
  /// rounded to bf16: vector<4x2xbf16> or vector<2x2xbf16>.
  mlir::Value fragment(llvm::ArrayRef<mlir::Value> values);
  /// acc + a b (acc: vector<2x2xf32>).
  mlir::Value mma(mlir::Value a, mlir::Value b, mlir::Value acc);

private:
  mlir::OpBuilder &b;
  mlir::Location loc;
};

} // namespace loom::nvptx

#endif // LOOM_CODEGEN_NVPTX_BF16MMA_H
