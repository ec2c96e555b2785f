//===- AttentionKernels.cpp - Attention as row loops, memory linear in T --===//
//
// See `loom-gpu-attention` in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "codegen/nvptx/NvptxPipeline.h"
#include "codegen/nvptx/Passes.h"
#include "codegen/nvptx/Tf32Mma.h"

#include "ir/LoomOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Builders.h"

#include "llvm/ADT/TypeSwitch.h"

#include <limits>

#define DEBUG_TYPE "loom-gpu-attention"

namespace loom::nvptx {
#define GEN_PASS_DEF_LOOMGPUATTENTION
#include "codegen/nvptx/Passes.h.inc"
} // namespace loom::nvptx

using namespace mlir;
using loom::nvptx::Tf32Mma;

namespace {

/// Builds the loops of one attention op on buffers.
class RowBuilder {
public:
  RowBuilder(OpBuilder &b, Location loc, Value q, Value k, Value mask,
             bool causal, double scale)
      : b(b), loc(loc), q(q), k(k), mask(mask), causal(causal) {
    auto qt = llvm::cast<MemRefType>(q.getType());
    auto kt = llvm::cast<MemRefType>(k.getType());
    int64_t rank = qt.getRank();
    batch.assign(qt.getShape().begin(), qt.getShape().end() - 2);
    tq = qt.getDimSize(rank - 2);
    tk = kt.getDimSize(rank - 2);
    d = qt.getDimSize(rank - 1);
    scaleValue = f32(scale);
  }

  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value f32(double v) {
    return arith::ConstantFloatOp::create(b, loc, b.getF32Type(),
                                          APFloat(float(v)));
  }

  /// `buffer[prefix..., row, col]` (or `[prefix..., row]` without col).
  SmallVector<Value> at(ValueRange prefix, Value row, Value col = Value()) {
    SmallVector<Value> indices(prefix.begin(), prefix.end());
    indices.push_back(row);
    if (col)
      indices.push_back(col);
    return indices;
  }
  Value load(Value buffer, ValueRange indices) {
    return memref::LoadOp::create(b, loc, buffer, indices);
  }

  /// An scf.parallel over the batch dims and `rows`; `body` gets the batch
  /// indices and the row.
  void overRows(int64_t rows,
                llvm::function_ref<void(ValueRange, Value)> body) {
    SmallVector<Value> lbs, ubs, steps;
    for (int64_t n : batch) {
      lbs.push_back(idx(0));
      ubs.push_back(idx(n));
      steps.push_back(idx(1));
    }
    lbs.push_back(idx(0));
    ubs.push_back(idx(rows));
    steps.push_back(idx(1));
    auto loop = scf::ParallelOp::create(b, loc, lbs, ubs, steps);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(loop.getBody()->getTerminator());
    SmallVector<Value> ivs(loop.getInductionVars());
    body(ValueRange(ivs).drop_back(), ivs.back());
  }

  /// sum over c < n of x[px..., rx, c] * y[py..., ry, c].
  Value dot(Value x, ValueRange prefix, Value rx, Value y, Value ry,
            int64_t n) {
    auto loop = scf::ForOp::create(
        b, loc, idx(0), idx(n), idx(1), ValueRange{f32(0.0)},
        [&](OpBuilder &lb, Location l, Value c, ValueRange acc) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(lb.getInsertionBlock(), lb.getInsertionPoint());
          Value p = arith::MulFOp::create(b, l, load(x, at(prefix, rx, c)),
                                          load(y, at(prefix, ry, c)));
          scf::YieldOp::create(
              b, l, ValueRange{arith::AddFOp::create(b, l, acc[0], p)});
        });
    return loop.getResult(0);
  }

  /// Row `row` of `buffer` as n values (registers, in the kernel).
  SmallVector<Value> loadRow(Value buffer, ValueRange prefix, Value row,
                             int64_t n) {
    SmallVector<Value> values;
    for (int64_t c = 0; c < n; ++c)
      values.push_back(load(buffer, at(prefix, row, idx(c))));
    return values;
  }
  /// scale * q[i] . k[j].
  Value score(ValueRange prefix, Value i, Value j) {
    return arith::MulFOp::create(b, loc, dot(q, prefix, i, k, j, d),
                                 scaleValue);
  }

  /// For c < n: buffer[prefix, row, c] = update(c, old).
  void updateRow(Value buffer, ValueRange prefix, Value row, int64_t n,
                 llvm::function_ref<Value(Value c, Value old)> update) {
    auto loop = scf::ForOp::create(b, loc, idx(0), idx(n), idx(1));
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(loop.getBody()->getTerminator());
    Value c = loop.getInductionVar();
    SmallVector<Value> where = at(prefix, row, c);
    Value old = load(buffer, where);
    memref::StoreOp::create(b, loc, update(c, old), buffer, where);
  }

  /// m + log(l) where l > 0, else 0 (a query that attends no key: the
  /// op's definition).
  Value lseOf(Value m, Value l) {
    Value positive =
        arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, l, f32(0.0));
    return arith::SelectOp::create(
        b, loc, positive,
        arith::AddFOp::create(b, loc, m, math::LogOp::create(b, loc, l)),
        f32(0.0));
  }

  /// 1 / l where l > 0, else 0 (a query that attends no key gets zeros).
  Value inverseOrZero(Value l) {
    Value positive =
        arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, l, f32(0.0));
    return arith::SelectOp::create(
        b, loc, positive, arith::DivFOp::create(b, loc, f32(1.0), l), f32(0.0));
  }

  /// P recomputed from the forward's log-sum-exp: exp(s - lse) where
  /// `valid` (attended), else 0.
  Value probability(Value valid, Value s, Value lse) {
    return arith::SelectOp::create(
        b, loc, valid,
        math::ExpOp::create(b, loc, arith::SubFOp::create(b, loc, s, lse)),
        f32(0.0));
  }
  /// dS before its scale: p (dp - delta), dp = dO_i . v_j.
  Value dScore(Value p, Value dp, Value delta) {
    return arith::MulFOp::create(b, loc, p,
                                 arith::SubFOp::create(b, loc, dp, delta));
  }

  /// The keys query `i` attends: [0, end).
  Value keyEnd(Value i) {
    if (!causal)
      return idx(tk);
    // j <= i + (tk - tq)
    Value end = arith::AddIOp::create(b, loc, i, idx(tk - tq + 1));
    return arith::MinSIOp::create(
        b, loc, arith::MaxSIOp::create(b, loc, end, idx(0)), idx(tk));
  }
  /// The queries that attend key `j`: [begin, tq).
  Value queryBegin(Value j) {
    if (!causal)
      return idx(0);
    Value begin = arith::SubIOp::create(b, loc, j, idx(tk - tq));
    return arith::MinSIOp::create(
        b, loc, arith::MaxSIOp::create(b, loc, begin, idx(0)), idx(tq));
  }
  /// Whether batch entry prefix[0]'s key `j` is attended (true without a
  /// mask).
  Value attended(ValueRange prefix, Value j) {
    if (!mask)
      return arith::ConstantIntOp::create(b, loc, b.getI1Type(), 1);
    return load(mask, ValueRange{prefix.front(), j});
  }

  /// A loop over keys [0, end) of query `i` carrying `init`; `body` runs for
  /// the attended keys and returns the new values.
  scf::ForOp
  overKeys(ValueRange prefix, Value end, ValueRange init,
           llvm::function_ref<SmallVector<Value>(Value j, ValueRange carried)>
               body) {
    auto loop = scf::ForOp::create(b, loc, idx(0), end, idx(1), init);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value j = loop.getInductionVar();
    ValueRange carried = loop.getRegionIterArgs();
    SmallVector<Value> next;
    if (mask) {
      auto check = scf::IfOp::create(b, loc, carried.getTypes(),
                                     attended(prefix, j), true);
      // (Without results, the branches come with their terminators.)
      for (Block *block : {check.thenBlock(), check.elseBlock()})
        if (!block->empty())
          block->back().erase();
      b.setInsertionPointToStart(check.thenBlock());
      scf::YieldOp::create(b, loc, body(j, carried));
      b.setInsertionPointToStart(check.elseBlock());
      scf::YieldOp::create(b, loc, carried);
      b.setInsertionPointAfter(check);
      next.assign(check.getResults().begin(), check.getResults().end());
    } else {
      next = body(j, carried);
    }
    if (loop.getBody()->mightHaveTerminator())
      loop.getBody()->getTerminator()->erase();
    b.setInsertionPointToEnd(loop.getBody());
    scf::YieldOp::create(b, loc, next);
    return loop;
  }

  /// Running max and sum of the online softmax of query `i`'s scores;
  /// `withScore(j, p, correction)` also updates a row per key.
  std::pair<Value, Value> onlineSoftmax(
      ValueRange prefix, Value i,
      llvm::function_ref<void(Value j, Value p, Value corr)> withScore =
          nullptr) {
    Value minusInf = f32(-std::numeric_limits<double>::infinity());
    auto loop =
        overKeys(prefix, keyEnd(i), ValueRange{minusInf, f32(0.0)},
                 [&](Value j, ValueRange ml) -> SmallVector<Value> {
                   Value s = score(prefix, i, j);
                   Value m = arith::MaximumFOp::create(b, loc, ml[0], s);
                   Value corr = math::ExpOp::create(
                       b, loc, arith::SubFOp::create(b, loc, ml[0], m));
                   Value p = math::ExpOp::create(
                       b, loc, arith::SubFOp::create(b, loc, s, m));
                   Value l = arith::AddFOp::create(
                       b, loc, arith::MulFOp::create(b, loc, ml[1], corr), p);
                   if (withScore)
                     withScore(j, p, corr);
                   return {m, l};
                 });
    return {loop.getResult(0), loop.getResult(1)};
  }

  OpBuilder &b;
  Location loc;
  Value q, k, mask;
  bool causal;
  SmallVector<int64_t> batch;
  int64_t tq = 0, tk = 0, d = 0;
  Value scaleValue;
};

/// The buffer a tensor operand reads (bufferization left unknown ops'
/// operands as `to_tensor` of their buffers).
FailureOr<Value> bufferOf(Operation *op, Value tensor) {
  if (auto toTensor = tensor.getDefiningOp<bufferization::ToTensorOp>())
    return toTensor.getBuffer();
  return op->emitOpError("has an operand that is not a buffer after "
                         "bufferization");
}

/// The key mask's buffer, or null without a mask.
FailureOr<Value> maskOf(Operation *op, Value mask) {
  if (!mask)
    return Value();
  return bufferOf(op, mask);
}

/// A fresh buffer of `type`'s shape and the tensor that reads it.
std::pair<Value, Value> newBuffer(OpBuilder &b, Location loc, Type type) {
  auto t = llvm::cast<RankedTensorType>(type);
  Value buffer = memref::AllocOp::create(
      b, loc, MemRefType::get(t.getShape(), t.getElementType()));
  Value tensor = bufferization::ToTensorOp::create(b, loc, t, buffer,
                                                   /*restrict=*/true,
                                                   /*writable=*/true);
  return {buffer, tensor};
}

/// Rows of at most this many values are kept in registers (a thread's
/// output row and query row: 2 x 64 floats fit the 255 registers of a
/// thread without spills); longer rows are updated in memory.
constexpr int64_t kRegisterRow = 64;

/// The block-tiled kernels: keys per shared-memory tile, the most queries
/// (threads) per block, and scores per step of the online softmax.
constexpr int64_t kKeyTile = 64, kQueryTile = 64, kScoreChunk = 16;

/// Threads per block for one row each of `rows`: `most`, or one warp for
/// short sequences.
int64_t blockThreads(int64_t rows, int64_t most) {
  return rows >= most ? most : 32;
}
/// Rows per staged tile: `most`, fewer (whole chunks) for short sequences.
int64_t stagedRows(int64_t rows, int64_t most) {
  return std::min(most, (rows + kScoreChunk - 1) / kScoreChunk * kScoreChunk);
}

/// A block-tiled loop: an scf.parallel over the batch dims, the blocks of
/// `threads` rows each and the block's threads (`loom.block_threads`),
/// with the builder inside its body.
struct BlockLoop {
  SmallVector<Value> prefix;
  /// The thread's index in the block, the block's first row, the thread's
  /// row (maybe past the end) and that row clamped to the last, the
  /// block's last row (clamped).
  Value tid, first, row, clamped, last;
  /// Which of `parts` slices of the columns the block computes.
  Value part;
  int64_t threads;

  /// `perBlock`: rows per block (0: one per thread).
  BlockLoop(RowBuilder &r, int64_t rows, int64_t threads, int64_t parts = 1,
            int64_t perBlock = 0)
      : threads(threads) {
    OpBuilder &b = r.b;
    Location loc = r.loc;
    if (perBlock == 0)
      perBlock = threads;
    int64_t blocks = (rows + perBlock - 1) / perBlock;
    // Dims of one iteration are left out: canonicalization would rebuild
    // the loop without its attribute.
    SmallVector<Value> lbs, ubs, steps;
    SmallVector<int64_t> sizes(r.batch);
    sizes.push_back(parts);
    sizes.push_back(blocks);
    for (int64_t n : sizes)
      if (n > 1) {
        lbs.push_back(r.idx(0));
        ubs.push_back(r.idx(n));
        steps.push_back(r.idx(1));
      }
    lbs.push_back(r.idx(0));
    ubs.push_back(r.idx(threads));
    steps.push_back(r.idx(1));
    auto loop = scf::ParallelOp::create(b, loc, lbs, ubs, steps);
    loop->setAttr(loom::nvptx::kBlockThreadsAttr, b.getI64IntegerAttr(threads));
    b.setInsertionPoint(loop.getBody()->getTerminator());
    SmallVector<Value> ivs(loop.getInductionVars());
    unsigned next = 0;
    for (int64_t n : r.batch)
      prefix.push_back(n > 1 ? ivs[next++] : r.idx(0));
    part = parts > 1 ? ivs[next++] : r.idx(0);
    Value block = blocks > 1 ? ivs[next++] : r.idx(0);
    tid = ivs.back();
    first = arith::MulIOp::create(b, loc, block, r.idx(perBlock));
    row = arith::AddIOp::create(b, loc, first, tid);
    clamped = arith::MinUIOp::create(b, loc, row, r.idx(rows - 1));
    last = arith::MinUIOp::create(
        b, loc, arith::AddIOp::create(b, loc, first, r.idx(perBlock - 1)),
        r.idx(rows - 1));
  }

  /// A buffer of the block's shared memory (of `shape`; rows may be
  /// padded wider than what `stage` copies).
  Value shared(RowBuilder &r, ArrayRef<int64_t> shape) {
    auto workgroup = gpu::AddressSpaceAttr::get(r.b.getContext(),
                                                gpu::AddressSpace::Workgroup);
    return memref::AllocaOp::create(
        r.b, r.loc,
        MemRefType::get(shape, r.b.getF32Type(), AffineMap(), workgroup));
  }

  /// Rows [r0, r0 + tileRows) of `global` (clamped to `limit` - 1; `cols`
  /// 0: a [..., T] buffer of one value per row) into `tile`, times `scale`
  /// if given; neighbouring threads copy neighbouring elements, and
  /// elements past the tile are clamped to its last (the same value stored
  /// twice).
  void stage(RowBuilder &r, Value global, Value tile, int64_t tileRows,
             int64_t cols, Value r0, int64_t limit, Value scale = Value()) {
    OpBuilder &b = r.b;
    Location loc = r.loc;
    int64_t width = std::max<int64_t>(cols, 1);
    int64_t elements = tileRows * width;
    for (int64_t e = 0; e < (elements + threads - 1) / threads; ++e) {
      Value linear = arith::AddIOp::create(b, loc, tid, r.idx(e * threads));
      if ((e + 1) * threads > elements)
        linear = arith::MinUIOp::create(b, loc, linear, r.idx(elements - 1));
      Value tileRow = arith::DivUIOp::create(b, loc, linear, r.idx(width));
      Value col = arith::RemUIOp::create(b, loc, linear, r.idx(width));
      Value at = arith::MinUIOp::create(
          b, loc, arith::AddIOp::create(b, loc, r0, tileRow), r.idx(limit - 1));
      Value x = memref::LoadOp::create(b, loc, global,
                                       r.at(prefix, at, cols ? col : Value()));
      if (scale)
        x = arith::MulFOp::create(b, loc, x, scale);
      SmallVector<Value> where = {tileRow};
      if (cols)
        where.push_back(col);
      memref::StoreOp::create(b, loc, x, tile, where);
    }
  }
};

/// An scf.for from `lb` to `ub` carrying `init`, with the builder in its
/// body (the caller yields).
scf::ForOp openFor(RowBuilder &r, Value lb, Value ub, int64_t step,
                   ValueRange init) {
  auto loop = scf::ForOp::create(r.b, r.loc, lb, ub, r.idx(step), init);
  if (loop.getBody()->mightHaveTerminator())
    loop.getBody()->getTerminator()->erase();
  r.b.setInsertionPointToEnd(loop.getBody());
  return loop;
}

/// The loop over the tiles of `keyTile` keys that the block's queries
/// attend (up to its last query's bound), carrying `init`, with the
/// builder in its body after the tile's K (and V) rows are staged between
/// two barriers (the first: the last tile's rows are read by every
/// thread). Returns the loop and the tile's first key.
std::pair<scf::ForOp, Value> openKeyTiles(RowBuilder &r, BlockLoop &bl,
                                          int64_t keyTile, Value sK, Value v,
                                          Value sV, int64_t dv,
                                          ValueRange init) {
  OpBuilder &b = r.b;
  Location loc = r.loc;
  Value keyTiles = arith::DivUIOp::create(
      b, loc,
      arith::AddIOp::create(b, loc, r.keyEnd(bl.last), r.idx(keyTile - 1)),
      r.idx(keyTile));
  scf::ForOp loop = openFor(r, r.idx(0), keyTiles, 1, init);
  Value j0 =
      arith::MulIOp::create(b, loc, loop.getInductionVar(), r.idx(keyTile));
  gpu::BarrierOp::create(b, loc);
  bl.stage(r, r.k, sK, keyTile, r.d, j0, r.tk);
  if (v)
    bl.stage(r, v, sV, keyTile, dv, j0, r.tk);
  gpu::BarrierOp::create(b, loc);
  return {loop, j0};
}

/// The loop over the tiles of `queryTile` queries from the one holding
/// the first query that attends the block's first key, carrying `init`,
/// with the builder in its body after the tile's scaled Q, dO, lse (and
/// delta, if sD) rows are staged between two barriers.
scf::ForOp openQueryTiles(RowBuilder &r, BlockLoop &bl, int64_t queryTile,
                          Value sQ, Value dout, Value sDO, int64_t dv,
                          Value lse, Value sL, Value delta, Value sD,
                          ValueRange init) {
  OpBuilder &b = r.b;
  Location loc = r.loc;
  Value firstTile =
      arith::DivUIOp::create(b, loc, r.queryBegin(bl.first), r.idx(queryTile));
  Value queryTiles = r.idx((r.tq + queryTile - 1) / queryTile);
  scf::ForOp loop = openFor(r, firstTile, queryTiles, 1, init);
  Value i0 =
      arith::MulIOp::create(b, loc, loop.getInductionVar(), r.idx(queryTile));
  gpu::BarrierOp::create(b, loc);
  bl.stage(r, r.q, sQ, queryTile, r.d, i0, r.tq, r.scaleValue);
  bl.stage(r, dout, sDO, queryTile, dv, i0, r.tq);
  bl.stage(r, lse, sL, queryTile, 0, i0, r.tq);
  if (sD)
    bl.stage(r, delta, sD, queryTile, 0, i0, r.tq);
  gpu::BarrierOp::create(b, loc);
  return loop;
}

/// sum over c of x[c] * tile[row, c] (x in registers).
Value dotShared(RowBuilder &r, ArrayRef<Value> x, Value tile, Value row) {
  Value acc = r.f32(0.0);
  for (auto [c, xc] : llvm::enumerate(x))
    acc = math::FmaOp::create(
        r.b, r.loc, xc,
        memref::LoadOp::create(r.b, r.loc, tile,
                               ValueRange{row, r.idx(int64_t(c))}),
        acc);
  return acc;
}

/// Attention (`out`) or its log-sum-exp (`lse`) as a block of threads per
/// tile of queries, one thread per query with its (pre-scaled) q row, and
/// for attention its output row, in registers. Per tile of kKeyTile keys,
/// between two barriers, the block copies K (and V) rows into shared
/// memory, neighbouring threads reading neighbouring elements of a row;
/// each thread then takes the tile kScoreChunk keys at a time: the chunk's
/// scores, their max, one rescaling of the running sum (and output row),
/// then p * v added per key. Keys past a query's causal bound or the key
/// mask score -inf. Every thread of the block runs the same tiles (up to
/// the block's last query's bound), so the barriers are reached by all;
/// queries past Tq compute the last row's and store nothing.
void forwardTiled(RowBuilder &r, Value v, Value out, Value lse, int64_t dv) {
  OpBuilder &b = r.b;
  Location loc = r.loc;
  OpBuilder::InsertionGuard guard(b);
  int64_t keyTile = stagedRows(r.tk, kKeyTile);
  BlockLoop bl(r, r.tq, blockThreads(r.tq, kQueryTile));
  const SmallVector<Value> &prefix = bl.prefix;
  Value sK = bl.shared(r, {keyTile, r.d});
  Value sV = v ? bl.shared(r, {keyTile, dv}) : Value();
  SmallVector<Value> qRow = r.loadRow(r.q, prefix, bl.clamped, r.d);
  for (Value &x : qRow)
    x = arith::MulFOp::create(b, loc, x, r.scaleValue);
  Value end = r.keyEnd(bl.clamped);
  Value minusInf = r.f32(-std::numeric_limits<double>::infinity());
  SmallVector<Value> init = {minusInf, r.f32(0.0)};
  if (v)
    init.append(dv, r.f32(0.0));
  scf::ForOp overTiles;
  {
    OpBuilder::InsertionGuard inner(b);
    Value j0;
    std::tie(overTiles, j0) = openKeyTiles(r, bl, keyTile, sK, v, sV, dv, init);
    scf::ForOp chunks = openFor(r, r.idx(0), r.idx(keyTile), kScoreChunk,
                                overTiles.getRegionIterArgs());
    Value c0 = chunks.getInductionVar();
    ValueRange state = chunks.getRegionIterArgs();
    SmallVector<Value> scores, tileRows;
    Value chunkMax = minusInf;
    for (int64_t u = 0; u < kScoreChunk; ++u) {
      Value tileRow = arith::AddIOp::create(b, loc, c0, r.idx(u));
      tileRows.push_back(tileRow);
      Value s = dotShared(r, qRow, sK, tileRow);
      Value key = arith::AddIOp::create(b, loc, j0, tileRow);
      Value valid =
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, key, end);
      if (r.mask)
        valid = arith::AndIOp::create(
            b, loc, valid,
            r.attended(prefix,
                       arith::MinUIOp::create(b, loc, key, r.idx(r.tk - 1))));
      s = arith::SelectOp::create(b, loc, valid, s, minusInf);
      scores.push_back(s);
      chunkMax = arith::MaximumFOp::create(b, loc, chunkMax, s);
    }
    // A max of -inf (nothing attended yet): subtract 0 instead, so that
    // exp(-inf - m) is 0, never NaN.
    Value m = arith::MaximumFOp::create(b, loc, state[0], chunkMax);
    Value none =
        arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, m, minusInf);
    Value base = arith::SelectOp::create(b, loc, none, r.f32(0.0), m);
    Value corr = math::ExpOp::create(
        b, loc, arith::SubFOp::create(b, loc, state[0], base));
    Value l = arith::MulFOp::create(b, loc, state[1], corr);
    SmallVector<Value> o;
    for (Value x : state.drop_front(2))
      o.push_back(arith::MulFOp::create(b, loc, x, corr));
    for (int64_t u = 0; u < kScoreChunk; ++u) {
      Value p = math::ExpOp::create(
          b, loc, arith::SubFOp::create(b, loc, scores[u], base));
      l = arith::AddFOp::create(b, loc, l, p);
      for (int64_t c = 0; c < int64_t(o.size()); ++c)
        o[c] = math::FmaOp::create(
            b, loc, p,
            memref::LoadOp::create(b, loc, sV,
                                   ValueRange{tileRows[u], r.idx(c)}),
            o[c]);
    }
    SmallVector<Value> yielded = {m, l};
    llvm::append_range(yielded, o);
    scf::YieldOp::create(b, loc, yielded);
    b.setInsertionPointAfter(chunks);
    scf::YieldOp::create(b, loc, chunks.getResults());
  }
  // Queries past Tq store nothing.
  Value inside = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                       bl.row, r.idx(r.tq));
  auto store = scf::IfOp::create(b, loc, inside, /*withElse=*/false);
  b.setInsertionPoint(store.thenBlock()->getTerminator());
  Value m = overTiles.getResult(0), l = overTiles.getResult(1);
  if (v) {
    Value inv = r.inverseOrZero(l);
    for (int64_t c = 0; c < dv; ++c)
      memref::StoreOp::create(
          b, loc,
          arith::MulFOp::create(b, loc, overTiles.getResult(2 + c), inv), out,
          r.at(prefix, bl.row, r.idx(c)));
  }
  if (lse) {
    Value value = r.lseOf(m, l);
    memref::StoreOp::create(b, loc, value, lse, r.at(prefix, bl.row));
  }
}

/// The smallest width of at least `n` that is `m` mod 2 m: a shared tile's
/// padded row, so that the lanes of a warp reading fragments (g < 8 by
/// t < 4) hit 32 different banks: m 4 for a row per g read at column t
/// (bank s g + t), m 8 for a row per t read at column g (bank s t + g).
int64_t paddedRow(int64_t n, int64_t m) {
  int64_t w = n / (2 * m) * (2 * m) + m;
  return w < n ? w + 2 * m : w;
}

/// Which tensor cores take attention's products (the pass's option).
struct TensorCores {
  bool on = false, split = false;
};

/// A lane's share of a block of 4 warps x 16 rows on mma.sync: lane
/// (g, t) = (lane / 4, lane % 4) holds rows g and g + 8 of its warp's 16
/// (in the block: `local`; in the sequence: `row`, and `clamped` to the
/// last, whose values rows past the end compute), and the fragment reads
/// of the staged tiles.
struct WarpRows {
  static constexpr int64_t kWarps = 4, kRows = 16 * kWarps;
  RowBuilder &r;
  Tf32Mma mma;
  int64_t rows;
  Value g, t, t2, local[2], row[2], clamped[2];

  WarpRows(RowBuilder &r, BlockLoop &bl, int64_t rows, bool split)
      : r(r), mma(r.b, r.loc, split), rows(rows) {
    Value lane = arith::RemUIOp::create(r.b, r.loc, bl.tid, r.idx(32));
    Value warpRow = arith::MulIOp::create(
        r.b, r.loc, arith::DivUIOp::create(r.b, r.loc, bl.tid, r.idx(32)),
        r.idx(16));
    g = arith::DivUIOp::create(r.b, r.loc, lane, r.idx(4));
    t = arith::RemUIOp::create(r.b, r.loc, lane, r.idx(4));
    t2 = arith::MulIOp::create(r.b, r.loc, t, r.idx(2));
    local[0] = arith::AddIOp::create(r.b, r.loc, warpRow, g);
    local[1] = add(local[0], 8);
    for (int i = 0; i < 2; ++i) {
      row[i] = arith::AddIOp::create(r.b, r.loc, bl.first, local[i]);
      clamped[i] = arith::MinUIOp::create(r.b, r.loc, row[i], r.idx(rows - 1));
    }
  }

  Value add(Value x, int64_t y) {
    return y ? arith::AddIOp::create(r.b, r.loc, x, r.idx(y)).getResult() : x;
  }
  Value less(Value x, int64_t y) {
    return arith::CmpIOp::create(r.b, r.loc, arith::CmpIPredicate::ult, x,
                                 r.idx(y));
  }

  /// buffer[lead..., col] of a row of n values, 0 past n (col clamped).
  Value loadPadded(Value buffer, ArrayRef<Value> lead, Value col, int64_t n,
                   bool maybePast) {
    SmallVector<Value> where(lead.begin(), lead.end());
    where.push_back(
        maybePast
            ? arith::MinUIOp::create(r.b, r.loc, col, r.idx(n - 1)).getResult()
            : col);
    Value x = memref::LoadOp::create(r.b, r.loc, buffer, where);
    if (!maybePast)
      return x;
    return arith::SelectOp::create(r.b, r.loc, less(col, n), x, r.f32(0.0));
  }

  /// The lane's rows of global[prefix, row, 0:n] (times `scale` if given)
  /// as A fragments, one per 8 columns.
  SmallVector<Tf32Mma::Fragment> rowFragments(Value global, ValueRange prefix,
                                              int64_t n, Value scale) {
    SmallVector<Tf32Mma::Fragment> frags;
    for (int64_t ks = 0; ks < (n + 7) / 8; ++ks) {
      bool past = (ks + 1) * 8 > n;
      Value c0 = add(t, ks * 8), c1 = add(t, ks * 8 + 4);
      SmallVector<Value> values;
      for (auto [i, c] : {std::pair(0, c0), {1, c0}, {0, c1}, {1, c1}}) {
        SmallVector<Value> lead(prefix.begin(), prefix.end());
        lead.push_back(clamped[i]);
        Value x = loadPadded(global, lead, c, n, past);
        values.push_back(
            scale ? arith::MulFOp::create(r.b, r.loc, x, scale).getResult()
                  : x);
      }
      frags.push_back(mma.fragment(values));
    }
    return frags;
  }

  /// B(k, n) = tile[8 j + n, 8 ks + k] (a tile of rows of n values read
  /// across: K in Q K^T).
  Tf32Mma::Fragment across(Value tile, int64_t j, int64_t ks, int64_t n) {
    bool past = (ks + 1) * 8 > n;
    Value at = add(g, j * 8);
    return mma.fragment({loadPadded(tile, {at}, add(t, ks * 8), n, past),
                         loadPadded(tile, {at}, add(t, ks * 8 + 4), n, past)});
  }
  /// B(k, n) = tile[8 ks + k, 8 j + n] (read down: V in P V).
  Tf32Mma::Fragment down(Value tile, int64_t ks, int64_t j, int64_t n) {
    bool past = (j + 1) * 8 > n;
    Value col = add(g, j * 8);
    return mma.fragment({loadPadded(tile, {add(t, ks * 8)}, col, n, past),
                         loadPadded(tile, {add(t, ks * 8 + 4)}, col, n, past)});
  }
  /// A(m, k) = tile[local row m, 8 ks + k] (P or dS in shared memory).
  Tf32Mma::Fragment fromShared(Value tile, int64_t ks) {
    Value k0 = add(t, ks * 8), k1 = add(t, ks * 8 + 4);
    auto at = [&](int i, Value k) -> Value {
      return memref::LoadOp::create(r.b, r.loc, tile, ValueRange{local[i], k});
    };
    return mma.fragment({at(0, k0), at(1, k0), at(0, k1), at(1, k1)});
  }

  /// x combined with the values of the lanes that share its rows (the
  /// quad: lanes xor 1 and xor 2).
  Value quad(Value x, function_ref<Value(Value, Value)> combine) {
    for (int32_t offset : {1, 2}) {
      auto s = gpu::ShuffleOp::create(r.b, r.loc, x, offset, int32_t(32),
                                      gpu::ShuffleMode::XOR);
      x = combine(x, s.getShuffleResult());
    }
    return x;
  }
  Value quadSum(Value x) {
    return quad(x, [&](Value p, Value q) -> Value {
      return arith::AddFOp::create(r.b, r.loc, p, q);
    });
  }
  Value quadMax(Value x) {
    return quad(x, [&](Value p, Value q) -> Value {
      return arith::MaximumFOp::create(r.b, r.loc, p, q);
    });
  }

  /// Key `8 j + 2 t + e` of the tile at j0, and whether row i attends it
  /// (below its causal bound `end`, unmasked).
  std::pair<Value, Value> key(ValueRange prefix, Value j0, int64_t j, int64_t e,
                              Value end) {
    Value k = add(arith::AddIOp::create(r.b, r.loc, j0, t2), j * 8 + e);
    Value valid =
        arith::CmpIOp::create(r.b, r.loc, arith::CmpIPredicate::ult, k, end);
    if (r.mask)
      valid = arith::AndIOp::create(
          r.b, r.loc, valid,
          r.attended(prefix,
                     arith::MinUIOp::create(r.b, r.loc, k, r.idx(r.tk - 1))));
    return {k, valid};
  }

  /// Stores f(i, j, e) (accumulator j's element (i, e)) into
  /// buffer[prefix, row i, 8 j + 2 t + e] for the rows inside `rows` and
  /// the columns inside n.
  void storeRows(Value buffer, ValueRange prefix, ArrayRef<Value> accs,
                 int64_t n, function_ref<Value(int64_t, Value)> finish) {
    OpBuilder &b = r.b;
    for (int64_t i = 0; i < 2; ++i) {
      auto inside = scf::IfOp::create(b, r.loc, less(row[i], rows), false);
      OpBuilder::InsertionGuard store(b);
      b.setInsertionPoint(inside.thenBlock()->getTerminator());
      for (auto [j, acc] : llvm::enumerate(accs))
        for (int64_t e = 0; e < 2; ++e) {
          int64_t c0 = int64_t(j) * 8 + e;
          if (c0 >= n)
            continue;
          Value col = add(t2, c0);
          OpBuilder::InsertionGuard column(b);
          if ((int64_t(j) + 1) * 8 > n) {
            auto within = scf::IfOp::create(b, r.loc, less(col, n), false);
            b.setInsertionPoint(within.thenBlock()->getTerminator());
          }
          Value x =
              vector::ExtractOp::create(b, r.loc, acc, ArrayRef<int64_t>{i, e});
          memref::StoreOp::create(b, r.loc, finish(i, x), buffer,
                                  r.at(prefix, row[i], col));
        }
    }
  }
};

/// Attention (`out`) or its log-sum-exp (`lse`) on tensor cores
/// (FlashAttention-2 on mma.sync m16n8k8): a block of 4 warps per 64
/// queries, each warp 16 of them, their scaled q rows as A fragments in
/// registers. Per tile of keys (staged as in forwardTiled, rows padded so
/// that fragment reads hit 32 banks) a warp computes its 16 x tile scores
/// S = Q K^T (lane g, t holds rows g and g + 8 at columns 2 t, 2 t + 1 of
/// each 8 keys), masks them, takes each row's max across the 4 lanes that
/// share it (two xor shuffles), rescales its running sums (kept per lane,
/// summed across the 4 lanes at the end) and its 16 x dv output
/// accumulators, writes P to shared memory (the accumulators' layout is
/// not the A fragments': through memory, in K's tile after a barrier, and
/// read after another) and adds P V.
void forwardMma(RowBuilder &r, Value v, Value out, Value lse, int64_t dv,
                bool split) {
  OpBuilder &b = r.b;
  Location loc = r.loc;
  OpBuilder::InsertionGuard guard(b);
  int64_t keyTile = stagedRows(r.tk, kKeyTile); // whole 16s
  int64_t dSteps = (r.d + 7) / 8, vTiles = (dv + 7) / 8, keySteps = keyTile / 8;
  BlockLoop bl(r, r.tq, 32 * WarpRows::kWarps, 1, WarpRows::kRows);
  const SmallVector<Value> &prefix = bl.prefix;
  WarpRows w(r, bl, r.tq, split);
  Tf32Mma &mma = w.mma;
  Value zero = r.f32(0.0);
  SmallVector<Tf32Mma::Fragment> qFrag =
      w.rowFragments(r.q, prefix, r.d, r.scaleValue);
  // P takes K's place once every warp has its scores (48 KB of static
  // shared memory is all a block gets: K, V and P apart need 53 KB at
  // Dh 64).
  Value sK =
      bl.shared(r, {v ? WarpRows::kRows : keyTile,
                    v ? std::max(paddedRow(r.d, 4), paddedRow(keyTile, 4))
                      : paddedRow(r.d, 4)});
  Value sV = v ? bl.shared(r, {keyTile, paddedRow(dv, 8)}) : Value();
  Value sP = sK;
  Value minusInf = r.f32(-std::numeric_limits<double>::infinity());
  Value end[2] = {r.keyEnd(w.clamped[0]), r.keyEnd(w.clamped[1])};
  SmallVector<Value> init = {minusInf, minusInf, zero, zero};
  for (int64_t n = 0; n < (v ? vTiles : 0); ++n)
    init.push_back(mma.zero());
  scf::ForOp overTiles;
  {
    OpBuilder::InsertionGuard inner(b);
    Value j0;
    std::tie(overTiles, j0) = openKeyTiles(r, bl, keyTile, sK, v, sV, dv, init);
    ValueRange state = overTiles.getRegionIterArgs();
    // S = (scale Q) K^T, 8 keys per accumulator; masked scores -inf.
    SmallVector<Value> s[2]; // per row: 2 per 8 keys
    Value tileMax[2] = {minusInf, minusInf};
    for (int64_t n = 0; n < keySteps; ++n) {
      Value acc = mma.zero();
      for (int64_t ks = 0; ks < dSteps; ++ks)
        acc = mma.mma(qFrag[ks], w.across(sK, n, ks, r.d), acc);
      for (int64_t e = 0; e < 2; ++e)
        for (int64_t i = 0; i < 2; ++i) {
          Value valid = w.key(prefix, j0, n, e, end[i]).second;
          Value x =
              vector::ExtractOp::create(b, loc, acc, ArrayRef<int64_t>{i, e});
          x = arith::SelectOp::create(b, loc, valid, x, minusInf);
          s[i].push_back(x);
          tileMax[i] = arith::MaximumFOp::create(b, loc, tileMax[i], x);
        }
    }
    SmallVector<Value> next(4);
    Value corr[2];
    for (int64_t i = 0; i < 2; ++i) {
      // A max of -inf (nothing attended yet): subtract 0 instead, so that
      // exp(-inf - m) is 0, never NaN.
      Value m =
          arith::MaximumFOp::create(b, loc, state[i], w.quadMax(tileMax[i]));
      Value none =
          arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, m, minusInf);
      Value base = arith::SelectOp::create(b, loc, none, zero, m);
      corr[i] = math::ExpOp::create(
          b, loc, arith::SubFOp::create(b, loc, state[i], base));
      Value l = arith::MulFOp::create(b, loc, state[2 + i], corr[i]);
      for (Value &x : s[i]) {
        x = math::ExpOp::create(b, loc, arith::SubFOp::create(b, loc, x, base));
        l = arith::AddFOp::create(b, loc, l, x);
      }
      next[i] = m;
      next[2 + i] = l;
    }
    if (v) {
      // P into shared memory (K's, once all warps have read it), then
      // O = O corr + P V.
      gpu::BarrierOp::create(b, loc);
      for (int64_t n = 0; n < keySteps; ++n)
        for (int64_t e = 0; e < 2; ++e)
          for (int64_t i = 0; i < 2; ++i)
            memref::StoreOp::create(
                b, loc, s[i][2 * n + e], sP,
                ValueRange{w.local[i], w.add(w.t2, n * 8 + e)});
      gpu::BarrierOp::create(b, loc);
      SmallVector<Value> o;
      for (int64_t nv = 0; nv < vTiles; ++nv) {
        Value acc = state[4 + nv];
        SmallVector<Value> scaled;
        for (int64_t i = 0; i < 2; ++i)
          for (int64_t e = 0; e < 2; ++e)
            scaled.push_back(arith::MulFOp::create(
                b, loc,
                vector::ExtractOp::create(b, loc, acc, ArrayRef<int64_t>{i, e}),
                corr[i]));
        o.push_back(vector::FromElementsOp::create(
            b, loc, llvm::cast<VectorType>(acc.getType()), scaled));
      }
      for (int64_t ks = 0; ks < keySteps; ++ks) {
        Tf32Mma::Fragment pFrag = w.fromShared(sP, ks);
        for (int64_t nv = 0; nv < vTiles; ++nv)
          o[nv] = mma.mma(pFrag, w.down(sV, ks, nv, dv), o[nv]);
      }
      llvm::append_range(next, o);
    }
    scf::YieldOp::create(b, loc, next);
  }
  ValueRange result = overTiles.getResults();
  Value l[2] = {w.quadSum(result[2]), w.quadSum(result[3])};
  if (v) {
    Value inv[2] = {r.inverseOrZero(l[0]), r.inverseOrZero(l[1])};
    w.storeRows(out, prefix, SmallVector<Value>(result.drop_front(4)), dv,
                [&](int64_t i, Value x) -> Value {
                  return arith::MulFOp::create(b, loc, x, inv[i]);
                });
  }
  if (lse)
    for (int64_t i = 0; i < 2; ++i) {
      Value first = arith::AndIOp::create(
          b, loc,
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, w.t,
                                r.idx(0)),
          w.less(w.row[i], r.tq));
      auto store = scf::IfOp::create(b, loc, first, false);
      OpBuilder::InsertionGuard inner(b);
      b.setInsertionPoint(store.thenBlock()->getTerminator());
      memref::StoreOp::create(b, loc, r.lseOf(result[i], l[i]), lse,
                              r.at(prefix, w.row[i]));
    }
}

/// The gradient's query blocks on tensor cores: delta_i = dO_i . O_i and
/// dQ_i = scale sum_j dS_ij k_j, 4 warps per 64 queries as in forwardMma,
/// the lane's scaled q rows and dO rows as A fragments. Per tile of 32 keys
/// (K and V staged, both read across: rows padded 4 mod 8) S = Q K^T and
/// dP = dO V^T on mma.sync, P = exp(S - lse) (0 where not attended), dS =
/// scale P (dP - delta) into shared memory; after a barrier dQ += dS K on
/// mma.sync (K read down). 32 keys keep K, V and dS in 27 KB at Dh 64.
void dqMma(RowBuilder &r, Value v, Value lse, Value dout, Value out, Value dq,
           Value delta, int64_t dv, bool split) {
  OpBuilder &b = r.b;
  Location loc = r.loc;
  OpBuilder::InsertionGuard guard(b);
  int64_t keyTile = std::min<int64_t>(32, stagedRows(r.tk, kKeyTile));
  int64_t keySteps = keyTile / 8, dSteps = (r.d + 7) / 8;
  BlockLoop bl(r, r.tq, 32 * WarpRows::kWarps, 1, WarpRows::kRows);
  const SmallVector<Value> &prefix = bl.prefix;
  WarpRows w(r, bl, r.tq, split);
  Tf32Mma &mma = w.mma;
  SmallVector<Tf32Mma::Fragment> qFrag =
      w.rowFragments(r.q, prefix, r.d, r.scaleValue);
  SmallVector<Tf32Mma::Fragment> doFrag =
      w.rowFragments(dout, prefix, dv, Value());
  // The lane's rows' delta (its columns t, t + 4, ..., summed across the
  // quad) and lse.
  Value deltaRow[2], lseRow[2], end[2];
  for (int64_t i = 0; i < 2; ++i) {
    SmallVector<Value> lead(prefix.begin(), prefix.end());
    lead.push_back(w.clamped[i]);
    Value partial = r.f32(0.0);
    for (int64_t c = 0; c < dv; c += 4) {
      bool past = c + 4 > dv;
      Value col = w.add(w.t, c);
      partial =
          math::FmaOp::create(b, loc, w.loadPadded(dout, lead, col, dv, past),
                              w.loadPadded(out, lead, col, dv, past), partial);
    }
    deltaRow[i] = w.quadSum(partial);
    lseRow[i] = r.load(lse, r.at(prefix, w.clamped[i]));
    end[i] = r.keyEnd(w.clamped[i]);
  }
  Value sK = bl.shared(r, {keyTile, paddedRow(r.d, 4)});
  Value sV = bl.shared(r, {keyTile, paddedRow(dv, 4)});
  Value sDS = bl.shared(r, {WarpRows::kRows, paddedRow(keyTile, 4)});
  SmallVector<Value> init(dSteps, mma.zero());
  scf::ForOp overTiles;
  {
    OpBuilder::InsertionGuard inner(b);
    Value j0;
    std::tie(overTiles, j0) = openKeyTiles(r, bl, keyTile, sK, v, sV, dv, init);
    for (int64_t n = 0; n < keySteps; ++n) {
      Value s = mma.zero(), dp = mma.zero();
      for (int64_t ks = 0; ks < dSteps; ++ks)
        s = mma.mma(qFrag[ks], w.across(sK, n, ks, r.d), s);
      for (int64_t ks = 0; ks < int64_t(doFrag.size()); ++ks)
        dp = mma.mma(doFrag[ks], w.across(sV, n, ks, dv), dp);
      for (int64_t i = 0; i < 2; ++i)
        for (int64_t e = 0; e < 2; ++e) {
          Value valid = w.key(prefix, j0, n, e, end[i]).second;
          auto element = [&](Value acc) -> Value {
            return vector::ExtractOp::create(b, loc, acc,
                                             ArrayRef<int64_t>{i, e});
          };
          Value ds = arith::MulFOp::create(
              b, loc,
              r.dScore(r.probability(valid, element(s), lseRow[i]), element(dp),
                       deltaRow[i]),
              r.scaleValue);
          memref::StoreOp::create(
              b, loc, ds, sDS, ValueRange{w.local[i], w.add(w.t2, n * 8 + e)});
        }
    }
    gpu::BarrierOp::create(b, loc);
    SmallVector<Value> acc(overTiles.getRegionIterArgs());
    for (int64_t ks = 0; ks < keySteps; ++ks) {
      Tf32Mma::Fragment dsFrag = w.fromShared(sDS, ks);
      for (int64_t j = 0; j < dSteps; ++j)
        acc[j] = mma.mma(dsFrag, w.down(sK, ks, j, r.d), acc[j]);
    }
    scf::YieldOp::create(b, loc, acc);
  }
  w.storeRows(dq, prefix, SmallVector<Value>(overTiles.getResults()), r.d,
              [](int64_t, Value x) { return x; });
  for (int64_t i = 0; i < 2; ++i) {
    Value first = arith::AndIOp::create(
        b, loc,
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, w.t, r.idx(0)),
        w.less(w.row[i], r.tq));
    auto store = scf::IfOp::create(b, loc, first, false);
    OpBuilder::InsertionGuard inner(b);
    b.setInsertionPoint(store.thenBlock()->getTerminator());
    memref::StoreOp::create(b, loc, deltaRow[i], delta, r.at(prefix, w.row[i]));
  }
}

/// The gradient's key blocks on tensor cores: dV_j = sum_i P_ij dO_i
/// (forDK false) or dK_j = sum_i dS_ij (scale q_i), 4 warps per 64 keys,
/// the lane's k rows (and for dK its v rows) as A fragments. Per tile of
/// 32 queries, from the first that attends the block's first key (scaled
/// Q, dO, lse and delta staged, rows read across and down): S^T = K (scale
/// Q)^T on mma.sync, P^T = exp(S^T - lse) (0 where not attended or past
/// Tq), for dK dP^T = V dO^T on mma.sync and dS^T = P^T (dP^T - delta);
/// the weights through shared memory, then the accumulators += weights x
/// dO (or scale Q) on mma.sync.
void keyBlocksMma(RowBuilder &r, Value v, Value lse, Value dout, Value delta,
                  Value result, int64_t dv, bool forDK, bool split) {
  OpBuilder &b = r.b;
  Location loc = r.loc;
  OpBuilder::InsertionGuard guard(b);
  int64_t queryTile = std::min<int64_t>(32, stagedRows(r.tq, kQueryTile));
  int64_t qSteps = queryTile / 8, n = forDK ? r.d : dv;
  BlockLoop bl(r, r.tk, 32 * WarpRows::kWarps, 1, WarpRows::kRows);
  const SmallVector<Value> &prefix = bl.prefix;
  WarpRows w(r, bl, r.tk, split);
  Tf32Mma &mma = w.mma;
  SmallVector<Tf32Mma::Fragment> kFrag =
      w.rowFragments(r.k, prefix, r.d, Value());
  SmallVector<Tf32Mma::Fragment> vFrag;
  if (forDK)
    vFrag = w.rowFragments(v, prefix, dv, Value());
  Value attended[2];
  for (int64_t i = 0; i < 2; ++i)
    attended[i] = r.mask ? r.attended(prefix, w.clamped[i]) : Value();
  Value sQ = bl.shared(r, {queryTile, paddedRow(r.d, 4)});
  Value sDO = bl.shared(r, {queryTile, paddedRow(dv, 4)});
  Value sL = bl.shared(r, {queryTile});
  Value sD = forDK ? bl.shared(r, {queryTile}) : Value();
  Value sW = bl.shared(r, {WarpRows::kRows, paddedRow(queryTile, 4)});
  SmallVector<Value> init((n + 7) / 8, mma.zero());
  scf::ForOp overTiles;
  {
    OpBuilder::InsertionGuard inner(b);
    overTiles = openQueryTiles(r, bl, queryTile, sQ, dout, sDO, dv, lse, sL,
                               delta, sD, init);
    Value i0 = arith::MulIOp::create(b, loc, overTiles.getInductionVar(),
                                     r.idx(queryTile));
    for (int64_t nq = 0; nq < qSteps; ++nq) {
      Value st = mma.zero(), dpt;
      for (int64_t ks = 0; ks < int64_t(kFrag.size()); ++ks)
        st = mma.mma(kFrag[ks], w.across(sQ, nq, ks, r.d), st);
      if (forDK) {
        dpt = mma.zero();
        for (int64_t ks = 0; ks < int64_t(vFrag.size()); ++ks)
          dpt = mma.mma(vFrag[ks], w.across(sDO, nq, ks, dv), dpt);
      }
      for (int64_t e = 0; e < 2; ++e) {
        Value ql = w.add(w.t2, nq * 8 + e);
        Value query = arith::AddIOp::create(b, loc, i0, ql);
        Value end =
            r.keyEnd(arith::MinUIOp::create(b, loc, query, r.idx(r.tq - 1)));
        Value lseQ = memref::LoadOp::create(b, loc, sL, ValueRange{ql});
        Value deltaQ =
            forDK
                ? memref::LoadOp::create(b, loc, sD, ValueRange{ql}).getResult()
                : Value();
        for (int64_t i = 0; i < 2; ++i) {
          Value valid = arith::AndIOp::create(
              b, loc, w.less(query, r.tq),
              arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                    w.clamped[i], end));
          if (attended[i])
            valid = arith::AndIOp::create(b, loc, valid, attended[i]);
          auto element = [&](Value acc) -> Value {
            return vector::ExtractOp::create(b, loc, acc,
                                             ArrayRef<int64_t>{i, e});
          };
          Value weight = r.probability(valid, element(st), lseQ);
          if (forDK)
            weight = r.dScore(weight, element(dpt), deltaQ);
          memref::StoreOp::create(b, loc, weight, sW,
                                  ValueRange{w.local[i], ql});
        }
      }
    }
    gpu::BarrierOp::create(b, loc);
    SmallVector<Value> acc(overTiles.getRegionIterArgs());
    Value rows = forDK ? sQ : sDO;
    for (int64_t ks = 0; ks < qSteps; ++ks) {
      Tf32Mma::Fragment wFrag = w.fromShared(sW, ks);
      for (int64_t j = 0; j < int64_t(acc.size()); ++j)
        acc[j] = mma.mma(wFrag, w.down(rows, ks, j, n), acc[j]);
    }
    scf::YieldOp::create(b, loc, acc);
  }
  w.storeRows(result, prefix, SmallVector<Value>(overTiles.getResults()), n,
              [](int64_t, Value x) { return x; });
}

/// Columns of a gradient accumulator per block of the gradient kernels
/// (wider rows are split over blocks, each recomputing P and dS: with the
/// rows a thread holds, a whole 64-float accumulator would spill).
constexpr int64_t kGradColumns = 32;

/// The gradient (FlashAttention-2's backward, rows of at most 64) as three
/// block-tiled kernels, each thread's rows and accumulator in registers,
/// P = exp(S - lse) recomputed (0 past the causal bound or the mask) and
/// dS = P (dO . v - delta):
/// - query blocks (K and V tiles staged as in the forward): delta_i =
///   dO_i . O_i and dQ_i = scale * sum_j dS_ij k_j, from the thread's
///   scaled q row and dO row; the dQ columns split into slices of at most
///   kGradColumns, a block per slice;
/// - key blocks for dV_j = sum_i P_ij dO_i (the thread's k row), and key
///   blocks for dK_j = sum_i dS_ij (scale q_i) (its k and v rows, dK in
///   slices), both staging tiles of scaled Q, dO, lse and delta, from the
///   tile of the first query that attends the block's first key.
void gradTiled(RowBuilder &r, Value v, Value lse, Value dout, Value out,
               Value dq, Value dk, Value dvBuf, Value delta, int64_t dv,
               TensorCores tc) {
  OpBuilder &b = r.b;
  Location loc = r.loc;
  auto less = [&](Value x, Value y) {
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, x, y);
  };
  auto parts = [](int64_t n) { return (n + kGradColumns - 1) / kGradColumns; };
  /// Column `u` of slice `part` of a row of n split into `count` slices,
  /// clamped to the row, and whether it is inside.
  auto sliceColumn = [&](Value part, int64_t u, int64_t n, int64_t count) {
    int64_t width = (n + count - 1) / count;
    Value c = arith::AddIOp::create(
        b, loc, arith::MulIOp::create(b, loc, part, r.idx(width)), r.idx(u));
    return std::make_pair(
        arith::MinUIOp::create(b, loc, c, r.idx(n - 1)).getResult(),
        less(c, r.idx(n)).getResult());
  };
  using Columns = SmallVector<std::pair<Value, Value>>;
  auto sliceColumns = [&](Value part, int64_t n, int64_t count) {
    Columns columns;
    for (int64_t u = 0; u < (n + count - 1) / count; ++u)
      columns.push_back(sliceColumn(part, u, n, count));
    return columns;
  };
  /// values[u] into buffer[prefix, row, columns[u]], skipping columns past
  /// the row (when the slices do not divide it).
  auto storeSlice = [&](ValueRange values, const Columns &columns, bool partial,
                        Value buffer, ValueRange prefix, Value row) {
    for (auto [value, column] : llvm::zip(values, columns)) {
      OpBuilder::InsertionGuard inner(b);
      if (partial) {
        auto check =
            scf::IfOp::create(b, loc, column.second, /*withElse=*/false);
        b.setInsertionPoint(check.thenBlock()->getTerminator());
      }
      memref::StoreOp::create(b, loc, value, buffer,
                              r.at(prefix, row, column.first));
    }
  };
  // Query blocks: delta and dQ.
  if (tc.on)
    dqMma(r, v, lse, dout, out, dq, delta, dv, tc.split);
  else {
    OpBuilder::InsertionGuard guard(b);
    int64_t keyTile = stagedRows(r.tk, kKeyTile);
    int64_t slices = parts(r.d);
    BlockLoop bl(r, r.tq, blockThreads(r.tq, kQueryTile), slices);
    const SmallVector<Value> &prefix = bl.prefix;
    Value sK = bl.shared(r, {keyTile, r.d});
    Value sV = bl.shared(r, {keyTile, dv});
    SmallVector<Value> qRow = r.loadRow(r.q, prefix, bl.clamped, r.d);
    for (Value &x : qRow)
      x = arith::MulFOp::create(b, loc, x, r.scaleValue);
    SmallVector<Value> doRow = r.loadRow(dout, prefix, bl.clamped, dv);
    Value deltaI = r.dot(dout, prefix, bl.clamped, out, bl.clamped, dv);
    Value lseI = r.load(lse, r.at(prefix, bl.clamped));
    Value end = r.keyEnd(bl.clamped);
    Columns columns = sliceColumns(bl.part, r.d, slices);
    SmallVector<Value> zeros(columns.size(), r.f32(0.0));
    scf::ForOp overTiles;
    {
      OpBuilder::InsertionGuard inner(b);
      Value j0;
      std::tie(overTiles, j0) =
          openKeyTiles(r, bl, keyTile, sK, v, sV, dv, zeros);
      scf::ForOp keys = openFor(r, r.idx(0), r.idx(keyTile), 1,
                                overTiles.getRegionIterArgs());
      Value jl = keys.getInductionVar();
      Value key = arith::AddIOp::create(b, loc, j0, jl);
      Value valid = less(key, end);
      if (r.mask)
        valid = arith::AndIOp::create(
            b, loc, valid,
            r.attended(prefix,
                       arith::MinUIOp::create(b, loc, key, r.idx(r.tk - 1))));
      Value s = dotShared(r, qRow, sK, jl);
      Value p = r.probability(valid, s, lseI);
      Value dp = dotShared(r, doRow, sV, jl);
      Value w =
          arith::MulFOp::create(b, loc, r.dScore(p, dp, deltaI), r.scaleValue);
      SmallVector<Value> acc;
      for (auto [u, a] : llvm::enumerate(keys.getRegionIterArgs()))
        acc.push_back(math::FmaOp::create(
            b, loc, w,
            memref::LoadOp::create(b, loc, sK,
                                   ValueRange{jl, columns[u].first}),
            a));
      scf::YieldOp::create(b, loc, acc);
      b.setInsertionPointAfter(keys);
      scf::YieldOp::create(b, loc, keys.getResults());
    }
    auto store = scf::IfOp::create(b, loc, less(bl.row, r.idx(r.tq)),
                                   /*withElse=*/false);
    b.setInsertionPoint(store.thenBlock()->getTerminator());
    // (Every slice computed delta; the first stores it.)
    auto first = scf::IfOp::create(
        b, loc,
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, bl.part,
                              r.idx(0)),
        /*withElse=*/false);
    {
      OpBuilder::InsertionGuard inner(b);
      b.setInsertionPoint(first.thenBlock()->getTerminator());
      memref::StoreOp::create(b, loc, deltaI, delta, r.at(prefix, bl.row));
    }
    storeSlice(overTiles.getResults(), columns, r.d % slices, dq, prefix,
               bl.row);
  }
  // Key blocks: dV (forDK false) or dK.
  auto keyBlocks = [&](bool forDK) {
    OpBuilder::InsertionGuard guard(b);
    int64_t queryTile = stagedRows(r.tq, kQueryTile);
    int64_t n = forDK ? r.d : dv;
    int64_t slices = forDK ? parts(n) : 1;
    BlockLoop bl(r, r.tk, blockThreads(r.tk, kKeyTile), slices);
    const SmallVector<Value> &prefix = bl.prefix;
    Value sQ = bl.shared(r, {queryTile, r.d});
    Value sDO = bl.shared(r, {queryTile, dv});
    Value sL = bl.shared(r, {queryTile});
    Value sD = forDK ? bl.shared(r, {queryTile}) : Value();
    SmallVector<Value> kRow = r.loadRow(r.k, prefix, bl.clamped, r.d);
    SmallVector<Value> vRow;
    if (forDK)
      vRow = r.loadRow(v, prefix, bl.clamped, dv);
    Value attended = r.mask ? r.attended(prefix, bl.clamped) : Value();
    Columns columns = sliceColumns(bl.part, n, slices);
    SmallVector<Value> zeros(columns.size(), r.f32(0.0));
    scf::ForOp overTiles;
    {
      OpBuilder::InsertionGuard inner(b);
      overTiles = openQueryTiles(r, bl, queryTile, sQ, dout, sDO, dv, lse, sL,
                                 delta, sD, zeros);
      Value i0 = arith::MulIOp::create(b, loc, overTiles.getInductionVar(),
                                       r.idx(queryTile));
      scf::ForOp queries = openFor(r, r.idx(0), r.idx(queryTile), 1,
                                   overTiles.getRegionIterArgs());
      Value il = queries.getInductionVar();
      Value query = arith::AddIOp::create(b, loc, i0, il);
      Value valid = arith::AndIOp::create(
          b, loc, less(query, r.idx(r.tq)),
          less(bl.row, r.keyEnd(arith::MinUIOp::create(b, loc, query,
                                                       r.idx(r.tq - 1)))));
      if (attended)
        valid = arith::AndIOp::create(b, loc, valid, attended);
      Value s = dotShared(r, kRow, sQ, il);
      Value lseI = memref::LoadOp::create(b, loc, sL, ValueRange{il});
      Value weight = r.probability(valid, s, lseI);
      if (forDK) // dS = P (dO_i . v_j - delta_i).
        weight = r.dScore(weight, dotShared(r, vRow, sDO, il),
                          memref::LoadOp::create(b, loc, sD, ValueRange{il}));
      Value rows = forDK ? sQ : sDO;
      SmallVector<Value> next;
      for (auto [u, a] : llvm::enumerate(queries.getRegionIterArgs()))
        next.push_back(math::FmaOp::create(
            b, loc, weight,
            memref::LoadOp::create(b, loc, rows,
                                   ValueRange{il, columns[u].first}),
            a));
      scf::YieldOp::create(b, loc, next);
      b.setInsertionPointAfter(queries);
      scf::YieldOp::create(b, loc, queries.getResults());
    }
    auto store = scf::IfOp::create(b, loc, less(bl.row, r.idx(r.tk)),
                                   /*withElse=*/false);
    b.setInsertionPoint(store.thenBlock()->getTerminator());
    storeSlice(overTiles.getResults(), columns, n % slices, forDK ? dk : dvBuf,
               prefix, bl.row);
  };
  if (tc.on) {
    keyBlocksMma(r, v, lse, dout, delta, dvBuf, dv, /*forDK=*/false, tc.split);
    keyBlocksMma(r, v, lse, dout, delta, dk, dv, /*forDK=*/true, tc.split);
    return;
  }
  keyBlocks(/*forDK=*/false);
  keyBlocks(/*forDK=*/true);
}

LogicalResult lowerForward(loom::AttentionOp op, TensorCores tc) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  auto q = bufferOf(op, op.getQ()), k = bufferOf(op, op.getK()),
       v = bufferOf(op, op.getV());
  if (failed(q) || failed(k) || failed(v))
    return failure();
  auto mask = maskOf(op, op.getKeyMask());
  if (failed(mask))
    return failure();
  auto [out, result] = newBuffer(b, loc, op.getType());
  RowBuilder r(b, loc, *q, *k, *mask, op.getCausal(), op.getScale());
  int64_t dv = llvm::cast<MemRefType>(out.getType()).getShape().back();
  if (r.d <= kRegisterRow && dv <= kRegisterRow) {
    if (tc.on)
      forwardMma(r, *v, out, Value(), dv, tc.split);
    else
      forwardTiled(r, *v, out, Value(), dv);
    op.getResult().replaceAllUsesWith(result);
    op.erase();
    return success();
  }
  r.overRows(r.tq, [&](ValueRange prefix, Value i) {
    r.updateRow(out, prefix, i, dv,
                [&](Value, Value) -> Value { return r.f32(0.0); });
    auto [m, l] = r.onlineSoftmax(prefix, i, [&](Value j, Value p, Value corr) {
      r.updateRow(out, prefix, i, dv, [&](Value c, Value old) -> Value {
        Value x = r.load(*v, r.at(prefix, j, c));
        return arith::AddFOp::create(b, loc,
                                     arith::MulFOp::create(b, loc, old, corr),
                                     arith::MulFOp::create(b, loc, p, x));
      });
    });
    (void)m;
    Value inv = r.inverseOrZero(l);
    r.updateRow(out, prefix, i, dv, [&](Value, Value old) -> Value {
      return arith::MulFOp::create(b, loc, old, inv);
    });
  });
  op.getResult().replaceAllUsesWith(result);
  op.erase();
  return success();
}

LogicalResult lowerLse(loom::AttentionLseOp op, TensorCores tc) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  auto q = bufferOf(op, op.getQ()), k = bufferOf(op, op.getK());
  if (failed(q) || failed(k))
    return failure();
  auto mask = maskOf(op, op.getKeyMask());
  if (failed(mask))
    return failure();
  auto [lse, result] = newBuffer(b, loc, op.getType());
  RowBuilder r(b, loc, *q, *k, *mask, op.getCausal(), op.getScale());
  if (r.d <= kRegisterRow) {
    if (tc.on)
      forwardMma(r, Value(), Value(), lse, 0, tc.split);
    else
      forwardTiled(r, Value(), Value(), lse, 0);
    op.getResult().replaceAllUsesWith(result);
    op.erase();
    return success();
  }
  r.overRows(r.tq, [&](ValueRange prefix, Value i) {
    auto [m, l] = r.onlineSoftmax(prefix, i);
    memref::StoreOp::create(b, loc, r.lseOf(m, l), lse, r.at(prefix, i));
  });
  op.getResult().replaceAllUsesWith(result);
  op.erase();
  return success();
}

LogicalResult lowerGrad(loom::AttentionGradOp op, TensorCores tc) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  auto q = bufferOf(op, op.getQ()), k = bufferOf(op, op.getK()),
       v = bufferOf(op, op.getV()), out = bufferOf(op, op.getOut()),
       lse = bufferOf(op, op.getLse()), dout = bufferOf(op, op.getDOut());
  if (failed(q) || failed(k) || failed(v) || failed(out) || failed(lse) ||
      failed(dout))
    return failure();
  auto mask = maskOf(op, op.getKeyMask());
  if (failed(mask))
    return failure();
  auto [dq, dqTensor] = newBuffer(b, loc, op.getDQ().getType());
  auto [dk, dkTensor] = newBuffer(b, loc, op.getDK().getType());
  auto [dvBuf, dvTensor] = newBuffer(b, loc, op.getDV().getType());
  auto lseType = llvm::cast<MemRefType>(lse->getType());
  Value delta = memref::AllocOp::create(
      b, loc, MemRefType::get(lseType.getShape(), b.getF32Type()));
  RowBuilder r(b, loc, *q, *k, *mask, op.getCausal(), op.getScale());
  int64_t dv = llvm::cast<MemRefType>(v->getType()).getShape().back();
  // dS[i, j] = P (dP - delta_i), P = exp(S - lse_i), dP = dO_i . v_j.
  auto dS = [&](ValueRange prefix, Value i, Value j, Value deltaI, Value p) {
    return r.dScore(p, r.dot(*dout, prefix, i, *v, j, dv), deltaI);
  };
  auto prob = [&](ValueRange prefix, Value i, Value j) {
    Value lseI = r.load(*lse, r.at(prefix, i));
    return math::ExpOp::create(
        b, loc, arith::SubFOp::create(b, loc, r.score(prefix, i, j), lseI));
  };
  if (r.d <= kRegisterRow && dv <= kRegisterRow) {
    gradTiled(r, *v, *lse, *dout, *out, dq, dk, dvBuf, delta, dv, tc);
  } else {
    // Per query row: delta_i, then dQ_i = scale * sum_j dS[i, j] k_j.
    r.overRows(r.tq, [&](ValueRange prefix, Value i) {
      Value deltaI = r.dot(*dout, prefix, i, *out, i, dv);
      memref::StoreOp::create(b, loc, deltaI, delta, r.at(prefix, i));
      r.updateRow(dq, prefix, i, r.d,
                  [&](Value, Value) -> Value { return r.f32(0.0); });
      r.overKeys(
          prefix, r.keyEnd(i), ValueRange{},
          [&](Value j, ValueRange) -> SmallVector<Value> {
            Value ds = dS(prefix, i, j, deltaI, prob(prefix, i, j));
            Value w = arith::MulFOp::create(b, loc, ds, r.scaleValue);
            r.updateRow(dq, prefix, i, r.d, [&](Value c, Value old) -> Value {
              Value x = r.load(*k, r.at(prefix, j, c));
              return arith::AddFOp::create(b, loc, old,
                                           arith::MulFOp::create(b, loc, w, x));
            });
            return {};
          });
    });
    // Per key row: dV_j = sum_i P[i, j] dO_i, dK_j = scale * sum_i dS q_i.
    r.overRows(r.tk, [&](ValueRange prefix, Value j) {
      r.updateRow(dk, prefix, j, r.d,
                  [&](Value, Value) -> Value { return r.f32(0.0); });
      r.updateRow(dvBuf, prefix, j, dv,
                  [&](Value, Value) -> Value { return r.f32(0.0); });
      auto check = scf::IfOp::create(b, loc, r.attended(prefix, j), false);
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPoint(check.thenBlock()->getTerminator());
      auto loop =
          scf::ForOp::create(b, loc, r.queryBegin(j), r.idx(r.tq), r.idx(1));
      b.setInsertionPoint(loop.getBody()->getTerminator());
      Value i = loop.getInductionVar();
      Value p = prob(prefix, i, j);
      Value deltaI = r.load(delta, r.at(prefix, i));
      Value ds = dS(prefix, i, j, deltaI, p);
      Value w = arith::MulFOp::create(b, loc, ds, r.scaleValue);
      r.updateRow(dvBuf, prefix, j, dv, [&](Value c, Value old) -> Value {
        Value x = r.load(*dout, r.at(prefix, i, c));
        return arith::AddFOp::create(b, loc, old,
                                     arith::MulFOp::create(b, loc, p, x));
      });
      r.updateRow(dk, prefix, j, r.d, [&](Value c, Value old) -> Value {
        Value x = r.load(*q, r.at(prefix, i, c));
        return arith::AddFOp::create(b, loc, old,
                                     arith::MulFOp::create(b, loc, w, x));
      });
    });
  }
  op.getDQ().replaceAllUsesWith(dqTensor);
  op.getDK().replaceAllUsesWith(dkTensor);
  op.getDV().replaceAllUsesWith(dvTensor);
  op.erase();
  return success();
}

struct LoomGpuAttention
    : public loom::nvptx::impl::LoomGpuAttentionBase<LoomGpuAttention> {
  using Base::Base;

  void runOnOperation() override {
    if (!loom::isTensorCoreMode(tensorCores)) {
      getOperation().emitError("loom-gpu-attention: tensor-cores must be ")
          << loom::kTensorCoreModes << ", got '" << tensorCores << "'";
      return signalPassFailure();
    }
    // (bf16 is for the contractions; attention's products then take tf32,
    // the nearest precision its m16n8k8 kernels have.)
    TensorCores tc{tensorCores != "none", tensorCores == "3xtf32"};
    SmallVector<Operation *> ops;
    getOperation().walk([&](Operation *op) {
      if (llvm::isa<loom::AttentionOp, loom::AttentionLseOp,
                    loom::AttentionGradOp>(op))
        ops.push_back(op);
    });
    for (Operation *op : ops) {
      LogicalResult done =
          llvm::TypeSwitch<Operation *, LogicalResult>(op)
              .Case([&](loom::AttentionOp a) { return lowerForward(a, tc); })
              .Case([&](loom::AttentionLseOp a) { return lowerLse(a, tc); })
              .Case([&](loom::AttentionGradOp a) { return lowerGrad(a, tc); });
      if (failed(done))
        return signalPassFailure();
    }
  }
};

} // namespace
