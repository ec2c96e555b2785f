//===- ConcatInPlace.cpp - Pieces of a concatenation computed in place ----===//
//
// A bufferized `tensor.concat` is a buffer and a `memref.copy` of each piece
// into its slice. A piece that has a buffer of its own, used only before its
// copy, is computed in its slice instead: the concatenation's buffer becomes
// bytes, and it and each such piece are `memref.view`s of them with their
// old types, so that no user changes (a call that writes the piece as an
// out-param, a GEMM kernel's operand). The training step's flat gradient is
// the one that matters: every parameter's gradient copied once more per
// step (500 MB per GPT-2-small step, on one thread).
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"

#define DEBUG_TYPE "loom-cpu-concat-in-place"

namespace loom::cpu {
#define GEN_PASS_DEF_LOOMCPUCONCATINPLACE
#include "codegen/cpu/Passes.h.inc"
} // namespace loom::cpu

using namespace mlir;

namespace {

/// A static, identity-layout buffer of whole-byte elements, in `block`.
bool isPlainAlloc(memref::AllocOp alloc, Block &block) {
  MemRefType type = alloc.getType();
  return alloc->getBlock() == &block && type.hasStaticShape() &&
         type.getLayout().isIdentity() && !type.getMemorySpace() &&
         type.getElementType().isIntOrFloat() &&
         type.getElementTypeBitWidth() % 8 == 0;
}

/// Whether every user of `value` (and, through memref results, of what
/// aliases it) other than those in `except` sits in `block` before `limit`:
/// nothing reads or writes the buffer after it, and it does not escape.
bool usedOnlyBefore(Value value, Block &block, Operation *limit,
                    const llvm::SmallPtrSetImpl<Operation *> &except) {
  for (Operation *user : value.getUsers()) {
    if (except.contains(user))
      continue;
    if (llvm::isa<func::ReturnOp, scf::YieldOp>(user))
      return false;
    Operation *top = block.findAncestorOpInBlock(*user);
    if (!top || top == limit || !top->isBeforeInBlock(limit))
      return false;
    for (Value result : user->getResults())
      if (llvm::isa<BaseMemRefType>(result.getType()) &&
          !usedOnlyBefore(result, block, limit, except))
        return false;
  }
  return true;
}

/// A slice [offset, offset + size) of a 1-D buffer written by one copy.
struct Slice {
  memref::SubViewOp subview;
  memref::CopyOp copy;
  int64_t offset, size;
};

/// `user` as a static unit-stride slice of its source that only a copy
/// writes into.
std::optional<Slice> copiedSlice(Operation *user) {
  auto subview = llvm::dyn_cast<memref::SubViewOp>(user);
  if (!subview || !subview->hasOneUse())
    return std::nullopt;
  auto copy = llvm::dyn_cast<memref::CopyOp>(*subview->user_begin());
  if (!copy || copy.getTarget() != subview.getResult())
    return std::nullopt;
  ArrayRef<int64_t> offsets = subview.getStaticOffsets();
  ArrayRef<int64_t> sizes = subview.getStaticSizes();
  ArrayRef<int64_t> strides = subview.getStaticStrides();
  if (offsets.size() != 1 || ShapedType::isDynamic(offsets[0]) ||
      ShapedType::isDynamic(sizes[0]) || strides[0] != 1)
    return std::nullopt;
  return Slice{subview, copy, offsets[0], sizes[0]};
}

/// A piece that gets computed in its slice.
struct Piece {
  Slice slice;
  memref::CollapseShapeOp collapse; // the copy's source, when flattened
  memref::AllocOp alloc;
};

/// The piece `slice` copies, if its buffer can live in the slice.
std::optional<Piece> inPlacePiece(Slice slice, Type elementType, Block &block) {
  if (slice.copy->getBlock() != &block)
    return std::nullopt;
  Value source = slice.copy.getSource();
  auto collapse = source.getDefiningOp<memref::CollapseShapeOp>();
  if (collapse) {
    if (!collapse->hasOneUse())
      return std::nullopt;
    source = collapse.getSrc();
  }
  auto alloc = source.getDefiningOp<memref::AllocOp>();
  if (!alloc || !isPlainAlloc(alloc, block) ||
      alloc.getType().getElementType() != elementType ||
      alloc.getType().getNumElements() != slice.size)
    return std::nullopt;
  llvm::SmallPtrSet<Operation *, 2> except = {slice.copy};
  if (collapse)
    except.insert(collapse);
  if (!usedOnlyBefore(alloc.getResult(), block, slice.copy, except))
    return std::nullopt;
  return Piece{slice, collapse, alloc};
}

/// Computes in place the pieces of the concatenation in `result`, if any
/// qualify.
void concatInPlace(memref::AllocOp result, Block &block) {
  MemRefType type = result.getType();
  if (type.getRank() != 1 || !isPlainAlloc(result, block))
    return;
  Type elementType = type.getElementType();
  SmallVector<Piece> pieces;
  SmallVector<Slice> copied;        // slices that stay copies (constant zeros)
  SmallVector<Operation *> readers; // everything else
  for (Operation *user : result->getUsers()) {
    std::optional<Slice> slice = copiedSlice(user);
    if (!slice) {
      readers.push_back(user);
      continue;
    }
    if (std::optional<Piece> piece = inPlacePiece(*slice, elementType, block))
      pieces.push_back(*piece);
    else
      copied.push_back(*slice);
  }
  if (pieces.empty())
    return;
  // Whatever else uses the buffer comes after the last piece is in place
  // (the pieces are now written earlier than their copies were).
  Operation *lastCopy = pieces.front().slice.copy;
  for (const Piece &piece : pieces)
    if (lastCopy->isBeforeInBlock(piece.slice.copy))
      lastCopy = piece.slice.copy;
  for (Operation *reader : readers) {
    Operation *top = block.findAncestorOpInBlock(*reader);
    if (!top || !lastCopy->isBeforeInBlock(top))
      return;
  }
  // Slices overlap neither each other nor the copies that stay.
  SmallVector<std::pair<int64_t, int64_t>> ranges;
  for (const Piece &piece : pieces)
    ranges.emplace_back(piece.slice.offset,
                        piece.slice.offset + piece.slice.size);
  for (const Slice &slice : copied)
    ranges.emplace_back(slice.offset, slice.offset + slice.size);
  llvm::sort(ranges);
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second)
      return;

  // The bytes, allocated where the first of the buffers was.
  Operation *first = result;
  for (const Piece &piece : pieces)
    if (piece.alloc->isBeforeInBlock(first))
      first = piece.alloc;
  OpBuilder b(first);
  Location loc = result.getLoc();
  int64_t elementBytes = type.getElementTypeBitWidth() / 8;
  auto bytesType =
      MemRefType::get({type.getNumElements() * elementBytes}, b.getI8Type());
  uint64_t alignment =
      std::max<uint64_t>(result.getAlignment().value_or(0), 64);
  Value bytes = memref::AllocOp::create(b, loc, bytesType,
                                        b.getI64IntegerAttr(alignment));
  llvm::DenseMap<int64_t, Value> shifts;
  auto viewAt = [&](int64_t element, MemRefType viewType) -> Value {
    Value &shift = shifts[element * elementBytes];
    if (!shift)
      shift = arith::ConstantIndexOp::create(b, loc, element * elementBytes);
    return memref::ViewOp::create(b, loc, viewType, bytes, shift, ValueRange{});
  };
  // (Every view first: the builder's insertion point may be an op that
  // goes.)
  Value whole = viewAt(0, type);
  SmallVector<Value> views;
  for (Piece &piece : pieces)
    views.push_back(viewAt(piece.slice.offset, piece.alloc.getType()));
  result.replaceAllUsesWith(whole);
  result.erase();
  for (auto [piece, view] : llvm::zip(pieces, views)) {
    piece.slice.copy.erase();
    if (piece.collapse)
      piece.collapse.erase();
    piece.slice.subview.erase();
    piece.alloc.replaceAllUsesWith(view);
    piece.alloc.erase();
  }
}

struct LoomCpuConcatInPlace
    : public loom::cpu::impl::LoomCpuConcatInPlaceBase<LoomCpuConcatInPlace> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal())
      return;
    Block &entry = func.getBody().front();
    for (auto alloc : llvm::to_vector(entry.getOps<memref::AllocOp>()))
      concatInPlace(alloc, entry);
  }
};

} // namespace
