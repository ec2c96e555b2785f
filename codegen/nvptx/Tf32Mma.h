//===- Tf32Mma.h - mma.sync m16n8k8 on tf32 operands ------------*- C++ -*-===//
//
// The tensor-core product that the contraction and attention kernels of
// the NVPTX pipeline build: `nvgpu.mma.sync` m16n8k8 with tf32 operands and
// f32 accumulators. Lane (g, t) = (lane / 4, lane % 4) holds a fragment of
// A as 4 values (rows g, g + 8 at columns t, t + 4), of B as 2 (rows t,
// t + 4 at column g), and the accumulator as 2 x 2 (rows g, g + 8, columns
// 2 t, 2 t + 1). With `split` (3xtf32) each operand is its tf32 rounding
// (to nearest: half a tf32 ulp added, the low 13 bits cleared) and the
// tf32 of the rest, which is then exact, and three products (small x big,
// big x small, big x big) keep f32 accuracy (the CUTLASS 3xTF32 scheme);
// without, the roundings alone (about 1e-3 relative).
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_CODEGEN_NVPTX_TF32MMA_H
#define LOOM_CODEGEN_NVPTX_TF32MMA_H

#include "mlir/IR/Builders.h"

namespace loom::nvptx {

class Tf32Mma {
public:
  /// An operand fragment: its tf32 rounding and (with split) the rest.
  struct Fragment {
    mlir::Value big, small;
  };

  Tf32Mma(mlir::OpBuilder &b, mlir::Location loc, bool split)
      : b(b), loc(loc), split(split) {}

  /// The fragment of `values` (4 for A, 2 for B; finite values).
  Fragment fragment(llvm::ArrayRef<mlir::Value> values);
  /// acc + a b.
  mlir::Value mma(const Fragment &a, const Fragment &b, mlir::Value acc);
  /// A zero accumulator.
  mlir::Value zero();

private:
  mlir::Value rounded(mlir::Value x);

  mlir::OpBuilder &b;
  mlir::Location loc;
  bool split;
};

} // namespace loom::nvptx

#endif // LOOM_CODEGEN_NVPTX_TF32MMA_H
