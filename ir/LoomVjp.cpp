//===- LoomVjp.cpp - vector-Jacobian products of loom ops -----------------===//
//
// Each differentiable op's `buildVjp` (VjpOpInterface): given the gradients
// of its results, it builds the gradients of its operands with loom ops.
// `loom-autodiff` calls these; it knows nothing about individual ops.
//
// Broadcasting ops sum their result gradient back to each operand's shape;
// ops with a fused closed form (attention, cross-entropy, layer norm, GELU,
// embedding, LSTM) emit the backward ops of LoomGradOps.td.
//
//===----------------------------------------------------------------------===//

#include "ir/LoomOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"

using namespace mlir;
using namespace loom;

namespace {

RankedTensorType tensorType(Value v) {
  return llvm::cast<RankedTensorType>(v.getType());
}

/// A tensor of `type` filled with `value`.
Value filled(OpBuilder &b, Location loc, RankedTensorType type, double value) {
  return FillOp::create(b, loc, type, b.getF64FloatAttr(value));
}

/// A rank-0 tensor of `elementType` holding `value`; it broadcasts against
/// anything.
Value scalar(OpBuilder &b, Location loc, Type elementType, double value) {
  return filled(b, loc, RankedTensorType::get({}, elementType), value);
}

Value mul(OpBuilder &b, Location loc, Value x, Value y) {
  return MulOp::create(b, loc, x, y);
}

Value mulScalar(OpBuilder &b, Location loc, Value x, double c) {
  return mul(b, loc, x, scalar(b, loc, tensorType(x).getElementType(), c));
}

/// Sums `grad` (of a broadcast result shape) down to `target`, the shape of
/// an operand that was broadcast: leading dims the operand lacks are summed
/// away, dims where the operand has 1 are summed keeping the dim.
FailureOr<Value> sumToShape(OpBuilder &b, Location loc, Value grad,
                            RankedTensorType target) {
  RankedTensorType type = tensorType(grad);
  if (type.getShape() == target.getShape())
    return grad;
  if (!type.hasStaticShape() || !target.hasStaticShape())
    return failure();
  int64_t extra = type.getRank() - target.getRank();
  if (extra < 0)
    return failure();
  if (extra > 0) {
    SmallVector<int64_t> axes;
    for (int64_t i = 0; i < extra; ++i)
      axes.push_back(i);
    grad = ReduceSumOp::create(b, loc, grad, axes, /*keepdim=*/false);
    type = tensorType(grad);
  }
  SmallVector<int64_t> axes;
  for (int64_t i = 0; i < target.getRank(); ++i)
    if (target.getDimSize(i) == 1 && type.getDimSize(i) != 1)
      axes.push_back(i);
  if (!axes.empty())
    grad = ReduceSumOp::create(b, loc, grad, axes, /*keepdim=*/true);
  if (tensorType(grad).getShape() != target.getShape())
    return failure();
  return grad;
}

/// `grad` broadcast to `target` (its shape broadcasts to target's).
Value broadcastTo(OpBuilder &b, Location loc, Value grad,
                  RankedTensorType target) {
  if (tensorType(grad).getShape() == target.getShape())
    return grad;
  return AddOp::create(b, loc, filled(b, loc, target, 0.0), grad);
}

/// The gradient of a reduction's result, reshaped to keep the reduced dims
/// as 1s so it broadcasts against the input.
Value keepReducedDims(OpBuilder &b, Location loc, Value grad,
                      RankedTensorType input, ArrayRef<int64_t> axes,
                      bool keepdim) {
  if (keepdim)
    return grad;
  SmallVector<int64_t> shape(input.getShape());
  for (int64_t axis : axes)
    shape[axis] = 1;
  return ReshapeOp::create(b, loc, grad, shape);
}

LogicalResult staticOnly(Operation *op) {
  for (Type type : op->getOperandTypes())
    if (auto ranked = llvm::dyn_cast<RankedTensorType>(type);
        ranked && !ranked.hasStaticShape())
      return op->emitOpError("cannot be differentiated with a dynamic shape; "
                             "bind every dim first (loom-specialize)");
  return success();
}

/// Sums `grad` to each broadcast operand's shape, for the operands wanted.
LogicalResult unbroadcast(Operation *op, OpBuilder &b, ArrayRef<bool> wanted,
                          ArrayRef<Value> grads,
                          SmallVectorImpl<Value> &operandGrads) {
  for (auto [i, grad] : llvm::enumerate(grads)) {
    if (!wanted[i] || !grad) {
      operandGrads.push_back(Value());
      continue;
    }
    FailureOr<Value> summed =
        sumToShape(b, op->getLoc(), grad, tensorType(op->getOperand(i)));
    if (failed(summed))
      return op->emitOpError("cannot sum the gradient ")
             << grad.getType() << " back to operand type "
             << op->getOperand(i).getType();
    operandGrads.push_back(*summed);
  }
  return success();
}

} // namespace

//===----------------------------------------------------------------------===//
// Elementwise binary ops
//===----------------------------------------------------------------------===//

LogicalResult AddOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                              ArrayRef<bool> wanted,
                              SmallVectorImpl<Value> &operandGrads) {
  if (failed(staticOnly(*this)))
    return failure();
  Value g = resultGrads[0];
  return unbroadcast(*this, b, wanted, {g, g}, operandGrads);
}

LogicalResult SubOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                              ArrayRef<bool> wanted,
                              SmallVectorImpl<Value> &operandGrads) {
  if (failed(staticOnly(*this)))
    return failure();
  Value g = resultGrads[0];
  Value negated = wanted[1] ? NegOp::create(b, getLoc(), g) : Value();
  return unbroadcast(*this, b, wanted, {g, negated}, operandGrads);
}

LogicalResult MulOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                              ArrayRef<bool> wanted,
                              SmallVectorImpl<Value> &operandGrads) {
  if (failed(staticOnly(*this)))
    return failure();
  Value g = resultGrads[0];
  Location loc = getLoc();
  Value dl = wanted[0] ? mul(b, loc, g, getRhs()) : Value();
  Value dr = wanted[1] ? mul(b, loc, g, getLhs()) : Value();
  return unbroadcast(*this, b, wanted, {dl, dr}, operandGrads);
}

LogicalResult DivOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                              ArrayRef<bool> wanted,
                              SmallVectorImpl<Value> &operandGrads) {
  if (failed(staticOnly(*this)))
    return failure();
  Value g = resultGrads[0];
  Location loc = getLoc();
  // d(l/r)/dl = 1/r;  d(l/r)/dr = -(l/r)/r.
  Value dl = wanted[0] ? DivOp::create(b, loc, g, getRhs()) : Value();
  Value dr;
  if (wanted[1])
    dr = NegOp::create(
        b, loc, DivOp::create(b, loc, mul(b, loc, g, getResult()), getRhs()));
  return unbroadcast(*this, b, wanted, {dl, dr}, operandGrads);
}

//===----------------------------------------------------------------------===//
// Elementwise unary ops
//===----------------------------------------------------------------------===//

LogicalResult NegOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                              ArrayRef<bool>,
                              SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(NegOp::create(b, getLoc(), resultGrads[0]));
  return success();
}

LogicalResult ExpOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                              ArrayRef<bool>,
                              SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(mul(b, getLoc(), resultGrads[0], getResult()));
  return success();
}

LogicalResult LogOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                              ArrayRef<bool>,
                              SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(
      DivOp::create(b, getLoc(), resultGrads[0], getInput()));
  return success();
}

LogicalResult TanhOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                               ArrayRef<bool>,
                               SmallVectorImpl<Value> &operandGrads) {
  // g * (1 - y^2) = g - g * y * y
  Location loc = getLoc();
  Value g = resultGrads[0], y = getResult();
  operandGrads.push_back(
      SubOp::create(b, loc, g, mul(b, loc, mul(b, loc, g, y), y)));
  return success();
}

LogicalResult SigmoidOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                  ArrayRef<bool>,
                                  SmallVectorImpl<Value> &operandGrads) {
  // g * y * (1 - y) = g * y - g * y * y
  Location loc = getLoc();
  Value gy = mul(b, loc, resultGrads[0], getResult());
  operandGrads.push_back(
      SubOp::create(b, loc, gy, mul(b, loc, gy, getResult())));
  return success();
}

LogicalResult ReluOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                               ArrayRef<bool>,
                               SmallVectorImpl<Value> &operandGrads) {
  Location loc = getLoc();
  Type element = getType().getElementType();
  Value positive =
      CompareOp::create(b, loc, getInput(), scalar(b, loc, element, 0.0), "gt");
  operandGrads.push_back(WhereOp::create(b, loc, positive, resultGrads[0],
                                         scalar(b, loc, element, 0.0)));
  return success();
}

LogicalResult SqrtOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                               ArrayRef<bool>,
                               SmallVectorImpl<Value> &operandGrads) {
  // g / (2 * y)
  Location loc = getLoc();
  operandGrads.push_back(DivOp::create(b, loc, resultGrads[0],
                                       mulScalar(b, loc, getResult(), 2.0)));
  return success();
}

LogicalResult RsqrtOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                ArrayRef<bool>,
                                SmallVectorImpl<Value> &operandGrads) {
  // y = x^(-1/2): dy/dx = -0.5 * y^3
  Location loc = getLoc();
  Value y = getResult();
  Value y3 = mul(b, loc, mul(b, loc, y, y), y);
  operandGrads.push_back(
      mulScalar(b, loc, mul(b, loc, resultGrads[0], y3), -0.5));
  return success();
}

LogicalResult GeluOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                               ArrayRef<bool>,
                               SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(GeluGradOp::create(b, getLoc(), getType(), getInput(),
                                            resultGrads[0], getApproximate()));
  return success();
}

LogicalResult PowOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                              ArrayRef<bool>,
                              SmallVectorImpl<Value> &operandGrads) {
  Location loc = getLoc();
  double e = getExponent();
  if (e == 0.0) {
    operandGrads.push_back(filled(b, loc, getType(), 0.0));
    return success();
  }
  Value derivative = e == 1.0
                         ? filled(b, loc, getType(), 1.0)
                         : mulScalar(b, loc,
                                     PowOp::create(b, loc, getInput(),
                                                   b.getF64FloatAttr(e - 1.0)),
                                     e);
  operandGrads.push_back(mul(b, loc, resultGrads[0], derivative));
  return success();
}

LogicalResult WhereOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                ArrayRef<bool> wanted,
                                SmallVectorImpl<Value> &operandGrads) {
  if (failed(staticOnly(*this)))
    return failure();
  Location loc = getLoc();
  Value g = resultGrads[0];
  Value zero = scalar(b, loc, getType().getElementType(), 0.0);
  Value dl = wanted[1] ? WhereOp::create(b, loc, getCond(), g, zero) : Value();
  Value dr = wanted[2] ? WhereOp::create(b, loc, getCond(), zero, g) : Value();
  return unbroadcast(*this, b, wanted, {Value(), dl, dr}, operandGrads);
}

LogicalResult CastOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                               ArrayRef<bool>,
                               SmallVectorImpl<Value> &operandGrads) {
  Type from = getInput().getType().getElementType();
  if (!llvm::isa<FloatType>(from) || !llvm::isa<FloatType>(getTo())) {
    operandGrads.push_back(Value());
    return success();
  }
  operandGrads.push_back(
      CastOp::create(b, getLoc(), resultGrads[0], TypeAttr::get(from)));
  return success();
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

/// The gradient of a sum (`scale` 1) or mean (`scale` 1/count) reduction of
/// `input` over `axes`: the result gradient times `scale`, broadcast back.
static Value reducedGradient(OpBuilder &b, Location loc, Value resultGrad,
                             RankedTensorType input, ArrayRef<int64_t> axes,
                             bool keepdim, double scale) {
  Value g = keepReducedDims(b, loc, resultGrad, input, axes, keepdim);
  if (scale != 1.0)
    g = mulScalar(b, loc, g, scale);
  return broadcastTo(b, loc, g, input);
}

LogicalResult ReduceSumOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    ArrayRef<bool>,
                                    SmallVectorImpl<Value> &operandGrads) {
  if (failed(staticOnly(*this)))
    return failure();
  operandGrads.push_back(reducedGradient(b, getLoc(), resultGrads[0],
                                         getInput().getType(), getAxes(),
                                         getKeepdim(), 1.0));
  return success();
}

LogicalResult ReduceMeanOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                     ArrayRef<bool>,
                                     SmallVectorImpl<Value> &operandGrads) {
  if (failed(staticOnly(*this)))
    return failure();
  RankedTensorType input = getInput().getType();
  int64_t count = 1;
  for (int64_t axis : getAxes())
    count *= input.getDimSize(axis);
  operandGrads.push_back(reducedGradient(b, getLoc(), resultGrads[0], input,
                                         getAxes(), getKeepdim(),
                                         1.0 / double(count)));
  return success();
}

LogicalResult ReduceMaxOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    ArrayRef<bool>,
                                    SmallVectorImpl<Value> &operandGrads) {
  if (failed(staticOnly(*this)))
    return failure();
  // The gradient flows to every element equal to the maximum (ties share
  // the full gradient, as for a subgradient of each).
  Location loc = getLoc();
  RankedTensorType input = getInput().getType();
  if (!llvm::isa<FloatType>(input.getElementType())) {
    operandGrads.push_back(Value());
    return success();
  }
  Value max =
      keepReducedDims(b, loc, getResult(), input, getAxes(), getKeepdim());
  Value g =
      keepReducedDims(b, loc, resultGrads[0], input, getAxes(), getKeepdim());
  Value isMax = CompareOp::create(b, loc, getInput(), max, "eq");
  Value zero = scalar(b, loc, input.getElementType(), 0.0);
  operandGrads.push_back(
      broadcastTo(b, loc, WhereOp::create(b, loc, isMax, g, zero), input));
  return success();
}

//===----------------------------------------------------------------------===//
// Linear algebra and shapes
//===----------------------------------------------------------------------===//

/// `x` with its last two dims swapped.
static Value swapLastTwo(OpBuilder &b, Location loc, Value x) {
  int64_t rank = tensorType(x).getRank();
  SmallVector<int64_t> perm;
  for (int64_t i = 0; i < rank; ++i)
    perm.push_back(i);
  std::swap(perm[rank - 1], perm[rank - 2]);
  return TransposeOp::create(b, loc, x, perm);
}

LogicalResult MatmulOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                 ArrayRef<bool> wanted,
                                 SmallVectorImpl<Value> &operandGrads) {
  if (failed(staticOnly(*this)))
    return failure();
  Location loc = getLoc();
  Value g = resultGrads[0];
  RankedTensorType lhs = getLhs().getType(), rhs = getRhs().getType();
  Value dl, dr;
  if (wanted[0])
    dl = MatmulOp::create(b, loc, g, swapLastTwo(b, loc, getRhs()));
  if (wanted[1]) {
    if (rhs.getRank() == 2 && lhs.getRank() > 2) {
      // A weight shared by a batch: one [K, B*M] @ [B*M, N] product instead
      // of a batched product summed over the batch.
      int64_t k = lhs.getShape().back(), n = rhs.getShape().back();
      Value lhs2 = ReshapeOp::create(
          b, loc, getLhs(), ArrayRef<int64_t>{lhs.getNumElements() / k, k});
      Value g2 = ReshapeOp::create(
          b, loc, g, ArrayRef<int64_t>{tensorType(g).getNumElements() / n, n});
      dr = MatmulOp::create(b, loc, swapLastTwo(b, loc, lhs2), g2);
    } else {
      dr = MatmulOp::create(b, loc, swapLastTwo(b, loc, getLhs()), g);
    }
  }
  return unbroadcast(*this, b, wanted, {dl, dr}, operandGrads);
}

LogicalResult TransposeOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    ArrayRef<bool>,
                                    SmallVectorImpl<Value> &operandGrads) {
  ArrayRef<int64_t> perm = getPerm();
  SmallVector<int64_t> inverse(perm.size());
  for (auto [i, p] : llvm::enumerate(perm))
    inverse[p] = i;
  operandGrads.push_back(
      TransposeOp::create(b, getLoc(), resultGrads[0], inverse));
  return success();
}

LogicalResult SoftmaxOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                  ArrayRef<bool>,
                                  SmallVectorImpl<Value> &operandGrads) {
  // y * (g - sum(g * y, axis))
  Location loc = getLoc();
  Value y = getResult(), g = resultGrads[0];
  Value dot = ReduceSumOp::create(b, loc, mul(b, loc, g, y),
                                  ArrayRef<int64_t>{int64_t(getAxis())},
                                  /*keepdim=*/true);
  operandGrads.push_back(mul(b, loc, y, SubOp::create(b, loc, g, dot)));
  return success();
}

LogicalResult ReshapeOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                  ArrayRef<bool>,
                                  SmallVectorImpl<Value> &operandGrads) {
  if (failed(staticOnly(*this)))
    return failure();
  operandGrads.push_back(ReshapeOp::create(b, getLoc(), resultGrads[0],
                                           getInput().getType().getShape()));
  return success();
}

LogicalResult SplitHeadsOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                     ArrayRef<bool>,
                                     SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(MergeHeadsOp::create(b, getLoc(), resultGrads[0]));
  return success();
}

LogicalResult MergeHeadsOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                     ArrayRef<bool>,
                                     SmallVectorImpl<Value> &operandGrads) {
  int64_t heads = getInput().getType().getDimSize(1);
  if (ShapedType::isDynamic(heads))
    return emitOpError("cannot be differentiated with a dynamic head count");
  operandGrads.push_back(
      SplitHeadsOp::create(b, getLoc(), resultGrads[0], heads));
  return success();
}

LogicalResult ConcatOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                 ArrayRef<bool> wanted,
                                 SmallVectorImpl<Value> &operandGrads) {
  if (failed(staticOnly(*this)))
    return failure();
  int64_t axis = getAxis(), start = 0;
  for (auto [i, input] : llvm::enumerate(getInputs())) {
    int64_t size = tensorType(input).getDimSize(axis);
    operandGrads.push_back(wanted[i]
                               ? SliceOp::create(b, getLoc(), resultGrads[0],
                                                 axis, start, start + size)
                               : Value());
    start += size;
  }
  return success();
}

LogicalResult SliceOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                ArrayRef<bool>,
                                SmallVectorImpl<Value> &operandGrads) {
  if (failed(staticOnly(*this)))
    return failure();
  // Pads the gradient with zeros back to the input's extent along `axis`.
  Location loc = getLoc();
  RankedTensorType input = getInput().getType();
  int64_t axis = getAxis(), dim = input.getDimSize(axis);
  int64_t start = getStart() < 0 ? getStart() + dim : getStart();
  int64_t size = getType().getDimSize(axis);
  SmallVector<Value> pieces;
  auto zeros = [&](int64_t n) {
    SmallVector<int64_t> shape(input.getShape());
    shape[axis] = n;
    return filled(b, loc, RankedTensorType::get(shape, input.getElementType()),
                  0.0);
  };
  if (start > 0)
    pieces.push_back(zeros(start));
  pieces.push_back(resultGrads[0]);
  if (dim - start - size > 0)
    pieces.push_back(zeros(dim - start - size));
  operandGrads.push_back(pieces.size() == 1
                             ? pieces.front()
                             : Value(ConcatOp::create(b, loc, pieces, axis)));
  return success();
}

//===----------------------------------------------------------------------===//
// Model ops
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    ArrayRef<bool> wanted,
                                    SmallVectorImpl<Value> &operandGrads) {
  if (failed(staticOnly(*this)))
    return failure();
  RankedTensorType table = getTable().getType();
  operandGrads.push_back(wanted[0] ? Value(EmbeddingGradOp::create(
                                         b, getLoc(), table, getIds(),
                                         resultGrads[0], table.getDimSize(0)))
                                   : Value());
  operandGrads.push_back(Value());
  return success();
}

LogicalResult LayerNormOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    ArrayRef<bool> wanted,
                                    SmallVectorImpl<Value> &operandGrads) {
  RankedTensorType gamma = getGamma().getType();
  auto grad = LayerNormGradOp::create(
      b, getLoc(), TypeRange{getType(), gamma, gamma}, getInput(), getGamma(),
      resultGrads[0], getEpsAttr());
  operandGrads.push_back(wanted[0] ? grad.getDInput() : Value());
  operandGrads.push_back(wanted[1] ? grad.getDGamma() : Value());
  operandGrads.push_back(wanted[2] ? grad.getDBeta() : Value());
  return success();
}

LogicalResult AttentionOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                    ArrayRef<bool> wanted,
                                    SmallVectorImpl<Value> &operandGrads) {
  Location loc = getLoc();
  RankedTensorType q = getQ().getType();
  auto lseType =
      RankedTensorType::get(q.getShape().drop_back(), q.getElementType());
  Value lse =
      AttentionLseOp::create(b, loc, lseType, getQ(), getK(), getKeyMask(),
                             getCausalAttr(), getScaleAttr());
  auto grad = AttentionGradOp::create(
      b, loc, TypeRange{q, getK().getType(), getV().getType()}, getQ(), getK(),
      getV(), getResult(), lse, resultGrads[0], getKeyMask(), getCausalAttr(),
      getScaleAttr());
  operandGrads.push_back(wanted[0] ? grad.getDQ() : Value());
  operandGrads.push_back(wanted[1] ? grad.getDK() : Value());
  operandGrads.push_back(wanted[2] ? grad.getDV() : Value());
  if (getKeyMask())
    operandGrads.push_back(Value());
  return success();
}

LogicalResult CrossEntropyOp::buildVjp(OpBuilder &b,
                                       ArrayRef<Value> resultGrads,
                                       ArrayRef<bool> wanted,
                                       SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(
      wanted[0]
          ? Value(CrossEntropyGradOp::create(
                b, getLoc(), getLogits().getType(), getLogits(), getTargets(),
                resultGrads[0], getLse(), getIgnoreIndexAttr()))
          : Value());
  operandGrads.push_back(Value()); // targets
  if (getLse())
    operandGrads.push_back(Value()); // a normalizer, not differentiated
  return success();
}

LogicalResult DropoutOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                                  ArrayRef<bool>,
                                  SmallVectorImpl<Value> &operandGrads) {
  // The same mask and scale: the mask depends only on seed, site and index.
  operandGrads.push_back(DropoutOp::create(
      b, getLoc(), resultGrads[0], getSeed(), getRateAttr(), getSiteAttr()));
  operandGrads.push_back(Value());
  return success();
}

LogicalResult LstmOp::buildVjp(OpBuilder &b, ArrayRef<Value> resultGrads,
                               ArrayRef<bool> wanted,
                               SmallVectorImpl<Value> &operandGrads) {
  Location loc = getLoc();
  SmallVector<Value> grads(resultGrads);
  for (auto [i, grad] : llvm::enumerate(grads))
    if (!grad)
      grad = filled(b, loc, tensorType(getResult(i)), 0.0);
  SmallVector<Type> types;
  for (Value operand : getOperands())
    types.push_back(operand.getType());
  auto grad =
      LstmGradOp::create(b, loc, types, getInput(), getH0(), getC0(), getWIh(),
                         getWHh(), getBias(), grads[0], grads[1], grads[2]);
  for (auto [i, result] : llvm::enumerate(grad->getResults()))
    operandGrads.push_back(wanted[i] ? Value(result) : Value());
  return success();
}
