//===- PrivateFills.cpp - A constant fill per op that writes into it
//-------===//
//
// See `loom-gpu-private-fills` in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "codegen/nvptx/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Matchers.h"

#define DEBUG_TYPE "loom-gpu-private-fills"

namespace loom::nvptx {
#define GEN_PASS_DEF_LOOMGPUPRIVATEFILLS
#include "codegen/nvptx/Passes.h.inc"
} // namespace loom::nvptx

using namespace mlir;

namespace {

struct LoomGpuPrivateFills
    : public loom::nvptx::impl::LoomGpuPrivateFillsBase<LoomGpuPrivateFills> {
  void runOnOperation() override {
    SmallVector<linalg::FillOp> fills;
    getOperation().walk([&](linalg::FillOp fill) {
      if (fill.hasPureTensorSemantics() &&
          matchPattern(fill.getInputs()[0], m_Constant()) &&
          fill.getOutputs()[0].getDefiningOp<tensor::EmptyOp>())
        fills.push_back(fill);
    });
    for (linalg::FillOp fill : fills) {
      auto empty = fill.getOutputs()[0].getDefiningOp<tensor::EmptyOp>();
      Value result = fill.getResult(0);
      // An op that does not read its init writes a tensor.empty of its own
      // instead (it needs the fill's shape, not its values); the others
      // that start from the fill are its readers.
      SmallVector<OpOperand *> inits;
      for (OpOperand &use : llvm::make_early_inc_range(result.getUses())) {
        auto user = llvm::dyn_cast<linalg::LinalgOp>(use.getOwner());
        if (!user || !user.isDpsInit(&use))
          continue;
        if (user.payloadUsesValueFromOperand(&use)) {
          inits.push_back(&use);
          continue;
        }
        OpBuilder b(user);
        use.set(b.clone(*empty)->getResult(0));
      }
      // One op starting from the fill and nothing else reading it: the
      // op's buffer is the fill's already. Else each gets its own.
      if (!(inits.size() == 1 && result.hasOneUse()))
        for (OpOperand *use : inits) {
          OpBuilder b(use->getOwner());
          auto ownEmpty = llvm::cast<tensor::EmptyOp>(b.clone(*empty));
          IRMapping map;
          map.map(empty.getResult(), ownEmpty.getResult());
          use->set(b.clone(*fill, map)->getResult(0));
        }
      if (result.use_empty()) {
        fill.erase();
        if (empty.getResult().use_empty())
          empty.erase();
      }
    }
  }
};

} // namespace
