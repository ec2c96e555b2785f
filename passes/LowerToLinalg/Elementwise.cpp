//===- Elementwise.cpp - Lowering of elementwise loom ops -----------------===//
//
// Each op becomes one parallel linalg.generic over its result (operands
// broadcast through their indexing maps) with an arith/math body.
//
//===----------------------------------------------------------------------===//

#include "passes/LowerToLinalg/Lowering.h"

#include "ir/LoomOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <cmath>

using namespace mlir;
using namespace loom::lowering;

namespace {

bool isFloat(Value v) { return llvm::isa<FloatType>(v.getType()); }

/// Replaces `op` by an elementwise generic over its result type.
template <typename Op>
LogicalResult lowerElementwise(Op op, PatternRewriter &rewriter,
                               ValueRange inputs, const BodyFn &body) {
  LinalgBuilder lb(rewriter, op.getLoc());
  auto type = llvm::cast<RankedTensorType>(op->getResult(0).getType());
  rewriter.replaceOp(op, lb.elementwise(type, inputs, body));
  return success();
}

template <typename LoomOp, typename FloatOp, typename IntOp>
struct BinaryLowering : OpRewritePattern<LoomOp> {
  using OpRewritePattern<LoomOp>::OpRewritePattern;
  LogicalResult matchAndRewrite(LoomOp op,
                                PatternRewriter &rewriter) const override {
    return lowerElementwise(
        op, rewriter, {op.getLhs(), op.getRhs()},
        [](OpBuilder &b, Location loc, ValueRange a) -> Value {
          if (isFloat(a[0]))
            return FloatOp::create(b, loc, a[0], a[1]);
          return IntOp::create(b, loc, a[0], a[1]);
        });
  }
};

/// A unary float op whose body is `fn(x)`.
template <typename LoomOp> struct UnaryLowering : OpRewritePattern<LoomOp> {
  using Fn = Value (*)(OpBuilder &, Location, Value);
  UnaryLowering(MLIRContext *ctx, Fn fn)
      : OpRewritePattern<LoomOp>(ctx), fn(fn) {}
  LogicalResult matchAndRewrite(LoomOp op,
                                PatternRewriter &rewriter) const override {
    Fn f = fn;
    return lowerElementwise(op, rewriter, {op.getInput()},
                            [f](OpBuilder &b, Location loc, ValueRange a) {
                              return f(b, loc, a[0]);
                            });
  }
  Fn fn;
};

Value constantLike(OpBuilder &b, Location loc, Value like, double v) {
  return scalarConstant(b, loc, like.getType(), v);
}

Value sigmoid(OpBuilder &b, Location loc, Value x) {
  // 1 / (1 + exp(-x))
  Value one = constantLike(b, loc, x, 1.0);
  Value e = math::ExpOp::create(b, loc, arith::NegFOp::create(b, loc, x));
  return arith::DivFOp::create(b, loc, one,
                               arith::AddFOp::create(b, loc, one, e));
}

struct GeluLowering : OpRewritePattern<loom::GeluOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::GeluOp op,
                                PatternRewriter &rewriter) const override {
    bool approximate = op.getApproximate();
    return lowerElementwise(
        op, rewriter, {op.getInput()},
        [approximate](OpBuilder &b, Location loc, ValueRange a) -> Value {
          Value x = a[0];
          Value half = constantLike(b, loc, x, 0.5);
          Value one = constantLike(b, loc, x, 1.0);
          Value inner;
          if (approximate) {
            // tanh(sqrt(2/pi) * (x + 0.044715 x^3))
            Value x3 = arith::MulFOp::create(
                b, loc, x, arith::MulFOp::create(b, loc, x, x));
            Value poly = arith::AddFOp::create(
                b, loc, x,
                arith::MulFOp::create(b, loc, constantLike(b, loc, x, 0.044715),
                                      x3));
            inner = math::TanhOp::create(
                b, loc,
                arith::MulFOp::create(
                    b, loc, constantLike(b, loc, x, std::sqrt(2.0 / M_PI)),
                    poly));
          } else {
            // erf(x / sqrt(2))
            inner = math::ErfOp::create(
                b, loc,
                arith::MulFOp::create(b, loc, x,
                                      constantLike(b, loc, x, M_SQRT1_2)));
          }
          Value factor = arith::AddFOp::create(b, loc, one, inner);
          return arith::MulFOp::create(
              b, loc, arith::MulFOp::create(b, loc, half, x), factor);
        });
  }
};

struct PowLowering : OpRewritePattern<loom::PowOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::PowOp op,
                                PatternRewriter &rewriter) const override {
    double p = op.getExponent();
    return lowerElementwise(
        op, rewriter, {op.getInput()},
        [p](OpBuilder &b, Location loc, ValueRange a) -> Value {
          Value x = a[0];
          if (p == 1.0)
            return x;
          if (p == 2.0)
            return arith::MulFOp::create(b, loc, x, x);
          if (p == 0.5)
            return math::SqrtOp::create(b, loc, x);
          return math::PowFOp::create(b, loc, x, constantLike(b, loc, x, p));
        });
  }
};

struct CompareLowering : OpRewritePattern<loom::CompareOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::CompareOp op,
                                PatternRewriter &rewriter) const override {
    StringRef pred = op.getPredicate();
    return lowerElementwise(
        op, rewriter, {op.getLhs(), op.getRhs()},
        [pred](OpBuilder &b, Location loc, ValueRange a) -> Value {
          if (isFloat(a[0])) {
            auto p = llvm::StringSwitch<arith::CmpFPredicate>(pred)
                         .Case("eq", arith::CmpFPredicate::OEQ)
                         .Case("ne", arith::CmpFPredicate::UNE)
                         .Case("lt", arith::CmpFPredicate::OLT)
                         .Case("le", arith::CmpFPredicate::OLE)
                         .Case("gt", arith::CmpFPredicate::OGT)
                         .Default(arith::CmpFPredicate::OGE);
            return arith::CmpFOp::create(b, loc, p, a[0], a[1]);
          }
          bool isBool = a[0].getType().isInteger(1);
          auto p = llvm::StringSwitch<arith::CmpIPredicate>(pred)
                       .Case("eq", arith::CmpIPredicate::eq)
                       .Case("ne", arith::CmpIPredicate::ne)
                       .Case("lt", isBool ? arith::CmpIPredicate::ult
                                          : arith::CmpIPredicate::slt)
                       .Case("le", isBool ? arith::CmpIPredicate::ule
                                          : arith::CmpIPredicate::sle)
                       .Case("gt", isBool ? arith::CmpIPredicate::ugt
                                          : arith::CmpIPredicate::sgt)
                       .Default(isBool ? arith::CmpIPredicate::uge
                                       : arith::CmpIPredicate::sge);
          return arith::CmpIOp::create(b, loc, p, a[0], a[1]);
        });
  }
};

struct WhereLowering : OpRewritePattern<loom::WhereOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::WhereOp op,
                                PatternRewriter &rewriter) const override {
    return lowerElementwise(
        op, rewriter, {op.getCond(), op.getLhs(), op.getRhs()},
        [](OpBuilder &b, Location loc, ValueRange a) {
          return arith::SelectOp::create(b, loc, a[0], a[1], a[2]).getResult();
        });
  }
};

/// Converts one scalar between loom element types.
Value convertScalar(OpBuilder &b, Location loc, Value x, Type to) {
  Type from = x.getType();
  if (from == to)
    return x;
  auto fromF = llvm::dyn_cast<FloatType>(from);
  auto toF = llvm::dyn_cast<FloatType>(to);
  if (fromF && toF) {
    if (fromF.getWidth() < toF.getWidth())
      return arith::ExtFOp::create(b, loc, to, x);
    if (fromF.getWidth() > toF.getWidth())
      return arith::TruncFOp::create(b, loc, to, x);
    // f16 <-> bf16: through f32.
    Value wide = arith::ExtFOp::create(b, loc, b.getF32Type(), x);
    return arith::TruncFOp::create(b, loc, to, wide);
  }
  if (fromF) {
    if (to.isInteger(1))
      return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNE, x,
                                   scalarConstant(b, loc, from, 0));
    return arith::FPToSIOp::create(b, loc, to, x);
  }
  if (toF) {
    if (from.isInteger(1))
      return arith::UIToFPOp::create(b, loc, to, x);
    return arith::SIToFPOp::create(b, loc, to, x);
  }
  if (to.isInteger(1))
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, x,
                                 scalarConstant(b, loc, from, 0));
  return arith::ExtUIOp::create(b, loc, to, x);
}

struct CastLowering : OpRewritePattern<loom::CastOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::CastOp op,
                                PatternRewriter &rewriter) const override {
    Type to = op.getTo();
    return lowerElementwise(op, rewriter, {op.getInput()},
                            [to](OpBuilder &b, Location loc, ValueRange a) {
                              return convertScalar(b, loc, a[0], to);
                            });
  }
};

struct ConstantLowering : OpRewritePattern<loom::ConstantOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::ConstantOp op,
                                PatternRewriter &rewriter) const override {
    auto value = llvm::dyn_cast<TypedAttr>(op.getValue());
    if (!value)
      return rewriter.notifyMatchFailure(op, "constant is not a typed attr");
    rewriter.replaceOpWithNewOp<arith::ConstantOp>(op, value);
    return success();
  }
};

struct FillLowering : OpRewritePattern<loom::FillOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::FillOp op,
                                PatternRewriter &rewriter) const override {
    LinalgBuilder lb(rewriter, op.getLoc());
    rewriter.replaceOp(op, lb.full(op.getType(), op.getValue()));
    return success();
  }
};

/// The row-major linear index of the current element of a generic over
/// `shape`, as i64.
Value linearIndex(OpBuilder &b, Location loc, ArrayRef<int64_t> shape) {
  Value index = arith::ConstantIndexOp::create(b, loc, 0);
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    Value size = arith::ConstantIndexOp::create(b, loc, shape[d]);
    index = arith::AddIOp::create(b, loc,
                                  arith::MulIOp::create(b, loc, index, size),
                                  linalg::IndexOp::create(b, loc, d));
  }
  return arith::IndexCastOp::create(b, loc, b.getI64Type(), index);
}

struct ArangeLowering : OpRewritePattern<loom::ArangeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::ArangeOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.getType().hasStaticShape())
      return rewriter.notifyMatchFailure(op, "dynamic arange");
    return lowerElementwise(
        op, rewriter, {}, [](OpBuilder &b, Location loc, ValueRange) -> Value {
          return arith::IndexCastOp::create(b, loc, b.getI32Type(),
                                            linalg::IndexOp::create(b, loc, 0));
        });
  }
};

/// positions[b, t] = start[b] + t.
struct DecodePositionsLowering : OpRewritePattern<loom::DecodePositionsOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::DecodePositionsOp op,
                                PatternRewriter &rewriter) const override {
    auto type = op.getType();
    if (!type.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "dynamic positions");
    Location loc = op.getLoc();
    MLIRContext *ctx = rewriter.getContext();
    SmallVector<AffineMap> maps = {
        AffineMap::get(2, 0, {rewriter.getAffineDimExpr(0)}, ctx),
        rewriter.getMultiDimIdentityMap(2)};
    Value init = tensor::EmptyOp::create(rewriter, loc, type.getShape(),
                                         type.getElementType());
    auto generic = linalg::GenericOp::create(
        rewriter, loc, TypeRange{type}, ValueRange{op.getStart()},
        ValueRange{init}, maps,
        {utils::IteratorType::parallel, utils::IteratorType::parallel},
        [&](OpBuilder &b, Location l, ValueRange args) {
          Value t = arith::IndexCastOp::create(
              b, l, b.getI32Type(), linalg::IndexOp::create(b, l, 1));
          linalg::YieldOp::create(
              b, l, arith::AddIOp::create(b, l, args[0], t).getResult());
        });
    rewriter.replaceOp(op, generic.getResult(0));
    return success();
  }
};

struct SinusoidalLowering : OpRewritePattern<loom::SinusoidalOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::SinusoidalOp op,
                                PatternRewriter &rewriter) const override {
    LinalgBuilder lb(rewriter, op.getLoc());
    auto type = op.getType();
    int64_t rank = type.getRank();
    int64_t dim = op.getDim();
    // positions: [...] -> [..., dim]
    Value result = lb.appendDim(
        type, op.getPositions(),
        [&](OpBuilder &b, Location loc, ValueRange args) -> Value {
          // angle = p / 10000^(2 * (j / 2) / dim), in f64.
          Type f64 = b.getF64Type();
          Value p = arith::SIToFPOp::create(b, loc, f64, args[0]);
          Value j = arith::IndexCastOp::create(
              b, loc, b.getI64Type(),
              linalg::IndexOp::create(b, loc, rank - 1));
          Value two = arith::ConstantIntOp::create(b, loc, b.getI64Type(), 2);
          Value pair = arith::DivUIOp::create(b, loc, j, two);
          Value parity = arith::RemUIOp::create(b, loc, j, two);
          Value exponent = arith::MulFOp::create(
              b, loc, arith::UIToFPOp::create(b, loc, f64, pair),
              scalarConstant(b, loc, f64, -2.0 * std::log(10000.0) / dim));
          Value angle = arith::MulFOp::create(
              b, loc, p, math::ExpOp::create(b, loc, exponent));
          Value isEven = arith::CmpIOp::create(
              b, loc, arith::CmpIPredicate::eq, parity,
              arith::ConstantIntOp::create(b, loc, b.getI64Type(), 0));
          Value v = arith::SelectOp::create(b, loc, isEven,
                                            math::SinOp::create(b, loc, angle),
                                            math::CosOp::create(b, loc, angle));
          return arith::TruncFOp::create(b, loc, type.getElementType(), v);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// Dropout keeps an element when a counter-based hash of (seed, site,
/// linear index) gives u >= rate; see DropoutOp's description.
struct DropoutLowering : OpRewritePattern<loom::DropoutOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::DropoutOp op,
                                PatternRewriter &rewriter) const override {
    double rate = op.getRate();
    int64_t site = op.getSite();
    auto type = op.getType();
    SmallVector<int64_t> shape(type.getShape());
    return lowerElementwise(
        op, rewriter, {op.getInput(), op.getSeed()},
        [=](OpBuilder &b, Location loc, ValueRange a) -> Value {
          Type i64 = b.getI64Type();
          auto c = [&](uint64_t v) {
            return arith::ConstantIntOp::create(b, loc, i64,
                                                static_cast<int64_t>(v))
                .getResult();
          };
          Value index = linearIndex(b, loc, shape);
          Value x = arith::AddIOp::create(
              b, loc, a[1],
              arith::AddIOp::create(
                  b, loc,
                  c(static_cast<uint64_t>(site) * 0x9E3779B97F4A7C15ull),
                  arith::MulIOp::create(b, loc, index,
                                        c(0xD1B54A32D192ED03ull))));
          auto mix = [&](Value v, int shift, uint64_t mul) -> Value {
            v = arith::XOrIOp::create(
                b, loc, v, arith::ShRUIOp::create(b, loc, v, c(shift)));
            return mul ? arith::MulIOp::create(b, loc, v, c(mul)).getResult()
                       : v;
          };
          x = mix(x, 30, 0xBF58476D1CE4E5B9ull);
          x = mix(x, 27, 0x94D049BB133111EBull);
          x = mix(x, 31, 0);
          Value bits = arith::ShRUIOp::create(b, loc, x, c(40));
          Value u = arith::MulFOp::create(
              b, loc, arith::UIToFPOp::create(b, loc, b.getF64Type(), bits),
              scalarConstant(b, loc, b.getF64Type(), std::ldexp(1.0, -24)));
          Value keep = arith::CmpFOp::create(
              b, loc, arith::CmpFPredicate::OGE, u,
              scalarConstant(b, loc, b.getF64Type(), rate));
          Value scaled = arith::MulFOp::create(
              b, loc, a[0], constantLike(b, loc, a[0], 1.0 / (1.0 - rate)));
          return arith::SelectOp::create(b, loc, keep, scaled,
                                         constantLike(b, loc, a[0], 0.0));
        });
  }
};

} // namespace

void loom::lowering::populateElementwisePatterns(RewritePatternSet &patterns) {
  MLIRContext *ctx = patterns.getContext();
  patterns.add<BinaryLowering<loom::AddOp, arith::AddFOp, arith::AddIOp>,
               BinaryLowering<loom::SubOp, arith::SubFOp, arith::SubIOp>,
               BinaryLowering<loom::MulOp, arith::MulFOp, arith::MulIOp>,
               BinaryLowering<loom::DivOp, arith::DivFOp, arith::DivSIOp>,
               GeluLowering, PowLowering, CompareLowering, WhereLowering,
               CastLowering, ConstantLowering, FillLowering, ArangeLowering,
               DecodePositionsLowering, SinusoidalLowering, DropoutLowering>(
      ctx);
  auto unary = [&](auto tag, auto fn) {
    using Op = decltype(tag);
    patterns.add<UnaryLowering<Op>>(ctx, fn);
  };
  unary(
      loom::NegOp(), +[](OpBuilder &b, Location l, Value x) -> Value {
        return arith::NegFOp::create(b, l, x);
      });
  unary(
      loom::ExpOp(), +[](OpBuilder &b, Location l, Value x) -> Value {
        return math::ExpOp::create(b, l, x);
      });
  unary(
      loom::LogOp(), +[](OpBuilder &b, Location l, Value x) -> Value {
        return math::LogOp::create(b, l, x);
      });
  unary(
      loom::TanhOp(), +[](OpBuilder &b, Location l, Value x) -> Value {
        return math::TanhOp::create(b, l, x);
      });
  unary(
      loom::SigmoidOp(), +[](OpBuilder &b, Location l, Value x) -> Value {
        return sigmoid(b, l, x);
      });
  unary(
      loom::ReluOp(), +[](OpBuilder &b, Location l, Value x) -> Value {
        return arith::MaximumFOp::create(b, l, x, constantLike(b, l, x, 0.0));
      });
  unary(
      loom::SqrtOp(), +[](OpBuilder &b, Location l, Value x) -> Value {
        return math::SqrtOp::create(b, l, x);
      });
  unary(
      loom::RsqrtOp(), +[](OpBuilder &b, Location l, Value x) -> Value {
        return math::RsqrtOp::create(b, l, x);
      });
}
