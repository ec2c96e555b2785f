//===- Bf16Mma.cpp - mma.sync m16n8k16 on bf16 operands -------------------===//
//
// See Bf16Mma.h.
//
//===----------------------------------------------------------------------===//

#include "codegen/nvptx/Bf16Mma.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;

namespace loom::nvptx {

Value Bf16Mma::fragment(ArrayRef<Value> values) {
  Type bf16 = b.getBF16Type();
  SmallVector<Value> rounded;
  for (Value x : values)
    rounded.push_back(arith::TruncFOp::create(b, loc, bf16, x));
  auto type = VectorType::get({int64_t(values.size()) / 2, 2}, bf16);
  return vector::FromElementsOp::create(b, loc, type, rounded);
}

Value Bf16Mma::mma(Value x, Value y, Value acc) {
  return nvgpu::MmaSyncOp::create(b, loc, x, y, acc,
                                  ArrayRef<int64_t>{16, 8, kDepth},
                                  /*tf32Enabled=*/false)
      .getResult();
}

} // namespace loom::nvptx
