//===- AttentionIsa.cpp - Flash attention for one head, one vector ISA ----===//
//
// Compiled once per instruction set like GemmIsa.cpp (LOOM_GEMM_NS and
// LOOM_GEMM_LANES pick the namespace and the vector width); the block
// products run this ISA's GEMM micro-kernel on packed panels (GemmIsa.cpp's
// packPanelA/B and gemmPanels), so no T x T buffer exists: only one
// [BQ x BK] block of scores per thread.
//
// Forward (FlashAttention-2): for each block of BQ queries, stream blocks of
// BK keys:
//
//   S   = scale * Q_i K_j^T            [BQ, BK], masked entries -inf
//   m'  = max(m, rowmax S);  alpha = exp(m - m')
//   P   = exp(S - m');  l = alpha l + rowsum P
//   acc = alpha acc + P V_j            [BQ, Dv]
//
// then o = acc / l and lse = m + log l (0 and 0 for a row that attends no
// key). Causal attention stops at the last key block the block's last query
// sees. Backward, per key block j (outer) and query block i (inner, from the
// first query that sees block j):
//
//   P  = exp(S - lse_i);  dV_j += P^T dO_i;  dP = dO_i V_j^T
//   dS = P o (dP - Delta_i) * scale;  dQ_i += dS K_j;  dK_j += dS^T Q_i
//
// with Delta = rowsum(dO o O).
//
//===----------------------------------------------------------------------===//

#include "runtime/kernels/Scratch.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>

namespace loom::kernels::LOOM_GEMM_NS {

void packPanelA(int64_t m, int64_t k, const float *a, int64_t aRow,
                int64_t aCol, float scale, float *pa);
void packPanelB(int64_t k, int64_t n, const float *b, int64_t bRow,
                int64_t bCol, float *pb);
void gemmPanels(int64_t m, int64_t n, int64_t k, const float *pa,
                int64_t aStride, const float *pb, int64_t bStride, float *c,
                int64_t ldc, bool accumulate);

namespace {

using loom::kernels::Scratch;

constexpr int W = LOOM_GEMM_LANES;
/// The GEMM's register tile: packed panels hold MR-tall / NR-wide slivers.
constexpr int64_t MR = LOOM_GEMM_MR, NR = 2 * W;
/// Query and key block sizes (the kernels' blockQ / blockK arguments, 0
/// for these defaults): a [~64 x 256] score block (66 KB) and the [~64 x Dv]
/// accumulator stay in L2 while K and V stream. Measured (Zen 3, AVX2,
/// causal forward, 1 thread, T 1024 / 8192): BK 64 8.7 / 494 ms, 96 8.3 /
/// 477, 128 8.2 / 472, 256 8.0 / 463; BQ 128 with BK 128 8.7 / 475, BQ 32
/// with BK 256 7.9 / 464. The backward is the same (within 1%) at each.
constexpr int64_t kDefaultBlockQ = 64, kDefaultBlockK = 256;

constexpr int64_t roundUp(int64_t x, int64_t to) {
  return (x + to - 1) / to * to;
}
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

typedef float vec __attribute__((ext_vector_type(W)));
typedef int32_t ivec __attribute__((ext_vector_type(W)));

inline vec load(const float *p) {
  vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float *p, vec v) { std::memcpy(p, &v, sizeof v); }

/// exp on a vector: 2^n * p(r), x = n ln2 + r, |r| <= ln2 / 2, a degree-6
/// polynomial (relative error ~2e-7); -inf gives 0, inputs below -87.3
/// give 0 or a denormal's worth. `Masked` false: no input is -inf.
template <bool Masked = true> inline vec expv(vec x) {
  vec lo = -87.3f, hi = 88.3f;
  vec clamped = __builtin_elementwise_min(__builtin_elementwise_max(x, lo), hi);
  vec n = __builtin_elementwise_roundeven(clamped * 1.44269504088896341f);
  vec r = clamped - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  vec p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  ivec bits = (__builtin_convertvector(n, ivec) + 127) << 23;
  vec scaleBits;
  std::memcpy(&scaleBits, &bits, sizeof bits);
  vec result = p * scaleBits;
  if constexpr (!Masked)
    return result;
  vec zero = 0.0f;
  return x == kNegInf ? zero : result;
}

/// max(init, row[0..n)), vectorized (the scores hold no NaN: a NaN input
/// propagates through the products and the exp regardless).
inline float rowMax(const float *row, int64_t n, float init) {
  vec acc = kNegInf;
  int64_t j = 0;
  for (; j + W <= n; j += W)
    acc = __builtin_elementwise_max(acc, load(row + j));
  float mx = init;
  for (int lane = 0; lane < W; ++lane)
    mx = std::max(mx, acc[lane]);
  for (; j < n; ++j)
    mx = std::max(mx, row[j]);
  return mx;
}

/// Queries at most this many (decode steps) skip the packed block products.
constexpr int64_t kFewQueries = 4;

/// The forward of a few queries straight from rows of K and V (columns
/// contiguous), nothing packed: per query one pass over the keys it may
/// attend for the scores, then one for the weighted sum of V.
bool fewQueries(int64_t tq, int64_t tk, int64_t d, int64_t dv, const float *q,
                int64_t qRow, int64_t qCol, const float *k, int64_t kRow,
                const float *v, int64_t vRow, float *o, int64_t oRow,
                float *lse, const uint8_t *keyMask, bool causal, float scale) {
  thread_local Scratch sBuf, qBuf;
  float *s = sBuf.get(std::max<int64_t>(tk, 1));
  float *qs = qBuf.get(std::max<int64_t>(d, 1));
  if (!s || !qs)
    return false;
  int64_t shift = tk - tq;
  for (int64_t i = 0; i < tq; ++i) {
    int64_t end = causal ? std::clamp<int64_t>(i + shift + 1, 0, tk) : tk;
    for (int64_t c = 0; c < d; ++c)
      qs[c] = q[i * qRow + c * qCol] * scale;
    for (int64_t j = 0; j < end; ++j) {
      if (keyMask && !keyMask[j]) {
        s[j] = kNegInf;
        continue;
      }
      const float *kr = k + j * kRow;
      vec acc = 0.0f;
      int64_t c = 0;
      for (; c + W <= d; c += W)
        acc += load(qs + c) * load(kr + c);
      float dot = 0;
      for (; c < d; ++c)
        dot += qs[c] * kr[c];
      for (int lane = 0; lane < W; ++lane)
        dot += acc[lane];
      s[j] = dot;
    }
    float *out = o + i * oRow;
    std::fill(out, out + dv, 0.0f);
    float mx = rowMax(s, end, kNegInf);
    if (mx == kNegInf) { // attends no key
      if (lse)
        lse[i] = 0;
      continue;
    }
    float sum = 0;
    int64_t j = 0;
    vec vsum = 0.0f;
    for (; j + W <= end; j += W) {
      vec p = expv(load(s + j) - mx);
      store(s + j, p);
      vsum += p;
    }
    for (; j < end; ++j)
      sum += s[j] = s[j] == kNegInf ? 0.0f : std::exp(s[j] - mx);
    for (int lane = 0; lane < W; ++lane)
      sum += vsum[lane];
    for (j = 0; j < end; ++j) {
      float p = s[j];
      if (p == 0)
        continue;
      const float *vr = v + j * vRow;
      int64_t c = 0;
      for (; c + W <= dv; c += W)
        store(out + c, load(out + c) + p * load(vr + c));
      for (; c < dv; ++c)
        out[c] += p * vr[c];
    }
    float inv = 1.0f / sum;
    for (int64_t c = 0; c < dv; ++c)
      out[c] *= inv;
    if (lse)
      lse[i] = mx + std::log(sum);
  }
  return true;
}

/// One head's operands: X(i, c) = x[i * row + c * col].
struct View {
  const float *p;
  int64_t row, col;
  const float *at(int64_t i) const { return p + i * row; }
};

/// The kernels for one block shape: BQ queries (a whole number of
/// register tiles) by BK keys (a whole number of slivers).
template <int64_t BQ, int64_t BK> struct Flash {
  static_assert(BQ % MR == 0 && BK % NR == 0,
                "blocks must hold whole register tiles and slivers");

  /// Sets masked entries of the [bq x bk] block `s` (row stride BK) at query
  /// i0 and key j0 to -inf: keys the padding mask drops, and with causal keys
  /// after query + shift.
  static void maskBlock(float *s, int64_t bq, int64_t bk, int64_t i0,
                        int64_t j0, const uint8_t *keyMask, bool causal,
                        int64_t shift) {
    if (keyMask)
      for (int64_t j = 0; j < bk; ++j)
        if (!keyMask[j0 + j])
          for (int64_t i = 0; i < bq; ++i)
            s[i * BK + j] = kNegInf;
    if (!causal || j0 + bk - 1 <= i0 + shift)
      return;
    for (int64_t i = 0; i < bq; ++i)
      for (int64_t j = std::max<int64_t>(0, i0 + i + shift + 1 - j0); j < bk;
           ++j)
        s[i * BK + j] = kNegInf;
  }

  /// Keys [0, end) that some query of block [i0, i0 + bq) may attend.
  static int64_t keyEnd(int64_t tk, int64_t i0, int64_t bq, bool causal,
                        int64_t shift) {
    if (!causal)
      return tk;
    return std::clamp<int64_t>(i0 + bq + shift, 0, tk);
  }

  /// The online-softmax step of one block of scores `s` (row stride BK):
  /// the running max m and sum l of each row are updated, the accumulator
  /// rows rescaled, and the block overwritten with P = exp(s - m). `Masked`
  /// false: the block has no -inf (no mask touches it), so exp skips the
  /// check.
  template <bool Masked>
  static void softmaxBlock(float *s, int64_t bq, int64_t bk, float *m, float *l,
                           float *acc, int64_t dv) {
    for (int64_t i = 0; i < bq; ++i) {
      float *row = s + i * BK;
      float mx = rowMax(row, bk, m[i]);
      if (mx == kNegInf) { // nothing attended yet: P row is 0
        std::fill(row, row + bk, 0.0f);
        continue;
      }
      float alpha = m[i] == kNegInf ? 0.0f : std::exp(m[i] - mx);
      vec sum = 0.0f;
      int64_t j = 0;
      for (; j + W <= bk; j += W) {
        vec p = expv<Masked>(load(row + j) - mx);
        store(row + j, p);
        sum += p;
      }
      float tail = 0;
      for (; j < bk; ++j) {
        row[j] = row[j] == kNegInf ? 0.0f : std::exp(row[j] - mx);
        tail += row[j];
      }
      for (int lane = 0; lane < W; ++lane)
        tail += sum[lane];
      l[i] = l[i] * alpha + tail;
      m[i] = mx;
      if (alpha != 1.0f)
        for (int64_t c = 0; c < dv; ++c)
          acc[i * dv + c] *= alpha;
    }
  }

  /// o = acc / l and lse = m + log l for the rows [i0, i0 + bq); 0 and 0 for
  /// a row that attends no key.
  static void finishRows(int64_t i0, int64_t bq, int64_t dv, const float *acc,
                         const float *m, const float *l, float *o, int64_t oRow,
                         float *lse) {
    for (int64_t i = 0; i < bq; ++i) {
      float *out = o + (i0 + i) * oRow;
      float inv = l[i] > 0 ? 1.0f / l[i] : 0.0f;
      for (int64_t c = 0; c < dv; ++c)
        out[c] = acc[i * dv + c] * inv;
      if (lse)
        lse[i0 + i] = l[i] > 0 ? m[i] + std::log(l[i]) : 0.0f;
    }
  }

  /// P = exp(s - lse) over a block of scores (row stride BK), 0 where masked.
  static void expBlock(float *p, int64_t bq, int64_t bk, const float *lse) {
    for (int64_t i = 0; i < bq; ++i) {
      float *row = p + i * BK;
      float rowLse = lse[i];
      int64_t j = 0;
      for (; j + W <= bk; j += W)
        store(row + j, expv(load(row + j) - rowLse));
      for (; j < bk; ++j)
        row[j] = row[j] == kNegInf ? 0.0f : std::exp(row[j] - rowLse);
    }
  }

  /// dS = P o (dP - Delta) * scale, into dP (both row stride BK).
  static void dsBlock(const float *p, float *dP, int64_t bq, int64_t bk,
                      const float *delta, float scale) {
    for (int64_t i = 0; i < bq; ++i) {
      float di = delta[i];
      for (int64_t j = 0; j < bk; ++j)
        dP[i * BK + j] = p[i * BK + j] * (dP[i * BK + j] - di) * scale;
    }
  }

  /// The backward's start: Delta = rowsum(dO o O), and dQ, dK, dV zeroed.
  static void startBackward(int64_t tq, int64_t tk, int64_t d, int64_t dv,
                            const float *o, int64_t oRow, int64_t oCol,
                            const float *dO, int64_t dORow, int64_t dOCol,
                            float *delta, float *dQ, int64_t dQRow, float *dK,
                            int64_t dKRow, float *dV, int64_t dVRow) {
    for (int64_t i = 0; i < tq; ++i) {
      float sum = 0;
      for (int64_t c = 0; c < dv; ++c)
        sum += dO[i * dORow + c * dOCol] * o[i * oRow + c * oCol];
      delta[i] = sum;
    }
    for (int64_t i = 0; i < tq; ++i)
      std::fill(dQ + i * dQRow, dQ + i * dQRow + d, 0.0f);
    for (int64_t j = 0; j < tk; ++j) {
      std::fill(dK + j * dKRow, dK + j * dKRow + d, 0.0f);
      std::fill(dV + j * dVRow, dV + j * dVRow + dv, 0.0f);
    }
  }

  static bool forward(int64_t tq, int64_t tk, int64_t d, int64_t dv,
                      const float *q, int64_t qRow, int64_t qCol,
                      const float *k, int64_t kRow, int64_t kCol,
                      const float *v, int64_t vRow, int64_t vCol, float *o,
                      int64_t oRow, float *lse, const uint8_t *keyMask,
                      bool causal, float scale) {
    // The GEMM operands packed once: K and V for the whole head, Q (scaled)
    // once per query block; only P is packed per block pair.
    thread_local Scratch sBuf, accBuf, qBuf, pBuf, kBuf, vBuf;
    float *s = sBuf.get(BQ * BK);
    float *acc = accBuf.get(BQ * dv);
    float *qp = qBuf.get(BQ * d);
    float *pp = pBuf.get(BQ * BK);
    float *kp = kBuf.get(roundUp(tk, NR) * d);
    float *vp = vBuf.get(roundUp(dv, NR) * tk);
    if (!s || !acc || !qp || !pp || !kp || !vp)
      return false;
    packPanelB(d, tk, k, kCol, kRow, kp);  // B(p, j) = K[j][p]
    packPanelB(tk, dv, v, vRow, vCol, vp); // B(j, c) = V[j][c]
    int64_t shift = tk - tq;
    float m[BQ], l[BQ];
    for (int64_t i0 = 0; i0 < tq; i0 += BQ) {
      int64_t bq = std::min(BQ, tq - i0);
      std::fill(m, m + bq, kNegInf);
      std::fill(l, l + bq, 0.0f);
      std::fill(acc, acc + bq * dv, 0.0f);
      int64_t end = keyEnd(tk, i0, bq, causal, shift);
      if (end > 0)
        packPanelA(bq, d, q + i0 * qRow, qRow, qCol, scale, qp);
      for (int64_t j0 = 0; j0 < end; j0 += BK) {
        int64_t bk = std::min(BK, end - j0);
        gemmPanels(bq, bk, d, qp, d * MR, kp + j0 / NR * d * NR, d * NR, s, BK,
                   false);
        if (keyMask || (causal && j0 + bk - 1 > i0 + shift)) {
          maskBlock(s, bq, bk, i0, j0, keyMask, causal, shift);
          softmaxBlock<true>(s, bq, bk, m, l, acc, dv);
        } else {
          softmaxBlock<false>(s, bq, bk, m, l, acc, dv);
        }
        packPanelA(bq, bk, s, BK, 1, 1.0f, pp);
        gemmPanels(bq, dv, bk, pp, bk * MR, vp + j0 * NR, tk * NR, acc, dv,
                   true);
      }
      finishRows(i0, bq, dv, acc, m, l, o, oRow, lse);
    }
    return true;
  }

  static bool backward(int64_t tq, int64_t tk, int64_t d, int64_t dv,
                       const float *q, int64_t qRow, int64_t qCol,
                       const float *k, int64_t kRow, int64_t kCol,
                       const float *v, int64_t vRow, int64_t vCol,
                       const float *o, int64_t oRow, int64_t oCol,
                       const float *lse, const float *dO, int64_t dORow,
                       int64_t dOCol, const uint8_t *keyMask, bool causal,
                       float scale, float *dQ, int64_t dQRow, float *dK,
                       int64_t dKRow, float *dV, int64_t dVRow) {
    // Q and dO packed once per head in the two roles each plays (A and B
    // operand), K and V once per key block; P and dS per block pair.
    thread_local Scratch pBuf, dPBuf, deltaBuf, qaBuf, doaBuf, dobBuf, qbBuf,
        kbBuf, vbBuf, kb2Buf, tBuf;
    float *p = pBuf.get(BQ * BK);
    float *dP = dPBuf.get(BQ * BK);
    float *delta = deltaBuf.get(tq);
    float *qA = qaBuf.get(roundUp(tq, MR) * d);
    float *dOA = doaBuf.get(roundUp(tq, MR) * dv);
    float *dOB = dobBuf.get(roundUp(dv, NR) * tq);
    float *qB = qbBuf.get(roundUp(d, NR) * tq);
    float *kB = kbBuf.get(BK * d);
    float *vB = vbBuf.get(BK * dv);
    float *kB2 = kb2Buf.get(roundUp(d, NR) * BK);
    float *tA = tBuf.get(std::max(roundUp(BK, MR) * BQ, BQ * BK));
    if (!p || !dP || !delta || !qA || !dOA || !dOB || !qB || !kB || !vB ||
        !kB2 || !tA)
      return false;
    int64_t shift = tk - tq;
    startBackward(tq, tk, d, dv, o, oRow, oCol, dO, dORow, dOCol, delta, dQ,
                  dQRow, dK, dKRow, dV, dVRow);
    packPanelA(tq, d, q, qRow, qCol, scale, qA);     // S = (scale Q) K^T
    packPanelA(tq, dv, dO, dORow, dOCol, 1.0f, dOA); // dP = dO V^T
    packPanelB(tq, dv, dO, dORow, dOCol, dOB);       // dV += P^T dO
    packPanelB(tq, d, q, qRow, qCol, qB);            // dK += dS^T Q
    for (int64_t j0 = 0; j0 < tk; j0 += BK) {
      int64_t bk = std::min(BK, tk - j0);
      const float *kj = k + j0 * kRow, *vj = v + j0 * vRow;
      packPanelB(d, bk, kj, kCol, kRow, kB);  // B(p, j) = K[j][p]
      packPanelB(dv, bk, vj, vCol, vRow, vB); // B(c, j) = V[j][c]
      packPanelB(bk, d, kj, kRow, kCol, kB2); // B(j, c) = K[j][c]
      // Query i sees key j when j <= i + shift: start at the block holding
      // the first query that sees key j0.
      int64_t first = causal ? std::max<int64_t>(0, j0 - shift) : 0;
      for (int64_t i0 = first / BQ * BQ; i0 < tq; i0 += BQ) {
        int64_t bq = std::min(BQ, tq - i0);
        if (keyEnd(tk, i0, bq, causal, shift) <= j0)
          continue;
        // P = exp(scale q_i k_j^T - lse_i), 0 where masked.
        gemmPanels(bq, bk, d, qA + i0 / MR * d * MR, d * MR, kB, d * NR, p, BK,
                   false);
        maskBlock(p, bq, bk, i0, j0, keyMask, causal, shift);
        expBlock(p, bq, bk, lse + i0);
        // dV_j += P^T dO_i
        packPanelA(bk, bq, p, 1, BK, 1.0f, tA);
        gemmPanels(bk, dv, bq, tA, bq * MR, dOB + i0 * NR, tq * NR,
                   dV + j0 * dVRow, dVRow, true);
        // dP = dO_i V_j^T, then dS into dP
        gemmPanels(bq, bk, dv, dOA + i0 / MR * dv * MR, dv * MR, vB, dv * NR,
                   dP, BK, false);
        dsBlock(p, dP, bq, bk, delta + i0, scale);
        // dQ_i += dS K_j
        packPanelA(bq, bk, dP, BK, 1, 1.0f, tA);
        gemmPanels(bq, d, bk, tA, bk * MR, kB2, bk * NR, dQ + i0 * dQRow, dQRow,
                   true);
        // dK_j += dS^T Q_i
        packPanelA(bk, bq, dP, 1, BK, 1.0f, tA);
        gemmPanels(bk, d, bq, tA, bq * MR, qB + i0 * NR, tq * NR,
                   dK + j0 * dKRow, dKRow, true);
      }
    }
    return true;
  }
};

} // namespace

/// The supported block size nearest `want` (0: `fallback`).
static int64_t nearestBlock(int64_t want, int64_t fallback,
                            std::initializer_list<int64_t> sizes) {
  if (want <= 0)
    return fallback;
  int64_t best = *sizes.begin();
  for (int64_t size : sizes)
    if (std::abs(size - want) < std::abs(best - want))
      best = size;
  return best;
}

#define LOOM_FLASH_BLOCKS(X)                                                   \
  X(32, 64)                                                                    \
  X(32, 128)                                                                   \
  X(32, 256) X(64, 64) X(64, 128) X(64, 256) X(128, 64) X(128, 128) X(128, 256)

/// Calls `run(Flash<BQ, BK>{})` for the supported block shape nearest
/// (blockQ, blockK), BQ rounded up to whole register tiles.
template <typename Run>
static bool withBlocks(int64_t blockQ, int64_t blockK, Run run) {
  int64_t bq = nearestBlock(blockQ, kDefaultBlockQ, {32, 64, 128});
  int64_t bk = nearestBlock(blockK, kDefaultBlockK, {64, 128, 256});
#define LOOM_FLASH_CASE(Q, K)                                                  \
  if (bq == Q && bk == K)                                                      \
    return run(Flash<roundUp(Q, MR), K>{});
  LOOM_FLASH_BLOCKS(LOOM_FLASH_CASE)
#undef LOOM_FLASH_CASE
  return false;
}

bool attentionForward(int64_t tq, int64_t tk, int64_t d, int64_t dv,
                      const float *q, int64_t qRow, int64_t qCol,
                      const float *k, int64_t kRow, int64_t kCol,
                      const float *v, int64_t vRow, int64_t vCol, float *o,
                      int64_t oRow, float *lse, const uint8_t *keyMask,
                      bool causal, float scale, int64_t blockQ,
                      int64_t blockK) {
  if (tq <= kFewQueries && kCol == 1 && vCol == 1)
    return fewQueries(tq, tk, d, dv, q, qRow, qCol, k, kRow, v, vRow, o, oRow,
                      lse, keyMask, causal, scale);
  return withBlocks(blockQ, blockK, [&](auto flash) {
    return decltype(flash)::forward(tq, tk, d, dv, q, qRow, qCol, k, kRow, kCol,
                                    v, vRow, vCol, o, oRow, lse, keyMask,
                                    causal, scale);
  });
}

bool attentionBackward(int64_t tq, int64_t tk, int64_t d, int64_t dv,
                       const float *q, int64_t qRow, int64_t qCol,
                       const float *k, int64_t kRow, int64_t kCol,
                       const float *v, int64_t vRow, int64_t vCol,
                       const float *o, int64_t oRow, int64_t oCol,
                       const float *lse, const float *dO, int64_t dORow,
                       int64_t dOCol, const uint8_t *keyMask, bool causal,
                       float scale, float *dQ, int64_t dQRow, float *dK,
                       int64_t dKRow, float *dV, int64_t dVRow, int64_t blockQ,
                       int64_t blockK) {
  return withBlocks(blockQ, blockK, [&](auto flash) {
    return decltype(flash)::backward(tq, tk, d, dv, q, qRow, qCol, k, kRow,
                                     kCol, v, vRow, vCol, o, oRow, oCol, lse,
                                     dO, dORow, dOCol, keyMask, causal, scale,
                                     dQ, dQRow, dK, dKRow, dV, dVRow);
  });
}

} // namespace loom::kernels::LOOM_GEMM_NS
