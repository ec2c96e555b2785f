//===- DeriveDecode.cpp - An incremental-decoding step from a forward -----===//
//
// `logits(tokens: i32[B, T])` of a decoder recomputes every position. The
// decode step derived here takes T new tokens per sequence at positions
// start[b] .. start[b] + T - 1 and a key/value cache per causal attention:
// positions come from `start` instead of `arange(T)`, and each attention
// appends its new keys and values to its cache and attends over the filled
// part. Everything else in a decoder acts on each position alone, so it is
// kept as it is; result types are re-inferred where the shapes changed (an
// embedding of [B, T] positions instead of [T]).
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "ir/LoomOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/IRMapping.h"

#include <functional>

#include "llvm/ADT/DenseSet.h"

#define DEBUG_TYPE "loom-derive-decode"

namespace loom {
#define GEN_PASS_DEF_LOOMDERIVEDECODE
#include "passes/Passes.h.inc"
} // namespace loom

using namespace mlir;

namespace {

/// Re-derives the result types of the ops of `func` in order.
LogicalResult reinferTypes(func::FuncOp func) {
  WalkResult walk = func.walk<WalkOrder::PreOrder>([&](Operation *op) {
    if (op == func.getOperation() || succeeded(loom::reinferResultTypes(op)))
      return WalkResult::advance();
    return WalkResult::interrupt();
  });
  return failure(walk.wasInterrupted());
}

struct LoomDeriveDecode
    : public loom::impl::LoomDeriveDecodeBase<LoomDeriveDecode> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto func = module.lookupSymbol<func::FuncOp>(function);
    if (!func || func.isExternal()) {
      module.emitError() << "loom-derive-decode: no function '" << function
                         << "'";
      return signalPassFailure();
    }
    if (capacity <= 0) {
      func.emitError() << "loom-derive-decode: the cache capacity must be "
                          "positive, got "
                       << int64_t(capacity);
      return signalPassFailure();
    }
    auto tokensType =
        func.getNumArguments() >= 1
            ? llvm::dyn_cast<RankedTensorType>(func.getArgument(0).getType())
            : RankedTensorType();
    if (!tokensType || tokensType.getRank() != 2 ||
        !tokensType.getElementType().isSignlessInteger(32) ||
        !tokensType.hasStaticShape()) {
      func.emitError() << "loom-derive-decode: the first input of '" << function
                       << "' must be the token ids i32[B, T] with bound "
                          "dims, to be decoded incrementally";
      return signalPassFailure();
    }
    int64_t batch = tokensType.getDimSize(0), steps = tokensType.getDimSize(1);
    if (steps > capacity) {
      func.emitError() << "loom-derive-decode: " << steps
                       << " new tokens per call do not fit a cache of "
                       << int64_t(capacity) << " positions";
      return signalPassFailure();
    }

    // Check everything before changing anything. Values that depend on the
    // new tokens (or their positions) vary along T; the other inputs (an
    // encoder's memory, source ids) are the same at every step, and an
    // attention whose keys and values depend only on them (cross-attention)
    // acts on each query alone, so it stays.
    llvm::DenseSet<Value> perToken;
    SmallVector<loom::ArangeOp> aranges;
    SmallVector<loom::AttentionOp> attentions;
    SmallVector<loom::LstmOp> lstms;
    perToken.insert(func.getArgument(0));
    // Where T is in each value that depends on the tokens (-1: nowhere, a
    // summary of the whole sequence such as an LSTM's final state).
    llvm::DenseMap<Value, int64_t> tAxis;
    tAxis[func.getArgument(0)] = 1;
    WalkResult checked = func.walk([&](Operation *op) {
      bool fromTokens = llvm::any_of(
          op->getOperands(), [&](Value v) { return perToken.contains(v); });
      if (auto arange = llvm::dyn_cast<loom::ArangeOp>(op)) {
        if (arange.getType().getDimSize(0) != steps)
          return WalkResult::advance(); // a constant, not positions
        if (failed(checkPositions(arange)))
          return WalkResult::interrupt();
        aranges.push_back(arange);
        perToken.insert(arange.getResult());
        tAxis[arange.getResult()] = 0;
        return WalkResult::advance();
      } else if (auto attention = llvm::dyn_cast<loom::AttentionOp>(op)) {
        bool selfAttention = perToken.contains(attention.getK()) ||
                             perToken.contains(attention.getV()) ||
                             (attention.getKeyMask() &&
                              perToken.contains(attention.getKeyMask()));
        if (selfAttention) {
          if (failed(checkAttention(attention, steps)))
            return WalkResult::interrupt();
          attentions.push_back(attention);
        }
      } else if (auto lstm = llvm::dyn_cast<loom::LstmOp>(op)) {
        if (perToken.contains(lstm.getInput())) {
          if (perToken.contains(lstm.getH0()) ||
              perToken.contains(lstm.getC0())) {
            lstm.emitError() << "loom-derive-decode: an LSTM whose initial "
                                "state depends on the new tokens has no "
                                "incremental form";
            return WalkResult::interrupt();
          }
          lstms.push_back(lstm);
        }
      } else if (llvm::isa<loom::AttentionLseOp, loom::AttentionGradOp,
                           loom::DropoutOp>(op)) {
        op->emitError() << "loom-derive-decode: '" << op->getName()
                        << "' has no decoding form (decode an inference "
                           "function)";
        return WalkResult::interrupt();
      }
      if (fromTokens && !llvm::isa<func::ReturnOp>(op)) {
        if (failed(trackTimeAxis(op, tAxis)))
          return WalkResult::interrupt();
        perToken.insert(op->getResults().begin(), op->getResults().end());
      }
      return WalkResult::advance();
    });
    if (checked.wasInterrupted())
      return signalPassFailure();
    for (Value result : func.getBody().front().getTerminator()->getOperands())
      if (perToken.contains(result) && tAxis.lookup(result) < 0) {
        func.emitError() << "loom-derive-decode: a result of '" << function
                         << "' sums up the whole sequence (an LSTM's final "
                            "state); a decode step returns values per "
                            "position";
        return signalPassFailure();
      }

    MLIRContext *ctx = &getContext();
    Builder b(ctx);
    Location loc = func.getLoc();
    auto i32 = b.getI32Type();
    auto named = [&](StringRef name) {
      return b.getDictionaryAttr(
          b.getNamedAttr("loom.name", b.getStringAttr(name)));
    };
    if (failed(func.insertArgument(1, RankedTensorType::get({batch}, i32),
                                   named("start"), loc)))
      return signalPassFailure();
    Value tokens = func.getArgument(0), start = func.getArgument(1);
    if (failed(hoistContextWork(func, perToken)))
      return signalPassFailure();

    for (loom::ArangeOp arange : aranges) {
      OpBuilder ob(arange);
      Value positions =
          loom::DecodePositionsOp::create(ob, arange.getLoc(), start, tokens);
      arange.getResult().replaceAllUsesWith(positions);
      arange.erase();
    }

    SmallVector<Value> caches;
    SmallVector<unsigned> cacheArgs;
    for (auto [index, attention] : llvm::enumerate(attentions)) {
      auto q = llvm::cast<RankedTensorType>(attention.getQ().getType());
      auto v = llvm::cast<RankedTensorType>(attention.getV().getType());
      int64_t heads = q.getDimSize(1);
      auto keyType = RankedTensorType::get(
          {batch, heads, capacity, q.getDimSize(3)}, q.getElementType());
      auto valueType = RankedTensorType::get(
          {batch, heads, capacity, v.getDimSize(3)}, v.getElementType());
      unsigned k = func.getNumArguments();
      std::string suffix = "." + std::to_string(index);
      if (failed(func.insertArgument(k, keyType, named("k_cache" + suffix),
                                     attention.getLoc())) ||
          failed(func.insertArgument(
              k + 1, valueType, named("v_cache" + suffix), attention.getLoc())))
        return signalPassFailure();
      OpBuilder ob(attention);
      auto cached = loom::CachedAttentionOp::create(
          ob, attention.getLoc(), attention.getQ(), attention.getK(),
          attention.getV(), func.getArgument(k), func.getArgument(k + 1), start,
          attention.getScaleAttr());
      attention.getResult().replaceAllUsesWith(cached.getResult());
      attention.erase();
      caches.append({cached.getKCacheOut(), cached.getVCacheOut()});
      cacheArgs.append({k, k + 1});
    }

    // Each recurrence over the tokens carries its state between steps: the
    // function's initial state where a sequence starts (start = 0), the
    // cached one elsewhere; the final state is the new cache.
    for (auto [index, lstm] : llvm::enumerate(lstms)) {
      auto stateType = llvm::cast<RankedTensorType>(lstm.getH0().getType());
      unsigned k = func.getNumArguments();
      std::string suffix = "." + std::to_string(index);
      if (failed(func.insertArgument(k, stateType, named("lstm_h" + suffix),
                                     lstm.getLoc())) ||
          failed(func.insertArgument(k + 1, stateType, named("lstm_c" + suffix),
                                     lstm.getLoc())))
        return signalPassFailure();
      OpBuilder ob(lstm);
      Location l = lstm.getLoc();
      Value column =
          loom::ReshapeOp::create(ob, l, RankedTensorType::get({batch, 1}, i32),
                                  start, ob.getDenseI64ArrayAttr({batch, 1}));
      Value zero = loom::ConstantOp::create(
          ob, l, DenseElementsAttr::get(RankedTensorType::get({}, i32), 0));
      Value first =
          loom::CompareOp::create(ob, l, column, zero, ob.getStringAttr("eq"));
      Value h = loom::WhereOp::create(ob, l, first, lstm.getH0(),
                                      func.getArgument(k));
      Value c = loom::WhereOp::create(ob, l, first, lstm.getC0(),
                                      func.getArgument(k + 1));
      lstm.getH0Mutable().assign(h);
      lstm.getC0Mutable().assign(c);
      caches.append({lstm.getHN(), lstm.getCN()});
      cacheArgs.append({k, k + 1});
    }

    if (failed(reinferTypes(func)))
      return signalPassFailure();
    auto ret =
        llvm::cast<func::ReturnOp>(func.getBody().front().getTerminator());
    for (auto [i, value] : llvm::enumerate(ret.getOperands()))
      if (value.getType() != func.getResultTypes()[i]) {
        ret.emitError() << "loom-derive-decode: result #" << i
                        << " would change type from "
                        << func.getResultTypes()[i] << " to " << value.getType()
                        << " (does it mix positions other than through "
                           "causal attention?)";
        return signalPassFailure();
      }
    unsigned firstCache = ret.getNumOperands();
    ret.getOperandsMutable().append(caches);
    SmallVector<Type> resultTypes(ret.getOperandTypes());
    SmallVector<DictionaryAttr> resultAttrs;
    func.getAllResultAttrs(resultAttrs);
    resultAttrs.resize(firstCache);
    for (unsigned arg : cacheArgs)
      resultAttrs.push_back(b.getDictionaryAttr(
          b.getNamedAttr("loom.updates", b.getI64IntegerAttr(arg))));
    func.setFunctionType(
        b.getFunctionType(func.getArgumentTypes(), resultTypes));
    func.setAllResultAttrs(resultAttrs);
    func.setSymName(function + "_decode");
  }

  /// The work that depends on the context inputs but not on the tokens (an
  /// encoder-decoder's cross-attention keys and values, its source mask)
  /// is the same at every step: it moves to `<function>_decode_context(
  /// context...) -> values`, run once per context, and the step takes the
  /// values it needs as inputs `context.<i>` after the context inputs.
  LogicalResult hoistContextWork(func::FuncOp func,
                                 const llvm::DenseSet<Value> &perToken) {
    Block &body = func.getBody().front();
    llvm::DenseSet<Value> fromContext;
    for (unsigned i = 2; i < func.getNumArguments(); ++i)
      fromContext.insert(func.getArgument(i));
    SmallVector<Operation *> hoisted;
    llvm::DenseSet<Operation *> isHoisted;
    for (Operation &op : body.without_terminator()) {
      bool varies = llvm::any_of(op.getResults(),
                                 [&](Value v) { return perToken.contains(v); });
      bool reads = llvm::any_of(
          op.getOperands(), [&](Value v) { return fromContext.contains(v); });
      if (varies || !reads || op.getNumRegions() > 0)
        continue;
      hoisted.push_back(&op);
      isHoisted.insert(&op);
      fromContext.insert(op.getResults().begin(), op.getResults().end());
    }
    SmallVector<Value> boundary;
    for (Operation *op : hoisted)
      for (Value result : op->getResults())
        if (llvm::any_of(result.getUsers(), [&](Operation *user) {
              return !isHoisted.contains(user);
            }))
          boundary.push_back(result);
    if (boundary.empty())
      return success();

    // The context function: the hoisted ops and the parameter-only values
    // they read (parameters, constants, views of them), cloned in order.
    SmallVector<Type> inputs;
    for (unsigned i = 2; i < func.getNumArguments(); ++i)
      inputs.push_back(func.getArgument(i).getType());
    SmallVector<Type> outputs;
    for (Value v : boundary)
      outputs.push_back(v.getType());
    OpBuilder mb(func);
    auto context =
        func::FuncOp::create(mb, func.getLoc(), function + "_decode_context",
                             mb.getFunctionType(inputs, outputs));
    for (unsigned i = 2; i < func.getNumArguments(); ++i)
      if (DictionaryAttr attrs = func.getArgAttrDict(i))
        context.setArgAttrs(i - 2, attrs);
    Block *entry = context.addEntryBlock();
    IRMapping map;
    for (unsigned i = 2; i < func.getNumArguments(); ++i)
      map.map(func.getArgument(i), entry->getArgument(i - 2));
    OpBuilder cb = OpBuilder::atBlockEnd(entry);
    std::function<LogicalResult(Value)> need = [&](Value v) -> LogicalResult {
      if (map.contains(v))
        return success();
      Operation *def = v.getDefiningOp();
      if (!def || perToken.contains(v))
        return func.emitError() << "loom-derive-decode: internal error: "
                                   "context work reads a per-token value";
      for (Value operand : def->getOperands())
        if (failed(need(operand)))
          return failure();
      cb.clone(*def, map);
      return success();
    };
    for (Operation *op : hoisted) {
      for (Value operand : op->getOperands())
        if (failed(need(operand)))
          return failure();
      cb.clone(*op, map);
    }
    SmallVector<Value> returned;
    for (Value v : boundary)
      returned.push_back(map.lookup(v));
    func::ReturnOp::create(cb, func.getLoc(), returned);

    // The step reads the values instead of computing them.
    for (auto [i, v] : llvm::enumerate(boundary)) {
      unsigned index = func.getNumArguments();
      Builder b(&getContext());
      if (failed(func.insertArgument(
              index, v.getType(),
              b.getDictionaryAttr({b.getNamedAttr(
                  "loom.name",
                  b.getStringAttr("context." + std::to_string(i)))}),
              v.getLoc())))
        return failure();
      v.replaceAllUsesWith(func.getArgument(index));
    }
    for (Operation *op : llvm::reverse(hoisted))
      op->erase();
    return success();
  }

  /// `arange(T)` may only be the positions an embedding or a sinusoidal
  /// encoding reads; tables must cover the cache.
  LogicalResult checkPositions(loom::ArangeOp arange) {
    for (Operation *user : arange->getUsers()) {
      if (auto embedding = llvm::dyn_cast<loom::EmbeddingOp>(user)) {
        if (embedding.getIds() != arange.getResult())
          return user->emitError()
                 << "loom-derive-decode: positions used as an embedding table";
        int64_t rows = embedding.getTable().getType().getDimSize(0);
        if (rows < capacity)
          return user->emitError()
                 << "loom-derive-decode: a cache of " << int64_t(capacity)
                 << " positions reads past this position table of " << rows
                 << " rows; decode with a capacity of at most " << rows;
        continue;
      }
      if (llvm::isa<loom::SinusoidalOp>(user))
        continue;
      return user->emitError()
             << "loom-derive-decode: arange(T) feeds '" << user->getName()
             << "'; only position embeddings can be decoded incrementally";
    }
    return success();
  }

  /// Sets the T axis of `op`'s results from its operands' (in `tAxis`), or
  /// fails at `op` when it combines positions (a reduction, a softmax, a
  /// slice or concat along T, a contraction over T, a reshape that moves T)
  /// or is an op this pass does not know to act on each position alone: the
  /// decode step would compute something else than the full forward.
  LogicalResult trackTimeAxis(Operation *op,
                              llvm::DenseMap<Value, int64_t> &tAxis) {
    auto rankOf = [](Value v) {
      return llvm::cast<RankedTensorType>(v.getType()).getRank();
    };
    auto axisOf = [&](Value v) -> std::optional<int64_t> {
      auto it = tAxis.find(v);
      if (it == tAxis.end())
        return std::nullopt;
      return it->second;
    };
    auto mixes = [&](const Twine &why) {
      return op->emitError()
             << "loom-derive-decode: '" << op->getName() << "' " << why
             << "; the decode step would differ from the full forward";
    };
    auto set = [&](Value result, int64_t axis) { tAxis[result] = axis; };
    // The T axis of the result of a broadcasting elementwise op.
    auto elementwise = [&]() -> LogicalResult {
      int64_t rank = rankOf(op->getResult(0));
      std::optional<int64_t> axis;
      for (Value operand : op->getOperands()) {
        std::optional<int64_t> a = axisOf(operand);
        if (!a)
          continue;
        if (*a < 0)
          return mixes("reads a summary of the whole sequence");
        int64_t aligned = *a + rank - rankOf(operand);
        if (axis && *axis != aligned)
          return mixes("combines values whose T axes differ");
        axis = aligned;
      }
      for (Value result : op->getResults())
        set(result, *axis);
      return success();
    };
    if (llvm::isa<loom::AddOp, loom::SubOp, loom::MulOp, loom::DivOp,
                  loom::NegOp, loom::ExpOp, loom::LogOp, loom::TanhOp,
                  loom::SigmoidOp, loom::ReluOp, loom::SqrtOp, loom::RsqrtOp,
                  loom::GeluOp, loom::PowOp, loom::CompareOp, loom::WhereOp,
                  loom::CastOp>(op))
      return elementwise();
    if (auto e = llvm::dyn_cast<loom::EmbeddingOp>(op)) {
      if (axisOf(e.getTable()))
        return mixes("looks up a table that depends on the tokens");
      std::optional<int64_t> a = axisOf(e.getIds());
      if (!a || *a < 0)
        return mixes("reads a summary of the whole sequence");
      set(e.getResult(), *a);
      return success();
    }
    if (auto e = llvm::dyn_cast<loom::SinusoidalOp>(op)) {
      std::optional<int64_t> a = axisOf(e.getPositions());
      if (!a || *a < 0)
        return mixes("reads a summary of the whole sequence");
      set(e.getResult(), *a);
      return success();
    }
    if (auto m = llvm::dyn_cast<loom::MatmulOp>(op)) {
      std::optional<int64_t> a = axisOf(m.getLhs());
      if (axisOf(m.getRhs()) || !a || *a < 0 || *a == rankOf(m.getLhs()) - 1)
        return mixes("contracts over the tokens (attention written by hand?)");
      set(m.getResult(), *a + rankOf(m.getResult()) - rankOf(m.getLhs()));
      return success();
    }
    if (auto n = llvm::dyn_cast<loom::LayerNormOp>(op)) {
      std::optional<int64_t> a = axisOf(n.getInput());
      if (axisOf(n.getGamma()) || axisOf(n.getBeta()) || !a || *a < 0 ||
          *a == rankOf(n.getInput()) - 1)
        return mixes("normalizes along T");
      set(n.getResult(), *a);
      return success();
    }
    // An op along one axis (negative: from the end) that keeps the shape
    // elsewhere: fine unless that axis is T.
    auto alongAxis = [&](Value input, int64_t along, Value result,
                         const char *why) -> LogicalResult {
      std::optional<int64_t> a = axisOf(input);
      int64_t axis = along < 0 ? along + rankOf(input) : along;
      if (!a || *a < 0 || *a == axis)
        return mixes(why);
      set(result, *a);
      return success();
    };
    if (auto sm = llvm::dyn_cast<loom::SoftmaxOp>(op))
      return alongAxis(sm.getInput(), sm.getAxis(), sm.getResult(),
                       "normalizes along T");
    if (auto sh = llvm::dyn_cast<loom::SplitHeadsOp>(op)) {
      if (axisOf(sh.getInput()) != std::optional<int64_t>(1))
        return mixes("splits heads of a value whose T is not dim 1");
      set(sh.getResult(), 2);
      return success();
    }
    if (auto mh = llvm::dyn_cast<loom::MergeHeadsOp>(op)) {
      if (axisOf(mh.getInput()) != std::optional<int64_t>(2))
        return mixes("merges heads of a value whose T is not dim 2");
      set(mh.getResult(), 1);
      return success();
    }
    if (auto t = llvm::dyn_cast<loom::TransposeOp>(op)) {
      std::optional<int64_t> a = axisOf(t.getInput());
      if (!a || *a < 0)
        return mixes("reads a summary of the whole sequence");
      for (auto [i, p] : llvm::enumerate(t.getPerm()))
        if (p == *a)
          set(t.getResult(), int64_t(i));
      return success();
    }
    if (auto r = llvm::dyn_cast<loom::ReshapeOp>(op)) {
      // T and every dim before it stay where they are.
      std::optional<int64_t> a = axisOf(r.getInput());
      auto in = llvm::cast<RankedTensorType>(r.getInput().getType());
      auto out = llvm::cast<RankedTensorType>(r.getResult().getType());
      if (!a || *a < 0 || out.getRank() <= *a ||
          in.getShape().take_front(*a + 1) != out.getShape().take_front(*a + 1))
        return mixes("reshapes across T");
      set(r.getResult(), *a);
      return success();
    }
    if (auto sl = llvm::dyn_cast<loom::SliceOp>(op))
      return alongAxis(sl.getInput(), sl.getAxis(), sl.getResult(),
                       "slices along T");
    if (auto c = llvm::dyn_cast<loom::ConcatOp>(op)) {
      int64_t rank = rankOf(c.getResult());
      int64_t axis = c.getAxis() < 0 ? c.getAxis() + rank : c.getAxis();
      std::optional<int64_t> found;
      for (Value input : c.getInputs()) {
        std::optional<int64_t> a = axisOf(input);
        if (!a)
          return mixes("joins values of the tokens with others");
        if (*a < 0 || *a == axis || (found && *found != *a))
          return mixes("concatenates along T");
        found = a;
      }
      set(c.getResult(), *found);
      return success();
    }
    if (auto at = llvm::dyn_cast<loom::AttentionOp>(op)) {
      int64_t rank = rankOf(at.getQ());
      if (axisOf(at.getQ()) != std::optional<int64_t>(rank - 2))
        return mixes("attends with queries whose T is not dim -2");
      set(at.getResult(), rank - 2);
      return success();
    }
    if (auto l = llvm::dyn_cast<loom::LstmOp>(op)) {
      if (axisOf(l.getInput()) != std::optional<int64_t>(1) ||
          axisOf(l.getWIh()) || axisOf(l.getWHh()) || axisOf(l.getBias()))
        return mixes("runs over a value whose T is not dim 1");
      set(l.getOutputs(), 1);
      set(l.getHN(), -1);
      set(l.getCN(), -1);
      return success();
    }
    return mixes("is not known to act on each position alone");
  }

  /// A causal self-attention over [B, H, T, D] with no key mask (keys or
  /// values that depend on the new tokens).
  LogicalResult checkAttention(loom::AttentionOp attention, int64_t steps) {
    auto q = llvm::cast<RankedTensorType>(attention.getQ().getType());
    auto k = llvm::cast<RankedTensorType>(attention.getK().getType());
    if (!q.getElementType().isF32())
      return attention.emitError()
             << "loom-derive-decode: decode steps run f32 attention (the "
                "kernels'), got "
             << q.getElementType();
    if (!attention.getCausal())
      return attention.emitError()
             << "loom-derive-decode: a non-causal attention over the new "
                "tokens (an encoder) has no incremental form";
    if (attention.getKeyMask())
      return attention.emitError()
             << "loom-derive-decode: a self-attention with a key mask cannot "
                "be decoded incrementally";
    if (q.getRank() != 4 || k.getRank() != 4 || q.getDimSize(2) != steps ||
        k.getDimSize(2) != steps)
      return attention.emitError()
             << "loom-derive-decode: expected a self-attention of [B, H, "
             << steps << ", D] queries and keys, got " << Type(q) << " and "
             << Type(k);
    return success();
  }
};

} // namespace
