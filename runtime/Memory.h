//===- Memory.h - Large zeroed allocations for the runtime ------*- C++ -*-===//
//
// Tensors and the parameter buffer of a model run to hundreds of MB (a
// GPT-2-small step reads 0.5 GB of parameters and writes as much again):
// those are allocated 2 MB-aligned and marked for transparent huge pages,
// so a pass over them costs one TLB entry and one page fault per 2 MB
// rather than per 4 KB, where the OS allows it (madvise mode).
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_RUNTIME_MEMORY_H
#define LOOM_RUNTIME_MEMORY_H

#include <cstddef>
#include <cstdlib>
#include <cstring>

#include <sys/mman.h>

namespace loom::detail {

/// `bytes` zeroed bytes aligned to `alignment` (a power of two), or null;
/// free with std::free.
inline void *allocateZeroed(size_t alignment, size_t bytes) {
  constexpr size_t kHugePage = size_t(2) << 20;
  bool huge = bytes >= kHugePage;
  if (huge && alignment < kHugePage)
    alignment = kHugePage;
  size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  if (rounded == 0)
    rounded = alignment;
  void *memory = std::aligned_alloc(alignment, rounded);
  if (!memory)
    return nullptr;
  if (huge)
    (void)::madvise(memory, rounded, MADV_HUGEPAGE);
  std::memset(memory, 0, rounded);
  return memory;
}

} // namespace loom::detail

#endif // LOOM_RUNTIME_MEMORY_H
