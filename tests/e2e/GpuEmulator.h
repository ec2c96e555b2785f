//===- GpuEmulator.h - GPU launch plans run on the CPU ----------*- C++ -*-===//
//
// For machines without a GPU: the kernels of a module that the NVPTX
// pipeline stopped at "kernels" are compiled for the host (each kernel a
// function looping over its blocks and threads, one after another), and
// the launch plans run as the CUDA runtime runs them: arguments copied into
// separate buffers, a workspace of garbage bytes, launches at the plan's
// addresses, outputs copied back. A kernel whose threads synchronize
// (gpu.barrier, gpu.shuffle, nvgpu.mma.sync) or share memory is compiled
// as the code of one thread and run as one fiber per thread of a block,
// switched at each barrier (a shuffle or a warp's matrix product is two
// barriers of its warp around an exchange of values); each block gets its
// own shared buffers (workgroup attributions), garbage at its start.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_TESTS_E2E_GPUEMULATOR_H
#define LOOM_TESTS_E2E_GPUEMULATOR_H

#include "codegen/cpu/Jit.h"

#include "loom/GpuProgram.h"
#include "loom/Status.h"

#include "mlir/IR/BuiltinOps.h"

#include "llvm/Support/Error.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace loom::e2e {

class GpuEmulator {
public:
  /// `module`: the NVPTX pipeline's output at stopAfter = "kernels"
  /// (consumed: its kernels are moved into a host module).
  static llvm::Expected<std::unique_ptr<GpuEmulator>>
  create(mlir::ModuleOp module);

  /// As cuda::Executable::run.
  Status run(const std::string &function, const std::vector<void *> &pointers);

  /// One launch of `kernel` on `args` (a pointer per kernel argument), as
  /// cuLaunchKernel runs it (1-D grids and blocks only).
  Status launch(const std::string &kernel, const int64_t grid[3],
                const int64_t block[3], std::vector<void *> args);

  /// The number of arguments `kernel` takes, or -1 when no launch plan
  /// launches it.
  int64_t arity(const std::string &kernel) const;

  const gpu::Program &program() const { return plan; }

private:
  gpu::Program plan;
  std::unique_ptr<JitModule> jit;
  /// Kernels run as fibers (their threads synchronize), with the bytes of
  /// each of their shared buffers.
  std::map<std::string, std::vector<int64_t>> threaded;
};

} // namespace loom::e2e

#endif // LOOM_TESTS_E2E_GPUEMULATOR_H
