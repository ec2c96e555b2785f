//===- Train.h - `loomc train`, `sample` and `generate` ---------*- C++ -*-===//

#ifndef LOOM_TOOLS_LOOMC_TRAIN_H
#define LOOM_TOOLS_LOOMC_TRAIN_H

#include "loom/Generator.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace loom::tools {

struct TrainOptions {
  std::string file, model, function = "loss";
  std::vector<std::string> includeDirs;
  bool diskCache = true;
  /// "cpu" or "cuda"; tensorCores as in loom::CompileOptions.
  std::string target = "cpu";
  std::string tensorCores = "3xtf32";
  std::map<std::string, std::string> config;
  /// lm, mlm, classify, copy, reverse; empty: from the loss's inputs.
  std::string task;
  /// A text corpus (lm, mlm), or labeled lines "LABEL<TAB>TEXT" (classify:
  /// text classification with a tokenizer, accuracy on a held-out split).
  std::string data;
  /// Parameters to start from (e.g. `loomc import`'s): every parameter of
  /// the checkpoint with the model's name and shape; the rest (a new head)
  /// keep their initializer. Its configuration and tokenizer apply.
  std::string init;
  /// A model directory whose tokenizer encodes --data (else --init's).
  std::string tokenizer;
  double heldOut = 0.2;
  /// Distillation (a loss with a `teacher` input): the teacher's checkpoint
  /// and model file (default: the student's file), whose evalFunction
  /// scores each batch.
  std::string teacher, teacherModel;
  /// The function whose argmax is the predicted class (classify).
  std::string evalFunction = "classify";
  int64_t steps = 100, batch = 8, ctx = 64;
  double lr = 1e-3;
  std::string schedule = "constant";
  std::string optimizer = "adamw";
  double momentum = 0, weightDecay = 0, clip = 0;
  bool nesterov = false;
  uint64_t seed = 0;
  std::string log; // CSV
  int64_t logEvery = 10;
  std::string checkpoint; // written every ckptEvery and at the end
  int64_t checkpointEvery = 0;
  std::string resume;
  std::string lrFind; // CSV of the LR range test; then exit
  int64_t lrFindSteps = 100;
  /// "name=prefix,prefix;name=..." bottom first (discriminative LRs and
  /// gradual unfreezing act on these groups).
  std::string groups;
  double lrDecay = 1.0;      // group k from the top: lr / lrDecay^k
  int64_t unfreezeEvery = 0; // gradual unfreezing stage length
};

int trainModel(const TrainOptions &options);

/// A model to run and its weights: what `sample` and `generate` share.
struct InferenceModel {
  std::string file, model, function = "logits";
  std::vector<std::string> includeDirs;
  bool diskCache = true;
  std::map<std::string, std::string> config;
  std::string checkpoint; // a model or training checkpoint; empty: random
  /// A model directory whose tokenizer encodes the prompt and decodes the
  /// output; empty: the checkpoint's (an imported model's), else bytes.
  std::string tokenizer;
};

struct SampleOptions : InferenceModel {
  std::string prompt = "\n";
  int64_t tokens = 200, ctx = 64, lines = 0;
  double temperature = 0.8;
  uint64_t seed = 0;
};

int sampleModel(const SampleOptions &options);

struct GenerateOptions : InferenceModel {
  std::string prompt = "\n";
  int64_t maxTokens = 200;
  /// Key/value cache positions; 0: the prompt plus maxTokens.
  int64_t capacity = 0;
  SamplingOptions sampling;
  std::vector<std::string> stop;
};

/// Streams the prompt's continuation to stdout through the KV-cache decode
/// step; prints tokens/s (prefill and decode apart) to stderr.
int generateText(const GenerateOptions &options);

} // namespace loom::tools

#endif // LOOM_TOOLS_LOOMC_TRAIN_H
