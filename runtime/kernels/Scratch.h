//===- Scratch.h - Per-thread scratch buffers of the kernels ----*- C++ -*-===//

#ifndef LOOM_RUNTIME_KERNELS_SCRATCH_H
#define LOOM_RUNTIME_KERNELS_SCRATCH_H

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include <sys/mman.h>

namespace loom::kernels {

/// A grow-only, page-aligned float buffer, kept for the next call (kernels
/// hold one per thread, thread_local): no allocation and no page faults in
/// the steady state. Buffers of 2 MB and more ask for transparent huge
/// pages. `get` returns null when memory runs out.
struct Scratch {
  float *data = nullptr;
  int64_t capacity = 0;
  Scratch() = default;
  Scratch(const Scratch &) = delete;
  Scratch &operator=(const Scratch &) = delete;
  ~Scratch() { std::free(data); }
  float *get(int64_t floats) {
    if (floats <= capacity)
      return data;
    std::free(data);
    size_t bytes = (size_t(floats) * sizeof(float) + 4095) & ~size_t(4095);
    data = static_cast<float *>(std::aligned_alloc(4096, bytes));
    if (data && bytes >= (size_t(2) << 20))
      (void)madvise(data, bytes, MADV_HUGEPAGE);
    capacity = data ? floats : 0;
    return data;
  }
};

} // namespace loom::kernels

#endif // LOOM_RUNTIME_KERNELS_SCRATCH_H
