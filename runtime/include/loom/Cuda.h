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

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
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

/// Memory on the device, freed with the object: what stays there between
/// runs (a model's parameters and optimizer moments, the workspace its
/// functions share).
class DeviceBuffer {
public:
  DeviceBuffer() = default;
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer &&other) noexcept;
  DeviceBuffer &operator=(DeviceBuffer &&other) noexcept;
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;

  /// `bytes` bytes of device memory (at least 4), not initialized.
  static Result<DeviceBuffer> allocate(size_t bytes);

  size_t size() const { return bytes; }
  bool empty() const { return address == 0; }
  /// The device address, for kernel arguments.
  uint64_t deviceAddress() const { return address; }

  /// Copies `count` bytes from the host to [offset, offset + count).
  Status upload(const void *host, size_t count, size_t offset = 0);
  /// Copies [offset, offset + count) to the host.
  Status download(void *host, size_t count, size_t offset = 0) const;
  /// Sets every byte to zero, on the device (nothing goes over).
  Status zero();

  friend void swap(DeviceBuffer &a, DeviceBuffer &b) noexcept {
    std::swap(a.address, b.address);
    std::swap(a.bytes, b.bytes);
  }

private:
  uint64_t address = 0;
  size_t bytes = 0;
};

/// Where one argument of a run lives: a host buffer (copied to the device
/// before the launches when they read it, back after them when it is an
/// output; through device memory the executable keeps) or a DeviceBuffer
/// the launches read or write in place, with no copy.
struct Binding {
  void *host = nullptr;
  DeviceBuffer *device = nullptr;

  Binding(void *host) : host(host) {}
  Binding(DeviceBuffer *device) : device(device) {}
};

/// A program loaded on the device: its kernels, and device memory for the
/// host-bound arguments and the workspace of each function, allocated on
/// first use and kept. Thread-safe: concurrent runs take turns (they share
/// the device buffers). Launches go to a stream of its own, replayed as
/// CUDA graphs where the driver has them (see usesGraphs).
class Executable {
public:
  ~Executable();

  /// JIT-compiles the PTX for the current device (errors carry the
  /// driver's log) and resolves every launched kernel.
  static Result<std::unique_ptr<Executable>> load(gpu::Program program);

  /// Runs function `name`: `pointers[i]` is the host buffer of argument i
  /// (`Function::args[i].bytes` bytes). Arguments the launches read
  /// (`Argument::read()`: inputs, and outputs updated in place) are copied
  /// to the device, the launches run in order, outputs are copied back. Errors
  /// name the kernel that failed.
  Status run(const std::string &name, const std::vector<void *> &pointers);

  /// Runs function `name` with each argument bound to host memory or to a
  /// device buffer of at least its size (see Binding). `workspace`, when
  /// given, replaces the function's own: one buffer shared by the
  /// functions of a model (at least `Function::workspaceBytes`).
  Status run(const std::string &name, const std::vector<Binding> &args,
             DeviceBuffer *workspace = nullptr);

  /// Milliseconds the device spent in the launches of the last run
  /// (events around them; copies excluded).
  double lastKernelMilliseconds() const { return kernelMs; }

  /// Whether a function's launches are captured as a CUDA graph (once per
  /// set of buffer addresses, up to four kept per function) and replayed
  /// with one launch; off with LOOM_CUDA_GRAPHS=0 or LOOM_CUDA_SYNC=1, on a
  /// driver without graphs, and after a capture or replay failed (the
  /// launches then go one by one and an error names its kernel).
  bool usesGraphs() const;
  /// Graphs captured so far.
  uint64_t graphCaptures() const;

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
