//===- GemmAmx.h - f32 GEMM on AMX tiles ------------------------*- C++ -*-===//
//
// GemmAmx.cpp: the f32 GEMM of loom_sgemm on Sapphire Rapids' matrix unit
// (each operand as three bf16 parts, six products), for the dispatcher.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_RUNTIME_KERNELS_GEMMAMX_H
#define LOOM_RUNTIME_KERNELS_GEMMAMX_H

#include <cstdint>

namespace loom::kernels {
struct GemmEpilogue;
namespace amx {

/// Whether this CPU and OS run AMX-BF16 tiles (and LOOM_GEMM_AMX is not 0).
/// The first call asks Linux for the tile state.
bool usable();

/// Whether a batch of products of this shape on up to `threads` threads
/// takes the AMX path: large enough in every dim (32), and with each
/// thread's share wide enough that its packing pays.
bool applies(int64_t batch, int64_t m, int64_t n, int64_t k, int64_t threads);

/// loom_sgemm's contract (see loom/Kernels.h); false when the packing
/// buffers cannot be allocated, or for a depth below 32 (which applies()
/// leaves to the FMA kernels).
bool sgemm(int64_t batch, int64_t m, int64_t n, int64_t k, const float *a,
           int64_t aBatch, int64_t aRow, int64_t aCol, const float *b,
           int64_t bBatch, int64_t bRow, int64_t bCol, float *c, int64_t cBatch,
           int64_t cRow, bool accumulate, const GemmEpilogue *epilogue,
           int64_t threads);

} // namespace amx
} // namespace loom::kernels

#endif // LOOM_RUNTIME_KERNELS_GEMMAMX_H
