//===- LoomOps.cpp - loom dialect operations ------------------------------===//
//
// Result-type inference, verifiers, folders and cost models of loom ops.
//
//===----------------------------------------------------------------------===//

#include "ir/LoomOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/PatternMatch.h"

#include "llvm/ADT/STLExtras.h"

using namespace mlir;
using namespace loom;

#include "ir/LoomInterfaces.cpp.inc"

#define GET_OP_CLASSES
#include "ir/LoomOps.cpp.inc"

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

FailureOr<SmallVector<int64_t>> loom::broadcastShapes(ArrayRef<int64_t> lhs,
                                                      ArrayRef<int64_t> rhs) {
  size_t rank = std::max(lhs.size(), rhs.size());
  SmallVector<int64_t> result(rank);
  for (size_t i = 0; i < rank; ++i) {
    // Dims counted from the right; a missing dim acts as 1.
    int64_t l = i < lhs.size() ? lhs[lhs.size() - 1 - i] : 1;
    int64_t r = i < rhs.size() ? rhs[rhs.size() - 1 - i] : 1;
    int64_t &out = result[rank - 1 - i];
    if (l == r || r == 1)
      out = l;
    else if (l == 1)
      out = r;
    else if (ShapedType::isDynamic(l))
      out = r;
    else if (ShapedType::isDynamic(r))
      out = l;
    else
      return failure();
  }
  return result;
}

static std::string shapeString(ArrayRef<int64_t> shape) {
  std::string s = "[";
  for (auto [i, d] : llvm::enumerate(shape)) {
    if (i)
      s += ", ";
    s += ShapedType::isDynamic(d) ? "?" : std::to_string(d);
  }
  return s + "]";
}

/// The ranked tensor type of an operand, or an error: the parser infers result
/// types before the verifier has checked operand types.
static FailureOr<RankedTensorType> rankedOperand(std::optional<Location> loc,
                                                 Type type, StringRef name) {
  if (auto ranked = llvm::dyn_cast<RankedTensorType>(type))
    return ranked;
  return emitOptionalError(loc, "expected ", name,
                           " to be a ranked tensor, got ", type);
}

/// Number of elements of a statically shaped tensor type, else nullopt.
static std::optional<int64_t> staticNumElements(Type type) {
  auto shaped = llvm::dyn_cast<ShapedType>(type);
  if (!shaped || !shaped.hasStaticShape())
    return std::nullopt;
  return shaped.getNumElements();
}

//===----------------------------------------------------------------------===//
// ConstantOp
//===----------------------------------------------------------------------===//

OpFoldResult ConstantOp::fold(FoldAdaptor) { return getValue(); }

//===----------------------------------------------------------------------===//
// Elementwise binary ops
//===----------------------------------------------------------------------===//

static LogicalResult inferBinaryType(std::optional<Location> loc, Type lhsTy,
                                     Type rhsTy,
                                     SmallVectorImpl<Type> &inferred) {
  FailureOr<RankedTensorType> lhs = rankedOperand(loc, lhsTy, "lhs");
  FailureOr<RankedTensorType> rhs = rankedOperand(loc, rhsTy, "rhs");
  if (failed(lhs) || failed(rhs))
    return failure();
  if (lhs->getElementType() != rhs->getElementType())
    return emitOptionalError(loc, "operand element types differ: ",
                             lhs->getElementType(), " vs ",
                             rhs->getElementType());
  FailureOr<SmallVector<int64_t>> shape =
      broadcastShapes(lhs->getShape(), rhs->getShape());
  if (failed(shape))
    return emitOptionalError(loc, "shapes ", shapeString(lhs->getShape()),
                             " and ", shapeString(rhs->getShape()),
                             " do not broadcast");
  inferred.push_back(RankedTensorType::get(*shape, lhs->getElementType()));
  return success();
}

#define LOOM_BINARY_OP(Op)                                                     \
  LogicalResult Op::inferReturnTypes(MLIRContext *, std::optional<Location> l, \
                                     Adaptor a, SmallVectorImpl<Type> &types) { \
    return inferBinaryType(l, a.getLhs().getType(), a.getRhs().getType(),     \
                           types);                                             \
  }                                                                            \
  std::optional<int64_t> Op::getFlopCount() {                                  \
    return staticNumElements(getType());                                       \
  }
LOOM_BINARY_OP(AddOp)
LOOM_BINARY_OP(SubOp)
LOOM_BINARY_OP(MulOp)
LOOM_BINARY_OP(DivOp)
#undef LOOM_BINARY_OP

//===----------------------------------------------------------------------===//
// Elementwise unary ops
//===----------------------------------------------------------------------===//

// Result types come from SameOperandsAndResultType.
#define LOOM_UNARY_OP(Op, flopsPerElement)                                     \
  std::optional<int64_t> Op::getFlopCount() {                                  \
    std::optional<int64_t> n = staticNumElements(getType());                   \
    return n ? std::optional<int64_t>(*n * (flopsPerElement)) : std::nullopt; \
  }
LOOM_UNARY_OP(NegOp, 1)
LOOM_UNARY_OP(ExpOp, 1)
#undef LOOM_UNARY_OP

//===----------------------------------------------------------------------===//
// MatmulOp
//===----------------------------------------------------------------------===//

LogicalResult MatmulOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &inferred) {
  FailureOr<RankedTensorType> lhsOr =
      rankedOperand(loc, adaptor.getLhs().getType(), "lhs");
  FailureOr<RankedTensorType> rhsOr =
      rankedOperand(loc, adaptor.getRhs().getType(), "rhs");
  if (failed(lhsOr) || failed(rhsOr))
    return failure();
  RankedTensorType lhs = *lhsOr, rhs = *rhsOr;
  if (lhs.getRank() < 2 || rhs.getRank() < 2)
    return emitOptionalError(loc, "expected operands of rank >= 2, got ranks ",
                             lhs.getRank(), " and ", rhs.getRank());
  if (lhs.getElementType() != rhs.getElementType())
    return emitOptionalError(loc, "operand element types differ: ",
                             lhs.getElementType(), " vs ",
                             rhs.getElementType());
  // lhs: [..., M, K], rhs: [..., K, N]
  ArrayRef<int64_t> ls = lhs.getShape(), rs = rhs.getShape();
  int64_t m = ls[ls.size() - 2], k = ls.back();
  int64_t k2 = rs[rs.size() - 2], n = rs.back();
  if (!ShapedType::isDynamic(k) && !ShapedType::isDynamic(k2) && k != k2)
    return emitOptionalError(loc, "contraction dims differ: lhs ",
                             shapeString(ls), " has K = ", k, ", rhs ",
                             shapeString(rs), " has K = ", k2);
  FailureOr<SmallVector<int64_t>> batch =
      broadcastShapes(ls.drop_back(2), rs.drop_back(2));
  if (failed(batch))
    return emitOptionalError(loc, "batch dims ", shapeString(ls.drop_back(2)),
                             " and ", shapeString(rs.drop_back(2)),
                             " do not broadcast");
  SmallVector<int64_t> shape = std::move(*batch);
  shape.push_back(m);
  shape.push_back(n);
  inferred.push_back(RankedTensorType::get(shape, lhs.getElementType()));
  return success();
}

std::optional<int64_t> MatmulOp::getFlopCount() {
  auto lhs = getLhs().getType();
  std::optional<int64_t> outElements = staticNumElements(getType());
  if (!outElements || !lhs.hasStaticShape())
    return std::nullopt;
  return 2 * *outElements * lhs.getShape().back();
}

//===----------------------------------------------------------------------===//
// TransposeOp
//===----------------------------------------------------------------------===//

LogicalResult TransposeOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &inferred) {
  FailureOr<RankedTensorType> inputOr =
      rankedOperand(loc, adaptor.getInput().getType(), "input");
  if (failed(inputOr))
    return failure();
  RankedTensorType input = *inputOr;
  ArrayRef<int64_t> perm = adaptor.getPerm();
  if (static_cast<int64_t>(perm.size()) != input.getRank())
    return emitOptionalError(loc, "perm has ", perm.size(),
                             " entries but the input has rank ",
                             input.getRank());
  SmallVector<bool> seen(perm.size(), false);
  SmallVector<int64_t> shape;
  for (int64_t p : perm) {
    if (p < 0 || p >= input.getRank() || seen[p])
      return emitOptionalError(loc, "perm ", shapeString(perm),
                               " is not a permutation of [0, ",
                               input.getRank(), ")");
    seen[p] = true;
    shape.push_back(input.getDimSize(p));
  }
  inferred.push_back(RankedTensorType::get(shape, input.getElementType()));
  return success();
}

std::optional<int64_t> TransposeOp::getFlopCount() { return 0; }

OpFoldResult TransposeOp::fold(FoldAdaptor) {
  // transpose(x, identity) -> x
  if (llvm::all_of(llvm::enumerate(getPerm()),
                   [](auto it) { return int64_t(it.index()) == it.value(); }))
    return getInput();
  return {};
}

namespace {
/// transpose(transpose(x, p1), p2) -> transpose(x, p1 o p2).
struct ComposeTransposes : OpRewritePattern<TransposeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(TransposeOp op,
                                PatternRewriter &rewriter) const override {
    auto inner = op.getInput().getDefiningOp<TransposeOp>();
    if (!inner)
      return failure();
    // Result dim i = outer input dim perm2[i] = x dim perm1[perm2[i]].
    SmallVector<int64_t> composed;
    for (int64_t p : op.getPerm())
      composed.push_back(inner.getPerm()[p]);
    rewriter.replaceOpWithNewOp<TransposeOp>(op, inner.getInput(), composed);
    return success();
  }
};
} // namespace

void TransposeOp::getCanonicalizationPatterns(RewritePatternSet &patterns,
                                              MLIRContext *context) {
  patterns.add<ComposeTransposes>(context);
}

//===----------------------------------------------------------------------===//
// SoftmaxOp
//===----------------------------------------------------------------------===//

LogicalResult SoftmaxOp::verify() {
  int64_t rank = getInput().getType().getRank();
  if (getAxis() < 0 || getAxis() >= rank)
    return emitOpError() << "axis " << getAxis()
                         << " is out of range for rank " << rank;
  return success();
}

std::optional<int64_t> SoftmaxOp::getFlopCount() {
  // max, subtract, exp, sum, divide: about five flops per element.
  std::optional<int64_t> n = staticNumElements(getType());
  return n ? std::optional<int64_t>(*n * 5) : std::nullopt;
}
