//===- Trainer.h - Driving training with the usual recipes ------*- C++ -*-===//
//
//   loom::Trainer trainer(model, options);
//   for (int64_t s = 0; s < steps; ++s) {
//     auto r = trainer.step(batchFor(s));   // LR from the schedule
//     if (!r.ok()) ...                      // e.g. NaN, naming the parameter
//   }
//   trainer.saveCheckpoint("run.safetensors");  // params + moments + step
//
// A Trainer owns the optimizer state of one Model and calls its compiled,
// fused training step (Model::trainStep). Learning-rate schedules and the
// LR finder only change a run-time input; freezing and discriminative LRs
// select a compiled step variant (cached, so switching back is free).
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_TRAINER_H
#define LOOM_TRAINER_H

#include "loom/Model.h"
#include "loom/Schedule.h"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace loom {

/// A named set of parameters (names or prefixes) with its own LR multiplier:
/// discriminative fine-tuning gives lower layers smaller multipliers.
struct LayerGroup {
  std::string name;
  std::vector<std::string> prefixes;
  double lrMultiplier = 1.0;
};

struct TrainerOptions {
  /// The loss function and the update rule.
  std::string loss = "loss";
  OptimizerOptions optimizer;
  /// The base LR per step; the multipliers of layer groups scale it.
  LrSchedule schedule = LrSchedule::constant(1e-3);
  /// Layer groups, bottom (input side) first. Empty: one group of all
  /// parameters. Parameters in no group are frozen when groups are given.
  std::vector<LayerGroup> groups;
};

/// Gradual unfreezing: stage k trains the top k+1 groups.
struct UnfreezeSchedule {
  /// Steps per stage; the last stage (all groups) lasts until the end.
  int64_t stepsPerStage = 0;
};

class Trainer {
public:
  Trainer(Model &model, TrainerOptions options);

  /// One training step on `inputs` with the LR of the schedule at the
  /// current step. Fails, leaving parameters and state unchanged, when the
  /// loss, the gradients or the update of a parameter or moment is not
  /// finite: the message names the step and the first parameter whose
  /// gradient, value or update is not finite.
  Result<StepResult> step(const std::vector<Tensor> &inputs);

  /// Trains only the top `count` groups (all when count >= groups); the
  /// others are frozen (bit-identical). Recompiles the step on first use
  /// of each trainable set.
  void unfreezeTop(size_t count);
  /// The stage of gradual unfreezing for step `step` (top-down: stage k
  /// trains the top k+1 groups), applied with unfreezeTop.
  void applyUnfreezing(const UnfreezeSchedule &schedule, int64_t step);

  /// The trainable names/prefixes of the current stage (empty: all).
  const std::vector<std::string> &trainable() const {
    return current.trainable;
  }
  int64_t stepCount() const { return state.step; }
  double currentLr() const;
  const OptimizerState &optimizerState() const { return state; }

  /// Parameters, optimizer moments and the step count, in one safetensors
  /// file (moments as "optimizer.m.<param>", "optimizer.v.<param>"), with
  /// `metadata` added to the file's metadata.
  Status
  saveCheckpoint(const std::string &path,
                 const std::map<std::string, std::string> &metadata = {}) const;
  /// Restores what saveCheckpoint wrote; resuming then continues bit for
  /// bit as if training had not stopped (given the same batches).
  Status loadCheckpoint(const std::string &path);

  /// LR range test: trains for up to `steps` steps with the LR growing
  /// exponentially from `startLr` to `endLr`, recording the loss, then
  /// restores the parameters and optimizer state. Writes `csvPath` when not
  /// empty.
  Result<LrFinder>
  findLr(const std::function<std::vector<Tensor>(int64_t)> &batch,
         double startLr, double endLr, int64_t steps,
         const std::string &csvPath = "");

private:
  Result<StepResult> stepWithLr(const std::vector<Tensor> &inputs, double lr);
  std::string nonFiniteCulprit(const std::vector<Tensor> &inputs);

  Model &model;
  TrainerOptions options;
  StepOptions current;
  OptimizerState state;
};

} // namespace loom

#endif // LOOM_TRAINER_H
