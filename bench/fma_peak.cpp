//===- fma_peak.cpp - This machine's f32 FMA peak -------------------------===//
//
//   fma_peak [THREADS]
//
// Runs independent chains of vector FMAs (12 accumulators, enough to cover
// the FMA latency on two pipes) with the widest vector ISA the host has
// (AVX-512, else AVX2+FMA) on THREADS threads, and prints the best of five
// runs: `fma_peak isa=avx2 threads=1 gflops=101.9`. bench/run.sh reports
// every speed as a fraction of this.
//
//===----------------------------------------------------------------------===//

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

template <int W> using vec = float __attribute__((ext_vector_type(W)));

/// FLOPs of `iterations` steps of 12 FMA chains of W lanes.
template <int W> double chains(long iterations, float seed) {
  vec<W> acc[12], x = seed, y = 0.999f;
  for (int i = 0; i < 12; ++i)
    acc[i] = seed + i;
  for (long n = 0; n < iterations; ++n)
#pragma clang loop unroll(full)
    for (int i = 0; i < 12; ++i)
      acc[i] = __builtin_elementwise_fma(acc[i], y, x);
  float sum = 0;
  for (int i = 0; i < 12; ++i)
    sum += acc[i][0];
  // Keep the result alive without printing it.
  if (sum == 12345.678f)
    std::puts("");
  return 2.0 * W * 12 * iterations;
}

__attribute__((target("avx512f"))) double chains512(long n) {
  return chains<16>(n, 0.5f);
}
__attribute__((target("avx2,fma"))) double chains256(long n) {
  return chains<8>(n, 0.5f);
}

} // namespace

int main(int argc, char **argv) {
  int threads = argc > 1 ? std::max(1, std::atoi(argv[1])) : 1;
  __builtin_cpu_init();
  bool avx512 = __builtin_cpu_supports("avx512f");
  if (!avx512 && !__builtin_cpu_supports("fma")) {
    std::printf("fma_peak isa=none threads=%d gflops=0\n", threads);
    return 0;
  }
  const long iterations = 100'000'000;
  double best = 0;
  for (int run = 0; run < 5; ++run) {
    std::vector<double> flops(threads);
    auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        flops[t] = avx512 ? chains512(iterations) : chains256(iterations);
      });
    for (std::thread &t : pool)
      t.join();
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    double total = 0;
    for (double f : flops)
      total += f;
    best = std::max(best, total / seconds / 1e9);
  }
  std::printf("fma_peak isa=%s threads=%d gflops=%.1f\n",
              avx512 ? "avx512" : "avx2", threads, best);
  return 0;
}
