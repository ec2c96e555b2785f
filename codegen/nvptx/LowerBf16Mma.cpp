//===- LowerBf16Mma.cpp - bf16 nvgpu.mma.sync to nvvm.mma.sync ------------===//
//
// See `loom-gpu-lower-bf16-mma` in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "codegen/nvptx/Passes.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/PatternMatch.h"

namespace loom::nvptx {
#define GEN_PASS_DEF_LOOMGPULOWERBF16MMA
#include "codegen/nvptx/Passes.h.inc"
} // namespace loom::nvptx

using namespace mlir;

namespace {

/// Whether `mma` is the m16n8k16 bf16 product into f32 this pass lowers.
bool isBf16Product(nvgpu::MmaSyncOp mma) {
  MLIRContext *context = mma.getContext();
  Type bf16 = BFloat16Type::get(context), f32 = Float32Type::get(context);
  return mma.getMmaShapeAsArray() == std::array<int64_t, 3>{16, 8, 16} &&
         mma.getMatrixA().getType() == VectorType::get({4, 2}, bf16) &&
         mma.getMatrixB().getType() == VectorType::get({2, 2}, bf16) &&
         mma.getMatrixC().getType() == VectorType::get({2, 2}, f32);
}

void lower(nvgpu::MmaSyncOp mma, IRRewriter &rewriter) {
  Location loc = mma.getLoc();
  rewriter.setInsertionPoint(mma);
  Type i32 = rewriter.getI32Type(), f32 = rewriter.getF32Type();
  // Row r of a fragment (a pair of bf16) as one i32 register.
  auto registers = [&](Value fragment, int64_t rows) {
    SmallVector<Value> regs;
    for (int64_t r = 0; r < rows; ++r) {
      Value pair = vector::ExtractOp::create(rewriter, loc, fragment,
                                             ArrayRef<int64_t>{r});
      Value word = vector::BitCastOp::create(rewriter, loc,
                                             VectorType::get({1}, i32), pair);
      regs.push_back(
          vector::ExtractOp::create(rewriter, loc, word, ArrayRef<int64_t>{0}));
    }
    return regs;
  };
  SmallVector<Value> a = registers(mma.getMatrixA(), 4);
  SmallVector<Value> b = registers(mma.getMatrixB(), 2);
  SmallVector<Value> c;
  for (int64_t i = 0; i < 4; ++i)
    c.push_back(vector::ExtractOp::create(rewriter, loc, mma.getMatrixC(),
                                          ArrayRef<int64_t>{i / 2, i % 2}));
  auto resultType = LLVM::LLVMStructType::getLiteral(rewriter.getContext(),
                                                     {f32, f32, f32, f32});
  Value d = NVVM::MmaOp::create(
      rewriter, loc, resultType, a, b, c, ArrayRef<int64_t>{16, 8, 16},
      std::nullopt, std::nullopt,
      std::array<NVVM::MMATypes, 2>{NVVM::MMATypes::bf16, NVVM::MMATypes::bf16},
      std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                     NVVM::MMALayout::col});
  SmallVector<Value> elements;
  for (int64_t i = 0; i < 4; ++i)
    elements.push_back(LLVM::ExtractValueOp::create(rewriter, loc, d, i));
  rewriter.replaceOp(mma, vector::FromElementsOp::create(
                              rewriter, loc, mma.getRes().getType(), elements));
}

struct LoomGpuLowerBf16Mma
    : public loom::nvptx::impl::LoomGpuLowerBf16MmaBase<LoomGpuLowerBf16Mma> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<nvgpu::MmaSyncOp> products;
    getOperation()->walk([&](nvgpu::MmaSyncOp mma) {
      if (isBf16Product(mma))
        products.push_back(mma);
    });
    IRRewriter rewriter(&getContext());
    for (nvgpu::MmaSyncOp mma : products)
      lower(mma, rewriter);
  }
};

} // namespace
