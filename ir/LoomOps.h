//===- LoomOps.h - loom dialect operations ----------------------*- C++ -*-===//

#ifndef LOOM_IR_LOOMOPS_H
#define LOOM_IR_LOOMOPS_H

#include "ir/LoomDialect.h"

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include <optional>

#include "ir/LoomInterfaces.h.inc"

#define GET_OP_CLASSES
#include "ir/LoomOps.h.inc"

namespace loom {

/// Broadcasts two shapes NumPy-style (trailing dims aligned, 1 stretches, a
/// dynamic dim matches anything). Returns failure on a static mismatch.
mlir::FailureOr<llvm::SmallVector<int64_t>>
broadcastShapes(llvm::ArrayRef<int64_t> lhs, llvm::ArrayRef<int64_t> rhs);

/// True for an `attention`, `attention_lse` or `attention_grad` on f32 with
/// at least one batch dim ([..., T, D] of rank >= 3): the ops a target may
/// run as per-head attention kernels.
bool isBatchedF32Attention(mlir::Operation *op);

/// Checks that `lse` (when given) holds one value per row of `rows`
/// ([..., V] -> [...], same element type): the operand of cross_entropy
/// and cross_entropy_grad, and logsumexp's result.
mlir::LogicalResult verifyRowLse(mlir::Operation *op,
                                 mlir::RankedTensorType rows, mlir::Value lse);

} // namespace loom

#endif // LOOM_IR_LOOMOPS_H
