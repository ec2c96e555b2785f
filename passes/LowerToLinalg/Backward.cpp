//===- Backward.cpp - Lowering of the fused backward ops ------------------===//
//
// The ops of LoomGradOps.td in straightforward (untiled) forms:
// attention_lse and attention_grad materialize their [.., Tq, Tk] scores and
// probabilities (recomputed from lse, FlashAttention-2 style) and use
// batch_matmuls for the four products; cross_entropy_grad and
// layer_norm_grad work per row; gelu_grad is one elementwise generic;
// embedding_grad is an scf.for scatter-add over positions (O(N*D));
// lstm_grad reruns the recurrence storing the gates, then walks time
// backwards with only the dh product inside the loop (the weight, input and
// bias gradients are whole-sequence matmuls after it).
//
//===----------------------------------------------------------------------===//

#include "passes/LowerToLinalg/Lowering.h"

#include "ir/LoomOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace loom::lowering;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

RankedTensorType typeOf(Value v) {
  return llvm::cast<RankedTensorType>(v.getType());
}

/// A tensor type of `shape` with the element type of `like`.
RankedTensorType shaped(Value like, ArrayRef<int64_t> shape) {
  return RankedTensorType::get(shape, typeOf(like).getElementType());
}

int64_t product(ArrayRef<int64_t> dims) {
  int64_t p = 1;
  for (int64_t d : dims)
    p *= d;
  return p;
}

/// What every pattern here shares: refuse dynamic shapes (the loops are
/// sized from them; the pass reports such ops before it applies any
/// pattern), build at the op with a LinalgBuilder, replace the op by the
/// values `lower` returns.
template <typename Op> struct BackwardPattern : OpRewritePattern<Op> {
  using OpRewritePattern<Op>::OpRewritePattern;

  LogicalResult matchAndRewrite(Op op, PatternRewriter &rewriter) const final {
    if (op->hasAttr(kKeptForKernelAttr))
      return rewriter.notifyMatchFailure(op, "left to a kernel");
    for (Type t :
         llvm::concat<const Type>(op->getOperandTypes(), op->getResultTypes()))
      if (auto shapedType = llvm::dyn_cast<ShapedType>(t);
          shapedType && !shapedType.hasStaticShape())
        return rewriter.notifyMatchFailure(op, "dynamic shape");
    LinalgBuilder lb(rewriter, op.getLoc());
    rewriter.replaceOp(op, lower(op, lb));
    return success();
  }

  virtual SmallVector<Value> lower(Op op, LinalgBuilder &lb) const = 0;
};

/// `v` [..., last] as [rows, last].
Value asRows(LinalgBuilder &lb, Value v) {
  ArrayRef<int64_t> shape = typeOf(v).getShape();
  return lb.reshape(v, shaped(v, {product(shape.drop_back()), shape.back()}));
}

SmallVector<OpFoldResult> indexAttrs(OpBuilder &b, ArrayRef<int64_t> values) {
  SmallVector<OpFoldResult> r;
  for (int64_t v : values)
    r.push_back(b.getIndexAttr(v));
  return r;
}

Value floatConstant(OpBuilder &b, Location loc, Value like, double v) {
  return scalarConstant(b, loc, like.getType(), v);
}

/// sigmoid(x) = 0.5 + 0.5 tanh(x / 2): one transcendental, and no exp that
/// overflows for large -x.
Value sigmoid(OpBuilder &b, Location loc, Value x) {
  Value half = floatConstant(b, loc, x, 0.5);
  Value t =
      math::TanhOp::create(b, loc, arith::MulFOp::create(b, loc, x, half));
  return math::FmaOp::create(b, loc, t, half, half);
}

/// a @ b into a zero-filled accumulator (a new tensor, or `into` when
/// given, so that a loop can reuse its carried buffer): linalg.matmul for
/// rank 2, linalg.batch_matmul for rank 3 (the named ops that the CPU
/// pipeline register-tiles and lowers to vector.contract).
Value matmul(LinalgBuilder &lb, Value a, Value b, Value into = {}) {
  SmallVector<int64_t> shape(typeOf(a).getShape().drop_back());
  shape.push_back(typeOf(b).getShape().back());
  auto type = shaped(a, shape);
  Value init = into
                   ? linalg::FillOp::create(
                         lb.builder(), lb.getLoc(),
                         ValueRange{scalarConstant(lb.builder(), lb.getLoc(),
                                                   type.getElementType(), 0.0)},
                         ValueRange{into})
                         .getResult(0)
                   : lb.full(type, 0.0);
  if (shape.size() == 2)
    return linalg::MatmulOp::create(lb.builder(), lb.getLoc(), TypeRange{type},
                                    ValueRange{a, b}, ValueRange{init})
        .getResult(0);
  return linalg::BatchMatmulOp::create(lb.builder(), lb.getLoc(),
                                       TypeRange{type}, ValueRange{a, b},
                                       ValueRange{init})
      .getResult(0);
}

/// `v` with its last two dims swapped (a linalg.transpose).
Value transposed(LinalgBuilder &lb, Value v) {
  int64_t rank = typeOf(v).getRank();
  SmallVector<int64_t> perm = llvm::to_vector(llvm::seq<int64_t>(0, rank));
  std::swap(perm[rank - 1], perm[rank - 2]);
  SmallVector<int64_t> shape(typeOf(v).getShape());
  std::swap(shape[rank - 1], shape[rank - 2]);
  return linalg::TransposeOp::create(lb.builder(), lb.getLoc(), v,
                                     lb.empty(shaped(v, shape)), perm)
      .getResult()[0];
}

using CombineFn =
    std::function<Value(OpBuilder &, Location, Value acc, ValueRange xs)>;

/// Folds the elements of `inputs` over sorted `axes` of the first input's
/// shape (dropped in the result), from 0: `combine(acc, xs...)`. Later inputs
/// broadcast against the first (NumPy rules). Unlike chaining an elementwise
/// generic into LinalgBuilder::reduce, nothing is materialized in between.
Value reduceZip(LinalgBuilder &lb, ValueRange inputs, ArrayRef<int64_t> axes,
                const CombineFn &combine) {
  OpBuilder &b = lb.builder();
  RankedTensorType space = typeOf(inputs.front());
  SmallVector<utils::IteratorType> iterators(space.getRank(),
                                             utils::IteratorType::parallel);
  for (int64_t axis : axes)
    iterators[axis] = utils::IteratorType::reduction;
  AffineMap outMap =
      b.getMultiDimIdentityMap(space.getRank()).dropResults(axes);
  auto outType =
      shaped(inputs.front(), applyPermutationMap(outMap, space.getShape()));
  SmallVector<AffineMap> maps;
  for (Value input : inputs)
    maps.push_back(lb.broadcastMap(typeOf(input), space));
  maps.push_back(outMap);
  return linalg::GenericOp::create(
             b, lb.getLoc(), TypeRange{outType}, inputs,
             ValueRange{lb.full(outType, 0.0)}, maps, iterators,
             [&](OpBuilder &nb, Location nl, ValueRange args) {
               linalg::YieldOp::create(
                   nb, nl, combine(nb, nl, args.back(), args.drop_back()));
             })
      .getResult(0);
}

/// acc + x * y, for reduceZip.
Value accumulateProduct(OpBuilder &b, Location l, Value acc, ValueRange xs) {
  return arith::AddFOp::create(b, l, acc,
                               arith::MulFOp::create(b, l, xs[0], xs[1]));
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

/// The attention operands viewed as [batch, T, D] with batch = outer *
/// inner, `outer` being the key mask's B (dim 0 of q).
struct AttentionDims {
  int64_t outer, inner, tq, tk, d;

  AttentionDims(Value q, Value k) {
    RankedTensorType qt = typeOf(q);
    int64_t rank = qt.getRank();
    outer = qt.getDimSize(0);
    inner = product(qt.getShape().slice(1, rank - 3));
    tq = qt.getDimSize(rank - 2);
    tk = typeOf(k).getDimSize(rank - 2);
    d = qt.getShape().back();
  }
  int64_t batch() const { return outer * inner; }
  /// `v` ([..., T, last]) as [batch, T, last].
  Value flat(LinalgBuilder &lb, Value v) const {
    ArrayRef<int64_t> s = typeOf(v).getShape();
    return lb.reshape(v, shaped(v, {batch(), s[s.size() - 2], s.back()}));
  }
};

/// The unscaled scores q @ k^T as [outer, inner, Tq, Tk].
Value rawScores(LinalgBuilder &lb, const AttentionDims &dims, Value q,
                Value k) {
  Value s = matmul(lb, dims.flat(lb, q), transposed(lb, dims.flat(lb, k)));
  return lb.reshape(s, shaped(q, {dims.outer, dims.inner, dims.tq, dims.tk}));
}

using ScoreFn = std::function<Value(OpBuilder &, Location, Value scaledScore,
                                    ValueRange extra)>;

/// A parallel generic over `raw` scores [outer, inner, Tq, Tk]: a key that
/// query i may attend (j <= i + Tk - Tq when causal; key_mask[b, j]) gets
/// `visible(scale * score, extra elements)`, any other key `hidden`.
/// `extra` inputs broadcast against the scores (NumPy rules).
Value mapScores(LinalgBuilder &lb, Value raw, Value keyMask, bool causal,
                double scale, ValueRange extra, double hidden,
                const ScoreFn &visible) {
  OpBuilder &b = lb.builder();
  RankedTensorType type = typeOf(raw);
  int64_t shift = type.getDimSize(3) - type.getDimSize(2);
  SmallVector<Value> inputs = {raw};
  SmallVector<AffineMap> maps = {b.getMultiDimIdentityMap(4)};
  if (keyMask) {
    inputs.push_back(keyMask);
    maps.push_back(AffineMap::get(
        4, 0, {b.getAffineDimExpr(0), b.getAffineDimExpr(3)}, b.getContext()));
  }
  for (Value e : extra) {
    inputs.push_back(e);
    maps.push_back(lb.broadcastMap(typeOf(e), type));
  }
  maps.push_back(b.getMultiDimIdentityMap(4));
  SmallVector<utils::IteratorType> par(4, utils::IteratorType::parallel);
  return linalg::GenericOp::create(
             b, lb.getLoc(), TypeRange{type}, inputs,
             ValueRange{lb.empty(type)}, maps, par,
             [&](OpBuilder &nb, Location l, ValueRange a) {
               Value x = arith::MulFOp::create(
                   nb, l, a[0], floatConstant(nb, l, a[0], scale));
               size_t firstExtra = keyMask ? 2 : 1;
               Value y = visible(nb, l, x, a.slice(firstExtra, extra.size()));
               Value shown = keyMask ? a[1] : Value();
               if (causal) {
                 Value i = linalg::IndexOp::create(nb, l, 2);
                 Value j = linalg::IndexOp::create(nb, l, 3);
                 Value limit = arith::AddIOp::create(
                     nb, l, i, arith::ConstantIndexOp::create(nb, l, shift));
                 Value inRange = arith::CmpIOp::create(
                     nb, l, arith::CmpIPredicate::sle, j, limit);
                 shown = shown ? arith::AndIOp::create(nb, l, shown, inRange)
                               : inRange;
               }
               if (shown)
                 y = arith::SelectOp::create(nb, l, shown, y,
                                             floatConstant(nb, l, y, hidden));
               linalg::YieldOp::create(nb, l, y);
             })
      .getResult(0);
}

/// lse[b, i] = log(sum over attended j of exp(s[b, i, j])), 0 for a query
/// that attends no key: max, then sum of exp(s - max), then max + log(sum).
struct AttentionLseLowering : BackwardPattern<loom::AttentionLseOp> {
  using BackwardPattern::BackwardPattern;
  SmallVector<Value> lower(loom::AttentionLseOp op,
                           LinalgBuilder &lb) const override {
    AttentionDims dims(op.getQ(), op.getK());
    Value s =
        mapScores(lb, rawScores(lb, dims, op.getQ(), op.getK()),
                  op.getKeyMask(), op.getCausal(), op.getScale(), {}, -kInf,
                  [](OpBuilder &, Location, Value x, ValueRange) { return x; });
    Type et = typeOf(s).getElementType();
    Value max = lb.reduce(s, {3}, -kInf, maxValues);
    // A row of -inf has max -inf: shift it by 0 instead (its sum is 0).
    max = lb.elementwise(
        typeOf(max), {max}, [](OpBuilder &b, Location l, ValueRange a) {
          Value empty =
              arith::CmpFOp::create(b, l, arith::CmpFPredicate::OEQ, a[0],
                                    floatConstant(b, l, a[0], -kInf));
          return arith::SelectOp::create(b, l, empty,
                                         floatConstant(b, l, a[0], 0.0), a[0])
              .getResult();
        });
    Value sum =
        reduceZip(lb, {s, lb.unsqueeze(max, {3})}, {3},
                  [](OpBuilder &b, Location l, Value acc, ValueRange xs) {
                    Value e = math::ExpOp::create(
                        b, l, arith::SubFOp::create(b, l, xs[0], xs[1]));
                    return arith::AddFOp::create(b, l, acc, e).getResult();
                  });
    Value lse = lb.elementwise(
        typeOf(sum), {max, sum}, [et](OpBuilder &b, Location l, ValueRange a) {
          Value zero = scalarConstant(b, l, et, 0.0);
          Value empty = arith::CmpFOp::create(b, l, arith::CmpFPredicate::OEQ,
                                              a[1], zero);
          Value v = arith::AddFOp::create(b, l, a[0],
                                          math::LogOp::create(b, l, a[1]));
          return arith::SelectOp::create(b, l, empty, zero, v).getResult();
        });
    return {lb.reshape(lse, op.getType())};
  }
};

/// The FlashAttention-2 backward with materialized [batch, Tq, Tk] tensors:
/// P = exp(scale * q k^T - lse) (0 where hidden), delta = rowsum(dO * O),
/// dV = P^T dO, dP = dO V^T, dS = scale * P * (dP - delta), dQ = dS K,
/// dK = dS^T Q.
struct AttentionGradLowering : BackwardPattern<loom::AttentionGradOp> {
  using BackwardPattern::BackwardPattern;
  SmallVector<Value> lower(loom::AttentionGradOp op,
                           LinalgBuilder &lb) const override {
    AttentionDims dims(op.getQ(), op.getK());
    Value lse = lb.reshape(
        op.getLse(), shaped(op.getLse(), {dims.outer, dims.inner, dims.tq, 1}));
    Value p = mapScores(
        lb, rawScores(lb, dims, op.getQ(), op.getK()), op.getKeyMask(),
        op.getCausal(), op.getScale(), {lse}, 0.0,
        [](OpBuilder &b, Location l, Value x, ValueRange e) {
          return math::ExpOp::create(b, l, arith::SubFOp::create(b, l, x, e[0]))
              .getResult();
        });
    p = dims.flat(lb, p);
    Value q = dims.flat(lb, op.getQ()), k = dims.flat(lb, op.getK());
    Value v = dims.flat(lb, op.getV()), out = dims.flat(lb, op.getOut());
    Value dOut = dims.flat(lb, op.getDOut());
    Value delta =
        lb.unsqueeze(reduceZip(lb, {dOut, out}, {2}, accumulateProduct), {2});
    Value dV = matmul(lb, transposed(lb, p), dOut);
    Value dP = matmul(lb, dOut, transposed(lb, v));
    double scale = op.getScale();
    Value dS = lb.elementwise(
        typeOf(p), {p, dP, delta},
        [scale](OpBuilder &b, Location l, ValueRange a) {
          Value g = arith::MulFOp::create(
              b, l, a[0], arith::SubFOp::create(b, l, a[1], a[2]));
          return arith::MulFOp::create(b, l, g, floatConstant(b, l, g, scale))
              .getResult();
        });
    Value dQ = matmul(lb, dS, k);
    Value dK = matmul(lb, transposed(lb, dS), q);
    return SmallVector<Value>{lb.reshape(dQ, op.getDQ().getType()),
                              lb.reshape(dK, op.getDK().getType()),
                              lb.reshape(dV, op.getDV().getType())};
  }
};

//===----------------------------------------------------------------------===//
// Per-row ops
//===----------------------------------------------------------------------===//

/// (softmax(x) - onehot(t)) * d_loss / count over rows whose target is kept,
/// 0 on ignored rows. softmax(x) is exp(x - lse) with the `lse` operand (one
/// pass over the logits), else a softmax of its own (three).
struct CrossEntropyGradLowering : BackwardPattern<loom::CrossEntropyGradOp> {
  using BackwardPattern::BackwardPattern;
  SmallVector<Value> lower(loom::CrossEntropyGradOp op,
                           LinalgBuilder &lb) const override {
    Value logits = asRows(lb, op.getLogits()); // [N, V]
    int64_t rows = typeOf(logits).getDimSize(0);
    Type et = typeOf(logits).getElementType();
    int64_t ignore = op.getIgnoreIndex();
    auto keptBody = [ignore](OpBuilder &b, Location l, Value t) -> Value {
      return arith::CmpIOp::create(
          b, l, arith::CmpIPredicate::ne, t,
          arith::ConstantIntOp::create(b, l, t.getType(), ignore));
    };
    // The probabilities: softmax(x), or exp(x - lse) inside the one pass.
    Value p = logits, lse;
    if (op.getLse())
      lse = lb.reshape(op.getLse(), RankedTensorType::get({rows, 1}, et));
    else
      p = lowerSoftmax(lb, logits, 1);
    Value targets = lb.reshape(op.getTargets(),
                               shaped(op.getTargets(), {rows, 1})); // [N, 1]
    // The number of kept rows, counted in the targets' integer type.
    Value count = reduceZip(
        lb, {targets}, {0, 1},
        [&](OpBuilder &b, Location l, Value acc, ValueRange t) {
          Value one = arith::ConstantIntOp::create(b, l, acc.getType(), 1);
          return arith::SelectOp::create(b, l, keptBody(b, l, t[0]),
                                         arith::AddIOp::create(b, l, acc, one),
                                         acc)
              .getResult();
        });
    auto scalarT = RankedTensorType::get({}, et);
    Value factor = lb.elementwise(
        scalarT, {op.getDLoss(), count},
        [](OpBuilder &b, Location l, ValueRange a) {
          Value n = arith::SIToFPOp::create(b, l, a[0].getType(), a[1]);
          return arith::DivFOp::create(b, l, a[0], n).getResult();
        });
    SmallVector<Value> inputs = {p, targets, factor};
    if (lse)
      inputs.push_back(lse);
    Value grad = lb.elementwise(
        typeOf(p), inputs, [&](OpBuilder &b, Location l, ValueRange a) {
          Value prob = a[0];
          if (lse)
            prob = math::ExpOp::create(b, l,
                                       arith::SubFOp::create(b, l, a[0], a[3]));
          Value t = a[1];
          Value j = arith::IndexCastOp::create(
              b, l, t.getType(), linalg::IndexOp::create(b, l, 1));
          Value hot =
              arith::CmpIOp::create(b, l, arith::CmpIPredicate::eq, j, t);
          Value zero = scalarConstant(b, l, et, 0.0);
          Value target = arith::SelectOp::create(
              b, l, hot, scalarConstant(b, l, et, 1.0), zero);
          Value g = arith::MulFOp::create(
              b, l, arith::SubFOp::create(b, l, prob, target), a[2]);
          return arith::SelectOp::create(b, l, keptBody(b, l, t), g, zero)
              .getResult();
        });
    return {lb.reshape(grad, op.getType())};
  }
};

/// Recomputes xhat = (x - mean) * rstd per row of D, then
/// d_input = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma,
/// d_gamma = sum over rows of dy * xhat, d_beta = sum over rows of dy.
struct LayerNormGradLowering : BackwardPattern<loom::LayerNormGradOp> {
  using BackwardPattern::BackwardPattern;
  SmallVector<Value> lower(loom::LayerNormGradOp op,
                           LinalgBuilder &lb) const override {
    Value x = asRows(lb, op.getInput()), dy = asRows(lb, op.getDResult());
    RankedTensorType matT = typeOf(x); // [N, D]
    double invD = 1.0 / double(matT.getDimSize(1)), eps = op.getEps();
    auto sub = [](OpBuilder &b, Location l, ValueRange a) -> Value {
      return arith::SubFOp::create(b, l, a[0], a[1]);
    };
    auto mul = [](OpBuilder &b, Location l, ValueRange a) -> Value {
      return arith::MulFOp::create(b, l, a[0], a[1]);
    };
    auto sum = [](OpBuilder &b, Location l, Value acc, ValueRange xs) {
      return arith::AddFOp::create(b, l, acc, xs[0]).getResult();
    };
    // Row statistics, as [N, 1] so they broadcast over D.
    auto rowMean = [&](ValueRange inputs, const CombineFn &combine) {
      Value total = reduceZip(lb, inputs, {1}, combine);
      return lb.unsqueeze(
          lb.elementwise(typeOf(total), {total},
                         [invD](OpBuilder &b, Location l, ValueRange a) {
                           return arith::MulFOp::create(
                                      b, l, a[0],
                                      floatConstant(b, l, a[0], invD))
                               .getResult();
                         }),
          {1});
    };
    Value centered = lb.elementwise(matT, {x, rowMean({x}, sum)}, sub);
    Value var = rowMean({centered, centered}, accumulateProduct);
    Value rstd = lb.elementwise(
        typeOf(var), {var}, [eps](OpBuilder &b, Location l, ValueRange a) {
          return math::RsqrtOp::create(
                     b, l,
                     arith::AddFOp::create(b, l, a[0],
                                           floatConstant(b, l, a[0], eps)))
              .getResult();
        });
    Value xhat = lb.elementwise(matT, {centered, rstd}, mul);
    Value g = lb.elementwise(matT, {dy, op.getGamma()}, mul);
    Value meanG = rowMean({g}, sum);
    Value meanGX = rowMean({g, xhat}, accumulateProduct);
    Value dx = lb.elementwise(
        matT, {g, meanG, xhat, meanGX, rstd},
        [](OpBuilder &b, Location l, ValueRange a) {
          Value centeredG = arith::SubFOp::create(b, l, a[0], a[1]);
          Value v = arith::SubFOp::create(
              b, l, centeredG, arith::MulFOp::create(b, l, a[2], a[3]));
          return arith::MulFOp::create(b, l, a[4], v).getResult();
        });
    Value dGamma = reduceZip(lb, {dy, xhat}, {0}, accumulateProduct);
    Value dBeta = lb.reduce(dy, {0}, 0.0, addValues);
    return SmallVector<Value>{lb.reshape(dx, op.getInput().getType()), dGamma,
                              dBeta};
  }
};

//===----------------------------------------------------------------------===//
// Elementwise and scatter
//===----------------------------------------------------------------------===//

/// dy * gelu'(x) for the form `approximate` selects.
struct GeluGradLowering : BackwardPattern<loom::GeluGradOp> {
  using BackwardPattern::BackwardPattern;
  SmallVector<Value> lower(loom::GeluGradOp op,
                           LinalgBuilder &lb) const override {
    bool approximate = op.getApproximate();
    Value r = lb.elementwise(
        op.getType(), {op.getInput(), op.getDResult()},
        [approximate](OpBuilder &b, Location l, ValueRange a) -> Value {
          Value x = a[0];
          auto c = [&](double v) { return floatConstant(b, l, x, v); };
          auto mul = [&](Value p, Value q) -> Value {
            return arith::MulFOp::create(b, l, p, q);
          };
          auto add = [&](Value p, Value q) -> Value {
            return arith::AddFOp::create(b, l, p, q);
          };
          Value x2 = mul(x, x), slope;
          if (approximate) {
            // u = sqrt(2/pi) (x + 0.044715 x^3), t = tanh(u):
            // 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 0.134145 x^2).
            // With e = exp(-2|u|) and r = 1 / (1 + e), 0.5 (1 + t) is r
            // (u >= 0) or e r, and 1 - t^2 = 4 e r^2: computed from t, both
            // lose all accuracy where |t| rounds to 1 (x < -4: the result
            // is ~1e-6 with errors of ~1e-6).
            Value k = c(std::sqrt(2.0 / M_PI));
            Value u = mul(k, add(x, mul(c(0.044715), mul(x2, x))));
            Value e = math::ExpOp::create(
                b, l, mul(c(-2.0), math::AbsFOp::create(b, l, u)));
            // 1 + e is in [1, 2]: the division may be a reciprocal
            // estimate and a Newton step (see loom-cpu-approximate-math).
            Value r = arith::DivFOp::create(b, l, c(1.0), add(c(1.0), e),
                                            arith::FastMathFlags::arcp |
                                                arith::FastMathFlags::ninf);
            Value er = mul(e, r);
            Value positive =
                arith::CmpFOp::create(b, l, arith::CmpFPredicate::OGE, u, c(0));
            Value halfOnePlusT = arith::SelectOp::create(b, l, positive, r, er);
            Value du = mul(k, add(c(1.0), mul(c(0.134145), x2)));
            // 0.5 x (1 - t^2) du = 2 x (e r) r du
            slope = add(halfOnePlusT, mul(mul(c(2.0), x), mul(mul(er, r), du)));
          } else {
            // Phi(x) + x phi(x) = 0.5 (1 + erf(x / sqrt 2))
            //                     + x exp(-x^2 / 2) / sqrt(2 pi)
            Value cdf = mul(
                c(0.5),
                add(c(1.0), math::ErfOp::create(b, l, mul(x, c(M_SQRT1_2)))));
            Value pdf = mul(math::ExpOp::create(b, l, mul(x2, c(-0.5))),
                            c(1.0 / std::sqrt(2.0 * M_PI)));
            slope = add(cdf, mul(x, pdf));
          }
          return mul(a[1], slope);
        });
    return {r};
  }
};

/// d_table = 0, then for each position n: d_table[id[n]] += dy[n] (an
/// scf.for over the N positions adding one row of D at a time). Ids are
/// clamped into the table, as `embedding` does, so that a bad id cannot
/// write out of bounds.
struct EmbeddingGradLowering : BackwardPattern<loom::EmbeddingGradOp> {
  using BackwardPattern::BackwardPattern;
  SmallVector<Value> lower(loom::EmbeddingGradOp op,
                           LinalgBuilder &lb) const override {
    Location loc = op.getLoc();
    OpBuilder &builder = lb.builder();
    Value dy = asRows(lb, op.getDResult()); // [N, D]
    int64_t n = typeOf(dy).getDimSize(0), d = typeOf(dy).getDimSize(1);
    int64_t vocab = op.getVocab();
    Value ids = lb.reshape(op.getIds(), shaped(op.getIds(), {n}));
    Value table = lb.full(op.getType(), 0.0);
    auto rowT = shaped(dy, {d});
    auto loop = scf::ForOp::create(
        builder, loc, arith::ConstantIndexOp::create(builder, loc, 0),
        arith::ConstantIndexOp::create(builder, loc, n),
        arith::ConstantIndexOp::create(builder, loc, 1), ValueRange{table},
        [&](OpBuilder &b, Location l, Value pos, ValueRange iter) {
          Value id = arith::IndexCastOp::create(
              b, l, b.getIndexType(),
              tensor::ExtractOp::create(b, l, ids, ValueRange{pos}));
          id = arith::MaxSIOp::create(b, l, id,
                                      arith::ConstantIndexOp::create(b, l, 0));
          id = arith::MinSIOp::create(
              b, l, id, arith::ConstantIndexOp::create(b, l, vocab - 1));
          SmallVector<OpFoldResult> sizes = indexAttrs(b, {1, d}),
                                    strides = indexAttrs(b, {1, 1});
          SmallVector<OpFoldResult> at = {id, b.getIndexAttr(0)};
          Value row = tensor::ExtractSliceOp::create(b, l, rowT, iter[0], at,
                                                     sizes, strides);
          Value grad = tensor::ExtractSliceOp::create(
              b, l, rowT, dy, SmallVector<OpFoldResult>{pos, b.getIndexAttr(0)},
              sizes, strides);
          // row += grad, written over the row so the loop stays in place.
          AffineMap id1 = b.getMultiDimIdentityMap(1);
          Value sum =
              linalg::GenericOp::create(
                  b, l, TypeRange{rowT}, ValueRange{grad}, ValueRange{row},
                  {id1, id1}, {utils::IteratorType::parallel},
                  [](OpBuilder &nb, Location nl, ValueRange a) {
                    linalg::YieldOp::create(
                        nb, nl,
                        arith::AddFOp::create(nb, nl, a[1], a[0]).getResult());
                  })
                  .getResult(0);
          scf::YieldOp::create(b, l,
                               tensor::InsertSliceOp::create(b, l, sum, iter[0],
                                                             at, sizes, strides)
                                   .getResult());
        });
    return {loop.getResult(0)};
  }
};

//===----------------------------------------------------------------------===//
// LSTM
//===----------------------------------------------------------------------===//

/// Slices of [B, T, W] sequences at time step `t` as [B, w] tensors, and
/// column blocks of [B, 4H] gate tensors.
struct StepSlices {
  OpBuilder &b;
  Location l;
  OpFoldResult t;
  int64_t batch;

  SmallVector<OpFoldResult> at(int64_t col) {
    return {b.getIndexAttr(0), t, b.getIndexAttr(col)};
  }
  SmallVector<OpFoldResult> sizes(int64_t width) {
    return indexAttrs(b, {batch, 1, width});
  }
  Value extract(Value seq, int64_t col, int64_t width) {
    return tensor::ExtractSliceOp::create(b, l, shaped(seq, {batch, width}),
                                          seq, at(col), sizes(width),
                                          indexAttrs(b, {1, 1, 1}));
  }
  Value insert(Value v, Value seq, int64_t col) {
    return tensor::InsertSliceOp::create(b, l, v, seq, at(col),
                                         sizes(typeOf(v).getDimSize(1)),
                                         indexAttrs(b, {1, 1, 1}));
  }
  /// Gate `k` (columns k*H .. k*H + H) of a [B, 4H] tensor.
  Value gate(Value gates, int64_t k, int64_t hidden) {
    return tensor::ExtractSliceOp::create(b, l, shaped(gates, {batch, hidden}),
                                          gates, indexAttrs(b, {0, k * hidden}),
                                          indexAttrs(b, {batch, hidden}),
                                          indexAttrs(b, {1, 1}));
  }
};

using CellFn =
    std::function<SmallVector<Value>(OpBuilder &, Location, ValueRange)>;

/// A parallel generic over [B, H]: `inputs` read through `maps`, `outs`
/// through the identity; `cell` maps the elements of the inputs, then of the
/// outs, to one element per output.
///
/// On buffers: a loop-carried state that the cell updates must read its old
/// value as its out element, not as an input (an input and an out of one
/// tensor conflict once the generic is tiled, and bufferization copies);
/// and an out that the cell does not read is replaced by a new tensor
/// (elementwise fusion's outs-dependency removal), which, yielded from a
/// loop, is a heap allocation per step. So the forward loop carries whole
/// state sequences and inserts each step's state into them.
SmallVector<Value> cellGeneric(OpBuilder &b, Location l, ValueRange inputs,
                               ArrayRef<AffineMap> maps, ValueRange outs,
                               const CellFn &cell) {
  SmallVector<AffineMap> all(maps);
  all.append(outs.size(), b.getMultiDimIdentityMap(2));
  auto generic = linalg::GenericOp::create(
      b, l, ValueRange(outs).getTypes(), inputs, outs, all,
      {utils::IteratorType::parallel, utils::IteratorType::parallel},
      [&](OpBuilder &nb, Location nl, ValueRange a) {
        linalg::YieldOp::create(nb, nl, cell(nb, nl, a));
      });
  return SmallVector<Value>(generic.getResults());
}

/// `v` [B, T, W] as w^T-ready [W, B*T] (a linalg.transpose, then a
/// reshape of the new contiguous tensor).
Value timeMajorColumns(LinalgBuilder &lb, Value v) {
  ArrayRef<int64_t> s = typeOf(v).getShape();
  Value t = linalg::TransposeOp::create(lb.builder(), lb.getLoc(), v,
                                        lb.empty(shaped(v, {s[2], s[0], s[1]})),
                                        ArrayRef<int64_t>{2, 0, 1})
                .getResult()[0];
  return lb.reshape(t, shaped(v, {s[2], s[0] * s[1]}));
}

/// Backpropagation through time. The forward recurrence is run again,
/// storing the activated gates [B, T, 4H] and the states hs, cs
/// ([B, T+1, H], step t reading index t and writing t+1, index 0 holding
/// h0, c0); the reverse loop turns dh and dc into the gate gradients
/// dz [B, T, 4H], with dh = dz_t @ w_hh^T the only product inside it. Then
/// d_input = dz @ w_ih^T, d_w_ih = x^T dz, d_w_hh = h_prev^T dz and
/// d_bias = sum dz are whole-sequence products over B*T rows.
struct LstmGradLowering : BackwardPattern<loom::LstmGradOp> {
  using BackwardPattern::BackwardPattern;
  SmallVector<Value> lower(loom::LstmGradOp op,
                           LinalgBuilder &lb) const override {
    Location loc = op.getLoc();
    OpBuilder &builder = lb.builder();
    RankedTensorType xT = op.getInput().getType();
    int64_t batch = xT.getDimSize(0), steps = xT.getDimSize(1);
    int64_t in = xT.getDimSize(2);
    int64_t hidden = op.getH0().getType().getDimSize(1);
    Value x = op.getInput();
    Value xw = lb.reshape(
        matmul(lb, lb.reshape(x, shaped(x, {batch * steps, in})), op.getWIh()),
        shaped(x, {batch, steps, 4 * hidden}));
    auto stateT = shaped(x, {batch, hidden});
    Value zero = arith::ConstantIndexOp::create(builder, loc, 0);
    Value count = arith::ConstantIndexOp::create(builder, loc, steps);
    Value one = arith::ConstantIndexOp::create(builder, loc, 1);
    AffineMap id2 = builder.getMultiDimIdentityMap(2);
    AffineMap cols = AffineMap::get(2, 0, {builder.getAffineDimExpr(1)},
                                    builder.getContext());
    StepSlices first{builder, loc, builder.getIndexAttr(0), batch};
    auto states = [&](Value initial) {
      return first.insert(initial,
                          lb.empty(shaped(x, {batch, steps + 1, hidden})), 0);
    };

    // Forward: carries (gates, hs, cs, h @ w_hh).
    Value wHh = op.getWHh(), bias = op.getBias();
    auto forward = scf::ForOp::create(
        builder, loc, zero, count, one,
        ValueRange{lb.empty(shaped(x, {batch, steps, 4 * hidden})),
                   states(op.getH0()), states(op.getC0()),
                   lb.empty(shaped(x, {batch, 4 * hidden}))},
        [&](OpBuilder &b, Location l, Value t, ValueRange iter) {
          LinalgBuilder ib(b, l);
          StepSlices step{b, l, t, batch};
          StepSlices next{b, l, arith::AddIOp::create(b, l, t, one).getResult(),
                          batch};
          Value xt = step.extract(xw, 0, 4 * hidden);
          Value hw = matmul(ib, step.extract(iter[1], 0, hidden), wHh, iter[3]);
          SmallVector<Value> inputs;
          SmallVector<AffineMap> maps;
          for (int64_t k = 0; k < 4; ++k) {
            Value biasK = tensor::ExtractSliceOp::create(
                b, l, shaped(bias, {hidden}), bias, indexAttrs(b, {k * hidden}),
                indexAttrs(b, {hidden}), indexAttrs(b, {1}));
            inputs.append(
                {step.gate(xt, k, hidden), step.gate(hw, k, hidden), biasK});
            maps.append({id2, id2, cols});
          }
          inputs.push_back(step.extract(iter[2], 0, hidden));
          maps.push_back(id2);
          SmallVector<Value> outs;
          for (int k = 0; k < 6; ++k)
            outs.push_back(ib.empty(stateT));
          SmallVector<Value> r = cellGeneric(
              b, l, inputs, maps, outs,
              [](OpBuilder &nb, Location nl, ValueRange a) {
                // a: (x_k, hw_k, bias_k) for k < 4, c_{t-1}.
                auto z = [&](int k) -> Value {
                  return arith::AddFOp::create(
                      nb, nl,
                      arith::AddFOp::create(nb, nl, a[3 * k], a[3 * k + 1]),
                      a[3 * k + 2]);
                };
                Value i = sigmoid(nb, nl, z(0)), f = sigmoid(nb, nl, z(1));
                Value g = math::TanhOp::create(nb, nl, z(2));
                Value o = sigmoid(nb, nl, z(3));
                Value c = arith::AddFOp::create(
                    nb, nl, arith::MulFOp::create(nb, nl, f, a[12]),
                    arith::MulFOp::create(nb, nl, i, g));
                Value h = arith::MulFOp::create(
                    nb, nl, o, math::TanhOp::create(nb, nl, c));
                return SmallVector<Value>{h, c, i, f, g, o};
              });
          Value gates = iter[0];
          for (int64_t k = 0; k < 4; ++k)
            gates = step.insert(r[2 + k], gates, k * hidden);
          scf::YieldOp::create(b, l,
                               ValueRange{gates, next.insert(r[0], iter[1], 0),
                                          next.insert(r[1], iter[2], 0), hw});
        });
    Value gates = forward.getResult(0), hs = forward.getResult(1),
          cs = forward.getResult(2);

    // Backward: carries (dh, dc, dz), t = T-1-s.
    Value wHhT = transposed(lb, wHh);
    Value dOut = op.getDOutputs();
    Value last = arith::ConstantIndexOp::create(builder, loc, steps - 1);
    auto backward = scf::ForOp::create(
        builder, loc, zero, count, one,
        ValueRange{op.getDHN(), op.getDCN(),
                   lb.empty(shaped(x, {batch, steps, 4 * hidden}))},
        [&](OpBuilder &b, Location l, Value s, ValueRange iter) {
          LinalgBuilder ib(b, l);
          StepSlices step{
              b, l, arith::SubIOp::create(b, l, last, s).getResult(), batch};
          SmallVector<Value> inputs = {iter[0], step.extract(dOut, 0, hidden)};
          for (int64_t k = 0; k < 4; ++k)
            inputs.push_back(step.extract(gates, k * hidden, hidden));
          inputs.push_back(step.extract(cs, 0, hidden));
          SmallVector<Value> outs = {iter[1]};
          for (int k = 0; k < 4; ++k)
            outs.push_back(ib.empty(stateT));
          SmallVector<AffineMap> maps(inputs.size(), id2);
          SmallVector<Value> r = cellGeneric(
              b, l, inputs, maps, outs,
              [](OpBuilder &nb, Location nl, ValueRange a) {
                auto mul = [&](Value p, Value q) -> Value {
                  return arith::MulFOp::create(nb, nl, p, q);
                };
                auto add = [&](Value p, Value q) -> Value {
                  return arith::AddFOp::create(nb, nl, p, q);
                };
                auto oneMinus = [&](Value p) -> Value {
                  return arith::SubFOp::create(
                      nb, nl, floatConstant(nb, nl, p, 1.0), p);
                };
                // a: dh, d_out_t, i, f, g, o, c_{t-1}, then the outs (dc
                // first).
                Value i = a[2], f = a[3], g = a[4], o = a[5], cp = a[6];
                Value dh = add(a[0], a[1]);
                Value tc =
                    math::TanhOp::create(nb, nl, add(mul(f, cp), mul(i, g)));
                Value dO = mul(dh, tc);
                Value dc = add(a[7], mul(mul(dh, o), oneMinus(mul(tc, tc))));
                return SmallVector<Value>{mul(dc, f),
                                          mul(mul(dc, g), mul(i, oneMinus(i))),
                                          mul(mul(dc, cp), mul(f, oneMinus(f))),
                                          mul(mul(dc, i), oneMinus(mul(g, g))),
                                          mul(dO, mul(o, oneMinus(o)))};
              });
          Value dz = iter[2];
          for (int64_t k = 0; k < 4; ++k)
            dz = step.insert(r[1 + k], dz, k * hidden);
          // dh was read above, so its buffer takes the new value.
          Value dh = matmul(ib, step.extract(dz, 0, 4 * hidden), wHhT, iter[0]);
          scf::YieldOp::create(b, l, ValueRange{dh, r[0], dz});
        });

    Value dz = backward.getResult(2);
    Value dzRows = lb.reshape(dz, shaped(x, {batch * steps, 4 * hidden}));
    Value dx = lb.reshape(matmul(lb, dzRows, transposed(lb, op.getWIh())), xT);
    Value dWIh = matmul(lb, timeMajorColumns(lb, x), dzRows);
    Value hPrev = tensor::ExtractSliceOp::create(
        builder, loc, shaped(x, {batch, steps, hidden}), hs,
        indexAttrs(builder, {0, 0, 0}),
        indexAttrs(builder, {batch, steps, hidden}),
        indexAttrs(builder, {1, 1, 1}));
    Value dWHh = matmul(lb, timeMajorColumns(lb, hPrev), dzRows);
    Value dBias = lb.reduce(dzRows, {0}, 0.0, addValues);
    return SmallVector<Value>{
        dx, backward.getResult(0), backward.getResult(1), dWIh, dWHh, dBias};
  }
};

} // namespace

void loom::lowering::populateBackwardPatterns(RewritePatternSet &patterns) {
  patterns.add<AttentionLseLowering, AttentionGradLowering,
               CrossEntropyGradLowering, LayerNormGradLowering,
               GeluGradLowering, EmbeddingGradLowering, LstmGradLowering>(
      patterns.getContext());
}
