//===- ModelImpl.h - What Model, Trainer and Generator share ----*- C++ -*-===//
//
// Private to driver/: the state behind a loom::Model and the two steps every
// call takes (find or compile the specialization, call it).
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_DRIVER_MODELIMPL_H
#define LOOM_DRIVER_MODELIMPL_H

#include "driver/Session.h"

#include "loom/Model.h"

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace loom {

struct Model::Impl {
  std::unique_ptr<driver::Session> session;
  ParamStore params;
  std::vector<FunctionInfo> functions;
  double compileSeconds = 0;
  /// Target cuda: the parameters on the device (a training step updates
  /// them in place), the workspace every function shares, and which copy
  /// is newer. Never both stale.
  struct Device {
    /// Held by every use of what follows (the flags, the buffers, the
    /// shared workspace): functions of one model may run on several
    /// threads.
    std::mutex mutex;
    cuda::DeviceBuffer params, workspace;
    /// The device's copy is newer (a step committed): params() copies back.
    bool hostStale = false;
    /// The host's copy is newer (initialized, loaded, or handed out
    /// writable): the next call uploads it.
    bool deviceStale = true;
  } device;

  /// The host copy, brought up to date (device.mutex held).
  Status syncHost();
  /// The device copy, brought up to date, and a workspace of `bytes`
  /// (device.mutex held).
  Status syncDevice(int64_t workspaceBytes);

  /// The parameters on the host, up to date, to read.
  Result<const ParamStore *> hostParams();
  /// ... to write: the next call uploads them.
  Result<ParamStore *> writableParams();
  /// The host copy, to be overwritten whole: declared the newer, with no
  /// copy back.
  ParamStore &replacedParams();
  /// Runs `fn` with the parameters, then `inputs`, then `outputs` (host
  /// buffers), on the device that `fn` was compiled for.
  Status run(driver::CompiledFunction &fn, const std::vector<void *> &inputs,
             const std::vector<void *> &outputs);
};

/// The moments of an optimizer state on the device (a training step
/// updates them in place).
struct DeviceMoments {
  cuda::DeviceBuffer moments[2];
};

namespace driver {

/// The state behind a Model, for the Trainer and the runtime's own tests.
struct ModelAccess {
  static Model::Impl &impl(Model &model) { return *model.impl; }
};

/// The compiled variant of `name` for `inputs` (its trailing inputs), with
/// the inputs' ranges checked and the parameter buffer's size.
Result<CompiledFunction *> compiledFor(Model::Impl &impl,
                                       const std::string &name,
                                       const std::vector<Tensor> &inputs,
                                       const Variant &variant);

/// Calls `fn` with the parameter buffer, then `inputs`, then fresh outputs.
Result<std::vector<Tensor>> invoke(CompiledFunction &fn, void *params,
                                   const std::vector<void *> &inputs);

/// Calls `fn` with the parameter buffer, `inputs` and `outputs` (buffers of
/// the sizes of fn.signature.outputs).
Status invokeInto(CompiledFunction &fn, void *params,
                  const std::vector<void *> &inputs,
                  const std::vector<void *> &outputs);

} // namespace driver
} // namespace loom

#endif // LOOM_DRIVER_MODELIMPL_H
