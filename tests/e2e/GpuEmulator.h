//===- GpuEmulator.h - GPU launch plans run on the CPU ----------*- C++ -*-===//
//
// For machines without a GPU: the kernels of a module that the NVPTX
// pipeline stopped at "kernels" are compiled for the host (each kernel a
// function looping over its blocks and threads, one after another), and
// the launch plans run as the CUDA runtime runs them: arguments copied into
// separate buffers, a workspace of garbage bytes, launches at the plan's
// addresses, outputs copied back. Kernels that synchronize their threads
// (barriers, shared memory) cannot run this way; the pipeline has none yet.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_TESTS_E2E_GPUEMULATOR_H
#define LOOM_TESTS_E2E_GPUEMULATOR_H

#include "codegen/cpu/Jit.h"

#include "loom/GpuProgram.h"
#include "loom/Status.h"

#include "mlir/IR/BuiltinOps.h"

#include "llvm/Support/Error.h"

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

  const gpu::Program &program() const { return plan; }

private:
  gpu::Program plan;
  std::unique_ptr<JitModule> jit;
};

} // namespace loom::e2e

#endif // LOOM_TESTS_E2E_GPUEMULATOR_H
