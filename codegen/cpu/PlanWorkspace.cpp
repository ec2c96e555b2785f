//===- PlanWorkspace.cpp - One compile-time planned workspace -------------===//

#include "codegen/cpu/Gemm.h"
#include "codegen/cpu/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

#include <map>

#define DEBUG_TYPE "loom-cpu-plan-workspace"

namespace loom::cpu {
#define GEN_PASS_DEF_LOOMCPUPLANWORKSPACE
#include "codegen/cpu/Passes.h.inc"
} // namespace loom::cpu

using namespace mlir;

namespace {

constexpr int64_t kAlign = 64;

struct Buffer {
  memref::AllocOp alloc;
  int64_t bytes = 0;
  int64_t start = 0, end = 0; // positions of top-level ops, inclusive
  int64_t offset = 0;
};

/// The ancestor of `op` in `block` (`op` itself when it is in `block`).
Operation *ancestorIn(Block &block, Operation *op) {
  return block.findAncestorOpInBlock(*op);
}

/// Extends `buffer` over every (transitive) user of `value`; returns false
/// when the buffer escapes or crosses loop iterations.
bool collectLifetime(Value value, Block &entry,
                     const DenseMap<Operation *, int64_t> &position,
                     Buffer &buffer) {
  for (Operation *user : value.getUsers()) {
    if (llvm::isa<func::ReturnOp, scf::YieldOp>(user))
      return false;
    // A callee without memref results (every function after
    // buffer-results-to-out-params, and the kernels) cannot keep the buffer
    // past the call.
    if (llvm::isa<func::CallOp>(user) &&
        llvm::any_of(user->getResultTypes(), llvm::IsaPred<BaseMemRefType>))
      return false;
    if (llvm::isa<memref::DeallocOp>(user))
      continue;
    Operation *top = ancestorIn(entry, user);
    if (!top)
      return false;
    buffer.end = std::max(buffer.end, position.lookup(top));
    // Any memref result of a user may alias the buffer (views, but also
    // scf.for / scf.while / scf.if results and arith.select): follow them.
    for (Value result : user->getResults())
      if (llvm::isa<BaseMemRefType>(result.getType()) &&
          !collectLifetime(result, entry, position, buffer))
        return false;
  }
  return true;
}

struct LoomCpuPlanWorkspace
    : public loom::cpu::impl::LoomCpuPlanWorkspaceBase<LoomCpuPlanWorkspace> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    for (auto func : llvm::to_vector(module.getOps<func::FuncOp>()))
      if (!func.isExternal())
        plan(module, func);
  }

  /// 1. Number the entry block's ops; find plannable allocs and lifetimes.
  /// 2. Pack them first-fit by start time.
  /// 3. Create the workspace global and turn allocs into views of it.
  void plan(ModuleOp module, func::FuncOp func) {
    Block &entry = func.getBody().front();
    DenseMap<Operation *, int64_t> position;
    int64_t index = 0;
    for (Operation &op : entry)
      position[&op] = index++;
    // A GEMM's epilogue generic (loom-cpu-fuse-gemm-epilogues) runs inside
    // the GEMM's kernel call: its buffers live from the GEMM on.
    std::map<int64_t, int64_t> gemmAt;
    func.walk([&](Operation *op) {
      if (auto id = op->getAttrOfType<IntegerAttr>(loom::cpu::kEpilogueAttr))
        if (Operation *top = ancestorIn(entry, op)) {
          auto [it, added] = gemmAt.emplace(id.getInt(), position.lookup(top));
          if (!added)
            it->second = std::min(it->second, position.lookup(top));
        }
    });
    for (Operation &op : entry)
      if (auto id = op.getAttrOfType<IntegerAttr>(loom::cpu::kEpilogueOfAttr))
        if (auto it = gemmAt.find(id.getInt()); it != gemmAt.end())
          position[&op] = it->second;

    std::vector<Buffer> buffers;
    func.walk([&](memref::AllocOp alloc) {
      MemRefType type = alloc.getType();
      if (!type.hasStaticShape() || !type.getLayout().isIdentity() ||
          type.getMemorySpace() || !alloc.getDynamicSizes().empty())
        return;
      // One slot per allocation site would be shared by concurrent
      // iterations of a parallel loop.
      if (alloc->getParentOfType<scf::ForallOp>() ||
          alloc->getParentOfType<scf::ParallelOp>())
        return;
      if (!type.getElementType().isIntOrFloat())
        return;
      unsigned bits = type.getElementTypeBitWidth();
      if (bits % 8 != 0 && bits != 1)
        return;
      Buffer buffer;
      buffer.alloc = alloc;
      int64_t elementBytes = std::max<int64_t>(1, bits / 8);
      buffer.bytes =
          llvm::alignTo(type.getNumElements() * elementBytes, kAlign);
      Operation *top = ancestorIn(entry, alloc);
      buffer.start = buffer.end = position.lookup(top);
      if (!collectLifetime(alloc.getResult(), entry, position, buffer))
        return;
      buffers.push_back(buffer);
    });
    if (buffers.empty())
      return;

    // First fit: a buffer may reuse bytes of buffers that died before it.
    std::sort(
        buffers.begin(), buffers.end(),
        [](const Buffer &a, const Buffer &b) { return a.start < b.start; });
    std::vector<const Buffer *> placed;
    int64_t total = 0;
    for (Buffer &buffer : buffers) {
      std::vector<std::pair<int64_t, int64_t>> busy; // [offset, offset+bytes)
      for (const Buffer *other : placed)
        if (other->end >= buffer.start)
          busy.emplace_back(other->offset, other->offset + other->bytes);
      std::sort(busy.begin(), busy.end());
      int64_t offset = 0;
      for (auto [lo, hi] : busy) {
        if (offset + buffer.bytes <= lo)
          break;
        offset = std::max(offset, hi);
      }
      buffer.offset = offset;
      total = std::max(total, offset + buffer.bytes);
      placed.push_back(&buffer);
    }

    OpBuilder b(module.getContext());
    b.setInsertionPoint(func);
    auto wsType = MemRefType::get({total}, b.getI8Type());
    std::string name = "__loom_workspace_" + func.getSymName().str();
    auto global = memref::GlobalOp::create(
        b, func.getLoc(), name, b.getStringAttr("private"), wsType,
        b.getUnitAttr(), /*constant=*/false, b.getI64IntegerAttr(kAlign));
    b.setInsertionPointToStart(&entry);
    Value ws = memref::GetGlobalOp::create(b, func.getLoc(), wsType,
                                           global.getSymName());
    for (Buffer &buffer : buffers) {
      b.setInsertionPoint(buffer.alloc);
      Value offset = arith::ConstantIndexOp::create(b, buffer.alloc.getLoc(),
                                                    buffer.offset);
      Value view = memref::ViewOp::create(b, buffer.alloc.getLoc(),
                                          buffer.alloc.getType(), ws, offset,
                                          ValueRange{});
      for (Operation *user : llvm::to_vector(buffer.alloc->getUsers()))
        if (llvm::isa<memref::DeallocOp>(user))
          user->erase();
      buffer.alloc.replaceAllUsesWith(view);
      buffer.alloc.erase();
    }
    func->setAttr("loom.workspace_bytes", b.getI64IntegerAttr(total));
  }
};

} // namespace
