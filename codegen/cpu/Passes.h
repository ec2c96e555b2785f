//===- Passes.h - CPU code generation passes --------------------*- C++ -*-===//

#ifndef LOOM_CODEGEN_CPU_PASSES_H
#define LOOM_CODEGEN_CPU_PASSES_H

#include "mlir/Pass/Pass.h"

namespace loom::cpu {

#define GEN_PASS_DECL
#include "codegen/cpu/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "codegen/cpu/Passes.h.inc"

} // namespace loom::cpu

#endif // LOOM_CODEGEN_CPU_PASSES_H
