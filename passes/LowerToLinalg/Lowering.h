//===- Lowering.h - Helpers for lowering loom ops to linalg -----*- C++ -*-===//
//
// Shared by the op-family pattern files of `loom-lower-to-linalg`. Every
// pattern assumes static shapes (run `loom-specialize` first).
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_PASSES_LOWERTOLINALG_LOWERING_H
#define LOOM_PASSES_LOWERTOLINALG_LOWERING_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/PatternMatch.h"

#include <functional>

namespace loom::lowering {

/// Unit attribute that `loom-lower-to-linalg{keep-attention}` sets, for the
/// duration of the pass, on the attention ops it leaves to a target's
/// kernels: their lowering patterns skip them.
inline constexpr llvm::StringLiteral kKeptForKernelAttr =
    "loom.kept_for_kernel";

using BodyFn = std::function<mlir::Value(mlir::OpBuilder &, mlir::Location,
                                         mlir::ValueRange)>;

/// Small constructors for the tensor and linalg ops the patterns emit.
class LinalgBuilder {
public:
  LinalgBuilder(mlir::OpBuilder &b, mlir::Location loc) : b(b), loc(loc) {}

  /// `tensor.empty` of a static type.
  mlir::Value empty(mlir::RankedTensorType type);
  /// `tensor.empty` + `linalg.fill` with `value` (converted to the type).
  mlir::Value full(mlir::RankedTensorType type, double value);
  /// Like `full`, with an already built scalar.
  mlir::Value fullWith(mlir::RankedTensorType type, mlir::Value scalar);

  /// The map from the dims of `result` to those of `operand` under NumPy
  /// broadcasting (size-1 dims read index 0).
  mlir::AffineMap broadcastMap(mlir::RankedTensorType operand,
                               mlir::RankedTensorType result);

  /// A parallel `linalg.generic` over `resultType` whose body maps the
  /// (broadcast) input elements to one output element.
  mlir::Value elementwise(mlir::RankedTensorType resultType,
                          mlir::ValueRange inputs, const BodyFn &body);

  /// A parallel `linalg.generic` over `resultType` whose one input has all
  /// but the last result dim (gathers and encodings that add a feature dim);
  /// `body` gets the input element and builds the output element.
  mlir::Value appendDim(mlir::RankedTensorType resultType, mlir::Value input,
                        const BodyFn &body);

  /// Reduces `input` over sorted `axes` (dropping them) starting from
  /// `init`; `combine(acc, x)` folds one element in.
  mlir::Value
  reduce(mlir::Value input, llvm::ArrayRef<int64_t> axes, double init,
         const std::function<mlir::Value(mlir::OpBuilder &, mlir::Location,
                                         mlir::Value acc, mlir::Value x)>
             &combine);

  /// Inserts size-1 dims at sorted `axes` of `value` (the inverse of a
  /// reduction's dropping), with `tensor.expand_shape`.
  mlir::Value unsqueeze(mlir::Value value, llvm::ArrayRef<int64_t> axes);
  /// Reshapes a static tensor by collapsing to 1-D and expanding.
  mlir::Value reshape(mlir::Value value, mlir::RankedTensorType to);

  mlir::OpBuilder &builder() { return b; }
  mlir::Location getLoc() { return loc; }

private:
  mlir::OpBuilder &b;
  mlir::Location loc;
};

/// Scalar helpers for generic bodies.
mlir::Value scalarConstant(mlir::OpBuilder &b, mlir::Location loc,
                           mlir::Type type, double value);
mlir::Value addValues(mlir::OpBuilder &b, mlir::Location loc, mlir::Value x,
                      mlir::Value y);
mlir::Value mulValues(mlir::OpBuilder &b, mlir::Location loc, mlir::Value x,
                      mlir::Value y);
mlir::Value maxValues(mlir::OpBuilder &b, mlir::Location loc, mlir::Value x,
                      mlir::Value y);
/// The lowest value of a type (-inf for floats), the identity of max.
double lowestValue(mlir::Type type);

/// softmax along `axis` as generics (shared with attention).
mlir::Value lowerSoftmax(LinalgBuilder &lb, mlir::Value x, int64_t axis);
/// The logsumexp of each row of a static [N, V] tensor, [N] (shared by
/// cross_entropy and logsumexp).
mlir::Value lowerRowLogSumExp(LinalgBuilder &lb, mlir::Value rows);

void populateElementwisePatterns(mlir::RewritePatternSet &patterns);
void populateStructuredPatterns(mlir::RewritePatternSet &patterns);
void populateModelPatterns(mlir::RewritePatternSet &patterns);
/// The fused backward ops of LoomGradOps.td (Backward.cpp).
void populateBackwardPatterns(mlir::RewritePatternSet &patterns);

} // namespace loom::lowering

#endif // LOOM_PASSES_LOWERTOLINALG_LOWERING_H
