//===- AttentionToCall.cpp - Attention as flash-attention kernel calls ----===//
//
// On loom IR, before the lowering to linalg: every f32 `loom.attention`,
// `loom.attention_lse` and `loom.attention_grad` becomes one parallel loop
// over its heads that calls the flash attention kernels of runtime/kernels
// (loom/Kernels.h), so no [Tq x Tk] tensor or buffer exists. An attention
// and an attention_lse of the same operands (the forward of a training
// step) share one call that writes both the output and the lse.
//
// The operands reach the kernels as buffers (bufferization.to_buffer of the
// tensors collapsed to [heads, T, D]); results are fresh buffers handed back
// as tensors (bufferization.to_tensor restrict writable). An operand that is
// a `loom.split_heads` of x [B, T, H*Dh] is read from x's buffer in place
// (head i: rows of x at columns (i % H) * Dh, batch entry i / H), and a
// result whose only user is a `loom.merge_heads` is written straight into a
// [B, T, H*Dh] buffer that replaces the merge: no head-major copy either
// way (the CPU pipeline keeps those ops for this: keep-head-views of
// loom-lower-to-linalg). Addresses and
// strides are read inside the loop body, so the buffers live as long as the
// loop for the workspace planner and the deallocation pipeline.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/Passes.h"

#include "ir/LoomOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Dominance.h"

#define DEBUG_TYPE "loom-cpu-attention-to-call"

namespace loom::cpu {
#define GEN_PASS_DEF_LOOMCPUATTENTIONTOCALL
#include "codegen/cpu/Passes.h.inc"
} // namespace loom::cpu

using namespace mlir;

namespace {

constexpr StringLiteral kForward = "loom_attention_forward";
constexpr StringLiteral kBackward = "loom_attention_backward";

func::FuncOp declare(ModuleOp module, StringRef name, unsigned ints,
                     unsigned scalePosition) {
  if (auto existing = module.lookupSymbol<func::FuncOp>(name))
    return existing;
  OpBuilder b = OpBuilder::atBlockBegin(module.getBody());
  SmallVector<Type> args(ints, b.getI64Type());
  args.insert(args.begin() + scalePosition, b.getF64Type());
  auto fn = func::FuncOp::create(b, module.getLoc(), name,
                                 b.getFunctionType(args, {}));
  fn.setPrivate();
  return fn;
}

/// The key mask [B, Tk] (i1, one byte each) as a buffer, and the number of
/// heads per mask row.
struct MaskInfo {
  Value buffer;
  int64_t headsPerRow = 1;
};

/// Where the heads of an operand or result live: a buffer [heads, T, X],
/// or (with `split` H) a buffer [B, T, H*X] whose head i is the columns
/// [(i % H) * X, (i % H + 1) * X) of batch entry i / H.
struct HeadView {
  HeadView(Value buffer, int64_t split = 0, int64_t width = 0)
      : buffer(buffer), split(split), width(width) {}
  Value buffer;
  int64_t split;
  int64_t width;
};

/// Builds the loop over heads and the calls in it.
class HeadLoopBuilder {
public:
  HeadLoopBuilder(OpBuilder &b, Location loc) : b(b), loc(loc) {}

  /// `value` ([..., T, X], or [..., T] with trailing = 1) as a buffer of
  /// [heads, T, X] ([heads, T]): the leading dims flattened; a
  /// `split_heads` of x as x's buffer [B, T, H*Dh], read in place.
  HeadView heads(Value value, int64_t trailing = 2) {
    if (auto split = value.getDefiningOp<loom::SplitHeadsOp>();
        split && trailing == 2 && split.getInput().getType().getRank() == 3) {
      auto t = llvm::cast<RankedTensorType>(value.getType());
      return {toBuffer(split.getInput()), t.getDimSize(1), t.getDimSize(3)};
    }
    return {collapsed(value, trailing)};
  }

  /// A fresh buffer for the result `result` ([..., T, X]) of `heads`
  /// heads: [heads, T, X], or, when its only user is a `merge_heads`, the
  /// merged [B, T, H*X] that replaces that op (in `merged`). (The heads of
  /// one row then share cache lines where X * 4 bytes is not a multiple of
  /// 64; the loop's threads take contiguous ranges of heads, so at most the
  /// heads at a range's edge are written by two threads.)
  HeadView resultBuffer(Value result, int64_t heads,
                        loom::MergeHeadsOp &merged) {
    auto t = llvm::cast<RankedTensorType>(result.getType());
    int64_t rank = t.getRank();
    merged = nullptr;
    if (result.hasOneUse())
      merged = llvm::dyn_cast<loom::MergeHeadsOp>(*result.getUsers().begin());
    if (merged && rank == 4 && merged.getType().hasStaticShape()) {
      auto mt = llvm::cast<RankedTensorType>(merged.getType());
      Value buffer = memref::AllocOp::create(
          b, loc, MemRefType::get(mt.getShape(), t.getElementType()));
      return {buffer, t.getDimSize(1), t.getDimSize(3)};
    }
    merged = nullptr;
    return {memref::AllocOp::create(
        b, loc,
        MemRefType::get({heads, t.getDimSize(rank - 2), t.getDimSize(rank - 1)},
                        t.getElementType()))};
  }

  /// Replaces `result` by the buffer `view` that resultBuffer made for it.
  void replaceResult(Value result, const HeadView &view,
                     loom::MergeHeadsOp merged) {
    auto type = llvm::cast<RankedTensorType>(result.getType());
    if (!merged) {
      result.replaceAllUsesWith(toTensor(view.buffer, type));
      return;
    }
    merged.getResult().replaceAllUsesWith(
        toTensor(view.buffer, llvm::cast<RankedTensorType>(merged.getType())));
    merged.erase();
  }

  /// `value` collapsed to [heads, T, X] ([heads, T]) as a buffer.
  Value collapsed(Value value, int64_t trailing) {
    auto t = llvm::cast<RankedTensorType>(value.getType());
    int64_t rank = t.getRank();
    if (rank != trailing + 1) {
      SmallVector<ReassociationIndices> groups(1);
      for (int64_t i = 0; i < rank - trailing; ++i)
        groups[0].push_back(i);
      for (int64_t i = rank - trailing; i < rank; ++i)
        groups.push_back({i});
      value = tensor::CollapseShapeOp::create(b, loc, value, groups);
    }
    return toBuffer(value);
  }

  /// `tensor` as a read-only buffer of any layout (fully dynamic strides:
  /// a transposed or sliced tensor is read in place, through its strides).
  Value toBuffer(Value tensor) {
    auto t = llvm::cast<RankedTensorType>(tensor.getType());
    SmallVector<int64_t> strides(t.getRank(), ShapedType::kDynamic);
    auto layout =
        StridedLayoutAttr::get(b.getContext(), ShapedType::kDynamic, strides);
    auto type = MemRefType::get(t.getShape(), t.getElementType(), layout);
    return bufferization::ToBufferOp::create(b, loc, type, tensor,
                                             /*read_only=*/true);
  }

  /// The buffer `memref` as a tensor of `type` (expanding [heads, ...]).
  Value toTensor(Value memref, RankedTensorType type) {
    auto mt = llvm::cast<MemRefType>(memref.getType());
    Value t = bufferization::ToTensorOp::create(
        b, loc, RankedTensorType::get(mt.getShape(), mt.getElementType()),
        memref, /*restrict=*/true, /*writable=*/true);
    if (mt.getShape() == type.getShape())
      return t;
    SmallVector<ReassociationIndices> groups(1);
    int64_t kept = mt.getRank() - 1; // trailing dims kept as they are
    for (int64_t i = 0; i < type.getRank() - kept; ++i)
      groups[0].push_back(i);
    for (int64_t i = type.getRank() - kept; i < type.getRank(); ++i)
      groups.push_back({i});
    return tensor::ExpandShapeOp::create(b, loc, type, t, groups);
  }

  /// Heads of an operand [..., T, X] (the product of the leading dims).
  static int64_t heads(RankedTensorType type) {
    int64_t n = 1;
    for (int64_t d : type.getShape().drop_back(2))
      n *= d;
    return n;
  }

  Value i64(int64_t v) {
    return arith::ConstantIntOp::create(b, loc, b.getI64Type(), v);
  }
  Value cast(Value index) {
    return arith::IndexCastOp::create(b, loc, b.getI64Type(), index);
  }

  /// Address of element [head, 0...] of `buffer` and its strides (i64),
  /// built at the builder's point (inside the loop).
  struct Operand {
    Value address;
    SmallVector<Value> strides; // of the dims after the head dim
  };
  Operand at(const HeadView &view, Value head, int64_t elementBytes) {
    auto meta = memref::ExtractStridedMetadataOp::create(b, loc, view.buffer);
    Value base = cast(
        memref::ExtractAlignedPointerAsIndexOp::create(b, loc, view.buffer));
    auto strides = meta.getStrides();
    Value h = cast(head), first;
    Operand op;
    if (view.split) {
      // [B, T, H*X]: entry head / H, columns from (head % H) * X.
      Value split = i64(view.split);
      Value entry = arith::DivUIOp::create(b, loc, h, split);
      Value column = arith::MulIOp::create(
          b, loc, arith::RemUIOp::create(b, loc, h, split), i64(view.width));
      first = arith::AddIOp::create(
          b, loc, arith::MulIOp::create(b, loc, entry, cast(strides[0])),
          arith::MulIOp::create(b, loc, column, cast(strides[2])));
      op.strides = {cast(strides[1]), cast(strides[2])};
    } else {
      first = arith::MulIOp::create(b, loc, h, cast(strides[0]));
      for (Value s : strides.drop_front())
        op.strides.push_back(cast(s));
    }
    Value element =
        arith::AddIOp::create(b, loc, cast(meta.getOffset()), first);
    op.address = arith::AddIOp::create(
        b, loc, base,
        arith::MulIOp::create(b, loc, element, i64(elementBytes)));
    return op;
  }

  /// The key mask (or none) of an op with `heads` heads.
  MaskInfo mask(Value keyMask, int64_t heads) {
    MaskInfo info;
    if (!keyMask)
      return info;
    info.buffer = toBuffer(keyMask);
    info.headsPerRow =
        heads / llvm::cast<RankedTensorType>(keyMask.getType()).getDimSize(0);
    return info;
  }

  /// Address of head `head`'s mask row, or 0 without a mask (in the loop).
  Value maskAddress(const MaskInfo &info, Value head) {
    if (!info.buffer)
      return i64(0);
    Value row = arith::DivUIOp::create(
        b, loc, head, arith::ConstantIndexOp::create(b, loc, info.headsPerRow));
    return at(info.buffer, row, 1).address;
  }

  /// scf.parallel over [0, heads) whose body `body` builds.
  void parallelOverHeads(int64_t heads,
                         function_ref<void(HeadLoopBuilder &, Value)> body) {
    Value zero = arith::ConstantIndexOp::create(b, loc, 0);
    Value one = arith::ConstantIndexOp::create(b, loc, 1);
    Value count = arith::ConstantIndexOp::create(b, loc, heads);
    scf::ParallelOp::create(b, loc, ValueRange{zero}, ValueRange{count},
                            ValueRange{one},
                            [&](OpBuilder &nb, Location l, ValueRange ivs) {
                              HeadLoopBuilder inner(nb, l);
                              body(inner, ivs[0]);
                              scf::ReduceOp::create(nb, l);
                            });
  }

  OpBuilder &b;
  Location loc;
};

/// The call of `loom_attention_forward` for one head (loom/Kernels.h gives
/// the argument order); `tk` is an i64 value (a decode step's filled keys).
void callForward(HeadLoopBuilder &body, func::FuncOp callee, int64_t tq,
                 Value tk, int64_t d, int64_t dv,
                 const HeadLoopBuilder::Operand &q,
                 const HeadLoopBuilder::Operand &k,
                 const HeadLoopBuilder::Operand &v,
                 const HeadLoopBuilder::Operand &o, Value lse, Value mask,
                 bool causal, double scale, int64_t blockQ, int64_t blockK) {
  SmallVector<Value> args = {body.i64(tq),
                             tk,
                             body.i64(d),
                             body.i64(dv),
                             q.address,
                             q.strides[0],
                             q.strides[1],
                             k.address,
                             k.strides[0],
                             k.strides[1],
                             v.address,
                             v.strides[0],
                             v.strides[1],
                             o.address,
                             o.strides[0],
                             lse,
                             mask,
                             body.i64(causal),
                             arith::ConstantFloatOp::create(body.b, body.loc,
                                                            body.b.getF64Type(),
                                                            APFloat(scale)),
                             body.i64(blockQ),
                             body.i64(blockK)};
  func::CallOp::create(body.b, body.loc, callee, args);
}

/// Emits the forward of `attention` (and of `lse`, if given) as kernel
/// calls; replaces both.
void lowerForward(ModuleOp module, Operation *anchor, Value q, Value k, Value v,
                  Value keyMask, bool causal, double scale,
                  loom::AttentionOp attention, loom::AttentionLseOp lse,
                  int64_t blockQ, int64_t blockK) {
  OpBuilder b(anchor);
  Location loc = anchor->getLoc();
  HeadLoopBuilder hb(b, loc);
  auto qT = llvm::cast<RankedTensorType>(q.getType());
  auto kT = llvm::cast<RankedTensorType>(k.getType());
  auto vT = llvm::cast<RankedTensorType>(v.getType());
  int64_t heads = HeadLoopBuilder::heads(qT);
  int64_t tq = qT.getDimSize(qT.getRank() - 2), d = qT.getShape().back();
  int64_t tk = kT.getDimSize(kT.getRank() - 2), dv = vT.getShape().back();
  HeadView qb = hb.heads(q), kb = hb.heads(k), vb = hb.heads(v);
  MaskInfo mask = hb.mask(keyMask, heads);
  auto f32 = b.getF32Type();
  loom::MergeHeadsOp mergedO;
  HeadView ob = attention
                    ? hb.resultBuffer(attention.getResult(), heads, mergedO)
                    : HeadView(memref::AllocOp::create(
                          b, loc, MemRefType::get({heads, tq, dv}, f32)));
  Value lb;
  if (lse)
    lb = memref::AllocOp::create(b, loc, MemRefType::get({heads, tq}, f32));
  func::FuncOp callee = declare(module, kForward, 20, 18);
  hb.parallelOverHeads(heads, [&](HeadLoopBuilder &body, Value h) {
    auto qo = body.at(qb, h, 4), ko = body.at(kb, h, 4), vo = body.at(vb, h, 4),
         oo = body.at(ob, h, 4);
    Value lseAddr = body.i64(0), maskAddr = body.maskAddress(mask, h);
    if (lb)
      lseAddr = body.at(lb, h, 4).address;
    callForward(body, callee, tq, body.i64(tk), d, dv, qo, ko, vo, oo, lseAddr,
                maskAddr, causal, scale, blockQ, blockK);
  });
  // Both results first: the builder inserts before `anchor`, which may be
  // one of the ops replaced.
  if (attention)
    hb.replaceResult(attention.getResult(), ob, mergedO);
  Value l =
      lse ? hb.toTensor(lb,
                        llvm::cast<RankedTensorType>(lse.getResult().getType()))
          : Value();
  if (attention)
    attention.erase();
  if (lse) {
    lse.getResult().replaceAllUsesWith(l);
    lse.erase();
  }
}

void lowerBackward(ModuleOp module, loom::AttentionGradOp op, int64_t blockQ,
                   int64_t blockK) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  HeadLoopBuilder hb(b, loc);
  auto qT = llvm::cast<RankedTensorType>(op.getQ().getType());
  auto kT = llvm::cast<RankedTensorType>(op.getK().getType());
  auto vT = llvm::cast<RankedTensorType>(op.getV().getType());
  int64_t heads = HeadLoopBuilder::heads(qT);
  int64_t tq = qT.getDimSize(qT.getRank() - 2), d = qT.getShape().back();
  int64_t tk = kT.getDimSize(kT.getRank() - 2), dv = vT.getShape().back();
  HeadView qb = hb.heads(op.getQ()), kb = hb.heads(op.getK()),
           vb = hb.heads(op.getV()), ob = hb.heads(op.getOut()),
           dob = hb.heads(op.getDOut());
  // lse: [..., Tq] -> [heads, Tq]
  HeadView lb = hb.heads(op.getLse(), /*trailing=*/1);
  MaskInfo mask = hb.mask(op.getKeyMask(), heads);
  loom::MergeHeadsOp mergedQ, mergedK, mergedV;
  HeadView dqb = hb.resultBuffer(op.getResult(0), heads, mergedQ),
           dkb = hb.resultBuffer(op.getResult(1), heads, mergedK),
           dvb = hb.resultBuffer(op.getResult(2), heads, mergedV);
  func::FuncOp callee = declare(module, kBackward, 30, 22);
  hb.parallelOverHeads(heads, [&](HeadLoopBuilder &body, Value h) {
    auto qo = body.at(qb, h, 4), ko = body.at(kb, h, 4), vo = body.at(vb, h, 4),
         oo = body.at(ob, h, 4), doo = body.at(dob, h, 4),
         lo = body.at(lb, h, 4), dqo = body.at(dqb, h, 4),
         dko = body.at(dkb, h, 4), dvo = body.at(dvb, h, 4);
    Value maskAddr = body.maskAddress(mask, h);
    SmallVector<Value> args = {
        body.i64(tq),
        body.i64(tk),
        body.i64(d),
        body.i64(dv),
        qo.address,
        qo.strides[0],
        qo.strides[1],
        ko.address,
        ko.strides[0],
        ko.strides[1],
        vo.address,
        vo.strides[0],
        vo.strides[1],
        oo.address,
        oo.strides[0],
        oo.strides[1],
        lo.address,
        doo.address,
        doo.strides[0],
        doo.strides[1],
        maskAddr,
        body.i64(op.getCausal()),
        arith::ConstantFloatOp::create(body.b, body.loc, body.b.getF64Type(),
                                       APFloat(op.getScale())),
        dqo.address,
        dqo.strides[0],
        dko.address,
        dko.strides[0],
        dvo.address,
        dvo.strides[0],
        body.i64(blockQ),
        body.i64(blockK)};
    func::CallOp::create(body.b, body.loc, callee, args);
  });
  hb.replaceResult(op.getResult(0), dqb, mergedQ);
  hb.replaceResult(op.getResult(1), dkb, mergedK);
  hb.replaceResult(op.getResult(2), dvb, mergedV);
  op.erase();
}

/// A decode step's attention: the new keys and values written into the
/// caches at each sequence's start (tensor inserts, which bufferize in place
/// into the cache arguments), then one kernel call per head over the
/// filled keys [0, start[b] + T) with the causal shift start[b].
void lowerCached(ModuleOp module, loom::CachedAttentionOp op, int64_t blockQ,
                 int64_t blockK) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  HeadLoopBuilder hb(b, loc);
  auto qT = op.getQ().getType();
  auto vT = op.getV().getType();
  int64_t batch = qT.getDimSize(0), headsPerSeq = qT.getDimSize(1),
          tq = qT.getDimSize(2), d = qT.getDimSize(3), dv = vT.getDimSize(3);
  Value kc = op.getKCache(), vc = op.getVCache();
  auto one = [&](int64_t n) { return b.getIndexAttr(n); };
  for (int64_t s = 0; s < batch; ++s) {
    Value index = arith::ConstantIndexOp::create(b, loc, s);
    Value start = arith::IndexCastOp::create(
        b, loc, b.getIndexType(),
        tensor::ExtractOp::create(b, loc, op.getStart(), ValueRange{index}));
    auto append = [&](Value cache, Value fresh, int64_t width) -> Value {
      SmallVector<OpFoldResult> sizes = {one(1), one(headsPerSeq), one(tq),
                                         one(width)};
      SmallVector<OpFoldResult> strides(4, one(1));
      Value rows = tensor::ExtractSliceOp::create(
          b, loc, fresh,
          SmallVector<OpFoldResult>{one(s), one(0), one(0), one(0)}, sizes,
          strides);
      return tensor::InsertSliceOp::create(
          b, loc, rows, cache,
          SmallVector<OpFoldResult>{one(s), one(0), start, one(0)}, sizes,
          strides);
    };
    kc = append(kc, op.getK(), d);
    vc = append(vc, op.getV(), dv);
  }
  int64_t heads = batch * headsPerSeq;
  HeadView qb = hb.heads(op.getQ()), kb = hb.heads(kc), vb = hb.heads(vc);
  Value startBuffer = hb.toBuffer(op.getStart());
  Value ob = memref::AllocOp::create(
      b, loc, MemRefType::get({heads, tq, dv}, b.getF32Type()));
  func::FuncOp callee = declare(module, kForward, 20, 18);
  hb.parallelOverHeads(heads, [&](HeadLoopBuilder &body, Value h) {
    auto qo = body.at(qb, h, 4), ko = body.at(kb, h, 4), vo = body.at(vb, h, 4),
         oo = body.at(ob, h, 4);
    Value seq = arith::DivUIOp::create(
        body.b, body.loc, h,
        arith::ConstantIndexOp::create(body.b, body.loc, headsPerSeq));
    Value start =
        memref::LoadOp::create(body.b, body.loc, startBuffer, ValueRange{seq});
    Value filled = arith::AddIOp::create(
        body.b, body.loc,
        arith::ExtSIOp::create(body.b, body.loc, body.b.getI64Type(), start),
        body.i64(tq));
    callForward(body, callee, tq, filled, d, dv, qo, ko, vo, oo, body.i64(0),
                body.i64(0), /*causal=*/true, double(op.getScale()), blockQ,
                blockK);
  });
  Value o = hb.toTensor(ob, op.getResult().getType());
  op.getResult().replaceAllUsesWith(o);
  op.getKCacheOut().replaceAllUsesWith(kc);
  op.getVCacheOut().replaceAllUsesWith(vc);
  op.erase();
}

struct LoomCpuAttentionToCall
    : public loom::cpu::impl::LoomCpuAttentionToCallBase<
          LoomCpuAttentionToCall> {
  using Base::Base;
  /// 1. Pair each f32 attention_lse with an attention of the same operands.
  /// 2. Lower the pairs, the lone attentions and lone attention_lses.
  /// 3. Lower each f32 attention_grad.
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<loom::AttentionOp> attentions;
    SmallVector<loom::AttentionLseOp> lses;
    SmallVector<loom::AttentionGradOp> grads;
    module.walk([&](Operation *op) {
      if (!loom::isBatchedF32Attention(op))
        return;
      if (auto a = llvm::dyn_cast<loom::AttentionOp>(op))
        attentions.push_back(a);
      else if (auto s = llvm::dyn_cast<loom::AttentionLseOp>(op))
        lses.push_back(s);
      else if (auto g = llvm::dyn_cast<loom::AttentionGradOp>(op))
        grads.push_back(g);
    });
    auto scaleOf = [](auto op) { return double(op.getScale()); };
    DominanceInfo dominance(module);
    SmallVector<loom::AttentionOp> lonePartners;
    for (loom::AttentionLseOp lse : lses) {
      loom::AttentionOp partner;

      for (loom::AttentionOp &a : attentions)
        if (a && a.getQ() == lse.getQ() && a.getK() == lse.getK() &&
            a.getKeyMask() == lse.getKeyMask() &&
            a.getCausal() == lse.getCausal() && scaleOf(a) == scaleOf(lse) &&
            a->getBlock() == lse->getBlock()) {
          partner = a;
          a = nullptr;
          break;
        }
      // One call before the earlier of the two, where the partner's v must
      // already exist; otherwise they are lowered apart.
      Operation *anchor = lse;
      if (partner && partner->isBeforeInBlock(lse))
        anchor = partner;
      if (partner && !dominance.properlyDominates(partner.getV(), anchor)) {
        lonePartners.push_back(partner);
        partner = nullptr;
        anchor = lse;
      }
      // A lone lse computes a throwaway output from k (no v to hand).
      Value v = partner ? partner.getV() : lse.getK();
      lowerForward(module, anchor, lse.getQ(), lse.getK(), v, lse.getKeyMask(),
                   lse.getCausal(), scaleOf(lse), partner, lse, blockQ, blockK);
    }
    attentions.append(lonePartners);
    for (loom::AttentionOp a : attentions)
      if (a)
        lowerForward(module, a, a.getQ(), a.getK(), a.getV(), a.getKeyMask(),
                     a.getCausal(), scaleOf(a), a, nullptr, blockQ, blockK);
    for (loom::AttentionGradOp g : grads)
      lowerBackward(module, g, blockQ, blockK);
    SmallVector<loom::CachedAttentionOp> cached;
    module.walk([&](loom::CachedAttentionOp op) {
      if (op.getQ().getType().getElementType().isF32())
        cached.push_back(op);
    });
    for (loom::CachedAttentionOp op : cached)
      lowerCached(module, op, blockQ, blockK);
    // The head splits that only the kernels read are gone with them.
    SmallVector<loom::SplitHeadsOp> splits;
    module.walk([&](loom::SplitHeadsOp op) { splits.push_back(op); });
    for (loom::SplitHeadsOp op : splits)
      if (op->use_empty())
        op.erase();
  }
};

} // namespace
