//===- GpuProgram.h - Compiled GPU kernels and how to launch them -*- C++ -*-=//
//
// What `--target=nvptx` produces for one specialization: the PTX of every
// kernel and, per entry function, the launch sequence a host runs. The
// compiler fills it (codegen/nvptx); the runtime's CUDA device runs it
// (loom/Cuda.h); `loomc compile --target=nvptx --emit=ptx` writes it as
// kernels.ptx + manifest.json (`toManifest`), enough for any CUDA host.
//
// Shapes are static: every size below is a number of the bound dims.
// Buffers are the entry's arguments and one workspace; a kernel's
// arguments are addresses in them (a kernel applies the static strides of
// its views itself, and the offsets the address does not include).
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_GPUPROGRAM_H
#define LOOM_GPUPROGRAM_H

#include "loom/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace loom::gpu {

/// The base address a kernel argument receives.
struct BufferRef {
  enum class Kind { Argument, Workspace };
  Kind kind = Kind::Argument;
  /// Argument: the entry's argument index. Workspace: unused.
  int64_t index = 0;
  /// Bytes from the buffer's start: a workspace slot, or where a view of
  /// an argument starts (a layer's weights in the parameter buffer).
  int64_t offset = 0;
};

struct Launch {
  std::string kernel;
  int64_t grid[3] = {1, 1, 1};
  int64_t block[3] = {1, 1, 1};
  int64_t sharedBytes = 0;
  std::vector<BufferRef> args;
};

/// An argument of an entry function: the parameter buffer, an input or an
/// output (written by the launches).
struct Argument {
  std::string name;
  /// "f32", "i32", "i1", ... (MLIR's spelling of the element type).
  std::string dtype;
  std::vector<int64_t> shape;
  int64_t bytes = 0;
  bool output = false;
  /// An input that the launches update in place (a training step's
  /// parameters and moments): an output too, read first.
  bool updated = false;
  /// Whether the launches read what the caller put there.
  bool read() const { return !output || updated; }
};

struct Function {
  std::string name;
  std::vector<Argument> args;
  int64_t workspaceBytes = 0;
  std::vector<Launch> launches;
};

struct Program {
  /// "sm_80", "sm_90", ...
  std::string arch;
  std::string ptx;
  /// The dim bindings the program was specialized for, "B=2,T=16".
  std::string bindings;
  std::vector<Function> functions;

  const Function *find(const std::string &name) const;
};

/// The manifest: everything but the PTX, as JSON.
std::string toManifest(const Program &program);
/// Reads a manifest written by `toManifest` (the PTX is read separately).
Result<Program> fromManifest(const std::string &json);

} // namespace loom::gpu

#endif // LOOM_GPUPROGRAM_H
