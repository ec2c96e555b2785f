//===- FuseCrossEntropy.cpp - One softmax normalizer for loss and gradient ===//
//
// A training step computes `loom.cross_entropy(logits, t)` and, in its
// backward, `loom.cross_entropy_grad(logits, t, d_loss)`: lowered on their
// own, the forward makes two passes over the logits (max, sum of exp) and
// the gradient three more (its own softmax). With a vocabulary of 50257
// the logits are the largest tensor of a GPT-2 step, so the pair shares
// one `loom.logsumexp`: the forward then reads one logit per row and the
// gradient is exp(logits - lse) - onehot in a single pass.
//
//===----------------------------------------------------------------------===//

#include "ir/LoomOps.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"

#define DEBUG_TYPE "loom-fuse-cross-entropy"

namespace loom {
#define GEN_PASS_DEF_LOOMFUSECROSSENTROPY
#include "passes/Passes.h.inc"
} // namespace loom

using namespace mlir;

namespace {

/// The forward cross_entropy in `grad`'s block, before it, over the same
/// logits, targets and ignore_index; null if there is none.
loom::CrossEntropyOp forwardOf(loom::CrossEntropyGradOp grad) {
  for (Operation *user : grad.getLogits().getUsers()) {
    auto forward = llvm::dyn_cast<loom::CrossEntropyOp>(user);
    if (forward && forward->getBlock() == grad->getBlock() &&
        forward->isBeforeInBlock(grad) &&
        forward.getTargets() == grad.getTargets() &&
        forward.getIgnoreIndex() == grad.getIgnoreIndex())
      return forward;
  }
  return nullptr;
}

struct LoomFuseCrossEntropy
    : public loom::impl::LoomFuseCrossEntropyBase<LoomFuseCrossEntropy> {
  void runOnOperation() override {
    SmallVector<loom::CrossEntropyGradOp> grads;
    getOperation().walk([&](loom::CrossEntropyGradOp grad) {
      if (!grad.getLse())
        grads.push_back(grad);
    });
    for (loom::CrossEntropyGradOp grad : grads) {
      loom::CrossEntropyOp forward = forwardOf(grad);
      if (!forward)
        continue;
      Value lse = forward.getLse();
      if (!lse) {
        auto logits =
            llvm::cast<RankedTensorType>(forward.getLogits().getType());
        auto lseType = RankedTensorType::get(logits.getShape().drop_back(),
                                             logits.getElementType());
        OpBuilder b(forward);
        lse = loom::LogSumExpOp::create(b, forward.getLoc(), lseType,
                                        forward.getLogits());
        forward.getLseMutable().assign(lse);
      }
      grad.getLseMutable().assign(lse);
    }
  }
};

} // namespace
