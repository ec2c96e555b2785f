//===- Lowering.cpp - Helpers for lowering loom ops to linalg -------------===//

#include "passes/LowerToLinalg/Lowering.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <limits>

using namespace mlir;
using namespace loom::lowering;

Value loom::lowering::scalarConstant(OpBuilder &b, Location loc, Type type,
                                     double value) {
  if (auto f = llvm::dyn_cast<FloatType>(type))
    return arith::ConstantOp::create(b, loc, b.getFloatAttr(f, value));
  if (type.isInteger(1))
    return arith::ConstantOp::create(b, loc, b.getBoolAttr(value != 0));
  return arith::ConstantOp::create(
      b, loc, b.getIntegerAttr(type, static_cast<int64_t>(value)));
}

Value loom::lowering::addValues(OpBuilder &b, Location loc, Value x, Value y) {
  if (llvm::isa<FloatType>(x.getType()))
    return arith::AddFOp::create(b, loc, x, y);
  return arith::AddIOp::create(b, loc, x, y);
}

Value loom::lowering::mulValues(OpBuilder &b, Location loc, Value x, Value y) {
  if (llvm::isa<FloatType>(x.getType()))
    return arith::MulFOp::create(b, loc, x, y);
  return arith::MulIOp::create(b, loc, x, y);
}

Value loom::lowering::maxValues(OpBuilder &b, Location loc, Value x, Value y) {
  if (llvm::isa<FloatType>(x.getType()))
    return arith::MaximumFOp::create(b, loc, x, y);
  if (x.getType().isInteger(1))
    return arith::OrIOp::create(b, loc, x, y);
  return arith::MaxSIOp::create(b, loc, x, y);
}

double loom::lowering::lowestValue(Type type) {
  if (llvm::isa<FloatType>(type))
    return -std::numeric_limits<double>::infinity();
  if (type.isInteger(1))
    return 0;
  return static_cast<double>(std::numeric_limits<int32_t>::min());
}

Value LinalgBuilder::empty(RankedTensorType type) {
  return tensor::EmptyOp::create(b, loc, type.getShape(),
                                 type.getElementType());
}

Value LinalgBuilder::fullWith(RankedTensorType type, Value scalar) {
  return linalg::FillOp::create(b, loc, ValueRange{scalar},
                                ValueRange{empty(type)})
      .getResult(0);
}

Value LinalgBuilder::full(RankedTensorType type, double value) {
  return fullWith(type, scalarConstant(b, loc, type.getElementType(), value));
}

AffineMap LinalgBuilder::broadcastMap(RankedTensorType operand,
                                      RankedTensorType result) {
  int64_t rank = result.getRank(), opRank = operand.getRank();
  SmallVector<AffineExpr> exprs;
  for (int64_t i = 0; i < opRank; ++i) {
    int64_t resultDim = rank - opRank + i;
    if (operand.getDimSize(i) == 1 && result.getDimSize(resultDim) != 1)
      exprs.push_back(b.getAffineConstantExpr(0));
    else
      exprs.push_back(b.getAffineDimExpr(resultDim));
  }
  return AffineMap::get(rank, 0, exprs, b.getContext());
}

Value LinalgBuilder::elementwise(RankedTensorType resultType, ValueRange inputs,
                                 const BodyFn &body) {
  SmallVector<AffineMap> maps;
  for (Value input : inputs)
    maps.push_back(broadcastMap(llvm::cast<RankedTensorType>(input.getType()),
                                resultType));
  maps.push_back(b.getMultiDimIdentityMap(resultType.getRank()));
  SmallVector<utils::IteratorType> iterators(resultType.getRank(),
                                             utils::IteratorType::parallel);
  auto generic = linalg::GenericOp::create(
      b, loc, TypeRange{resultType}, inputs, ValueRange{empty(resultType)},
      maps, iterators, [&](OpBuilder &nb, Location nloc, ValueRange args) {
        Value v = body(nb, nloc, args.drop_back());
        linalg::YieldOp::create(nb, nloc, v);
      });
  return generic.getResult(0);
}

Value LinalgBuilder::appendDim(RankedTensorType resultType, Value input,
                               const BodyFn &body) {
  int64_t rank = resultType.getRank();
  SmallVector<AffineExpr> exprs;
  for (int64_t i = 0; i + 1 < rank; ++i)
    exprs.push_back(b.getAffineDimExpr(i));
  SmallVector<AffineMap> maps = {AffineMap::get(rank, 0, exprs, b.getContext()),
                                 b.getMultiDimIdentityMap(rank)};
  SmallVector<utils::IteratorType> iterators(rank,
                                             utils::IteratorType::parallel);
  auto generic = linalg::GenericOp::create(
      b, loc, TypeRange{resultType}, ValueRange{input},
      ValueRange{empty(resultType)}, maps, iterators,
      [&](OpBuilder &nb, Location nloc, ValueRange args) {
        linalg::YieldOp::create(nb, nloc, body(nb, nloc, args.take_front()));
      });
  return generic.getResult(0);
}

Value LinalgBuilder::reduce(
    Value input, ArrayRef<int64_t> axes, double init,
    const std::function<Value(OpBuilder &, Location, Value, Value)> &combine) {
  auto inType = llvm::cast<RankedTensorType>(input.getType());
  int64_t rank = inType.getRank();
  SmallVector<int64_t> outShape;
  SmallVector<AffineExpr> outExprs;
  SmallVector<utils::IteratorType> iterators;
  for (int64_t i = 0; i < rank; ++i) {
    bool reduced = llvm::is_contained(axes, i);
    iterators.push_back(reduced ? utils::IteratorType::reduction
                                : utils::IteratorType::parallel);
    if (!reduced) {
      outShape.push_back(inType.getDimSize(i));
      outExprs.push_back(b.getAffineDimExpr(i));
    }
  }
  auto outType = RankedTensorType::get(outShape, inType.getElementType());
  SmallVector<AffineMap> maps = {
      b.getMultiDimIdentityMap(rank),
      AffineMap::get(rank, 0, outExprs, b.getContext())};
  auto generic = linalg::GenericOp::create(
      b, loc, TypeRange{outType}, ValueRange{input},
      ValueRange{full(outType, init)}, maps, iterators,
      [&](OpBuilder &nb, Location nloc, ValueRange args) {
        linalg::YieldOp::create(nb, nloc, combine(nb, nloc, args[1], args[0]));
      });
  return generic.getResult(0);
}

Value LinalgBuilder::unsqueeze(Value value, ArrayRef<int64_t> axes) {
  auto type = llvm::cast<RankedTensorType>(value.getType());
  SmallVector<int64_t> shape(type.getShape());
  for (int64_t axis : axes)
    shape.insert(shape.begin() + axis, 1);
  return reshape(value, RankedTensorType::get(shape, type.getElementType()));
}

Value LinalgBuilder::reshape(Value value, RankedTensorType to) {
  auto from = llvm::cast<RankedTensorType>(value.getType());
  if (from == to)
    return value;
  // Collapse everything to 1-D, then expand to the target.
  Value flat = value;
  if (from.getRank() != 1) {
    SmallVector<ReassociationIndices> all;
    if (from.getRank() > 0) {
      ReassociationIndices group;
      for (int64_t i = 0; i < from.getRank(); ++i)
        group.push_back(i);
      all.push_back(group);
    }
    if (from.getRank() == 0) {
      auto one = RankedTensorType::get({1}, from.getElementType());
      flat = tensor::ExpandShapeOp::create(b, loc, one, value,
                                           ArrayRef<ReassociationIndices>{});
    } else {
      flat = tensor::CollapseShapeOp::create(b, loc, value, all);
    }
  }
  if (to.getRank() == 1)
    return flat;
  if (to.getRank() == 0)
    return tensor::CollapseShapeOp::create(b, loc, flat,
                                           ArrayRef<ReassociationIndices>{});
  ReassociationIndices group;
  for (int64_t i = 0; i < to.getRank(); ++i)
    group.push_back(i);
  return tensor::ExpandShapeOp::create(b, loc, to, flat,
                                       ArrayRef<ReassociationIndices>{group});
}
