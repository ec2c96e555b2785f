//===- Model.cpp - Lowering of attention, cross_entropy and lstm ----------===//
//
// Straightforward (untiled) forms: attention materializes its score matrix,
// cross_entropy works row by row, lstm is an scf.for over time. The
// flash-attention and fusion passes replace these on the fast path.
//
//===----------------------------------------------------------------------===//

#include "passes/LowerToLinalg/Lowering.h"

#include "ir/LoomOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <limits>

using namespace mlir;
using namespace loom::lowering;

namespace {

RankedTensorType withShape(Type t, ArrayRef<int64_t> shape) {
  return RankedTensorType::get(
      shape, llvm::cast<RankedTensorType>(t).getElementType());
}

SmallVector<OpFoldResult> indexAttrs(OpBuilder &b, ArrayRef<int64_t> values) {
  SmallVector<OpFoldResult> r;
  for (int64_t v : values)
    r.push_back(b.getIndexAttr(v));
  return r;
}

/// q: [..., Tq, D], k: [..., Tk, D], v: [..., Tk, Dv] -> [..., Tq, Dv]
struct AttentionLowering : OpRewritePattern<loom::AttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::AttentionOp op,
                                PatternRewriter &rewriter) const override {
    if (op->hasAttr(kKeptForKernelAttr))
      return rewriter.notifyMatchFailure(op, "left to a kernel");
    Location loc = op.getLoc();
    LinalgBuilder lb(rewriter, loc);
    auto qT = llvm::cast<RankedTensorType>(op.getQ().getType());
    auto kT = llvm::cast<RankedTensorType>(op.getK().getType());
    auto vT = llvm::cast<RankedTensorType>(op.getV().getType());
    int64_t rank = qT.getRank();
    int64_t tq = qT.getDimSize(rank - 2), d = qT.getShape().back();
    int64_t tk = kT.getDimSize(rank - 2), dv = vT.getShape().back();
    int64_t batch = 1;
    for (int64_t s : qT.getShape().drop_back(2))
      batch *= s;
    int64_t outer = qT.getDimSize(0); // the key mask's B
    int64_t inner = batch / outer;

    Value q = lb.reshape(op.getQ(), withShape(qT, {batch, tq, d}));
    Value k = lb.reshape(op.getK(), withShape(kT, {batch, tk, d}));
    Value v = lb.reshape(op.getV(), withShape(vT, {batch, tk, dv}));
    // scores = q @ k^T: [batch, Tq, Tk]
    auto ktT = withShape(kT, {batch, d, tk});
    Value kt = linalg::TransposeOp::create(rewriter, loc, k, lb.empty(ktT),
                                           ArrayRef<int64_t>{0, 2, 1})
                   .getResult()[0];
    auto sT = withShape(qT, {batch, tq, tk});
    Value s = linalg::BatchMatmulOp::create(rewriter, loc, TypeRange{sT},
                                            ValueRange{q, kt},
                                            ValueRange{lb.full(sT, 0.0)})
                  .getResult(0);

    // Scale and mask, viewing the batch as [B, inner].
    auto s4T = withShape(qT, {outer, inner, tq, tk});
    Value s4 = lb.reshape(s, s4T);
    double scale = op.getScale();
    bool causal = op.getCausal();
    int64_t shift = tk - tq;
    SmallVector<Value> inputs = {s4};
    SmallVector<AffineMap> maps = {rewriter.getMultiDimIdentityMap(4)};
    if (Value mask = op.getKeyMask()) {
      inputs.push_back(mask);
      maps.push_back(AffineMap::get(
          4, 0, {rewriter.getAffineDimExpr(0), rewriter.getAffineDimExpr(3)},
          rewriter.getContext()));
    }
    maps.push_back(rewriter.getMultiDimIdentityMap(4));
    bool hasMask = inputs.size() == 2;
    SmallVector<utils::IteratorType> par(4, utils::IteratorType::parallel);
    Value masked =
        linalg::GenericOp::create(
            rewriter, loc, TypeRange{s4T}, inputs, ValueRange{lb.empty(s4T)},
            maps, par,
            [&](OpBuilder &b, Location l, ValueRange a) {
              Type et = a[0].getType();
              Value x = arith::MulFOp::create(b, l, a[0],
                                              scalarConstant(b, l, et, scale));
              Value ninf = scalarConstant(
                  b, l, et, -std::numeric_limits<double>::infinity());
              if (causal) {
                // Key j is visible to query i when j <= i + (Tk - Tq).
                Value i = linalg::IndexOp::create(b, l, 2);
                Value j = linalg::IndexOp::create(b, l, 3);
                Value limit = arith::AddIOp::create(
                    b, l, i, arith::ConstantIndexOp::create(b, l, shift));
                Value visible = arith::CmpIOp::create(
                    b, l, arith::CmpIPredicate::sle, j, limit);
                x = arith::SelectOp::create(b, l, visible, x, ninf);
              }
              if (hasMask)
                x = arith::SelectOp::create(b, l, a[1], x, ninf);
              linalg::YieldOp::create(b, l, x);
            })
            .getResult(0);

    // Softmax over keys; a row with no visible key gives zeros.
    int64_t last = 3;
    Value max = lb.unsqueeze(
        lb.reduce(masked, {last}, lowestValue(sT.getElementType()), maxValues),
        {last});
    Value e = lb.elementwise(
        s4T, {masked, max}, [](OpBuilder &b, Location l, ValueRange a) {
          Type et = a[0].getType();
          Value ninf = scalarConstant(b, l, et,
                                      -std::numeric_limits<double>::infinity());
          Value empty = arith::CmpFOp::create(b, l, arith::CmpFPredicate::OEQ,
                                              a[1], ninf);
          Value m = arith::SelectOp::create(
              b, l, empty, scalarConstant(b, l, et, 0.0), a[1]);
          return math::ExpOp::create(b, l, arith::SubFOp::create(b, l, a[0], m))
              .getResult();
        });
    Value sum = lb.unsqueeze(lb.reduce(e, {last}, 0.0, addValues), {last});
    Value p = lb.elementwise(
        s4T, {e, sum}, [](OpBuilder &b, Location l, ValueRange a) {
          Type et = a[0].getType();
          Value zero = scalarConstant(b, l, et, 0.0);
          Value isZero = arith::CmpFOp::create(b, l, arith::CmpFPredicate::OEQ,
                                               a[1], zero);
          Value safe = arith::SelectOp::create(
              b, l, isZero, scalarConstant(b, l, et, 1.0), a[1]);
          return arith::DivFOp::create(b, l, a[0], safe).getResult();
        });

    // out = p @ v: [batch, Tq, Dv]
    auto oT = withShape(qT, {batch, tq, dv});
    Value o = linalg::BatchMatmulOp::create(rewriter, loc, TypeRange{oT},
                                            ValueRange{lb.reshape(p, sT), v},
                                            ValueRange{lb.full(oT, 0.0)})
                  .getResult(0);
    rewriter.replaceOp(op, lb.reshape(o, op.getType()));
    return success();
  }
};

} // namespace

/// max + log(sum(exp(x - max))) per row of a static [N, V] tensor: one
/// max-reduction and one pass of exp-and-add, then the [N] log.
Value loom::lowering::lowerRowLogSumExp(LinalgBuilder &lb, Value rows) {
  OpBuilder &b = lb.builder();
  Location loc = lb.getLoc();
  auto rowsT = llvm::cast<RankedTensorType>(rows.getType());
  Type et = rowsT.getElementType();
  auto rowT = RankedTensorType::get({rowsT.getDimSize(0)}, et);
  Value max = lb.reduce(rows, {1}, lowestValue(et), maxValues); // [N]
  // sumexp[n] = sum_v exp(x[n, v] - max[n])
  AffineMap row = AffineMap::get(2, 0, {b.getAffineDimExpr(0)}, b.getContext());
  SmallVector<AffineMap> maps = {b.getMultiDimIdentityMap(2), row, row};
  Value sumexp =
      linalg::GenericOp::create(
          b, loc, TypeRange{rowT}, ValueRange{rows, max},
          ValueRange{lb.full(rowT, 0.0)}, maps,
          {utils::IteratorType::parallel, utils::IteratorType::reduction},
          [](OpBuilder &b, Location l, ValueRange a) {
            Value e = math::ExpOp::create(
                b, l, arith::SubFOp::create(b, l, a[0], a[1]));
            linalg::YieldOp::create(
                b, l, arith::AddFOp::create(b, l, a[2], e).getResult());
          })
          .getResult(0);
  return lb.elementwise(
      rowT, {max, sumexp}, [](OpBuilder &b, Location l, ValueRange a) {
        return arith::AddFOp::create(b, l, math::LogOp::create(b, l, a[1]),
                                     a[0])
            .getResult();
      });
}

namespace {

/// mean over kept rows of logsumexp(x) - x[target]; the logsumexp from the
/// `lse` operand when loom-fuse-cross-entropy shared it with the gradient.
struct CrossEntropyLowering : OpRewritePattern<loom::CrossEntropyOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::CrossEntropyOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    LinalgBuilder lb(rewriter, loc);
    auto lT = llvm::cast<RankedTensorType>(op.getLogits().getType());
    int64_t vocab = lT.getShape().back();
    int64_t rows = lT.getNumElements() / std::max<int64_t>(vocab, 1);
    Type et = lT.getElementType();
    Value logits = lb.reshape(op.getLogits(), withShape(lT, {rows, vocab}));
    Value targets = lb.reshape(op.getTargets(),
                               withShape(op.getTargets().getType(), {rows}));
    int64_t ignore = op.getIgnoreIndex();
    auto rowT = RankedTensorType::get({rows}, et);
    Value lse = op.getLse() ? lb.reshape(op.getLse(), rowT)
                            : lowerRowLogSumExp(lb, logits);

    // Per row: (loss, kept) with loss = lse - x[target].
    auto pairMaps =
        SmallVector<AffineMap>(4, rewriter.getMultiDimIdentityMap(1));
    auto rowsGeneric = linalg::GenericOp::create(
        rewriter, loc, TypeRange{rowT, rowT}, ValueRange{lse, targets},
        ValueRange{lb.empty(rowT), lb.empty(rowT)}, pairMaps,
        {utils::IteratorType::parallel},
        [&](OpBuilder &b, Location l, ValueRange a) {
          Value t = a[1];
          Value kept = arith::CmpIOp::create(
              b, l, arith::CmpIPredicate::ne, t,
              arith::ConstantIntOp::create(b, l, t.getType(), ignore));
          Value idx = arith::IndexCastOp::create(b, l, b.getIndexType(), t);
          idx = arith::MaxSIOp::create(b, l, idx,
                                       arith::ConstantIndexOp::create(b, l, 0));
          idx = arith::MinSIOp::create(
              b, l, idx, arith::ConstantIndexOp::create(b, l, vocab - 1));
          Value n = linalg::IndexOp::create(b, l, 0);
          Value picked =
              tensor::ExtractOp::create(b, l, logits, ValueRange{n, idx});
          Value loss = arith::SubFOp::create(b, l, a[0], picked);
          Value zero = scalarConstant(b, l, et, 0.0);
          Value one = scalarConstant(b, l, et, 1.0);
          linalg::YieldOp::create(
              b, l,
              ValueRange{arith::SelectOp::create(b, l, kept, loss, zero),
                         arith::SelectOp::create(b, l, kept, one, zero)});
        });
    Value total = lb.reduce(rowsGeneric.getResult(0), {0}, 0.0, addValues);
    Value count = lb.reduce(rowsGeneric.getResult(1), {0}, 0.0, addValues);
    Value mean = lb.elementwise(
        RankedTensorType::get({}, et), {total, count},
        [](OpBuilder &b, Location l, ValueRange a) {
          return arith::DivFOp::create(b, l, a[0], a[1]).getResult();
        });
    rewriter.replaceOp(op, mean);
    return success();
  }
};

/// The rows' logsumexp, [..., V] -> [...].
struct LogSumExpLowering : OpRewritePattern<loom::LogSumExpOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::LogSumExpOp op,
                                PatternRewriter &rewriter) const override {
    LinalgBuilder lb(rewriter, op.getLoc());
    auto xT = llvm::cast<RankedTensorType>(op.getInput().getType());
    if (!xT.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "expected a static shape");
    int64_t vocab = xT.getShape().back();
    int64_t rows = xT.getNumElements() / std::max<int64_t>(vocab, 1);
    Value x = lb.reshape(op.getInput(), withShape(xT, {rows, vocab}));
    Value lse = lowerRowLogSumExp(lb, x);
    rewriter.replaceOp(op, lb.reshape(lse, op.getType()));
    return success();
  }
};

/// Whole-sequence LSTM: the input projection for every step is one matmul;
/// the recurrence is an scf.for over time.
struct LstmLowering : OpRewritePattern<loom::LstmOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::LstmOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    LinalgBuilder lb(rewriter, loc);
    auto xT = llvm::cast<RankedTensorType>(op.getInput().getType());
    int64_t batch = xT.getDimSize(0), steps = xT.getDimSize(1),
            in = xT.getDimSize(2);
    auto hT = llvm::cast<RankedTensorType>(op.getH0().getType());
    int64_t hidden = hT.getDimSize(1);
    Type et = xT.getElementType();

    // xw = x @ w_ih: [B, T, 4H]
    auto flatT = RankedTensorType::get({batch * steps, 4 * hidden}, et);
    Value xw =
        linalg::MatmulOp::create(
            rewriter, loc, TypeRange{flatT},
            ValueRange{lb.reshape(op.getInput(), RankedTensorType::get(
                                                     {batch * steps, in}, et)),
                       op.getWIh()},
            ValueRange{lb.full(flatT, 0.0)})
            .getResult(0);
    xw = lb.reshape(xw, RankedTensorType::get({batch, steps, 4 * hidden}, et));
    auto outsT = llvm::cast<RankedTensorType>(op.getOutputs().getType());
    Value outs = lb.empty(outsT);
    Value wHh = op.getWHh(), bias = op.getBias();

    Value lo = arith::ConstantIndexOp::create(rewriter, loc, 0);
    Value hi = arith::ConstantIndexOp::create(rewriter, loc, steps);
    Value one = arith::ConstantIndexOp::create(rewriter, loc, 1);
    auto loop = scf::ForOp::create(
        rewriter, loc, lo, hi, one, ValueRange{op.getH0(), op.getC0(), outs},
        [&](OpBuilder &b, Location l, Value t, ValueRange iter) {
          LinalgBuilder ib(b, l);
          auto gatesT = RankedTensorType::get({batch, 4 * hidden}, et);
          // xt = xw[:, t, :]
          SmallVector<OpFoldResult> offsets = {b.getIndexAttr(0), t,
                                               b.getIndexAttr(0)};
          Value xt = tensor::ExtractSliceOp::create(
              b, l, gatesT, xw, offsets, indexAttrs(b, {batch, 1, 4 * hidden}),
              indexAttrs(b, {1, 1, 1}));
          Value hw = linalg::MatmulOp::create(b, l, TypeRange{gatesT},
                                              ValueRange{iter[0], wHh},
                                              ValueRange{ib.full(gatesT, 0.0)})
                         .getResult(0);
          // Gate k of unit j is column k*H + j of xt, hw and bias: slice
          // each gate out, so that every operand of the cell is indexed by
          // plain (d0, d1) over [B, H] (linalg requires a dim indexed as is
          // to match the loop range exactly).
          auto stateT = RankedTensorType::get({batch, hidden}, et);
          auto biasT = RankedTensorType::get({hidden}, et);
          AffineMap id2 = b.getMultiDimIdentityMap(2);
          AffineMap cols =
              AffineMap::get(2, 0, {b.getAffineDimExpr(1)}, b.getContext());
          SmallVector<Value> inputs = {iter[1]};
          SmallVector<AffineMap> maps = {id2};
          for (int64_t gate = 0; gate < 4; ++gate) {
            auto slice = [&](Value v) -> Value {
              return tensor::ExtractSliceOp::create(
                  b, l, stateT, v, indexAttrs(b, {0, gate * hidden}),
                  indexAttrs(b, {batch, hidden}), indexAttrs(b, {1, 1}));
            };
            Value biasSlice = tensor::ExtractSliceOp::create(
                b, l, biasT, bias, indexAttrs(b, {gate * hidden}),
                indexAttrs(b, {hidden}), indexAttrs(b, {1}));
            inputs.append({slice(xt), slice(hw), biasSlice});
            maps.append({id2, id2, cols});
          }
          maps.append(2, id2);
          // The new state is written over the loop-carried one (h is not
          // read here: its matmul is done), so the loop bufferizes in place.
          auto cell = linalg::GenericOp::create(
              b, l, TypeRange{stateT, stateT}, inputs,
              ValueRange{iter[0], iter[1]}, maps,
              {utils::IteratorType::parallel, utils::IteratorType::parallel},
              [&](OpBuilder &nb, Location nl, ValueRange a) {
                auto gate = [&](int k) {
                  return arith::AddFOp::create(
                      nb, nl,
                      arith::AddFOp::create(nb, nl, a[1 + 3 * k], a[2 + 3 * k]),
                      a[3 + 3 * k]);
                };
                auto sig = [&](Value x) -> Value {
                  Value o = scalarConstant(nb, nl, et, 1.0);
                  Value e = math::ExpOp::create(
                      nb, nl, arith::NegFOp::create(nb, nl, x));
                  return arith::DivFOp::create(
                      nb, nl, o, arith::AddFOp::create(nb, nl, o, e));
                };
                Value ig = sig(gate(0)), fg = sig(gate(1));
                Value gg = math::TanhOp::create(nb, nl, gate(2));
                Value og = sig(gate(3));
                Value c = arith::AddFOp::create(
                    nb, nl, arith::MulFOp::create(nb, nl, fg, a[0]),
                    arith::MulFOp::create(nb, nl, ig, gg));
                Value h = arith::MulFOp::create(
                    nb, nl, og, math::TanhOp::create(nb, nl, c));
                linalg::YieldOp::create(nb, nl, ValueRange{h, c});
              });
          Value h = cell.getResult(0), c = cell.getResult(1);
          Value updated = tensor::InsertSliceOp::create(
              b, l, h, iter[2], offsets, indexAttrs(b, {batch, 1, hidden}),
              indexAttrs(b, {1, 1, 1}));
          scf::YieldOp::create(b, l, ValueRange{h, c, updated});
        });
    rewriter.replaceOp(op, ValueRange{loop.getResult(2), loop.getResult(0),
                                      loop.getResult(1)});
    return success();
  }
};

} // namespace

void loom::lowering::populateModelPatterns(RewritePatternSet &patterns) {
  patterns.add<AttentionLowering, CrossEntropyLowering, LogSumExpLowering,
               LstmLowering>(patterns.getContext());
}
