//===- Model.cpp - Compiling and calling Loom models from C++ -------------===//
//
// The implementation of runtime/include/loom/Model.h on top of a Session.
//
//===----------------------------------------------------------------------===//

#include "loom/Model.h"

#include "driver/ModelImpl.h"
#include "driver/Session.h"

#include "loom/Checkpoint.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

using namespace loom;

Model::Model(std::unique_ptr<Impl> impl) : impl(std::move(impl)) {}
Model::~Model() = default;
Model::Model(Model &&) noexcept = default;
Model &Model::operator=(Model &&) noexcept = default;

ParamStore &Model::params() {
  auto host = impl->writableParams();
  if (!host.ok())
    std::fprintf(stderr, "loom: the parameters on the host are stale: %s\n",
                 host.status().message().c_str());
  return impl->params;
}
const ParamStore &Model::params() const {
  auto host = impl->hostParams();
  if (!host.ok())
    std::fprintf(stderr, "loom: the parameters on the host are stale: %s\n",
                 host.status().message().c_str());
  return impl->params;
}

Result<const ParamStore *> Model::Impl::hostParams() {
  std::lock_guard<std::mutex> lock(device.mutex);
  LOOM_RETURN_IF_ERROR(syncHost());
  return &params;
}

Result<ParamStore *> Model::Impl::writableParams() {
  std::lock_guard<std::mutex> lock(device.mutex);
  LOOM_RETURN_IF_ERROR(syncHost());
  device.deviceStale = true; // the caller may write
  return &params;
}

ParamStore &Model::Impl::replacedParams() {
  std::lock_guard<std::mutex> lock(device.mutex);
  device.hostStale = false;
  device.deviceStale = true;
  return params;
}
const std::vector<FunctionInfo> &Model::functions() const {
  return impl->functions;
}
double Model::compileSeconds() const { return impl->compileSeconds; }
unsigned Model::compileCount() const { return impl->session->compileCount(); }

static ArgInfo argInfo(const driver::ArgSpec &spec) {
  return {spec.name, spec.dtype, spec.dims};
}

Result<Model> loom::compile(const std::string &path,
                            const CompileOptions &options) {
  driver::SessionOptions sessionOptions;
  sessionOptions.includeDirs = options.includeDirs;
  sessionOptions.model = options.model;
  sessionOptions.config = options.config;
  sessionOptions.training = options.training;
  sessionOptions.useCache = options.diskCache;
  sessionOptions.cacheDir = options.cacheDir;
  sessionOptions.tensorCores = options.tensorCores;
  if (options.target == "cuda")
    sessionOptions.target = driver::Target::Cuda;
  else if (options.target != "cpu")
    return Status::error("unknown target '" + options.target +
                         "' (expected cpu or cuda)");
  auto session = driver::Session::open(path, sessionOptions);
  if (!session)
    return Status::error(llvm::toString(session.takeError()));
  auto impl = std::make_unique<Model::Impl>();
  impl->session = std::move(*session);
  auto store = ParamStore::create(impl->session->params());
  if (!store.ok())
    return store.status();
  impl->params = std::move(store.value());
  LOOM_RETURN_IF_ERROR(impl->params.initialize(options.seed));
  for (const driver::Signature &sig : impl->session->functions()) {
    FunctionInfo info{sig.name, {}, {}};
    for (const auto &a : sig.inputs)
      info.inputs.push_back(argInfo(a));
    for (const auto &a : sig.outputs)
      info.outputs.push_back(argInfo(a));
    impl->functions.push_back(std::move(info));
  }
  return Model(std::move(impl));
}

Status loom::driver::invokeInto(driver::CompiledFunction &fn, void *params,
                                const std::vector<void *> &inputs,
                                const std::vector<void *> &outputs) {
  std::vector<void *> pointers = {params};
  llvm::append_range(pointers, inputs);
  llvm::append_range(pointers, outputs);
  if (fn.gpu)
    return fn.gpu->run(fn.entry, pointers);
  if (llvm::Error err = fn.jit->call(fn.entry, pointers))
    return Status::error(llvm::toString(std::move(err)));
  return Status();
}

Status Model::Impl::syncHost() {
  if (!device.hostStale)
    return Status();
  LOOM_RETURN_IF_ERROR(
      device.params.download(params.data(), params.totalBytes()));
  device.hostStale = false;
  return Status();
}

/// `buffer` made `bytes` long (reallocated, contents undefined, when it
/// is not); whether it was. `what` names it in errors.
static Result<bool> sizeDeviceBuffer(cuda::DeviceBuffer &buffer, size_t bytes,
                                     const char *what) {
  if (buffer.size() == bytes)
    return false;
  buffer = cuda::DeviceBuffer(); // freed before the new one
  auto fresh = cuda::DeviceBuffer::allocate(bytes);
  if (!fresh.ok())
    return Status::error(std::string(what) +
                         " on the device: " + fresh.status().message());
  buffer = std::move(fresh.value());
  return true;
}

Status Model::Impl::syncDevice(int64_t workspaceBytes) {
  auto fresh =
      sizeDeviceBuffer(device.params, params.totalBytes(), "the parameters");
  if (!fresh.ok())
    return fresh.status();
  if (fresh.value() || device.deviceStale) {
    LOOM_RETURN_IF_ERROR(
        device.params.upload(params.data(), params.totalBytes()));
    device.deviceStale = false;
  }
  // The workspace only grows.
  return sizeDeviceBuffer(
             device.workspace,
             std::max(device.workspace.size(), size_t(workspaceBytes)),
             "the workspace")
      .status();
}

/// The bytes of workspace `fn` (compiled for a device) needs.
static int64_t workspaceBytes(const driver::CompiledFunction &fn) {
  const gpu::Function *plan = fn.gpu->program().find(fn.entry);
  return plan ? plan->workspaceBytes : 0;
}

Status Model::Impl::run(driver::CompiledFunction &fn,
                        const std::vector<void *> &inputs,
                        const std::vector<void *> &outputs) {
  if (!fn.gpu) {
    LOOM_RETURN_IF_ERROR(hostParams().status());
    return driver::invokeInto(fn, params.data(), inputs, outputs);
  }
  std::lock_guard<std::mutex> lock(device.mutex);
  LOOM_RETURN_IF_ERROR(syncDevice(workspaceBytes(fn)));
  std::vector<cuda::Binding> args = {&device.params};
  args.insert(args.end(), inputs.begin(), inputs.end());
  args.insert(args.end(), outputs.begin(), outputs.end());
  return fn.gpu->run(fn.entry, args, &device.workspace);
}

/// Fresh output tensors for `fn`, and their buffers (appended to
/// `pointers`).
static std::vector<Tensor> freshOutputs(const driver::CompiledFunction &fn,
                                        std::vector<void *> &pointers) {
  std::vector<Tensor> outputs;
  for (const driver::ArgSpec &out : fn.signature.outputs) {
    outputs.push_back(Tensor::empty(out.dtype, out.shape));
    pointers.push_back(outputs.back().rawData());
  }
  return outputs;
}

Result<std::vector<Tensor>>
loom::driver::invoke(driver::CompiledFunction &fn, void *params,
                     const std::vector<void *> &inputs) {
  std::vector<void *> pointers;
  std::vector<Tensor> outputs = freshOutputs(fn, pointers);
  LOOM_RETURN_IF_ERROR(invokeInto(fn, params, inputs, pointers));
  return outputs;
}

Result<driver::CompiledFunction *>
loom::driver::compiledFor(Model::Impl &impl, const std::string &name,
                          const std::vector<Tensor> &inputs,
                          const driver::Variant &variant) {
  std::vector<std::vector<int64_t>> shapes;
  std::vector<DType> dtypes;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].isContiguous())
      return Status::error("input " + std::to_string(i) + " of '" + name +
                           "' is not contiguous");
    shapes.push_back(inputs[i].shape());
    dtypes.push_back(inputs[i].dtype());
  }
  auto bindings = impl.session->bindFromShapes(name, shapes, dtypes);
  if (!bindings)
    return Status::error(llvm::toString(bindings.takeError()));
  unsigned before = impl.session->compileCount();
  auto compiled = impl.session->get(name, *bindings, variant);
  if (!compiled)
    return Status::error(llvm::toString(compiled.takeError()));
  driver::CompiledFunction &fn = **compiled;
  if (impl.session->compileCount() != before)
    impl.compileSeconds += fn.compileSeconds;
  // Ids and targets out of their range are reported, never clamped. The
  // inputs are the last of the compiled signature's (a training step takes
  // its optimizer state first).
  size_t first = fn.signature.inputs.size() - inputs.size();
  for (size_t i = 0; i < inputs.size(); ++i)
    if (llvm::Error err =
            driver::checkRange(fn.signature.inputs[first + i], name, inputs[i]))
      return Status::error(llvm::toString(std::move(err)));
  if (fn.paramBytes != static_cast<int64_t>(impl.params.totalBytes()))
    return Status::error("internal error: compiled code expects a parameter "
                         "buffer of " +
                         std::to_string(fn.paramBytes) +
                         " bytes, the store has " +
                         std::to_string(impl.params.totalBytes()));
  return &fn;
}

namespace {
std::vector<void *> pointersOf(const std::vector<Tensor> &tensors) {
  std::vector<void *> pointers;
  for (const Tensor &t : tensors)
    pointers.push_back(t.rawData());
  return pointers;
}

std::string optimizerText(const OptimizerOptions &o) {
  return llvm::formatv("kind={0} momentum={1:e} nesterov={2} beta1={3:e} "
                       "beta2={4:e} eps={5:e} weight-decay={6:e} "
                       "max-grad-norm={7:e}",
                       o.kind, o.momentum, o.nesterov ? "true" : "false",
                       o.beta1, o.beta2, o.eps, o.weightDecay, o.maxGradNorm)
      .str();
}
} // namespace

/// Runs `fn` on `inputs` into fresh outputs.
static Result<std::vector<Tensor>> runFresh(Model::Impl &impl,
                                            driver::CompiledFunction &fn,
                                            const std::vector<Tensor> &inputs) {
  std::vector<void *> pointers;
  std::vector<Tensor> outputs = freshOutputs(fn, pointers);
  LOOM_RETURN_IF_ERROR(impl.run(fn, pointersOf(inputs), pointers));
  return outputs;
}

Result<std::vector<Tensor>> Model::call(const std::string &name,
                                        const std::vector<Tensor> &inputs) {
  auto fn = driver::compiledFor(*impl, name, inputs, driver::Variant());
  if (!fn.ok())
    return fn.status();
  return runFresh(*impl, *fn.value(), inputs);
}

Result<Gradient> Model::gradient(const std::string &name,
                                 const std::vector<Tensor> &inputs,
                                 const std::vector<std::string> &trainable) {
  driver::Variant variant;
  variant.kind = driver::Variant::Gradient;
  variant.trainable = trainable;
  auto fn = driver::compiledFor(*impl, name, inputs, variant);
  if (!fn.ok())
    return fn.status();
  auto outputs = runFresh(*impl, *fn.value(), inputs);
  if (!outputs.ok())
    return outputs.status();
  Gradient result;
  result.loss = *static_cast<const float *>(outputs.value()[0].rawData());
  result.grads = outputs.value()[1];
  return result;
}

/// What the step's results say: committed (the step wrote its update), or
/// why not.
static StepResult stepResult(float loss, float norm, int64_t firstNonFinite,
                             size_t n) {
  StepResult result;
  result.loss = loss;
  result.gradNorm = norm;
  if (!std::isfinite(loss) || !std::isfinite(norm))
    return result;
  // An update can overflow even when the gradient is finite (a huge LR).
  if (firstNonFinite < int64_t(n)) {
    result.nonFiniteUpdateAt = firstNonFinite;
    return result;
  }
  result.committed = true;
  return result;
}

/// A training step on the device `fn` was compiled for. The parameters
/// and the moments stay there and the step updates them in place; only the
/// hyperparameters and the batch go over, and the loss, the norm and the
/// first update that is not finite come back.
static Result<StepResult> stepOnDevice(Model::Impl &impl,
                                       driver::CompiledFunction &fn,
                                       OptimizerState &state,
                                       const float hyper[4],
                                       const std::vector<void *> &inputs) {
  size_t bytes = impl.params.totalBytes(), n = bytes / sizeof(float);
  int states = fn.optimizerStates;
  std::lock_guard<std::mutex> lock(impl.device.mutex);
  LOOM_RETURN_IF_ERROR(impl.syncDevice(workspaceBytes(fn)));
  if (states > 0 && !state.device)
    state.device = std::make_shared<DeviceMoments>();
  for (int k = 0; k < states; ++k) {
    std::vector<float> &host = k == 0 ? state.m : state.v;
    cuda::DeviceBuffer &moment = state.device->moments[k];
    auto sized = sizeDeviceBuffer(moment, bytes, "the optimizer moments");
    if (!sized.ok())
      return sized.status();
    bool fresh = sized.value();
    // Moments put on the host (a resumed run) are the newer; a state that
    // has none starts from zeros, as on the CPU (set on the device).
    if (host.size() == n)
      LOOM_RETURN_IF_ERROR(moment.upload(host.data(), bytes));
    else if (fresh || !host.empty())
      LOOM_RETURN_IF_ERROR(moment.zero());
    std::vector<float>().swap(host);
  }
  std::vector<cuda::Binding> args = {&impl.device.params};
  for (int k = 0; k < states; ++k)
    args.push_back(&state.device->moments[k]);
  args.push_back(const_cast<float *>(hyper));
  args.insert(args.end(), inputs.begin(), inputs.end());
  float loss = 0, norm = 0;
  int64_t first = 0;
  args.push_back(&loss);
  args.push_back(&norm);
  args.push_back(&first);
  if (Status ran = fn.gpu->run(fn.entry, args, &impl.device.workspace);
      !ran.ok()) {
    // The step writes in place: a failure may have left the device's
    // parameters and moments partly updated. The host's parameters, when
    // current, are uploaded again by the next call; otherwise (after a
    // committed step) neither can be restored.
    if (!impl.device.hostStale) {
      impl.device.deviceStale = true;
      return Status::error(ran.message() +
                           " (the optimizer moments on the device may be "
                           "partly updated)");
    }
    return Status::error(ran.message() +
                         " (the parameters and the optimizer moments on the "
                         "device may be partly updated)");
  }
  StepResult result = stepResult(loss, norm, first, n);
  if (result.committed) {
    impl.device.hostStale = true;
    ++state.step;
  }
  return result;
}

Result<StepResult> Model::trainStep(const StepOptions &options,
                                    OptimizerState &state, double lr,
                                    const std::vector<Tensor> &inputs) {
  const OptimizerOptions &o = options.optimizer;
  driver::Variant variant;
  variant.kind = driver::Variant::TrainStep;
  variant.trainable = options.trainable;
  variant.lrMultipliers = options.lrMultipliers;
  variant.optimizer = optimizerText(o);
  auto compiled = driver::compiledFor(*impl, options.loss, inputs, variant);
  if (!compiled.ok())
    return compiled.status();
  driver::CompiledFunction &fn = *compiled.value();
  size_t n = impl->params.totalBytes() / sizeof(float);
  int states = fn.optimizerStates;
  int64_t t = state.step + 1;
  float hyper[4] = {float(lr), float(1.0 - std::pow(o.beta1, double(t))),
                    float(1.0 - std::pow(o.beta2, double(t))), 0.0f};
  if (fn.gpu)
    return stepOnDevice(*impl, fn, state, hyper, pointersOf(inputs));
  // Moments a target-cuda step left on its device come back first.
  if (state.device) {
    auto host = hostCopy(state);
    if (!host.ok())
      return host.status();
    state = std::move(host.value());
  }
  if (states >= 1 && state.m.size() != n)
    state.m.assign(n, 0.0f);
  if (states >= 2 && state.v.size() != n)
    state.v.assign(n, 0.0f);
  std::vector<void *> args;
  if (states >= 1)
    args.push_back(state.m.data());
  if (states >= 2)
    args.push_back(state.v.data());
  args.push_back(hyper);
  llvm::append_range(args, pointersOf(inputs));
  // The step updates the parameters and the moments in place (or leaves
  // them as they were); what comes back is the loss, the norm and the
  // first update that is not finite.
  float loss = 0, norm = 0;
  int64_t first = 0;
  LOOM_RETURN_IF_ERROR(impl->run(fn, args, {&loss, &norm, &first}));
  StepResult result = stepResult(loss, norm, first, n);
  if (result.committed)
    state.step = t;
  return result;
}

Result<OptimizerState> Model::hostCopy(const OptimizerState &state) const {
  OptimizerState copy;
  copy.step = state.step;
  copy.m = state.m;
  copy.v = state.v;
  if (!state.device)
    return copy;
  for (int k = 0; k < 2; ++k) {
    std::vector<float> &host = k == 0 ? copy.m : copy.v;
    const cuda::DeviceBuffer &moment = state.device->moments[k];
    if (!host.empty() || moment.empty())
      continue; // moments put on the host are the newer
    host.resize(moment.size() / sizeof(float));
    LOOM_RETURN_IF_ERROR(moment.download(host.data(), moment.size()));
  }
  return copy;
}

Status Model::saveCheckpoint(const std::string &path) const {
  auto host = impl->hostParams();
  if (!host.ok())
    return host.status();
  return loom::saveCheckpoint(path, *host.value());
}

Status Model::loadCheckpoint(const std::string &path) {
  auto host = impl->writableParams();
  if (!host.ok())
    return host.status();
  return loom::loadCheckpoint(path, *host.value());
}
