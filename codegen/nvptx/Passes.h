//===- Passes.h - NVPTX code generation passes ------------------*- C++ -*-===//

#ifndef LOOM_CODEGEN_NVPTX_PASSES_H
#define LOOM_CODEGEN_NVPTX_PASSES_H

#include "mlir/Pass/Pass.h"

namespace loom::nvptx {

#define GEN_PASS_DECL
#include "codegen/nvptx/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "codegen/nvptx/Passes.h.inc"

} // namespace loom::nvptx

#endif // LOOM_CODEGEN_NVPTX_PASSES_H
