//===- Trainer.cpp - Driving training with the usual recipes --------------===//
//
// The implementation of runtime/include/loom/Trainer.h on top of Model's
// compiled training step.
//
//===----------------------------------------------------------------------===//

#include "loom/Trainer.h"

#include "driver/ModelImpl.h"

#include "loom/Checkpoint.h"

#include <cmath>
#include <cstring>
#include <utility>

using namespace loom;

namespace {

constexpr const char *kMomentPrefixes[] = {"optimizer.m.", "optimizer.v."};

/// The moments the update rule keeps (as `loom-optimizer` builds them).
int momentCount(const OptimizerOptions &o) {
  if (o.kind == "sgd")
    return o.momentum > 0 ? 1 : 0;
  return 2;
}

bool allFinite(const float *data, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(data[i]))
      return false;
  return true;
}

/// The tensors of a training checkpoint: the parameters, then `moments`
/// optimizer moments of each ("optimizer.m.<name>", "optimizer.v.<name>").
std::vector<ParamInfo> checkpointLayout(const ParamStore &store, int moments) {
  std::vector<ParamInfo> infos = store.params();
  for (int k = 0; k < moments; ++k)
    for (const ParamInfo &info : store.params()) {
      ParamInfo moment = info;
      moment.name = kMomentPrefixes[k] + info.name;
      moment.init = InitSpec{"zeros", {}};
      infos.push_back(moment);
    }
  return infos;
}

} // namespace

Trainer::Trainer(Model &model, TrainerOptions options)
    : model(model), options(std::move(options)) {
  current.loss = this->options.loss;
  current.optimizer = this->options.optimizer;
  for (const LayerGroup &group : this->options.groups)
    for (const std::string &prefix : group.prefixes) {
      current.trainable.push_back(prefix);
      if (group.lrMultiplier != 1.0)
        current.lrMultipliers.emplace_back(prefix, group.lrMultiplier);
    }
}

double Trainer::currentLr() const { return options.schedule.lr(state.step); }

void Trainer::unfreezeTop(size_t count) {
  const std::vector<LayerGroup> &groups = options.groups;
  current.trainable.clear();
  size_t first = count >= groups.size() ? 0 : groups.size() - count;
  for (size_t g = first; g < groups.size(); ++g)
    for (const std::string &prefix : groups[g].prefixes)
      current.trainable.push_back(prefix);
}

void Trainer::applyUnfreezing(const UnfreezeSchedule &schedule, int64_t step) {
  if (schedule.stepsPerStage <= 0 || options.groups.empty())
    return;
  unfreezeTop(static_cast<size_t>(step / schedule.stepsPerStage) + 1);
}

Result<StepResult> Trainer::step(const std::vector<Tensor> &inputs) {
  return stepWithLr(inputs, currentLr());
}

Result<StepResult> Trainer::stepWithLr(const std::vector<Tensor> &inputs,
                                       double lr) {
  auto result = model.trainStep(current, state, lr, inputs);
  if (!result.ok())
    return result.status();
  if (result.value().committed)
    return result;
  if (int64_t at = result.value().nonFiniteUpdateAt; at >= 0) {
    std::string name = "(padding)";
    for (const ParamInfo &info :
         driver::ModelAccess::impl(model).params.params()) {
      size_t first = info.offset / sizeof(float);
      if (size_t(at) >= first && size_t(at) < first + info.nbytes() / 4)
        name = info.name;
    }
    return Status::error(
        "step " + std::to_string(state.step + 1) +
        ": the update of parameter '" + name + "' is not finite (loss " +
        std::to_string(result.value().loss) + ", gradient norm " +
        std::to_string(result.value().gradNorm) +
        "; is the learning rate too large?); parameters "
        "left at step " +
        std::to_string(state.step));
  }
  std::string what =
      std::isfinite(result.value().loss)
          ? "the gradient norm is " + std::to_string(result.value().gradNorm)
          : "the loss is " + std::to_string(result.value().loss);
  return Status::error("step " + std::to_string(state.step + 1) + ": " + what +
                       "; " + nonFiniteCulprit(inputs) +
                       "; parameters left at step " +
                       std::to_string(state.step));
}

std::string Trainer::nonFiniteCulprit(const std::vector<Tensor> &inputs) {
  auto host = driver::ModelAccess::impl(model).hostParams();
  if (!host.ok())
    return "(could not read the parameters: " + host.status().message() + ")";
  const ParamStore &store = *host.value();
  for (size_t i = 0; i < store.size(); ++i) {
    const ParamInfo &info = store.param(i);
    const float *data =
        reinterpret_cast<const float *>(store.data() + info.offset);
    if (!allFinite(data, info.nbytes() / sizeof(float)))
      return "parameter '" + info.name + "' holds a non-finite value";
  }
  auto grad = model.gradient(current.loss, inputs, current.trainable);
  if (!grad.ok())
    return "(could not recompute the gradient: " + grad.status().message() +
           ")";
  const float *grads = static_cast<const float *>(grad.value().grads.rawData());
  for (size_t i = 0; i < store.size(); ++i) {
    const ParamInfo &info = store.param(i);
    if (!allFinite(grads + info.offset / sizeof(float),
                   info.nbytes() / sizeof(float)))
      return "the gradient of parameter '" + info.name + "' is not finite";
  }
  return "every gradient is finite (the loss itself overflowed)";
}

Status Trainer::saveCheckpoint(
    const std::string &path,
    const std::map<std::string, std::string> &metadata) const {
  auto host = driver::ModelAccess::impl(model).hostParams();
  if (!host.ok())
    return host.status();
  const ParamStore &store = *host.value();
  // Moments a target-cuda step left on the device come back.
  OptimizerState fromDevice;
  if (state.device) {
    auto copy = model.hostCopy(state);
    if (!copy.ok())
      return copy.status();
    fromDevice = std::move(copy.value());
  }
  const OptimizerState &saved = state.device ? fromDevice : state;
  // The moments of the rule, zeros before the first step (when the state
  // is still empty), so that loadCheckpoint finds the layout it expects.
  int moments = momentCount(options.optimizer);
  auto combined = ParamStore::create(checkpointLayout(store, moments));
  if (!combined.ok())
    return combined.status();
  ParamStore &all = combined.value();
  std::memcpy(all.data(), store.data(), store.totalBytes());
  size_t index = store.size();
  for (int k = 0; k < moments; ++k) {
    const std::vector<float> &moment = k == 0 ? saved.m : saved.v;
    for (const ParamInfo &info : store.params()) {
      if (!moment.empty())
        std::memcpy(all.data() + all.param(index).offset,
                    moment.data() + info.offset / sizeof(float), info.nbytes());
      ++index;
    }
  }
  std::map<std::string, std::string> meta = metadata;
  meta["loom.step"] = std::to_string(state.step);
  meta["loom.optimizer"] = options.optimizer.kind;
  return loom::saveCheckpoint(path, all, meta);
}

Status Trainer::loadCheckpoint(const std::string &path) {
  auto meta = readCheckpointMetadata(path);
  if (!meta.ok())
    return meta.status();
  auto stepIt = meta.value().find("loom.step");
  if (stepIt == meta.value().end())
    return Status::error("checkpoint '" + path +
                         "' has no training state (no loom.step); load it "
                         "with Model::loadCheckpoint");
  char *end = nullptr;
  long long step = std::strtoll(stepIt->second.c_str(), &end, 10);
  if (*end != '\0' || step < 0)
    return Status::error("checkpoint '" + path + "': bad loom.step '" +
                         stepIt->second + "'");
  // Which moments were saved decides the layout the file must match.
  auto host = driver::ModelAccess::impl(model).writableParams();
  if (!host.ok())
    return host.status();
  ParamStore &store = *host.value();
  auto kindIt = meta.value().find("loom.optimizer");
  std::string kind =
      kindIt == meta.value().end() ? std::string() : kindIt->second;
  if (kind != options.optimizer.kind)
    return Status::error(
        "checkpoint '" + path + "' was written by optimizer '" + kind +
        "', this trainer uses '" + options.optimizer.kind + "'");
  int moments = momentCount(options.optimizer);
  auto combined = ParamStore::create(checkpointLayout(store, moments));
  if (!combined.ok())
    return combined.status();
  ParamStore &all = combined.value();
  LOOM_RETURN_IF_ERROR(loom::loadCheckpoint(path, all));
  std::memcpy(store.data(), all.data(), store.totalBytes());
  size_t n = store.totalBytes() / sizeof(float);
  state.m.clear();
  state.v.clear();
  size_t index = store.size();
  for (int k = 0; k < moments; ++k) {
    std::vector<float> &moment = k == 0 ? state.m : state.v;
    moment.assign(n, 0.0f);
    for (const ParamInfo &info : store.params()) {
      std::memcpy(moment.data() + info.offset / sizeof(float),
                  all.data() + all.param(index).offset, info.nbytes());
      ++index;
    }
  }
  state.step = step;
  return Status::success();
}

Result<LrFinder>
Trainer::findLr(const std::function<std::vector<Tensor>(int64_t)> &batch,
                double startLr, double endLr, int64_t steps,
                const std::string &csvPath) {
  auto finder = LrFinder::create(startLr, endLr, steps);
  if (!finder.ok())
    return finder.status();
  // The test trains for real; keep what it disturbs (on the host: the
  // steps would change moments a copy of the state shares on a device).
  Model::Impl &impl = driver::ModelAccess::impl(model);
  auto before = impl.hostParams();
  if (!before.ok())
    return before.status();
  std::vector<std::byte> saved(before.value()->data(),
                               before.value()->data() +
                                   before.value()->totalBytes());
  auto savedState = model.hostCopy(state);
  if (!savedState.ok())
    return savedState.status();
  auto restore = [&] {
    std::memcpy(impl.replacedParams().data(), saved.data(), saved.size());
    state = savedState.value();
  };
  LrFinder &f = finder.value();
  for (int64_t i = 0; i < steps && !f.done(); ++i) {
    auto result = model.trainStep(current, state, f.currentLr(), batch(i));
    if (!result.ok()) {
      restore();
      return result.status();
    }
    double loss = result.value().committed ? result.value().loss : INFINITY;
    if (!f.record(loss))
      break;
  }
  restore();
  if (!csvPath.empty())
    LOOM_RETURN_IF_ERROR(f.writeCsv(csvPath));
  return finder;
}
