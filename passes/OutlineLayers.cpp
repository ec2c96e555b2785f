//===- OutlineLayers.cpp - One function per repeated layer ----------------===//
//
// The frontend inlines every layer of `repeat(n)`; autodiff and the optimizer
// work on that straight-line code. Before lowering, this pass finds the
// layers again (each op's location names its instance, `blocks[2].attn`),
// splits each layer's ops into convex phases (the forward, and the backward
// that runs after the later layers), proves the instances of a phase
// isomorphic op by op, and replaces them by calls to one private function:
// everything after this pass lowers, vectorizes and compiles a layer once.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "ir/LoomOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/OperationSupport.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/StringMap.h"

#include <functional>
#include <map>

namespace loom {
#define GEN_PASS_DEF_LOOMOUTLINELAYERS
#include "passes/Passes.h.inc"
} // namespace loom

using namespace mlir;

namespace {

/// The repeat instance an op belongs to: `blocks[2].attn.query` at
/// nn.loom:25:12 is layer 2 of `blocks`, at `.attn.query@nn.loom:25:12`.
struct LayerTag {
  std::string layers; // the repeat: "blocks"
  int64_t index = 0;  // the layer
  std::string site;   // the rest of the path and the source position
};

std::optional<LayerTag> tagOfName(NameLoc loc) {
  StringRef name = loc.getName().getValue();
  size_t open = name.find('[');
  if (open == StringRef::npos || open == 0)
    return std::nullopt;
  size_t close = name.find(']', open);
  if (close == StringRef::npos)
    return std::nullopt;
  LayerTag tag;
  if (name.substr(open + 1, close - open - 1).getAsInteger(10, tag.index))
    return std::nullopt;
  tag.layers = name.substr(0, open).str();
  tag.site = name.substr(close + 1).str();
  if (auto pos = llvm::dyn_cast<FileLineColLoc>(loc.getChildLoc()))
    tag.site += "@" + pos.getFilename().str() + ":" +
                std::to_string(pos.getLine()) + ":" +
                std::to_string(pos.getColumn());
  return tag;
}

/// The layer of `loc`; none for locations outside layers or fused from
/// several layers (ops that CSE merged across layers).
std::optional<LayerTag> tagOf(Location loc) {
  if (auto name = llvm::dyn_cast<NameLoc>(loc))
    return tagOfName(name);
  if (auto site = llvm::dyn_cast<CallSiteLoc>(loc))
    return tagOf(site.getCallee());
  if (auto fused = llvm::dyn_cast<FusedLoc>(loc)) {
    std::optional<LayerTag> tag;
    for (Location part : fused.getLocations()) {
      std::optional<LayerTag> t = tagOf(part);
      if (!t)
        continue;
      if (tag && (tag->layers != t->layers || tag->index != t->index))
        return std::nullopt;
      if (!tag)
        tag = t;
    }
    return tag;
  }
  return std::nullopt;
}

/// Calls `fn(value)` for each value `op` or its regions read from outside
/// `op`.
void forEachInput(Operation *op, function_ref<void(Value)> fn) {
  for (Value v : op->getOperands())
    fn(v);
  if (op->getNumRegions() == 0)
    return;
  op->walk([&](Operation *nested) {
    if (nested == op)
      return;
    for (Value v : nested->getOperands())
      if (!op->isAncestor(v.getParentRegion()->getParentOp()))
        fn(v);
  });
}

/// A pure op without operands (constant, empty tensor, fill): cloned into
/// the outlined function rather than passed to it.
bool isRematerializable(Value v) {
  Operation *def = v.getDefiningOp();
  return def && def->getNumOperands() == 0 && def->getNumRegions() == 0 &&
         isMemoryEffectFree(def);
}

/// The ops of one phase of one layer, in block order.
struct Piece {
  int64_t index = 0;
  SmallVector<Operation *> ops;
  llvm::DenseSet<Operation *> set;
  bool contains(Value v) const {
    Operation *def = v.getDefiningOp();
    return def && set.contains(def);
  }
};

/// A layer proven equal to its class representative: the representative's
/// ops and values mapped to its own.
struct Member {
  Piece *piece;
  DenseMap<Operation *, Operation *> ops;
  DenseMap<Value, Value> externals;
  /// The static offsets of each extract_slice of a non-layer value (a
  /// parameter), by representative op.
  DenseMap<Operation *, SmallVector<int64_t>> offsets;
};

struct Class {
  Piece *rep;
  SmallVector<Value> externals; // the representative's, in first-use order
  SmallVector<Member> members;
};

bool isParameterSlice(Operation *op, const Piece &piece) {
  auto slice = llvm::dyn_cast<tensor::ExtractSliceOp>(op);
  return slice && slice.getOffsets().empty() && slice.getSizes().empty() &&
         slice.getStrides().empty() && !piece.contains(slice.getSource());
}

/// Proves `piece` isomorphic to `cls.rep` (another piece), pairing ops by
/// their site and checking types, attributes and every operand. Fills
/// `member`.
bool match(Class &cls, Piece &piece, Member &member) {
  Piece &rep = *cls.rep;
  if (rep.ops.size() != piece.ops.size())
    return false;
  auto keysOf = [](Piece &p) {
    SmallVector<std::string> keys;
    llvm::StringMap<int> seen;
    for (Operation *op : p.ops) {
      std::string key =
          tagOf(op->getLoc())->site + "|" + op->getName().getStringRef().str();
      key += "#" + std::to_string(seen[key]++);
      keys.push_back(std::move(key));
    }
    return keys;
  };
  llvm::StringMap<Operation *> byKey;
  for (auto [key, op] : llvm::zip_equal(keysOf(piece), piece.ops))
    byKey[key] = op;
  member.piece = &piece;
  for (auto [key, op] : llvm::zip_equal(keysOf(rep), rep.ops)) {
    Operation *other = byKey.lookup(key);
    if (!other)
      return false;
    member.ops[op] = other;
  }

  DenseMap<Value, Value> marked;
  auto checkValue = [&](Value a, Value b) -> LogicalResult {
    if (Value m = marked.lookup(a))
      return success(m == b);
    if (rep.contains(a)) {
      auto res = llvm::cast<OpResult>(a);
      return success(b.getDefiningOp() == member.ops.lookup(res.getOwner()) &&
                     llvm::cast<OpResult>(b).getResultNumber() ==
                         res.getResultNumber());
    }
    // Outside values are paired below (equal values are not offered here).
    return success(!piece.contains(b));
  };
  auto markValue = [&](Value a, Value b) { marked[a] = b; };

  for (Operation *op : rep.ops) {
    Operation *other = member.ops.lookup(op);
    if (isParameterSlice(op, rep)) {
      auto a = llvm::cast<tensor::ExtractSliceOp>(op);
      auto b = llvm::dyn_cast<tensor::ExtractSliceOp>(other);
      if (!b || !isParameterSlice(b, piece) || a.getType() != b.getType() ||
          a.getStaticSizes() != b.getStaticSizes() ||
          a.getStaticStrides() != b.getStaticStrides() ||
          failed(checkValue(a.getSource(), b.getSource())))
        return false;
      member.offsets[op] = llvm::to_vector(b.getStaticOffsets());
      continue;
    }
    if (!OperationEquivalence::isEquivalentTo(
            op, other, checkValue, markValue,
            OperationEquivalence::IgnoreLocations))
      return false;
  }

  // Outside values: clones must be equal; the others paired one to one.
  DenseMap<Value, Value> reverse;
  auto pairOutside = [&](Value a, Value b) {
    if (rep.contains(a))
      return true;
    // An outside value of the same type, defined at the layers' level
    // (not inside one of the member's ops).
    if (a.getType() != b.getType() || piece.contains(b) ||
        b.getParentRegion() != piece.ops.front()->getParentRegion())
      return false;
    if (isRematerializable(a))
      return a == b || (isRematerializable(b) &&
                        llvm::cast<OpResult>(a).getResultNumber() ==
                            llvm::cast<OpResult>(b).getResultNumber() &&
                        OperationEquivalence::isEquivalentTo(
                            a.getDefiningOp(), b.getDefiningOp(),
                            OperationEquivalence::IgnoreLocations));
    auto [it, inserted] = member.externals.try_emplace(a, b);
    if (!inserted && it->second != b)
      return false;
    auto [back, fresh] = reverse.try_emplace(b, a);
    return fresh || back->second == a;
  };
  for (Operation *op : rep.ops) {
    Operation *other = member.ops.lookup(op);
    SmallVector<Operation *> as, bs;
    op->walk([&](Operation *n) { as.push_back(n); });
    other->walk([&](Operation *n) { bs.push_back(n); });
    if (as.size() != bs.size())
      return false;
    for (auto [na, nb] : llvm::zip_equal(as, bs)) {
      if (na->getNumOperands() != nb->getNumOperands())
        return false;
      for (auto [a, b] : llvm::zip_equal(na->getOperands(), nb->getOperands()))
        if (!op->isAncestor(a.getParentRegion()->getParentOp()) &&
            !pairOutside(a, b))
          return false;
    }
  }
  return true;
}

/// A class of one piece: the values it reads from outside (but those it
/// clones), in first-use order, and itself as its first member.
Class representedBy(Piece &piece) {
  Class cls;
  cls.rep = &piece;
  Member self;
  self.piece = &piece;
  llvm::DenseSet<Value> seen;
  for (Operation *op : piece.ops) {
    self.ops[op] = op;
    if (isParameterSlice(op, piece))
      self.offsets[op] = llvm::to_vector(
          llvm::cast<tensor::ExtractSliceOp>(op).getStaticOffsets());
    forEachInput(op, [&](Value v) {
      if (piece.contains(v) || isRematerializable(v) || !seen.insert(v).second)
        return;
      cls.externals.push_back(v);
      self.externals[v] = v;
    });
  }
  cls.members.push_back(std::move(self));
  return cls;
}

/// A reshape, slice or transpose: as cheap to recompute where it is read
/// as to pass, and only recomputed can a transpose fold into the matmul
/// that reads it. With `headViews`, a head split too (the attention kernels
/// read it in place).
bool isView(Operation *op, bool headViews) {
  StringRef name = op->getName().getStringRef();
  return llvm::isa<tensor::ExtractSliceOp, tensor::ExpandShapeOp,
                   tensor::CollapseShapeOp>(op) ||
         name == "loom.transpose" || name == "loom.reshape" ||
         (headViews && llvm::isa<loom::SplitHeadsOp>(op));
}

/// An attention gradient reads its forward's output o; when the forward
/// merges o's heads anyway (for the output projection), the gradient reads
/// split_heads(merge_heads(o)) instead: a view of what the forward hands
/// over already, so o itself need not be handed over (and, read by the
/// merge alone, is written merged in the first place).
void readOutputsThroughMerges(func::FuncOp func) {
  func.walk([](loom::AttentionOp attention) {
    // Only attention that the CPU kernels run (f32, a batch dim), with a
    // static head count to split by.
    Value o = attention.getResult();
    auto type = llvm::cast<RankedTensorType>(o.getType());
    if (!loom::isBatchedF32Attention(attention) || type.getRank() != 4 ||
        ShapedType::isDynamic(type.getDimSize(1)))
      return;
    loom::MergeHeadsOp merge;
    for (Operation *user : o.getUsers())
      if (auto m = llvm::dyn_cast<loom::MergeHeadsOp>(user))
        merge = m;
    if (!merge)
      return;
    for (OpOperand &use : llvm::make_early_inc_range(o.getUses())) {
      auto grad = llvm::dyn_cast<loom::AttentionGradOp>(use.getOwner());
      if (!grad ||
          use.getOperandNumber() != grad.getOutMutable().getOperandNumber() ||
          grad->getBlock() != merge->getBlock() ||
          !merge->isBeforeInBlock(grad))
        continue;
      OpBuilder b(grad);
      use.set(loom::SplitHeadsOp::create(
          b, merge.getLoc(), type, merge.getResult(), type.getDimSize(1)));
    }
  });
}

/// Recomputes in `piece` the views it reads from earlier phases of its layer
/// (the weight and activation transposes of a backward, which its forward
/// would otherwise compute and hand over materialized).
void cloneParameterViews(Piece &piece,
                         const DenseMap<Operation *, int64_t> &phase,
                         bool headViews) {
  DenseMap<Operation *, Operation *> clones;
  std::function<Value(Value, Operation *)> local =
      [&](Value v, Operation *before) -> Value {
    Operation *def = v.getDefiningOp();
    if (!def || piece.set.contains(def) || !phase.count(def) ||
        !isView(def, headViews))
      return v;
    Operation *clone = clones.lookup(def);
    if (!clone) {
      OpBuilder b(before);
      clone = b.clone(*def);
      clones[def] = clone;
      for (OpOperand &operand : clone->getOpOperands())
        operand.set(local(operand.get(), clone));
      piece.set.insert(clone);
    }
    return clone->getResult(llvm::cast<OpResult>(v).getResultNumber());
  };
  for (Operation *op : piece.ops)
    for (OpOperand &operand : op->getOpOperands())
      operand.set(local(operand.get(), op));
  if (clones.empty())
    return;
  Block *block = piece.ops.front()->getBlock();
  piece.ops.clear();
  for (Operation &op : *block)
    if (piece.set.contains(&op))
      piece.ops.push_back(&op);
}

struct LoomOutlineLayers
    : public loom::impl::LoomOutlineLayersBase<LoomOutlineLayers> {
  using Base::Base;
  /// Values of outlined layers and the call results that replaced them.
  DenseMap<Value, Value> replaced;
  /// The ops of outlined layers, erased once a function is done.
  SmallVector<Operation *> dead;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    for (auto func : llvm::to_vector(module.getOps<func::FuncOp>()))
      if (!func.isExternal() && func.getBody().hasOneBlock()) {
        if (headViews)
          readOutputsThroughMerges(func);
        outlineFunction(module, func);
      }
  }

  /// 1. Tag each op with its layer; split each layer into convex phases.
  /// 2. Sort the layers of each (repeat, phase) into classes of isomorphic
  ///    pieces.
  /// 3. Outline each class of two or more layers into one function.
  void outlineFunction(ModuleOp module, func::FuncOp func) {
    Block &body = func.getBody().front();
    using Group = std::pair<std::string, int64_t>;
    std::map<Group, SmallVector<Operation *>> groups;
    for (Operation &op : body.without_terminator()) {
      std::optional<LayerTag> tag = tagOf(op.getLoc());
      if (tag && isMemoryEffectFree(&op))
        groups[{tag->layers, tag->index}].push_back(&op);
    }

    // The phase of an op is how often a path to it leaves its layer and
    // comes back: the forward is phase 0, the backward (after the layers
    // above) phase 1. Each phase is convex.
    std::map<std::pair<std::string, int64_t>, std::vector<Piece>> byRepeat;
    for (auto &[group, ops] : groups) {
      llvm::DenseSet<Operation *> inGroup(ops.begin(), ops.end());
      DenseMap<Operation *, int64_t> phase, reach;
      for (Operation &op : body.without_terminator()) {
        bool member = inGroup.contains(&op);
        int64_t level = member ? 0 : -1;
        forEachInput(&op, [&](Value v) {
          Operation *def = v.getDefiningOp();
          if (!def || def->getBlock() != &body)
            return;
          if (inGroup.contains(def))
            level = std::max(level, phase.lookup(def));
          else if (auto it = reach.find(def); it != reach.end())
            level = std::max(level, it->second + (member ? 1 : 0));
        });
        if (member)
          phase[&op] = level;
        else if (level >= 0)
          reach[&op] = level;
      }
      std::map<int64_t, Piece> pieces;
      for (Operation *op : ops) {
        Piece &piece = pieces[phase.lookup(op)];
        piece.index = group.second;
        piece.ops.push_back(op);
        piece.set.insert(op);
      }
      for (auto &[level, piece] : pieces) {
        if (level > 0)
          cloneParameterViews(piece, phase, headViews);
        byRepeat[{group.first, level}].push_back(std::move(piece));
      }
    }

    for (auto &[key, pieces] : byRepeat) {
      if (pieces.size() < 2)
        continue;
      SmallVector<Class> classes;
      for (Piece &piece : pieces) {
        bool placed = false;
        for (Class &cls : classes) {
          Member member;
          if (match(cls, piece, member)) {
            cls.members.push_back(std::move(member));
            placed = true;
            break;
          }
        }
        if (placed)
          continue;
        classes.push_back(representedBy(piece));
      }
      // One class per (repeat, phase): the largest. The others were
      // matched against values that outlining it replaces (alternating layer
      // kinds, say), so they stay inline.
      Class *best = nullptr;
      for (Class &cls : classes)
        if (cls.members.size() >= 2 &&
            (!best || cls.members.size() > best->members.size()))
          best = &cls;
      if (!best)
        continue;
      std::string name = func.getSymName().str() + "_" + key.first + "_" +
                         (key.second == 0 ? "forward" : "backward");
      if (key.second > 1)
        name += std::to_string(key.second);
      outlineClass(module, func, *best, name);
    }
    for (Operation *op : dead)
      op->dropAllReferences();
    for (Operation *op : dead)
      op->erase();
    dead.clear();
    replaced.clear();
  }

  void outlineClass(ModuleOp module, func::FuncOp func, Class &cls,
                    StringRef name) {
    Piece &rep = *cls.rep;
    // Parameter slices whose offsets differ between layers take them as
    // arguments.
    SmallVector<Operation *> varying;
    for (Operation *op : rep.ops)
      if (isParameterSlice(op, rep))
        for (Member &m : cls.members)
          if (m.offsets[op] != cls.members.front().offsets[op]) {
            varying.push_back(op);
            break;
          }
    // Results: every value some layer uses outside itself.
    SmallVector<Value> outputs;
    for (Operation *op : rep.ops)
      for (OpResult result : op->getResults()) {
        bool used = false;
        for (Member &m : cls.members) {
          Value mine = m.ops.lookup(op)->getResult(result.getResultNumber());
          used |= llvm::any_of(mine.getUsers(), [&](Operation *user) {
            return !m.piece->set.contains(
                m.piece->ops.front()->getBlock()->findAncestorOpInBlock(*user));
          });
        }
        if (used)
          outputs.push_back(result);
      }

    // The function.
    OpBuilder b(module.getContext());
    b.setInsertionPoint(func);
    SmallVector<Type> argTypes;
    for (Value v : cls.externals)
      argTypes.push_back(v.getType());
    for (Operation *op : varying)
      argTypes.append(
          llvm::cast<tensor::ExtractSliceOp>(op).getStaticOffsets().size(),
          b.getIndexType());
    SmallVector<Type> resultTypes;
    for (Value v : outputs)
      resultTypes.push_back(v.getType());
    auto outlined =
        func::FuncOp::create(b, rep.ops.front()->getLoc(), name,
                             b.getFunctionType(argTypes, resultTypes));
    outlined.setPrivate();
    outlined.setNoInline(true);
    SymbolTable(module).insert(outlined);
    Block *entry = outlined.addEntryBlock();
    b.setInsertionPointToStart(entry);
    IRMapping map;
    for (auto [v, arg] : llvm::zip(cls.externals, entry->getArguments()))
      map.map(v, arg);
    unsigned nextArg = cls.externals.size();
    DenseMap<Operation *, unsigned> offsetArg;
    for (Operation *op : varying) {
      offsetArg[op] = nextArg;
      nextArg +=
          llvm::cast<tensor::ExtractSliceOp>(op).getStaticOffsets().size();
    }
    for (Operation *op : rep.ops)
      forEachInput(op, [&](Value v) {
        if (!rep.contains(v) && !map.contains(v) && isRematerializable(v))
          map.map(v,
                  b.clone(*v.getDefiningOp())
                      ->getResult(llvm::cast<OpResult>(v).getResultNumber()));
      });
    for (Operation *op : rep.ops) {
      auto it = offsetArg.find(op);
      if (it == offsetArg.end()) {
        b.clone(*op, map);
        continue;
      }
      auto slice = llvm::cast<tensor::ExtractSliceOp>(op);
      SmallVector<OpFoldResult> offsets;
      for (size_t d = 0; d < slice.getStaticOffsets().size(); ++d)
        offsets.push_back(entry->getArgument(it->second + d));
      auto clone = tensor::ExtractSliceOp::create(
          b, slice.getLoc(), slice.getType(), map.lookup(slice.getSource()),
          offsets, slice.getMixedSizes(), slice.getMixedStrides());
      map.map(slice.getResult(), clone.getResult());
    }
    SmallVector<Value> returned;
    for (Value v : outputs)
      returned.push_back(map.lookup(v));
    func::ReturnOp::create(b, outlined.getLoc(), returned);
    // Views that later phases now recompute themselves.
    SmallVector<Operation *> body;
    for (Operation &op : entry->without_terminator())
      body.push_back(&op);
    for (Operation *op : llvm::reverse(body))
      if (isOpTriviallyDead(op))
        op->erase();

    // The calls; the representative (the first member) last, as the
    // others are found through its ops.
    for (Member &m : llvm::reverse(cls.members))
      replaceByCall(m, cls, outlined, varying, outputs);
  }

  /// Moves what depends on the layer behind it, calls `outlined` in its
  /// place and erases the layer's ops.
  void replaceByCall(Member &m, Class &cls, func::FuncOp outlined,
                     ArrayRef<Operation *> varying, ArrayRef<Value> outputs) {
    Piece &piece = *m.piece;
    Block *block = piece.ops.front()->getBlock();
    // Earlier calls may have moved ops: take the order of the block now.
    llvm::sort(piece.ops, [](Operation *a, Operation *b) {
      return a->isBeforeInBlock(b);
    });
    Operation *first = piece.ops.front(), *last = piece.ops.back();
    // Ops between the first and last op of the layer that depend on it go
    // after it (the phase is convex: nothing of the layer depends on them).
    llvm::DenseSet<Operation *> dependent;
    SmallVector<Operation *> moved;
    for (Operation *op = first->getNextNode(); op && op != last;
         op = op->getNextNode()) {
      if (piece.set.contains(op))
        continue;
      bool depends = false;
      forEachInput(op, [&](Value v) {
        Operation *def = v.getDefiningOp();
        if (def && def->getBlock() == block)
          depends |= piece.set.contains(def) || dependent.contains(def);
      });
      if (depends) {
        dependent.insert(op);
        moved.push_back(op);
      }
    }
    Operation *after = last;
    for (Operation *op : moved) {
      op->moveAfter(after);
      after = op;
    }

    OpBuilder b(last->getContext());
    b.setInsertionPointAfter(last);
    SmallVector<Value> operands;
    for (Value v : cls.externals) {
      // A value of an earlier outlined layer now comes from its call.
      Value mine = m.externals.lookup(v);
      while (Value next = replaced.lookup(mine))
        mine = next;
      operands.push_back(mine);
    }
    for (Operation *op : varying)
      for (int64_t offset : m.offsets[op])
        operands.push_back(
            arith::ConstantIndexOp::create(b, op->getLoc(), offset));
    auto call = func::CallOp::create(b, last->getLoc(), outlined, operands);
    for (auto [v, result] : llvm::zip(outputs, call.getResults())) {
      auto r = llvm::cast<OpResult>(v);
      Value mine = m.ops.lookup(r.getOwner())->getResult(r.getResultNumber());
      replaced[mine] = result;
      mine.replaceUsesWithIf(result, [&](OpOperand &use) {
        return !piece.set.contains(
            block->findAncestorOpInBlock(*use.getOwner()));
      });
    }
    // Erased at the end: a freed value's storage could otherwise be reused
    // by a new op and be mistaken for a key of `replaced`.
    llvm::append_range(dead, piece.ops);
  }
};

} // namespace
