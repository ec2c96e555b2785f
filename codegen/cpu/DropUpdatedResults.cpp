//===- DropUpdatedResults.cpp - Updated arguments leave the results ------===//

#include "codegen/cpu/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/BuiltinOps.h"

#include "llvm/ADT/BitVector.h"

#define DEBUG_TYPE "loom-cpu-drop-updated-results"

namespace loom::cpu {
#define GEN_PASS_DEF_LOOMCPUDROPUPDATEDRESULTS
#include "codegen/cpu/Passes.h.inc"
} // namespace loom::cpu

using namespace mlir;

namespace {

/// `value` without the memref.casts around it.
Value stripCasts(Value value) {
  while (auto cast = value.getDefiningOp<memref::CastOp>())
    value = cast.getSource();
  return value;
}

struct LoomCpuDropUpdatedResults
    : public loom::cpu::impl::LoomCpuDropUpdatedResultsBase<
          LoomCpuDropUpdatedResults> {
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
