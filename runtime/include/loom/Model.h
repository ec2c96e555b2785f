//===- Model.h - Compiling and calling Loom models from C++ -----*- C++ -*-===//
//
//   auto model = loom::compile("examples/gpt.loom");
//   model->params().initialize(42);              // or model->loadCheckpoint
//   auto out = model->call("logits", {tokens});  // dims bound from shapes
//
// Each entry function is compiled per shape specialization on first use and
// cached; a second call with the same shapes does not recompile. Plain C++:
// no LLVM or MLIR types appear here.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_MODEL_H
#define LOOM_MODEL_H

#include "loom/Params.h"
#include "loom/Status.h"
#include "loom/Tensor.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace loom {

struct CompileOptions {
  /// Library search directories for `import`.
  std::vector<std::string> includeDirs;
  /// The model to compile; empty for the first model of the file.
  std::string model;
  /// Overrides of the model's configuration values by name, e.g.
  /// {"d", "64"}, {"layers", "2"}: small variants of a model for tests.
  std::map<std::string, std::string> config;
  /// Compile for training (dropout active); inference otherwise.
  bool training = false;
  /// Seed of the initial parameters.
  uint64_t seed = 0;
  /// Reuse compiled functions from the disk cache and add to it; the
  /// directory is `cacheDir`, else `LOOM_CACHE_DIR`, else
  /// `$XDG_CACHE_HOME/loom` or `~/.cache/loom`.
  bool diskCache = true;
  std::string cacheDir;
  /// Where compiled functions run: "cpu" (JIT-compiled host code) or
  /// "cuda" (NVPTX kernels through the CUDA driver; an error without a
  /// driver or device). Decode steps (Generator) are CPU-only so far.
  std::string target = "cpu";
  /// Target cuda: the f32 contractions' products on tensor cores: "3xtf32"
  /// (f32 accuracy from three tf32 products), "tf32" (one; about 1e-3
  /// relative), "bf16" (operands rounded to bf16; about 4e-3) or "none"
  /// (CUDA cores).
  std::string tensorCores = "3xtf32";
};

/// One argument or result of an entry function: dims are numbers or
/// symbolic names such as "B".
struct ArgInfo {
  std::string name;
  DType dtype;
  std::vector<std::string> dims;
};

struct FunctionInfo {
  std::string name;
  std::vector<ArgInfo> inputs;
  std::vector<ArgInfo> outputs;
};

/// The loss and its gradient with respect to the parameters.
struct Gradient {
  double loss = 0;
  /// F32, one element per float of the parameter buffer, in its layout:
  /// parameter i's gradient starts at params().param(i).offset / 4. Frozen
  /// parameters and the padding between parameters hold zeros.
  Tensor grads;
};

/// The update rule of a compiled training step (see `loom-optimizer`).
struct OptimizerOptions {
  /// "sgd", "adam" or "adamw".
  std::string kind = "adamw";
  double momentum = 0;    // sgd
  bool nesterov = false;  // sgd, needs momentum
  double beta1 = 0.9;     // adam, adamw
  double beta2 = 0.999;   // adam, adamw
  double eps = 1e-8;      // adam, adamw
  double weightDecay = 0; // coupled (sgd, adam) or decoupled (adamw)
  double maxGradNorm = 0; // global-norm clipping; 0: none
};

/// What one compiled training step depends on; each distinct value compiles
/// (and caches) its own step.
struct StepOptions {
  /// The scalar loss function.
  std::string loss = "loss";
  /// Trainable parameter names or prefixes ("blocks.3"); empty: all.
  std::vector<std::string> trainable;
  /// LR multipliers by parameter name or prefix (last match wins; others 1).
  std::vector<std::pair<std::string, double>> lrMultipliers;
  OptimizerOptions optimizer;
};

/// Optimizer moments kept on a device (target cuda; see OptimizerState).
struct DeviceMoments;

/// Optimizer moments, flat in the parameter layout, and the step count.
///
/// Target cuda: the moments stay on the device from step to step, where
/// `device` holds them (copies of the state share them), and `m` and `v`
/// are left empty after a step: Model::hostCopy gives an independent copy
/// with the moments on the host (for checkpoints, or to restore later).
/// Moments put in `m` and `v` (a resumed run) are uploaded by the next
/// step.
struct OptimizerState {
  std::vector<float> m, v;
  int64_t step = 0;
  std::shared_ptr<DeviceMoments> device;
};

struct StepResult {
  double loss = 0;
  /// Global gradient norm before clipping.
  double gradNorm = 0;
  /// False when the loss, the gradient norm or the update of a parameter or
  /// a moment was not finite: the parameters and the state were then left
  /// unchanged.
  bool committed = false;
  /// When the loss and the norm were finite but an update was not: the
  /// float index (into the parameter buffer) of the first such update.
  int64_t nonFiniteUpdateAt = -1;
};

class Generator;
namespace driver {
struct ModelAccess;
} // namespace driver

class Model {
public:
  ~Model();
  Model(Model &&) noexcept;
  Model &operator=(Model &&) noexcept;

  /// The parameters, in one flat buffer.
  ///
  /// Target cuda: the parameters stay on the device between calls and
  /// steps, and these are their host copy, brought up to date (copied back)
  /// when the device's are newer. The non-const form also marks the host
  /// copy as the one to use: the next call uploads it. A reference kept
  /// across training steps sees the values of when it was taken, and what
  /// is written through it after a step is not seen: call params() again.
  /// Should the copy back fail, the error is printed and the store is left
  /// as it was.
  ParamStore &params();
  const ParamStore &params() const;
  const std::vector<FunctionInfo> &functions() const;

  /// Runs entry function `name`. Inputs are checked against the signature
  /// (count, dtypes, shapes, consistent symbolic dims); errors name the
  /// argument and the expected shape.
  Result<std::vector<Tensor>> call(const std::string &name,
                                   const std::vector<Tensor> &inputs);

  /// The loss computed by scalar function `name` and its gradient with
  /// respect to the `trainable` parameters (names or prefixes; empty: all).
  Result<Gradient> gradient(const std::string &name,
                            const std::vector<Tensor> &inputs,
                            const std::vector<std::string> &trainable = {});

  /// One fused training step: gradient of `options.loss` on `inputs`, then
  /// the optimizer update of the trainable parameters with learning rate
  /// `lr` (times each parameter's multiplier). Updates params() and `state`
  /// in place unless the loss or gradient norm is not finite.
  Result<StepResult> trainStep(const StepOptions &options,
                               OptimizerState &state, double lr,
                               const std::vector<Tensor> &inputs);

  /// An independent copy of `state` whose moments are on the host (`m` and
  /// `v` filled from the device when a target-cuda step left them there;
  /// `device` empty).
  Result<OptimizerState> hostCopy(const OptimizerState &state) const;

  /// Seconds spent compiling, and the number of specializations compiled.
  double compileSeconds() const;
  unsigned compileCount() const;

  Status saveCheckpoint(const std::string &path) const;
  Status loadCheckpoint(const std::string &path);

  struct Impl;

private:
  explicit Model(std::unique_ptr<Impl> impl);
  friend Result<Model> compile(const std::string &, const CompileOptions &);
  friend class Generator;
  friend struct driver::ModelAccess;
  std::unique_ptr<Impl> impl;
};

/// Parses and checks `path`, lays out and initializes its parameters.
Result<Model> compile(const std::string &path,
                      const CompileOptions &options = {});

} // namespace loom

#endif // LOOM_MODEL_H
