//===- ConvergenceTest.cpp - The example models learn their tasks ---------===//
//
// Small variants of the four example models trained end to end with the
// compiled, fused training step (loom::Trainer, AdamW, warmup-cosine LR) on
// the deterministic data pipelines of loom/Data.h, with fixed seeds and
// bounded time. Each test asserts a learning outcome, not a number to the
// last digit:
//
//   GptLearnsGplText        byte-level LM on GPL-3: the loss of `loss` on
//                           the held-out last 10% is below the unigram
//                           entropy of the training bytes minus 0.5 nats
//   TransformerReverses     encoder-decoder reverses sequences: teacher-
//                           forced argmax token accuracy >= 99%, greedy
//                           decoding >= 97% (the token embeddings are
//                           re-scaled first, see the test)
//   LstmAttentionCopies     LSTM + dot attention copies sequences: teacher-
//                           forced and greedy token accuracy >= 95%
//   DropoutMasks            `dropout` alone: share dropped, 1/(1-p)
//                           scaling, the seed decides the mask, the
//                           backward applies the forward's mask, identity
//                           in inference mode
//   BertDropoutSeed         BERT in training mode takes a `dropout_seed`
//                           that decides the masks; inference mode has none
//   BertPretrainLossFalls   MLM + NSP `loss` with dropout (a new seed every
//                           step): the mean over the last 30 steps is below
//                           the mean over the first 30 by >= 1.5 nats
//   BertFinetuneCountTask   `finetune_loss` with dropout on the count task:
//                           argmax accuracy of `classify` >= 0.85
//
// Accuracies are measured on fresh batches with an inference-mode twin of
// the trained model (same parameters, no dropout). Each test prints its
// configuration, steps, time (JIT compile included) and final metrics. Run
// with `ctest -L convergence` or the binary directly.
//
//===----------------------------------------------------------------------===//

#include "loom/Data.h"
#include "loom/Model.h"
#include "loom/Trainer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

using namespace loom;

namespace {

using Clock = std::chrono::steady_clock;
using Config = std::map<std::string, std::string>;

constexpr const char *kCorpus = "/usr/share/common-licenses/GPL-3";

std::string example(const std::string &file) {
  return std::string(LOOM_SOURCE_DIR) + "/examples/" + file;
}

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string configText(const Config &config) {
  std::string text;
  for (const auto &[name, value] : config)
    text += (text.empty() ? "" : ",") + name + "=" + value;
  return text;
}

/// Compiles examples/`file` (model `model`, empty for the first) with the
/// overrides in `config`; null (and a test failure) on errors.
std::unique_ptr<Model> compileExample(const std::string &file,
                                      const std::string &model,
                                      const Config &config, bool training,
                                      uint64_t seed) {
  CompileOptions options;
  options.model = model;
  options.config = config;
  options.training = training;
  options.seed = seed;
  auto compiled = compile(example(file), options);
  if (!compiled.ok()) {
    ADD_FAILURE() << file << ": " << compiled.status().message();
    return nullptr;
  }
  return std::make_unique<Model>(std::move(compiled.value()));
}

const FunctionInfo *findFunction(const Model &model, const std::string &name) {
  for (const FunctionInfo &f : model.functions())
    if (f.name == name)
      return &f;
  return nullptr;
}

/// True when `name` takes a trailing `dropout_seed` (training mode with a
/// dropout rate above 0).
bool takesDropoutSeed(const Model &model, const std::string &name) {
  const FunctionInfo *f = findFunction(model, name);
  return f && !f->inputs.empty() && f->inputs.back().name == "dropout_seed";
}

Tensor seedTensor(int64_t seed) {
  Tensor t = Tensor::empty(DType::I64, {});
  *t.data<int64_t>() = seed;
  return t;
}

/// `inputs`, plus a dropout seed when `name` takes one.
std::vector<Tensor> withSeed(const Model &model, const std::string &name,
                             std::vector<Tensor> inputs, int64_t seed) {
  if (takesDropoutSeed(model, name))
    inputs.push_back(seedTensor(seed));
  return inputs;
}

float scalarOf(const Tensor &t) { return *t.data<float>(); }

/// Copies the parameters of `from` into `to` (same file and config, so the
/// same layout; e.g. a training-mode model into its inference twin).
void copyParams(const Model &from, Model &to) {
  const ParamStore &src = const_cast<Model &>(from).params();
  ParamStore &dst = to.params();
  ASSERT_EQ(src.totalBytes(), dst.totalBytes());
  std::memcpy(dst.data(), src.data(), src.totalBytes());
}

/// Natural-log entropy (nats per byte) of the byte frequencies of `bytes`.
double unigramEntropy(const std::vector<uint8_t> &bytes) {
  std::vector<double> counts(256, 0);
  for (uint8_t b : bytes)
    counts[b] += 1;
  double h = 0, n = double(bytes.size());
  for (double c : counts)
    if (c > 0)
      h -= c / n * std::log(c / n);
  return h;
}

/// Cross-entropy (nats per byte) of `eval` under the add-one smoothed byte
/// frequencies of `train`: what a unigram model scores on held-out text.
double unigramCrossEntropy(const std::vector<uint8_t> &train,
                           const std::vector<uint8_t> &eval) {
  std::vector<double> counts(256, 1);
  for (uint8_t b : train)
    counts[b] += 1;
  double total = double(train.size()) + 256, h = 0;
  for (uint8_t b : eval)
    h -= std::log(counts[b] / total);
  return h / double(eval.size());
}

/// Token accuracy over the non-pad tokens of tgt_out, and the share of
/// sequences with every such token right.
struct Accuracy {
  int64_t correct = 0, total = 0;
  int64_t sequencesCorrect = 0, sequences = 0;
  double tokens() const { return double(correct) / double(total); }
  double rows() const { return double(sequencesCorrect) / double(sequences); }
};

/// argmax over the last dim of `logits` [B, T, V] at row r, position t.
int32_t argmaxAt(const Tensor &logits, int64_t r, int64_t t) {
  int64_t T = logits.dim(1), V = logits.dim(2);
  const float *row = logits.data<float>() + (r * T + t) * V;
  int64_t best = 0;
  for (int64_t v = 1; v < V; ++v)
    if (row[v] > row[best])
      best = v;
  return int32_t(best);
}

/// Scores `predicted` [B, T] against `target` (tgt_out) over its non-pad
/// tokens.
void score(const std::vector<int32_t> &predicted, const Tensor &target,
           Accuracy &acc) {
  int64_t B = target.dim(0), T = target.dim(1);
  const int32_t *want = target.data<int32_t>();
  for (int64_t r = 0; r < B; ++r) {
    bool rowOk = true;
    for (int64_t t = 0; t < T; ++t) {
      if (want[r * T + t] == 0) // pad: ignored by the loss
        continue;
      ++acc.total;
      bool ok = predicted[r * T + t] == want[r * T + t];
      acc.correct += ok;
      rowOk = rowOk && ok;
    }
    ++acc.sequences;
    acc.sequencesCorrect += rowOk;
  }
}

/// On `batches` fresh batches: the teacher-forced argmax accuracy of
/// `logits(src, tgt_in)`, and the accuracy of greedy decoding (start from
/// bos, feed back each argmax). Both decoders are causal, so greedy
/// decoding runs on the full [B, T] shape with the not yet decoded
/// positions left as pad: one compiled shape for both.
struct Seq2SeqAccuracy {
  Accuracy teacherForced, greedy;
};

Seq2SeqAccuracy seq2seqAccuracy(Model &model, Seq2SeqTask task, int64_t batch,
                                int64_t srcLen, uint64_t seed, int batches) {
  Seq2SeqAccuracy acc;
  Rng rng(seed);
  for (int i = 0; i < batches; ++i) {
    auto b = sampleSeq2SeqBatch(task, batch, srcLen, rng);
    EXPECT_TRUE(b.ok()) << b.status().message();
    if (!b.ok())
      return acc;
    const Seq2SeqBatch &data = b.value();
    int64_t T = data.tgtOut.dim(1);
    auto out = model.call("logits", {data.src, data.tgtIn});
    EXPECT_TRUE(out.ok()) << out.status().message();
    if (!out.ok())
      return acc;
    std::vector<int32_t> predicted(batch * T);
    for (int64_t r = 0; r < batch; ++r)
      for (int64_t t = 0; t < T; ++t)
        predicted[r * T + t] = argmaxAt(out.value()[0], r, t);
    score(predicted, data.tgtOut, acc.teacherForced);

    Tensor tgt = Tensor::empty(DType::I32, {batch, T}); // zeros: pad
    for (int64_t r = 0; r < batch; ++r)
      tgt.data<int32_t>()[r * T] = Seq2SeqConfig().bos;
    for (int64_t t = 0; t < T; ++t) {
      auto step = model.call("logits", {data.src, tgt});
      EXPECT_TRUE(step.ok()) << step.status().message();
      if (!step.ok())
        return acc;
      for (int64_t r = 0; r < batch; ++r) {
        predicted[r * T + t] = argmaxAt(step.value()[0], r, t);
        if (t + 1 < T)
          tgt.data<int32_t>()[r * T + t + 1] = predicted[r * T + t];
      }
    }
    score(predicted, data.tgtOut, acc.greedy);
  }
  return acc;
}

/// A seq2seq training run (transformer.loom or seq2seq_lstm.loom).
struct Seq2SeqRun {
  const char *file;
  const char *model;
  Config config;
  Seq2SeqTask task;
  int64_t batch, srcLen, steps;
  double lr;
  int64_t warmup;
  /// Token embedding tables whose initial values are multiplied by
  /// `embeddingScale` before training (1: the model's own init).
  std::vector<std::string> scaledEmbeddings;
  double embeddingScale = 1;
};

/// Multiplies the values of parameter `name` by `factor`.
bool scaleParam(Model &model, const std::string &name, double factor) {
  auto view = model.params().tensor(name);
  if (!view.ok()) {
    ADD_FAILURE() << view.status().message();
    return false;
  }
  float *data = view.value().data<float>();
  for (int64_t i = 0, n = view.value().numel(); i < n; ++i)
    data[i] = float(data[i] * factor);
  return true;
}

/// Trains `run` and returns the accuracies on 8 fresh batches of 64.
Seq2SeqAccuracy trainSeq2Seq(const Seq2SeqRun &run, const char *label) {
  auto start = Clock::now();
  auto modelPtr = compileExample(run.file, run.model, run.config,
                                 /*training=*/true, /*seed=*/1);
  if (!modelPtr)
    return {};
  Model &model = *modelPtr;
  for (const std::string &name : run.scaledEmbeddings)
    if (!scaleParam(model, name, run.embeddingScale))
      return {};
  TrainerOptions options;
  options.optimizer.kind = "adamw";
  options.optimizer.weightDecay = 0.01;
  options.optimizer.maxGradNorm = 1.0;
  options.schedule =
      LrSchedule::warmupCosine(run.lr, run.warmup, run.steps, run.lr * 0.05);
  Trainer trainer(model, options);
  Rng rng(11);
  double firstLoss = 0, lastLoss = 0;
  for (int64_t s = 0; s < run.steps; ++s) {
    auto b = sampleSeq2SeqBatch(run.task, run.batch, run.srcLen, rng);
    EXPECT_TRUE(b.ok()) << b.status().message();
    if (!b.ok())
      return {};
    auto r =
        trainer.step(withSeed(model, "loss", b.value().inputs(), 1000 + s));
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (!r.ok())
      return {};
    if (s == 0)
      firstLoss = r.value().loss;
    lastLoss = r.value().loss;
  }
  double trainSeconds = secondsSince(start);
  // Inference twin (no dropout) for the evaluation.
  auto evalPtr = compileExample(run.file, run.model, run.config,
                                /*training=*/false, /*seed=*/1);
  if (!evalPtr)
    return {};
  Model &eval = *evalPtr;
  copyParams(model, eval);
  Seq2SeqAccuracy acc =
      seq2seqAccuracy(eval, run.task, /*batch=*/64, run.srcLen, 777, 8);
  const Accuracy &tf = acc.teacherForced, &greedy = acc.greedy;
  std::string scaled;
  for (const std::string &name : run.scaledEmbeddings)
    scaled += (scaled.empty() ? "" : ", ") + name;
  if (!scaled.empty())
    scaled = ", init of " + scaled + " scaled by " +
             std::to_string(int(run.embeddingScale));
  std::printf("[%s] %s%s%s config {%s}%s, task %s, B=%lld S=%lld, %lld "
              "steps AdamW lr %g warmup-cosine(%lld), wd 0.01, clip 1: loss "
              "%.4f -> %.4f; on 512 fresh sequences: teacher-forced argmax "
              "accuracy %.4f (%lld/%lld non-pad target tokens), whole "
              "sequences %.4f; greedy decoding %.4f (%lld/%lld), whole "
              "sequences %.4f; %.1fs (training %.1fs, compile %.1fs)\n",
              label, run.file, *run.model ? ":" : "", run.model,
              configText(run.config).c_str(), scaled.c_str(),
              run.task == Seq2SeqTask::Copy ? "copy" : "reverse",
              (long long)run.batch, (long long)run.srcLen, (long long)run.steps,
              run.lr, (long long)run.warmup, firstLoss, lastLoss, tf.tokens(),
              (long long)tf.correct, (long long)tf.total, tf.rows(),
              greedy.tokens(), (long long)greedy.correct,
              (long long)greedy.total, greedy.rows(), secondsSince(start),
              trainSeconds, model.compileSeconds() + eval.compileSeconds());
  std::fflush(stdout);
  return acc;
}

//===----------------------------------------------------------------------===//
// GPT: byte-level language model on GPL-3
//===----------------------------------------------------------------------===//

TEST(Convergence, GptLearnsGplText) {
  if (!std::filesystem::exists(kCorpus))
    GTEST_SKIP() << kCorpus << " is missing";
  auto start = Clock::now();
  auto corpus = readCorpus(kCorpus);
  ASSERT_TRUE(corpus.ok()) << corpus.status().message();
  auto split = splitCorpus(corpus.value(), 0.1);
  ASSERT_TRUE(split.ok()) << split.status().message();
  const std::vector<uint8_t> &train = split.value().train;
  const std::vector<uint8_t> &validation = split.value().validation;
  double entropy = unigramEntropy(train);
  double unigramOnValidation = unigramCrossEntropy(train, validation);

  const int64_t B = 16, T = 64, steps = 600;
  const double lr = 3e-3, margin = 0.5;
  Config config = {
      {"ctx", std::to_string(T)}, {"d", "64"}, {"heads", "4"}, {"layers", "2"}};
  auto modelPtr = compileExample("gpt.loom", "", config, /*training=*/true,
                                 /*seed=*/1);
  ASSERT_TRUE(modelPtr);
  Model &model = *modelPtr;
  ASSERT_FALSE(takesDropoutSeed(model, "loss")); // drop = 0.0
  TrainerOptions options;
  options.optimizer.kind = "adamw";
  options.optimizer.weightDecay = 0.01;
  options.optimizer.maxGradNorm = 1.0;
  options.schedule = LrSchedule::warmupCosine(lr, 30, steps, 1e-4);
  Trainer trainer(model, options);
  Rng rng(7);
  double firstLoss = 0, lastLoss = 0;
  for (int64_t s = 0; s < steps; ++s) {
    auto b = sampleLmBatch(train, B, T, rng);
    ASSERT_TRUE(b.ok()) << b.status().message();
    auto r = trainer.step(b.value().inputs());
    ASSERT_TRUE(r.ok()) << r.status().message();
    if (s == 0)
      firstLoss = r.value().loss;
    lastLoss = r.value().loss;
  }
  double trainSeconds = secondsSince(start);

  // Validation: every non-overlapping window of T + 1 bytes of the held-out
  // part, in one batch.
  int64_t windows = (int64_t(validation.size()) - 1) / T;
  ASSERT_GE(windows, 8);
  Tensor tokens = Tensor::empty(DType::I32, {windows, T});
  Tensor targets = Tensor::empty(DType::I32, {windows, T});
  for (int64_t w = 0; w < windows; ++w)
    for (int64_t t = 0; t < T; ++t) {
      tokens.data<int32_t>()[w * T + t] = validation[w * T + t];
      targets.data<int32_t>()[w * T + t] = validation[w * T + t + 1];
    }
  auto out = model.call("loss", {tokens, targets});
  ASSERT_TRUE(out.ok()) << out.status().message();
  double validationLoss = scalarOf(out.value()[0]);
  double bound = entropy - margin;

  std::printf("[gpt] gpt.loom config {%s}, B=%lld T=%lld, %lld steps AdamW "
              "lr %g warmup-cosine(30, min 1e-4), wd 0.01, clip 1: train "
              "loss %.4f -> %.4f; validation loss %.4f over %lld windows "
              "(%zu held-out bytes); unigram entropy of the training bytes "
              "%.4f nats/byte (bound %.4f); unigram cross-entropy on the "
              "held-out bytes %.4f; %.1fs (training %.1fs, compile %.1fs)\n",
              configText(config).c_str(), (long long)B, (long long)T,
              (long long)steps, lr, firstLoss, lastLoss, validationLoss,
              (long long)windows, validation.size(), entropy, bound,
              unigramOnValidation, secondsSince(start), trainSeconds,
              model.compileSeconds());
  std::fflush(stdout);
  EXPECT_LT(validationLoss, bound);
}

//===----------------------------------------------------------------------===//
// Sequence to sequence
//===----------------------------------------------------------------------===//

TEST(Convergence, TransformerReverses) {
  // transformer.loom scales its token embeddings by sqrt(d) as the paper
  // does: without it, tables drawn with std 0.02 drown under the O(1)
  // sinusoidal positions and the model (like a PyTorch replica of it) stays
  // at the loss of ignoring the source. One layer keeps the JIT compile of
  // the training step near 25 s on two cores (two layers: about 50 s, and
  // 400 steps suffice).
  Seq2SeqRun run{"transformer.loom",
                 "",
                 {{"d", "64"}, {"heads", "4"}, {"layers", "1"}},
                 Seq2SeqTask::Reverse,
                 /*batch=*/32,
                 /*srcLen=*/10,
                 /*steps=*/1000,
                 /*lr=*/3e-3,
                 /*warmup=*/40,
                 {"src_emb.weight", "tgt_emb.weight"},
                 /*embeddingScale=*/1};
  Seq2SeqAccuracy acc = trainSeq2Seq(run, "transformer");
  ASSERT_GT(acc.teacherForced.total, 0);
  EXPECT_GE(acc.teacherForced.tokens(), 0.99);
  EXPECT_GE(acc.greedy.tokens(), 0.97);
}

TEST(Convergence, LstmAttentionCopies) {
  Seq2SeqRun run{"seq2seq_lstm.loom",
                 "Seq2Seq",
                 {{"emb", "32"}, {"hidden", "64"}},
                 Seq2SeqTask::Copy,
                 /*batch=*/32,
                 /*srcLen=*/8,
                 /*steps=*/1000,
                 /*lr=*/1e-2,
                 /*warmup=*/20,
                 /*scaledEmbeddings=*/{},
                 /*embeddingScale=*/1};
  Seq2SeqAccuracy acc = trainSeq2Seq(run, "lstm");
  ASSERT_GT(acc.teacherForced.total, 0);
  EXPECT_GE(acc.teacherForced.tokens(), 0.95);
  EXPECT_GE(acc.greedy.tokens(), 0.95);
}

//===----------------------------------------------------------------------===//
// BERT
//===----------------------------------------------------------------------===//

const Config &bertConfig() {
  static const Config config = {{"ctx", "32"},
                                {"d", "64"},
                                {"heads", "4"},
                                {"layers", "2"},
                                {"drop", "0.1"}};
  return config;
}

/// A probe of `dropout` alone: its masks, scaling, seed and backward.
TEST(Convergence, DropoutMasks) {
  const int64_t n = 4096;
  const double rate = 0.25;
  std::filesystem::path path =
      std::filesystem::temp_directory_path() /
      ("loom-convergence-dropout-" + std::to_string(::getpid()) + ".loom");
  {
    std::FILE *f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fprintf(f,
                 "model DropoutProbe(n = %lld, rate = %g) {\n"
                 "  param w: f32[n] = ones()\n"
                 "  fn apply(x: f32[n]) -> f32[n] {\n"
                 "    return dropout(x, rate)\n"
                 "  }\n"
                 "  fn loss(x: f32[n]) -> f32 {\n"
                 "    return sum(dropout(w * x, rate))\n"
                 "  }\n"
                 "}\n",
                 (long long)n, rate);
    std::fclose(f);
  }
  CompileOptions options;
  options.training = true;
  auto training = compile(path.string(), options);
  options.training = false;
  auto inference = compile(path.string(), options);
  std::filesystem::remove(path);
  ASSERT_TRUE(training.ok()) << training.status().message();
  ASSERT_TRUE(inference.ok()) << inference.status().message();
  EXPECT_TRUE(takesDropoutSeed(training.value(), "apply"));
  EXPECT_TRUE(takesDropoutSeed(training.value(), "loss"));
  EXPECT_FALSE(takesDropoutSeed(inference.value(), "apply"));

  Tensor ones = Tensor::empty(DType::F32, {n});
  for (int64_t i = 0; i < n; ++i)
    ones.data<float>()[i] = 1.0f;
  auto apply = [&](int64_t seed) {
    auto out = training.value().call("apply", {ones, seedTensor(seed)});
    EXPECT_TRUE(out.ok()) << out.status().message();
    std::vector<float> values(n, NAN);
    if (out.ok())
      std::memcpy(values.data(), out.value()[0].rawData(), n * sizeof(float));
    return values;
  };
  std::vector<float> a = apply(1), again = apply(1), b = apply(2);
  const float kept = float(1.0 / (1.0 - rate));
  int64_t zeros = 0, other = 0, differ = 0;
  for (int64_t i = 0; i < n; ++i) {
    zeros += a[i] == 0.0f;
    other += a[i] != 0.0f && std::fabs(a[i] - kept) > 1e-6f;
    differ += a[i] != b[i];
  }
  double dropped = double(zeros) / double(n);
  EXPECT_EQ(other, 0) << "kept values must be scaled by 1 / (1 - rate)";
  // 4096 draws: the standard deviation of the dropped share is 0.0068.
  EXPECT_NEAR(dropped, rate, 0.03);
  EXPECT_EQ(a, again) << "the same seed must give the same mask";
  EXPECT_GT(differ, n / 10) << "another seed must give another mask";

  // The backward applies the forward's mask: d loss / d w = mask / (1 - p),
  // the same values `apply` gives (dropout sites are numbered per entry
  // function, so both functions' only site draws the same mask).
  auto grad = training.value().gradient(
      "loss", withSeed(training.value(), "loss", {ones}, 1));
  ASSERT_TRUE(grad.ok()) << grad.status().message();
  const float *g = grad.value().grads.data<float>();
  int64_t mismatched = 0;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    mismatched += std::fabs(g[i] - a[i]) > 1e-6f;
    sum += a[i];
  }
  EXPECT_EQ(mismatched, 0);
  EXPECT_NEAR(grad.value().loss, sum, 1e-3 * sum);

  // Inference mode: the identity.
  auto identity = inference.value().call("apply", {ones});
  ASSERT_TRUE(identity.ok()) << identity.status().message();
  int64_t changed = 0;
  for (int64_t i = 0; i < n; ++i)
    changed += identity.value()[0].data<float>()[i] != 1.0f;
  EXPECT_EQ(changed, 0);
  std::printf("[dropout] rate %g over %lld elements: dropped share %.4f "
              "(seed 1), %lld of %lld elements differ between seeds 1 and "
              "2, gradient mask mismatches %lld, inference changes %lld\n",
              rate, (long long)n, dropped, (long long)differ, (long long)n,
              (long long)mismatched, (long long)changed);
  std::fflush(stdout);
}

TEST(Convergence, BertDropoutSeed) {
  if (!std::filesystem::exists(kCorpus))
    GTEST_SKIP() << kCorpus << " is missing";
  auto corpus = readCorpus(kCorpus);
  ASSERT_TRUE(corpus.ok()) << corpus.status().message();
  auto trainingPtr = compileExample("bert.loom", "", bertConfig(),
                                    /*training=*/true, /*seed=*/3);
  ASSERT_TRUE(trainingPtr);
  Model &training = *trainingPtr;
  auto inferencePtr = compileExample("bert.loom", "", bertConfig(),
                                     /*training=*/false, /*seed=*/3);
  ASSERT_TRUE(inferencePtr);
  Model &inference = *inferencePtr;
  for (const char *fn : {"loss", "finetune_loss", "classify"}) {
    EXPECT_TRUE(takesDropoutSeed(training, fn)) << fn;
    EXPECT_FALSE(takesDropoutSeed(inference, fn)) << fn;
  }
  const FunctionInfo *loss = findFunction(training, "loss");
  ASSERT_NE(loss, nullptr);
  EXPECT_EQ(loss->inputs.back().dtype, DType::I64);
  EXPECT_TRUE(loss->inputs.back().dims.empty());
  // drop = 0 in training mode: no dropout, no seed.
  Config noDrop = bertConfig();
  noDrop["drop"] = "0.0";
  auto plainPtr = compileExample("bert.loom", "", noDrop, /*training=*/true, 3);
  ASSERT_TRUE(plainPtr);
  Model &plain = *plainPtr;
  EXPECT_FALSE(takesDropoutSeed(plain, "loss"));

  Rng rng(5);
  auto b = sampleBertBatch(corpus.value(), 8, 32, rng);
  ASSERT_TRUE(b.ok()) << b.status().message();
  auto lossWith = [&](int64_t seed) {
    auto out = training.call(
        "loss", withSeed(training, "loss", b.value().inputs(), seed));
    EXPECT_TRUE(out.ok()) << out.status().message();
    return out.ok() ? scalarOf(out.value()[0]) : NAN;
  };
  float a1 = lossWith(1), a2 = lossWith(1), c = lossWith(2);
  auto ref = inference.call("loss", b.value().inputs());
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  float noDropout = scalarOf(ref.value()[0]);
  std::printf("[bert-dropout] config {%s}: loss with seed 1 %.6f, again "
              "%.6f, seed 2 %.6f, inference mode %.6f\n",
              configText(bertConfig()).c_str(), a1, a2, c, noDropout);
  EXPECT_EQ(a1, a2);        // the seed decides the masks
  EXPECT_NE(a1, c);         // another seed, other masks
  EXPECT_NE(a1, noDropout); // dropout is active in training mode
  EXPECT_TRUE(std::isfinite(a1) && std::isfinite(c));
}

TEST(Convergence, BertPretrainLossFalls) {
  if (!std::filesystem::exists(kCorpus))
    GTEST_SKIP() << kCorpus << " is missing";
  auto start = Clock::now();
  auto corpus = readCorpus(kCorpus);
  ASSERT_TRUE(corpus.ok()) << corpus.status().message();
  auto split = splitCorpus(corpus.value(), 0.1);
  ASSERT_TRUE(split.ok()) << split.status().message();

  const int64_t B = 16, T = 32, steps = 600, window = 30;
  const double lr = 2e-3, margin = 1.5;
  auto modelPtr = compileExample("bert.loom", "", bertConfig(),
                                 /*training=*/true, /*seed=*/2);
  ASSERT_TRUE(modelPtr);
  Model &model = *modelPtr;
  ASSERT_TRUE(takesDropoutSeed(model, "loss"));
  TrainerOptions options;
  options.optimizer.kind = "adamw";
  options.optimizer.weightDecay = 0.01;
  options.optimizer.maxGradNorm = 1.0;
  options.schedule = LrSchedule::warmupCosine(lr, 30, steps, lr * 0.05);
  Trainer trainer(model, options);
  Rng rng(9);
  std::vector<double> losses;
  for (int64_t s = 0; s < steps; ++s) {
    auto b = sampleBertBatch(split.value().train, B, T, rng);
    ASSERT_TRUE(b.ok()) << b.status().message();
    // A fresh dropout seed per step.
    auto r = trainer.step(withSeed(model, "loss", b.value().inputs(), s));
    ASSERT_TRUE(r.ok()) << r.status().message();
    losses.push_back(r.value().loss);
  }
  double first = 0, last = 0;
  for (int64_t i = 0; i < window; ++i) {
    first += losses[i] / window;
    last += losses[steps - window + i] / window;
  }
  std::printf("[bert-pretrain] bert.loom config {%s}, B=%lld T=%lld, %lld "
              "steps AdamW lr %g warmup-cosine, dropout seeded per step: "
              "MLM+NSP loss mean of the first %lld steps %.4f, of the last "
              "%lld %.4f (drop %.4f, asserted >= %.1f); %.1fs (compile "
              "%.1fs)\n",
              configText(bertConfig()).c_str(), (long long)B, (long long)T,
              (long long)steps, lr, (long long)window, first, (long long)window,
              last, first - last, margin, secondsSince(start),
              model.compileSeconds());
  std::fflush(stdout);
  EXPECT_LT(last, first - margin);
}

// The classifier is trained from a fresh initialization (not from the
// pre-trained weights), which keeps this test independent and short.
TEST(Convergence, BertFinetuneCountTask) {
  auto start = Clock::now();
  const int64_t B = 32, T = 16, steps = 300;
  const double lr = 2e-3, threshold = 0.85;
  auto modelPtr = compileExample("bert.loom", "", bertConfig(),
                                 /*training=*/true, /*seed=*/4);
  ASSERT_TRUE(modelPtr);
  Model &model = *modelPtr;
  ASSERT_TRUE(takesDropoutSeed(model, "finetune_loss"));
  TrainerOptions options;
  options.loss = "finetune_loss";
  options.optimizer.kind = "adamw";
  options.optimizer.weightDecay = 0.01;
  options.optimizer.maxGradNorm = 1.0;
  options.schedule = LrSchedule::warmupCosine(lr, 30, steps, lr * 0.05);
  Trainer trainer(model, options);
  Rng rng(13);
  double firstLoss = 0, lastLoss = 0;
  for (int64_t s = 0; s < steps; ++s) {
    auto b = sampleCountTask(B, T, rng);
    ASSERT_TRUE(b.ok()) << b.status().message();
    auto r = trainer.step(
        withSeed(model, "finetune_loss", b.value().inputs(), 5000 + s));
    ASSERT_TRUE(r.ok()) << r.status().message();
    if (s == 0)
      firstLoss = r.value().loss;
    lastLoss = r.value().loss;
  }
  double trainSeconds = secondsSince(start);

  auto evalPtr = compileExample("bert.loom", "", bertConfig(),
                                /*training=*/false, /*seed=*/4);
  ASSERT_TRUE(evalPtr);
  Model &eval = *evalPtr;
  copyParams(model, eval);
  Rng evalRng(4242);
  int64_t correct = 0, total = 0;
  for (int i = 0; i < 8; ++i) {
    auto b = sampleCountTask(64, T, evalRng);
    ASSERT_TRUE(b.ok()) << b.status().message();
    auto out = eval.call("classify", {b.value().tokens, b.value().segments});
    ASSERT_TRUE(out.ok()) << out.status().message();
    const float *scores = out.value()[0].data<float>();
    const int32_t *labels = b.value().labels.data<int32_t>();
    for (int64_t r = 0; r < 64; ++r) {
      int32_t predicted = scores[2 * r + 1] > scores[2 * r] ? 1 : 0;
      correct += predicted == labels[r];
      ++total;
    }
  }
  double accuracy = double(correct) / double(total);
  std::printf("[bert-finetune] bert.loom config {%s}, count task B=%lld "
              "T=%lld, %lld steps AdamW lr %g warmup-cosine, dropout seeded "
              "per step: finetune_loss %.4f -> %.4f; classify accuracy %.4f "
              "(%lld/%lld, asserted >= %.2f, chance 0.5); %.1fs (training "
              "%.1fs, compile %.1fs)\n",
              configText(bertConfig()).c_str(), (long long)B, (long long)T,
              (long long)steps, lr, firstLoss, lastLoss, accuracy,
              (long long)correct, (long long)total, threshold,
              secondsSince(start), trainSeconds,
              model.compileSeconds() + eval.compileSeconds());
  std::fflush(stdout);
  EXPECT_GE(accuracy, threshold);
}

} // namespace
