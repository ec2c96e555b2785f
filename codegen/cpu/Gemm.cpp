//===- Gemm.cpp - Contractions that the loom_sgemm kernel computes --------===//

#include "codegen/cpu/Gemm.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/IR/LinalgInterfaces.h"

#include "llvm/TargetParser/Host.h"

using namespace mlir;

std::optional<loom::cpu::GemmLoops> loom::cpu::matchGemm(linalg::LinalgOp op) {
  if (op.getNumDpsInputs() != 2 || op.getNumDpsInits() != 1)
    return std::nullopt;
  for (OpOperand &operand : op->getOpOperands()) {
    auto shaped = llvm::dyn_cast<ShapedType>(operand.get().getType());
    if (!shaped || !shaped.getElementType().isF32() || !shaped.hasRank())
      return std::nullopt;
  }
  if (llvm::any_of(op.getStaticLoopRanges(), ShapedType::isDynamic))
    return std::nullopt;
  if (!llvm::all_of(op.getIndexingMapsArray(), [](AffineMap map) {
        return map.isProjectedPermutation(/*allowZeroInResults=*/false);
      }))
    return std::nullopt;
  if (!linalg::isaContractionOpInterface(op))
    return std::nullopt;
  FailureOr<linalg::ContractionDimensions> dims =
      linalg::inferContractionDims(op);
  if (failed(dims) || dims->batch.size() > 1 || dims->m.size() != 1 ||
      dims->n.size() != 1 || dims->k.size() != 1)
    return std::nullopt;
  // Every loop must be one of them (no extra reduction or broadcast loop).
  unsigned loops = dims->batch.size() + 3;
  if (op.getNumLoops() != loops)
    return std::nullopt;
  GemmLoops g;
  g.batch = dims->batch.empty() ? -1 : int64_t(dims->batch.front());
  g.m = dims->m.front();
  g.n = dims->n.front();
  g.k = dims->k.front();
  return g;
}

// With 8x32 register blocks on AVX2 the 32 accumulators spilled and
// matmuls ran 3x slower: a contraction's block (8 rows x 2 vectors) fits 16
// of the 32 zmm registers, or 16 ymm on AVX2.
int64_t loom::cpu::hostVectorWidth() {
  llvm::StringMap<bool> features = llvm::sys::getHostCPUFeatures();
  auto it = features.find("avx512f");
  return it != features.end() && it->second ? 16 : 8;
}
