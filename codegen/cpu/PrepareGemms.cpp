//===- PrepareGemms.cpp - Shape contractions for the packed GEMM kernel ---===//
//
// On tensors, before tiling: every contraction that loom_sgemm computes
// (codegen/cpu/Gemm.h) reads its transposed operands in place and drops the
// zero fill of its output, so neither a transpose nor a memset of the
// result is materialized.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/Gemm.h"
#include "codegen/cpu/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#define DEBUG_TYPE "loom-cpu-prepare-gemms"

namespace loom::cpu {
#define GEN_PASS_DEF_LOOMCPUPREPAREGEMMS
#include "codegen/cpu/Passes.h.inc"
} // namespace loom::cpu

using namespace mlir;

namespace {

/// The map that reads transpose(x) through `map`, reading x directly:
/// linalg.transpose has result(i) = input(.., perm[i] ..), so the input's
/// index at position perm[i] is the result's index at position i.
AffineMap readThroughTranspose(AffineMap map, ArrayRef<int64_t> perm) {
  SmallVector<AffineExpr> results(map.getNumResults());
  for (auto [i, p] : llvm::enumerate(perm))
    results[p] = map.getResult(i);
  return AffineMap::get(map.getNumDims(), map.getNumSymbols(), results,
                        map.getContext());
}

/// gemm(transpose(x), y) -> generic gemm reading x with a permuted map.
struct FoldTransposeIntoGemm : OpInterfaceRewritePattern<linalg::LinalgOp> {
  using OpInterfaceRewritePattern::OpInterfaceRewritePattern;
  LogicalResult matchAndRewrite(linalg::LinalgOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.hasPureTensorSemantics() || !loom::cpu::matchGemm(op))
      return failure();
    SmallVector<AffineMap> maps = op.getIndexingMapsArray();
    SmallVector<Value> inputs = op.getDpsInputs();
    bool folded = false;
    for (auto [i, input] : llvm::enumerate(inputs)) {
      auto transpose = input.getDefiningOp<linalg::TransposeOp>();
      if (!transpose)
        continue;
      maps[i] = readThroughTranspose(maps[i], transpose.getPermutation());
      input = transpose.getInput();
      folded = true;
    }
    if (!folded)
      return failure();
    FailureOr<linalg::GenericOp> generic =
        isa<linalg::GenericOp>(op.getOperation())
            ? FailureOr<linalg::GenericOp>(cast<linalg::GenericOp>(op))
            : linalg::generalizeNamedOp(rewriter, op);
    if (failed(generic))
      return failure();
    rewriter.modifyOpInPlace(*generic, [&] {
      generic->getInputsMutable().assign(inputs);
      generic->setIndexingMapsAttr(rewriter.getAffineMapArrayAttr(maps));
    });
    return success();
  }
};

/// gemm(a, b, outs: fill(0, t)) -> gemm(a, b, outs: t) {loom.zero_init}.
struct DropZeroFillOfGemm : OpInterfaceRewritePattern<linalg::LinalgOp> {
  using OpInterfaceRewritePattern::OpInterfaceRewritePattern;
  LogicalResult matchAndRewrite(linalg::LinalgOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.hasPureTensorSemantics() || op->hasAttr(loom::cpu::kZeroInitAttr) ||
        !loom::cpu::matchGemm(op))
      return failure();
    OpOperand &init = *op.getDpsInitOperand(0);
    auto fill = init.get().getDefiningOp<linalg::FillOp>();
    if (!fill || !matchPattern(fill.getInputs()[0], m_AnyZeroFloat()))
      return failure();
    rewriter.modifyOpInPlace(op, [&] {
      init.set(fill.getOutputs()[0]);
      op->setAttr(loom::cpu::kZeroInitAttr, rewriter.getUnitAttr());
    });
    return success();
  }
};

struct LoomCpuPrepareGemms
    : public loom::cpu::impl::LoomCpuPrepareGemmsBase<LoomCpuPrepareGemms> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FoldTransposeIntoGemm, DropZeroFillOfGemm>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
