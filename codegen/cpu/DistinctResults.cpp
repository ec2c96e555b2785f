//===- DistinctResults.cpp - One buffer per returned result ---------------===//

#include "codegen/cpu/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

#define DEBUG_TYPE "loom-cpu-distinct-results"

namespace loom::cpu {
#define GEN_PASS_DEF_LOOMCPUDISTINCTRESULTS
#include "codegen/cpu/Passes.h.inc"
} // namespace loom::cpu

using namespace mlir;

namespace {

struct LoomCpuDistinctResults
    : public loom::cpu::impl::LoomCpuDistinctResultsBase<
          LoomCpuDistinctResults> {
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
