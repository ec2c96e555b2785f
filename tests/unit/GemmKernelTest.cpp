//===- GemmKernelTest.cpp - loom_sgemm against a double reference ---------===//
//
// Odd sizes around the register and cache blocks, transposed operands
// through strides, batches and accumulation, on random data, alone and on
// thread teams; the epilogue callback of loom_sgemm_epilogue sees every
// element once, after its last update, on every path (packed, few rows,
// k = 0, a team's shares of rows, columns or the batch).
//
//===----------------------------------------------------------------------===//

#include "loom/Kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <sys/syscall.h>
#include <unistd.h>

namespace {

struct Case {
  int64_t batch, m, n, k;
  bool transA, transB, accumulate;
  int64_t threads = 1; // the kernel's team (OpenMP threads)
};

void PrintTo(const Case &c, std::ostream *os) {
  *os << c.batch << "x" << c.m << "x" << c.n << "x" << c.k
      << (c.transA ? " A^T" : "") << (c.transB ? " B^T" : "")
      << (c.accumulate ? " +=" : "") << " threads " << c.threads;
}

class GemmKernelTest : public ::testing::TestWithParam<Case> {};

TEST_P(GemmKernelTest, MatchesDoubleReference) {
  const Case &t = GetParam();
  std::mt19937 rng(1234 + t.m * 7 + t.n * 13 + t.k);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  // Pad every row so that strides differ from the logical sizes.
  int64_t aRows = t.transA ? t.k : t.m, aCols = t.transA ? t.m : t.k;
  int64_t bRows = t.transB ? t.n : t.k, bCols = t.transB ? t.k : t.n;
  int64_t lda = aCols + 3, ldb = bCols + 5, ldc = t.n + 2;
  int64_t aBatch = aRows * lda + 1, bBatch = bRows * ldb + 7,
          cBatch = t.m * ldc + 3;
  std::vector<float> a(t.batch * aBatch), b(t.batch * bBatch),
      c(t.batch * cBatch);
  for (float &x : a)
    x = dist(rng);
  for (float &x : b)
    x = dist(rng);
  for (float &x : c)
    x = dist(rng);
  std::vector<float> before = c;
  int64_t aRow = t.transA ? 1 : lda, aCol = t.transA ? lda : 1;
  int64_t bRow = t.transB ? 1 : ldb, bCol = t.transB ? ldb : 1;
  loom_sgemm(t.batch, t.m, t.n, t.k, reinterpret_cast<int64_t>(a.data()),
             aBatch, aRow, aCol, reinterpret_cast<int64_t>(b.data()), bBatch,
             bRow, bCol, reinterpret_cast<int64_t>(c.data()), cBatch, ldc,
             t.accumulate, t.threads);
  double maxdiff = 0;
  for (int64_t bi = 0; bi < t.batch; ++bi)
    for (int64_t i = 0; i < t.m; ++i)
      for (int64_t j = 0; j < t.n; ++j) {
        int64_t at = bi * cBatch + i * ldc + j;
        double want = t.accumulate ? before[at] : 0.0;
        for (int64_t p = 0; p < t.k; ++p)
          want += double(a[bi * aBatch + i * aRow + p * aCol]) *
                  double(b[bi * bBatch + p * bRow + j * bCol]);
        maxdiff = std::max(maxdiff, std::abs(want - double(c[at])));
      }
  EXPECT_LT(maxdiff, 1e-5 * std::sqrt(double(std::max<int64_t>(t.k, 1))) * 4)
      << "isa " << loom_sgemm_isa();
  // Padding between rows and batches is never written.
  for (int64_t bi = 0; bi < t.batch; ++bi)
    for (int64_t i = 0; i < t.m; ++i)
      for (int64_t j = t.n;
           j < ldc && bi * cBatch + i * ldc + j < int64_t(c.size()); ++j)
        ASSERT_EQ(c[bi * cBatch + i * ldc + j],
                  before[bi * cBatch + i * ldc + j]);
}

/// What the epilogue test's callback sees: C's layout and a visit count
/// per element.
struct EpilogueProbe {
  float *c;
  int64_t m, ldc, cBatch;
  std::vector<int> visits; // [batch * m * ldc]
};

/// c = 2 c + 1 on the block: applied before the block's final update, the
/// result would be off; applied twice, too.
void doubleAndAddOne(int64_t context, int64_t row, int64_t col, int64_t rows,
                     int64_t cols) {
  auto *probe = reinterpret_cast<EpilogueProbe *>(context);
  for (int64_t r = row; r < row + rows; ++r) {
    int64_t bi = r / probe->m, i = r % probe->m;
    for (int64_t j = col; j < col + cols; ++j) {
      float &x = probe->c[bi * probe->cBatch + i * probe->ldc + j];
      x = 2 * x + 1;
      ++probe->visits[size_t((bi * probe->m + i) * probe->ldc + j)];
    }
  }
}

TEST_P(GemmKernelTest, EpilogueSeesEveryFinalBlockOnce) {
  const Case &t = GetParam();
  std::mt19937 rng(99 + t.m * 7 + t.n * 13 + t.k);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  int64_t lda = t.k + 1, ldb = t.n + 3, ldc = t.n + 2;
  int64_t aBatch = t.m * lda, bBatch = t.k * ldb, cBatch = t.m * ldc;
  std::vector<float> a(t.batch * aBatch), b(t.batch * bBatch),
      c(t.batch * cBatch), plain;
  for (float &x : a)
    x = dist(rng);
  for (float &x : b)
    x = dist(rng);
  for (float &x : c)
    x = dist(rng);
  plain = c;
  auto addr = [](std::vector<float> &v) {
    return reinterpret_cast<int64_t>(v.data());
  };
  loom_sgemm(t.batch, t.m, t.n, t.k, addr(a), aBatch, lda, 1, addr(b), bBatch,
             ldb, 1, addr(plain), cBatch, ldc, t.accumulate, 1);
  EpilogueProbe probe{c.data(), t.m, ldc, cBatch,
                      std::vector<int>(size_t(t.batch * t.m * ldc), 0)};
  loom_sgemm_epilogue(t.batch, t.m, t.n, t.k, addr(a), aBatch, lda, 1, addr(b),
                      bBatch, ldb, 1, addr(c), cBatch, ldc, t.accumulate,
                      reinterpret_cast<int64_t>(&doubleAndAddOne),
                      reinterpret_cast<int64_t>(&probe), t.threads);
  for (int64_t bi = 0; bi < t.batch; ++bi)
    for (int64_t i = 0; i < t.m; ++i)
      for (int64_t j = 0; j < t.n; ++j) {
        int64_t at = bi * cBatch + i * ldc + j;
        ASSERT_EQ(probe.visits[size_t((bi * t.m + i) * ldc + j)], 1)
            << "element " << bi << ", " << i << ", " << j;
        ASSERT_FLOAT_EQ(c[at], 2 * plain[at] + 1)
            << "element " << bi << ", " << i << ", " << j;
      }
}

std::vector<Case> cases() {
  std::vector<Case> all;
  for (int64_t m : {1, 7, 33, 257})
    for (int64_t n : {1, 7, 33, 257})
      for (int64_t k : {1, 7, 33, 257})
        all.push_back({1, m, n, k, false, false, false});
  // Beyond one cache block in every dim, transposes, batches, accumulation.
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (bool acc : {false, true}) {
        all.push_back({1, 150, 4200, 300, ta, tb, acc});
        all.push_back({3, 19, 45, 70, ta, tb, acc});
      }
  // More rows than one packed A chunk (MA) beside more than one B panel:
  // the depth loop outside the panels, A packed per chunk.
  all.push_back({1, 2400, 1100, 70, false, false, false});
  all.push_back({1, 2400, 1100, 270, true, true, true});
  // Operands of 16 MB and more, fetched ahead of their packing (a
  // vocabulary head's shapes, smaller): a row-major A sliver by sliver over
  // two row blocks, a B^T panel, an A^T (packed a block at a time) beside a
  // large B, and a team's column shares of both. (Only the AVX-512 copy,
  // whose A slivers stay in L1, fetches ahead; the others run them as
  // plain cases.)
  all.push_back({1, 150, 70, 30000, false, false, true});
  all.push_back({1, 40, 140, 30000, false, true, false});
  all.push_back({1, 13, 40, 110000, true, false, false});
  all.push_back({1, 30, 100, 150000, false, false, false, 2});
  // Several B panels and depth blocks of the AMX kernel (each depth block
  // up to 512, each panel up to 6 MB of packed B), every layout.
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      all.push_back({1, 160, 3000, 800, ta, tb, ta});
  // Few rows (decode steps: no packing), every layout, tails in n and k.
  for (int64_t m : {1, 2, 3, 4, 6, 8})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (bool acc : {false, true}) {
          all.push_back({1, m, 1030, 257, ta, tb, acc});
          all.push_back({2, m, 13, 9, ta, tb, acc});
        }
  all.push_back({2, 5, 9, 0, false, false, false});
  all.push_back({2, 5, 9, 0, false, false, true});
  // Thread teams (OpenMP; a team of one where the runtime gives fewer):
  // rows shared (M >= 2 register tiles per thread), columns shared (fewer
  // rows), a batch shared (an entry per thread) or not, panels of B beyond
  // NC and K beyond KC, ragged shares, below the team threshold.
  for (int64_t threads : {2, 3})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        all.push_back({1, 257, 4200, 300, ta, tb, false, threads});
        all.push_back({1, 33, 4133, 520, ta, tb, true, threads});
        all.push_back({1, 9, 1030, 257, ta, tb, false, threads});
        all.push_back({4, 70, 257, 130, ta, tb, true, threads});
        all.push_back({2, 150, 300, 257, ta, tb, false, threads});
        all.push_back({1, 7, 33, 257, ta, tb, false, threads});
      }
  return all;
}

INSTANTIATE_TEST_SUITE_P(Sizes, GemmKernelTest, ::testing::ValuesIn(cases()));

/// Every ISA's product is as accurate as f32 arithmetic, relative to the
/// magnitude of its terms: |C - exact| <= 6e-7 sum_p |A(i, p) B(p, j)| for
/// k up to 2000. Measured: the FMA kernels 0.7-3.2e-7 (AVX-512, AVX2 and
/// generic alike), the AMX kernel's six bf16 products 0.7-3.2e-7 as well;
/// with two of the six dropped it gave 1.0-1.7e-6, and two bf16 parts per
/// operand instead of three would be ~1e-5.
TEST(GemmAccuracy, AsAccurateAsF32Arithmetic) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  struct Shape {
    int64_t m, n, k;
  };
  // (The small ones run the FMA kernels, the large ones AMX where the
  // host has it: see amx::applies.)
  for (Shape s : {Shape{64, 64, 64}, Shape{40, 33, 2000}, Shape{300, 400, 700},
                  Shape{256, 512, 2000}})
    for (bool transB : {false, true}) {
      std::vector<float> a(s.m * s.k), b(s.k * s.n), c(s.m * s.n);
      for (float &x : a)
        x = dist(rng) * std::exp2(float(int(rng() % 9) - 4));
      for (float &x : b)
        x = dist(rng);
      int64_t bRow = transB ? 1 : s.n, bCol = transB ? s.k : 1;
      loom_sgemm(1, s.m, s.n, s.k, reinterpret_cast<int64_t>(a.data()), 0, s.k,
                 1, reinterpret_cast<int64_t>(b.data()), 0, bRow, bCol,
                 reinterpret_cast<int64_t>(c.data()), 0, s.n, 0, 1);
      double worst = 0;
      for (int64_t i = 0; i < s.m; ++i)
        for (int64_t j = 0; j < s.n; ++j) {
          double exact = 0, magnitude = 0;
          for (int64_t p = 0; p < s.k; ++p) {
            double t = double(a[i * s.k + p]) * b[p * bRow + j * bCol];
            exact += t;
            magnitude += std::abs(t);
          }
          worst = std::max(worst, std::abs(c[i * s.n + j] - exact) / magnitude);
        }
      std::printf("[accuracy] %lldx%lldx%lld%s: %.2e (%s)\n", (long long)s.m,
                  (long long)s.n, (long long)s.k, transB ? " B^T" : "", worst,
                  loom_sgemm_isa());
      EXPECT_LE(worst, 6e-7)
          << s.m << "x" << s.n << "x" << s.k << (transB ? " B^T" : "")
          << ", isa " << loom_sgemm_isa();
    }
}

/// Values far below the others (an underflowed softmax or gradient: 1e-35,
/// exp(-95), f32 subnormals) contribute nothing visible and leave the
/// values beside them alone, in every layout, on every kernel copy. (The
/// AMX kernel pairs depths q and q + 16 of each 32 in one lane: a part of a
/// subnormal once leaked into its partner's bits, turning 0.1 into -3e31.)
TEST(GemmAccuracy, TinyValuesLeaveTheirNeighboursAlone) {
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const float tiny[] = {3.3e-35f, 5.5e-42f, 1e-40f, -2e-39f, 1e-38f};
  int64_t m = 256, n = 256, k = 64;
  for (bool transA : {false, true})
    for (bool transB : {false, true}) {
      std::vector<float> a(m * k), b(k * n), c(m * n);
      // Depths 16-31 and 48-63 of A and B hold tiny values in every other
      // row or column: the partners of depths 0-15 and 32-47.
      for (int64_t i = 0; i < m; ++i)
        for (int64_t p = 0; p < k; ++p) {
          bool small = p % 32 >= 16 && i % 2 == 0;
          float x = small ? tiny[(i + p) % 5] : dist(rng);
          a[transA ? p * m + i : i * k + p] = x;
        }
      for (int64_t p = 0; p < k; ++p)
        for (int64_t j = 0; j < n; ++j) {
          bool small = p % 32 >= 16 && j % 3 == 0;
          float x = small ? tiny[(p + j) % 5] : dist(rng);
          b[transB ? j * k + p : p * n + j] = x;
        }
      int64_t aRow = transA ? 1 : k, aCol = transA ? m : 1;
      int64_t bRow = transB ? 1 : n, bCol = transB ? k : 1;
      loom_sgemm(1, m, n, k, reinterpret_cast<int64_t>(a.data()), 0, aRow, aCol,
                 reinterpret_cast<int64_t>(b.data()), 0, bRow, bCol,
                 reinterpret_cast<int64_t>(c.data()), 0, n, 0, 1);
      double worst = 0;
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double exact = 0, magnitude = 0;
          for (int64_t p = 0; p < k; ++p) {
            double t = double(a[i * aRow + p * aCol]) * b[p * bRow + j * bCol];
            exact += t;
            magnitude += std::abs(t);
          }
          double err = std::abs(c[i * n + j] - exact);
          worst = std::max(worst, magnitude > 0 ? err / magnitude : err);
        }
      EXPECT_LE(worst, 6e-7) << (transA ? "A^T " : "") << (transB ? "B^T " : "")
                             << "isa " << loom_sgemm_isa();
    }
}

/// Whether this CPU has AMX-BF16 tiles and AVX-512 (which the split of f32
/// into bf16 parts uses) and Linux lets this process use them.
bool amxRuns() {
  if (const char *v = std::getenv("LOOM_GEMM_AMX"); v && std::string(v) == "0")
    return false;
  unsigned eax, ebx, ecx, edx;
  __asm__("cpuid"
          : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx)
          : "a"(7), "c"(0));
  if (!(edx & (1u << 24)) || !(edx & (1u << 22)) || !(ebx & (1u << 16)))
    return false;
  constexpr long kReqXcompPerm = 0x1023, kXtileData = 18;
  return syscall(SYS_arch_prctl, kReqXcompPerm, kXtileData) == 0;
}

// Under ctest's KernelsIsa.<isa> entries (tests/unit/CMakeLists.txt) the
// kernel tests run through the copy LOOM_KERNEL_ISA names: check that it is
// the one dispatched to, or skip (and so mark the entry skipped) on a host
// without that ISA.
TEST(KernelIsa, DispatchesToTheRequestedCopy) {
  const char *wanted = std::getenv("LOOM_KERNEL_ISA");
  if (!wanted)
    GTEST_SKIP() << "LOOM_KERNEL_ISA is not set; the host's widest ISA is "
                 << loom_sgemm_isa();
  __builtin_cpu_init();
  std::string isa(wanted);
  bool runs = isa == "generic" ||
              (isa == "avx2" && __builtin_cpu_supports("avx2") &&
               __builtin_cpu_supports("fma")) ||
              (isa == "avx512" && __builtin_cpu_supports("avx512f")) ||
              (isa == "amx" && amxRuns());
  if (!runs)
    GTEST_SKIP() << "this CPU cannot run the " << isa << " kernels";
  EXPECT_EQ(std::string(loom_sgemm_isa()), isa);
}

} // namespace
