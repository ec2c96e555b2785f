//===- FuseElementwise.cpp - Fuse elementwise linalg chains ---------------===//

#include "passes/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#define DEBUG_TYPE "loom-fuse-elementwise"

namespace loom {
#define GEN_PASS_DEF_LOOMFUSEELEMENTWISE
#include "passes/Passes.h.inc"
} // namespace loom

using namespace mlir;

namespace {

/// True for a linalg.generic whose loops are all parallel.
bool isElementwise(Operation *op) {
  auto generic = llvm::dyn_cast_or_null<linalg::GenericOp>(op);
  return generic && generic.getNumLoops() == generic.getNumParallelLoops();
}

/// True when recomputing `producer`'s body in each of its consumers costs
/// about what reading its result would: no gathers (tensor.extract, an
/// embedding lookup) and no transcendental math. An embedding table lookup
/// with several consumers (BERT's embeddings feed the layer norm's mean,
/// variance and normalization, then the residual stream) was recomputed,
/// scalar, in every one of them.
bool isCheapToRecompute(Operation *producer) {
  bool cheap = true;
  producer->walk([&](Operation *op) {
    if (llvm::isa<tensor::ExtractOp>(op) ||
        op->getDialect()->getNamespace() == "math")
      cheap = false;
  });
  return cheap;
}

struct LoomFuseElementwise
    : public loom::impl::LoomFuseElementwiseBase<LoomFuseElementwise> {
  /// Greedily fuses elementwise producers into elementwise consumers (a
  /// producer with several users is recomputed only if it is cheap to: the
  /// upstream patterns keep it otherwise).
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    linalg::populateElementwiseOpsFusionPatterns(
        patterns, [](OpOperand *operand) {
          Operation *producer = operand->get().getDefiningOp();
          if (!isElementwise(producer) || !isElementwise(operand->getOwner()))
            return false;
          // A producer with other users stays; fusing then duplicates it.
          return operand->get().hasOneUse() || isCheapToRecompute(producer);
        });
    linalg::FillOp::getCanonicalizationPatterns(patterns, &getContext());
    linalg::GenericOp::getCanonicalizationPatterns(patterns, &getContext());
    tensor::EmptyOp::getCanonicalizationPatterns(patterns, &getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
