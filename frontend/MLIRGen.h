//===- MLIRGen.h - Emission of loom IR from Sema ----------------*- C++ -*-===//
//
// MLIRGen owns the module being built: the parameter table (`loom.parameter`
// ops), one `func.func` per entry function, and the translation of Loom
// types and source locations into MLIR's. Sema decides what to emit; MLIRGen
// knows how.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_FRONTEND_MLIRGEN_H
#define LOOM_FRONTEND_MLIRGEN_H

#include "frontend/Shapes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/Support/SMLoc.h"

namespace llvm {
class SourceMgr;
} // namespace llvm

namespace loom::frontend {

struct ParamEntry;

class MLIRGen {
public:
  MLIRGen(mlir::MLIRContext &context, const llvm::SourceMgr &sourceMgr);

  mlir::OwningOpRef<mlir::ModuleOp> takeModule() { return std::move(module); }
  mlir::OpBuilder &builder() { return b; }
  mlir::MLIRContext *getContext() { return b.getContext(); }

  /// `file:line:col`, wrapped in a NameLoc of the model path when not empty.
  mlir::Location loc(llvm::SMLoc loc, llvm::StringRef display = "");
  mlir::Type elementType(DType dtype);
  /// Symbolic dims become dynamic (`?`).
  mlir::RankedTensorType tensorType(const TensorType &type);

  /// Appends `loom.parameter @name` to the module.
  void emitParameter(const ParamEntry &param);

  /// Starts `func.func @name` with the given argument types; symbolic dims
  /// are named in each argument's `loom.dims`. Returns the arguments.
  llvm::SmallVector<mlir::Value>
  beginFunction(llvm::StringRef name, llvm::ArrayRef<TensorType> args,
                llvm::ArrayRef<std::string> argNames, mlir::Location loc);
  /// Emits `return` and fixes the function type.
  void finishFunction(llvm::ArrayRef<mlir::Value> results, mlir::Location loc);
  /// Drops the function being built (after an error).
  void abandonFunction();
  bool inFunction() const { return static_cast<bool>(func); }

  /// Loads parameter `index` of the table in the current function (once).
  mlir::Value getParameter(const ParamEntry &param, unsigned index,
                           mlir::Location loc);
  /// The current function's dropout seed argument, added on first use.
  mlir::Value dropoutSeed();

  /// A rank-0 constant.
  mlir::Value scalar(double value, DType dtype, mlir::Location loc);
  /// Records the symbolic result dims of a shape-creating op in `loom.dims`
  /// (nothing when every dim is static).
  void nameDims(mlir::Operation *op, llvm::ArrayRef<Dim> dims);
  /// Static sizes for an attribute: symbolic dims become -1.
  llvm::SmallVector<int64_t> staticSizes(llvm::ArrayRef<Dim> dims);

private:
  const llvm::SourceMgr &sourceMgr;
  mlir::OpBuilder b;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  mlir::Operation *func = nullptr;
  llvm::DenseMap<unsigned, mlir::Value> loadedParams;
  /// The last of the loads at the top of the current function.
  mlir::Operation *lastParamLoad = nullptr;
  mlir::Value seed;
};

} // namespace loom::frontend

#endif // LOOM_FRONTEND_MLIRGEN_H
