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
#include "mlir/IR/IRMapping.h"
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

/// transpose(gemm(a, b)) -> gemm(b, a) writing the transposed layout: C^T
/// = B^T A^T, the inputs swapped so that the output's rows are still the
/// first input's (the kernel's M) and its columns contiguous. For a 2-D
/// GEMM that overwrites its output and is read by the transpose alone
/// (a tied head's weight gradient, computed as X^T dLogits [d, V] and
/// transposed to the embedding's [V, d]: 154 MB moved a column at a time
/// per GPT-2-small step).
struct FoldTransposeOfGemm : OpRewritePattern<linalg::TransposeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(linalg::TransposeOp transpose,
                                PatternRewriter &rewriter) const override {
    auto op = transpose.getInput().getDefiningOp<linalg::LinalgOp>();
    if (!op || !op->hasOneUse() || !op.hasPureTensorSemantics() ||
        !op->hasAttr(loom::cpu::kZeroInitAttr) ||
        transpose.getPermutation() != ArrayRef<int64_t>{1, 0} ||
        op->getNumRegions() != 1 ||
        op->getRegion(0).front().getNumArguments() != 3)
      return failure();
    std::optional<loom::cpu::GemmLoops> loops = loom::cpu::matchGemm(op);
    if (!loops || loops->batch >= 0)
      return failure();
    // The loops renumbered so that the old N is the new M and the old M
    // the new N (the output, transposed, is then (m, n) again; the kernel
    // and the epilogue pass expect M before N as in any other GEMM).
    MLIRContext *context = rewriter.getContext();
    unsigned loopCount = op.getNumLoops();
    SmallVector<AffineExpr> renumber;
    SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
    for (unsigned d = 0; d < loopCount; ++d) {
      unsigned to = d == unsigned(loops->m)   ? unsigned(loops->n)
                    : d == unsigned(loops->n) ? unsigned(loops->m)
                                              : d;
      renumber.push_back(getAffineDimExpr(to, context));
    }
    std::swap(iterators[loops->m], iterators[loops->n]);
    auto remap = [&](AffineMap map) {
      return map.replaceDimsAndSymbols(renumber, {}, loopCount, 0);
    };
    SmallVector<AffineMap> maps = op.getIndexingMapsArray();
    AffineMap c = maps[2];
    AffineMap transposedC = AffineMap::get(
        c.getNumDims(), 0, {c.getResult(1), c.getResult(0)}, context);
    SmallVector<AffineMap> newMaps = {remap(maps[1]), remap(maps[0]),
                                      remap(transposedC)};
    Value a = op.getDpsInputs()[0], b = op.getDpsInputs()[1];
    Value init = transpose.getInit();
    Block &body = op->getRegion(0).front();
    // Where the transpose's output exists (it may be made after the GEMM).
    rewriter.setInsertionPoint(transpose);
    auto generic = linalg::GenericOp::create(
        rewriter, op.getLoc(), TypeRange{init.getType()}, ValueRange{b, a},
        ValueRange{init}, newMaps, iterators,
        [&](OpBuilder &nested, Location loc, ValueRange args) {
          // The inputs swapped places: a contraction's product commutes.
          IRMapping mapping;
          mapping.map(body.getArgument(0), args[1]);
          mapping.map(body.getArgument(1), args[0]);
          mapping.map(body.getArgument(2), args[2]);
          for (Operation &inner : body.without_terminator())
            nested.clone(inner, mapping);
          linalg::YieldOp::create(
              nested, loc,
              mapping.lookupOrDefault(body.getTerminator()->getOperand(0)));
        });
    generic->setAttr(loom::cpu::kZeroInitAttr, rewriter.getUnitAttr());
    rewriter.replaceOp(transpose, generic->getResults());
    rewriter.eraseOp(op);
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
    patterns
        .add<FoldTransposeIntoGemm, FoldTransposeOfGemm, DropZeroFillOfGemm>(
            &getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
