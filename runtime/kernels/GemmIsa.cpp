//===- GemmIsa.cpp - Packed, cache-blocked f32 GEMM for one vector ISA ----===//
//
// This file is compiled once per instruction set (see CMakeLists.txt); the
// macros pick the namespace, the vector width and the blocking:
//
//   LOOM_GEMM_NS     namespace of this copy (avx512, avx2, generic)
//   LOOM_GEMM_LANES  f32 lanes of one vector register (16, 8, 4)
//   LOOM_GEMM_MR     rows of the register block
//   LOOM_GEMM_KC/MC/NC  cache blocks (depth, rows, columns)
//   LOOM_GEMM_A_IN_L1   1: the register blocks' loops are swapped (below)
//
// The loop nest is the BLIS/GotoBLAS one:
//
//   for jc < N step NC                      B panel  [KC x NC] in L3
//     for pc < K step KC
//       pack B(pc:pc+KC, jc:jc+NC) into NR-wide slivers [KC][NR]
//       for ic < M step MC                  A block  [MC x KC] in L2
//         pack A(ic:ic+MC, pc:pc+KC) into MR-tall slivers [KC][MR]
//         for jr < NC step NR               B sliver [KC x NR] in L1
//           for ir < MC step MR
//             C(ir:ir+MR, jr:jr+NR) (+)= sliver(A) x sliver(B)
//
// With LOOM_GEMM_A_IN_L1 the two inner loops are swapped: an A sliver
// [KC x MR] stays in L1 while the B slivers stream from the B panel, which
// NC then sizes for L2, and C is walked along its rows. On AVX-512 the B
// sliver (256 x 32 floats, 32 KB) filled most of a 48 KB L1 beside the A
// sliver streaming through it; the A sliver is 12 KB. The blocks are
// evened out (n = 1536 is two panels of 768, not 1024 and 512).
//
// Then no A block needs to stay in L2, so when N spans several B panels
// the depth loop goes outside the panels and A is packed once per depth
// block for up to MA rows, not once per panel as well:
//
//   for ia < M step MA, pc < K step KC      A chunk [MA x KC] (2.25 MB)
//     pack A(ia:ia+MA, pc:pc+KC)
//     for jc < N step NC: pack B; for ir: for jr: micro-kernel
//
// (2048x768x3072 packed A three times over; 1 thread, interleaved, median
// of run medians: 63.0 -> 60.7 ms, PyTorch 58-59 ms in the same run.)
//
// Both operands are always packed (reading either in place was slower: see
// gemmBlocked). An operand too large for any cache (a vocabulary head's
// weight, its logits gradient) is fetched into L2 ahead of its packing,
// a few lines per micro-kernel call (Lookahead), with one B panel.
//
// Micro-tile MR x NR with NR = 2 vectors: MR x 2 vector accumulators
// (AVX2: 6 x 16, 12 ymm; AVX-512: 12 x 32, 24 zmm), each step of p loads two
// vectors of B, broadcasts MR scalars of A and issues 2 MR FMAs. Packing
// reads any strides, so a transposed operand (x @ W^T, attention's q k^T)
// costs only its packing, never a materialized transpose. Partial tiles at
// the edges are packed with zeros and stored through a small tile buffer.
//
// Measured on an AMD EPYC (Zen 3, AVX2, 1 thread, FMA peak 102 GFLOP/s):
// 1024^3 and 2048x3072x768 at 90-93 GFLOP/s with KC 384, MC 72 (KC 256 /
// MC 144: 80; without the k unroll and the C prefetch: 84-88).
//
//===----------------------------------------------------------------------===//

#include "runtime/kernels/Epilogue.h"
#include "runtime/kernels/GemmTeam.h"
#include "runtime/kernels/Scratch.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>

namespace loom::kernels::LOOM_GEMM_NS {
namespace {

using loom::kernels::Scratch;

constexpr int W = LOOM_GEMM_LANES;
constexpr int NR = 2 * W;
constexpr int MR = LOOM_GEMM_MR;
constexpr int64_t KC = LOOM_GEMM_KC;
constexpr int64_t MC = LOOM_GEMM_MC;
constexpr int64_t NC = LOOM_GEMM_NC;
constexpr bool AInL1 = LOOM_GEMM_A_IN_L1;
static_assert(MC % MR == 0 && NC % NR == 0, "blocks must hold whole tiles");

// ext_vector_type (clang) so that a scalar converts to a splat.
typedef float vec __attribute__((ext_vector_type(W)));

inline vec load(const float *p) {
  vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float *p, vec v) { std::memcpy(p, &v, sizeof v); }

/// Fetches into L2, a few cache lines per micro-kernel call, the operand
/// region that is packed next (the next A sliver, the next B panel): packing
/// then reads from L2 what it would otherwise wait for from memory, and the
/// fetches overlap the micro-kernels' arithmetic. Used for operands of
/// kLookaheadBytes and more only.
class Lookahead {
public:
  /// Aim at X(i, p) = x[i * iStride + p * pStride] for i < ni, p < np,
  /// fetched over the next `calls` micro-kernel calls. A region with neither
  /// stride 1 (packed element by element) is not fetched.
  void aim(const float *x, int64_t ni, int64_t np, int64_t iStride,
           int64_t pStride, int64_t calls) {
    rows = 0;
    if (!x || ni <= 0 || np <= 0 || calls <= 0)
      return;
    if (pStride == 1) {
      rows = ni, stride = iStride, length = np;
    } else if (iStride == 1) {
      rows = np, stride = pStride, length = ni;
    } else {
      return;
    }
    base = x;
    row = 0;
    startRow();
    int64_t lines = rows * ((length * int64_t(sizeof(float)) + 63) / 64 + 1);
    perCall = (lines + calls - 1) / calls;
  }
  /// A micro-kernel call starts: it owes perCall lines, fetched one every
  /// fourth of its steps (fetchOne), the rest when it ends (settle).
  void begin() { owed = row < rows ? perCall : 0; }
  void fetchOne() {
    if (owed <= 0)
      return;
    __builtin_prefetch(reinterpret_cast<const void *>(line), 0, 2);
    line += 64;
    if (line > last && ++row < rows)
      startRow();
    owed = row < rows ? owed - 1 : 0;
  }
  void settle() {
    while (owed > 0)
      fetchOne();
  }

private:
  void startRow() {
    auto first = reinterpret_cast<uintptr_t>(base + row * stride);
    line = first & ~uintptr_t(63);
    last = (first + length * sizeof(float) - 1) & ~uintptr_t(63);
  }
  const float *base = nullptr;
  int64_t rows = 0, stride = 0, length = 0, row = 0, perCall = 0, owed = 0;
  uintptr_t line = 0, last = 0;
};

/// C[mr x nr] (+)= A x B over kc steps of p. pb: a packed B sliver
/// [kc][NR], 64-byte aligned. A(i, p) = pa[p * aStep + i] (a packed
/// sliver, aStep MR); an mr below MR comes from a zero-padded sliver. c:
/// row stride ldc, columns contiguous.
/// With Ahead, the call also fetches its share of what is packed next
/// (nextA, nextB). Never inlined: inside the blocked loops its 24
/// accumulators and the fetch state competed with the loops' values for
/// registers (inlined there, the 256 x 768 x 50257 head ran 40% slower).
template <bool Ahead = false>
__attribute__((noinline)) void
microKernel(int64_t kc, const float *__restrict pa, int64_t aStep,
            const float *__restrict pb, float *__restrict c, int64_t ldc,
            bool accumulate, int64_t mr, int64_t nr, Lookahead *nextA = nullptr,
            Lookahead *nextB = nullptr) {
  vec acc0[MR], acc1[MR];
#pragma clang loop unroll(full)
  for (int i = 0; i < MR; ++i)
    acc0[i] = acc1[i] = vec{};
  // The C tile is needed only after the k loop: fetch it meanwhile.
  for (int i = 0; i < MR; ++i) {
    __builtin_prefetch(c + i * ldc, 1, 3);
    __builtin_prefetch(c + i * ldc + NR - 1, 1, 3);
  }
  if constexpr (Ahead)
    nextA->begin(), nextB->begin();
#pragma clang loop unroll_count(4)
  for (int64_t p = 0; p < kc; ++p) {
    if constexpr (Ahead)
      if ((p & 3) == 3)
        nextA->fetchOne(), nextB->fetchOne();
    vec b0 = load(pb);
    vec b1 = load(pb + W);
#pragma clang loop unroll(full)
    for (int i = 0; i < MR; ++i) {
      vec a = pa[i];
      acc0[i] += a * b0;
      acc1[i] += a * b1;
    }
    pa += aStep;
    pb += NR;
  }
  if constexpr (Ahead)
    nextA->settle(), nextB->settle();
  if (mr == MR && nr == NR) {
#pragma clang loop unroll(full)
    for (int i = 0; i < MR; ++i) {
      float *row = c + i * ldc;
      if (accumulate) {
        store(row, load(row) + acc0[i]);
        store(row + W, load(row + W) + acc1[i]);
      } else {
        store(row, acc0[i]);
        store(row + W, acc1[i]);
      }
    }
    return;
  }
  alignas(64) float tile[MR][NR];
  for (int i = 0; i < MR; ++i) {
    store(&tile[i][0], acc0[i]);
    store(&tile[i][W], acc1[i]);
  }
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j)
      c[i * ldc + j] = (accumulate ? c[i * ldc + j] : 0.0f) + tile[i][j];
}

// Transposing copies in registers: a sliver of rows that are contiguous in
// p (row-major A, the W^T of x @ W^T) is written p-major. Element by element
// the compiler makes a gather or scatter of every vector (the transposed B
// pack was 70% of the packing time of a GPT-2-small step); in blocks of
// 8 x 8 (three rounds of shuffles) and 4 x 4 it streams.
typedef float vec8 __attribute__((ext_vector_type(8)));
typedef float vec4 __attribute__((ext_vector_type(4)));

/// dst[p * ld + r] = src[r * srcRow + p] for r < 8, p < 8.
inline void transpose8x8(const float *src, int64_t srcRow, float *dst,
                         int64_t ld) {
  vec8 v[8];
  for (int r = 0; r < 8; ++r)
    std::memcpy(&v[r], src + r * srcRow, sizeof(vec8));
  vec8 t[8], s[8];
  for (int r = 0; r < 8; r += 2) {
    t[r] = __builtin_shufflevector(v[r], v[r + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    t[r + 1] =
        __builtin_shufflevector(v[r], v[r + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int r = 0; r < 8; r += 4)
    for (int h = 0; h < 2; ++h) {
      s[r + 2 * h] = __builtin_shufflevector(t[r + h], t[r + h + 2], 0, 1, 8, 9,
                                             4, 5, 12, 13);
      s[r + 2 * h + 1] = __builtin_shufflevector(t[r + h], t[r + h + 2], 2, 3,
                                                 10, 11, 6, 7, 14, 15);
    }
  for (int c = 0; c < 4; ++c) {
    vec8 lo = __builtin_shufflevector(s[c], s[c + 4], 0, 1, 2, 3, 8, 9, 10, 11);
    vec8 hi =
        __builtin_shufflevector(s[c], s[c + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    std::memcpy(dst + c * ld, &lo, sizeof(vec8));
    std::memcpy(dst + (c + 4) * ld, &hi, sizeof(vec8));
  }
}

/// dst[p * ld + r] = src[r * srcRow + p] for r < 4, p < 4.
inline void transpose4x4(const float *src, int64_t srcRow, float *dst,
                         int64_t ld) {
  vec4 v[4];
  for (int r = 0; r < 4; ++r)
    std::memcpy(&v[r], src + r * srcRow, sizeof(vec4));
  vec4 t0 = __builtin_shufflevector(v[0], v[1], 0, 4, 1, 5);
  vec4 t1 = __builtin_shufflevector(v[0], v[1], 2, 6, 3, 7);
  vec4 t2 = __builtin_shufflevector(v[2], v[3], 0, 4, 1, 5);
  vec4 t3 = __builtin_shufflevector(v[2], v[3], 2, 6, 3, 7);
  vec4 o[4] = {__builtin_shufflevector(t0, t2, 0, 1, 4, 5),
               __builtin_shufflevector(t0, t2, 2, 3, 6, 7),
               __builtin_shufflevector(t1, t3, 0, 1, 4, 5),
               __builtin_shufflevector(t1, t3, 2, 3, 6, 7)};
  for (int c = 0; c < 4; ++c)
    std::memcpy(dst + c * ld, &o[c], sizeof(vec4));
}

/// Rows [r, R) of transposeRows in blocks of B (8 or 4) rows while whole
/// blocks fit; returns the first row left.
template <int R, int B>
int transposeBlocks(int r, const float *src, int64_t srcRow, int64_t kc,
                    float *dst) {
  for (; r + B <= R; r += B) {
    int64_t p = 0;
    for (; p + B <= kc; p += B) {
      if constexpr (B == 8)
        transpose8x8(src + r * srcRow + p, srcRow, dst + p * R + r, R);
      else
        transpose4x4(src + r * srcRow + p, srcRow, dst + p * R + r, R);
    }
    for (; p < kc; ++p)
      for (int i = r; i < r + B; ++i)
        dst[p * R + i] = src[i * srcRow + p];
  }
  return r;
}

#if LOOM_GEMM_LANES == 16
// AVX-512: 16 x 16 blocks in zmm registers, four rounds of two-source
// shuffles. The MR = 12 rows of an A sliver then come out as 16 p-rows of
// 12, compacted into 12 whole vectors (192 contiguous floats), and the
// NR = 32 columns of B^T as two halves of each 32-float row: every store a
// full vector (the 8 x 8 and 4 x 4 blocks stored 32- and 16-byte pieces at
// a 48-byte stride, half of them split across cache lines; packing ran at
// half a memcpy's speed).
typedef float vec16 __attribute__((ext_vector_type(16)));

/// out[c][r] = src[r * srcRow + c] for c < 16, r < R (R <= 16); lanes R
/// and up are zero.
template <int R>
inline void transpose16(const float *src, int64_t srcRow, vec16 out[16]) {
  static_assert(R > 0 && R <= 16);
  vec16 v[16], t[16], u[16];
#pragma clang loop unroll(full)
  for (int i = 0; i < 16; ++i) {
    v[i] = vec16{};
    if (i < R)
      std::memcpy(&v[i], src + i * srcRow, sizeof(vec16));
  }
  // Within each 128-bit lane L: t[2i] = rows 2i, 2i+1 interleaved at
  // columns 4L, 4L+1; t[2i+1] at columns 4L+2, 4L+3.
#pragma clang loop unroll(full)
  for (int i = 0; i < 16; i += 2) {
    t[i] = __builtin_shufflevector(v[i], v[i + 1], 0, 16, 1, 17, 4, 20, 5, 21,
                                   8, 24, 9, 25, 12, 28, 13, 29);
    t[i + 1] = __builtin_shufflevector(v[i], v[i + 1], 2, 18, 3, 19, 6, 22, 7,
                                       23, 10, 26, 11, 27, 14, 30, 15, 31);
  }
  // u[4q + j], lane L: column 4L + j of rows 4q .. 4q + 3.
#pragma clang loop unroll(full)
  for (int g = 0; g < 16; g += 4)
#pragma clang loop unroll(full)
    for (int h = 0; h < 2; ++h) {
      u[g + 2 * h] =
          __builtin_shufflevector(t[g + h], t[g + h + 2], 0, 1, 16, 17, 4, 5,
                                  20, 21, 8, 9, 24, 25, 12, 13, 28, 29);
      u[g + 2 * h + 1] =
          __builtin_shufflevector(t[g + h], t[g + h + 2], 2, 3, 18, 19, 6, 7,
                                  22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
    }
    // out[4L + j] = lane L of u[j], u[4 + j], u[8 + j], u[12 + j].
#pragma clang loop unroll(full)
  for (int j = 0; j < 4; ++j) {
    vec16 xLo = __builtin_shufflevector(u[j], u[4 + j], 0, 1, 2, 3, 16, 17, 18,
                                        19, 4, 5, 6, 7, 20, 21, 22, 23);
    vec16 xHi = __builtin_shufflevector(u[j], u[4 + j], 8, 9, 10, 11, 24, 25,
                                        26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
    vec16 yLo = __builtin_shufflevector(u[8 + j], u[12 + j], 0, 1, 2, 3, 16, 17,
                                        18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
    vec16 yHi =
        __builtin_shufflevector(u[8 + j], u[12 + j], 8, 9, 10, 11, 24, 25, 26,
                                27, 12, 13, 14, 15, 28, 29, 30, 31);
    out[j] = __builtin_shufflevector(xLo, yLo, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17,
                                     18, 19, 20, 21, 22, 23);
    out[4 + j] = __builtin_shufflevector(xLo, yLo, 8, 9, 10, 11, 12, 13, 14, 15,
                                         24, 25, 26, 27, 28, 29, 30, 31);
    out[8 + j] = __builtin_shufflevector(xHi, yHi, 0, 1, 2, 3, 4, 5, 6, 7, 16,
                                         17, 18, 19, 20, 21, 22, 23);
    out[12 + j] = __builtin_shufflevector(xHi, yHi, 8, 9, 10, 11, 12, 13, 14,
                                          15, 24, 25, 26, 27, 28, 29, 30, 31);
  }
}

/// dst[p * 12 + r] = src[r * srcRow + p] for r < 12, p < 16: the 16
/// transposed rows of 12 stored as 12 whole vectors.
inline void transpose12x16(const float *src, int64_t srcRow, float *dst) {
  vec16 o[16];
  transpose16<12>(src, srcRow, o);
#pragma clang loop unroll(full)
  for (int q = 0; q < 16; q += 4) {
    vec16 z[3] = {
        __builtin_shufflevector(o[q], o[q + 1], 0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
                                10, 11, 16, 17, 18, 19),
        __builtin_shufflevector(o[q + 1], o[q + 2], 4, 5, 6, 7, 8, 9, 10, 11,
                                16, 17, 18, 19, 20, 21, 22, 23),
        __builtin_shufflevector(o[q + 2], o[q + 3], 8, 9, 10, 11, 16, 17, 18,
                                19, 20, 21, 22, 23, 24, 25, 26, 27)};
    std::memcpy(dst + q * 12, z, sizeof z);
  }
}

/// dst[p * 32 + r] = src[r * srcRow + p] for r < 32, p < 16.
inline void transpose32x16(const float *src, int64_t srcRow, float *dst) {
  for (int h = 0; h < 2; ++h) {
    vec16 o[16];
    transpose16<16>(src + h * 16 * srcRow, srcRow, o);
#pragma clang loop unroll(full)
    for (int c = 0; c < 16; ++c)
      std::memcpy(dst + c * 32 + h * 16, &o[c], sizeof(vec16));
  }
}
#endif

/// dst[p * R + r] = src[r * srcRow + p] for r < R, p < kc: R rows split
/// into blocks of 8, then 4, then single rows (AVX-512: 16 p at a time for
/// R = 12 and 32).
template <int R>
void transposeRows(const float *src, int64_t srcRow, int64_t kc, float *dst) {
#if LOOM_GEMM_LANES == 16
  if constexpr (R == 12 || R == 32) {
    int64_t p = 0;
    for (; p + 16 <= kc; p += 16) {
      if constexpr (R == 12)
        transpose12x16(src + p, srcRow, dst + p * R);
      else
        transpose32x16(src + p, srcRow, dst + p * R);
    }
    for (; p < kc; ++p)
      for (int r = 0; r < R; ++r)
        dst[p * R + r] = src[r * srcRow + p];
    return;
  }
#endif
  int r = transposeBlocks<R, 8>(0, src, srcRow, kc, dst);
  r = transposeBlocks<R, 4>(r, src, srcRow, kc, dst);
  for (; r < R; ++r)
    for (int64_t p = 0; p < kc; ++p)
      dst[p * R + r] = src[r * srcRow + p];
}

/// A(0:mc, 0:kc) -> MR-tall slivers [ceil(mc/MR)][kc][MR], zero-padded.
/// A(i, p) = a[i * aRow + p * aCol].
void packA(int64_t mc, int64_t kc, const float *a, int64_t aRow, int64_t aCol,
           float *__restrict pa) {
  if (aRow == 1 && mc >= MR) {
    // A^T stored row-major (the weight gradients' X^T dY): each row of X
    // is read once, in order, and scattered into the whole slivers (as
    // packB does); the ragged last sliver below. (Sliver by sliver, each
    // sliver walked kc rows of X a row apart: a stream of 48-byte pieces
    // that the prefetchers do not follow from memory.)
    int64_t whole = mc / MR;
    for (int64_t p = 0; p < kc; ++p) {
      const float *src = a + p * aCol;
      float *dst = pa + p * MR;
      for (int64_t s = 0; s < whole; ++s, src += MR, dst += kc * MR)
        std::memcpy(dst, src, MR * sizeof(float));
    }
    if (whole * MR == mc)
      return;
    a += whole * MR;
    pa += whole * kc * MR;
    mc -= whole * MR;
  }
  for (int64_t ir = 0; ir < mc; ir += MR) {
    int64_t mr = std::min<int64_t>(MR, mc - ir);
    const float *src = a + ir * aRow;
    if (mr == MR && aCol == 1) {
      // A stored row-major: MR rows, each contiguous in p.
      transposeRows<MR>(src, aRow, kc, pa);
      pa += kc * MR;
      continue;
    }
    if (mr == MR) {
      for (int64_t p = 0; p < kc; ++p, pa += MR)
#pragma clang loop unroll(full)
        for (int i = 0; i < MR; ++i)
          pa[i] = src[i * aRow + p * aCol];
      continue;
    }
    for (int64_t p = 0; p < kc; ++p, pa += MR)
      for (int i = 0; i < MR; ++i)
        pa[i] = i < mr ? src[i * aRow + p * aCol] : 0.0f;
  }
}

/// B(0:kc, 0:nc) -> NR-wide slivers [ceil(nc/NR)][kc][NR], zero-padded.
/// B(p, j) = b[p * bRow + j * bCol].
void packB(int64_t kc, int64_t nc, const float *b, int64_t bRow, int64_t bCol,
           float *__restrict pb) {
  if (bCol == 1 && nc >= NR) {
    // Row-major B: each row of the panel is read once, in order (one
    // stream), and scattered into the whole slivers; the ragged last
    // sliver below.
    int64_t whole = nc / NR;
    for (int64_t p = 0; p < kc; ++p) {
      const float *src = b + p * bRow;
      float *dst = pb + p * NR;
      for (int64_t s = 0; s < whole; ++s, src += NR, dst += kc * NR) {
        store(dst, load(src));
        store(dst + W, load(src + W));
      }
    }
    if (whole * NR == nc)
      return;
    b += whole * NR;
    pb += whole * kc * NR;
    nc -= whole * NR;
  }
  for (int64_t jr = 0; jr < nc; jr += NR) {
    int64_t nr = std::min<int64_t>(NR, nc - jr);
    const float *src = b + jr * bCol;
    if (nr == NR && bCol == 1) {
      for (int64_t p = 0; p < kc; ++p, pb += NR) {
        store(pb, load(src + p * bRow));
        store(pb + W, load(src + p * bRow + W));
      }
      continue;
    }
    if (nr == NR && bRow == 1) {
      // B^T stored row-major (x @ W^T, the backward's dY @ W^T): NR
      // columns, each contiguous in p.
      transposeRows<NR>(src, bCol, kc, pb);
      pb += kc * NR;
      continue;
    }
    if (nr == NR) {
      for (int64_t p = 0; p < kc; ++p, pb += NR)
        for (int j = 0; j < NR; ++j)
          pb[j] = src[j * bCol + p * bRow];
      continue;
    }
    for (int64_t p = 0; p < kc; ++p, pb += NR)
      for (int j = 0; j < NR; ++j)
        pb[j] = j < nr ? src[j * bCol + p * bRow] : 0.0f;
  }
}

} // namespace

void packPanelA(int64_t m, int64_t k, const float *a, int64_t aRow,
                int64_t aCol, float scale, float *pa) {
  packA(m, k, a, aRow, aCol, pa);
  if (scale != 1.0f)
    for (int64_t i = 0, e = roundUp(m, MR) * k; i < e; ++i)
      pa[i] *= scale;
}

void packPanelB(int64_t k, int64_t n, const float *b, int64_t bRow,
                int64_t bCol, float *pb) {
  packB(k, n, b, bRow, bCol, pb);
}

void gemmPanels(int64_t m, int64_t n, int64_t k, const float *pa,
                int64_t aStride, const float *pb, int64_t bStride, float *c,
                int64_t ldc, bool accumulate) {
  for (int64_t jr = 0; jr < n; jr += NR)
    for (int64_t ir = 0; ir < m; ir += MR)
      microKernel(k, pa + ir / MR * aStride, MR, pb + jr / NR * bStride,
                  c + ir * ldc + jr, ldc, accumulate,
                  std::min<int64_t>(MR, m - ir), std::min<int64_t>(NR, n - jr));
}

/// A decode step multiplies one row per sequence by each weight: packing
/// the weight would cost more than the product. Up to kSmallRows rows of A
/// are multiplied with B streamed from memory once per group of R <= 4
/// rows.
constexpr int64_t kSmallRows = 8;

/// B with contiguous rows (B(p, j) = b[p * bRow + j]): C's rows (in L1/L2)
/// accumulate four rows of B at a time, so B streams through in order, one
/// pass, four sequential streams the prefetchers follow.
template <int R>
void rowsTimesRows(int64_t n, int64_t k, const float *a, int64_t aRow,
                   int64_t aCol, const float *b, int64_t bRow, float *c,
                   int64_t cRow, bool accumulate) {
  if (!accumulate)
    for (int r = 0; r < R; ++r)
      std::memset(c + r * cRow, 0, size_t(n) * sizeof(float));
  int64_t p = 0;
  for (; p + 4 <= k; p += 4) {
    const float *b0 = b + p * bRow, *b1 = b0 + bRow, *b2 = b1 + bRow,
                *b3 = b2 + bRow;
    float x[R][4];
    for (int r = 0; r < R; ++r)
      for (int i = 0; i < 4; ++i)
        x[r][i] = a[r * aRow + (p + i) * aCol];
    int64_t j = 0;
    for (; j + W <= n; j += W) {
      vec v0 = load(b0 + j), v1 = load(b1 + j), v2 = load(b2 + j),
          v3 = load(b3 + j);
#pragma clang loop unroll(full)
      for (int r = 0; r < R; ++r) {
        float *out = c + r * cRow + j;
        store(out, load(out) + x[r][0] * v0 + x[r][1] * v1 + x[r][2] * v2 +
                       x[r][3] * v3);
      }
    }
    for (; j < n; ++j)
      for (int r = 0; r < R; ++r)
        c[r * cRow + j] += x[r][0] * b0[j] + x[r][1] * b1[j] + x[r][2] * b2[j] +
                           x[r][3] * b3[j];
  }
  for (; p < k; ++p) {
    const float *bp = b + p * bRow;
    for (int r = 0; r < R; ++r) {
      float x = a[r * aRow + p * aCol];
      float *out = c + r * cRow;
      int64_t j = 0;
      for (; j + W <= n; j += W)
        store(out + j, load(out + j) + x * load(bp + j));
      for (; j < n; ++j)
        out[j] += x * bp[j];
    }
  }
}

/// B with contiguous columns (B(p, j) = b[j * bCol + p], a transposed
/// weight such as a tied output layer) and contiguous rows of A: dot
/// products of the R rows of A with 4 columns of B at a time.
template <int R>
void rowsTimesColumns(int64_t n, int64_t k, const float *a, int64_t aRow,
                      const float *b, int64_t bCol, float *c, int64_t cRow,
                      bool accumulate) {
  constexpr int J = 4;
  auto hsum = [](vec v) {
    float s = 0;
    for (int l = 0; l < W; ++l)
      s += v[l];
    return s;
  };
  for (int64_t j0 = 0; j0 < n; j0 += J) {
    int64_t nj = std::min<int64_t>(J, n - j0);
    vec acc[R][J] = {};
    float tail[R][J] = {};
    int64_t p = 0;
    if (nj == J) {
      for (; p + W <= k; p += W) {
        vec bv[J];
#pragma clang loop unroll(full)
        for (int jj = 0; jj < J; ++jj)
          bv[jj] = load(b + (j0 + jj) * bCol + p);
#pragma clang loop unroll(full)
        for (int r = 0; r < R; ++r) {
          vec x = load(a + r * aRow + p);
#pragma clang loop unroll(full)
          for (int jj = 0; jj < J; ++jj)
            acc[r][jj] += x * bv[jj];
        }
      }
    }
    for (; p < k; ++p)
      for (int r = 0; r < R; ++r)
        for (int64_t jj = 0; jj < nj; ++jj)
          tail[r][jj] += a[r * aRow + p] * b[(j0 + jj) * bCol + p];
    for (int r = 0; r < R; ++r)
      for (int64_t jj = 0; jj < nj; ++jj) {
        float *out = c + r * cRow + j0 + jj;
        float sum = hsum(acc[r][jj]) + tail[r][jj];
        *out = accumulate ? *out + sum : sum;
      }
  }
}

/// Whether smallRows computes this product.
bool smallRowsApply(int64_t m, int64_t k, int64_t aCol, int64_t bRow,
                    int64_t bCol) {
  return m <= kSmallRows && k > 0 && (bCol == 1 || (bRow == 1 && aCol == 1));
}

/// The small-row product when the operands' layout suits it; false if not.
bool smallRows(int64_t m, int64_t n, int64_t k, const float *a, int64_t aRow,
               int64_t aCol, const float *b, int64_t bRow, int64_t bCol,
               float *c, int64_t cRow, bool accumulate) {
  bool rows = bCol == 1;
  if (!smallRowsApply(m, k, aCol, bRow, bCol))
    return false;
  if (m <= 0 || n <= 0)
    return true;                     // nothing to write
  for (int64_t i = 4; i < m; i += 4) // groups of 4 rows, the last first
    if (!smallRows(std::min<int64_t>(4, m - i), n, k, a + i * aRow, aRow, aCol,
                   b, bRow, bCol, c + i * cRow, cRow, accumulate))
      return false;
  auto run = [&](auto tag) {
    constexpr int R = decltype(tag)::value;
    if (rows)
      rowsTimesRows<R>(n, k, a, aRow, aCol, b, bRow, c, cRow, accumulate);
    else
      rowsTimesColumns<R>(n, k, a, aRow, b, bCol, c, cRow, accumulate);
  };
  switch (std::min<int64_t>(m, 4)) {
  case 1:
    run(std::integral_constant<int, 1>());
    break;
  case 2:
    run(std::integral_constant<int, 2>());
    break;
  case 3:
    run(std::integral_constant<int, 3>());
    break;
  default:
    run(std::integral_constant<int, 4>());
    break;
  }
  return true;
}

namespace {

using Operands = GemmOperands;

/// An operand at least this large is fetched ahead of its packing (see
/// Lookahead): no cache holds it. (GPT-2-small's vocabulary head, 256 x
/// 768 x 50257 on 2 threads, interleaved: 65.0 -> 60.6 ms; 1 thread 114.3
/// -> 105.5; PyTorch's 53.7 at 2.)
constexpr int64_t kLookaheadBytes = int64_t(16) << 20;

/// Rows of A packed at once when the A slivers live in L1: each sliver is
/// used from L1 for a whole B panel, so the block need not fit L2, and
/// packing all of a chunk's rows once per depth block (instead of once per
/// B panel as well) packs A once per chunk. 2304 rows of KC 256: 2.25 MB.
constexpr int64_t MA = AInL1 ? roundUp(2304, MR) : MC;

/// The blocked product C (+)= A B (the loop nest at the top), packing into
/// this thread's pa and pb.
void gemmBlocked(int64_t m, int64_t n, int64_t k, const Operands &o, float *pa,
                 float *pb) {
  // Even blocks of at most NC, KC and MA (the packing buffers' sizes).
  int64_t panels = (n + NC - 1) / NC, depths = (k + KC - 1) / KC;
  int64_t chunks = (m + MA - 1) / MA;
  int64_t ncStep = roundUp((n + panels - 1) / panels, NR);
  int64_t kcStep = (k + depths - 1) / depths;
  int64_t maStep = roundUp((m + chunks - 1) / chunks, MR);
  // A is always packed, even with one B panel, where each A sliver meets
  // at most NC / NR B slivers. (Read in place instead, from the rows of a
  // row-major A or the columns of an A^T, it was slower on Sapphire Rapids
  // with the operands in memory, as a training step leaves them, and warm:
  // GPT-mini's 2048x1024x256 6.4 packed vs 6.9 ms in place warm, 6.7 vs
  // 7.4 cold; its X^T dY 1024x256x2048 7.6 vs 7.8 cold. A^T's 48-byte
  // pieces a row apart do not stay in L1, and from memory come at a
  // stride the prefetchers do not follow.)
  // Rows [r0, r0 + rows) of A at depth pc packed for the kernel at pa + at.
  auto prepareA = [&](int64_t r0, int64_t rows, int64_t pc, int64_t kc,
                      int64_t at) {
    packA(rows, kc, o.a + r0 * o.aRow + pc * o.aCol, o.aRow, o.aCol, pa + at);
  };
  // What is packed next, fetched while the current tiles run: the A
  // sliver of rows [r0, r0 + MR) at depth pc, the B panel of columns
  // [c0, c0 + ncStep) at depth pc (none when r0 or c0 is past the end).
  // Only for an operand too large to be in a cache (a vocabulary head's
  // weight and logits gradient): operands that caches hold gain nothing
  // and lose to the extra instructions (1024^3 warm: 2-3% slower).
  Lookahead nextA, nextB;
  // (A sliver by sliver only from rows contiguous in p: an A^T's sliver
  // is 48-byte pieces of lines that the next sliver shares, packed better
  // a block at a time: 50257 x 768 x 256 51.6 -> 55.4 ms when it was not.)
  bool fetchA = AInL1 && o.aCol == 1 &&
                m * k * int64_t(sizeof(float)) >= kLookaheadBytes,
       fetchB = AInL1 && k * n * int64_t(sizeof(float)) >= kLookaheadBytes;
  // The register tile at row ir and column jr (of C) with the A block
  // prepared from row r0 and the B panel from column c0.
  auto tile = [&](int64_t r0, int64_t ir, int64_t c0, int64_t jr, int64_t kc,
                  bool acc, bool ahead) {
    float *c = o.c + ir * o.cRow + jr;
    int64_t mr = std::min<int64_t>(MR, m - ir),
            nr = std::min<int64_t>(NR, n - jr);
    if (ahead)
      microKernel<true>(kc, pa + (ir - r0) * kc, MR, pb + (jr - c0) * kc, c,
                        o.cRow, acc, mr, nr, &nextA, &nextB);
    else
      microKernel(kc, pa + (ir - r0) * kc, MR, pb + (jr - c0) * kc, c, o.cRow,
                  acc, mr, nr);
  };
  auto finish = [&](int64_t ic, int64_t mc, int64_t jc, int64_t nc) {
    // The block is final (and in L2): its epilogue now, over whole rows of
    // the block (long vector loops; per register tile the calls cost more
    // than they save).
    if (o.epilogue)
      o.epilogue->fn(o.epilogue->context, o.epilogueRow + ic,
                     o.epilogueCol + jc, mc, nc);
  };
  auto tilesOf = [](int64_t rows, int64_t cols) {
    return (rows + MR - 1) / MR * ((cols + NR - 1) / NR);
  };
  auto aimA = [&](int64_t r0, int64_t pc, int64_t calls) {
    if (!fetchA || r0 >= m || pc >= k)
      return nextA.aim(nullptr, 0, 0, 0, 0, 0);
    nextA.aim(o.a + r0 * o.aRow + pc * o.aCol, std::min<int64_t>(MR, m - r0),
              std::min(kcStep, k - pc), o.aRow, o.aCol, calls);
  };
  auto aimB = [&](int64_t pc, int64_t c0, int64_t calls) {
    if (!fetchB || pc >= k || c0 >= n)
      return nextB.aim(nullptr, 0, 0, 0, 0, 0);
    nextB.aim(o.b + pc * o.bRow + c0 * o.bCol, std::min(kcStep, k - pc),
              std::min(ncStep, n - c0), o.bRow, o.bCol, calls);
  };
  // With one B panel A is packed once per depth block either way, and a
  // block for L2 is consumed while it is still there: the nest below.
  if (AInL1 && panels > 1) {
    for (int64_t ia = 0; ia < m; ia += maStep) {
      int64_t ma = std::min(maStep, m - ia);
      for (int64_t pc = 0; pc < k; pc += kcStep) {
        int64_t kc = std::min(kcStep, k - pc);
        bool acc = o.accumulate || pc > 0;
        bool last = pc + kc >= k;
        prepareA(ia, ma, pc, kc, 0);
        for (int64_t jc = 0; jc < n; jc += ncStep) {
          int64_t nc = std::min(ncStep, n - jc);
          packB(kc, nc, o.b + pc * o.bRow + jc * o.bCol, o.bRow, o.bCol, pb);
          for (int64_t ic = ia; ic < ia + ma; ic += MC) {
            int64_t mc = std::min(MC, ia + ma - ic);
            for (int64_t ir = ic; ir < ic + mc; ir += MR)
              for (int64_t jr = jc; jr < jc + nc; jr += NR)
                tile(ia, ir, jc, jr, kc, acc, false);
            if (last)
              finish(ic, mc, jc, nc);
          }
        }
      }
    }
    return;
  }
  for (int64_t jc = 0; jc < n; jc += ncStep) {
    int64_t nc = std::min(ncStep, n - jc);
    for (int64_t pc = 0; pc < k; pc += kcStep) {
      int64_t kc = std::min(kcStep, k - pc);
      bool acc = o.accumulate || pc > 0;
      packB(kc, nc, o.b + pc * o.bRow + jc * o.bCol, o.bRow, o.bCol, pb);
      for (int64_t ic = 0; ic < m; ic += MC) {
        int64_t mc = std::min(MC, m - ic);
        if constexpr (AInL1) {
          // The next depth's B panel is fetched over the whole depth.
          if (ic == 0)
            aimB(pc + kc, jc, tilesOf(m, nc));
          if (fetchA) {
            // Each A sliver packed just before its tiles, which fetch the
            // next one (the next depth's first after the last).
            for (int64_t ir = ic; ir < ic + mc; ir += MR) {
              prepareA(ir, std::min<int64_t>(MR, m - ir), pc, kc,
                       (ir - ic) * kc);
              if (ir + MR < m)
                aimA(ir + MR, pc, tilesOf(MR, nc));
              else
                aimA(0, pc + kc, tilesOf(MR, nc));
              for (int64_t jr = jc; jr < jc + nc; jr += NR)
                tile(ic, ir, jc, jr, kc, acc, true);
            }
          } else {
            prepareA(ic, mc, pc, kc, 0);
            for (int64_t ir = ic; ir < ic + mc; ir += MR)
              for (int64_t jr = jc; jr < jc + nc; jr += NR)
                tile(ic, ir, jc, jr, kc, acc, fetchB);
          }
        } else {
          prepareA(ic, mc, pc, kc, 0);
          for (int64_t jr = jc; jr < jc + nc; jr += NR)
            for (int64_t ir = ic; ir < ic + mc; ir += MR)
              tile(ic, ir, jc, jr, kc, acc, false);
        }
        if (pc + kc >= k)
          finish(ic, mc, jc, nc);
      }
    }
  }
}

} // namespace

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
  // Few rows (a decode step) or no k: no packing, no team.
  if (k == 0 || smallRowsApply(m, k, aCol, bRow, bCol)) {
    for (int64_t bi = 0; bi < batch; ++bi) {
      Operands o = entry(bi);
      if (k == 0 && !accumulate)
        for (int64_t i = 0; i < m; ++i)
          std::memset(o.c + i * cRow, 0, size_t(n) * sizeof(float));
      if (k > 0)
        smallRows(m, n, k, o.a, aRow, aCol, o.b, bRow, bCol, o.c, cRow,
                  accumulate);
      if (epilogue)
        for (int64_t i = 0; i < m; i += MR)
          epilogue->fn(epilogue->context, o.epilogueRow + i, 0,
                       std::min<int64_t>(MR, m - i), n);
    }
    return true;
  }
  int team = gemmTeamSize(threads, batch * m * n * k);
  // Every member's packing buffers, the master's (kept per thread).
  int64_t kcMax = std::min(k, KC);
  // (Chunks of MA rows only with several B panels; one panel packs MC.)
  int64_t aFloats = roundUp(std::min(m, n > NC ? MA : MC), MR) * kcMax;
  int64_t bFloats = roundUp(std::min(n, NC), NR) * kcMax;
  thread_local Scratch packedA, packedB;
  float *pa = packedA.get(aFloats * team);
  float *pb = packedB.get(bFloats * team);
  if (!pa || !pb)
    return false;
  gemmOnTeam(team, batch, m, n, k, MR, NR, entry,
             [&](int t, int64_t m, int64_t n, int64_t k, const Operands &o) {
               gemmBlocked(m, n, k, o, pa + t * aFloats, pb + t * bFloats);
             });
  return true;
}

} // namespace loom::kernels::LOOM_GEMM_NS
