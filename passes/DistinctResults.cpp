//===- DistinctResults.cpp - One buffer per returned result ---------------===//

#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

#define DEBUG_TYPE "loom-distinct-results"

namespace loom {
#define GEN_PASS_DEF_LOOMDISTINCTRESULTS
#include "passes/Passes.h.inc"
} // namespace loom

using namespace mlir;

namespace {

struct LoomDistinctResults
    : public loom::impl::LoomDistinctResultsBase<LoomDistinctResults> {
  void runOnOperation() override {
    getOperation().walk([](func::ReturnOp ret) {
      llvm::SmallPtrSet<Value, 4> seen;
      OpBuilder b(ret);
      for (OpOperand &operand : ret->getOpOperands()) {
        Value value = operand.get();
        auto type = llvm::dyn_cast<MemRefType>(value.getType());
        if (seen.insert(value).second || !type || !type.hasStaticShape())
          continue;
        auto fresh = MemRefType::get(type.getShape(), type.getElementType());
        Value copy = memref::AllocOp::create(b, ret.getLoc(), fresh);
        memref::CopyOp::create(b, ret.getLoc(), value, copy);
        operand.set(copy);
      }
    });
  }
};

} // namespace
