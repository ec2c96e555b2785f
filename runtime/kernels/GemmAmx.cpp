//===- GemmAmx.cpp - f32 GEMM on AMX tiles, each operand as three bf16 ----===//
//
// An f32 product on the matrix unit of Sapphire Rapids and later (AMX-BF16)
// with the accuracy of f32 arithmetic. Each f32 value splits exactly into
// three bf16 parts, x = h + m + l (h: x rounded to bf16, m: x - h rounded
// to bf16, l = x - h - m, which is a bf16: 8 significant bits each, 24 in
// all, f32's mantissa), and
//
//   A B = Ah Bh + Ah Bm + Am Bh + Ah Bl + Am Bm + Al Bh  (+ terms < 2^-24)
//
// six bf16 products accumulated in f32 by TDPBF16PS (a bf16 product is exact
// in f32; the sums round as f32 FMAs do). The three dropped terms (Am Bl, Al
// Bm, Al Bl) are below 2^-24 of |A| |B|, under f32's own rounding of each
// step. One TDPBF16PS is 16 x 16 x 32 multiply-adds in 16 cycles, 16 times
// the two AVX-512 FMA ports: six of them still do an f32 product's work in
// 6/16 of the time the FMA kernel needs at its peak.
//
// What differs from the FMA kernel: inputs below 2^-126 (f32 subnormals) and
// parts below it count as zero (TDPBF16PS flushes them);
// an infinite input gives NaN where f32 arithmetic could give an infinity
// (its part m is inf - inf); a finite input above bf16's largest, 3.39e38,
// overflows. A model's activations and weights are nowhere near these.
// LOOM_GEMM_AMX=0 turns the path off (GemmIsa.cpp's FMA kernels then run).
//
// Register tiles: C is a 32 x 32 block in tmm0-3 (four 16 x 16 f32 tiles),
// A's 32 rows x 32 depths in tmm4-5, B's 32 depths x 32 columns in tmm6-7
// (VNNI: row q of a B tile holds pairs B(q', j), B(q' + 16, j) of the
// chunk's depths, A's lanes pair the same depths). Per 32
// depths the kernel loads each of A's three parts once and B's parts for
// each product: 18 tile loads (12 KB from L2, the rest again from L1) for
// 24 TDPBF16PS.
//
// Loop nest (per thread; GemmTeam.h shares a team's work): for jc < N step
// NC, pc < K step KC: pack B's panel [KC x NC] (up to 6 MB, mostly in L3);
// for ic < M step MC: pack A's block [MC x KC] (up to 768 KB, in L2); for
// jr < NC step 32: (B's sliver [KC x 32], fetched into L2 during the
// previous sliver's calls) for ir < MC step 32: the kernel. Both slivers
// stream from L2, which feeds tile loads at the ~32 bytes a cycle this
// needs. The depth block is deep (512) because each call loads and stores
// its C tiles: per 128 depths that took a third of the time. What is packed
// next (the next A block, the next B panel) is fetched into L2 while the
// current block's calls run.
//
// Measured on Sapphire Rapids (1 thread, fma_peak 240 GFLOP/s): 1024^3
// 6.5-7.3 ms (295-330 GFLOP/s; the FMA kernel 10.0-11, PyTorch 10.1-11),
// 2048x3072x768 31-34 ms, 256x3072x768 4.7-5.0 ms (packing a fifth of it).
// bench/README.md (fifteenth session) has what was tried.
//
//===----------------------------------------------------------------------===//

#include "runtime/kernels/GemmAmx.h"
#include "runtime/kernels/Epilogue.h"
#include "runtime/kernels/GemmTeam.h"
#include "runtime/kernels/Scratch.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <utility>

#include <sys/syscall.h>
#include <unistd.h>

namespace loom::kernels::amx {
namespace {

constexpr int64_t KC = 512; // depths per block
// A depth up to this is one block (no second pass over C).
constexpr int64_t kWholeDepth = 768;
constexpr int64_t kBlockBytesA = int64_t(768) << 10; // A block, in L2
constexpr int64_t kPanelBytesB = int64_t(6) << 20;   // B panel
constexpr int64_t kTile = 512; // bf16 per tile (16 rows x 64 bytes)
// One 32-deep chunk of a 32-row (or 32-column) sliver: 3 parts x 2 tiles.
constexpr int64_t kChunk = 6 * kTile;

typedef uint32_t u32x16 __attribute__((ext_vector_type(16)));

/// 16 floats as three parts h + m + l == x, each an f32 whose low 16 bits
/// are zero (a bf16 in the high half): h is x rounded to bf16 (half away
/// from zero, in the bits), m the rest rounded likewise, l what remains,
/// which has at most 8 significant bits and so is a bf16 exactly. Integer
/// and FP adds only: the conversion instructions (VCVTNEPS2BF16 and the
/// widening back) held the packing on one port.
inline void split(__m512 x, __m512i parts[3]) {
  const __m512i half = _mm512_set1_epi32(0x8000);
  const __m512i high = _mm512_set1_epi32(int32_t(0xffff0000u));
  __m512i h =
      _mm512_and_si512(_mm512_add_epi32(_mm512_castps_si512(x), half), high);
  __m512 r = _mm512_sub_ps(x, _mm512_castsi512_ps(h));
  __m512i m =
      _mm512_and_si512(_mm512_add_epi32(_mm512_castps_si512(r), half), high);
  __m512 l = _mm512_sub_ps(r, _mm512_castsi512_ps(m));
  parts[0] = h;
  parts[1] = m;
  // l's low half is zero unless l is an f32 subnormal (x below ~2^-110):
  // masked, such an l cannot leak into the depth it is paired with, and
  // becomes the bf16 subnormal or zero that TDPBF16PS flushes anyway.
  parts[2] = _mm512_and_si512(_mm512_castps_si512(l), high);
}

/// The bf16 pairs of two depths, lane by lane: `first`'s (the depth q of a
/// 32-deep chunk) in the low half, `second`'s (depth q + 16) in the high
/// one. Which two depths share a lane does not change the sum as long as A
/// and B pair them alike; q with q + 16 costs a shift and a blend.
inline u32x16 pairUp(__m512i first, __m512i second) {
  // (first >> 16) | (second & 0xffff0000): second's low half is zero.
  return (u32x16)_mm512_or_si512(_mm512_srli_epi32(first, 16), second);
}

// A 16 x 16 transpose of 32-bit lanes in four levels: at level B, rows i
// and i + B (i without bit B) swap their off-diagonal blocks of B lanes.
template <int B, size_t... J>
inline u32x16 keepLow(u32x16 x, u32x16 y, std::index_sequence<J...>) {
  return __builtin_shufflevector(x, y, ((J & B) ? 16 + J - B : J)...);
}
template <int B, size_t... J>
inline u32x16 keepHigh(u32x16 x, u32x16 y, std::index_sequence<J...>) {
  return __builtin_shufflevector(x, y, ((J & B) ? 16 + J : J + B)...);
}
template <int B> inline void swapLevel(u32x16 r[16]) {
  for (int i = 0; i < 16; ++i)
    if (!(i & B)) {
      u32x16 x = r[i], y = r[i + B];
      r[i] = keepLow<B>(x, y, std::make_index_sequence<16>());
      r[i + B] = keepHigh<B>(x, y, std::make_index_sequence<16>());
    }
}
inline void transpose16(u32x16 r[16]) {
  swapLevel<8>(r);
  swapLevel<4>(r);
  swapLevel<2>(r);
  swapLevel<1>(r);
}

inline void storeTile(uint16_t *dst, const u32x16 r[16]) {
  for (int i = 0; i < 16; ++i)
    std::memcpy(dst + 32 * i, &r[i], 64);
}

/// One 16 x 32 block of an operand, X(r, p) = x[r * rStride + p * pStride]
/// for r < rows, p < depth (zero beyond), written as three tiles (parts h,
/// m, l at dst, dst + 2 kTile, dst + 4 kTile): for A (`vnni` false) lane q
/// of tile row r holds X(r, q) and X(r, q + 16); for B (`vnni`) lane j of
/// tile row q holds X(j, q) and X(j, q + 16) (r is B's column j).
void packBlock(const float *x, int64_t rStride, int64_t pStride, int64_t rows,
               int64_t depth, bool vnni, uint16_t *dst) {
  u32x16 t[3][16];
  bool whole = rows == 16 && depth == 32;
  if (whole && (pStride == 1 || rStride != 1)) {
    if (pStride != 1) {
      // Neither stride is 1: gather into a contiguous block first.
      alignas(64) float block[16][32];
      for (int r = 0; r < 16; ++r)
        for (int p = 0; p < 32; ++p)
          block[r][p] = x[r * rStride + p * pStride];
      return packBlock(&block[0][0], 32, 1, 16, 32, vnni, dst);
    }
    // Rows contiguous in depth: row r's depths q and q + 16 pair up.
    for (int r = 0; r < 16; ++r) {
      __m512i first[3], second[3];
      split(_mm512_loadu_ps(x + r * rStride), first);
      split(_mm512_loadu_ps(x + r * rStride + 16), second);
      for (int s = 0; s < 3; ++s)
        t[s][r] = pairUp(first[s], second[s]);
    }
    if (vnni)
      for (int s = 0; s < 3; ++s)
        transpose16(t[s]);
  } else if (whole) {
    // Columns contiguous (rStride 1): depths q and q + 16 pair up.
    for (int q = 0; q < 16; ++q) {
      __m512i first[3], second[3];
      split(_mm512_loadu_ps(x + q * pStride), first);
      split(_mm512_loadu_ps(x + (q + 16) * pStride), second);
      for (int s = 0; s < 3; ++s)
        t[s][q] = pairUp(first[s], second[s]);
    }
    if (!vnni)
      for (int s = 0; s < 3; ++s)
        transpose16(t[s]);
  } else {
    // An edge: zero-padded to a whole block.
    alignas(64) float block[16][32] = {};
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t p = 0; p < depth; ++p)
        block[r][p] = x[r * rStride + p * pStride];
    return packBlock(&block[0][0], 32, 1, 16, 32, vnni, dst);
  }
  for (int s = 0; s < 3; ++s)
    storeTile(dst + 2 * s * kTile, t[s]);
}

/// Packs X(r, p) for r < rows, p < depth into slivers of 32 r: sliver i,
/// chunk c (32 depths) at dst + (i * chunks + c) * kChunk, tiles of rows
/// 0-15 and 16-31 beside each other per part. Rows past `rows` are zeros.
///
/// Where a tile's rows come straight from the source's lines (A with rows
/// contiguous in depth, B with columns contiguous) the whole 16 x 32 blocks
/// are packed along the source's rows, one line after the next, so that
/// the hardware prefetchers follow (block by block, a 32-deep block of a
/// row-major B reads 32 rows a few KB apart: a B panel from L3 packed at
/// half the speed). The other layouts and the edges go block by block.
void packSlivers(const float *x, int64_t rStride, int64_t pStride, int64_t rows,
                 int64_t depth, bool vnni, uint16_t *dst) {
  int64_t chunks = (depth + 31) / 32;
  // The first tile row of part s for r's 16 rows in p's chunk (A's rows
  // are r, B's the depth pairs q, q + 16 of the chunk).
  auto tileOf = [&](int64_t r, int64_t p, int s) {
    return dst + (r / 32 * chunks + p / 32) * kChunk +
           (2 * s + r / 16 % 2) * kTile;
  };
  int64_t wholeRows = rows / 16 * 16, wholeDepth = depth / 32 * 32;
  bool streamed = !vnni ? pStride == 1 : rStride == 1;
  if (streamed && !vnni) {
    // A: each row's 32 depths split into a tile row of each part.
    for (int64_t r = 0; r < wholeRows; ++r)
      for (int64_t p = 0; p < wholeDepth; p += 32) {
        __m512i first[3], second[3];
        split(_mm512_loadu_ps(x + r * rStride + p), first);
        split(_mm512_loadu_ps(x + r * rStride + p + 16), second);
        for (int s = 0; s < 3; ++s)
          _mm512_store_si512(tileOf(r, p, s) + 32 * (r % 16),
                             (__m512i)pairUp(first[s], second[s]));
      }
  } else if (streamed) {
    // B: the 16 columns of depths q and q + 16 paired into tile row q.
    for (int64_t p = 0; p < wholeDepth; p += 32)
      for (int64_t q = 0; q < 16; ++q)
        for (int64_t r = 0; r < wholeRows; r += 16) {
          __m512i first[3], second[3];
          split(_mm512_loadu_ps(x + (p + q) * pStride + r), first);
          split(_mm512_loadu_ps(x + (p + q + 16) * pStride + r), second);
          for (int s = 0; s < 3; ++s)
            _mm512_store_si512(tileOf(r, p, s) + 32 * q,
                               (__m512i)pairUp(first[s], second[s]));
        }
  }
  for (int64_t r0 = 0; r0 < rows; r0 += 16)
    for (int64_t p0 = 0; p0 < depth; p0 += 32) {
      int64_t n = std::min<int64_t>(16, rows - r0);
      int64_t d = std::min<int64_t>(32, depth - p0);
      if (streamed && n == 16 && d == 32)
        continue; // packed above
      packBlock(x + r0 * rStride + p0 * pStride, rStride, pStride, n, d, vnni,
                tileOf(r0, p0, 0));
    }
  // The zero tiles of a last sliver with 16 rows or fewer.
  if (rows % 32 > 0 && rows % 32 <= 16)
    for (int64_t c = 0; c < chunks; ++c)
      for (int s = 0; s < 3; ++s)
        std::memset(dst + ((rows / 32) * chunks + c) * kChunk +
                        (2 * s + 1) * kTile,
                    0, kTile * sizeof(uint16_t));
}

/// The tile configuration every call uses: all eight tiles 16 rows of 64
/// bytes (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette = 1, startRow = 0;
  uint8_t reserved[14] = {};
  uint16_t bytesPerRow[16] = {};
  uint8_t rows[16] = {};
  TileConfig() {
    for (int i = 0; i < 8; ++i)
      bytesPerRow[i] = 64, rows[i] = 16;
  }
};

/// Configures this thread's tiles for the span of one GEMM (or its share).
class TileScope {
public:
  TileScope() {
    static const TileConfig config;
    _tile_loadconfig(&config);
  }
  ~TileScope() { _tile_release(); }
  TileScope(const TileScope &) = delete;
  TileScope &operator=(const TileScope &) = delete;
};

/// Brings a region into L2 over the next `calls` kernel calls, a share of
/// its lines per call spread over the call's chunks: the next B sliver, the
/// operand rows that are packed next. The region is `rows` runs of `length`
/// bytes, `stride` bytes apart.
class Fetcher {
public:
  void aim(const void *base, int64_t rows, int64_t stride, int64_t length,
           int64_t calls) {
    this->base = static_cast<const char *>(base);
    this->rows = base && length > 0 && calls > 0 ? rows : 0;
    this->stride = stride;
    this->length = length;
    row = 0;
    if (this->rows > 0)
      startRow();
    int64_t lines = this->rows * ((length + 63) / 64 + 1);
    perCall = calls > 0 ? (lines + calls - 1) / calls : 0;
  }
  /// A kernel call of `chunks` chunks starts.
  void begin(int64_t chunks) {
    owed = row < rows ? perCall : 0;
    perChunk = (owed + chunks - 1) / std::max<int64_t>(1, chunks);
  }
  void chunk() {
    for (int64_t i = 0; i < perChunk && owed > 0; ++i) {
      _mm_prefetch(line, _MM_HINT_T1);
      line += 64;
      if (line > last && ++row < rows)
        startRow();
      owed = row < rows ? owed - 1 : 0;
    }
  }

private:
  void startRow() {
    auto first = reinterpret_cast<uintptr_t>(base + row * stride);
    line = reinterpret_cast<const char *>(first & ~uintptr_t(63));
    last =
        reinterpret_cast<const char *>((first + length - 1) & ~uintptr_t(63));
  }
  const char *base = nullptr, *line = nullptr, *last = nullptr;
  int64_t rows = 0, stride = 0, length = 0, row = 0;
  int64_t perCall = 0, owed = 0, perChunk = 0;
};

/// C[32 x 32] (+)= A sliver x B sliver over `chunks` chunks of 32 depths.
/// c: row stride ldc; mr x nr below 32 x 32 goes through a buffer.
__attribute__((noinline)) void
microKernel(int64_t chunks, const uint16_t *pa, const uint16_t *pb, float *c,
            int64_t ldc, bool accumulate, int64_t mr, int64_t nr,
            const float *nextC, Fetcher &sliverAhead, Fetcher &sourceAhead) {
  alignas(64) float edge[32][32];
  bool whole = mr == 32 && nr == 32;
  float *out = whole ? c : &edge[0][0];
  int64_t ld = whole ? ldc : 32;
  if (!whole) {
    for (int64_t i = 0; i < 32; ++i)
      for (int64_t j = 0; j < 32; ++j)
        edge[i][j] = accumulate && i < mr && j < nr ? c[i * ldc + j] : 0.0f;
  }
  int64_t stride = ld * int64_t(sizeof(float));
  if (accumulate || !whole) {
    _tile_loadd(0, out, stride);
    _tile_loadd(1, out + 16, stride);
    _tile_loadd(2, out + 16 * ld, stride);
    _tile_loadd(3, out + 16 * ld + 16, stride);
  } else {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  }
  constexpr int64_t row = 64; // bytes per tile row
  // Fetched into L2 meanwhile, a share per chunk: the next C block's 64
  // lines and the fetchers' shares.
  int64_t cPerChunk = nextC ? (64 + chunks - 1) / chunks : 0, cLine = 0;
  sliverAhead.begin(chunks);
  sourceAhead.begin(chunks);
  for (int64_t ch = 0; ch < chunks; ++ch, pa += kChunk, pb += kChunk) {
    for (int64_t f = 0; f < cPerChunk && cLine < 64; ++f, ++cLine)
      __builtin_prefetch(nextC + (cLine >> 1) * ldc + (cLine & 1) * 16, 1, 2);
    sliverAhead.chunk();
    sourceAhead.chunk();
    // Each tile is loaded right before its first reader, and the products
    // go column by column of C (C00, C10, then C01, C11): a tile register
    // is overwritten only once its last reader has run, so the order lets
    // the next loads start while the last products still run (2-6% over
    // loading all four tiles first: 1024^3 6.8 -> 6.5 ms).
#define LOOM_PRODUCT(SA, SB)                                                   \
  _tile_loadd(4, pa + 2 * (SA)*kTile, row);                                    \
  _tile_loadd(6, pb + 2 * (SB)*kTile, row);                                    \
  _tile_dpbf16ps(0, 4, 6);                                                     \
  _tile_loadd(5, pa + (2 * (SA) + 1) * kTile, row);                            \
  _tile_dpbf16ps(2, 5, 6);                                                     \
  _tile_loadd(7, pb + (2 * (SB) + 1) * kTile, row);                            \
  _tile_dpbf16ps(1, 4, 7);                                                     \
  _tile_dpbf16ps(3, 5, 7)
#define LOOM_PRODUCT_B(SB) /* with the A part already in tmm4-5 */             \
  _tile_loadd(6, pb + 2 * (SB)*kTile, row);                                    \
  _tile_dpbf16ps(0, 4, 6);                                                     \
  _tile_dpbf16ps(2, 5, 6);                                                     \
  _tile_loadd(7, pb + (2 * (SB) + 1) * kTile, row);                            \
  _tile_dpbf16ps(1, 4, 7);                                                     \
  _tile_dpbf16ps(3, 5, 7)
    // The small terms first: Al Bh, Am Bm, Am Bh, then Ah with Bl, Bm, Bh.
    LOOM_PRODUCT(2, 0);
    LOOM_PRODUCT(1, 1);
    LOOM_PRODUCT_B(0);
    LOOM_PRODUCT(0, 2);
    LOOM_PRODUCT_B(1);
    LOOM_PRODUCT_B(0);
#undef LOOM_PRODUCT
#undef LOOM_PRODUCT_B
  }
  _tile_stored(0, out, stride);
  _tile_stored(1, out + 16, stride);
  _tile_stored(2, out + 16 * ld, stride);
  _tile_stored(3, out + 16 * ld + 16, stride);
  if (!whole)
    for (int64_t i = 0; i < mr; ++i)
      for (int64_t j = 0; j < nr; ++j)
        c[i * ldc + j] = edge[i][j];
}

using Operands = GemmOperands;

/// Even steps of at most `most` in whole units of `unit` over `extent`.
int64_t evenStep(int64_t extent, int64_t most, int64_t unit) {
  int64_t parts = (extent + most - 1) / most;
  return roundUp((extent + parts - 1) / parts, unit);
}

/// The blocks of one GEMM: the whole depth up to kWholeDepth, else depth
/// blocks of up to KC (one C load and store per block: per 128 depths they
/// cost a third of the time; a depth of 768 in two blocks took a vocabulary
/// head, 256 x 50257 x 768, 13% longer, and 2048 x 3072 x 768 8%; deeper
/// blocks of 768 made its gradient 256 x 768 x 50257 9% slower, its 256
/// rows no longer one A block), the A block
/// of MC rows within kBlockBytesA (L2), the B panel of NC columns within
/// kPanelBytesB (packed once per depth block; its slivers are fetched into
/// L2 one ahead).
struct Blocking {
  int64_t kc, mc, nc;
  Blocking(int64_t m, int64_t n, int64_t k) {
    kc = k <= kWholeDepth ? roundUp(k, 32) : evenStep(k, KC, 32);
    mc = evenStep(m, std::max<int64_t>(32, kBlockBytesA / (6 * kc) / 32 * 32),
                  32);
    nc = evenStep(n, std::max<int64_t>(32, kPanelBytesB / (6 * kc) / 32 * 32),
                  32);
  }
};

/// Brings the f32 source of X(r, p), r < rows, p < depth (rStride and
/// pStride as packSlivers takes them) into L2 over `calls` kernel calls:
/// what is packed next, while the current blocks run.
void aimAtSource(Fetcher &fetcher, const float *x, int64_t rStride,
                 int64_t pStride, int64_t rows, int64_t depth, int64_t calls) {
  constexpr int64_t f = sizeof(float);
  if (rows <= 0 || depth <= 0)
    fetcher.aim(nullptr, 0, 0, 0, 0);
  else if (pStride == 1)
    fetcher.aim(x, rows, rStride * f, depth * f, calls);
  else if (rStride == 1)
    fetcher.aim(x, depth, pStride * f, rows * f, calls);
  else
    fetcher.aim(nullptr, 0, 0, 0, 0);
}

/// The loop nest at the top: B packed once per depth block, a panel at a
/// time (slivers fetched into L2 one ahead), A once per panel. (Packing
/// each B sliver just before its calls instead, with all of A's rows in one
/// block, was slower even at 256 rows: 256 x 3072 x 768 7.5 vs 5.7 ms.)
void gemmBlocked(int64_t m, int64_t n, int64_t k, const Operands &o,
                 uint16_t *pa, uint16_t *pb) {
  TileScope tiles;
  Blocking blocks(m, n, k);
  Fetcher sliverAhead, sourceAhead;
  for (int64_t jc = 0; jc < n; jc += blocks.nc) {
    int64_t nc = std::min(blocks.nc, n - jc);
    for (int64_t pc = 0; pc < k; pc += blocks.kc) {
      int64_t kc = std::min(blocks.kc, k - pc);
      int64_t chunks = (kc + 31) / 32;
      int64_t sliver = chunks * kChunk; // bf16 elements of 32 rows or columns
      int64_t sliverBytes = sliver * int64_t(sizeof(uint16_t));
      bool acc = o.accumulate || pc > 0;
      // B(p, j): r is the column j, p the depth.
      packSlivers(o.b + pc * o.bRow + jc * o.bCol, o.bCol, o.bRow, nc, kc,
                  /*vnni=*/true, pb);
      for (int64_t ic = 0; ic < m; ic += blocks.mc) {
        int64_t mc = std::min(blocks.mc, m - ic);
        packSlivers(o.a + ic * o.aRow + pc * o.aCol, o.aRow, o.aCol, mc, kc,
                    /*vnni=*/false, pa);
        int64_t rowSlivers = (mc + 31) / 32, colSlivers = (nc + 31) / 32;
        // What is packed next comes into L2 over this block's calls: the
        // next A block, or after the last the next B panel.
        int64_t calls = rowSlivers * colSlivers;
        if (ic + mc < m) {
          aimAtSource(sourceAhead, o.a + (ic + mc) * o.aRow + pc * o.aCol,
                      o.aRow, o.aCol, std::min(blocks.mc, m - ic - mc), kc,
                      calls);
        } else {
          int64_t nextPc = pc + kc < k ? pc + kc : 0;
          int64_t nextJc = pc + kc < k ? jc : jc + nc;
          aimAtSource(sourceAhead, o.b + nextPc * o.bRow + nextJc * o.bCol,
                      o.bCol, o.bRow, std::min(blocks.nc, n - nextJc),
                      std::min(blocks.kc, k - nextPc), calls);
        }
        // The C block of the call after (ir, jr), whole, or null.
        auto nextC = [&](int64_t ir, int64_t jr) -> const float * {
          ir += 32;
          if (ir >= mc)
            ir = 0, jr += 32;
          if (ir + 32 > mc || jr + 32 > nc)
            return nullptr;
          return o.c + (ic + ir) * o.cRow + jc + jr;
        };
        for (int64_t jr = 0; jr < nc; jr += 32) {
          // The next B sliver (the first again after the last) comes into
          // L2 over this sliver's calls.
          sliverAhead.aim(pb + (jr + 32 < nc ? (jr / 32 + 1) * sliver : 0), 1,
                          sliverBytes, sliverBytes, rowSlivers);
          for (int64_t ir = 0; ir < mc; ir += 32)
            microKernel(chunks, pa + ir / 32 * sliver, pb + jr / 32 * sliver,
                        o.c + (ic + ir) * o.cRow + jc + jr, o.cRow, acc,
                        std::min<int64_t>(32, mc - ir),
                        std::min<int64_t>(32, nc - jr), nextC(ir, jr),
                        sliverAhead, sourceAhead);
        }
        if (pc + kc >= k && o.epilogue)
          o.epilogue->fn(o.epilogue->context, o.epilogueRow + ic,
                         o.epilogueCol + jc, mc, nc);
      }
    }
  }
}

} // namespace

bool usable() {
  static const bool ok = [] {
    if (const char *v = std::getenv("LOOM_GEMM_AMX"))
      if (std::string_view(v) == "0")
        return false;
    unsigned eax, ebx, ecx, edx;
    __asm__("cpuid"
            : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx)
            : "a"(0), "c"(0));
    if (eax < 7)
      return false;
    __asm__("cpuid"
            : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx)
            : "a"(7), "c"(0));
    bool tile = edx & (1u << 24), bf16Tile = edx & (1u << 22),
         avx512f = ebx & (1u << 16);
    if (!tile || !bf16Tile || !avx512f)
      return false;
    // Linux hands out the tile data state on request (arch_prctl).
    constexpr long kReqXcompPerm = 0x1023, kXtileData = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXtileData) == 0;
  }();
  return ok;
}

bool applies(int64_t batch, int64_t m, int64_t n, int64_t k, int64_t threads) {
  // A member of a team computes a share of the rows (M >= N) or columns.
  int64_t team = gemmTeamSize(threads, batch * m * n * k);
  if (team > 1 && !teamTakesWholeEntries(batch, team))
    (m >= n ? m : n) = (std::max(m, n) + team - 1) / team;
  // Each packed element of A serves n columns, each of B m rows: packing
  // (three bf16 parts, 0.35-0.6 ns an element against the FMA kernel's
  // f32 copy) pays only for enough of them. In GPT-mini's step (2 threads)
  // a share of 128 x 256 (X^T dY, K 2048) ran at 295 GFLOP/s against the
  // FMA kernel's 321, 512 x 256 tied, 256 x 512 won (411 against 363).
  return m >= 32 && n >= 32 && k >= 32 && 2 * m * n >= 192 * (m + n);
}

bool sgemm(int64_t batch, int64_t m, int64_t n, int64_t k, const float *a,
           int64_t aBatch, int64_t aRow, int64_t aCol, const float *b,
           int64_t bBatch, int64_t bRow, int64_t bCol, float *c, int64_t cBatch,
           int64_t cRow, bool accumulate, const GemmEpilogue *epilogue,
           int64_t threads) {
  auto entry = [&](int64_t bi) {
    return Operands{
        a + bi * aBatch, aRow, aCol,       b + bi * bBatch, bRow,   bCol,
        c + bi * cBatch, cRow, accumulate, epilogue,        bi * m, 0};
  };
  if (m <= 0 || n <= 0 || batch <= 0)
    return true;
  if (k < 32) // (applies() sends none here; the FMA kernels take them)
    return false;
  int team = gemmTeamSize(threads, batch * m * n * k);
  // Each member's packing buffers (bf16 elements), the master's, kept per
  // thread: bounds of Blocking's for any share of this product.
  int64_t kcBound = roundUp(k <= kWholeDepth ? k : std::min(k, KC), 32);
  int64_t aElements =
      std::min(roundUp(m, 32) * kcBound * 3,
               std::max(kBlockBytesA, 192 * std::max(KC, kWholeDepth)) / 2);
  int64_t bElements =
      std::min(roundUp(n, 32) * kcBound * 3,
               std::max(kPanelBytesB, 192 * std::max(KC, kWholeDepth)) / 2);
  thread_local Scratch packedA, packedB;
  // (Scratch counts floats: two bf16 each.)
  float *fa = packedA.get(aElements / 2 * team);
  float *fb = packedB.get(bElements / 2 * team);
  if (!fa || !fb)
    return false;
  auto *pa = reinterpret_cast<uint16_t *>(fa);
  auto *pb = reinterpret_cast<uint16_t *>(fb);
  gemmOnTeam(team, batch, m, n, k, 32, 32, entry,
             [&](int t, int64_t m, int64_t n, int64_t k, const Operands &o) {
               gemmBlocked(m, n, k, o, pa + t * aElements, pb + t * bElements);
             });
  return true;
}

} // namespace loom::kernels::amx
