//===- Evaluator.h - Reference interpreter of the loom dialect --*- C++ -*-===//
//
// A plain, slow, double-precision interpreter of `loom` functions: the oracle
// that numerical tests compare compiled code against. Every op is one
// readable function in Evaluator.cpp, written from the op descriptions in
// ir/LoomOps.td and ir/LoomGradOps.td and independently of any lowering.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_REFERENCE_EVALUATOR_H
#define LOOM_REFERENCE_EVALUATOR_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Types.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <functional>
#include <vector>

namespace loom::reference {

/// A dense row-major array of doubles with a shape and the MLIR element type
/// it stands for (f32, bf16, f16, f64, i32, i1; i64 for a dropout seed).
/// Integers and booleans are stored as exact doubles (booleans as 0 and 1).
/// A null `elementType` in an argument means "whatever the function says".
struct Array {
  std::vector<int64_t> shape;
  std::vector<double> data;
  mlir::Type elementType;

  /// The product of `shape` (1 for a rank-0 array).
  int64_t numElements() const;
};

/// Parameters by symbol name (the names of `loom.parameter` ops). Returns
/// null for an unknown name.
using ParamLookup = std::function<const Array *(llvm::StringRef name)>;

/// Runs the `func.func` named `function` of `module` (loom ops, `func.call`
/// of other functions of the module and `func.return`; all shapes static) on
/// `args` and returns its results. Float results are computed in double and
/// never rounded to their element type. Fails with an error that names the
/// op and its location when something cannot be evaluated: an unknown op, a
/// dynamic shape, a missing parameter, an argument count, shape or element
/// type mismatch, an embedding id or cross-entropy target out of range, an
/// integer division by zero, a dropout seed of magnitude > 2^53 (which an
/// `Array` cannot hold exactly). Never asserts on bad input.
llvm::Expected<std::vector<Array>> evaluate(mlir::ModuleOp module,
                                            llvm::StringRef function,
                                            llvm::ArrayRef<Array> args,
                                            const ParamLookup &params);

/// The dropout keep decision for element `index` (row-major) of the dropout
/// op numbered `site`, drawn from `seed`: the exact function documented on
/// `loom.dropout`. Exposed so tests can check the compiled mask bit for bit.
bool dropoutKeeps(uint64_t seed, int64_t site, uint64_t index, double rate);

} // namespace loom::reference

#endif // LOOM_REFERENCE_EVALUATOR_H
