//===- Tf32Mma.cpp - mma.sync m16n8k8 on tf32 operands --------------------===//
//
// See Tf32Mma.h.
//
//===----------------------------------------------------------------------===//

#include "codegen/nvptx/Tf32Mma.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;

namespace loom::nvptx {

Value Tf32Mma::rounded(Value x) {
  Type i32 = b.getI32Type();
  auto c = [&](int64_t v) {
    return arith::ConstantIntOp::create(b, loc, i32, v);
  };
  Value bits = arith::AddIOp::create(
      b, loc, arith::BitcastOp::create(b, loc, i32, x), c(0x1000));
  return arith::BitcastOp::create(
      b, loc, b.getF32Type(),
      arith::AndIOp::create(b, loc, bits, c(int64_t(0xFFFFE000))));
}

Tf32Mma::Fragment Tf32Mma::fragment(ArrayRef<Value> values) {
  SmallVector<Value> big, small;
  for (Value x : values) {
    Value h = rounded(x);
    big.push_back(h);
    if (split)
      small.push_back(rounded(arith::SubFOp::create(b, loc, x, h)));
  }
  auto type = VectorType::get({int64_t(values.size()), 1}, b.getF32Type());
  Fragment f;
  f.big = vector::FromElementsOp::create(b, loc, type, big);
  if (split)
    f.small = vector::FromElementsOp::create(b, loc, type, small);
  return f;
}

Value Tf32Mma::mma(const Fragment &x, const Fragment &y, Value acc) {
  auto one = [&](Value p, Value q) {
    acc =
        nvgpu::MmaSyncOp::create(b, loc, p, q, acc, ArrayRef<int64_t>{16, 8, 8},
                                 /*tf32Enabled=*/true)
            .getResult();
  };
  if (split) {
    one(x.small, y.big);
    one(x.big, y.small);
  }
  one(x.big, y.big);
  return acc;
}

Value Tf32Mma::zero() {
  auto type = VectorType::get({2, 2}, b.getF32Type());
  return arith::ConstantOp::create(
      b, loc, type, DenseElementsAttr::get(type, b.getF32FloatAttr(0.0f)));
}

} // namespace loom::nvptx
