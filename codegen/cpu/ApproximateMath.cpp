//===- ApproximateMath.cpp - Vector polynomial approximations of math ops -===//
//
// LLVM lowers `llvm.exp`/`tanh`/`erf` on vectors to one libm call per lane
// (GPT-mini's forward spent 145 of its 400 ms in scalar tanhf/expm1f/expf).
// Upstream MLIR's polynomial approximations (Cephes/Eigen-style, f32 only)
// keep them in vector registers; f64 and scalar-only ops stay with libm.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
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
  /// The math ops on f32 vectors that `select` names.
  SmallVector<Operation *> collect(function_ref<bool(StringRef)> select) {
    SmallVector<Operation *> ops;
    getOperation().walk([&](Operation *op) {
      if (!llvm::isa<math::MathDialect>(op->getDialect()) ||
          !select(op->getName().getStringRef()) || op->getNumResults() != 1)
        return;
      auto vector = llvm::dyn_cast<VectorType>(op->getResult(0).getType());
      if (vector && vector.getElementType().isF32())
        ops.push_back(op);
    });
    return ops;
  }

  /// Rewrites `ops` (and what their rewrites create) with the
  /// approximations that `select` names.
  LogicalResult approximate(ArrayRef<Operation *> ops,
                            function_ref<bool(StringRef)> select) {
    if (ops.empty())
      return success();
    RewritePatternSet patterns(&getContext());
    populateMathPolynomialApproximationPatterns(patterns, select);
    GreedyRewriteConfig config;
    config.setStrictness(GreedyRewriteStrictness::ExistingAndNewOps);
    return applyOpPatternsGreedily(ops, std::move(patterns), config);
  }

  /// 1. tanh alone: its approximation is x p(x^2) / q(x^2) on a clamped x,
  ///    q's coefficients all positive (q >= 4.9e-3), so the division it
  ///    makes may be a reciprocal estimate and a Newton step (`arcp ninf`:
  ///    vrcp14ps and 4 flops instead of a vdivps, which issues once per 10
  ///    to 16 cycles on AVX-512 and dominated the GELU epilogues).
  /// 2. The other selected ops.
  void runOnOperation() override {
    auto isTanh = [](StringRef name) { return name == "math.tanh"; };
    DenseSet<Operation *> before;
    getOperation().walk([&](arith::DivFOp div) { before.insert(div); });
    if (failed(approximate(collect(isTanh), isTanh)))
      return signalPassFailure();
    getOperation().walk([&](arith::DivFOp div) {
      if (!before.contains(div))
        div.setFastmath(div.getFastmath() | arith::FastMathFlags::arcp |
                        arith::FastMathFlags::ninf);
    });
    if (failed(approximate(collect(isApproximated), isApproximated)))
      signalPassFailure();
  }
};

} // namespace
