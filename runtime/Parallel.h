//===- Parallel.h - A large pass over memory split over threads -*- C++ -*-===//
//
// Filling 124 M parameters is one long pass over memory that a single core
// does at a fraction of what two or more can: such a pass splits into even
// pieces, one per std::thread (the runtime has no OpenMP of its own), the
// first on the calling thread.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_RUNTIME_PARALLEL_H
#define LOOM_RUNTIME_PARALLEL_H

#include <cstdint>
#include <thread>
#include <vector>

namespace loom::detail {

/// Calls `chunk(begin, end)` over [0, n) in `parts` even pieces (at least
/// 1), concurrently.
template <typename Chunk>
void splitOverThreads(int64_t n, int64_t parts, Chunk chunk) {
  if (parts <= 1 || n <= 0)
    return chunk(int64_t(0), n);
  auto bound = [&](int64_t i) { return i == parts ? n : n / parts * i; };
  std::vector<std::thread> helpers;
  for (int64_t i = 1; i < parts; ++i)
    helpers.emplace_back(chunk, bound(i), bound(i + 1));
  chunk(int64_t(0), bound(1));
  for (std::thread &t : helpers)
    t.join();
}

} // namespace loom::detail

#endif // LOOM_RUNTIME_PARALLEL_H
