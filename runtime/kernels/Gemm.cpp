//===- Gemm.cpp - loom_sgemm: the host's GEMM, chosen once ----------------===//
//
// The one place where the host's vector ISA picks a GEMM: GemmIsa.cpp is
// compiled once per ISA, and the first call reads the CPU's features.
//
//===----------------------------------------------------------------------===//

#include "loom/Kernels.h"

#define LOOM_DECLARE_GEMM(NS)                                                  \
  namespace loom::kernels::NS {                                                \
  bool sgemm(int64_t batch, int64_t m, int64_t n, int64_t k, const float *a,   \
             int64_t aBatch, int64_t aRow, int64_t aCol, const float *b,       \
             int64_t bBatch, int64_t bRow, int64_t bCol, float *c,             \
             int64_t cBatch, int64_t cRow, bool accumulate);                   \
  }
LOOM_DECLARE_GEMM(avx512)
LOOM_DECLARE_GEMM(avx2)
LOOM_DECLARE_GEMM(generic)
#undef LOOM_DECLARE_GEMM

namespace {

using GemmFn = decltype(&loom::kernels::generic::sgemm);

struct Choice {
  GemmFn fn;
  const char *isa;
};

Choice choose() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f"))
    return {&loom::kernels::avx512::sgemm, "avx512"};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return {&loom::kernels::avx2::sgemm, "avx2"};
  return {&loom::kernels::generic::sgemm, "generic"};
}

const Choice &chosen() {
  static const Choice choice = choose();
  return choice;
}

} // namespace

extern "C" void loom_sgemm(int64_t batch, int64_t m, int64_t n, int64_t k,
                           int64_t a, int64_t aBatch, int64_t aRow,
                           int64_t aCol, int64_t b, int64_t bBatch,
                           int64_t bRow, int64_t bCol, int64_t c,
                           int64_t cBatch, int64_t cRow, int64_t accumulate) {
  bool ok = chosen().fn(batch, m, n, k, reinterpret_cast<const float *>(a),
                        aBatch, aRow, aCol, reinterpret_cast<const float *>(b),
                        bBatch, bRow, bCol, reinterpret_cast<float *>(c),
                        cBatch, cRow, accumulate != 0);
  if (ok)
    return;
  // The packing buffers (a few MB per thread) could not be allocated:
  // compiled code has no error channel, so compute without them.
  auto *A = reinterpret_cast<const float *>(a);
  auto *B = reinterpret_cast<const float *>(b);
  auto *C = reinterpret_cast<float *>(c);
  for (int64_t bi = 0; bi < batch; ++bi)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        float sum = accumulate ? C[bi * cBatch + i * cRow + j] : 0.0f;
        for (int64_t p = 0; p < k; ++p)
          sum += A[bi * aBatch + i * aRow + p * aCol] *
                 B[bi * bBatch + p * bRow + j * bCol];
        C[bi * cBatch + i * cRow + j] = sum;
      }
}

extern "C" const char *loom_sgemm_isa() { return chosen().isa; }
