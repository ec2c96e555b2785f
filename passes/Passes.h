//===- Passes.h - loom passes and pipelines ---------------------*- C++ -*-===//

#ifndef LOOM_PASSES_PASSES_H
#define LOOM_PASSES_PASSES_H

#include "mlir/Pass/Pass.h"

#include <string>
#include <vector>

namespace mlir {
class OpPassManager;
namespace func {
class FuncOp;
} // namespace func
} // namespace mlir

namespace loom {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

/// Options of the high-level pipeline on loom IR.
struct PreparePipelineOptions {
  /// Dim bindings `NAME=VALUE`; empty leaves shapes symbolic.
  std::vector<std::string> bind;
};

/// Specialize (when dims are bound), canonicalize, CSE and count FLOPs: the
/// passes every target runs on loom IR before lowering.
void buildPreparePipeline(mlir::OpPassManager &pm,
                          const PreparePipelineOptions &options);

/// What the stages from loom IR to linalg on tensors depend on; every
/// target runs them (see `linalgStages`).
struct LinalgStagesOptions {
  /// Dim bindings NAME=VALUE for loom-specialize; empty when the IR is
  /// already static.
  std::vector<std::string> bind;
  /// Options of `loom-derive-decode`; empty: no decode step.
  std::string decode;
  /// Options of `loom-autodiff`; empty: no gradient.
  std::string autodiff;
  /// Options of `loom-optimizer` (needs autodiff); empty: no training step.
  std::string optimizer;
  /// The layers of a repeat compile once (loom-outline-layers).
  bool outlineLayers = true;
  /// `loom.attention` and its gradient stay for a target's attention
  /// kernels; false lowers them to linalg (scores materialized).
  bool keepAttention = true;
  /// With keepAttention: the `split_heads` and `merge_heads` around the
  /// kept attention ops stay too, for kernels that read and write the
  /// [B, T, H*Dh] layout through strides.
  bool keepHeadViews = false;
};

/// The stages from loom IR to fused linalg on tensors, as pass-pipeline
/// text elements (to be joined with ',' inside `builtin.module(...)`):
/// specialize, derive the decode step, autodiff, count FLOPs, materialize
/// parameters, the optimizer, outline layers, lower to linalg, fuse
/// elementwise chains.
std::vector<std::string> linalgStages(const LinalgStagesOptions &options);

/// Sets the result types of `op` to what its InferTypeOpInterface derives
/// from its operands now (after a pass changed their types); fails with the
/// inference's diagnostic. A no-op for ops without the interface.
mlir::LogicalResult reinferResultTypes(mlir::Operation *op);

/// Registers every loom pass and pipeline with the global registry, for
/// loom-opt and for `loomc --dump-after`.
void registerAllPassesAndPipelines();

} // namespace loom

#endif // LOOM_PASSES_PASSES_H
