//===- Passes.td - NVPTX code generation passes ------------*- tablegen -*-===//

#ifndef LOOM_CODEGEN_NVPTX_PASSES_TD
#define LOOM_CODEGEN_NVPTX_PASSES_TD

include "mlir/Pass/PassBase.td"

def LoomGpuOutlineKernels
    : Pass<"loom-gpu-outline-kernels", "mlir::ModuleOp"> {
  let summary = "Turns the device work of host functions into GPU kernel "
                "launches";
  let description = [{
    After bufferization and `convert-linalg-to-parallel-loops`, every
    top-level op of a host function that touches memory becomes a kernel
    of one `gpu.module @loom_kernels`, launched by `gpu.launch_func`:

    - an `scf.parallel` nest: its iteration space is linearized, one thread
      per point (`block-size` threads per block, the last dimension fastest
      so that neighbouring threads touch neighbouring elements), with a
      bounds check when the block size does not divide it;
    - a `memref.copy`: an element-wise parallel copy, the same way;
    - anything else that reads or writes memory (a loop nest without
      parallel loops, such as a full reduction): a run of such ops becomes
      one single-thread kernel.

    Allocations, views (subview, expand/collapse_shape, reinterpret_cast,
    cast), constants and the return stay on the host; so the host function
    is a straight-line launch sequence over buffers, which the launch plan
    (codegen/nvptx/LaunchPlan.cpp) reads. Constants that a kernel uses are
    cloned into it; buffers become its arguments. Kernels are named
    `<function>_<n>_<what>` (`what`: the loop's first memory-writing
    op's dialect-free name, `copy` or `serial`). Errors at the op for
    what cannot run there (dynamic bounds, a parallel loop with results,
    a host value computed from memory).

    Before:
    ```mlir
    scf.parallel (%i) = (%c0) to (%c1000) step (%c1) {
      %x = memref.load %a[%i] : memref<1000xf32>
      memref.store %x, %b[%i] : memref<1000xf32>
    }
    ```
    After:
    ```mlir
    gpu.launch_func @loom_kernels::@f_0_store blocks in (%c4, %c1, %c1)
        threads in (%c256, %c1, %c1) args(%a : memref<1000xf32>,
        %b : memref<1000xf32>)
    ```
  }];
  let options = [Option<"blockSize", "block-size", "int64_t", "256",
                        "Threads per block of the parallel kernels">];
  let dependentDialects = ["mlir::gpu::GPUDialect", "mlir::scf::SCFDialect",
                           "mlir::arith::ArithDialect",
                           "mlir::memref::MemRefDialect"];
}

#endif // LOOM_CODEGEN_NVPTX_PASSES_TD
