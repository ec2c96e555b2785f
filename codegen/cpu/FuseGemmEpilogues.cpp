//===- FuseGemmEpilogues.cpp - Elementwise consumers as GEMM epilogues ----===//
//
// On tensors: pairs each kernel GEMM with the elementwise generic that
// reads its product, so that loom-cpu-gemm-to-call runs the generic's body
// on each tile of the product inside the kernel (see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/Gemm.h"
#include "codegen/cpu/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Dominance.h"
#include "mlir/IR/IRMapping.h"

#define DEBUG_TYPE "loom-cpu-fuse-gemm-epilogues"

namespace loom::cpu {
#define GEN_PASS_DEF_LOOMCPUFUSEGEMMEPILOGUES
#include "codegen/cpu/Passes.h.inc"
} // namespace loom::cpu

using namespace mlir;

namespace {

bool isF32Tensor(Type type) {
  auto tensor = llvm::dyn_cast<RankedTensorType>(type);
  return tensor && tensor.hasStaticShape() && tensor.getElementType().isF32();
}

/// A body that the epilogue compiler can turn into vector code: scalar
/// arith and math ops without regions, reading only block arguments, other
/// body values and constants defined outside.
bool isElementwiseBody(linalg::GenericOp generic) {
  Block &body = generic.getRegion().front();
  // What it yields is computed in the body (not captured from outside).
  for (Value yielded : body.getTerminator()->getOperands())
    if (yielded.getParentRegion() != &generic.getRegion())
      return false;
  for (Operation &op : body.without_terminator()) {
    if (!llvm::isa<arith::ArithDialect, math::MathDialect>(op.getDialect()) ||
        op.getNumRegions() != 0 || llvm::isa<arith::ConstantOp>(op))
      return false;
    for (Type t : llvm::concat<Type>(op.getOperandTypes(), op.getResultTypes()))
      if (!t.isIntOrIndexOrFloat())
        return false;
    for (Value operand : op.getOperands()) {
      if (operand.getParentRegion() == &generic.getRegion())
        continue;
      if (!operand.getDefiningOp<arith::ConstantOp>())
        return false;
    }
  }
  return true;
}

/// Whether operand `map` of the epilogue reads a row-major block of the
/// product: a projected permutation (broadcast zeros allowed) in which the
/// last loop (the product's columns) is either the last result or absent.
bool readsRowsOf(AffineMap map, unsigned loops) {
  if (!map.isProjectedPermutation(/*allowZeroInResults=*/true))
    return false;
  for (auto [pos, expr] : llvm::enumerate(map.getResults())) {
    auto dim = llvm::dyn_cast<AffineDimExpr>(expr);
    if (dim && dim.getPosition() == loops - 1 && pos + 1 != map.getNumResults())
      return false;
  }
  return true;
}

/// The epilogue of `gemm` (its product `product`, perhaps expanded by
/// `expand`), if `generic` qualifies.
bool qualifies(linalg::GenericOp generic, Value read, Operation *gemm,
               DominanceInfo &dominance) {
  if (generic->hasAttr(loom::cpu::kEpilogueOfAttr) ||
      generic->getBlock() != gemm->getBlock() ||
      generic.getNumReductionLoops() != 0 || generic.getNumDpsInits() == 0 ||
      !generic.hasPureTensorSemantics())
    return false;
  unsigned loops = generic.getNumLoops();
  auto readType = llvm::cast<RankedTensorType>(read.getType());
  if (readType.getRank() != loops)
    return false;
  bool seen = false;
  for (OpOperand &operand : generic->getOpOperands()) {
    AffineMap map = generic.getMatchingIndexingMap(&operand);
    if (!isF32Tensor(operand.get().getType()))
      return false;
    if (generic.isDpsInit(&operand)) {
      if (!map.isIdentity() || generic.payloadUsesValueFromOperand(&operand))
        return false;
      continue;
    }
    if (operand.get() == read) {
      if (seen || !map.isIdentity())
        return false;
      seen = true;
      continue;
    }
    if (!readsRowsOf(map, loops) ||
        !dominance.properlyDominates(operand.get(), gemm))
      return false;
  }
  if (!seen || !isElementwiseBody(generic))
    return false;
  // Constants the body captures must exist at the GEMM already.
  for (Operation &op : generic.getRegion().front().without_terminator())
    for (Value operand : op.getOperands())
      if (operand.getParentRegion() != &generic.getRegion() &&
          !dominance.properlyDominates(operand, gemm))
        return false;
  return true;
}

/// `user` as an expansion of a product's rows into leading dims with the
/// columns kept last (the kernel's blocks are rows of C), or null.
tensor::ExpandShapeOp rowExpansion(Operation *user) {
  auto e = llvm::dyn_cast<tensor::ExpandShapeOp>(user);
  if (!e)
    return {};
  SmallVector<ReassociationIndices> groups = e.getReassociationIndices();
  return groups.size() == 2 && groups[1].size() == 1 ? e
                                                     : tensor::ExpandShapeOp();
}

/// Merges `siblings` (elementwise generics over the same loops, in block
/// order) into one generic with all their outputs, created before the last
/// of them: inputs that two read with the same map are passed once, each
/// body is cloned in turn and the results yielded in order. Returns null
/// (changing nothing) when a result of an earlier sibling is used before
/// the last sibling, where the merged op will be.
linalg::GenericOp mergeSiblings(ArrayRef<linalg::GenericOp> siblings,
                                MLIRContext *context) {
  linalg::GenericOp last = siblings.back();
  for (linalg::GenericOp g : siblings.drop_back())
    for (Operation *user : g->getUsers())
      if (user->getBlock() != last->getBlock() || !last->isBeforeInBlock(user))
        return {};
  SmallVector<Value> inputs, inits;
  SmallVector<AffineMap> inputMaps, initMaps;
  // Per sibling: where each of its block arguments comes from in the
  // merged op (inputs first, then outputs).
  SmallVector<SmallVector<unsigned>> argIndex;
  for (linalg::GenericOp g : siblings) {
    SmallVector<unsigned> &index = argIndex.emplace_back();
    for (OpOperand *in : g.getDpsInputOperands()) {
      AffineMap map = g.getMatchingIndexingMap(in);
      unsigned i = 0;
      while (i < inputs.size() &&
             (inputs[i] != in->get() || inputMaps[i] != map))
        ++i;
      if (i == inputs.size()) {
        inputs.push_back(in->get());
        inputMaps.push_back(map);
      }
      index.push_back(i);
    }
    for (OpOperand &init : g.getDpsInitsMutable()) {
      index.push_back(~unsigned(inits.size())); // resolved below
      inits.push_back(init.get());
      initMaps.push_back(g.getMatchingIndexingMap(&init));
    }
  }
  SmallVector<AffineMap> maps(inputMaps);
  maps.append(initMaps);
  SmallVector<Type> resultTypes;
  for (Value init : inits)
    resultTypes.push_back(init.getType());
  IRRewriter rewriter(context);
  rewriter.setInsertionPoint(last);
  auto merged = linalg::GenericOp::create(
      rewriter, last.getLoc(), resultTypes, inputs, inits, maps,
      last.getIteratorTypesArray(),
      [&](OpBuilder &b, Location loc, ValueRange args) {
        SmallVector<Value> yielded;
        for (auto [sibling, index] : llvm::zip(siblings, argIndex)) {
          linalg::GenericOp g = sibling;
          IRMapping mapping;
          Block &body = g.getRegion().front();
          for (auto [arg, i] : llvm::zip(body.getArguments(), index))
            mapping.map(arg, int(i) < 0 ? args[inputs.size() + ~i] : args[i]);
          for (Operation &op : body.without_terminator())
            b.clone(op, mapping);
          for (Value v : body.getTerminator()->getOperands())
            yielded.push_back(mapping.lookupOrDefault(v));
        }
        linalg::YieldOp::create(b, loc, yielded);
      });
  unsigned next = 0;
  for (linalg::GenericOp g : siblings) {
    unsigned count = g->getNumResults();
    rewriter.replaceOp(g, merged->getResults().slice(next, count));
    next += count;
  }
  return merged;
}

/// The product's consumers as one epilogue: when `read` (the product or
/// its row expansion) is read by several generics that each qualify (the
/// pre-activation and its GELU, both kept for the backward), they become
/// one generic with both outputs, which then qualifies itself.
void mergeConsumers(Value read, Operation *gemm, DominanceInfo &dominance,
                    MLIRContext *context) {
  SmallVector<linalg::GenericOp> siblings;
  for (Operation *user : read.getUsers()) {
    auto generic = llvm::dyn_cast<linalg::GenericOp>(user);
    if (!generic || !qualifies(generic, read, gemm, dominance) ||
        llvm::is_contained(siblings, generic))
      return;
    siblings.push_back(generic);
  }
  if (siblings.size() < 2)
    return;
  llvm::sort(siblings, [](linalg::GenericOp a, linalg::GenericOp b) {
    return a->isBeforeInBlock(b);
  });
  if (!llvm::all_of(siblings, [&](linalg::GenericOp g) {
        return g.getIteratorTypesArray() ==
               siblings.front().getIteratorTypesArray();
      }))
    return;
  if (mergeSiblings(siblings, context))
    dominance.invalidate();
}

/// When the product's only reader (through the expansion of its rows, if
/// any) is a generic that reads values computed between the two (the
/// embedding gradient added to a tied head's), moves the GEMM (and the
/// expansion) right before it if it then qualifies as the epilogue; else
/// puts them back. The GEMM's operands dominate its old place, so they
/// dominate the new one.
void sinkToConsumer(Operation *gemm, DominanceInfo &dominance) {
  Value product = gemm->getResult(0);
  if (!product.hasOneUse())
    return;
  Operation *user = *product.getUsers().begin();
  Value read = product;
  tensor::ExpandShapeOp expand = rowExpansion(user);
  if (expand) {
    if (!expand.getResult().hasOneUse())
      return;
    read = expand.getResult();
    user = *read.getUsers().begin();
  }
  auto generic = llvm::dyn_cast<linalg::GenericOp>(user);
  if (!generic || generic->getBlock() != gemm->getBlock() ||
      generic->hasAttr(loom::cpu::kEpilogueOfAttr) ||
      qualifies(generic, read, gemm, dominance))
    return;
  // Where each goes back to: the next op that stays put.
  auto anchor = [&](Operation *op) {
    Operation *next = op->getNextNode();
    while (next == gemm || (expand && next == expand.getOperation()))
      next = next->getNextNode();
    return next;
  };
  Operation *gemmAnchor = anchor(gemm);
  Operation *expandAnchor = expand ? anchor(expand) : nullptr;
  gemm->moveBefore(generic);
  if (expand)
    expand->moveBefore(generic);
  if (qualifies(generic, read, gemm, dominance))
    return;
  gemm->moveBefore(gemmAnchor);
  if (expand)
    expand->moveBefore(expandAnchor);
}

struct LoomCpuFuseGemmEpilogues
    : public loom::cpu::impl::LoomCpuFuseGemmEpiloguesBase<
          LoomCpuFuseGemmEpilogues> {
  /// 1. Find the 2-D GEMMs whose product's columns are contiguous.
  /// 2. For each, the first qualifying generic reading the product (or its
  ///    row expansion, used by nothing else).
  /// 3. Move the expansion and the generic right after the GEMM, give the
  ///    generic fresh outputs made before the GEMM, tag both.
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    DominanceInfo dominance(func);
    int64_t next = 0;
    func.walk([&](linalg::LinalgOp op) {
      if (op->getParentOfType<func::FuncOp>() != func)
        return;
      if (auto id = op->getAttrOfType<IntegerAttr>(loom::cpu::kEpilogueAttr))
        next = std::max(next, id.getInt() + 1);
    });
    SmallVector<linalg::LinalgOp> gemms;
    func.walk([&](linalg::LinalgOp op) {
      std::optional<loom::cpu::GemmLoops> loops = loom::cpu::matchGemm(op);
      if (!loops || loops->batch >= 0 || !op.hasPureTensorSemantics() ||
          op->hasAttr(loom::cpu::kEpilogueAttr))
        return;
      // C(m, n) in that order: the kernel's tiles are rows of C.
      AffineMap cMap = op.getIndexingMapsArray()[2];
      if (cMap.getNumResults() != 2 ||
          cMap.getDimPosition(0) != unsigned(loops->m) ||
          cMap.getDimPosition(1) != unsigned(loops->n))
        return;
      gemms.push_back(op);
    });
    for (linalg::LinalgOp gemm : gemms) {
      Value product = gemm->getResult(0);
      sinkToConsumer(gemm, dominance);
      // Consumers that would each qualify, merged first.
      if (product.hasOneUse())
        if (tensor::ExpandShapeOp e = rowExpansion(*product.getUsers().begin()))
          mergeConsumers(e.getResult(), gemm, dominance, &getContext());
      mergeConsumers(product, gemm, dominance, &getContext());
      tensor::ExpandShapeOp expand;
      linalg::GenericOp epilogue;
      for (Operation *user : product.getUsers()) {
        Value read = product;
        tensor::ExpandShapeOp candidateExpand;
        if (llvm::isa<tensor::ExpandShapeOp>(user)) {
          tensor::ExpandShapeOp e = rowExpansion(user);
          if (!e || !e.getResult().hasOneUse())
            continue;
          candidateExpand = e;
          read = e.getResult();
          user = *read.getUsers().begin();
        }
        auto generic = llvm::dyn_cast<linalg::GenericOp>(user);
        if (!generic || !qualifies(generic, read, gemm, dominance))
          continue;
        if (epilogue && epilogue->isBeforeInBlock(generic))
          continue; // keep the first in block order
        epilogue = generic;
        expand = candidateExpand;
      }
      if (!epilogue)
        continue;
      IRRewriter rewriter(&getContext());
      Value read = expand ? expand.getResult() : product;
      // The first output of the product's type is written over the product
      // when nothing else reads it: each block of C becomes the epilogue's
      // result while it is still in cache (elementwise, each element read
      // before it is written), instead of the result streaming to a buffer
      // of its own. The other outputs are fresh, made before the GEMM (the
      // generic's own may be computed later, or be in place on an input).
      // (An allocation, not a tensor.empty: CSE would merge empties, and
      // bufferization could then put the epilogue's output in place of the
      // GEMM's own input, which the kernel reads while the epilogue runs.)
      bool overProduct = read.hasOneUse() && product.hasOneUse();
      rewriter.setInsertionPoint(gemm);
      for (OpOperand &init : epilogue.getDpsInitsMutable()) {
        auto type = llvm::cast<RankedTensorType>(init.get().getType());
        Value out;
        if (overProduct && type == read.getType()) {
          out = read;
          overProduct = false;
        } else {
          out = bufferization::AllocTensorOp::create(
              rewriter, epilogue.getLoc(), type, ValueRange{});
        }
        rewriter.modifyOpInPlace(epilogue, [&] { init.set(out); });
      }
      Operation *after = gemm;
      if (expand) {
        expand->moveAfter(after);
        after = expand;
      }
      epilogue->moveAfter(after);
      auto id = rewriter.getI64IntegerAttr(next++);
      gemm->setAttr(loom::cpu::kEpilogueAttr, id);
      epilogue->setAttr(loom::cpu::kEpilogueOfAttr, id);
      for (OpOperand *input : epilogue.getDpsInputOperands())
        if (input->get() == read)
          epilogue->setAttr(
              loom::cpu::kEpilogueOperandAttr,
              rewriter.getI64IntegerAttr(input->getOperandNumber()));
    }
  }
};

} // namespace
