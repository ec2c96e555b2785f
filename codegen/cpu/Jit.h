//===- Jit.h - JIT-compiling lowered modules for the host -------*- C++ -*-===//

#ifndef LOOM_CODEGEN_CPU_JIT_H
#define LOOM_CODEGEN_CPU_JIT_H

#include "mlir/IR/BuiltinOps.h"

#include "llvm/Support/Error.h"

#include <memory>

namespace mlir {
class ExecutionEngine;
} // namespace mlir

namespace loom {

/// Drops what only the compiler reads (the parameter table, `loom.*`
/// attributes) from an LLVM-dialect module; LLVM IR translation rejects it.
void stripLoomMetadata(mlir::ModuleOp module);

/// A JIT-compiled module. Every function was lowered with bare-pointer
/// arguments; `call` passes one pointer per argument.
class JitModule {
public:
  ~JitModule();
  JitModule(JitModule &&) noexcept;

  /// Lowers nothing: `module` must already be in the LLVM dialect. Its
  /// `loom.*` metadata is removed first.
  static llvm::Expected<std::unique_ptr<JitModule>>
  create(mlir::ModuleOp module, unsigned optLevel = 3);

  /// Seconds spent in LLVM's IR optimizer by `create` (the rest of its
  /// time is translation and machine code generation).
  double optimizeSeconds() const { return optSeconds; }
  /// LLVM IR instructions handed to the optimizer: the size of the code.
  size_t instructionCount() const { return irInstructions; }

  /// Calls `function` with `pointers[i]` as argument i.
  llvm::Error call(llvm::StringRef function, llvm::ArrayRef<void *> pointers);

private:
  explicit JitModule(std::unique_ptr<mlir::ExecutionEngine> engine);
  std::unique_ptr<mlir::ExecutionEngine> engine;
  double optSeconds = 0;
  size_t irInstructions = 0;
};

} // namespace loom

#endif // LOOM_CODEGEN_CPU_JIT_H
