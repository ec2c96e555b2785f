//===- ApproximateMath.cpp - Vector polynomial approximations of math ops -===//
//
// LLVM lowers `llvm.exp`/`tanh`/`erf` on vectors to one libm call per lane
// (GPT-mini's forward spent 145 of its 400 ms in scalar tanhf/expm1f/expf).
// Upstream MLIR's polynomial approximations (Cephes/Eigen-style, f32 only)
// keep them in vector registers; f64 and scalar-only ops stay with libm.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#define DEBUG_TYPE "loom-cpu-approximate-math"

namespace loom::cpu {
#define GEN_PASS_DEF_LOOMCPUAPPROXIMATEMATH
#include "codegen/cpu/Passes.h.inc"
} // namespace loom::cpu

using namespace mlir;

namespace {

/// The math ops approximated, by mnemonic.
bool isApproximated(StringRef name) {
  name.consume_front("math.");
  return llvm::is_contained(
      {"exp", "expm1", "tanh", "erf", "log", "log1p", "log2"}, name);
}

struct LoomCpuApproximateMath
    : public loom::cpu::impl::LoomCpuApproximateMathBase<
          LoomCpuApproximateMath> {
  /// 1. Collect the selected math ops on f32 vectors.
  /// 2. Rewrite only them (and what their rewrites create).
  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation().walk([&](Operation *op) {
      if (!llvm::isa<math::MathDialect>(op->getDialect()) ||
          !isApproximated(op->getName().getStringRef()) ||
          op->getNumResults() != 1)
        return;
      auto vector = llvm::dyn_cast<VectorType>(op->getResult(0).getType());
      if (vector && vector.getElementType().isF32())
        ops.push_back(op);
    });
    if (ops.empty())
      return;
    RewritePatternSet patterns(&getContext());
    populateMathPolynomialApproximationPatterns(patterns, isApproximated);
    GreedyRewriteConfig config;
    config.setStrictness(GreedyRewriteStrictness::ExistingAndNewOps);
    if (failed(applyOpPatternsGreedily(ops, std::move(patterns), config)))
      signalPassFailure();
  }
};

} // namespace
