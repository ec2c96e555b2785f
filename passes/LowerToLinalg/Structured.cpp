//===- Structured.cpp - Lowering of contractions, reductions, shapes ------===//
//
// matmul -> linalg.matmul / batch_matmul (or a generic when batch dims
// broadcast); reductions, softmax and layer_norm -> reduction generics;
// shape ops -> tensor reshapes, slices and linalg.transpose.
//
//===----------------------------------------------------------------------===//

#include "passes/LowerToLinalg/Lowering.h"

#include "ir/LoomOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;
using namespace loom::lowering;

namespace {

RankedTensorType withShape(RankedTensorType t, ArrayRef<int64_t> shape) {
  return RankedTensorType::get(shape, t.getElementType());
}

int64_t product(ArrayRef<int64_t> dims) {
  int64_t p = 1;
  for (int64_t d : dims)
    p *= d;
  return p;
}

/// lhs: [..., M, K] @ rhs: [..., K, N] -> [..., M, N]
struct MatmulLowering : OpRewritePattern<loom::MatmulOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::MatmulOp op,
                                PatternRewriter &rewriter) const override {
    // 16-bit floats accumulate in f32: extend, multiply, round once.
    Type elem = op.getType().getElementType();
    if (elem.isBF16() || elem.isF16()) {
      Location loc = op.getLoc();
      auto widen = [&](Value v) -> Value {
        return loom::CastOp::create(rewriter, loc, v,
                                    TypeAttr::get(rewriter.getF32Type()));
      };
      Value wide = loom::MatmulOp::create(rewriter, loc, widen(op.getLhs()),
                                          widen(op.getRhs()));
      rewriter.replaceOpWithNewOp<loom::CastOp>(op, wide, TypeAttr::get(elem));
      return success();
    }
    Location loc = op.getLoc();
    LinalgBuilder lb(rewriter, loc);
    auto lhsT = op.getLhs().getType(), rhsT = op.getRhs().getType();
    auto outT = op.getType();
    int64_t m = lhsT.getDimSize(lhsT.getRank() - 2), k = lhsT.getShape().back();
    int64_t n = rhsT.getShape().back();
    ArrayRef<int64_t> lhsBatch = lhsT.getShape().drop_back(2);
    ArrayRef<int64_t> rhsBatch = rhsT.getShape().drop_back(2);
    ArrayRef<int64_t> outBatch = outT.getShape().drop_back(2);

    // [b..., M, K] @ [K, N]: fold the batch into M (a Linear layer).
    if (rhsBatch.empty() || product(rhsBatch) == 1) {
      int64_t rows = product(outBatch) * m;
      Value lhs = op.getLhs();
      if (lhsBatch != outBatch)
        lhs = broadcastTo(lb, lhs, outBatch);
      Value a = lb.reshape(lhs, withShape(lhsT, {rows, k}));
      Value bm = lb.reshape(op.getRhs(), withShape(rhsT, {k, n}));
      auto mmT = withShape(outT, {rows, n});
      Value mm = linalg::MatmulOp::create(rewriter, loc, TypeRange{mmT},
                                          ValueRange{a, bm},
                                          ValueRange{lb.full(mmT, 0.0)})
                     .getResult(0);
      rewriter.replaceOp(op, lb.reshape(mm, outT));
      return success();
    }
    // Equal batch dims: one batch_matmul over the flattened batch.
    Value lhs = op.getLhs(), rhs = op.getRhs();
    if (lhsBatch != outBatch)
      lhs = broadcastTo(lb, lhs, outBatch);
    if (rhsBatch != outBatch)
      rhs = broadcastTo(lb, rhs, outBatch);
    int64_t batch = product(outBatch);
    Value a = lb.reshape(lhs, withShape(lhsT, {batch, m, k}));
    Value bm = lb.reshape(rhs, withShape(rhsT, {batch, k, n}));
    auto bmmT = withShape(outT, {batch, m, n});
    Value bmm = linalg::BatchMatmulOp::create(rewriter, loc, TypeRange{bmmT},
                                              ValueRange{a, bm},
                                              ValueRange{lb.full(bmmT, 0.0)})
                    .getResult(0);
    rewriter.replaceOp(op, lb.reshape(bmm, outT));
    return success();
  }

  /// Materializes `value` ([b..., R, C]) with batch dims `batch`.
  static Value broadcastTo(LinalgBuilder &lb, Value value,
                           ArrayRef<int64_t> batch) {
    auto t = llvm::cast<RankedTensorType>(value.getType());
    SmallVector<int64_t> shape(batch);
    shape.append({t.getDimSize(t.getRank() - 2), t.getShape().back()});
    return lb.elementwise(
        withShape(t, shape), {value},
        [](OpBuilder &, Location, ValueRange a) { return a[0]; });
  }
};

struct TransposeLowering : OpRewritePattern<loom::TransposeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::TransposeOp op,
                                PatternRewriter &rewriter) const override {
    LinalgBuilder lb(rewriter, op.getLoc());
    auto t = linalg::TransposeOp::create(rewriter, op.getLoc(), op.getInput(),
                                         lb.empty(op.getType()), op.getPerm());
    rewriter.replaceOp(op, t.getResult());
    return success();
  }
};

template <typename LoomOp> struct ReduceLowering : OpRewritePattern<LoomOp> {
  using OpRewritePattern<LoomOp>::OpRewritePattern;
  LogicalResult matchAndRewrite(LoomOp op,
                                PatternRewriter &rewriter) const override {
    LinalgBuilder lb(rewriter, op.getLoc());
    Value input = op.getInput();
    Type elem = llvm::cast<RankedTensorType>(input.getType()).getElementType();
    ArrayRef<int64_t> axes = op.getAxes();
    constexpr bool isMax = std::is_same_v<LoomOp, loom::ReduceMaxOp>;
    constexpr bool isMean = std::is_same_v<LoomOp, loom::ReduceMeanOp>;
    Value r = lb.reduce(input, axes, isMax ? lowestValue(elem) : 0.0,
                        [](OpBuilder &b, Location loc, Value acc, Value x) {
                          return isMax ? maxValues(b, loc, acc, x)
                                       : addValues(b, loc, acc, x);
                        });
    if (isMean) {
      auto inT = llvm::cast<RankedTensorType>(input.getType());
      int64_t count = 1;
      for (int64_t a : axes)
        count *= inT.getDimSize(a);
      auto rT = llvm::cast<RankedTensorType>(r.getType());
      r = lb.elementwise(
          rT, {r}, [count](OpBuilder &b, Location loc, ValueRange a) {
            return arith::DivFOp::create(
                       b, loc, a[0],
                       scalarConstant(b, loc, a[0].getType(), double(count)))
                .getResult();
          });
    }
    if (op.getKeepdim())
      r = lb.unsqueeze(r, axes);
    rewriter.replaceOp(op, r);
    return success();
  }
};

/// softmax(x) along `axis` = exp(x - max) / sum(exp(x - max)).
Value softmax(LinalgBuilder &lb, Value x, int64_t axis) {
  auto t = llvm::cast<RankedTensorType>(x.getType());
  Value max = lb.unsqueeze(
      lb.reduce(x, {axis}, lowestValue(t.getElementType()), maxValues), {axis});
  Value e =
      lb.elementwise(t, {x, max}, [](OpBuilder &b, Location loc, ValueRange a) {
        return math::ExpOp::create(b, loc,
                                   arith::SubFOp::create(b, loc, a[0], a[1]))
            .getResult();
      });
  Value sum = lb.unsqueeze(lb.reduce(e, {axis}, 0.0, addValues), {axis});
  return lb.elementwise(
      t, {e, sum}, [](OpBuilder &b, Location loc, ValueRange a) {
        return arith::DivFOp::create(b, loc, a[0], a[1]).getResult();
      });
}

struct SoftmaxLowering : OpRewritePattern<loom::SoftmaxOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::SoftmaxOp op,
                                PatternRewriter &rewriter) const override {
    LinalgBuilder lb(rewriter, op.getLoc());
    rewriter.replaceOp(op, softmax(lb, op.getInput(), op.getAxis()));
    return success();
  }
};

/// (x - mean) * rsqrt(var + eps) * gamma + beta over the last dim.
struct LayerNormLowering : OpRewritePattern<loom::LayerNormOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::LayerNormOp op,
                                PatternRewriter &rewriter) const override {
    LinalgBuilder lb(rewriter, op.getLoc());
    Value x = op.getInput();
    auto t = llvm::cast<RankedTensorType>(x.getType());
    int64_t last = t.getRank() - 1;
    double n = double(t.getShape().back());
    double eps = op.getEps();
    auto scale = [](double s) {
      return [s](OpBuilder &b, Location loc, ValueRange a) {
        return arith::MulFOp::create(b, loc, a[0],
                                     scalarConstant(b, loc, a[0].getType(), s))
            .getResult();
      };
    };
    Value sum = lb.reduce(x, {last}, 0.0, addValues);
    auto rowT = llvm::cast<RankedTensorType>(sum.getType());
    Value mean =
        lb.unsqueeze(lb.elementwise(rowT, {sum}, scale(1.0 / n)), {last});
    Value centered = lb.elementwise(
        t, {x, mean}, [](OpBuilder &b, Location loc, ValueRange a) {
          return arith::SubFOp::create(b, loc, a[0], a[1]).getResult();
        });
    Value sq = lb.elementwise(
        t, {centered}, [](OpBuilder &b, Location loc, ValueRange a) {
          return arith::MulFOp::create(b, loc, a[0], a[0]).getResult();
        });
    Value var = lb.elementwise(rowT, {lb.reduce(sq, {last}, 0.0, addValues)},
                               scale(1.0 / n));
    Value inv = lb.unsqueeze(
        lb.elementwise(
            rowT, {var},
            [eps](OpBuilder &b, Location loc, ValueRange a) {
              return math::RsqrtOp::create(
                         b, loc,
                         arith::AddFOp::create(
                             b, loc, a[0],
                             scalarConstant(b, loc, a[0].getType(), eps)))
                  .getResult();
            }),
        {last});
    Value y = lb.elementwise(
        t, {centered, inv, op.getGamma(), op.getBeta()},
        [](OpBuilder &b, Location loc, ValueRange a) {
          Value norm = arith::MulFOp::create(b, loc, a[0], a[1]);
          return arith::AddFOp::create(
                     b, loc, arith::MulFOp::create(b, loc, norm, a[2]), a[3])
              .getResult();
        });
    rewriter.replaceOp(op, y);
    return success();
  }
};

struct ReshapeLowering : OpRewritePattern<loom::ReshapeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::ReshapeOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.getType().hasStaticShape())
      return rewriter.notifyMatchFailure(op, "dynamic reshape");
    LinalgBuilder lb(rewriter, op.getLoc());
    rewriter.replaceOp(op, lb.reshape(op.getInput(), op.getType()));
    return success();
  }
};

/// [B, T, H*Dh] -> [B, T, H, Dh] -> [B, H, T, Dh]
struct SplitHeadsLowering : OpRewritePattern<loom::SplitHeadsOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::SplitHeadsOp op,
                                PatternRewriter &rewriter) const override {
    if (op->hasAttr(kKeptForKernelAttr))
      return rewriter.notifyMatchFailure(op, "left to a kernel");
    LinalgBuilder lb(rewriter, op.getLoc());
    auto out = op.getType();
    ArrayRef<int64_t> s = out.getShape(); // [B, H, T, Dh]
    Value grouped =
        lb.reshape(op.getInput(), withShape(out, {s[0], s[2], s[1], s[3]}));
    rewriter.replaceOp(op, linalg::TransposeOp::create(
                               rewriter, op.getLoc(), grouped, lb.empty(out),
                               ArrayRef<int64_t>{0, 2, 1, 3})
                               .getResult());
    return success();
  }
};

/// [B, H, T, Dh] -> [B, T, H, Dh] -> [B, T, H*Dh]
struct MergeHeadsLowering : OpRewritePattern<loom::MergeHeadsOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::MergeHeadsOp op,
                                PatternRewriter &rewriter) const override {
    if (op->hasAttr(kKeptForKernelAttr))
      return rewriter.notifyMatchFailure(op, "left to a kernel");
    LinalgBuilder lb(rewriter, op.getLoc());
    auto in = op.getInput().getType();
    ArrayRef<int64_t> s = in.getShape();
    auto swappedT = withShape(in, {s[0], s[2], s[1], s[3]});
    Value swapped = linalg::TransposeOp::create(
                        rewriter, op.getLoc(), op.getInput(),
                        lb.empty(swappedT), ArrayRef<int64_t>{0, 2, 1, 3})
                        .getResult()[0];
    rewriter.replaceOp(op, lb.reshape(swapped, op.getType()));
    return success();
  }
};

struct ConcatLowering : OpRewritePattern<loom::ConcatOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::ConcatOp op,
                                PatternRewriter &rewriter) const override {
    LinalgBuilder lb(rewriter, op.getLoc());
    auto out = op.getType();
    int64_t axis = op.getAxis();
    Value result = lb.empty(out);
    int64_t offset = 0;
    for (Value input : op.getInputs()) {
      auto t = llvm::cast<RankedTensorType>(input.getType());
      SmallVector<OpFoldResult> offsets(t.getRank(), rewriter.getIndexAttr(0));
      offsets[axis] = rewriter.getIndexAttr(offset);
      SmallVector<OpFoldResult> sizes,
          strides(t.getRank(), rewriter.getIndexAttr(1));
      for (int64_t d : t.getShape())
        sizes.push_back(rewriter.getIndexAttr(d));
      result = tensor::InsertSliceOp::create(rewriter, op.getLoc(), input,
                                             result, offsets, sizes, strides);
      offset += t.getDimSize(axis);
    }
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct SliceLowering : OpRewritePattern<loom::SliceOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::SliceOp op,
                                PatternRewriter &rewriter) const override {
    auto in = op.getInput().getType();
    int64_t axis = op.getAxis();
    int64_t size = in.getDimSize(axis);
    int64_t start = op.getStart();
    if (start < 0)
      start += size;
    SmallVector<OpFoldResult> offsets(in.getRank(), rewriter.getIndexAttr(0));
    offsets[axis] = rewriter.getIndexAttr(start);
    SmallVector<OpFoldResult> sizes,
        strides(in.getRank(), rewriter.getIndexAttr(1));
    for (int64_t d : op.getType().getShape())
      sizes.push_back(rewriter.getIndexAttr(d));
    rewriter.replaceOp(op, tensor::ExtractSliceOp::create(
                               rewriter, op.getLoc(), op.getType(),
                               op.getInput(), offsets, sizes, strides)
                               .getResult());
    return success();
  }
};

/// out[i..., d] = table[ids[i...], d]
struct EmbeddingLowering : OpRewritePattern<loom::EmbeddingOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(loom::EmbeddingOp op,
                                PatternRewriter &rewriter) const override {
    LinalgBuilder lb(rewriter, op.getLoc());
    auto out = op.getType();
    int64_t rank = out.getRank();
    Value table = op.getTable();
    int64_t rows = op.getTable().getType().getDimSize(0);
    Value result = lb.appendDim(
        out, op.getIds(), [&](OpBuilder &b, Location loc, ValueRange args) {
          // Clamp ids into the table so a bad id cannot read out of bounds.
          Value id =
              arith::IndexCastOp::create(b, loc, b.getIndexType(), args[0]);
          Value zero = arith::ConstantIndexOp::create(b, loc, 0);
          Value top = arith::ConstantIndexOp::create(b, loc, rows - 1);
          id = arith::MaxSIOp::create(b, loc, id, zero);
          id = arith::MinSIOp::create(b, loc, id, top);
          Value d = linalg::IndexOp::create(b, loc, rank - 1);
          return tensor::ExtractOp::create(b, loc, table, ValueRange{id, d})
              .getResult();
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

} // namespace

Value loom::lowering::lowerSoftmax(LinalgBuilder &lb, Value x, int64_t axis) {
  return softmax(lb, x, axis);
}

void loom::lowering::populateStructuredPatterns(RewritePatternSet &patterns) {
  patterns.add<
      MatmulLowering, TransposeLowering, ReduceLowering<loom::ReduceSumOp>,
      ReduceLowering<loom::ReduceMeanOp>, ReduceLowering<loom::ReduceMaxOp>,
      SoftmaxLowering, LayerNormLowering, ReshapeLowering, SplitHeadsLowering,
      MergeHeadsLowering, ConcatLowering, SliceLowering, EmbeddingLowering>(
      patterns.getContext());
}
