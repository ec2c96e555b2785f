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
#include "llvm/Support/CheckedArithmetic.h"

using namespace mlir;
using namespace loom;

#include "ir/LoomInterfaces.cpp.inc"

/// `%a, %b, ...,`: one or more operands, each followed by a comma (what
/// follows the last comma is a keyword, not an operand).
static ParseResult
parseConcatInputs(OpAsmParser &parser,
                  SmallVectorImpl<OpAsmParser::UnresolvedOperand> &inputs) {
  if (parser.parseOperand(inputs.emplace_back()) || parser.parseComma())
    return failure();
  while (true) {
    OpAsmParser::UnresolvedOperand next;
    OptionalParseResult result = parser.parseOptionalOperand(next);
    if (!result.has_value())
      return success();
    if (failed(*result) || parser.parseComma())
      return failure();
    inputs.push_back(next);
  }
}

static void printConcatInputs(OpAsmPrinter &printer, Operation *,
                              OperandRange inputs) {
  printer << inputs << ",";
}

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

/// Merges two sizes of one dim: a dynamic size takes the other's. Fails when
/// both are static and differ.
static FailureOr<int64_t> mergeDims(int64_t a, int64_t b) {
  if (ShapedType::isDynamic(a))
    return b;
  if (ShapedType::isDynamic(b) || a == b)
    return a;
  return failure();
}

/// Prints a size for a message: `?` when dynamic.
static std::string dimString(int64_t d) {
  return ShapedType::isDynamic(d) ? "?" : std::to_string(d);
}

/// `a * b` of two dims: dynamic if either is.
static int64_t mulDims(int64_t a, int64_t b) {
  if (ShapedType::isDynamic(a) || ShapedType::isDynamic(b))
    return ShapedType::kDynamic;
  return a * b;
}

namespace {
/// A size several operands must agree on, such as the hidden size H of an
/// LSTM. Remembers where its static value came from, for error messages.
struct SharedDim {
  explicit SharedDim(std::string what) : what(std::move(what)) {}

  std::string what;
  int64_t size = ShapedType::kDynamic;
  std::string source;

  /// Records that `where` has size `other`; fails on a static mismatch.
  LogicalResult unify(std::optional<Location> loc, int64_t other,
                      const std::string &where) {
    if (ShapedType::isDynamic(other))
      return success();
    if (ShapedType::isDynamic(size)) {
      size = other;
      source = where;
      return success();
    }
    if (size == other)
      return success();
    return emitOptionalError(loc, "inconsistent ", what, ": ", where, " is ",
                             other, " but ", source, " is ", size);
  }
};
} // namespace

/// "dim 1 of h0", for messages.
static std::string dimOf(int64_t dim, StringRef operand) {
  return "dim " + std::to_string(dim) + " of " + operand.str();
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
    return emitOptionalError(
        loc, "operand element types differ: ", lhs->getElementType(), " vs ",
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
                                     Adaptor a,                                \
                                     SmallVectorImpl<Type> &types) {           \
    return inferBinaryType(l, a.getLhs().getType(), a.getRhs().getType(),      \
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

/// `flopsPerElement` times the number of elements of `type`, or nullopt when
/// its shape is not static.
static std::optional<int64_t> perElement(Type type, int64_t flopsPerElement) {
  std::optional<int64_t> n = staticNumElements(type);
  return n ? std::optional<int64_t>(*n * flopsPerElement) : std::nullopt;
}

// Result types come from SameOperandsAndResultType; the FLOPs per element from
// the ODS class (`kFlopsPerElement`).
#define LOOM_UNARY_OP(Op)                                                      \
  std::optional<int64_t> Op::getFlopCount() {                                  \
    return perElement(getType(), kFlopsPerElement);                            \
  }
LOOM_UNARY_OP(NegOp)
LOOM_UNARY_OP(ExpOp)
LOOM_UNARY_OP(LogOp)
LOOM_UNARY_OP(TanhOp)
LOOM_UNARY_OP(SigmoidOp)
LOOM_UNARY_OP(ReluOp)
LOOM_UNARY_OP(SqrtOp)
LOOM_UNARY_OP(RsqrtOp)
#undef LOOM_UNARY_OP

std::optional<int64_t> GeluOp::getFlopCount() {
  return perElement(getType(), 8);
}

std::optional<int64_t> PowOp::getFlopCount() {
  return perElement(getType(), 4);
}

//===----------------------------------------------------------------------===//
// CompareOp
//===----------------------------------------------------------------------===//

LogicalResult CompareOp::inferReturnTypes(MLIRContext *context,
                                          std::optional<Location> loc,
                                          Adaptor adaptor,
                                          SmallVectorImpl<Type> &inferred) {
  SmallVector<Type, 1> broadcast;
  if (failed(inferBinaryType(loc, adaptor.getLhs().getType(),
                             adaptor.getRhs().getType(), broadcast)))
    return failure();
  inferred.push_back(llvm::cast<RankedTensorType>(broadcast.front())
                         .clone(IntegerType::get(context, 1)));
  return success();
}

LogicalResult CompareOp::verify() {
  if (!llvm::is_contained({"eq", "ne", "lt", "le", "gt", "ge"}, getPredicate()))
    return emitOpError() << "unknown predicate \"" << getPredicate()
                         << "\"; expected one of \"eq\", \"ne\", \"lt\", "
                            "\"le\", \"gt\", \"ge\"";
  return success();
}

std::optional<int64_t> CompareOp::getFlopCount() {
  return staticNumElements(getType());
}

//===----------------------------------------------------------------------===//
// WhereOp
//===----------------------------------------------------------------------===//

LogicalResult WhereOp::inferReturnTypes(MLIRContext *,
                                        std::optional<Location> loc,
                                        Adaptor adaptor,
                                        SmallVectorImpl<Type> &inferred) {
  FailureOr<RankedTensorType> condOr =
      rankedOperand(loc, adaptor.getCond().getType(), "cond");
  FailureOr<RankedTensorType> lhsOr =
      rankedOperand(loc, adaptor.getLhs().getType(), "lhs");
  FailureOr<RankedTensorType> rhsOr =
      rankedOperand(loc, adaptor.getRhs().getType(), "rhs");
  if (failed(condOr) || failed(lhsOr) || failed(rhsOr))
    return failure();
  RankedTensorType cond = *condOr, lhs = *lhsOr, rhs = *rhsOr;
  if (!cond.getElementType().isSignlessInteger(1))
    return emitOptionalError(loc, "expected cond to have element type i1, got ",
                             cond.getElementType());
  if (lhs.getElementType() != rhs.getElementType())
    return emitOptionalError(
        loc, "operand element types differ: ", lhs.getElementType(), " vs ",
        rhs.getElementType());
  FailureOr<SmallVector<int64_t>> values =
      broadcastShapes(lhs.getShape(), rhs.getShape());
  FailureOr<SmallVector<int64_t>> shape =
      succeeded(values) ? broadcastShapes(cond.getShape(), *values)
                        : FailureOr<SmallVector<int64_t>>(failure());
  if (failed(shape))
    return emitOptionalError(loc, "shapes ", shapeString(cond.getShape()), ", ",
                             shapeString(lhs.getShape()), " and ",
                             shapeString(rhs.getShape()), " do not broadcast");
  inferred.push_back(RankedTensorType::get(*shape, lhs.getElementType()));
  return success();
}

std::optional<int64_t> WhereOp::getFlopCount() {
  return staticNumElements(getType());
}

//===----------------------------------------------------------------------===//
// CastOp
//===----------------------------------------------------------------------===//

/// Whether `type` is an element type loom tensors may hold (`Loom_Element`).
static bool isLoomElementType(Type type) {
  return type.isF32() || type.isBF16() || type.isF16() || type.isF64() ||
         type.isSignlessInteger(32) || type.isSignlessInteger(1);
}

LogicalResult CastOp::inferReturnTypes(MLIRContext *,
                                       std::optional<Location> loc,
                                       Adaptor adaptor,
                                       SmallVectorImpl<Type> &inferred) {
  FailureOr<RankedTensorType> input =
      rankedOperand(loc, adaptor.getInput().getType(), "input");
  if (failed(input))
    return failure();
  Type to = adaptor.getTo();
  if (!isLoomElementType(to))
    return emitOptionalError(loc, "cannot cast to ", to,
                             ": expected one of f32, bf16, f16, f64, i32, i1");
  inferred.push_back(input->clone(to));
  return success();
}

std::optional<int64_t> CastOp::getFlopCount() {
  return staticNumElements(getType());
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

static LogicalResult inferReduceType(std::optional<Location> loc,
                                     Type inputType, ArrayRef<int64_t> axes,
                                     bool keepdim,
                                     SmallVectorImpl<Type> &inferred) {
  FailureOr<RankedTensorType> inputOr = rankedOperand(loc, inputType, "input");
  if (failed(inputOr))
    return failure();
  RankedTensorType input = *inputOr;
  int64_t rank = input.getRank();
  if (axes.empty())
    return emitOptionalError(loc, "expected at least one axis to reduce");
  for (auto [i, axis] : llvm::enumerate(axes)) {
    if (axis < 0 || axis >= rank)
      return emitOptionalError(loc, "axis ", axis, " is out of range for rank ",
                               rank);
    if (i > 0 && axis <= axes[i - 1])
      return emitOptionalError(loc, "axes ", shapeString(axes),
                               " are not sorted and unique");
  }
  SmallVector<int64_t> shape;
  for (int64_t d = 0; d < rank; ++d) {
    if (!llvm::is_contained(axes, d))
      shape.push_back(input.getDimSize(d));
    else if (keepdim)
      shape.push_back(1);
  }
  inferred.push_back(RankedTensorType::get(shape, input.getElementType()));
  return success();
}

#define LOOM_REDUCE_OP(Op)                                                     \
  LogicalResult Op::inferReturnTypes(MLIRContext *, std::optional<Location> l, \
                                     Adaptor a,                                \
                                     SmallVectorImpl<Type> &types) {           \
    return inferReduceType(l, a.getInput().getType(), a.getAxes(),             \
                           a.getKeepdim(), types);                             \
  }
LOOM_REDUCE_OP(ReduceSumOp)
LOOM_REDUCE_OP(ReduceMeanOp)
LOOM_REDUCE_OP(ReduceMaxOp)
#undef LOOM_REDUCE_OP

// One add (or max) per input element; a mean also divides each result.
std::optional<int64_t> ReduceSumOp::getFlopCount() {
  return staticNumElements(getInput().getType());
}

std::optional<int64_t> ReduceMaxOp::getFlopCount() {
  return staticNumElements(getInput().getType());
}

std::optional<int64_t> ReduceMeanOp::getFlopCount() {
  std::optional<int64_t> in = staticNumElements(getInput().getType());
  std::optional<int64_t> out = staticNumElements(getType());
  return in && out ? std::optional<int64_t>(*in + *out) : std::nullopt;
}

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
    return emitOptionalError(
        loc, "operand element types differ: ", lhs.getElementType(), " vs ",
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
                               " is not a permutation of [0, ", input.getRank(),
                               ")");
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
  // I64Attr getters return uint64_t; the axis is signed.
  int64_t axis = getAxisAttr().getInt();
  if (axis < 0 || axis >= rank)
    return emitOpError() << "axis " << axis << " is out of range for rank "
                         << rank;
  return success();
}

std::optional<int64_t> SoftmaxOp::getFlopCount() {
  // max, subtract, exp, sum, divide: about five flops per element.
  std::optional<int64_t> n = staticNumElements(getType());
  return n ? std::optional<int64_t>(*n * 5) : std::nullopt;
}

//===----------------------------------------------------------------------===//
// ReshapeOp
//===----------------------------------------------------------------------===//

LogicalResult ReshapeOp::inferReturnTypes(MLIRContext *,
                                          std::optional<Location> loc,
                                          Adaptor adaptor,
                                          SmallVectorImpl<Type> &inferred) {
  FailureOr<RankedTensorType> inputOr =
      rankedOperand(loc, adaptor.getInput().getType(), "input");
  if (failed(inputOr))
    return failure();
  RankedTensorType input = *inputOr;
  ArrayRef<int64_t> requested = adaptor.getShape();
  SmallVector<int64_t> shape;
  std::optional<size_t> inferredDim;
  int64_t numDynamic = 0, knownElements = 1;
  for (auto [i, d] : llvm::enumerate(requested)) {
    if (d < -1)
      return emitOptionalError(loc, "shape ", shapeString(requested),
                               " has entry ", d,
                               "; expected a size >= 0, or -1 for a dynamic "
                               "dim");
    if (d == -1) {
      ++numDynamic;
      inferredDim = i;
      shape.push_back(ShapedType::kDynamic);
    } else {
      std::optional<int64_t> product = llvm::checkedMul(knownElements, d);
      if (!product)
        return emitOptionalError(loc, "shape ", shapeString(requested),
                                 " has more elements than fit in 64 bits");
      knownElements = *product;
      shape.push_back(d);
    }
  }
  if (input.hasStaticShape()) {
    int64_t elements = input.getNumElements();
    if (numDynamic == 1) {
      if (knownElements == 0)
        return emitOptionalError(loc, "cannot infer the -1 dim of shape ",
                                 shapeString(requested),
                                 " next to a dim of size 0");
      if (elements % knownElements != 0)
        return emitOptionalError(loc, "cannot infer the -1 dim of shape ",
                                 shapeString(requested), ": ", elements,
                                 " elements of ", Type(input),
                                 " are not a multiple of ", knownElements);
      shape[*inferredDim] = elements / knownElements;
    } else if (numDynamic == 0 && elements != knownElements) {
      return emitOptionalError(loc, "cannot reshape ", Type(input), " (",
                               elements, " elements) to shape ",
                               shapeString(requested), " (", knownElements,
                               " elements)");
    }
  }
  inferred.push_back(RankedTensorType::get(shape, input.getElementType()));
  return success();
}

std::optional<int64_t> ReshapeOp::getFlopCount() { return 0; }

//===----------------------------------------------------------------------===//
// SplitHeadsOp / MergeHeadsOp
//===----------------------------------------------------------------------===//

LogicalResult SplitHeadsOp::inferReturnTypes(MLIRContext *,
                                             std::optional<Location> loc,
                                             Adaptor adaptor,
                                             SmallVectorImpl<Type> &inferred) {
  FailureOr<RankedTensorType> inputOr =
      rankedOperand(loc, adaptor.getInput().getType(), "input");
  if (failed(inputOr))
    return failure();
  RankedTensorType input = *inputOr;
  if (input.getRank() != 3)
    return emitOptionalError(loc, "expected input of rank 3 [B, T, H*Dh], got ",
                             Type(input));
  int64_t heads = adaptor.getHeadsAttr().getInt();
  if (heads <= 0)
    return emitOptionalError(loc, "heads must be positive, got ", heads);
  int64_t features = input.getDimSize(2);
  if (!ShapedType::isDynamic(features) && features % heads != 0)
    return emitOptionalError(loc, "last dim ", features,
                             " is not divisible by heads = ", heads);
  int64_t headDim =
      ShapedType::isDynamic(features) ? ShapedType::kDynamic : features / heads;
  inferred.push_back(RankedTensorType::get(
      {input.getDimSize(0), heads, input.getDimSize(1), headDim},
      input.getElementType()));
  return success();
}

std::optional<int64_t> SplitHeadsOp::getFlopCount() { return 0; }

LogicalResult MergeHeadsOp::inferReturnTypes(MLIRContext *,
                                             std::optional<Location> loc,
                                             Adaptor adaptor,
                                             SmallVectorImpl<Type> &inferred) {
  FailureOr<RankedTensorType> inputOr =
      rankedOperand(loc, adaptor.getInput().getType(), "input");
  if (failed(inputOr))
    return failure();
  RankedTensorType input = *inputOr;
  if (input.getRank() != 4)
    return emitOptionalError(
        loc, "expected input of rank 4 [B, H, T, Dh], got ", Type(input));
  inferred.push_back(
      RankedTensorType::get({input.getDimSize(0), input.getDimSize(2),
                             mulDims(input.getDimSize(1), input.getDimSize(3))},
                            input.getElementType()));
  return success();
}

std::optional<int64_t> MergeHeadsOp::getFlopCount() { return 0; }

//===----------------------------------------------------------------------===//
// ConcatOp
//===----------------------------------------------------------------------===//

LogicalResult ConcatOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &inferred) {
  ValueRange inputs = adaptor.getInputs();
  if (inputs.empty())
    return emitOptionalError(loc, "expected at least one input");
  SmallVector<RankedTensorType> types;
  for (auto [i, input] : llvm::enumerate(inputs)) {
    FailureOr<RankedTensorType> type =
        rankedOperand(loc, input.getType(), "input #" + std::to_string(i));
    if (failed(type))
      return failure();
    types.push_back(*type);
  }
  RankedTensorType first = types.front();
  int64_t rank = first.getRank();
  int64_t axis = adaptor.getAxisAttr().getInt();
  if (axis < 0 || axis >= rank)
    return emitOptionalError(loc, "axis ", axis, " is out of range for rank ",
                             rank);
  SmallVector<int64_t> shape(first.getShape());
  for (auto [i, type] : llvm::enumerate(types)) {
    if (i == 0)
      continue;
    if (type.getRank() != rank)
      return emitOptionalError(loc, "input #", i, " has rank ", type.getRank(),
                               " but input #0 has rank ", rank);
    if (type.getElementType() != first.getElementType())
      return emitOptionalError(loc, "input #", i, " has element type ",
                               type.getElementType(), " but input #0 has ",
                               first.getElementType());
    for (int64_t d = 0; d < rank; ++d) {
      int64_t size = type.getDimSize(d);
      if (d == axis) {
        shape[d] =
            ShapedType::isDynamic(shape[d]) || ShapedType::isDynamic(size)
                ? ShapedType::kDynamic
                : shape[d] + size;
        continue;
      }
      FailureOr<int64_t> merged = mergeDims(shape[d], size);
      if (failed(merged))
        return emitOptionalError(loc, "input #", i, " has shape ",
                                 shapeString(type.getShape()),
                                 ", which differs from the others in dim ", d,
                                 " (", size, " vs ", shape[d], ")");
      shape[d] = *merged;
    }
  }
  inferred.push_back(RankedTensorType::get(shape, first.getElementType()));
  return success();
}

std::optional<int64_t> ConcatOp::getFlopCount() { return 0; }

//===----------------------------------------------------------------------===//
// SliceOp
//===----------------------------------------------------------------------===//

LogicalResult SliceOp::inferReturnTypes(MLIRContext *,
                                        std::optional<Location> loc,
                                        Adaptor adaptor,
                                        SmallVectorImpl<Type> &inferred) {
  FailureOr<RankedTensorType> inputOr =
      rankedOperand(loc, adaptor.getInput().getType(), "input");
  if (failed(inputOr))
    return failure();
  RankedTensorType input = *inputOr;
  int64_t rank = input.getRank();
  int64_t axis = adaptor.getAxisAttr().getInt();
  if (axis < 0 || axis >= rank)
    return emitOptionalError(loc, "axis ", axis, " is out of range for rank ",
                             rank);
  int64_t start = adaptor.getStartAttr().getInt();
  int64_t end = adaptor.getEndAttr().getInt();
  int64_t dim = input.getDimSize(axis);
  int64_t size;
  if (!ShapedType::isDynamic(dim)) {
    int64_t s = start < 0 ? dim + start : start;
    int64_t e = end < 0 ? dim + end : end;
    if (s < 0 || s > e || e > dim)
      return emitOptionalError(loc, "slice [", start, ", ", end, ") is [", s,
                               ", ", e, ") on dim ", axis, " of size ", dim,
                               "; expected 0 <= start <= end <= ", dim);
    size = e - s;
  } else if ((start >= 0) == (end >= 0)) {
    // Both from the front or both from the back: the size is known even
    // when the dim is not.
    if (start > end)
      return emitOptionalError(loc, "slice start ", start, " is after end ",
                               end);
    size = end - start;
  } else {
    size = ShapedType::kDynamic;
  }
  SmallVector<int64_t> shape(input.getShape());
  shape[axis] = size;
  inferred.push_back(RankedTensorType::get(shape, input.getElementType()));
  return success();
}

std::optional<int64_t> SliceOp::getFlopCount() { return 0; }

//===----------------------------------------------------------------------===//
// EmbeddingOp
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &inferred) {
  FailureOr<RankedTensorType> tableOr =
      rankedOperand(loc, adaptor.getTable().getType(), "table");
  FailureOr<RankedTensorType> idsOr =
      rankedOperand(loc, adaptor.getIds().getType(), "ids");
  if (failed(tableOr) || failed(idsOr))
    return failure();
  RankedTensorType table = *tableOr, ids = *idsOr;
  if (table.getRank() != 2)
    return emitOptionalError(loc, "expected table of rank 2 [V, D], got ",
                             Type(table));
  SmallVector<int64_t> shape(ids.getShape());
  shape.push_back(table.getDimSize(1));
  inferred.push_back(RankedTensorType::get(shape, table.getElementType()));
  return success();
}

std::optional<int64_t> EmbeddingOp::getFlopCount() { return 0; }

//===----------------------------------------------------------------------===//
// SinusoidalOp
//===----------------------------------------------------------------------===//

LogicalResult SinusoidalOp::inferReturnTypes(MLIRContext *context,
                                             std::optional<Location> loc,
                                             Adaptor adaptor,
                                             SmallVectorImpl<Type> &inferred) {
  FailureOr<RankedTensorType> positions =
      rankedOperand(loc, adaptor.getPositions().getType(), "positions");
  if (failed(positions))
    return failure();
  int64_t dim = adaptor.getDimAttr().getInt();
  if (dim <= 0 || dim % 2 != 0)
    return emitOptionalError(loc, "dim must be positive and even, got ", dim);
  SmallVector<int64_t> shape(positions->getShape());
  shape.push_back(dim);
  inferred.push_back(RankedTensorType::get(shape, Float32Type::get(context)));
  return success();
}

// A scale and a sin or cos per result element.
std::optional<int64_t> SinusoidalOp::getFlopCount() {
  return perElement(getType(), 4);
}

//===----------------------------------------------------------------------===//
// ArangeOp
//===----------------------------------------------------------------------===//

void ArangeOp::build(OpBuilder &builder, OperationState &state, int64_t size) {
  int64_t dim = size == -1 ? ShapedType::kDynamic : size;
  build(builder, state, RankedTensorType::get({dim}, builder.getI32Type()),
        builder.getI64IntegerAttr(size));
}

LogicalResult ArangeOp::verify() {
  int64_t size = getSizeAttr().getInt();
  if (size < -1)
    return emitOpError() << "size must be >= 0, or -1 for a dynamic size, got "
                         << size;
  RankedTensorType type = getType();
  int64_t dim = size == -1 ? ShapedType::kDynamic : size;
  if (type.getRank() != 1 || type.getDimSize(0) != dim)
    return emitOpError() << "result type " << type
                         << " does not match size = " << size << "; expected "
                         << RankedTensorType::get({dim}, type.getElementType());
  return success();
}

std::optional<int64_t> ArangeOp::getFlopCount() { return 0; }

//===----------------------------------------------------------------------===//
// FillOp
//===----------------------------------------------------------------------===//

std::optional<int64_t> FillOp::getFlopCount() { return 0; }

//===----------------------------------------------------------------------===//
// LayerNormOp
//===----------------------------------------------------------------------===//

LogicalResult LayerNormOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &inferred) {
  FailureOr<RankedTensorType> inputOr =
      rankedOperand(loc, adaptor.getInput().getType(), "input");
  FailureOr<RankedTensorType> gammaOr =
      rankedOperand(loc, adaptor.getGamma().getType(), "gamma");
  FailureOr<RankedTensorType> betaOr =
      rankedOperand(loc, adaptor.getBeta().getType(), "beta");
  if (failed(inputOr) || failed(gammaOr) || failed(betaOr))
    return failure();
  RankedTensorType input = *inputOr;
  if (input.getRank() < 1)
    return emitOptionalError(loc, "expected input of rank >= 1, got ",
                             Type(input));
  int64_t features = input.getShape().back();
  for (auto [name, type] :
       {std::pair<StringRef, RankedTensorType>{"gamma", *gammaOr},
        {"beta", *betaOr}}) {
    if (type.getElementType() != input.getElementType())
      return emitOptionalError(
          loc, name, " element type ", type.getElementType(),
          " differs from the input's ", input.getElementType());
    if (type.getRank() != 1)
      return emitOptionalError(loc, "expected ", name, " of rank 1 [",
                               dimString(features), "], got ", Type(type));
    if (failed(mergeDims(type.getDimSize(0), features)))
      return emitOptionalError(loc, name, " has ", type.getDimSize(0),
                               " elements but the input's last dim is ",
                               features);
  }
  inferred.push_back(input);
  return success();
}

LogicalResult LayerNormOp::verify() {
  double eps = getEps();
  if (!(eps >= 0))
    return emitOpError() << "eps must be >= 0, got " << eps;
  return success();
}

// Mean, variance (subtract, square, sum), normalize (subtract, multiply by
// rsqrt), scale and shift: about eight FLOPs per element.
std::optional<int64_t> LayerNormOp::getFlopCount() {
  return perElement(getType(), 8);
}

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

LogicalResult AttentionOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &inferred) {
  FailureOr<RankedTensorType> qOr =
      rankedOperand(loc, adaptor.getQ().getType(), "q");
  FailureOr<RankedTensorType> kOr =
      rankedOperand(loc, adaptor.getK().getType(), "k");
  FailureOr<RankedTensorType> vOr =
      rankedOperand(loc, adaptor.getV().getType(), "v");
  if (failed(qOr) || failed(kOr) || failed(vOr))
    return failure();
  RankedTensorType q = *qOr, k = *kOr, v = *vOr;
  int64_t rank = q.getRank();
  if (rank < 3 || k.getRank() != rank || v.getRank() != rank)
    return emitOptionalError(loc,
                             "expected q, k and v of one rank >= 3, got ranks ",
                             rank, ", ", k.getRank(), " and ", v.getRank());
  if (k.getElementType() != q.getElementType() ||
      v.getElementType() != q.getElementType())
    return emitOptionalError(
        loc, "q, k and v element types differ: ", q.getElementType(), ", ",
        k.getElementType(), " and ", v.getElementType());
  // q: [..., Tq, D], k: [..., Tk, D], v: [..., Tk, Dv]
  SmallVector<SharedDim> batch;
  for (int64_t d = 0; d < rank - 2; ++d) {
    SharedDim &dim = batch.emplace_back("batch dim " + std::to_string(d));
    if (failed(dim.unify(loc, q.getDimSize(d), dimOf(d, "q"))) ||
        failed(dim.unify(loc, k.getDimSize(d), dimOf(d, "k"))) ||
        failed(dim.unify(loc, v.getDimSize(d), dimOf(d, "v"))))
      return failure();
  }
  SharedDim headDim{"head dim D"}, keys{"key count Tk"};
  if (failed(
          headDim.unify(loc, q.getDimSize(rank - 1), dimOf(rank - 1, "q"))) ||
      failed(
          headDim.unify(loc, k.getDimSize(rank - 1), dimOf(rank - 1, "k"))) ||
      failed(keys.unify(loc, k.getDimSize(rank - 2), dimOf(rank - 2, "k"))) ||
      failed(keys.unify(loc, v.getDimSize(rank - 2), dimOf(rank - 2, "v"))))
    return failure();
  if (Value keyMask = adaptor.getKeyMask()) {
    FailureOr<RankedTensorType> maskOr =
        rankedOperand(loc, keyMask.getType(), "key_mask");
    if (failed(maskOr))
      return failure();
    RankedTensorType mask = *maskOr;
    if (!mask.getElementType().isSignlessInteger(1))
      return emitOptionalError(
          loc, "expected key_mask to have element type i1, got ",
          mask.getElementType());
    if (mask.getRank() != 2)
      return emitOptionalError(loc, "expected key_mask of rank 2 [B, Tk], got ",
                               Type(mask));
    if (failed(batch[0].unify(loc, mask.getDimSize(0), dimOf(0, "key_mask"))) ||
        failed(keys.unify(loc, mask.getDimSize(1), dimOf(1, "key_mask"))))
      return failure();
  }
  SmallVector<int64_t> shape;
  for (const SharedDim &dim : batch)
    shape.push_back(dim.size);
  shape.push_back(q.getDimSize(rank - 2));
  shape.push_back(v.getDimSize(rank - 1));
  inferred.push_back(RankedTensorType::get(shape, q.getElementType()));
  return success();
}

std::optional<int64_t> AttentionOp::getFlopCount() {
  RankedTensorType q = getQ().getType(), k = getK().getType(),
                   v = getV().getType();
  if (!q.hasStaticShape() || !k.hasStaticShape() || !v.hasStaticShape())
    return std::nullopt;
  int64_t rank = q.getRank();
  int64_t batch = 1;
  for (int64_t d = 0; d < rank - 2; ++d)
    batch *= q.getDimSize(d);
  int64_t tq = q.getDimSize(rank - 2), d = q.getDimSize(rank - 1);
  int64_t tk = k.getDimSize(rank - 2), dv = v.getDimSize(rank - 1);
  return batch * (2 * tq * tk * d + 2 * tq * tk * dv + 6 * tq * tk);
}

//===----------------------------------------------------------------------===//
// CachedAttentionOp
//===----------------------------------------------------------------------===//

LogicalResult
CachedAttentionOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                    Adaptor adaptor,
                                    SmallVectorImpl<Type> &inferred) {
  std::pair<StringRef, Type> operands[] = {
      {"q", adaptor.getQ().getType()},
      {"k", adaptor.getK().getType()},
      {"v", adaptor.getV().getType()},
      {"k_cache", adaptor.getKCache().getType()},
      {"v_cache", adaptor.getVCache().getType()}};
  SmallVector<RankedTensorType> types;
  for (auto [name, type] : operands) {
    FailureOr<RankedTensorType> ranked = rankedOperand(loc, type, name);
    if (failed(ranked))
      return failure();
    if (ranked->getRank() != 4)
      return emitOptionalError(loc, "expected ", name,
                               " of rank 4 [B, H, T, D], got ", Type(*ranked));
    if (!types.empty() &&
        ranked->getElementType() != types.front().getElementType())
      return emitOptionalError(loc, name, " element type ",
                               ranked->getElementType(), " differs from q's");
    types.push_back(*ranked);
  }
  FailureOr<RankedTensorType> startOr =
      rankedOperand(loc, adaptor.getStart().getType(), "start");
  if (failed(startOr))
    return failure();
  if (startOr->getRank() != 1)
    return emitOptionalError(loc, "expected start of rank 1 [B], got ",
                             Type(*startOr));
  RankedTensorType q = types[0], k = types[1], v = types[2], kc = types[3],
                   vc = types[4];
  SharedDim batch{"batch B"}, heads{"heads H"}, tokens{"new tokens T"},
      headDim{"head dim D"}, valueDim{"value dim Dv"},
      capacity{"cache capacity C"};
  static constexpr StringLiteral names[] = {"q", "k", "v", "k_cache",
                                            "v_cache"};
  for (auto [name, type] : llvm::zip(names, types)) {
    if (failed(batch.unify(loc, type.getDimSize(0), dimOf(0, name))) ||
        failed(heads.unify(loc, type.getDimSize(1), dimOf(1, name))))
      return failure();
  }
  if (failed(batch.unify(loc, startOr->getDimSize(0), dimOf(0, "start"))) ||
      failed(tokens.unify(loc, q.getDimSize(2), dimOf(2, "q"))) ||
      failed(tokens.unify(loc, k.getDimSize(2), dimOf(2, "k"))) ||
      failed(tokens.unify(loc, v.getDimSize(2), dimOf(2, "v"))) ||
      failed(capacity.unify(loc, kc.getDimSize(2), dimOf(2, "k_cache"))) ||
      failed(capacity.unify(loc, vc.getDimSize(2), dimOf(2, "v_cache"))) ||
      failed(headDim.unify(loc, q.getDimSize(3), dimOf(3, "q"))) ||
      failed(headDim.unify(loc, k.getDimSize(3), dimOf(3, "k"))) ||
      failed(headDim.unify(loc, kc.getDimSize(3), dimOf(3, "k_cache"))) ||
      failed(valueDim.unify(loc, v.getDimSize(3), dimOf(3, "v"))) ||
      failed(valueDim.unify(loc, vc.getDimSize(3), dimOf(3, "v_cache"))))
    return failure();
  inferred.push_back(RankedTensorType::get(
      {batch.size, heads.size, tokens.size, valueDim.size},
      q.getElementType()));
  inferred.push_back(kc);
  inferred.push_back(vc);
  return success();
}

std::optional<int64_t> CachedAttentionOp::getFlopCount() {
  RankedTensorType q = getQ().getType(), kc = getKCache().getType(),
                   vc = getVCache().getType();
  if (!q.hasStaticShape() || !kc.hasStaticShape() || !vc.hasStaticShape())
    return std::nullopt;
  int64_t batch = q.getDimSize(0) * q.getDimSize(1), tq = q.getDimSize(2),
          d = q.getDimSize(3), tk = kc.getDimSize(2), dv = vc.getDimSize(3);
  return batch * (2 * tq * tk * d + 2 * tq * tk * dv + 6 * tq * tk);
}

//===----------------------------------------------------------------------===//
// DecodePositionsOp
//===----------------------------------------------------------------------===//

LogicalResult
DecodePositionsOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                    Adaptor adaptor,
                                    SmallVectorImpl<Type> &inferred) {
  FailureOr<RankedTensorType> start =
      rankedOperand(loc, adaptor.getStart().getType(), "start");
  FailureOr<RankedTensorType> tokens =
      rankedOperand(loc, adaptor.getTokens().getType(), "tokens");
  if (failed(start) || failed(tokens))
    return failure();
  if (start->getRank() != 1 || tokens->getRank() != 2)
    return emitOptionalError(loc, "expected start [B] and tokens [B, T], got ",
                             Type(*start), " and ", Type(*tokens));
  SharedDim batch{"batch B"};
  if (failed(batch.unify(loc, start->getDimSize(0), dimOf(0, "start"))) ||
      failed(batch.unify(loc, tokens->getDimSize(0), dimOf(0, "tokens"))))
    return failure();
  inferred.push_back(RankedTensorType::get({batch.size, tokens->getDimSize(1)},
                                           start->getElementType()));
  return success();
}

std::optional<int64_t> DecodePositionsOp::getFlopCount() { return 0; }

//===----------------------------------------------------------------------===//
// CrossEntropyOp
//===----------------------------------------------------------------------===//

LogicalResult
CrossEntropyOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                 Adaptor adaptor,
                                 SmallVectorImpl<Type> &inferred) {
  FailureOr<RankedTensorType> logitsOr =
      rankedOperand(loc, adaptor.getLogits().getType(), "logits");
  FailureOr<RankedTensorType> targetsOr =
      rankedOperand(loc, adaptor.getTargets().getType(), "targets");
  if (failed(logitsOr) || failed(targetsOr))
    return failure();
  RankedTensorType logits = *logitsOr, targets = *targetsOr;
  if (logits.getRank() < 1)
    return emitOptionalError(loc, "expected logits of rank >= 1 [..., V], got ",
                             Type(logits));
  ArrayRef<int64_t> expected = logits.getShape().drop_back();
  bool matches =
      targets.getShape().size() == expected.size() &&
      llvm::all_of(
          llvm::zip_equal(targets.getShape(), expected), [](auto dims) {
            return succeeded(mergeDims(std::get<0>(dims), std::get<1>(dims)));
          });
  if (!matches)
    return emitOptionalError(
        loc, "expected targets of shape ", shapeString(expected),
        " (the logits' shape without the last dim), got ", Type(targets));
  inferred.push_back(RankedTensorType::get({}, logits.getElementType()));
  return success();
}

// A log-softmax over each row: about five FLOPs per logit.
LogicalResult CrossEntropyOp::verify() {
  return verifyRowLse(*this, getLogits().getType(), getLse());
}

std::optional<int64_t> CrossEntropyOp::getFlopCount() {
  return perElement(getLogits().getType(), 5);
}

//===----------------------------------------------------------------------===//
// DropoutOp
//===----------------------------------------------------------------------===//

LogicalResult DropoutOp::inferReturnTypes(MLIRContext *,
                                          std::optional<Location> loc,
                                          Adaptor adaptor,
                                          SmallVectorImpl<Type> &inferred) {
  FailureOr<RankedTensorType> input =
      rankedOperand(loc, adaptor.getInput().getType(), "input");
  if (failed(input))
    return failure();
  inferred.push_back(*input);
  return success();
}

LogicalResult DropoutOp::verify() {
  double rate = getRate();
  if (!(rate >= 0 && rate < 1))
    return emitOpError() << "rate must be in [0, 1), got " << rate;
  int64_t site = getSiteAttr().getInt();
  if (site < 0)
    return emitOpError() << "site must be >= 0, got " << site;
  return success();
}

// A comparison against the random draw and a scale per element.
std::optional<int64_t> DropoutOp::getFlopCount() {
  return perElement(getType(), 2);
}

//===----------------------------------------------------------------------===//
// LstmOp
//===----------------------------------------------------------------------===//

LogicalResult LstmOp::inferReturnTypes(MLIRContext *,
                                       std::optional<Location> loc,
                                       Adaptor adaptor,
                                       SmallVectorImpl<Type> &inferred) {
  struct Operand {
    StringRef name;
    Value value;
    int64_t rank;
    StringRef layout;
    RankedTensorType type = {};
  };
  Operand operands[] = {
      {"input", adaptor.getInput(), 3, "[B, T, I]"},
      {"h0", adaptor.getH0(), 2, "[B, H]"},
      {"c0", adaptor.getC0(), 2, "[B, H]"},
      {"w_ih", adaptor.getWIh(), 2, "[I, 4H]"},
      {"w_hh", adaptor.getWHh(), 2, "[H, 4H]"},
      {"bias", adaptor.getBias(), 1, "[4H]"},
  };
  for (Operand &operand : operands) {
    FailureOr<RankedTensorType> type =
        rankedOperand(loc, operand.value.getType(), operand.name);
    if (failed(type))
      return failure();
    operand.type = *type;
  }
  for (Operand &operand : operands) {
    if (operand.type.getRank() != operand.rank)
      return emitOptionalError(loc, "expected ", operand.name, " of rank ",
                               operand.rank, " ", operand.layout, ", got ",
                               Type(operand.type));
    Type elementType = operands[0].type.getElementType();
    if (operand.type.getElementType() != elementType)
      return emitOptionalError(loc, operand.name, " element type ",
                               operand.type.getElementType(),
                               " differs from the input's ", elementType);
  }
  auto [input, h0, c0, wIh, wHh, bias] = operands;
  SharedDim batch{"batch size B"}, inputSize{"input size I"},
      hidden{"hidden size H"}, gates{"gate size 4H"};
  if (failed(batch.unify(loc, input.type.getDimSize(0), dimOf(0, "input"))) ||
      failed(batch.unify(loc, h0.type.getDimSize(0), dimOf(0, "h0"))) ||
      failed(batch.unify(loc, c0.type.getDimSize(0), dimOf(0, "c0"))) ||
      failed(
          inputSize.unify(loc, input.type.getDimSize(2), dimOf(2, "input"))) ||
      failed(inputSize.unify(loc, wIh.type.getDimSize(0), dimOf(0, "w_ih"))) ||
      failed(hidden.unify(loc, h0.type.getDimSize(1), dimOf(1, "h0"))) ||
      failed(hidden.unify(loc, c0.type.getDimSize(1), dimOf(1, "c0"))) ||
      failed(hidden.unify(loc, wHh.type.getDimSize(0), dimOf(0, "w_hh"))) ||
      failed(gates.unify(loc, wIh.type.getDimSize(1), dimOf(1, "w_ih"))) ||
      failed(gates.unify(loc, wHh.type.getDimSize(1), dimOf(1, "w_hh"))) ||
      failed(gates.unify(loc, bias.type.getDimSize(0), dimOf(0, "bias"))))
    return failure();
  if (!ShapedType::isDynamic(gates.size)) {
    if (gates.size % 4 != 0)
      return emitOptionalError(loc, "gate size 4H = ", gates.size, " (",
                               gates.source, ") is not divisible by 4");
    if (failed(
            hidden.unify(loc, gates.size / 4, "a quarter of " + gates.source)))
      return failure();
  }
  Type elementType = input.type.getElementType();
  inferred.push_back(RankedTensorType::get(
      {batch.size, input.type.getDimSize(1), hidden.size}, elementType));
  inferred.push_back(
      RankedTensorType::get({batch.size, hidden.size}, elementType));
  inferred.push_back(
      RankedTensorType::get({batch.size, hidden.size}, elementType));
  return success();
}

// Per step and batch entry: the two products (8*H*(I + H)) and about 30*H for
// the bias, gate nonlinearities and state updates.
std::optional<int64_t> LstmOp::getFlopCount() {
  RankedTensorType input = getInput().getType();
  RankedTensorType outputs = getOutputs().getType();
  if (!input.hasStaticShape() || !outputs.hasStaticShape())
    return std::nullopt;
  int64_t b = input.getDimSize(0), t = input.getDimSize(1);
  int64_t i = input.getDimSize(2), h = outputs.getDimSize(2);
  return b * t * (8 * h * (i + h) + 30 * h);
}

//===----------------------------------------------------------------------===//
// ParameterOp
//===----------------------------------------------------------------------===//

namespace {
/// The fields one init kind takes.
struct InitKind {
  StringRef kind;
  ArrayRef<StringRef> required;
  ArrayRef<StringRef> optional;
  bool needsFans;
};
} // namespace

static ArrayRef<InitKind> initKinds() {
  static constexpr StringRef value[] = {"value"}, std[] = {"std"},
                             mean[] = {"mean"}, bounds[] = {"low", "high"},
                             gain[] = {"gain"};
  static const InitKind kinds[] = {
      {"zeros", {}, {}, false},           {"ones", {}, {}, false},
      {"constant", value, {}, false},     {"normal", std, mean, false},
      {"uniform", bounds, {}, false},     {"xavier_uniform", {}, gain, true},
      {"xavier_normal", {}, gain, true},  {"kaiming_uniform", {}, gain, true},
      {"kaiming_normal", {}, gain, true},
  };
  return kinds;
}

LogicalResult ParameterOp::verify() {
  auto type = llvm::dyn_cast<RankedTensorType>(getType());
  if (!type || !type.hasStaticShape() ||
      !llvm::isa<Float32Type, BFloat16Type, Float16Type, Float64Type>(
          type.getElementType()))
    return emitOpError() << "type must be a statically shaped tensor of f32, "
                            "bf16, f16 or f64, got "
                         << getType();
  DictionaryAttr init = getInit();
  auto kindAttr = init.getAs<StringAttr>("kind");
  if (!kindAttr)
    return emitOpError() << "init needs a string field 'kind'";
  StringRef kind = kindAttr.getValue();
  const InitKind *spec = llvm::find_if(
      initKinds(), [&](const InitKind &k) { return k.kind == kind; });
  if (spec == initKinds().end()) {
    std::string known;
    for (const InitKind &k : initKinds())
      known += (known.empty() ? "" : ", ") + k.kind.str();
    return emitOpError() << "unknown init kind '" << kind
                         << "'; expected one of " << known;
  }
  for (StringRef field : spec->required)
    if (!init.get(field))
      return emitOpError() << "init kind '" << kind << "' needs field '"
                           << field << "'";
  for (NamedAttribute entry : init) {
    StringRef field = entry.getName().getValue();
    if (field == "kind")
      continue;
    if (!llvm::is_contained(spec->required, field) &&
        !llvm::is_contained(spec->optional, field))
      return emitOpError() << "init kind '" << kind << "' has unknown field '"
                           << field << "'";
    auto value = llvm::dyn_cast<FloatAttr>(entry.getValue());
    if (!value || !value.getType().isF64())
      return emitOpError() << "init field '" << field
                           << "' must be an f64 attribute, got "
                           << entry.getValue();
  }
  auto number = [&](StringRef field) {
    return init.getAs<FloatAttr>(field).getValueAsDouble();
  };
  if (kind == "normal" && !(number("std") >= 0))
    return emitOpError() << "init field 'std' must be >= 0, got "
                         << number("std");
  if (kind == "uniform" && !(number("low") <= number("high")))
    return emitOpError() << "init field 'low' (" << number("low")
                         << ") must be <= 'high' (" << number("high") << ")";
  if (spec->needsFans && type.getRank() < 2)
    return emitOpError() << "init kind '" << kind
                         << "' needs a tensor of rank >= 2 to compute fan_in "
                            "and fan_out, got "
                         << type;
  return success();
}

std::optional<int64_t> ParameterOp::getFlopCount() { return 0; }

//===----------------------------------------------------------------------===//
// GetParameterOp
//===----------------------------------------------------------------------===//

void GetParameterOp::build(OpBuilder &builder, OperationState &state,
                           ParameterOp parameter) {
  build(builder, state, parameter.getType(), parameter.getSymName());
}

LogicalResult
GetParameterOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  Operation *symbol = symbolTable.lookupNearestSymbolFrom(*this, getNameAttr());
  if (!symbol)
    return emitOpError() << "unknown parameter " << getNameAttr();
  auto parameter = llvm::dyn_cast<ParameterOp>(symbol);
  if (!parameter)
    return emitOpError() << getNameAttr() << " is a '" << symbol->getName()
                         << "', not a loom.parameter";
  if (parameter.getType() != getType())
    return emitOpError() << "result type " << getType()
                         << " differs from the type " << parameter.getType()
                         << " of parameter " << getNameAttr();
  return success();
}

std::optional<int64_t> GetParameterOp::getFlopCount() { return 0; }

bool loom::isBatchedF32Attention(mlir::Operation *op) {
  if (!llvm::isa<AttentionOp, AttentionLseOp, AttentionGradOp>(op))
    return false;
  auto q = llvm::cast<mlir::RankedTensorType>(op->getOperand(0).getType());
  return q.getElementType().isF32() && q.getRank() >= 3;
}
