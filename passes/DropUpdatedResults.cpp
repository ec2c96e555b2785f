//===- DropUpdatedResults.cpp - Updated arguments leave the results ------===//

#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/BuiltinOps.h"

#include "llvm/ADT/BitVector.h"

#define DEBUG_TYPE "loom-drop-updated-results"

namespace loom {
#define GEN_PASS_DEF_LOOMDROPUPDATEDRESULTS
#include "passes/Passes.h.inc"
} // namespace loom

using namespace mlir;

namespace {

/// `value` without the memref.casts around it.
Value stripCasts(Value value) {
  while (auto cast = value.getDefiningOp<memref::CastOp>())
    value = cast.getSource();
  return value;
}

struct LoomDropUpdatedResults
    : public loom::impl::LoomDropUpdatedResultsBase<LoomDropUpdatedResults> {
  void runOnOperation() override {
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      if (func.isExternal())
        continue;
      llvm::BitVector drop(func.getNumResults());
      for (unsigned i = 0; i < func.getNumResults(); ++i) {
        auto updates = func.getResultAttrOfType<IntegerAttr>(i, "loom.updates");
        if (!updates)
          continue;
        int64_t arg = updates.getInt();
        for (Block &block : func.getBody()) {
          auto ret = llvm::dyn_cast<func::ReturnOp>(block.getTerminator());
          if (!ret)
            continue;
          if (arg < 0 || arg >= int64_t(func.getNumArguments())) {
            func.emitError() << "result #" << i << ": loom.updates = " << arg
                             << " names no argument";
            return signalPassFailure();
          }
          // A new value (an LSTM's final state) is copied into the argument.
          Value returned = stripCasts(ret.getOperand(i));
          if (returned != func.getArgument(arg)) {
            OpBuilder b(ret);
            memref::CopyOp::create(b, ret.getLoc(), ret.getOperand(i),
                                   func.getArgument(arg));
          }
        }
        // The caller's buffer is read and written: a GPU host uploads it
        // before the launches and copies it back after.
        func.setArgAttr(arg, "loom.updated", UnitAttr::get(func.getContext()));
        drop.set(i);
      }
      if (drop.none())
        continue;
      for (Block &block : func.getBody())
        if (auto ret = llvm::dyn_cast<func::ReturnOp>(block.getTerminator()))
          ret->eraseOperands(drop);
      if (failed(func.eraseResults(drop)))
        return signalPassFailure();
    }
  }
};

} // namespace
