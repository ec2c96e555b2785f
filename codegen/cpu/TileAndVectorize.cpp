//===- TileAndVectorize.cpp - Register tiling and vectorization -----------===//
//
// The CPU's first performance step: every linalg op is tiled so its tile is
// a static block that fits in vector registers, then vectorized.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/Gemm.h"
#include "codegen/cpu/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/TileUsingInterface.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/Vector/Transforms/VectorRewritePatterns.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#define DEBUG_TYPE "loom-cpu-tile-and-vectorize"

namespace loom::cpu {
#define GEN_PASS_DEF_LOOMCPUTILEANDVECTORIZE
#include "codegen/cpu/Passes.h.inc"
} // namespace loom::cpu

using namespace mlir;

namespace {

/// The largest of `candidates` that divides `size`; the whole dim when it
/// is no larger than the largest candidate; 1 otherwise.
int64_t dividingTile(int64_t size, ArrayRef<int64_t> candidates) {
  if (!candidates.empty() && size <= candidates.front())
    return size;
  for (int64_t c : candidates)
    if (c <= size && size % c == 0)
      return c;
  return 1;
}

/// Vector registers the tiles of one elementwise op may fill: 24 of
/// AVX-512's 32, 12 of AVX2's 16 (the rest for temporaries).
int64_t vectorRegisters(int64_t width) { return width >= 16 ? 24 : 12; }

/// Tile sizes for `op`: register blocks for contractions, one row of the
/// innermost dim for everything else. Returns an empty vector when the op
/// should be left alone.
SmallVector<int64_t> chooseTileSizes(linalg::LinalgOp op, int64_t width) {
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  if (llvm::any_of(ranges, ShapedType::isDynamic))
    return {};
  SmallVector<int64_t> tiles(ranges.size(), 1);
  if (ranges.empty())
    return tiles;
  if (llvm::isa<linalg::MatmulOp, linalg::BatchMatmulOp>(op)) {
    // [..., M, N, K]
    size_t n = ranges.size();
    tiles[n - 3] = dividingTile(ranges[n - 3], {8, 6, 4, 2});
    tiles[n - 2] = dividingTile(ranges[n - 2], {2 * width, width, 8, 4, 2});
    tiles[n - 1] = dividingTile(ranges[n - 1], {16, 8, 4, 2});
    return tiles;
  }
  // Other ops: the innermost loop in vector-sized chunks, the rest by 1.
  // Up to four registers per value, fewer when many operands are live at
  // once (a fused backward chain reads eight or more): 16 registers per
  // value spilled a GPT-mini step's layer-norm backward to the stack, each
  // operand reloaded per use.
  int64_t registers = std::clamp<int64_t>(
      vectorRegisters(width) / (int64_t(op->getNumOperands()) + 2), 1, 4);
  SmallVector<int64_t> candidates;
  for (int64_t vectors : {4, 2, 1})
    if (vectors <= registers)
      candidates.push_back(vectors * width);
  candidates.append({8, 4, 2});
  tiles.back() = dividingTile(ranges.back(), candidates);
  return tiles;
}

/// Work (iteration points) below which splitting across threads costs more
/// than it saves.
constexpr int64_t kMinParallelWork = 1 << 15;

/// Forall tile sizes that split the outermost evenly divisible parallel loop
/// of `op` into `threads` chunks (0 = untiled), or empty when the op is too
/// small or nothing divides.
SmallVector<int64_t> chooseThreadTiles(linalg::LinalgOp op, int64_t threads) {
  if (threads <= 1)
    return {};
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  if (ranges.empty() || llvm::any_of(ranges, ShapedType::isDynamic))
    return {};
  int64_t work = 1;
  for (int64_t r : ranges)
    work *= r;
  if (work < kMinParallelWork)
    return {};
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  SmallVector<int64_t> tiles(ranges.size(), 0);
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (iterators[i] != utils::IteratorType::parallel)
      continue;
    if (ranges[i] % threads == 0 && ranges[i] >= threads) {
      tiles[i] = ranges[i] / threads;
      return tiles;
    }
  }
  return {};
}

/// Register tiles for `op` (chooseTileSizes), then vectors; an op that
/// cannot be vectorized stays (it becomes loops).
void tileAndVectorize(RewriterBase &rewriter, linalg::LinalgOp op,
                      int64_t width) {
  SmallVector<int64_t> tiles = chooseTileSizes(op, width);
  if (tiles.empty())
    return;
  Operation *target = op.getOperation();
  bool anyTiled =
      llvm::any_of(llvm::zip(tiles, op.getStaticLoopRanges()),
                   [](auto p) { return std::get<0>(p) < std::get<1>(p); });
  if (anyTiled) {
    rewriter.setInsertionPoint(op);
    scf::SCFTilingOptions options;
    // A tile covering its whole loop leaves that loop untiled (0).
    SmallVector<OpFoldResult> sizes;
    for (auto [t, range] : llvm::zip(tiles, op.getStaticLoopRanges()))
      sizes.push_back(rewriter.getIndexAttr(t == range ? 0 : t));
    options.setTileSizes(sizes);
    auto tiled = scf::tileUsingSCF(
        rewriter, llvm::cast<TilingInterface>(op.getOperation()), options);
    if (failed(tiled))
      return;
    rewriter.replaceOp(op, tiled->replacements);
    target = tiled->tiledOps.back();
  }
  // Vectors of i1 are packed bits in memory, but an i1 buffer holds a
  // byte per element: leave ops that read or write bools scalar.
  bool touchesBools = llvm::any_of(target->getOperandTypes(), [](Type t) {
    auto shaped = llvm::dyn_cast<ShapedType>(t);
    return shaped && shaped.getElementType().isInteger(1);
  });
  if (touchesBools || failed(linalg::vectorizeOpPrecondition(target)))
    return;
  rewriter.setInsertionPoint(target);
  // Contractions go straight to vector.contract (then outer products).
  bool isContraction =
      linalg::isaContractionOpInterface(llvm::cast<linalg::LinalgOp>(target));
  FailureOr<linalg::VectorizationResult> vectorized = linalg::vectorize(
      rewriter, target, /*inputVectorSizes=*/{}, /*scalableDims=*/{},
      /*vectorizeNDExtract=*/true, /*flatten1DDepthwiseConv=*/false,
      /*assumeDynamicDimsMatchVecSizes=*/false,
      /*createNamedContraction=*/isContraction);
  if (failed(vectorized))
    return;
  if (!vectorized->replacements.empty())
    rewriter.replaceOp(target, vectorized->replacements);
  else
    rewriter.eraseOp(target);
}

/// A vector.multi_reduction <add> of floats over dims that are all 1 adds
/// its source to the accumulator: a tile of one row of a reduction whose
/// innermost dim is parallel (a layer norm's weight gradient, the sum over
/// rows of x_hat * dy). Left alone, a product became a vector.contract,
/// which the lowering turned into a shuffle per element. A product of
/// broadcasts (a matmul tile with one k) stays for the contraction
/// patterns.
struct UnitDimSumToAdd : OpRewritePattern<vector::MultiDimReductionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(vector::MultiDimReductionOp op,
                                PatternRewriter &rewriter) const override {
    auto accType = llvm::dyn_cast<VectorType>(op.getAcc().getType());
    VectorType sourceType = op.getSourceVectorType();
    if (op.getKind() != vector::CombiningKind::ADD || !accType ||
        !llvm::isa<FloatType>(accType.getElementType()) ||
        llvm::isa<vector::MaskOp>(op->getParentOp()))
      return failure();
    for (int64_t dim : op.getReductionDims())
      if (sourceType.getDimSize(dim) != 1)
        return failure();
    if (auto mul = op.getSource().getDefiningOp<arith::MulFOp>())
      for (Value factor : {mul.getLhs(), mul.getRhs()})
        if (llvm::isa_and_nonnull<vector::BroadcastOp, vector::TransposeOp>(
                factor.getDefiningOp()))
          return failure();
    Value rows = vector::ShapeCastOp::create(rewriter, op.getLoc(), accType,
                                             op.getSource());
    rewriter.replaceOpWithNewOp<arith::AddFOp>(op, op.getAcc(), rows);
    return success();
  }
};

/// A read of one element broadcast along the vector (a row's mean or
/// scale beside the row: tensor<1x1xf32> read into vector<1x64xf32> with
/// map (d0, d1) -> (d0, 0)) becomes the element and a vector.broadcast.
/// Left as a transfer_read whose innermost dim broadcasts, convert-vector-
/// to-scf lowered it to a loop of 64 scalar loads, each inserted into the
/// vector through the stack (4-5 ms of a GPT-mini step's layer norms).
struct ScalarBroadcastRead : OpRewritePattern<vector::TransferReadOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(vector::TransferReadOp read,
                                PatternRewriter &rewriter) const override {
    VectorType type = read.getVectorType();
    AffineMap map = read.getPermutationMap();
    if (read.getMask() || type.isScalable() || type.getRank() == 0 ||
        map.getNumResults() != type.getRank())
      return failure();
    // Every vector dim broadcasts or has one element: one element is read.
    bool broadcasts = false;
    for (auto [i, result] : llvm::enumerate(map.getResults())) {
      if (auto c = llvm::dyn_cast<AffineConstantExpr>(result)) {
        if (c.getValue() != 0)
          return failure();
        broadcasts |= type.getDimSize(i) > 1;
        continue;
      }
      if (type.getDimSize(i) != 1 || !read.isDimInBounds(i))
        return failure();
    }
    if (!broadcasts)
      return failure();
    // (The pass vectorizes on tensors.)
    if (!llvm::isa<RankedTensorType>(read.getBase().getType()))
      return failure();
    Value element = tensor::ExtractOp::create(
        rewriter, read.getLoc(), read.getBase(), read.getIndices());
    rewriter.replaceOpWithNewOp<vector::BroadcastOp>(read, type, element);
    return success();
  }
};

struct LoomCpuTileAndVectorize
    : public loom::cpu::impl::LoomCpuTileAndVectorizeBase<
          LoomCpuTileAndVectorize> {
  using LoomCpuTileAndVectorizeBase::LoomCpuTileAndVectorizeBase;

  /// 1. Collect the linalg ops (tiling creates new ones, so first collect).
  /// 2. Tile each with scf.for loops to a static block.
  /// 3. Vectorize the tiled op; on failure keep it (it becomes loops).
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    SmallVector<linalg::LinalgOp> ops;
    func.walk([&](linalg::LinalgOp op) {
      if (op.hasPureTensorSemantics())
        ops.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    int64_t width =
        vectorWidth > 0 ? int64_t(vectorWidth) : loom::cpu::hostVectorWidth();
    for (linalg::LinalgOp original : ops) {
      linalg::LinalgOp op = original;
      // A GEMM's epilogue runs inside the kernel, on its tiles.
      if (op->hasAttr(loom::cpu::kEpilogueOfAttr))
        continue;
      // GEMMs for the packed kernel stay whole: the kernel runs each on
      // its own thread team, whose shares need not divide the dims (split
      // here, an odd N = 50257 forced the split onto M).
      if (gemmKernel && loom::cpu::matchGemm(op))
        continue;
      // Thread-level split first: an scf.forall over even chunks.
      SmallVector<int64_t> threadTiles = chooseThreadTiles(op, threads);
      if (!threadTiles.empty()) {
        rewriter.setInsertionPoint(op);
        scf::SCFTilingOptions options;
        options.setLoopType(scf::SCFTilingOptions::LoopType::ForallOp);
        SmallVector<OpFoldResult> sizes;
        for (int64_t t : threadTiles)
          sizes.push_back(rewriter.getIndexAttr(t));
        options.setTileSizes(sizes);
        auto split = scf::tileUsingSCF(
            rewriter, llvm::cast<TilingInterface>(op.getOperation()), options);
        if (succeeded(split)) {
          rewriter.replaceOp(op, split->replacements);
          op = llvm::cast<linalg::LinalgOp>(split->tiledOps.back());
        }
      }
      // An innermost loop that no vector size divides (a vocabulary of
      // 50257) would be tiled by 1, every element a scalar step: split it
      // into a part that vectors divide and a static tail.
      SmallVector<linalg::LinalgOp> parts = {op};
      if (!llvm::isa<linalg::MatmulOp, linalg::BatchMatmulOp>(op)) {
        SmallVector<int64_t> ranges = op.getStaticLoopRanges();
        int64_t last = ranges.empty() ? 0 : ranges.back();
        int64_t main = last / width * width;
        SmallVector<int64_t> tiles = chooseTileSizes(op, width);
        if (!tiles.empty() && tiles.back() == 1 && main > 0 && main < last) {
          rewriter.setInsertionPoint(op);
          auto [head, tail] = linalg::splitOp(
              rewriter, llvm::cast<TilingInterface>(op.getOperation()),
              ranges.size() - 1, rewriter.getIndexAttr(main));
          if (head && tail)
            parts = {llvm::cast<linalg::LinalgOp>(head.getOperation()),
                     llvm::cast<linalg::LinalgOp>(tail.getOperation())};
        }
      }
      for (linalg::LinalgOp part : parts)
        tileAndVectorize(rewriter, part, width);
    }
    // multi_reduction(mul(broadcast a, broadcast b)) -> vector.contract, so
    // contraction-shaped generics also reach the outer-product lowering;
    // a sum over unit dims of anything else is an add.
    RewritePatternSet patterns(&getContext());
    patterns.add<UnitDimSumToAdd>(&getContext(), /*benefit=*/2);
    vector::populateVectorReductionToContractPatterns(patterns);
    patterns.add<ScalarBroadcastRead>(&getContext());
    if (failed(applyPatternsGreedily(func, std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
