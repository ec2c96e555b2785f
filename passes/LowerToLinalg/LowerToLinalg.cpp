//===- LowerToLinalg.cpp - loom ops to linalg, tensor, arith, math, scf ---===//
//
// The pass only sets up the patterns of each op family (Elementwise.cpp,
// Structured.cpp, Model.cpp, Backward.cpp) and checks that no computing loom
// op is left.
//
//===----------------------------------------------------------------------===//

#include "passes/LowerToLinalg/Lowering.h"
#include "passes/Passes.h"

#include "ir/LoomOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#define DEBUG_TYPE "loom-lower-to-linalg"

namespace loom {
#define GEN_PASS_DEF_LOOMLOWERTOLINALG
#include "passes/Passes.h.inc"
} // namespace loom

using namespace mlir;

namespace {

struct LoomLowerToLinalg
    : public loom::impl::LoomLowerToLinalgBase<LoomLowerToLinalg> {
  using LoomLowerToLinalgBase::LoomLowerToLinalgBase;
  /// 1. Refuse dynamic shapes (they must be bound first), naming the op.
  /// 2. Rewrite every loom op with its family's patterns.
  /// 3. Report any loom op that is left.
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    WalkResult dynamic = func.walk([&](Operation *op) {
      if (!llvm::isa<loom::LoomDialect>(op->getDialect()))
        return WalkResult::advance();
      // Operands too: an op can have static results over dynamic operands
      // (attention_lse with an unbound Tk).
      for (Type t : llvm::concat<const Type>(op->getOperandTypes(),
                                             op->getResultTypes()))
        if (auto shaped = llvm::dyn_cast<ShapedType>(t);
            shaped && !shaped.hasStaticShape()) {
          op->emitError() << "cannot lower an op with the dynamic type " << t
                          << "; bind the symbolic dims first (loom-specialize)";
          return WalkResult::interrupt();
        }
      return WalkResult::advance();
    });
    if (dynamic.wasInterrupted())
      return signalPassFailure();

    // The ops to lower: every loom op but the attention ops left to a
    // target's kernels and, with keep-head-views, the head splits that
    // only they read and the head merges of what only they write.
    auto keptAttention = [&](Operation *op) {
      return keepAttention && (loom::isBatchedF32Attention(op) ||
                               llvm::isa<loom::CachedAttentionOp>(op));
    };
    auto kept = [&](Operation *op) {
      if (keptAttention(op))
        return true;
      if (!keepAttention || !keepHeadViews)
        return false;
      if (auto split = llvm::dyn_cast<loom::SplitHeadsOp>(op))
        return !split->use_empty() &&
               llvm::all_of(split->getUsers(), [&](Operation *user) {
                 return loom::isBatchedF32Attention(user);
               });
      if (auto merge = llvm::dyn_cast<loom::MergeHeadsOp>(op)) {
        Operation *producer = merge.getInput().getDefiningOp();
        return producer && merge.getInput().hasOneUse() &&
               llvm::isa<loom::AttentionOp, loom::AttentionGradOp>(producer) &&
               loom::isBatchedF32Attention(producer);
      }
      return false;
    };
    func.walk([&](Operation *op) {
      if (kept(op))
        op->setAttr(loom::lowering::kKeptForKernelAttr,
                    UnitAttr::get(&getContext()));
    });
    RewritePatternSet patterns(&getContext());
    loom::lowering::populateElementwisePatterns(patterns);
    loom::lowering::populateStructuredPatterns(patterns);
    loom::lowering::populateModelPatterns(patterns);
    loom::lowering::populateBackwardPatterns(patterns);
    GreedyRewriteConfig config;
    config.setRegionSimplificationLevel(GreedySimplifyRegionLevel::Disabled);
    LogicalResult converged =
        applyPatternsGreedily(func, std::move(patterns), config);
    // (Walked again: the driver erases kept ops that are dead.)
    func.walk([](Operation *op) {
      op->removeAttr(loom::lowering::kKeptForKernelAttr);
    });
    if (failed(converged))
      return signalPassFailure();

    WalkResult left = func.walk([&](Operation *op) {
      if (llvm::isa<loom::LoomDialect>(op->getDialect()) && !kept(op)) {
        op->emitError() << "no lowering to linalg for this op";
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (left.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace
