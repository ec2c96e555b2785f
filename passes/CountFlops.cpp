//===- CountFlops.cpp - Annotate functions with their FLOP count ----------===//

#include "passes/Passes.h"

#include "ir/LoomOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

#define DEBUG_TYPE "loom-count-flops"

namespace loom {
#define GEN_PASS_DEF_LOOMCOUNTFLOPS
#include "passes/Passes.h.inc"
} // namespace loom

using namespace mlir;

namespace {

struct LoomCountFlops : public loom::impl::LoomCountFlopsBase<LoomCountFlops> {
  /// 1. Ask every op implementing CostModelOpInterface for its FLOP count.
  /// 2. If all are known, store the sum as `loom.flops`; otherwise warn at the
  ///    first op whose count is unknown and leave the function unannotated.
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    int64_t total = 0;
    Operation *unknown = nullptr;
    func.walk([&](loom::CostModelOpInterface op) {
      std::optional<int64_t> flops = op.getFlopCount();
      if (!flops) {
        if (!unknown)
          unknown = op.getOperation();
        return;
      }
      total += *flops;
    });
    if (unknown) {
      func->removeAttr("loom.flops");
      unknown->emitWarning()
          << "FLOP count unknown (dynamic shape); bind the dims first";
      return;
    }
    func->setAttr("loom.flops",
                  Builder(func.getContext()).getI64IntegerAttr(total));
  }
};

} // namespace
