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
#include <string>
#include <vector>

namespace loom {

struct Model::Impl {
  std::unique_ptr<driver::Session> session;
  ParamStore params;
  std::vector<FunctionInfo> functions;
  double compileSeconds = 0;
  /// What a training step writes, kept from step to step (allocating and
  /// zeroing fresh outputs cost a GPT-2-small step 1.5 GB of page faults):
  /// the step's output buffers (empty for the moments), and the next
  /// moments, swapped with the state's on commit.
  struct StepBuffers {
    driver::CompiledFunction *fn = nullptr;
    std::vector<Tensor> outputs;
    std::vector<float> m, v;
  } step;
};

namespace driver {

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
