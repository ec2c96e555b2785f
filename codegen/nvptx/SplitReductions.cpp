//===- SplitReductions.cpp - Long full reductions as partial sums ---------===//
//
// See `loom-gpu-split-reductions` in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "codegen/nvptx/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

#define DEBUG_TYPE "loom-gpu-split-reductions"

namespace loom::nvptx {
#define GEN_PASS_DEF_LOOMGPUSPLITREDUCTIONS
#include "codegen/nvptx/Passes.h.inc"
} // namespace loom::nvptx

using namespace mlir;

namespace {

/// Outputs below which a reduction's threads are too few on their own.
constexpr int64_t kFewOutputs = 1024;

struct LoomGpuSplitReductions
    : public loom::nvptx::impl::LoomGpuSplitReductionsBase<
          LoomGpuSplitReductions> {
  using Base::Base;

  /// The number of partial reductions for `op`, or 0 to leave it: a
  /// reduction over its last loop, long, with few outputs (fewer than
  /// `kFewOutputs`: a row per thread would leave the GPU idle and sum
  /// each row in one long chain).
  int64_t ratioFor(linalg::GenericOp op) {
    if (op.getNumReductionLoops() != 1 || op.getNumDpsInits() != 1 ||
        !op.hasPureTensorSemantics())
      return 0;
    SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
    if (iterators.back() != utils::IteratorType::reduction)
      return 0;
    SmallVector<int64_t> ranges = op.getStaticLoopRanges();
    if (llvm::any_of(ranges, ShapedType::isDynamic))
      return 0;
    int64_t outputs = 1;
    for (int64_t r : ArrayRef<int64_t>(ranges).drop_back())
      outputs *= r;
    int64_t n = ranges.back();
    if (outputs >= kFewOutputs || n < minSize)
      return 0;
    for (int64_t r = std::min(maxRatio.getValue(), n / 2); r >= 32; --r)
      if (n % r == 0)
        return r;
    return 0;
  }

  void runOnOperation() override {
    SmallVector<std::pair<linalg::GenericOp, int64_t>> work;
    getOperation().walk([&](linalg::GenericOp op) {
      if (int64_t r = ratioFor(op))
        work.push_back({op, r});
    });
    IRRewriter rewriter(&getContext());
    for (auto [op, ratio] : work) {
      rewriter.setInsertionPoint(op);
      int64_t r = ratio;
      auto split = linalg::splitReduction(
          rewriter, llvm::cast<linalg::LinalgOp>(op.getOperation()),
          [r, index = unsigned(op.getNumLoops() - 1)](linalg::LinalgOp) {
            linalg::SplitReductionOptions options;
            options.ratio = r;
            // The partials' dim after the outputs' own.
            options.index = index;
            options.innerParallel = true;
            return options;
          });
      // (A reduction whose combiner splitReduction does not recognize
      // stays serial.)
      (void)split;
    }
  }
};

} // namespace
