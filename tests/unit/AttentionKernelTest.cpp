//===- AttentionKernelTest.cpp - Flash attention kernels vs double --------===//
//
// loom_attention_forward/backward for one head against a direct double
// evaluation (scores, softmax, products), on random data: odd lengths,
// cross-attention, causal, key padding, rows that attend no key.
//
//===----------------------------------------------------------------------===//

#include "loom/Kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace {

struct Case {
  int64_t tq, tk, d, dv;
  bool causal, mask;
};

void PrintTo(const Case &c, std::ostream *os) {
  *os << "tq" << c.tq << " tk" << c.tk << " d" << c.d << " dv" << c.dv
      << (c.causal ? " causal" : "") << (c.mask ? " mask" : "");
}

class AttentionKernelTest : public ::testing::TestWithParam<Case> {};

int64_t address(const void *p) { return reinterpret_cast<int64_t>(p); }

TEST_P(AttentionKernelTest, MatchesDoubleReference) {
  const Case &t = GetParam();
  std::mt19937 rng(7 + t.tq * 31 + t.tk * 17 + t.d);
  std::normal_distribution<float> dist;
  auto random = [&](int64_t n) {
    std::vector<float> v(n);
    for (float &x : v)
      x = dist(rng);
    return v;
  };
  // q is stored transposed ([d, tq]) to exercise column strides.
  std::vector<float> q = random(t.tq * t.d), k = random(t.tk * t.d),
                     v = random(t.tk * t.dv), dO = random(t.tq * t.dv);
  std::vector<uint8_t> keep(t.tk, 1);
  if (t.mask)
    for (int64_t j = 0; j < t.tk; ++j)
      keep[j] = (j % 3 != 1) && j < t.tk - 2; // the last keys are padding
  double scale = 1.0 / std::sqrt(double(t.d));
  int64_t shift = t.tk - t.tq;
  auto Q = [&](int64_t i, int64_t c) { return double(q[c * t.tq + i]); };
  auto visible = [&](int64_t i, int64_t j) {
    return keep[j] && (!t.causal || j <= i + shift);
  };

  // Reference: P, o, lse, then the gradients.
  std::vector<double> P(t.tq * t.tk, 0.0), o(t.tq * t.dv, 0.0), lse(t.tq, 0.0);
  for (int64_t i = 0; i < t.tq; ++i) {
    double mx = -INFINITY;
    std::vector<double> s(t.tk, -INFINITY);
    for (int64_t j = 0; j < t.tk; ++j) {
      if (!visible(i, j))
        continue;
      double dot = 0;
      for (int64_t c = 0; c < t.d; ++c)
        dot += Q(i, c) * k[j * t.d + c];
      s[j] = dot * scale;
      mx = std::max(mx, s[j]);
    }
    if (mx == -INFINITY)
      continue;
    double sum = 0;
    for (int64_t j = 0; j < t.tk; ++j)
      sum += std::isinf(s[j]) ? 0.0 : std::exp(s[j] - mx);
    lse[i] = mx + std::log(sum);
    for (int64_t j = 0; j < t.tk; ++j)
      P[i * t.tk + j] = std::isinf(s[j]) ? 0.0 : std::exp(s[j] - lse[i]);
    for (int64_t j = 0; j < t.tk; ++j)
      for (int64_t c = 0; c < t.dv; ++c)
        o[i * t.dv + c] += P[i * t.tk + j] * v[j * t.dv + c];
  }
  // Gradients: dV = P^T dO, dP = dO v^T, dS = P o (dP - Delta) * scale.
  std::vector<double> dQ(t.tq * t.d, 0.0), dK(t.tk * t.d, 0.0),
      dV(t.tk * t.dv, 0.0);
  for (int64_t i = 0; i < t.tq; ++i) {
    double delta = 0;
    for (int64_t c = 0; c < t.dv; ++c)
      delta += dO[i * t.dv + c] * o[i * t.dv + c];
    for (int64_t j = 0; j < t.tk; ++j) {
      double p = P[i * t.tk + j];
      double dp = 0;
      for (int64_t c = 0; c < t.dv; ++c) {
        dV[j * t.dv + c] += p * dO[i * t.dv + c];
        dp += dO[i * t.dv + c] * v[j * t.dv + c];
      }
      double ds = p * (dp - delta) * scale;
      for (int64_t c = 0; c < t.d; ++c) {
        dQ[i * t.d + c] += ds * k[j * t.d + c];
        dK[j * t.d + c] += ds * Q(i, c);
      }
    }
  }
  // Every block shape the kernels support the corners of: the default, the
  // smallest and the largest queries with different key blocks.
  for (auto [blockQ, blockK] :
       {std::pair<int64_t, int64_t>{0, 0}, {32, 64}, {128, 128}}) {
    SCOPED_TRACE("blocks " + std::to_string(blockQ) + " x " +
                 std::to_string(blockK));
    std::vector<float> gotO(t.tq * t.dv, NAN), gotLse(t.tq, NAN);
    loom_attention_forward(
        t.tq, t.tk, t.d, t.dv, address(q.data()), 1, t.tq, address(k.data()),
        t.d, 1, address(v.data()), t.dv, 1, address(gotO.data()), t.dv,
        address(gotLse.data()), t.mask ? address(keep.data()) : 0, t.causal,
        scale, blockQ, blockK);
    double maxO = 0, maxLse = 0;
    for (int64_t i = 0; i < t.tq * t.dv; ++i)
      maxO = std::max(maxO, std::abs(double(gotO[i]) - o[i]));
    for (int64_t i = 0; i < t.tq; ++i)
      maxLse = std::max(maxLse, std::abs(double(gotLse[i]) - lse[i]));
    EXPECT_LT(maxO, 2e-5) << "isa " << loom_sgemm_isa();
    EXPECT_LT(maxLse, 2e-5);
    std::vector<float> gotDQ(t.tq * t.d, NAN), gotDK(t.tk * t.d, NAN),
        gotDV(t.tk * t.dv, NAN);
    loom_attention_backward(t.tq, t.tk, t.d, t.dv, address(q.data()), 1, t.tq,
                            address(k.data()), t.d, 1, address(v.data()), t.dv,
                            1, address(gotO.data()), t.dv, 1,
                            address(gotLse.data()), address(dO.data()), t.dv, 1,
                            t.mask ? address(keep.data()) : 0, t.causal, scale,
                            address(gotDQ.data()), t.d, address(gotDK.data()),
                            t.d, address(gotDV.data()), t.dv, blockQ, blockK);
    auto maxdiff = [](const std::vector<float> &got,
                      const std::vector<double> &want) {
      double m = 0;
      for (size_t i = 0; i < got.size(); ++i)
        m = std::max(m, std::abs(double(got[i]) - want[i]));
      return m;
    };
    double tol = 5e-5 * std::sqrt(double(t.tk));
    EXPECT_LT(maxdiff(gotDQ, dQ), tol);
    EXPECT_LT(maxdiff(gotDK, dK), tol);
    EXPECT_LT(maxdiff(gotDV, dV), tol);
  }
}

std::vector<Case> cases() {
  std::vector<Case> all;
  for (int64_t t : {1, 7, 64, 257})
    for (bool causal : {false, true})
      for (bool mask : {false, true})
        all.push_back({t, t, 64, 64, causal, mask});
  for (int64_t d : {16, 80}) {
    all.push_back({65, 65, d, d, true, false});
    all.push_back({33, 130, d, 24, false, true}); // cross-attention
    all.push_back({130, 33, d, d, true, true});   // early rows see nothing
  }
  all.push_back({200, 1024, 64, 64, true, true});
  // Few queries (decode steps: the unpacked path), the last of a long cache.
  for (bool causal : {false, true})
    for (bool mask : {false, true}) {
      all.push_back({1, 300, 64, 64, causal, mask});
      all.push_back({3, 77, 20, 36, causal, mask});
      all.push_back({4, 4, 64, 64, causal, mask});
    }
  // A head dim beyond the GEMM's depth block (KC: 256 or 384).
  all.push_back({20, 33, 400, 24, true, true});
  return all;
}

INSTANTIATE_TEST_SUITE_P(Heads, AttentionKernelTest,
                         ::testing::ValuesIn(cases()));

} // namespace
