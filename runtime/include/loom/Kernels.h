//===- Kernels.h - Hand-written CPU micro-kernels the compiler calls ------===//
//
// Compiled code calls these with plain C arguments (pointers as 64-bit
// integers, strides in elements), so the JIT and an ahead-of-time object
// resolve them the same way. They use no MLIR or LLVM and allocate nothing
// per call: packing buffers are per thread and kept.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_KERNELS_H
#define LOOM_KERNELS_H

#include <cstdint>

extern "C" {

/// Batched f32 GEMM over strided operands:
///
///   for b < batch, i < m, j < n:
///     C[b](i, j) = (accumulate ? C[b](i, j) : 0) + sum_p A[b](i, p) B[b](p, j)
///
/// with A[b](i, p) = a[b * aBatch + i * aRow + p * aCol],
///      B[b](p, j) = b[b * bBatch + p * bRow + j * bCol],
///      C[b](i, j) = c[b * cBatch + i * cRow + j].
/// Any strides (a transposed operand is a swapped pair), C's columns
/// contiguous. Single-threaded: callers split the work across threads.
/// Pointers are passed as integers (`a`, `b`, `c` are addresses).
void loom_sgemm(int64_t batch, int64_t m, int64_t n, int64_t k, int64_t a,
                int64_t aBatch, int64_t aRow, int64_t aCol, int64_t b,
                int64_t bBatch, int64_t bRow, int64_t bCol, int64_t c,
                int64_t cBatch, int64_t cRow, int64_t accumulate);

/// The instruction set `loom_sgemm` dispatches to on this host ("avx512",
/// "avx2" or "generic"), for reports.
const char *loom_sgemm_isa();

} // extern "C"

#endif // LOOM_KERNELS_H
