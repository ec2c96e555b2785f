//===- AttentionKernels.cpp - Attention as row loops, memory linear in T --===//
//
// See `loom-gpu-attention` in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "codegen/nvptx/Passes.h"

#include "ir/LoomOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"

#include "llvm/ADT/TypeSwitch.h"

#include <limits>

#define DEBUG_TYPE "loom-gpu-attention"

namespace loom::nvptx {
#define GEN_PASS_DEF_LOOMGPUATTENTION
#include "codegen/nvptx/Passes.h.inc"
} // namespace loom::nvptx

using namespace mlir;

namespace {

/// Builds the loops of one attention op on buffers.
class RowBuilder {
public:
  RowBuilder(OpBuilder &b, Location loc, Value q, Value k, Value mask,
             bool causal, double scale)
      : b(b), loc(loc), q(q), k(k), mask(mask), causal(causal) {
    auto qt = llvm::cast<MemRefType>(q.getType());
    auto kt = llvm::cast<MemRefType>(k.getType());
    int64_t rank = qt.getRank();
    batch.assign(qt.getShape().begin(), qt.getShape().end() - 2);
    tq = qt.getDimSize(rank - 2);
    tk = kt.getDimSize(rank - 2);
    d = qt.getDimSize(rank - 1);
    scaleValue = f32(scale);
  }

  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value f32(double v) {
    return arith::ConstantFloatOp::create(b, loc, b.getF32Type(),
                                          APFloat(float(v)));
  }

  /// `buffer[prefix..., row, col]` (or `[prefix..., row]` without col).
  SmallVector<Value> at(ValueRange prefix, Value row, Value col = Value()) {
    SmallVector<Value> indices(prefix.begin(), prefix.end());
    indices.push_back(row);
    if (col)
      indices.push_back(col);
    return indices;
  }
  Value load(Value buffer, ValueRange indices) {
    return memref::LoadOp::create(b, loc, buffer, indices);
  }

  /// An scf.parallel over the batch dims and `rows`; `body` gets the batch
  /// indices and the row.
  void overRows(int64_t rows,
                llvm::function_ref<void(ValueRange, Value)> body) {
    SmallVector<Value> lbs, ubs, steps;
    for (int64_t n : batch) {
      lbs.push_back(idx(0));
      ubs.push_back(idx(n));
      steps.push_back(idx(1));
    }
    lbs.push_back(idx(0));
    ubs.push_back(idx(rows));
    steps.push_back(idx(1));
    auto loop = scf::ParallelOp::create(b, loc, lbs, ubs, steps);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(loop.getBody()->getTerminator());
    SmallVector<Value> ivs(loop.getInductionVars());
    body(ValueRange(ivs).drop_back(), ivs.back());
  }

  /// sum over c < n of x[px..., rx, c] * y[py..., ry, c].
  Value dot(Value x, ValueRange prefix, Value rx, Value y, Value ry,
            int64_t n) {
    auto loop = scf::ForOp::create(
        b, loc, idx(0), idx(n), idx(1), ValueRange{f32(0.0)},
        [&](OpBuilder &lb, Location l, Value c, ValueRange acc) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(lb.getInsertionBlock(), lb.getInsertionPoint());
          Value p = arith::MulFOp::create(b, l, load(x, at(prefix, rx, c)),
                                          load(y, at(prefix, ry, c)));
          scf::YieldOp::create(
              b, l, ValueRange{arith::AddFOp::create(b, l, acc[0], p)});
        });
    return loop.getResult(0);
  }

  /// Row `row` of `buffer` as n values (registers, in the kernel).
  SmallVector<Value> loadRow(Value buffer, ValueRange prefix, Value row,
                             int64_t n) {
    SmallVector<Value> values;
    for (int64_t c = 0; c < n; ++c)
      values.push_back(load(buffer, at(prefix, row, idx(c))));
    return values;
  }
  /// sum over c of x[c] * buffer[prefix, row, c], unrolled.
  Value dotRow(ArrayRef<Value> x, Value buffer, ValueRange prefix, Value row) {
    Value acc = f32(0.0);
    for (auto [c, xc] : llvm::enumerate(x))
      acc = math::FmaOp::create(
          b, loc, xc, load(buffer, at(prefix, row, idx(int64_t(c)))), acc);
    return acc;
  }
  /// acc[c] + w * buffer[prefix, row, c] for every c, unrolled.
  SmallVector<Value> axpyRow(ValueRange acc, Value w, Value buffer,
                             ValueRange prefix, Value row) {
    SmallVector<Value> out;
    for (auto [c, a] : llvm::enumerate(acc))
      out.push_back(math::FmaOp::create(
          b, loc, w, load(buffer, at(prefix, row, idx(int64_t(c)))), a));
    return out;
  }

  /// scale * q[i] . k[j] (q[i] from `qRow` when it holds it).
  Value score(ValueRange prefix, Value i, Value j, ArrayRef<Value> qRow = {}) {
    Value product =
        qRow.empty() ? dot(q, prefix, i, k, j, d) : dotRow(qRow, k, prefix, j);
    return arith::MulFOp::create(b, loc, product, scaleValue);
  }

  /// For c < n: buffer[prefix, row, c] = update(c, old).
  void updateRow(Value buffer, ValueRange prefix, Value row, int64_t n,
                 llvm::function_ref<Value(Value c, Value old)> update) {
    auto loop = scf::ForOp::create(b, loc, idx(0), idx(n), idx(1));
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(loop.getBody()->getTerminator());
    Value c = loop.getInductionVar();
    SmallVector<Value> where = at(prefix, row, c);
    Value old = load(buffer, where);
    memref::StoreOp::create(b, loc, update(c, old), buffer, where);
  }

  /// 1 / l where l > 0, else 0 (a query that attends no key gets zeros).
  Value inverseOrZero(Value l) {
    Value positive =
        arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, l, f32(0.0));
    return arith::SelectOp::create(
        b, loc, positive, arith::DivFOp::create(b, loc, f32(1.0), l), f32(0.0));
  }

  /// The keys query `i` attends: [0, end).
  Value keyEnd(Value i) {
    if (!causal)
      return idx(tk);
    // j <= i + (tk - tq)
    Value end = arith::AddIOp::create(b, loc, i, idx(tk - tq + 1));
    return arith::MinSIOp::create(
        b, loc, arith::MaxSIOp::create(b, loc, end, idx(0)), idx(tk));
  }
  /// The queries that attend key `j`: [begin, tq).
  Value queryBegin(Value j) {
    if (!causal)
      return idx(0);
    Value begin = arith::SubIOp::create(b, loc, j, idx(tk - tq));
    return arith::MinSIOp::create(
        b, loc, arith::MaxSIOp::create(b, loc, begin, idx(0)), idx(tq));
  }
  /// Whether batch entry prefix[0]'s key `j` is attended (true without a
  /// mask).
  Value attended(ValueRange prefix, Value j) {
    if (!mask)
      return arith::ConstantIntOp::create(b, loc, b.getI1Type(), 1);
    return load(mask, ValueRange{prefix.front(), j});
  }

  /// A loop over keys [0, end) of query `i` carrying `init`; `body` runs for
  /// the attended keys and returns the new values.
  scf::ForOp
  overKeys(ValueRange prefix, Value end, ValueRange init,
           llvm::function_ref<SmallVector<Value>(Value j, ValueRange carried)>
               body) {
    auto loop = scf::ForOp::create(b, loc, idx(0), end, idx(1), init);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value j = loop.getInductionVar();
    ValueRange carried = loop.getRegionIterArgs();
    SmallVector<Value> next;
    if (mask) {
      auto check = scf::IfOp::create(b, loc, carried.getTypes(),
                                     attended(prefix, j), true);
      // (Without results, the branches come with their terminators.)
      for (Block *block : {check.thenBlock(), check.elseBlock()})
        if (!block->empty())
          block->back().erase();
      b.setInsertionPointToStart(check.thenBlock());
      scf::YieldOp::create(b, loc, body(j, carried));
      b.setInsertionPointToStart(check.elseBlock());
      scf::YieldOp::create(b, loc, carried);
      b.setInsertionPointAfter(check);
      next.assign(check.getResults().begin(), check.getResults().end());
    } else {
      next = body(j, carried);
    }
    if (loop.getBody()->mightHaveTerminator())
      loop.getBody()->getTerminator()->erase();
    b.setInsertionPointToEnd(loop.getBody());
    scf::YieldOp::create(b, loc, next);
    return loop;
  }

  /// Running max and sum of the online softmax of query `i`'s scores;
  /// `withScore(j, p, correction)` also updates a row per key.
  std::pair<Value, Value> onlineSoftmax(
      ValueRange prefix, Value i,
      llvm::function_ref<void(Value j, Value p, Value corr)> withScore =
          nullptr,
      ArrayRef<Value> qRow = {}) {
    Value minusInf = f32(-std::numeric_limits<double>::infinity());
    auto loop =
        overKeys(prefix, keyEnd(i), ValueRange{minusInf, f32(0.0)},
                 [&](Value j, ValueRange ml) -> SmallVector<Value> {
                   Value s = score(prefix, i, j, qRow);
                   Value m = arith::MaximumFOp::create(b, loc, ml[0], s);
                   Value corr = math::ExpOp::create(
                       b, loc, arith::SubFOp::create(b, loc, ml[0], m));
                   Value p = math::ExpOp::create(
                       b, loc, arith::SubFOp::create(b, loc, s, m));
                   Value l = arith::AddFOp::create(
                       b, loc, arith::MulFOp::create(b, loc, ml[1], corr), p);
                   if (withScore)
                     withScore(j, p, corr);
                   return {m, l};
                 });
    return {loop.getResult(0), loop.getResult(1)};
  }

  OpBuilder &b;
  Location loc;
  Value q, k, mask;
  bool causal;
  SmallVector<int64_t> batch;
  int64_t tq = 0, tk = 0, d = 0;
  Value scaleValue;
};

/// The buffer a tensor operand reads (bufferization left unknown ops'
/// operands as `to_tensor` of their buffers).
FailureOr<Value> bufferOf(Operation *op, Value tensor) {
  if (auto toTensor = tensor.getDefiningOp<bufferization::ToTensorOp>())
    return toTensor.getBuffer();
  return op->emitOpError("has an operand that is not a buffer after "
                         "bufferization");
}

/// The key mask's buffer, or null without a mask.
FailureOr<Value> maskOf(Operation *op, Value mask) {
  if (!mask)
    return Value();
  return bufferOf(op, mask);
}

/// A fresh buffer of `type`'s shape and the tensor that reads it.
std::pair<Value, Value> newBuffer(OpBuilder &b, Location loc, Type type) {
  auto t = llvm::cast<RankedTensorType>(type);
  Value buffer = memref::AllocOp::create(
      b, loc, MemRefType::get(t.getShape(), t.getElementType()));
  Value tensor = bufferization::ToTensorOp::create(b, loc, t, buffer,
                                                   /*restrict=*/true,
                                                   /*writable=*/true);
  return {buffer, tensor};
}

/// Rows of at most this many values are kept in registers (a thread's
/// output row and query row: 2 x 64 floats fit the 255 registers of a
/// thread without spills); longer rows are updated in memory.
constexpr int64_t kRegisterRow = 64;

/// The forward with query i's q row and output row in registers.
void forwardInRegisters(RowBuilder &r, Value v, Value out, int64_t dv) {
  OpBuilder &b = r.b;
  Location loc = r.loc;
  r.overRows(r.tq, [&](ValueRange prefix, Value i) {
    SmallVector<Value> qRow = r.loadRow(r.q, prefix, i, r.d);
    SmallVector<Value> init = {r.f32(-std::numeric_limits<double>::infinity()),
                               r.f32(0.0)};
    init.append(dv, r.f32(0.0));
    auto loop = r.overKeys(
        prefix, r.keyEnd(i), init,
        [&](Value j, ValueRange carried) -> SmallVector<Value> {
          Value s = arith::MulFOp::create(
              b, loc, r.dotRow(qRow, r.k, prefix, j), r.scaleValue);
          Value m = arith::MaximumFOp::create(b, loc, carried[0], s);
          Value corr = math::ExpOp::create(
              b, loc, arith::SubFOp::create(b, loc, carried[0], m));
          Value p =
              math::ExpOp::create(b, loc, arith::SubFOp::create(b, loc, s, m));
          Value l = math::FmaOp::create(b, loc, carried[1], corr, p);
          SmallVector<Value> scaled;
          for (Value o : carried.drop_front(2))
            scaled.push_back(arith::MulFOp::create(b, loc, o, corr));
          SmallVector<Value> next = {m, l};
          llvm::append_range(next, r.axpyRow(scaled, p, v, prefix, j));
          return next;
        });
    Value l = loop.getResult(1);
    Value inv = r.inverseOrZero(l);
    for (int64_t c = 0; c < dv; ++c)
      memref::StoreOp::create(
          b, loc, arith::MulFOp::create(b, loc, loop.getResult(2 + c), inv),
          out, r.at(prefix, i, r.idx(c)));
  });
}

LogicalResult lowerForward(loom::AttentionOp op) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  auto q = bufferOf(op, op.getQ()), k = bufferOf(op, op.getK()),
       v = bufferOf(op, op.getV());
  if (failed(q) || failed(k) || failed(v))
    return failure();
  auto mask = maskOf(op, op.getKeyMask());
  if (failed(mask))
    return failure();
  auto [out, result] = newBuffer(b, loc, op.getType());
  RowBuilder r(b, loc, *q, *k, *mask, op.getCausal(), op.getScale());
  int64_t dv = llvm::cast<MemRefType>(out.getType()).getShape().back();
  if (r.d <= kRegisterRow && dv <= kRegisterRow) {
    forwardInRegisters(r, *v, out, dv);
    op.getResult().replaceAllUsesWith(result);
    op.erase();
    return success();
  }
  r.overRows(r.tq, [&](ValueRange prefix, Value i) {
    r.updateRow(out, prefix, i, dv,
                [&](Value, Value) -> Value { return r.f32(0.0); });
    auto [m, l] = r.onlineSoftmax(prefix, i, [&](Value j, Value p, Value corr) {
      r.updateRow(out, prefix, i, dv, [&](Value c, Value old) -> Value {
        Value x = r.load(*v, r.at(prefix, j, c));
        return arith::AddFOp::create(b, loc,
                                     arith::MulFOp::create(b, loc, old, corr),
                                     arith::MulFOp::create(b, loc, p, x));
      });
    });
    (void)m;
    Value inv = r.inverseOrZero(l);
    r.updateRow(out, prefix, i, dv, [&](Value, Value old) -> Value {
      return arith::MulFOp::create(b, loc, old, inv);
    });
  });
  op.getResult().replaceAllUsesWith(result);
  op.erase();
  return success();
}

LogicalResult lowerLse(loom::AttentionLseOp op) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  auto q = bufferOf(op, op.getQ()), k = bufferOf(op, op.getK());
  if (failed(q) || failed(k))
    return failure();
  auto mask = maskOf(op, op.getKeyMask());
  if (failed(mask))
    return failure();
  auto [lse, result] = newBuffer(b, loc, op.getType());
  RowBuilder r(b, loc, *q, *k, *mask, op.getCausal(), op.getScale());
  r.overRows(r.tq, [&](ValueRange prefix, Value i) {
    SmallVector<Value> qRow;
    if (r.d <= kRegisterRow)
      qRow = r.loadRow(*q, prefix, i, r.d);
    auto [m, l] = r.onlineSoftmax(prefix, i, nullptr, qRow);
    // 0 for a query that attends no key (the op's definition).
    Value positive =
        arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, l, r.f32(0.0));
    Value value = arith::SelectOp::create(
        b, loc, positive,
        arith::AddFOp::create(b, loc, m, math::LogOp::create(b, loc, l)),
        r.f32(0.0));
    memref::StoreOp::create(b, loc, value, lse, r.at(prefix, i));
  });
  op.getResult().replaceAllUsesWith(result);
  op.erase();
  return success();
}

LogicalResult lowerGrad(loom::AttentionGradOp op) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  auto q = bufferOf(op, op.getQ()), k = bufferOf(op, op.getK()),
       v = bufferOf(op, op.getV()), out = bufferOf(op, op.getOut()),
       lse = bufferOf(op, op.getLse()), dout = bufferOf(op, op.getDOut());
  if (failed(q) || failed(k) || failed(v) || failed(out) || failed(lse) ||
      failed(dout))
    return failure();
  auto mask = maskOf(op, op.getKeyMask());
  if (failed(mask))
    return failure();
  auto [dq, dqTensor] = newBuffer(b, loc, op.getDQ().getType());
  auto [dk, dkTensor] = newBuffer(b, loc, op.getDK().getType());
  auto [dvBuf, dvTensor] = newBuffer(b, loc, op.getDV().getType());
  auto lseType = llvm::cast<MemRefType>(lse->getType());
  Value delta = memref::AllocOp::create(
      b, loc, MemRefType::get(lseType.getShape(), b.getF32Type()));
  RowBuilder r(b, loc, *q, *k, *mask, op.getCausal(), op.getScale());
  int64_t dv = llvm::cast<MemRefType>(v->getType()).getShape().back();
  // dS[i, j] = P (dP - delta_i), P = exp(S - lse_i), dP = dO_i . v_j.
  auto dS = [&](ValueRange prefix, Value i, Value j, Value deltaI, Value p) {
    Value dp = r.dot(*dout, prefix, i, *v, j, dv);
    return arith::MulFOp::create(b, loc, p,
                                 arith::SubFOp::create(b, loc, dp, deltaI));
  };
  auto prob = [&](ValueRange prefix, Value i, Value j) {
    Value lseI = r.load(*lse, r.at(prefix, i));
    return math::ExpOp::create(
        b, loc, arith::SubFOp::create(b, loc, r.score(prefix, i, j), lseI));
  };
  if (r.d <= kRegisterRow && dv <= kRegisterRow) {
    // Per query row: the dQ_i accumulator in registers.
    r.overRows(r.tq, [&](ValueRange prefix, Value i) {
      Value deltaI = r.dot(*dout, prefix, i, *out, i, dv);
      memref::StoreOp::create(b, loc, deltaI, delta, r.at(prefix, i));
      Value lseI = r.load(*lse, r.at(prefix, i));
      SmallVector<Value> zeros(r.d, r.f32(0.0));
      auto loop = r.overKeys(
          prefix, r.keyEnd(i), zeros,
          [&](Value j, ValueRange acc) -> SmallVector<Value> {
            Value p = math::ExpOp::create(
                b, loc,
                arith::SubFOp::create(b, loc, r.score(prefix, i, j), lseI));
            Value dp = r.dot(*dout, prefix, i, *v, j, dv);
            Value ds = arith::MulFOp::create(
                b, loc, p, arith::SubFOp::create(b, loc, dp, deltaI));
            Value w = arith::MulFOp::create(b, loc, ds, r.scaleValue);
            return r.axpyRow(acc, w, *k, prefix, j);
          });
      for (int64_t c = 0; c < r.d; ++c)
        memref::StoreOp::create(b, loc, loop.getResult(c), dq,
                                r.at(prefix, i, r.idx(c)));
    });
    // Per key row, one kernel for dV_j and one for dK_j (each with its
    // accumulator in registers): acc += weight(i) * rows[i] over the
    // queries that attend key j.
    auto keyRows =
        [&](Value result, Value rows, int64_t n,
            llvm::function_ref<Value(ValueRange, Value, Value, Value)> weight) {
          r.overRows(r.tk, [&](ValueRange prefix, Value j) {
            SmallVector<Value> zeros(n, r.f32(0.0));
            auto check = scf::IfOp::create(b, loc, ValueRange(zeros).getTypes(),
                                           r.attended(prefix, j), true);
            for (Block *block : {check.thenBlock(), check.elseBlock()})
              if (!block->empty())
                block->back().erase();
            {
              OpBuilder::InsertionGuard guard(b);
              b.setInsertionPointToStart(check.elseBlock());
              scf::YieldOp::create(b, loc, zeros);
              b.setInsertionPointToStart(check.thenBlock());
              auto loop = scf::ForOp::create(b, loc, r.queryBegin(j),
                                             r.idx(r.tq), r.idx(1), zeros);
              if (loop.getBody()->mightHaveTerminator())
                loop.getBody()->getTerminator()->erase();
              b.setInsertionPointToStart(loop.getBody());
              Value i = loop.getInductionVar();
              Value lseI = r.load(*lse, r.at(prefix, i));
              Value p = math::ExpOp::create(
                  b, loc,
                  arith::SubFOp::create(b, loc, r.score(prefix, i, j), lseI));
              Value w = weight(prefix, i, j, p);
              scf::YieldOp::create(
                  b, loc,
                  r.axpyRow(loop.getRegionIterArgs(), w, rows, prefix, i));
              b.setInsertionPointAfter(loop);
              scf::YieldOp::create(b, loc, loop.getResults());
            }
            for (int64_t c = 0; c < n; ++c)
              memref::StoreOp::create(b, loc, check.getResult(c), result,
                                      r.at(prefix, j, r.idx(c)));
          });
        };
    // dV_j = sum_i P[i, j] dO_i.
    keyRows(dvBuf, *dout, dv,
            [&](ValueRange, Value, Value, Value p) { return p; });
    // dK_j = scale * sum_i dS[i, j] q_i.
    keyRows(dk, *q, r.d,
            [&](ValueRange prefix, Value i, Value j, Value p) -> Value {
              Value deltaI = r.load(delta, r.at(prefix, i));
              Value dp = r.dot(*dout, prefix, i, *v, j, dv);
              Value ds = arith::MulFOp::create(
                  b, loc, p, arith::SubFOp::create(b, loc, dp, deltaI));
              return arith::MulFOp::create(b, loc, ds, r.scaleValue);
            });
  } else {
    // Per query row: delta_i, then dQ_i = scale * sum_j dS[i, j] k_j.
    r.overRows(r.tq, [&](ValueRange prefix, Value i) {
      Value deltaI = r.dot(*dout, prefix, i, *out, i, dv);
      memref::StoreOp::create(b, loc, deltaI, delta, r.at(prefix, i));
      r.updateRow(dq, prefix, i, r.d,
                  [&](Value, Value) -> Value { return r.f32(0.0); });
      r.overKeys(
          prefix, r.keyEnd(i), ValueRange{},
          [&](Value j, ValueRange) -> SmallVector<Value> {
            Value ds = dS(prefix, i, j, deltaI, prob(prefix, i, j));
            Value w = arith::MulFOp::create(b, loc, ds, r.scaleValue);
            r.updateRow(dq, prefix, i, r.d, [&](Value c, Value old) -> Value {
              Value x = r.load(*k, r.at(prefix, j, c));
              return arith::AddFOp::create(b, loc, old,
                                           arith::MulFOp::create(b, loc, w, x));
            });
            return {};
          });
    });
    // Per key row: dV_j = sum_i P[i, j] dO_i, dK_j = scale * sum_i dS q_i.
    r.overRows(r.tk, [&](ValueRange prefix, Value j) {
      r.updateRow(dk, prefix, j, r.d,
                  [&](Value, Value) -> Value { return r.f32(0.0); });
      r.updateRow(dvBuf, prefix, j, dv,
                  [&](Value, Value) -> Value { return r.f32(0.0); });
      auto check = scf::IfOp::create(b, loc, r.attended(prefix, j), false);
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPoint(check.thenBlock()->getTerminator());
      auto loop =
          scf::ForOp::create(b, loc, r.queryBegin(j), r.idx(r.tq), r.idx(1));
      b.setInsertionPoint(loop.getBody()->getTerminator());
      Value i = loop.getInductionVar();
      Value p = prob(prefix, i, j);
      Value deltaI = r.load(delta, r.at(prefix, i));
      Value ds = dS(prefix, i, j, deltaI, p);
      Value w = arith::MulFOp::create(b, loc, ds, r.scaleValue);
      r.updateRow(dvBuf, prefix, j, dv, [&](Value c, Value old) -> Value {
        Value x = r.load(*dout, r.at(prefix, i, c));
        return arith::AddFOp::create(b, loc, old,
                                     arith::MulFOp::create(b, loc, p, x));
      });
      r.updateRow(dk, prefix, j, r.d, [&](Value c, Value old) -> Value {
        Value x = r.load(*q, r.at(prefix, i, c));
        return arith::AddFOp::create(b, loc, old,
                                     arith::MulFOp::create(b, loc, w, x));
      });
    });
  }
  op.getDQ().replaceAllUsesWith(dqTensor);
  op.getDK().replaceAllUsesWith(dkTensor);
  op.getDV().replaceAllUsesWith(dvTensor);
  op.erase();
  return success();
}

struct LoomGpuAttention
    : public loom::nvptx::impl::LoomGpuAttentionBase<LoomGpuAttention> {
  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation().walk([&](Operation *op) {
      if (llvm::isa<loom::AttentionOp, loom::AttentionLseOp,
                    loom::AttentionGradOp>(op))
        ops.push_back(op);
    });
    for (Operation *op : ops) {
      LogicalResult done =
          llvm::TypeSwitch<Operation *, LogicalResult>(op)
              .Case([](loom::AttentionOp a) { return lowerForward(a); })
              .Case([](loom::AttentionLseOp a) { return lowerLse(a); })
              .Case([](loom::AttentionGradOp a) { return lowerGrad(a); });
      if (failed(done))
        return signalPassFailure();
    }
  }
};

} // namespace
