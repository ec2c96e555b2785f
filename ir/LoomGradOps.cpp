//===- LoomGradOps.cpp - fused backward ops -------------------------------===//
//
// Verifiers and cost models of the ops in LoomGradOps.td. Their ODS code is
// generated into LoomOps.cpp; only the hand-written methods live here.
//
//===----------------------------------------------------------------------===//

#include "ir/LoomOps.h"

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Diagnostics.h"

using namespace mlir;
using namespace loom;

namespace {

/// Two dims agree when they are equal or either is dynamic.
bool dimsAgree(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

bool shapesAgree(ArrayRef<int64_t> a, ArrayRef<int64_t> b) {
  if (a.size() != b.size())
    return false;
  for (auto [x, y] : llvm::zip_equal(a, b))
    if (!dimsAgree(x, y))
      return false;
  return true;
}

std::optional<int64_t> product(ArrayRef<int64_t> dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (ShapedType::isDynamic(d))
      return std::nullopt;
    n *= d;
  }
  return n;
}

/// Checks the attention operands shared by attention_lse and attention_grad:
/// q [..., Tq, D], k [..., Tk, D], key_mask [B, Tk], and that `lse` (when
/// given) is [..., Tq].
LogicalResult verifyAttentionOperands(Operation *op, RankedTensorType q,
                                      RankedTensorType k, Value keyMask,
                                      RankedTensorType lse) {
  int64_t rank = q.getRank();
  if (rank < 3 || k.getRank() != rank)
    return op->emitOpError("expected q and k of one rank >= 3, got ")
           << q << " and " << k;
  if (q.getElementType() != k.getElementType())
    return op->emitOpError("q and k element types differ");
  if (!shapesAgree(q.getShape().drop_back(2), k.getShape().drop_back(2)) ||
      !dimsAgree(q.getDimSize(rank - 1), k.getDimSize(rank - 1)))
    return op->emitOpError("expected q [..., Tq, D] and k [..., Tk, D], got ")
           << q << " and " << k;
  if (keyMask) {
    auto mask = llvm::cast<RankedTensorType>(keyMask.getType());
    if (mask.getRank() != 2 ||
        !dimsAgree(mask.getDimSize(0), q.getDimSize(0)) ||
        !dimsAgree(mask.getDimSize(1), k.getDimSize(rank - 2)))
      return op->emitOpError("expected key_mask [B, Tk], got ") << mask;
  }
  if (lse) {
    if (lse.getElementType() != q.getElementType() ||
        !shapesAgree(lse.getShape(), q.getShape().drop_back()))
      return op->emitOpError("expected lse of shape [..., Tq] and the "
                             "element type of q, got ")
             << lse;
  }
  return success();
}

/// Batch entries times Tq times Tk of attention operands, when static.
std::optional<int64_t> attentionPairs(RankedTensorType q, RankedTensorType k) {
  std::optional<int64_t> batchAndQueries = product(q.getShape().drop_back());
  std::optional<int64_t> keys = product(k.getShape().take_back(2));
  if (!batchAndQueries || !keys)
    return std::nullopt;
  // keys = Tk * D
  return *batchAndQueries * k.getShape()[k.getRank() - 2];
}

} // namespace

//===----------------------------------------------------------------------===//
// AttentionLseOp
//===----------------------------------------------------------------------===//

LogicalResult AttentionLseOp::verify() {
  return verifyAttentionOperands(*this, getQ().getType(), getK().getType(),
                                 getKeyMask(), getResult().getType());
}

std::optional<int64_t> AttentionLseOp::getFlopCount() {
  RankedTensorType q = getQ().getType();
  std::optional<int64_t> pairs = attentionPairs(q, getK().getType());
  if (!pairs || ShapedType::isDynamic(q.getShape().back()))
    return std::nullopt;
  return *pairs * (2 * q.getShape().back() + 3);
}

//===----------------------------------------------------------------------===//
// AttentionGradOp
//===----------------------------------------------------------------------===//

LogicalResult AttentionGradOp::verify() {
  RankedTensorType q = getQ().getType(), k = getK().getType(),
                   v = getV().getType(), out = getOut().getType();
  if (failed(verifyAttentionOperands(*this, q, k, getKeyMask(),
                                     getLse().getType())))
    return failure();
  int64_t rank = q.getRank();
  if (v.getRank() != rank || v.getElementType() != q.getElementType() ||
      !shapesAgree(v.getShape().drop_back(), k.getShape().drop_back()))
    return emitOpError("expected v [..., Tk, Dv], got ") << v;
  SmallVector<int64_t> outShape(q.getShape().drop_back());
  outShape.push_back(v.getShape().back());
  if (out.getElementType() != q.getElementType() ||
      !shapesAgree(out.getShape(), outShape))
    return emitOpError("expected out [..., Tq, Dv], got ") << out;
  return success();
}

std::optional<int64_t> AttentionGradOp::getFlopCount() {
  RankedTensorType q = getQ().getType(), v = getV().getType();
  std::optional<int64_t> pairs = attentionPairs(q, getK().getType());
  if (!pairs || ShapedType::isDynamic(q.getShape().back()) ||
      ShapedType::isDynamic(v.getShape().back()))
    return std::nullopt;
  int64_t d = q.getShape().back(), dv = v.getShape().back();
  return *pairs * (2 * d + 2 * dv + 2 * dv + 2 * d + 2 * d + 6);
}

//===----------------------------------------------------------------------===//
// CrossEntropyGradOp
//===----------------------------------------------------------------------===//

LogicalResult CrossEntropyGradOp::verify() {
  RankedTensorType logits = getLogits().getType();
  RankedTensorType targets = getTargets().getType();
  RankedTensorType dLoss = getDLoss().getType();
  if (logits.getRank() < 1 ||
      !shapesAgree(targets.getShape(), logits.getShape().drop_back()))
    return emitOpError("expected logits [..., V] and targets [...], got ")
           << logits << " and " << targets;
  if (dLoss.getRank() != 0 || dLoss.getElementType() != logits.getElementType())
    return emitOpError("expected d_loss of rank 0 with the logits' element "
                       "type, got ")
           << dLoss;
  return verifyRowLse(*this, logits, getLse());
}

LogicalResult loom::verifyRowLse(Operation *op, RankedTensorType rows,
                                 Value lse) {
  if (!lse)
    return success();
  auto lseType = llvm::cast<RankedTensorType>(lse.getType());
  if (rows.getRank() < 1 ||
      !shapesAgree(lseType.getShape(), rows.getShape().drop_back()) ||
      lseType.getElementType() != rows.getElementType())
    return op->emitOpError("expected lse of shape [...] for rows [..., V] of ")
           << rows << ", got " << lseType;
  return success();
}

std::optional<int64_t> CrossEntropyGradOp::getFlopCount() {
  std::optional<int64_t> n = product(getLogits().getType().getShape());
  return n ? std::optional<int64_t>(*n * 5) : std::nullopt;
}

//===----------------------------------------------------------------------===//
// LogSumExpOp
//===----------------------------------------------------------------------===//

LogicalResult LogSumExpOp::verify() {
  if (getInput().getType().getRank() < 1)
    return emitOpError("expected an input of rank >= 1 [..., V], got ")
           << getInput().getType();
  return verifyRowLse(*this, getInput().getType(), getResult());
}

std::optional<int64_t> LogSumExpOp::getFlopCount() {
  std::optional<int64_t> n = product(getInput().getType().getShape());
  return n ? std::optional<int64_t>(*n * 3) : std::nullopt;
}

//===----------------------------------------------------------------------===//
// LayerNormGradOp
//===----------------------------------------------------------------------===//

LogicalResult LayerNormGradOp::verify() {
  RankedTensorType input = getInput().getType(), gamma = getGamma().getType();
  if (input.getRank() < 1 || gamma.getRank() != 1 ||
      !dimsAgree(input.getShape().back(), gamma.getDimSize(0)) ||
      input.getElementType() != gamma.getElementType())
    return emitOpError("expected input [..., D] and gamma [D], got ")
           << input << " and " << gamma;
  if (getEps() < 0)
    return emitOpError("expected eps >= 0, got ") << getEps();
  return success();
}

std::optional<int64_t> LayerNormGradOp::getFlopCount() {
  std::optional<int64_t> n = product(getInput().getType().getShape());
  return n ? std::optional<int64_t>(*n * 12) : std::nullopt;
}

//===----------------------------------------------------------------------===//
// GeluGradOp
//===----------------------------------------------------------------------===//

std::optional<int64_t> GeluGradOp::getFlopCount() {
  std::optional<int64_t> n = product(getInput().getType().getShape());
  return n ? std::optional<int64_t>(*n * 12) : std::nullopt;
}

//===----------------------------------------------------------------------===//
// EmbeddingGradOp
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingGradOp::verify() {
  RankedTensorType ids = getIds().getType(), dy = getDResult().getType(),
                   table = getDTable().getType();
  if (getVocab() < 1)
    return emitOpError("expected vocab >= 1, got ") << getVocab();
  if (dy.getRank() != ids.getRank() + 1 ||
      !shapesAgree(dy.getShape().drop_back(), ids.getShape()))
    return emitOpError("expected d_result [..., D] over ids [...], got ")
           << dy << " and " << ids;
  if (table.getRank() != 2 || table.getDimSize(0) != getVocab() ||
      !dimsAgree(table.getDimSize(1), dy.getShape().back()) ||
      table.getElementType() != dy.getElementType())
    return emitOpError("expected d_table of type [vocab, D] with d_result's "
                       "element type, got ")
           << table;
  return success();
}

std::optional<int64_t> EmbeddingGradOp::getFlopCount() {
  return product(getDResult().getType().getShape());
}

//===----------------------------------------------------------------------===//
// LstmGradOp
//===----------------------------------------------------------------------===//

LogicalResult LstmGradOp::verify() {
  RankedTensorType input = getInput().getType(), h0 = getH0().getType(),
                   c0 = getC0().getType(), wIh = getWIh().getType(),
                   wHh = getWHh().getType(), bias = getBias().getType(),
                   dOut = getDOutputs().getType();
  if (input.getRank() != 3 || h0.getRank() != 2)
    return emitOpError("expected input [B, T, I] and h0 [B, H], got ")
           << input << " and " << h0;
  Type element = input.getElementType();
  for (RankedTensorType t : {h0, c0, wIh, wHh, bias, dOut})
    if (t.getElementType() != element)
      return emitOpError("expected every operand to have element type ")
             << element << ", got " << t;
  int64_t h = h0.getDimSize(1), i = input.getDimSize(2);
  int64_t gates = ShapedType::isDynamic(h) ? ShapedType::kDynamic : 4 * h;
  if (!shapesAgree(c0.getShape(), h0.getShape()) ||
      !dimsAgree(h0.getDimSize(0), input.getDimSize(0)))
    return emitOpError("expected h0 and c0 [B, H], got ")
           << h0 << " and " << c0;
  if (!shapesAgree(wIh.getShape(), {i, gates}) ||
      !shapesAgree(wHh.getShape(), {h, gates}) ||
      !shapesAgree(bias.getShape(), {gates}))
    return emitOpError("expected w_ih [I, 4H], w_hh [H, 4H] and bias [4H], "
                       "got ")
           << wIh << ", " << wHh << " and " << bias;
  if (dOut.getRank() != 3 ||
      !dimsAgree(dOut.getDimSize(0), input.getDimSize(0)) ||
      !dimsAgree(dOut.getDimSize(1), input.getDimSize(1)) ||
      !dimsAgree(dOut.getDimSize(2), h))
    return emitOpError("expected d_outputs [B, T, H], got ") << dOut;
  return success();
}

std::optional<int64_t> LstmGradOp::getFlopCount() {
  RankedTensorType input = getInput().getType(), h0 = getH0().getType();
  if (!input.hasStaticShape() || !h0.hasStaticShape())
    return std::nullopt;
  int64_t b = input.getDimSize(0), t = input.getDimSize(1);
  int64_t i = input.getDimSize(2), h = h0.getDimSize(1);
  return b * t * (24 * h * (i + h) + 90 * h);
}
