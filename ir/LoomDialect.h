//===- LoomDialect.h - The loom dialect -------------------------*- C++ -*-===//
//
// Declares the loom dialect. Include ir/LoomOps.h for the ops themselves.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_IR_LOOMDIALECT_H
#define LOOM_IR_LOOMDIALECT_H

#include "mlir/IR/Dialect.h"

#include "ir/LoomDialect.h.inc"

#endif // LOOM_IR_LOOMDIALECT_H
