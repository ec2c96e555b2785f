//===- Frontend.h - Loading and compiling Loom source files -----*- C++ -*-===//
//
// The frontend's entry points: parse a file and its imports into a Program,
// then elaborate a model into a loom-dialect module.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_FRONTEND_FRONTEND_H
#define LOOM_FRONTEND_FRONTEND_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include "llvm/ADT/StringRef.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace llvm {
class MemoryBuffer;
class SourceMgr;
} // namespace llvm

namespace loom::frontend {

class DiagnosticEngine;
struct Program;
struct SourceFile;

/// Owns a Program without exposing its definition.
struct ProgramDeleter {
  void operator()(Program *program) const;
};
using ProgramPtr = std::unique_ptr<Program, ProgramDeleter>;

/// Parses `path` and, transitively, the libraries it imports. A library
/// `import X` is looked up as `X.loom` beside the importing file, then in
/// `includeDirs`, then among the built-in libraries (`nn`). Returns null
/// after reporting errors (syntax errors, missing files, import cycles).
ProgramPtr loadProgram(llvm::StringRef path,
                       const std::vector<std::string> &includeDirs,
                       llvm::SourceMgr &sourceMgr, DiagnosticEngine &diags);

/// Like loadProgram, with the root file's text in `buffer` (its identifier
/// names the file: imports are looked up beside it, its stem is the module
/// name).
ProgramPtr loadProgramFromBuffer(std::unique_ptr<llvm::MemoryBuffer> buffer,
                                 const std::vector<std::string> &includeDirs,
                                 llvm::SourceMgr &sourceMgr,
                                 DiagnosticEngine &diags);

struct GenerateOptions {
  /// Only this entry function; empty for all of them.
  std::string function;
  /// Values for symbolic dims (B=2, T=16); unbound dims stay dynamic.
  std::map<std::string, int64_t> bindings;
  /// The model to compile; empty for the first model of the root file.
  std::string model;
  /// When false, `dropout` is the identity and emits nothing.
  bool training = true;
  /// Overrides of the model's configuration values by name ("d" -> "32",
  /// "drop" -> "0.1", "causal" -> "true"), as if passed to the model.
  std::map<std::string, std::string> config;
};

/// Elaborates a model of `program` into a verified loom module. Returns null
/// after reporting errors.
mlir::OwningOpRef<mlir::ModuleOp>
generateModule(const Program &program, mlir::MLIRContext &context,
               llvm::SourceMgr &sourceMgr, DiagnosticEngine &diags,
               const GenerateOptions &options);

/// The root file of a program (for --emit=ast).
const SourceFile &rootFile(const Program &program);

/// Names of the models declared in the root file, in order.
std::vector<std::string> modelNames(const Program &program);

/// Registers the dialects the frontend emits into `context`.
void loadFrontendDialects(mlir::MLIRContext &context);

} // namespace loom::frontend

#endif // LOOM_FRONTEND_FRONTEND_H
