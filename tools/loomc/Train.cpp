//===- Train.cpp - `loomc train` and `loomc sample` -----------------------===//
//
// `loomc train` drives loom::Trainer on one of the objectives of
// loom/Data.h: it picks the data pipeline from the loss function's inputs
// (or --task), prints a progress line with step, loss, LR and tokens/s,
// writes a CSV log and checkpoints, and reports the validation loss at the
// end. `loomc sample` generates text from a causal LM's `logits` function
// with a plain loop over the forward pass. Both use only the public runtime
// API (loom/Model.h, loom/Trainer.h, loom/Data.h).
//
//===----------------------------------------------------------------------===//

#include "tools/loomc/Train.h"

#include "loom/Checkpoint.h"
#include "loom/Data.h"
#include "loom/Import.h"
#include "loom/Tokenizer.h"
#include "loom/Trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <unistd.h>

using namespace loom;
using Clock = std::chrono::steady_clock;

namespace {

int fail(const std::string &message) {
  std::fprintf(stderr, "loomc: error: %s\n", message.c_str());
  return 1;
}

std::vector<std::string> split(const std::string &text, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(sep, start);
    if (end == std::string::npos)
      end = text.size();
    if (end > start)
      parts.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

const FunctionInfo *findFunction(const Model &model, const std::string &name) {
  for (const FunctionInfo &f : model.functions())
    if (f.name == name)
      return &f;
  return nullptr;
}

/// Whether `fn` takes a dropout seed (its last input, added by the
/// frontend when a model compiled for training uses dropout).
bool takesDropoutSeed(const FunctionInfo &fn) {
  return !fn.inputs.empty() && fn.inputs.back().name == "dropout_seed";
}

/// Appends the dropout seed `fn` takes, if any.
std::vector<Tensor> withDropoutSeed(std::vector<Tensor> inputs,
                                    const FunctionInfo &fn, uint64_t seed) {
  if (!takesDropoutSeed(fn))
    return inputs;
  Tensor t = Tensor::empty(DType::I64, {});
  *t.data<int64_t>() = int64_t(seed >> 11); // exact in a double, too
  inputs.push_back(t);
  return inputs;
}

/// The objective a loss function trains, from its input names.
std::string taskOf(const FunctionInfo &loss) {
  std::vector<std::string> names;
  for (const ArgInfo &a : loss.inputs)
    if (a.name != "dropout_seed")
      names.push_back(a.name);
  using V = std::vector<std::string>;
  if (names == V{"tokens", "targets"})
    return "lm";
  if (names == V{"tokens", "segments", "mlm_targets", "nsp_labels"})
    return "mlm";
  if (names == V{"tokens", "segments", "mlm_targets"})
    return "mlm-only";
  if (names == V{"tokens", "segments", "labels"})
    return "classify";
  if (names == V{"tokens", "segments", "labels", "teacher"})
    return "distill";
  if (names == V{"src", "tgt_in", "tgt_out"})
    return "reverse";
  return "";
}

/// Batches for step `step`: a pure function of (seed, step), so a resumed
/// run sees exactly the batches it would have seen.
using BatchFn = std::function<Result<std::vector<Tensor>>(uint64_t)>;

Result<BatchFn> makeBatches(const std::string &task,
                            const std::vector<uint8_t> *corpus, int64_t batch,
                            int64_t ctx) {
  if (task == "lm")
    return BatchFn([=](uint64_t seed) -> Result<std::vector<Tensor>> {
      Rng rng(seed);
      auto b = sampleLmBatch(*corpus, batch, ctx, rng);
      if (!b.ok())
        return b.status();
      return b.value().inputs();
    });
  if (task == "mlm")
    return BatchFn([=](uint64_t seed) -> Result<std::vector<Tensor>> {
      Rng rng(seed);
      auto b = sampleBertBatch(*corpus, batch, ctx, rng);
      if (!b.ok())
        return b.status();
      return b.value().inputs();
    });
  // RoBERTa: masked tokens only, contiguous text, fresh masks every batch
  // (a pure function of the step's seed: dynamic masking).
  if (task == "mlm-only")
    return BatchFn([=](uint64_t seed) -> Result<std::vector<Tensor>> {
      Rng rng(seed);
      BertDataConfig config;
      config.nextSentence = false;
      auto b = sampleBertBatch(*corpus, batch, ctx, rng, config);
      if (!b.ok())
        return b.status();
      return std::vector<Tensor>{b->tokens, b->segments, b->mlmTargets};
    });
  if (task == "classify")
    return BatchFn([=](uint64_t seed) -> Result<std::vector<Tensor>> {
      Rng rng(seed);
      auto b = sampleCountTask(batch, ctx, rng);
      if (!b.ok())
        return b.status();
      return b.value().inputs();
    });
  if (task == "copy" || task == "reverse") {
    Seq2SeqTask kind =
        task == "copy" ? Seq2SeqTask::Copy : Seq2SeqTask::Reverse;
    return BatchFn([=](uint64_t seed) -> Result<std::vector<Tensor>> {
      Rng rng(seed);
      auto b = sampleSeq2SeqBatch(kind, batch, ctx, rng);
      if (!b.ok())
        return b.status();
      return b.value().inputs();
    });
  }
  return Status::error("unknown task '" + task +
                       "' (expected lm, mlm, mlm-only, classify, copy or "
                       "reverse)");
}

uint64_t mix(uint64_t seed, uint64_t step) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + step * 0xD1B54A32D192ED03ull;
  x ^= x >> 31;
  return x * 0xBF58476D1CE4E5B9ull;
}

/// Layer groups from "name=prefix,prefix;name=..." (bottom first), with LR
/// multipliers lrDecay^-k counted from the top group.
Result<std::vector<LayerGroup>> parseGroups(const std::string &text,
                                            double lrDecay) {
  std::vector<LayerGroup> groups;
  for (const std::string &part : split(text, ';')) {
    size_t eq = part.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == part.size())
      return Status::error("--groups: expected NAME=PREFIX[,PREFIX...], got '" +
                           part + "'");
    groups.push_back({part.substr(0, eq), split(part.substr(eq + 1), ','), 1});
  }
  for (size_t k = 0; k < groups.size(); ++k)
    groups[k].lrMultiplier = std::pow(lrDecay, -double(groups.size() - 1 - k));
  return groups;
}

void progress(int64_t step, int64_t steps, double loss, double lr,
              double tokensPerSecond, bool tty) {
  constexpr int kWidth = 24;
  int filled = int(kWidth * double(step) / double(std::max<int64_t>(steps, 1)));
  std::string bar(filled, '=');
  if (filled < kWidth)
    bar += '>' + std::string(kWidth - filled - 1, ' ');
  std::fprintf(stderr,
               "%sstep %5lld/%lld [%s] loss %.4f  lr %.2e  %.0f tok/s%s",
               tty ? "\r" : "", (long long)step, (long long)steps, bar.c_str(),
               loss, lr, tokensPerSecond, tty ? "" : "\n");
  std::fflush(stderr);
}

/// The parameters of `path` into `model`. A training checkpoint also holds
/// optimizer moments: it is loaded through a Trainer.
Status loadParameters(Model &model, const std::string &path) {
  auto meta = readCheckpointMetadata(path);
  if (!meta.ok())
    return meta.status();
  auto kind = meta.value().find("loom.optimizer");
  if (kind == meta.value().end())
    return model.loadCheckpoint(path);
  TrainerOptions options;
  options.optimizer.kind = kind->second;
  Trainer trainer(model, options);
  return trainer.loadCheckpoint(path);
}
/// Batches of B examples of `data` drawn uniformly (a pure function of the
/// seed), tokenized to T ids.
BatchFn labeledBatches(const LabeledTexts &data, const Tokenizer &tokenizer,
                       int64_t batch, int64_t ctx) {
  return [&data, &tokenizer, batch,
          ctx](uint64_t seed) -> Result<std::vector<Tensor>> {
    if (data.size() == 0)
      return Status::error("no examples to draw a batch from");
    Rng rng(seed);
    std::vector<std::string> texts;
    Tensor labels = Tensor::empty(DType::I32, {batch});
    for (int64_t b = 0; b < batch; ++b) {
      size_t i = size_t(rng.below(uint64_t(data.size())));
      texts.push_back(data.texts[i]);
      labels.data<int32_t>()[b] = data.classes[i];
    }
    BatchEncoding encoded = tokenizer.encodeBatch(texts, ctx);
    return std::vector<Tensor>{encoded.tokens, encoded.segments, labels};
  };
}

/// Every parameter of checkpoint `path` whose name and shape the model has
/// goes into the model; returns the model's parameters it did not fill.
/// Errors when it fills none (the wrong checkpoint).
Result<std::vector<std::string>> initializeFrom(Model &model,
                                                const std::string &path) {
  auto file = readSafetensors(path);
  if (!file.ok())
    return file.status();
  ParamStore &store = model.params();
  std::vector<bool> filled(store.size(), false);
  for (const auto &[name, tensor] : file->tensors) {
    std::optional<size_t> index = store.indexOf(name);
    if (!index)
      continue;
    const ParamInfo &info = store.param(*index);
    if (info.shape != tensor.shape() || info.dtype != tensor.dtype())
      continue;
    std::memcpy(store.data() + info.offset, tensor.rawData(), info.nbytes());
    filled[*index] = true;
  }
  std::vector<std::string> fresh;
  for (size_t i = 0; i < store.size(); ++i)
    if (!filled[i])
      fresh.push_back(store.param(i).name);
  if (fresh.size() == store.size())
    return Status::error("checkpoint '" + path +
                         "' has none of the model's parameters");
  return fresh;
}

/// The share of `data` that function `fn` (class scores [B, classes]) of
/// `model` classifies right, batch by batch (the last batch padded by
/// repeating its first example).
Result<double> accuracy(Model &model, const std::string &fn,
                        const LabeledTexts &data, const Tokenizer &tokenizer,
                        int64_t batch, int64_t ctx) {
  int64_t right = 0;
  for (size_t start = 0; start < data.size(); start += size_t(batch)) {
    std::vector<std::string> texts;
    for (int64_t b = 0; b < batch; ++b)
      texts.push_back(data.texts[std::min(start + size_t(b), data.size() - 1)]);
    BatchEncoding encoded = tokenizer.encodeBatch(texts, ctx);
    auto out = model.call(fn, {encoded.tokens, encoded.segments});
    if (!out.ok())
      return out.status();
    const Tensor &scores = out.value()[0];
    if (scores.dtype() != DType::F32 || scores.rank() != 2 ||
        scores.dim(0) != batch || scores.dim(1) < 1)
      return Status::error("'" + fn + "' returns " +
                           std::string(dtypeName(scores.dtype())) +
                           scores.shapeString() +
                           "; accuracy needs class "
                           "scores f32[" +
                           std::to_string(batch) + ", classes]");
    int64_t classes = scores.dim(1);
    for (int64_t b = 0; b < batch && start + size_t(b) < data.size(); ++b) {
      const float *row = scores.data<float>() + b * classes;
      int64_t best = std::max_element(row, row + classes) - row;
      right += best == data.classes[start + size_t(b)];
    }
  }
  return double(right) / double(std::max<size_t>(data.size(), 1));
}

} // namespace

int loom::tools::trainModel(const TrainOptions &o) {
  CompileOptions compileOptions;
  compileOptions.diskCache = o.diskCache;
  compileOptions.includeDirs = o.includeDirs;
  compileOptions.model = o.model;
  compileOptions.config = o.config;
  compileOptions.seed = o.seed;
  compileOptions.training = true;
  compileOptions.target = o.target;
  compileOptions.tensorCores = o.tensorCores;
  // An imported checkpoint's configuration (--config wins) and tokenizer
  // (--tokenizer wins), which the checkpoints this run writes carry on.
  std::map<std::string, std::string> initMetadata;
  TokenizerFiles tokenizerFiles;
  std::string tokenizerSource;
  if (!o.init.empty()) {
    auto metadata = readCheckpointMetadata(o.init);
    if (!metadata.ok())
      return fail(metadata.status().message());
    auto saved =
        configFromMetadata(metadata.value(), "checkpoint '" + o.init + "'");
    if (!saved.ok())
      return fail(saved.status().message());
    for (const auto &[key, value] : saved.value())
      compileOptions.config.emplace(key, value);
    if (auto it = metadata->find("loom.config"); it != metadata->end())
      initMetadata[it->first] = it->second;
    tokenizerFiles = Tokenizer::filesInMetadata(metadata.value());
    tokenizerSource = "checkpoint '" + o.init + "'";
  }
  if (!o.tokenizer.empty()) {
    auto files = Tokenizer::readFiles(o.tokenizer);
    if (!files.ok())
      return fail(files.status().message());
    tokenizerFiles = std::move(files.value());
    tokenizerSource = o.tokenizer;
  }
  for (const auto &[name, text] : tokenizerFiles)
    initMetadata[Tokenizer::kMetadataPrefix + name] = text;
  auto loadTokenizer = [&]() -> Result<std::unique_ptr<Tokenizer>> {
    if (tokenizerFiles.empty())
      return Status::error("this task needs a tokenizer: --tokenizer DIR or "
                           "an --init checkpoint that carries one");
    return Tokenizer::fromFiles(tokenizerFiles, tokenizerSource);
  };
  auto compiled = compile(o.file, compileOptions);
  if (!compiled.ok())
    return fail(compiled.status().message());
  const FunctionInfo *loss = findFunction(compiled.value(), o.function);
  if (!loss)
    return fail("no function '" + o.function + "' in '" + o.file + "'");
  std::string task = o.task.empty() ? taskOf(*loss) : o.task;
  if (task.empty())
    return fail("cannot tell the objective of '" + o.function +
                "' from its inputs; pass --task");

  // Text classification: labeled lines, a tokenizer, a held-out split, and
  // as many classes as labels.
  bool distill = task == "distill";
  if (distill && (o.data.empty() || o.teacher.empty()))
    return fail("distillation needs --data LABEL<TAB>TEXT lines and "
                "--teacher CKPT");
  bool textClassify = (task == "classify" || distill) && !o.data.empty();
  if (textClassify && (o.batch < 1 || o.ctx < 2))
    return fail("text classification needs --batch >= 1 and --ctx >= 2, "
                "got " +
                std::to_string(o.batch) + " and " + std::to_string(o.ctx));
  std::optional<LabeledSplit> labeled;
  std::unique_ptr<Tokenizer> tokenizer;
  if (textClassify) {
    auto data = readLabeledTexts(o.data);
    if (!data.ok())
      return fail(data.status().message());
    auto split = splitLabeledTexts(data.value(), o.heldOut);
    if (!split.ok())
      return fail(split.status().message());
    labeled = std::move(split.value());
    auto loaded = loadTokenizer();
    if (!loaded.ok())
      return fail(loaded.status().message());
    tokenizer = std::move(loaded.value());
    std::string classes = std::to_string(labeled->train.labels.size());
    auto given = o.config.find("classes");
    if (given != o.config.end() && given->second != classes)
      return fail("--config classes=" + given->second + " but '" + o.data +
                  "' has " + classes + " labels");
    if (compileOptions.config["classes"] != classes) {
      compileOptions.config["classes"] = classes;
      compiled = compile(o.file, compileOptions);
      if (!compiled.ok())
        return fail(compiled.status().message());
    }
    std::printf("data: %zu labels, %zu training and %zu held-out examples "
                "(%s)\n",
                labeled->train.labels.size(), labeled->train.size(),
                labeled->heldOut.size(), o.data.c_str());
  }
  Model &model = compiled.value();
  loss = findFunction(model, o.function);
  if (!o.init.empty()) {
    auto fresh = initializeFrom(model, o.init);
    if (!fresh.ok())
      return fail(fresh.status().message());
    std::printf("init: %s", o.init.c_str());
    if (!fresh.value().empty()) {
      std::printf(" (initialized, not in it:");
      for (const std::string &name : fresh.value())
        std::printf(" %s", name.c_str());
      std::printf(")");
    }
    std::printf("\n");
  }

  // A language model over a tokenizer's ids (an imported GPT-2's BPE)
  // instead of bytes.
  std::vector<int32_t> trainIds, validIds;
  bool tokenizedLm = false;
  if (task == "lm" && !o.data.empty() && !tokenizerFiles.empty()) {
    auto loaded = loadTokenizer();
    if (!loaded.ok())
      return fail(loaded.status().message());
    auto corpus = readCorpus(o.data);
    if (!corpus.ok())
      return fail(corpus.status().message());
    std::string text(corpus->begin(), corpus->end());
    std::vector<int32_t> ids = loaded.value()->encode(text);
    size_t valid = ids.size() / 10;
    if (o.ctx < 1 || int64_t(valid) < o.ctx + 1)
      return fail("'" + o.data + "' gives " + std::to_string(ids.size()) +
                  " tokens: too few for a held-out tenth of at least " +
                  "--ctx + 1 = " + std::to_string(o.ctx + 1));
    trainIds.assign(ids.begin(), ids.end() - valid);
    validIds.assign(ids.end() - valid, ids.end());
    tokenizedLm = true;
    std::printf("data: %zu %s tokens (%zu held out) from %s\n", ids.size(),
                std::string(loaded.value()->kind()).c_str(), valid,
                o.data.c_str());
  }

  std::vector<uint8_t> train, validation;
  if (!tokenizedLm && (task == "lm" || task == "mlm" || task == "mlm-only")) {
    if (o.data.empty())
      return fail("task '" + task + "' needs --data TEXT");
    auto corpus = readCorpus(o.data);
    if (!corpus.ok())
      return fail(corpus.status().message());
    auto parts = splitCorpus(corpus.value(), 0.1);
    if (!parts.ok())
      return fail(parts.status().message());
    train = std::move(parts.value().train);
    validation = std::move(parts.value().validation);
  }
  auto idBatches = [&](const std::vector<int32_t> &ids) {
    int64_t batch = o.batch, ctx = o.ctx;
    return BatchFn(
        [&ids, batch, ctx](uint64_t seed) -> Result<std::vector<Tensor>> {
          Rng rng(seed);
          auto b = sampleLmBatch(ids, batch, ctx, rng);
          if (!b.ok())
            return b.status();
          return b.value().inputs();
        });
  };
  // Distillation: the teacher (a Loom model compiled for inference, with
  // its checkpoint's configuration) scores every batch.
  std::optional<Model> teacher;
  if (distill) {
    CompileOptions teacherOptions;
    teacherOptions.diskCache = o.diskCache;
    teacherOptions.includeDirs = o.includeDirs;
    auto saved = checkpointConfig(o.teacher);
    if (!saved.ok())
      return fail(saved.status().message());
    teacherOptions.config = saved.value();
    std::string teacherFile = o.teacherModel.empty() ? o.file : o.teacherModel;
    auto compiledTeacher = compile(teacherFile, teacherOptions);
    if (!compiledTeacher.ok())
      return fail(compiledTeacher.status().message());
    Status loaded = loadParameters(compiledTeacher.value(), o.teacher);
    if (!loaded.ok())
      return fail(loaded.message());
    teacher.emplace(std::move(compiledTeacher.value()));
    std::printf("teacher: %s (%s)\n", o.teacher.c_str(), teacherFile.c_str());
  }
  auto withTeacher = [&](BatchFn batches) -> BatchFn {
    if (!distill)
      return batches;
    std::string fn = o.evalFunction;
    Model *scorer = &*teacher;
    return [batches, scorer, fn](uint64_t seed) -> Result<std::vector<Tensor>> {
      auto b = batches(seed);
      if (!b.ok())
        return b;
      auto scores = scorer->call(fn, {b.value()[0], b.value()[1]});
      if (!scores.ok())
        return scores.status().withContext("the teacher's '" + fn + "'");
      const Tensor &t = scores.value()[0];
      const Tensor &labels = b.value()[2];
      if (t.dtype() != DType::F32 || t.rank() != 2 || t.dim(0) != labels.dim(0))
        return Status::error("the teacher's '" + fn + "' returns " +
                             t.shapeString() +
                             ", not class scores of the batch");
      b.value().push_back(scores.value()[0]);
      return b;
    };
  };
  auto trainBatches = textClassify
                          ? Result<BatchFn>(withTeacher(labeledBatches(
                                labeled->train, *tokenizer, o.batch, o.ctx)))
                      : tokenizedLm ? Result<BatchFn>(idBatches(trainIds))
                                    : makeBatches(task, &train, o.batch, o.ctx);
  if (!trainBatches.ok())
    return fail(trainBatches.status().message());
  auto validBatches =
      textClassify ? Result<BatchFn>(withTeacher(labeledBatches(
                         labeled->heldOut, *tokenizer, o.batch, o.ctx)))
      : tokenizedLm
          ? Result<BatchFn>(idBatches(validIds))
          : makeBatches(task, validation.empty() ? &train : &validation,
                        o.batch, o.ctx);
  if (!validBatches.ok())
    return fail(validBatches.status().message());

  TrainerOptions options;
  options.loss = o.function;
  options.optimizer.kind = o.optimizer;
  options.optimizer.momentum = o.momentum;
  options.optimizer.nesterov = o.nesterov;
  options.optimizer.weightDecay = o.weightDecay;
  options.optimizer.maxGradNorm = o.clip;
  auto schedule = parseLrSchedule(o.schedule, o.lr);
  if (!schedule.ok())
    return fail(schedule.status().message());
  options.schedule = schedule.value();
  if (!o.groups.empty()) {
    auto groups = parseGroups(o.groups, o.lrDecay);
    if (!groups.ok())
      return fail(groups.status().message());
    options.groups = groups.value();
  }
  Trainer trainer(model, options);
  UnfreezeSchedule unfreezing{o.unfreezeEvery};

  if (!o.lrFind.empty()) {
    std::string error;
    auto finder = trainer.findLr(
        [&](int64_t i) {
          uint64_t key = mix(o.seed, uint64_t(i));
          auto b = trainBatches.value()(key);
          if (!b.ok() && error.empty())
            error = b.status().message();
          return b.ok() ? withDropoutSeed(b.value(), *loss, key)
                        : std::vector<Tensor>();
        },
        1e-6, 1.0, o.lrFindSteps, o.lrFind);
    if (!error.empty())
      return fail(error);
    if (!finder.ok())
      return fail(finder.status().message());
    auto suggestion = finder.value().suggestion();
    std::printf("lr finder: %zu steps written to %s\n",
                finder.value().points().size(), o.lrFind.c_str());
    if (!suggestion.ok())
      return fail(suggestion.status().message());
    std::printf("suggested lr: %.3g\n", suggestion.value());
    return 0;
  }

  if (!o.resume.empty()) {
    Status s = trainer.loadCheckpoint(o.resume);
    if (!s.ok())
      return fail(s.message());
    std::fprintf(stderr, "resumed from %s at step %lld\n", o.resume.c_str(),
                 (long long)trainer.stepCount());
  }

  std::ofstream csv;
  if (!o.log.empty()) {
    bool append = !o.resume.empty();
    csv.open(o.log, append ? std::ios::app : std::ios::trunc);
    if (!csv)
      return fail("cannot write '" + o.log + "'");
    if (!append)
      csv << "step,loss,lr,grad_norm,tokens_per_s,seconds\n";
  }
  auto saveCheckpoint = [&]() -> bool {
    if (o.checkpoint.empty())
      return true;
    std::map<std::string, std::string> metadata = initMetadata;
    metadata["loom.task"] = task;
    metadata["loom.file"] = o.file;
    if (textClassify) {
      std::string labels, config;
      for (const std::string &label : labeled->train.labels)
        labels += (labels.empty() ? "" : "\n") + label;
      metadata["loom.labels"] = labels;
      for (const auto &[key, value] : compileOptions.config)
        config += (config.empty() ? "" : ",") + key + "=" + value;
      metadata["loom.config"] = config;
    }
    Status s = trainer.saveCheckpoint(o.checkpoint, metadata);
    if (!s.ok())
      fail(s.message());
    return s.ok();
  };

  bool tty = isatty(2);
  int64_t tokensPerStep = o.batch * o.ctx;
  auto start = Clock::now();
  double lastLoss = NAN;
  while (trainer.stepCount() < o.steps) {
    int64_t step = trainer.stepCount();
    trainer.applyUnfreezing(unfreezing, step);
    uint64_t key = mix(o.seed, uint64_t(step));
    auto batch = trainBatches.value()(key);
    if (!batch.ok())
      return fail(batch.status().message());
    double lr = trainer.currentLr();
    auto t0 = Clock::now();
    auto result = trainer.step(withDropoutSeed(batch.value(), *loss, key));
    double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!result.ok()) {
      if (tty)
        std::fputc('\n', stderr);
      return fail(result.status().message());
    }
    lastLoss = result.value().loss;
    double tps = tokensPerStep / seconds;
    if (csv.is_open())
      csv << step + 1 << "," << lastLoss << "," << lr << ","
          << result.value().gradNorm << "," << tps << ","
          << std::chrono::duration<double>(Clock::now() - start).count()
          << "\n";
    if (step + 1 == o.steps ||
        (step + 1) % std::max<int64_t>(o.logEvery, 1) == 0 || tty)
      progress(step + 1, o.steps, lastLoss, lr, tps, tty);
    if (o.checkpointEvery > 0 && (step + 1) % o.checkpointEvery == 0 &&
        !saveCheckpoint())
      return 1;
  }
  if (tty)
    std::fputc('\n', stderr);
  if (!saveCheckpoint())
    return 1;

  if (textClassify) {
    // Accuracy with dropout off: the same parameters in a model compiled
    // for inference.
    CompileOptions inference = compileOptions;
    inference.training = false;
    auto evaluator = compile(o.file, inference);
    if (!evaluator.ok())
      return fail(evaluator.status().message());
    const ParamStore &trained = std::as_const(model).params();
    if (evaluator->params().totalBytes() != trained.totalBytes())
      return fail("internal error: the inference model's parameters differ");
    std::memcpy(evaluator->params().data(), trained.data(),
                trained.totalBytes());
    auto held = accuracy(evaluator.value(), o.evalFunction, labeled->heldOut,
                         *tokenizer, o.batch, o.ctx);
    if (!held.ok())
      return fail(held.status().message());
    auto seen = accuracy(evaluator.value(), o.evalFunction, labeled->train,
                         *tokenizer, o.batch, o.ctx);
    if (!seen.ok())
      return fail(seen.status().message());
    double seconds =
        std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("trained %lld steps in %.1fs (compile %.1fs): train loss "
                "%.4f, train accuracy %.1f%%, held-out accuracy %.1f%% "
                "(%zu examples)\n",
                (long long)o.steps, seconds, model.compileSeconds(), lastLoss,
                100 * seen.value(), 100 * held.value(),
                labeled->heldOut.size());
    if (!o.checkpoint.empty())
      std::printf("checkpoint: %s\n", o.checkpoint.c_str());
    return 0;
  }

  // Validation loss over a few fixed batches (with dropout active when the
  // model uses it: the model was compiled for training).
  double sum = 0;
  constexpr int kValidationBatches = 4;
  for (int i = 0; i < kValidationBatches; ++i) {
    uint64_t key = mix(o.seed ^ 0x5EED, uint64_t(i));
    auto batch = validBatches.value()(key);
    if (!batch.ok())
      return fail(batch.status().message());
    auto out =
        model.call(o.function, withDropoutSeed(batch.value(), *loss, key));
    if (!out.ok())
      return fail(out.status().message());
    sum += *static_cast<const float *>(out.value()[0].rawData());
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("trained %lld steps in %.1fs (compile %.1fs): train loss %.4f, "
              "validation loss %.4f\n",
              (long long)o.steps, seconds, model.compileSeconds(), lastLoss,
              sum / kValidationBatches);
  if (!o.checkpoint.empty())
    std::printf("checkpoint: %s\n", o.checkpoint.c_str());
  return 0;
}

namespace {
/// Text to ids and back: the tokenizer of --tokenizer DIR or of the
/// checkpoint (an imported model's), else bytes.
class TextCodec {
public:
  static Result<TextCodec> open(const loom::tools::InferenceModel &source) {
    TextCodec codec;
    if (!source.tokenizer.empty()) {
      auto t = Tokenizer::fromDirectory(source.tokenizer);
      if (!t.ok())
        return t.status();
      codec.tokenizer = std::move(t.value());
    } else if (!source.checkpoint.empty()) {
      auto metadata = readCheckpointMetadata(source.checkpoint);
      if (!metadata.ok())
        return metadata.status();
      TokenizerFiles files = Tokenizer::filesInMetadata(metadata.value());
      if (!files.empty()) {
        auto t = Tokenizer::fromFiles(files,
                                      "checkpoint '" + source.checkpoint + "'");
        if (!t.ok())
          return t.status();
        codec.tokenizer = std::move(t.value());
      }
    }
    return codec;
  }
  std::vector<int32_t> encode(const std::string &text) const {
    return tokenizer ? tokenizer->encode(text) : bytes.encode(text);
  }
  std::string decode(int32_t id) const {
    return tokenizer ? tokenizer->decode({id}) : bytes.decode({id});
  }

private:
  std::unique_ptr<Tokenizer> tokenizer;
  ByteTokenizer bytes;
};

/// `source` compiled, with its checkpoint's parameters when it names one.
Result<Model> openModel(const loom::tools::InferenceModel &source) {
  CompileOptions options;
  options.diskCache = source.diskCache;
  options.includeDirs = source.includeDirs;
  options.model = source.model;
  options.config = source.config;
  auto model = compile(source.file, options);
  if (!model.ok() || source.checkpoint.empty())
    return model;
  Status loaded = loadParameters(model.value(), source.checkpoint);
  if (!loaded.ok())
    return loaded;
  return model;
}
} // namespace

int loom::tools::sampleModel(const SampleOptions &o) {
  auto compiled = openModel(o);
  if (!compiled.ok())
    return fail(compiled.status().message());
  Model &model = compiled.value();
  const FunctionInfo *logits = findFunction(model, o.function);
  if (!logits || logits->inputs.size() != 1)
    return fail("sampling needs a function '" + o.function +
                "(tokens: i32[B, T])' returning [B, T, vocab]");

  auto codec = TextCodec::open(o);
  if (!codec.ok())
    return fail(codec.status().message());
  std::vector<int32_t> text = codec->encode(o.prompt);
  if (text.empty())
    text = codec->encode("\n");
  if (text.empty())
    return fail("the tokenizer gives no ids for the prompt");
  Rng rng(o.seed);
  Tensor window = Tensor::empty(DType::I32, {1, o.ctx});
  int64_t lines = 0;
  std::string out = o.prompt;
  std::fputs(o.prompt.c_str(), stdout);
  for (int64_t n = 0; n < o.tokens; ++n) {
    // The last ctx tokens, left-aligned: a causal model's logits at the
    // last real position do not depend on the padding after it.
    int64_t len = std::min<int64_t>(text.size(), o.ctx);
    int32_t *w = window.data<int32_t>();
    for (int64_t i = 0; i < o.ctx; ++i)
      w[i] = i < len ? text[text.size() - len + i] : 0;
    auto result = model.call(o.function, {window});
    if (!result.ok())
      return fail(result.status().message());
    const Tensor &scores = result.value()[0];
    int64_t vocab = scores.dim(2);
    const float *row = scores.data<float>() + (len - 1) * vocab;
    std::vector<double> p(vocab);
    double top = *std::max_element(row, row + vocab), total = 0;
    for (int64_t v = 0; v < vocab; ++v)
      total += p[v] = std::exp((row[v] - top) / std::max(o.temperature, 1e-6));
    double u = rng.uniform() * total;
    int32_t next = int32_t(vocab - 1);
    for (int64_t v = 0; v < vocab; ++v)
      if ((u -= p[v]) <= 0) {
        next = int32_t(v);
        break;
      }
    text.push_back(next);
    std::string piece = codec->decode(next);
    std::fputs(piece.c_str(), stdout);
    std::fflush(stdout);
    if (piece.find('\n') != std::string::npos && o.lines > 0 &&
        ++lines >= o.lines)
      break;
  }
  std::fputc('\n', stdout);
  return 0;
}

int loom::tools::generateText(const GenerateOptions &o) {
  auto compiled = openModel(o);
  if (!compiled.ok())
    return fail(compiled.status().message());
  Model &model = compiled.value();
  auto codec = TextCodec::open(o);
  if (!codec.ok())
    return fail(codec.status().message());
  std::vector<int32_t> prompt = codec->encode(o.prompt);
  if (prompt.empty())
    prompt = codec->encode("\n");
  if (prompt.empty())
    return fail("the tokenizer gives no ids for the prompt");
  GeneratorOptions options;
  options.function = o.function;
  options.capacity =
      o.capacity > 0 ? o.capacity : int64_t(prompt.size()) + o.maxTokens;
  auto generator = Generator::create(model, options);
  if (!generator.ok())
    return fail(generator.status().message());
  Sampler sampler(o.sampling);

  std::fputs(o.prompt.c_str(), stdout);
  std::fflush(stdout);
  // The first call of each shape compiles its decode step: that time is in
  // `compile` below, not in prefill's or decode's.
  double compiledBefore = model.compileSeconds();
  auto t0 = Clock::now();
  auto logits = generator->prefill({prompt});
  if (!logits.ok())
    return fail(logits.status().message());
  auto t1 = Clock::now();
  double compiledInPrefill = model.compileSeconds() - compiledBefore;
  std::string text;
  int64_t produced = 0;
  const char *why = "max tokens";
  int64_t vocab = generator->vocabSize();
  for (; produced < o.maxTokens; ++produced) {
    int32_t next = sampler.sample(logits.value().data<float>(), vocab);
    std::string piece = codec->decode(next);
    text += piece;
    std::fputs(piece.c_str(), stdout);
    std::fflush(stdout);
    bool stopped = false;
    for (const std::string &stop : o.stop)
      if (!stop.empty() && text.size() >= stop.size() &&
          text.compare(text.size() - stop.size(), stop.size(), stop) == 0)
        stopped = true;
    if (stopped) {
      why = "stop string";
      ++produced;
      break;
    }
    if (generator->lengths()[0] >= options.capacity) {
      why = "cache full";
      ++produced;
      break;
    }
    if (produced + 1 == o.maxTokens) {
      ++produced;
      break;
    }
    logits = generator->step({next});
    if (!logits.ok())
      return fail(logits.status().message());
  }
  auto t2 = Clock::now();
  std::fputc('\n', stdout);
  std::fflush(stdout);
  double compiledInDecode =
      model.compileSeconds() - compiledBefore - compiledInPrefill;
  double prefill =
      std::chrono::duration<double>(t1 - t0).count() - compiledInPrefill;
  double decode =
      std::chrono::duration<double>(t2 - t1).count() - compiledInDecode;
  std::fprintf(stderr,
               "generated %lld tokens (%s): prefill %zu tokens in %.1f ms, "
               "decode %.1f tokens/s; compile %.2fs; cache %.1f MB\n",
               (long long)produced, why, prompt.size(), prefill * 1e3,
               produced / std::max(decode, 1e-9), model.compileSeconds(),
               generator->cacheBytes() / 1e6);
  return 0;
}
