//===- ReturnAllocations.cpp - Returned reshapes become allocations -------===//
//
// After bufferization: a function that returns a reshape of a buffer it
// allocates (the row expansion of a GEMM's product that its epilogue wrote
// in place, attention's heads) gets the buffer allocated in the returned
// shape instead, its other users seeing the reshape, so that
// buffer-results-to-out-params hands the caller's buffer to the producer
// rather than copying into it after the fact (see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/PatternMatch.h"

#define DEBUG_TYPE "loom-cpu-return-allocations"

namespace loom::cpu {
#define GEN_PASS_DEF_LOOMCPURETURNALLOCATIONS
#include "codegen/cpu/Passes.h.inc"
} // namespace loom::cpu

using namespace mlir;

namespace {

/// The allocation that `view` (an expand_shape or collapse_shape) reshapes,
/// when it is a plain one of this function: static, contiguous, with no
/// dynamic sizes or symbols.
memref::AllocOp reshapedAllocation(Operation *view) {
  Value source;
  if (auto expand = llvm::dyn_cast_or_null<memref::ExpandShapeOp>(view))
    source = expand.getSrc();
  else if (auto collapse =
               llvm::dyn_cast_or_null<memref::CollapseShapeOp>(view))
    source = collapse.getSrc();
  else
    return {};
  auto alloc = source.getDefiningOp<memref::AllocOp>();
  if (!alloc || !alloc.getType().getLayout().isIdentity() ||
      !alloc.getType().hasStaticShape() || !alloc.getDynamicSizes().empty() ||
      !alloc.getSymbolOperands().empty())
    return {};
  return alloc;
}

/// The reshape back from `view`'s shape to its source's: the inverse
/// reassociation.
Value reshapeBack(RewriterBase &rewriter, Operation *view, Value reshaped,
                  MemRefType sourceType) {
  Location loc = view->getLoc();
  if (auto expand = llvm::dyn_cast<memref::ExpandShapeOp>(view))
    return memref::CollapseShapeOp::create(rewriter, loc, sourceType, reshaped,
                                           expand.getReassociationIndices());
  auto collapse = llvm::cast<memref::CollapseShapeOp>(view);
  return memref::ExpandShapeOp::create(rewriter, loc, sourceType.getShape(),
                                       reshaped,
                                       collapse.getReassociationIndices());
}

struct LoomCpuReturnAllocations
    : public loom::cpu::impl::LoomCpuReturnAllocationsBase<
          LoomCpuReturnAllocations> {
  /// For each returned reshape of a local allocation that nothing else
  /// returns: allocate the returned shape, give the allocation's other
  /// users the reshape back, return the new allocation.
  void runOnOperation() override {
    IRRewriter rewriter(&getContext());
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      if (func.isExternal())
        continue;
      SmallVector<func::ReturnOp> returns;
      func.walk([&](func::ReturnOp ret) { returns.push_back(ret); });
      if (returns.size() != 1)
        continue;
      func::ReturnOp ret = returns.front();
      for (OpOperand &returned : ret->getOpOperands()) {
        Operation *view = returned.get().getDefiningOp();
        memref::AllocOp alloc = reshapedAllocation(view);
        if (!alloc)
          continue;
        // Returned once: the allocation itself (or a view of it) returned
        // twice would make two results one buffer.
        if (llvm::count_if(ret->getOperands(), [&](Value v) {
              return v == alloc.getResult() ||
                     reshapedAllocation(v.getDefiningOp()) == alloc;
            }) != 1)
          continue;
        auto viewType = llvm::cast<MemRefType>(view->getResult(0).getType());
        if (!viewType.getLayout().isIdentity())
          continue;
        rewriter.setInsertionPoint(alloc);
        auto fresh = memref::AllocOp::create(rewriter, alloc.getLoc(), viewType,
                                             alloc.getAlignmentAttr());
        Value back = reshapeBack(rewriter, view, fresh, alloc.getType());
        rewriter.replaceAllUsesExcept(alloc.getResult(), back, view);
        rewriter.replaceOp(view, fresh.getResult());
        rewriter.eraseOp(alloc);
      }
    }
  }
};

} // namespace
