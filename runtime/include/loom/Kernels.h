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
/// contiguous. Pointers are passed as integers (`a`, `b`, `c` are
/// addresses). With `threads` > 1, a GEMM large enough runs on a team of
/// up to that many OpenMP threads (libomp, the runtime of compiled code's
/// parallel loops; at most OMP_NUM_THREADS): each thread takes whole batch
/// entries when they spread evenly, else a share of the rows (M >= N) or
/// of the columns, in whole register tiles, packing its own panels; called
/// from inside a parallel region, it runs on the calling thread alone.
void loom_sgemm(int64_t batch, int64_t m, int64_t n, int64_t k, int64_t a,
                int64_t aBatch, int64_t aRow, int64_t aCol, int64_t b,
                int64_t bBatch, int64_t bRow, int64_t bCol, int64_t c,
                int64_t cBatch, int64_t cRow, int64_t accumulate,
                int64_t threads);

/// A GEMM epilogue: compiled code's function that finishes rows
/// [row, row + rows) x columns [col, col + cols) of C (rows counted over the
/// batch: b * m + i) once they hold their final values; `context` is what
/// the caller passed with it (the addresses and strides of the epilogue's
/// other operands).
typedef void (*loom_gemm_epilogue_fn)(int64_t context, int64_t row, int64_t col,
                                      int64_t rows, int64_t cols);

/// loom_sgemm, then `epilogue` (a loom_gemm_epilogue_fn's address) over
/// every block of C exactly once, right after the block's last update:
/// the packed path calls it per cache block (MC rows x NC columns, or a
/// thread's share of the columns) while the block is in L2 (per register
/// tile, the calls cost more than they saved: measured on Zen 3). A team's
/// threads call it at once on disjoint blocks. The epilogue must not call
/// loom_sgemm itself: it runs while the calling thread's packing buffers
/// (and AMX tiles) are in use.
void loom_sgemm_epilogue(int64_t batch, int64_t m, int64_t n, int64_t k,
                         int64_t a, int64_t aBatch, int64_t aRow, int64_t aCol,
                         int64_t b, int64_t bBatch, int64_t bRow, int64_t bCol,
                         int64_t c, int64_t cBatch, int64_t cRow,
                         int64_t accumulate, int64_t epilogue, int64_t context,
                         int64_t threads);

/// Flash attention of one head (runtime/kernels/AttentionIsa.cpp): no
/// [Tq x Tk] buffer, one [blockQ x blockK] block of scores at a time
/// (the supported shape nearest the request: blockQ 32, 64 or 128 rounded
/// up to whole register tiles, blockK 64, 128 or 256; 0 picks the measured
/// default, 64 x 256).
///
///   o = softmax(scale * q k^T, masked) v,  lse = row log-sum-exp
///
/// q: [tq, d], k: [tk, d], v: [tk, dv] with any row/column strides;
/// o: [tq, dv] (columns contiguous); lse: [tq] floats or 0 (not written);
/// keyMask: [tk] bytes (nonzero = attend) or 0; causal: query i attends key
/// j <= i + tk - tq. A query that attends no key gets o = 0 and lse = 0.
/// Single-threaded: callers run heads in parallel.
void loom_attention_forward(int64_t tq, int64_t tk, int64_t d, int64_t dv,
                            int64_t q, int64_t qRow, int64_t qCol, int64_t k,
                            int64_t kRow, int64_t kCol, int64_t v, int64_t vRow,
                            int64_t vCol, int64_t o, int64_t oRow, int64_t lse,
                            int64_t keyMask, int64_t causal, double scale,
                            int64_t blockQ, int64_t blockK);

/// The gradients of one head's attention (FlashAttention-2, blocks as in
/// loom_attention_forward) from the saved
/// o and lse of loom_attention_forward: dq [tq, d], dk [tk, d], dv [tk, dv]
/// are overwritten (columns contiguous).
void loom_attention_backward(
    int64_t tq, int64_t tk, int64_t d, int64_t dv, int64_t q, int64_t qRow,
    int64_t qCol, int64_t k, int64_t kRow, int64_t kCol, int64_t v,
    int64_t vRow, int64_t vCol, int64_t o, int64_t oRow, int64_t oCol,
    int64_t lse, int64_t dO, int64_t dORow, int64_t dOCol, int64_t keyMask,
    int64_t causal, double scale, int64_t dQ, int64_t dQRow, int64_t dK,
    int64_t dKRow, int64_t dV, int64_t dVRow, int64_t blockQ, int64_t blockK);

/// The instruction set the kernels dispatch to on this host ("amx":
/// AVX-512 with GEMMs of 32 and more in every dim on AMX tiles, "avx512",
/// "avx2" or "generic"), for reports.
const char *loom_sgemm_isa();

/// With LOOM_GEMM_TRACE set: forgets the calls timed so far (a benchmark's
/// warm-up call, whose first touches of its buffers would count), so the
/// report at exit covers what follows. A no-op otherwise.
void loom_gemm_trace_reset();

} // extern "C"

#endif // LOOM_KERNELS_H
