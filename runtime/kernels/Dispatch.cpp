//===- Dispatch.cpp - The host's kernels, chosen once ---------------------===//
//
// The one place where the host's vector ISA picks the kernels: GemmIsa.cpp
// and AttentionIsa.cpp are compiled once per ISA, and the first call reads
// the CPU's features.
//
//===----------------------------------------------------------------------===//

#include "loom/Kernels.h"
#include "runtime/kernels/Epilogue.h"
#include "runtime/kernels/GemmAmx.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string_view>
#include <tuple>
#include <vector>

#define LOOM_DECLARE_KERNELS(NS)                                               \
  namespace loom::kernels::NS {                                                \
  bool sgemm(int64_t batch, int64_t m, int64_t n, int64_t k, const float *a,   \
             int64_t aBatch, int64_t aRow, int64_t aCol, const float *b,       \
             int64_t bBatch, int64_t bRow, int64_t bCol, float *c,             \
             int64_t cBatch, int64_t cRow, bool accumulate,                    \
             const GemmEpilogue *epilogue, int64_t threads);                   \
  bool attentionForward(int64_t tq, int64_t tk, int64_t d, int64_t dv,         \
                        const float *q, int64_t qRow, int64_t qCol,            \
                        const float *k, int64_t kRow, int64_t kCol,            \
                        const float *v, int64_t vRow, int64_t vCol, float *o,  \
                        int64_t oRow, float *lse, const uint8_t *keyMask,      \
                        bool causal, float scale, int64_t blockQ,              \
                        int64_t blockK);                                       \
  bool attentionBackward(int64_t tq, int64_t tk, int64_t d, int64_t dv,        \
                         const float *q, int64_t qRow, int64_t qCol,           \
                         const float *k, int64_t kRow, int64_t kCol,           \
                         const float *v, int64_t vRow, int64_t vCol,           \
                         const float *o, int64_t oRow, int64_t oCol,           \
                         const float *lse, const float *dO, int64_t dORow,     \
                         int64_t dOCol, const uint8_t *keyMask, bool causal,   \
                         float scale, float *dQ, int64_t dQRow, float *dK,     \
                         int64_t dKRow, float *dV, int64_t dVRow,              \
                         int64_t blockQ, int64_t blockK);                      \
  }
LOOM_DECLARE_KERNELS(avx512)
LOOM_DECLARE_KERNELS(avx2)
LOOM_DECLARE_KERNELS(generic)
#undef LOOM_DECLARE_KERNELS

namespace {

struct Kernels {
  decltype(&loom::kernels::generic::sgemm) sgemm;
  decltype(&loom::kernels::generic::attentionForward) attentionForward;
  decltype(&loom::kernels::generic::attentionBackward) attentionBackward;
  const char *isa;
  /// Products large enough go to the AMX kernel (GemmAmx.cpp).
  bool amx = false;
};

#define LOOM_KERNELS(NS)                                                       \
  Kernels {                                                                    \
    &loom::kernels::NS::sgemm, &loom::kernels::NS::attentionForward,           \
        &loom::kernels::NS::attentionBackward, #NS                             \
  }

/// The widest ISA the host runs, or the one LOOM_KERNEL_ISA names (amx,
/// avx512, avx2, generic) when the host runs it too: tests use it to check
/// every compiled copy where the machine allows, and a user can compare
/// them. amx is avx512 with the products large enough on AMX tiles.
Kernels choose() {
  __builtin_cpu_init();
  bool avx512 = __builtin_cpu_supports("avx512f");
  bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  auto withAmx = [] {
    Kernels kernels = LOOM_KERNELS(avx512);
    kernels.isa = "amx";
    kernels.amx = true;
    return kernels;
  };
  if (const char *wanted = std::getenv("LOOM_KERNEL_ISA")) {
    std::string_view name(wanted);
    if (name == "generic")
      return LOOM_KERNELS(generic);
    if (name == "avx2" && avx2)
      return LOOM_KERNELS(avx2);
    if (name == "avx512" && avx512)
      return LOOM_KERNELS(avx512);
    if (name == "amx" && avx512 && loom::kernels::amx::usable())
      return withAmx();
    if (name != "avx2" && name != "avx512" && name != "amx" && !name.empty())
      std::fprintf(stderr,
                   "loom: LOOM_KERNEL_ISA=%s is not one of amx, avx512, avx2, "
                   "generic; using the host's widest\n",
                   wanted);
    else if (!name.empty())
      std::fprintf(stderr,
                   "loom: LOOM_KERNEL_ISA=%s: this CPU or OS lacks it (or "
                   "LOOM_GEMM_AMX=0); using the host's widest\n",
                   wanted);
  }
  if (avx512 && loom::kernels::amx::usable())
    return withAmx();
  if (avx512)
    return LOOM_KERNELS(avx512);
  if (avx2)
    return LOOM_KERNELS(avx2);
  return LOOM_KERNELS(generic);
}

const Kernels &chosen() {
  static const Kernels kernels = choose();
  return kernels;
}

template <typename T> T *ptr(int64_t address) {
  return reinterpret_cast<T *>(address);
}

/// What compiled code does when a kernel cannot get its scratch buffers (a
/// few hundred KB per thread): it has no error channel, and computing
/// garbage silently is worse than stopping.
[[noreturn]] void outOfMemory(const char *kernel) {
  std::fprintf(stderr, "loom: %s: out of memory for scratch buffers\n", kernel);
  std::abort();
}

} // namespace

namespace {

/// LOOM_GEMM_TRACE=1: every GEMM call timed, and at exit one line per
/// shape (batch, m, n, k, how A and B are laid out, whether an epilogue
/// ran, whether AMX ran it) on stderr, the costliest first: calls, milliseconds
/// in all and GFLOP/s. For profiling (bench/README.md); off, it costs one
/// branch.
class GemmTrace {
public:
  static GemmTrace *get() {
    static GemmTrace *trace = [] {
      const char *v = std::getenv("LOOM_GEMM_TRACE");
      return v && *v && std::string_view(v) != "0" ? new GemmTrace : nullptr;
    }();
    return trace;
  }
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, char, int64_t,
                         char, int64_t, int64_t, bool, bool>;
  void reset() {
    std::lock_guard<std::mutex> lock(mutex);
    shapes.clear();
  }
  void add(const Key &key, double seconds) {
    std::lock_guard<std::mutex> lock(mutex);
    Entry &e = shapes[key];
    ++e.calls;
    e.seconds += seconds;
  }

private:
  struct Entry {
    int64_t calls = 0;
    double seconds = 0;
  };
  GemmTrace() {
    std::atexit([] { get()->print(); });
  }
  void print() {
    std::lock_guard<std::mutex> lock(mutex);
    std::vector<std::pair<Key, Entry>> sorted(shapes.begin(), shapes.end());
    std::sort(sorted.begin(), sorted.end(), [](auto &x, auto &y) {
      return x.second.seconds > y.second.seconds;
    });
    double total = 0;
    for (auto &[key, e] : sorted)
      total += e.seconds;
    std::fprintf(stderr,
                 "loom GEMM trace: %.1f ms in all (batch x m n k; A, B: n "
                 "row-major, t transposed, and the leading dimension; C's; "
                 "epilogue; amx: on AMX tiles)\n",
                 total * 1e3);
    for (auto &[key, e] : sorted) {
      auto [batch, m, n, k, a, lda, b, ldb, ldc, epilogue, amx] = key;
      double flops = 2.0 * double(batch * m) * double(n * k) * double(e.calls);
      std::fprintf(
          stderr,
          "  %4lld x %5lld %5lld %5lld  A %c%-5lld B %c%-5lld C %-5lld "
          "%s %s %6lld calls %9.2f ms %7.1f GFLOP/s\n",
          (long long)batch, (long long)m, (long long)n, (long long)k, a,
          (long long)lda, b, (long long)ldb, (long long)ldc,
          epilogue ? "epi" : "   ", amx ? "amx" : "   ", (long long)e.calls,
          e.seconds * 1e3, flops / e.seconds * 1e-9);
    }
  }
  std::mutex mutex;
  std::map<Key, Entry> shapes;
};

bool sgemmTraced(int64_t batch, int64_t m, int64_t n, int64_t k, const float *a,
                 int64_t aBatch, int64_t aRow, int64_t aCol, const float *b,
                 int64_t bBatch, int64_t bRow, int64_t bCol, float *c,
                 int64_t cBatch, int64_t cRow, bool accumulate,
                 const loom::kernels::GemmEpilogue *epilogue, int64_t threads) {
  GemmTrace *trace = GemmTrace::get();
  auto start = trace ? std::chrono::steady_clock::now()
                     : std::chrono::steady_clock::time_point();
  const Kernels &kernels = chosen();
  bool amx =
      kernels.amx && loom::kernels::amx::applies(batch, m, n, k, threads);
  auto sgemm = amx ? &loom::kernels::amx::sgemm : kernels.sgemm;
  bool ok = sgemm(batch, m, n, k, a, aBatch, aRow, aCol, b, bBatch, bRow, bCol,
                  c, cBatch, cRow, accumulate, epilogue, threads);
  if (trace)
    trace->add(
        {batch, m, n, k, aCol == 1 ? 'n' : 't', aCol == 1 ? aRow : aCol,
         bCol == 1 ? 'n' : 't', bCol == 1 ? bRow : bCol, cRow,
         epilogue != nullptr, amx},
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count());
  return ok;
}

void sgemmWith(int64_t batch, int64_t m, int64_t n, int64_t k, int64_t a,
               int64_t aBatch, int64_t aRow, int64_t aCol, int64_t b,
               int64_t bBatch, int64_t bRow, int64_t bCol, int64_t c,
               int64_t cBatch, int64_t cRow, int64_t accumulate,
               const loom::kernels::GemmEpilogue *epilogue, int64_t threads) {
  bool ok = sgemmTraced(batch, m, n, k, ptr<const float>(a), aBatch, aRow, aCol,
                        ptr<const float>(b), bBatch, bRow, bCol, ptr<float>(c),
                        cBatch, cRow, accumulate != 0, epilogue, threads);
  if (ok)
    return;
  // The packing buffers (a few MB per thread) could not be allocated:
  // compute without them.
  auto *A = ptr<const float>(a);
  auto *B = ptr<const float>(b);
  auto *C = ptr<float>(c);
  for (int64_t bi = 0; bi < batch; ++bi) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        float sum = accumulate ? C[bi * cBatch + i * cRow + j] : 0.0f;
        for (int64_t p = 0; p < k; ++p)
          sum += A[bi * aBatch + i * aRow + p * aCol] *
                 B[bi * bBatch + p * bRow + j * bCol];
        C[bi * cBatch + i * cRow + j] = sum;
      }
    if (epilogue && m > 0 && n > 0)
      epilogue->fn(epilogue->context, bi * m, 0, m, n);
  }
}
} // namespace

extern "C" void loom_sgemm(int64_t batch, int64_t m, int64_t n, int64_t k,
                           int64_t a, int64_t aBatch, int64_t aRow,
                           int64_t aCol, int64_t b, int64_t bBatch,
                           int64_t bRow, int64_t bCol, int64_t c,
                           int64_t cBatch, int64_t cRow, int64_t accumulate,
                           int64_t threads) {
  sgemmWith(batch, m, n, k, a, aBatch, aRow, aCol, b, bBatch, bRow, bCol, c,
            cBatch, cRow, accumulate, nullptr, threads);
}

extern "C" void loom_sgemm_epilogue(int64_t batch, int64_t m, int64_t n,
                                    int64_t k, int64_t a, int64_t aBatch,
                                    int64_t aRow, int64_t aCol, int64_t b,
                                    int64_t bBatch, int64_t bRow, int64_t bCol,
                                    int64_t c, int64_t cBatch, int64_t cRow,
                                    int64_t accumulate, int64_t epilogue,
                                    int64_t context, int64_t threads) {
  loom::kernels::GemmEpilogue callback{
      reinterpret_cast<loom_gemm_epilogue_fn>(epilogue), context};
  sgemmWith(batch, m, n, k, a, aBatch, aRow, aCol, b, bBatch, bRow, bCol, c,
            cBatch, cRow, accumulate, epilogue ? &callback : nullptr, threads);
}

extern "C" void loom_attention_forward(int64_t tq, int64_t tk, int64_t d,
                                       int64_t dv, int64_t q, int64_t qRow,
                                       int64_t qCol, int64_t k, int64_t kRow,
                                       int64_t kCol, int64_t v, int64_t vRow,
                                       int64_t vCol, int64_t o, int64_t oRow,
                                       int64_t lse, int64_t keyMask,
                                       int64_t causal, double scale,
                                       int64_t blockQ, int64_t blockK) {
  if (!chosen().attentionForward(
          tq, tk, d, dv, ptr<const float>(q), qRow, qCol, ptr<const float>(k),
          kRow, kCol, ptr<const float>(v), vRow, vCol, ptr<float>(o), oRow,
          ptr<float>(lse), ptr<const uint8_t>(keyMask), causal != 0,
          float(scale), blockQ, blockK))
    outOfMemory("attention forward");
}

extern "C" void loom_attention_backward(
    int64_t tq, int64_t tk, int64_t d, int64_t dv, int64_t q, int64_t qRow,
    int64_t qCol, int64_t k, int64_t kRow, int64_t kCol, int64_t v,
    int64_t vRow, int64_t vCol, int64_t o, int64_t oRow, int64_t oCol,
    int64_t lse, int64_t dO, int64_t dORow, int64_t dOCol, int64_t keyMask,
    int64_t causal, double scale, int64_t dQ, int64_t dQRow, int64_t dK,
    int64_t dKRow, int64_t dV, int64_t dVRow, int64_t blockQ, int64_t blockK) {
  if (!chosen().attentionBackward(
          tq, tk, d, dv, ptr<const float>(q), qRow, qCol, ptr<const float>(k),
          kRow, kCol, ptr<const float>(v), vRow, vCol, ptr<const float>(o),
          oRow, oCol, ptr<const float>(lse), ptr<const float>(dO), dORow, dOCol,
          ptr<const uint8_t>(keyMask), causal != 0, float(scale),
          ptr<float>(dQ), dQRow, ptr<float>(dK), dKRow, ptr<float>(dV), dVRow,
          blockQ, blockK))
    outOfMemory("attention backward");
}

extern "C" const char *loom_sgemm_isa() { return chosen().isa; }

extern "C" void loom_gemm_trace_reset() {
  if (GemmTrace *trace = GemmTrace::get())
    trace->reset();
}
