//===- GemmToCall.cpp - Contractions on buffers to loom_sgemm calls -------===//
//
// After bufferization and deallocation: every contraction that loom_sgemm
// computes (codegen/cpu/Gemm.h) becomes a call with the base address and
// the strides of each operand, read from the buffers' strided metadata, so
// transposed and sliced operands (attention's k^T, x @ W^T, one thread's
// share of a GEMM) go straight to the kernel's packing.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/Gemm.h"
#include "codegen/cpu/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

#define DEBUG_TYPE "loom-cpu-gemm-to-call"

namespace loom::cpu {
#define GEN_PASS_DEF_LOOMCPUGEMMTOCALL
#include "codegen/cpu/Passes.h.inc"
} // namespace loom::cpu

using namespace mlir;

namespace {

/// One operand's address and its stride along each loop of the op (0 for a
/// loop its map does not use), as i64 values built before `op`.
struct StridedOperand {
  Value address;
  SmallVector<Value> loopStrides;
};

StridedOperand describe(OpBuilder &b, Location loc, Value buffer,
                        AffineMap map) {
  auto i64 = b.getI64Type();
  auto meta = memref::ExtractStridedMetadataOp::create(b, loc, buffer);
  Value aligned =
      memref::ExtractAlignedPointerAsIndexOp::create(b, loc, buffer);
  auto asI64 = [&](Value index) -> Value {
    return arith::IndexCastOp::create(b, loc, i64, index);
  };
  Value bytes = arith::MulIOp::create(
      b, loc, asI64(meta.getOffset()),
      arith::ConstantIntOp::create(b, loc, i64, sizeof(float)));
  StridedOperand result;
  result.address = arith::AddIOp::create(b, loc, asI64(aligned), bytes);
  Value zero = arith::ConstantIntOp::create(b, loc, i64, 0);
  result.loopStrides.assign(map.getNumDims(), zero);
  for (auto [pos, expr] : llvm::enumerate(map.getResults()))
    result.loopStrides[llvm::cast<AffineDimExpr>(expr).getPosition()] =
        asI64(meta.getStrides()[pos]);
  return result;
}

/// The static stride of `buffer`'s dimension that `map` indexes with loop
/// `loop`, if known.
std::optional<int64_t> staticStride(Value buffer, AffineMap map, int64_t loop) {
  auto type = llvm::cast<MemRefType>(buffer.getType());
  SmallVector<int64_t> strides;
  int64_t offset;
  if (failed(type.getStridesAndOffset(strides, offset)))
    return std::nullopt;
  for (auto [pos, expr] : llvm::enumerate(map.getResults()))
    if (llvm::cast<AffineDimExpr>(expr).getPosition() == loop)
      return ShapedType::isDynamic(strides[pos])
                 ? std::nullopt
                 : std::optional<int64_t>(strides[pos]);
  return std::nullopt;
}

func::FuncOp declareSgemm(ModuleOp module) {
  if (auto existing =
          module.lookupSymbol<func::FuncOp>(loom::cpu::kSgemmSymbol))
    return existing;
  OpBuilder b = OpBuilder::atBlockBegin(module.getBody());
  SmallVector<Type> args(16, b.getI64Type());
  auto fn = func::FuncOp::create(b, module.getLoc(), loom::cpu::kSgemmSymbol,
                                 b.getFunctionType(args, {}));
  fn.setPrivate();
  return fn;
}

/// Replaces `op` with a loom_sgemm call; fails (changing nothing) when the
/// output's columns are not contiguous in either orientation.
LogicalResult lowerToCall(linalg::LinalgOp op, loom::cpu::GemmLoops loops,
                          func::FuncOp sgemm) {
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  Value a = op.getDpsInputs()[0], b = op.getDpsInputs()[1];
  Value c = op.getDpsInits()[0];
  AffineMap aMap = maps[0], bMap = maps[1], cMap = maps[2];
  // The kernel wants C's N columns contiguous; C^T = B^T A^T swaps roles.
  if (staticStride(c, cMap, loops.n) != 1) {
    if (staticStride(c, cMap, loops.m) != 1)
      return failure();
    std::swap(loops.m, loops.n);
    std::swap(a, b);
    std::swap(aMap, bMap);
  }
  OpBuilder builder(op);
  Location loc = op.getLoc();
  auto i64 = builder.getI64Type();
  auto constant = [&](int64_t v) -> Value {
    return arith::ConstantIntOp::create(builder, loc, i64, v);
  };
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  StridedOperand sa = describe(builder, loc, a, aMap);
  StridedOperand sb = describe(builder, loc, b, bMap);
  StridedOperand sc = describe(builder, loc, c, cMap);
  Value zero = constant(0);
  auto batchStride = [&](StridedOperand &s) {
    return loops.batch < 0 ? zero : s.loopStrides[loops.batch];
  };
  bool zeroInit = op->hasAttr(loom::cpu::kZeroInitAttr);
  SmallVector<Value> args = {
      constant(loops.batch < 0 ? 1 : ranges[loops.batch]),
      constant(ranges[loops.m]),
      constant(ranges[loops.n]),
      constant(ranges[loops.k]),
      sa.address,
      batchStride(sa),
      sa.loopStrides[loops.m],
      sa.loopStrides[loops.k],
      sb.address,
      batchStride(sb),
      sb.loopStrides[loops.k],
      sb.loopStrides[loops.n],
      sc.address,
      batchStride(sc),
      sc.loopStrides[loops.m],
      constant(zeroInit ? 0 : 1)};
  func::CallOp::create(builder, loc, sgemm, args);
  op->erase();
  return success();
}

struct LoomCpuGemmToCall
    : public loom::cpu::impl::LoomCpuGemmToCallBase<LoomCpuGemmToCall> {
  /// 1. Collect the contractions on buffers that loom_sgemm computes.
  /// 2. Replace each with a call; one that cannot be called (its output
  ///    is strided in both dims) gets its zero fill back, if it had one,
  ///    and stays a loop nest.
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<linalg::LinalgOp> ops;
    module.walk([&](linalg::LinalgOp op) {
      if (op.hasPureBufferSemantics())
        ops.push_back(op);
    });
    func::FuncOp sgemm;
    for (linalg::LinalgOp op : ops) {
      if (std::optional<loom::cpu::GemmLoops> loops =
              loom::cpu::matchGemm(op)) {
        if (!sgemm)
          sgemm = declareSgemm(module);
        if (succeeded(lowerToCall(op, *loops, sgemm)))
          continue;
      }
      if (!op->hasAttr(loom::cpu::kZeroInitAttr))
        continue;
      OpBuilder builder(op);
      Value zero = arith::ConstantOp::create(builder, op.getLoc(),
                                             builder.getF32FloatAttr(0.0f));
      linalg::FillOp::create(builder, op.getLoc(), zero, op.getDpsInits()[0]);
      op->removeAttr(loom::cpu::kZeroInitAttr);
    }
  }
};

} // namespace
