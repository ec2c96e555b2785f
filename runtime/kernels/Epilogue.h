//===- Epilogue.h - The GEMM kernel's epilogue callback ---------*- C++ -*-===//
//
// Shared by the per-ISA GEMM kernels and the dispatcher: compiled code's
// function that finishes a block of C (bias, activation, residual: a fused
// elementwise consumer of the product) once the block holds its final
// values, while it is still in L1.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_RUNTIME_KERNELS_EPILOGUE_H
#define LOOM_RUNTIME_KERNELS_EPILOGUE_H

#include "loom/Kernels.h"

namespace loom::kernels {

struct GemmEpilogue {
  loom_gemm_epilogue_fn fn;
  int64_t context;
};

} // namespace loom::kernels

#endif // LOOM_RUNTIME_KERNELS_EPILOGUE_H
