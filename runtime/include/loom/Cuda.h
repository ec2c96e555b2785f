//===- Cuda.h - Running compiled GPU programs through the CUDA driver -*- C++
//-*-===//
//
//   auto exe = loom::cuda::Executable::load(program);   // PTX JIT-compiled
//   exe.value()->run("loss", {params, tokens, targets, loss});
//
// The CUDA driver (libcuda.so.1) is opened at run time: nothing links
// against it, and without a driver or a GPU `available()` says why and
// everything else works as before. Plain C++: no CUDA header is needed.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_CUDA_H
#define LOOM_CUDA_H

#include "loom/GpuProgram.h"
#include "loom/Status.h"

#include <memory>
#include <string>
#include <vector>

namespace loom::cuda {

/// Ok when the CUDA driver loads and reports a device; otherwise one error
/// that says what is missing ("no CUDA driver: libcuda.so.1: cannot open
/// shared object file", "no CUDA device").
Status available();

/// The device's name and compute capability, e.g. "NVIDIA H200 (sm_90)".
Result<std::string> deviceDescription();

/// "sm_XY" of the device, for compiling.
Result<std::string> deviceArch();

/// A program loaded on the device: its kernels, and device memory for the
/// arguments and the workspace of each function, allocated on first use
/// and kept. Thread-safe: concurrent runs take turns (they share the
/// device buffers).
class Executable {
public:
  ~Executable();

  /// JIT-compiles the PTX for the current device (errors carry the
  /// driver's log) and resolves every launched kernel.
  static Result<std::unique_ptr<Executable>> load(gpu::Program program);

  /// Runs function `name`: `pointers[i]` is the host buffer of argument i
  /// (`Function::args[i].bytes` bytes). Arguments that are not outputs
  /// are copied to the device, the launches run in order, outputs are
  /// copied back. Errors name the kernel that failed.
  Status run(const std::string &name, const std::vector<void *> &pointers);

  /// Milliseconds the device spent in the launches of the last run
  /// (events around them; copies excluded).
  double lastKernelMilliseconds() const { return kernelMs; }

  const gpu::Program &program() const { return prog; }

  struct State;

private:
  Executable() = default;
  gpu::Program prog;
  std::unique_ptr<State> state;
  double kernelMs = 0;
};

} // namespace loom::cuda

#endif // LOOM_CUDA_H
