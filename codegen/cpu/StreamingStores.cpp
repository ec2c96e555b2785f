//===- StreamingStores.cpp - Non-temporal stores into large outputs -------===//
//
// See `loom-cpu-streaming-stores` in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

#include "llvm/ADT/SetVector.h"

#define DEBUG_TYPE "loom-cpu-streaming-stores"

namespace loom::cpu {
#define GEN_PASS_DEF_LOOMCPUSTREAMINGSTORES
#include "codegen/cpu/Passes.h.inc"
} // namespace loom::cpu

using namespace mlir;

namespace {

/// The buffer `view` is a view of (through subviews, reshapes and casts).
Value rootOf(Value view) {
  while (Operation *def = view.getDefiningOp()) {
    auto like = llvm::dyn_cast<ViewLikeOpInterface>(def);
    if (!like)
      break;
    view = like.getViewSource();
  }
  return view;
}

/// Whether `write` stores one contiguous row: no mask, in bounds, the
/// vector's dims before the last all 1, its last along the memref's last
/// dim, which has stride 1.
bool isContiguousRow(vector::TransferWriteOp write) {
  auto memref = llvm::dyn_cast<MemRefType>(write.getShapedType());
  VectorType vector = write.getVectorType();
  if (!memref || !memref.getElementType().isIntOrFloat() || write.getMask() ||
      vector.getRank() == 0 || !write.getPermutationMap().isMinorIdentity() ||
      !memref.isLastDimUnitStride())
    return false;
  for (bool inBounds : write.getInBoundsValues())
    if (!inBounds)
      return false;
  for (int64_t d : vector.getShape().drop_back())
    if (d != 1)
      return false;
  return vector.getRank() == int64_t(write.getIndices().size()) ||
         vector.getRank() == 1;
}

struct LoomCpuStreamingStores
    : public loom::cpu::impl::LoomCpuStreamingStoresBase<
          LoomCpuStreamingStores> {
  using Base::Base;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (!func.isPublic() || func.isExternal())
      return;
    Block &entry = func.getBody().front();
    SmallVector<vector::TransferWriteOp> writes;
    func.walk([&](vector::TransferWriteOp write) {
      if (!isContiguousRow(write))
        return;
      auto arg = llvm::dyn_cast<BlockArgument>(rootOf(write.getBase()));
      if (!arg || arg.getOwner() != &entry)
        return;
      auto type = llvm::dyn_cast<MemRefType>(arg.getType());
      if (!type || !type.hasStaticShape() ||
          !type.getElementType().isIntOrFloat() ||
          type.getNumElements() * ((type.getElementTypeBitWidth() + 7) / 8) <
              minBytes)
        return;
      writes.push_back(write);
    });
    // Where the fences go: inside the outermost parallel loop around a
    // store, at the end of its body (each thread fences its own stores
    // before the loop's end, where other threads may read them); else
    // right after the innermost loop around the store (before anything
    // after it, a parallel loop within the same outer loop included), or
    // after the store itself.
    llvm::SetVector<Operation *> parallelBodies, afterOps;
    OpBuilder b(&getContext());
    for (vector::TransferWriteOp write : writes) {
      Operation *parallel = nullptr, *innermost = nullptr;
      for (Operation *op = write->getParentOp(); op && op != func;
           op = op->getParentOp()) {
        if (llvm::isa<scf::ParallelOp, scf::ForallOp>(op))
          parallel = op;
        if (!innermost && llvm::isa<LoopLikeOpInterface>(op))
          innermost = op;
      }
      b.setInsertionPoint(write);
      Value row = write.getVector();
      VectorType type = write.getVectorType();
      if (type.getRank() > 1)
        row = vector::ShapeCastOp::create(
            b, write.getLoc(),
            VectorType::get({type.getShape().back()}, type.getElementType()),
            row);
      auto store =
          vector::StoreOp::create(b, write.getLoc(), row, write.getBase(),
                                  write.getIndices(), /*nontemporal=*/true);
      write.erase();
      if (parallel)
        parallelBodies.insert(parallel);
      else
        afterOps.insert(innermost ? innermost : store.getOperation());
    }
    for (Operation *loop : parallelBodies) {
      Block &body = loop->getRegion(0).front();
      b.setInsertionPoint(body.getTerminator());
      LLVM::FenceOp::create(b, loop->getLoc(), LLVM::AtomicOrdering::seq_cst);
    }
    for (Operation *op : afterOps) {
      b.setInsertionPointAfter(op);
      LLVM::FenceOp::create(b, op->getLoc(), LLVM::AtomicOrdering::seq_cst);
    }
  }
};

} // namespace
