//===- TrainerTest.cpp - Compiled training steps and the Trainer ----------===//
//
// End-to-end checks of training, on batches of B = 2, T = 8 random tokens
// (vocabulary 32). Most tests use a tiny hand-written model with GPT's
// parameter names (wte, blocks.0, blocks.1, lnf; no attention, so its
// variants compile in about a second); the LR finder runs on a small GPT
// (examples/gpt.loom, d 16, 2 heads, 1 layer: each GPT layer adds seconds
// of JIT time to every compiled variant).
//
// - each update rule of `loom-optimizer` (SGD, SGD with momentum and
//   global-norm clipping, Nesterov with coupled L2 decay, Adam with coupled
//   L2 decay, AdamW): three compiled steps (Model::trainStep) against the
//   rule computed on the host in double from Model::gradient at the same
//   parameters, parameters and moments within 1e-5 of their largest value;
// - freezing (frozen parameters bit-identical, their moments zero),
//   discriminative LRs (updates are -lr * multiplier * gradient), gradual
//   unfreezing (top-down, one compile per new trainable set);
// - the Trainer: bit-exact resume from a checkpoint (and a clear error for
//   another optimizer's checkpoint), checkpoints before the first step,
//   schedules, NaN detection that names the step and the parameter and
//   leaves the parameters alone, and the LR finder (parameters restored,
//   CSV written, a suggestion inside the sweep).
//
// JIT compiles dominate the run time, so most tests share one model (its
// compile cache) and reuse the same optimizer variants where they can.
//
//===----------------------------------------------------------------------===//

#include "loom/Trainer.h"
#include "loom/Model.h"
#include "loom/Schedule.h"
#include "tests/TempDir.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace loom;

namespace {

constexpr uint64_t kInitSeed = 11;
constexpr int64_t kB = 2, kT = 8, kVocab = 32;

/// A tiny model with the parameter names of GPT's (wte, blocks.<i>, lnf)
/// and no attention: its variants compile in a fraction of GPT's time.
constexpr const char *kTinySource = R"(import nn

block Mlp(d) {
  ln = nn.LayerNorm(d)
  fc = nn.Linear(d, d)
  fn forward(x: f32[B, T, d]) {
    return x + gelu(fc(ln(x)))
  }
}

model Tiny(vocab = 32, d = 16) {
  wte = nn.Embedding(vocab, d)
  blocks = repeat(2) Mlp(d)
  lnf = nn.LayerNorm(d)
  fn loss(tokens: i32[B, T], targets: i32[B, T]) -> f32 {
    return cross_entropy(lnf(blocks(wte(tokens))) @ wte.weight.T, targets)
  }
}
)";

/// The tiny model's source, written once to a file of its own.
const std::string &tinyPath() {
  static const std::string path = [] {
    std::string p = ::testing::TempDir() + "loom-trainer-test-tiny-" +
                    std::to_string(::getpid()) + ".loom";
    std::ofstream(p) << kTinySource;
    return p;
  }();
  return path;
}

std::unique_ptr<Model> compileOrFail(const std::string &path,
                                     const CompileOptions &options) {
  auto model = loom::compile(path, options);
  if (!model.ok()) {
    ADD_FAILURE() << "compiling " << path << ": " << model.status().message();
    return nullptr;
  }
  return std::make_unique<Model>(std::move(model.value()));
}

/// The tiny model with parameters from `seed`, or null (with a failure).
std::unique_ptr<Model> compileTiny(uint64_t seed) {
  CompileOptions options;
  options.seed = seed;
  return compileOrFail(tinyPath(), options);
}

/// The small GPT (examples/gpt.loom) with parameters from `seed`.
std::unique_ptr<Model> compileGpt(uint64_t seed) {
  CompileOptions options;
  options.config = {{"vocab", "32"},
                    {"ctx", "16"},
                    {"d", "16"},
                    {"heads", "2"},
                    {"layers", "1"}};
  options.seed = seed;
  return compileOrFail(std::string(LOOM_SOURCE_DIR) + "/examples/gpt.loom",
                       options);
}

/// `count` batches (tokens, targets) of random ids in [0, vocab).
std::vector<std::vector<Tensor>> randomBatches(size_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> id(0, kVocab - 1);
  std::vector<std::vector<Tensor>> batches;
  for (size_t b = 0; b < count; ++b) {
    std::vector<Tensor> inputs;
    for (int k = 0; k < 2; ++k) {
      Tensor t = Tensor::empty(DType::I32, {kB, kT});
      for (int64_t i = 0; i < t.numel(); ++i)
        t.data<int32_t>()[i] = id(rng);
      inputs.push_back(t);
    }
    batches.push_back(std::move(inputs));
  }
  return batches;
}

/// A copy of the whole parameter buffer.
std::vector<std::byte> bytesOf(const ParamStore &store) {
  return std::vector<std::byte>(store.data(),
                                store.data() + store.totalBytes());
}

std::vector<float> floatsOf(const ParamStore &store) {
  std::vector<float> out(store.totalBytes() / sizeof(float));
  std::memcpy(out.data(), store.data(), store.totalBytes());
  return out;
}

size_t numelOf(const ParamInfo &info) { return info.nbytes() / sizeof(float); }

size_t firstOf(const ParamInfo &info) { return info.offset / sizeof(float); }

/// Whether parameter `info` is selected by names/prefixes `patterns` (as
/// the driver matches them: the name itself or a prefix ending at a dot).
bool selected(const std::string &name,
              const std::vector<std::string> &patterns) {
  for (const std::string &p : patterns)
    if (name == p ||
        (name.size() > p.size() && name.compare(0, p.size(), p) == 0 &&
         name[p.size()] == '.'))
      return true;
  return false;
}

/// Scratch directories of this file's tests.
class TempDir : public loom::testing::TempDir {
public:
  TempDir() : loom::testing::TempDir("loom-trainer-test") {}
};

//===----------------------------------------------------------------------===//
// The update rules on the host, in double
//===----------------------------------------------------------------------===//

/// `loom-optimizer`'s rules (passes/Passes.td), written out plainly.
struct HostOptimizer {
  OptimizerOptions o;
  std::vector<double> p, m, v;
  int64_t t = 0;
  double lastClip = 1;

  HostOptimizer(OptimizerOptions options, const std::vector<float> &params)
      : o(std::move(options)), p(params.begin(), params.end()),
        m(params.size(), 0.0), v(params.size(), 0.0) {}

  /// One step with gradient `g` (the flat layout) on the elements of
  /// `store`'s parameters; returns the global norm of `g`.
  double step(const ParamStore &store, const float *g, double lr) {
    ++t;
    double sumSq = 0;
    for (size_t i = 0; i < p.size(); ++i)
      sumSq += double(g[i]) * double(g[i]);
    double norm = std::sqrt(sumSq);
    lastClip =
        o.maxGradNorm > 0 ? std::min(o.maxGradNorm / (norm + 1e-6), 1.0) : 1.0;
    double bc1 = 1 - std::pow(o.beta1, double(t));
    double bc2 = 1 - std::pow(o.beta2, double(t));
    for (const ParamInfo &info : store.params())
      for (size_t i = firstOf(info), e = i + numelOf(info); i < e; ++i) {
        double gi = double(g[i]) * lastClip;
        if (o.weightDecay > 0 && o.kind != "adamw")
          gi += o.weightDecay * p[i];
        if (o.kind == "sgd") {
          if (o.momentum <= 0) {
            p[i] -= lr * gi;
            continue;
          }
          m[i] = o.momentum * m[i] + gi;
          p[i] -= lr * (o.nesterov ? gi + o.momentum * m[i] : m[i]);
          continue;
        }
        m[i] = o.beta1 * m[i] + (1 - o.beta1) * gi;
        v[i] = o.beta2 * v[i] + (1 - o.beta2) * gi * gi;
        double update = (m[i] / bc1) / (std::sqrt(v[i] / bc2) + o.eps);
        if (o.kind == "adamw")
          update += o.weightDecay * p[i];
        p[i] -= lr * update;
      }
    return norm;
  }
};

/// The largest |x| over the parameter elements of `store`'s layout.
template <class V> double maxAbs(const ParamStore &store, const V &x) {
  double best = 0;
  for (const ParamInfo &info : store.params())
    for (size_t i = firstOf(info), e = i + numelOf(info); i < e; ++i)
      best = std::max(best, std::fabs(double(x[i])));
  return best;
}

/// Checks `actual` (f32) against `expected` (double) on every parameter
/// element, within `rel` of the largest |expected|; names the worst.
template <class A, class E>
void expectClose(const ParamStore &store, const A &actual, const E &expected,
                 double rel, const std::string &what) {
  double tol = rel * std::max(maxAbs(store, expected), 1e-30);
  double worst = 0;
  std::string where;
  for (const ParamInfo &info : store.params())
    for (size_t i = firstOf(info), e = i + numelOf(info); i < e; ++i) {
      double err = std::fabs(double(actual[i]) - double(expected[i]));
      if (!(err <= worst) || std::isnan(err)) {
        worst = std::isnan(err) ? INFINITY : err;
        where = info.name + "[" + std::to_string(i - firstOf(info)) + "]";
      }
    }
  EXPECT_LE(worst, tol) << what << ": worst at " << where;
}

OptimizerOptions sgd(double momentum = 0, bool nesterov = false,
                     double weightDecay = 0, double maxGradNorm = 0) {
  OptimizerOptions o;
  o.kind = "sgd";
  o.momentum = momentum;
  o.nesterov = nesterov;
  o.weightDecay = weightDecay;
  o.maxGradNorm = maxGradNorm;
  return o;
}

OptimizerOptions adam(const std::string &kind, double weightDecay) {
  OptimizerOptions o;
  o.kind = kind;
  o.weightDecay = weightDecay;
  return o;
}

/// The AdamW used by most Trainer tests (one compiled variant, shared).
OptimizerOptions sharedAdamW() { return adam("adamw", 0.1); }

//===----------------------------------------------------------------------===//
// The shared model
//===----------------------------------------------------------------------===//

class TrainerTest : public ::testing::Test {
protected:
  /// Deliberately leaked: JIT engines must not be destroyed from static
  /// destructors.
  static Model *shared;

  static void SetUpTestSuite() {
    if (!shared)
      shared = compileTiny(kInitSeed).release();
  }

  static void TearDownTestSuite() { std::remove(tinyPath().c_str()); }

  void SetUp() override {
    ASSERT_NE(shared, nullptr);
    ASSERT_TRUE(shared->params().initialize(kInitSeed).ok());
  }

  Model &model() { return *shared; }
};

Model *TrainerTest::shared = nullptr;

//===----------------------------------------------------------------------===//
// 1. The update rules
//===----------------------------------------------------------------------===//

struct RuleCase {
  std::string name;
  OptimizerOptions options;
  double lr;
  /// Set maxGradNorm to this fraction of the first step's gradient norm.
  double clipFraction = 0;
};

TEST_F(TrainerTest, OptimizerRulesMatchHostInDouble) {
  const std::vector<RuleCase> cases = {
      {"sgd", sgd(), 0.1},
      // Clipping scales the gradient before the rule; heavy-ball momentum
      // without clipping is covered by the Nesterov case's buffer.
      {"sgd+momentum+clip", sgd(0.9), 0.05, 0.5},
      {"sgd+nesterov+l2", sgd(0.9, true, 0.05), 0.05},
      {"adam+l2", adam("adam", 0.1), 1e-2},
      {"adamw", sharedAdamW(), 1e-2},
  };
  auto batches = randomBatches(3, 101);
  ParamStore &store = model().params();
  for (RuleCase rule : cases) {
    SCOPED_TRACE(rule.name);
    ASSERT_TRUE(store.initialize(kInitSeed).ok());
    if (rule.clipFraction > 0) {
      auto g = model().gradient("loss", batches[0]);
      ASSERT_TRUE(g.ok()) << g.status().message();
      const float *grads = g->grads.data<float>();
      double sumSq = 0;
      for (int64_t i = 0; i < g->grads.numel(); ++i)
        sumSq += double(grads[i]) * grads[i];
      rule.options.maxGradNorm = rule.clipFraction * std::sqrt(sumSq);
    }
    StepOptions step;
    step.optimizer = rule.options;
    OptimizerState state;
    HostOptimizer host(rule.options, floatsOf(store));
    std::vector<float> initial = floatsOf(store);
    for (int s = 0; s < 3; ++s) {
      SCOPED_TRACE("step " + std::to_string(s + 1));
      auto g = model().gradient("loss", batches[s]);
      ASSERT_TRUE(g.ok()) << g.status().message();
      double hostNorm = host.step(store, g->grads.data<float>(), rule.lr);
      if (rule.clipFraction > 0)
        EXPECT_LT(host.lastClip, 0.9) << "clipping is not active";
      auto r = model().trainStep(step, state, rule.lr, batches[s]);
      ASSERT_TRUE(r.ok()) << r.status().message();
      EXPECT_TRUE(r->committed);
      EXPECT_EQ(state.step, s + 1);
      EXPECT_NEAR(r->loss, g->loss, 1e-5 * std::fabs(g->loss));
      EXPECT_NEAR(r->gradNorm, hostNorm, 1e-4 * hostNorm);
      std::vector<float> now = floatsOf(store);
      expectClose(store, now, host.p, 1e-5, "parameters");
      if (!host.m.empty() && !state.m.empty())
        expectClose(store, state.m, host.m, 1e-5, "first moment");
      if (!state.v.empty())
        expectClose(store, state.v, host.v, 1e-5, "second moment");
    }
    // The states the rule keeps, and a visible update.
    size_t expectedStates =
        rule.options.kind == "sgd" ? (rule.options.momentum > 0 ? 1 : 0) : 2;
    EXPECT_EQ(state.m.empty() ? 0u : state.v.empty() ? 1u : 2u, expectedStates);
    std::vector<float> now = floatsOf(store);
    double moved = 0;
    for (size_t i = 0; i < now.size(); ++i)
      moved = std::max(moved, std::fabs(double(now[i]) - initial[i]));
    EXPECT_GT(moved, 1e-3 * maxAbs(store, now)) << "the update is too small "
                                                   "to test the rule";
  }
}

//===----------------------------------------------------------------------===//
// 2. Freezing
//===----------------------------------------------------------------------===//

TEST_F(TrainerTest, FrozenParametersAndMomentsStayPut) {
  ParamStore &store = model().params();
  std::vector<std::byte> before = bytesOf(store);
  StepOptions step;
  step.trainable = {"blocks.1", "lnf"};
  step.optimizer = sharedAdamW();
  OptimizerState state;
  auto batches = randomBatches(3, 202);
  for (const auto &batch : batches) {
    auto r = model().trainStep(step, state, 1e-2, batch);
    ASSERT_TRUE(r.ok()) << r.status().message();
    ASSERT_TRUE(r->committed);
  }
  ASSERT_EQ(state.m.size(), store.totalBytes() / sizeof(float));
  ASSERT_EQ(state.v.size(), state.m.size());
  size_t trainableCount = 0, frozenCount = 0;
  for (const ParamInfo &info : store.params()) {
    SCOPED_TRACE(info.name);
    bool same = std::memcmp(store.data() + info.offset,
                            before.data() + info.offset, info.nbytes()) == 0;
    const float *m = state.m.data() + firstOf(info);
    const float *v = state.v.data() + firstOf(info);
    bool zeroMoments =
        std::all_of(m, m + numelOf(info), [](float x) { return x == 0.0f; }) &&
        std::all_of(v, v + numelOf(info), [](float x) { return x == 0.0f; });
    if (selected(info.name, step.trainable)) {
      ++trainableCount;
      // AdamW with decay moves every element, even with a zero gradient.
      EXPECT_FALSE(same) << "a trainable parameter did not change";
      EXPECT_FALSE(zeroMoments);
    } else {
      ++frozenCount;
      EXPECT_TRUE(same) << "a frozen parameter changed";
      EXPECT_TRUE(zeroMoments) << "a frozen parameter has optimizer moments";
    }
  }
  EXPECT_GT(trainableCount, 4u);
  EXPECT_GT(frozenCount, 4u);
}

//===----------------------------------------------------------------------===//
// 3. Discriminative learning rates
//===----------------------------------------------------------------------===//

TEST_F(TrainerTest, LayerGroupMultipliersScaleTheUpdates) {
  TrainerOptions options;
  options.optimizer = sgd();
  const double lr = 0.1;
  options.schedule = LrSchedule::constant(lr);
  options.groups = {{"lower", {"wte", "blocks.0"}, 0.1},
                    {"upper", {"blocks.1", "lnf"}, 1.0}};
  Trainer trainer(model(), options);
  ParamStore &store = model().params();
  auto batches = randomBatches(2, 303);
  for (const auto &batch : batches) {
    auto g = model().gradient("loss", batch);
    ASSERT_TRUE(g.ok()) << g.status().message();
    const float *grads = g->grads.data<float>();
    std::vector<float> before = floatsOf(store);
    auto r = trainer.step(batch);
    ASSERT_TRUE(r.ok()) << r.status().message();
    std::vector<float> after = floatsOf(store);
    std::vector<double> expected(before.begin(), before.end());
    // Per group: sum |dp|^2 and sum |lr g|^2.
    std::map<std::string, std::pair<double, double>> sizes;
    for (const ParamInfo &info : store.params()) {
      const LayerGroup *group = nullptr;
      for (const LayerGroup &gr : options.groups)
        if (selected(info.name, gr.prefixes))
          group = &gr;
      ASSERT_NE(group, nullptr) << info.name << " is in no group";
      for (size_t i = firstOf(info), e = i + numelOf(info); i < e; ++i) {
        double delta = double(after[i]) - before[i];
        expected[i] -= lr * group->lrMultiplier * grads[i];
        sizes[group->name].first += delta * delta;
        sizes[group->name].second += lr * lr * double(grads[i]) * grads[i];
      }
    }
    expectClose(store, after, expected, 1e-6, "p - lr * mult * g");
    double lower = std::sqrt(sizes["lower"].first / sizes["lower"].second);
    double upper = std::sqrt(sizes["upper"].first / sizes["upper"].second);
    EXPECT_NEAR(lower, 0.1, 1e-3);
    EXPECT_NEAR(upper, 1.0, 1e-3);
    EXPECT_NEAR(lower / upper, 0.1, 1e-3);
  }
}

//===----------------------------------------------------------------------===//
// 4. Gradual unfreezing
//===----------------------------------------------------------------------===//

TEST_F(TrainerTest, GradualUnfreezingCompilesOncePerStage) {
  std::unique_ptr<Model> fresh = compileTiny(kInitSeed);
  ASSERT_NE(fresh, nullptr);
  TrainerOptions options;
  options.optimizer = sgd(0.9);
  options.schedule = LrSchedule::constant(0.05);
  options.groups = {{"embeddings", {"wte"}, 1.0},
                    {"lower", {"blocks.0"}, 1.0},
                    {"upper", {"blocks.1", "lnf"}, 1.0}};
  Trainer trainer(*fresh, options);
  ParamStore &store = fresh->params();
  const UnfreezeSchedule schedule{2};
  auto batches = randomBatches(8, 404);
  std::set<size_t> seenStages;

  // Trains one step in stage `stage` (top stage + 1 groups) and checks that
  // exactly those groups moved and how many compiles the step took.
  auto stepInStage = [&](size_t stage, const std::vector<Tensor> &batch,
                         unsigned expectedCompiles) {
    size_t firstTrained = options.groups.size() - 1 - stage;
    std::vector<std::string> expectedTrainable;
    for (size_t gi = firstTrained; gi < options.groups.size(); ++gi)
      for (const std::string &p : options.groups[gi].prefixes)
        expectedTrainable.push_back(p);
    EXPECT_EQ(trainer.trainable(), expectedTrainable);
    std::vector<std::byte> before = bytesOf(store);
    unsigned compiles = fresh->compileCount();
    auto r = trainer.step(batch);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(fresh->compileCount() - compiles, expectedCompiles);
    for (size_t gi = 0; gi < options.groups.size(); ++gi) {
      bool anyChanged = false;
      for (const ParamInfo &info : store.params()) {
        if (!selected(info.name, options.groups[gi].prefixes))
          continue;
        bool same =
            std::memcmp(store.data() + info.offset, before.data() + info.offset,
                        info.nbytes()) == 0;
        if (gi < firstTrained)
          EXPECT_TRUE(same) << info.name << " changed while frozen";
        anyChanged |= !same;
      }
      if (gi >= firstTrained)
        EXPECT_TRUE(anyChanged)
            << "group " << options.groups[gi].name << " did not train";
    }
  };

  for (int64_t s = 0; s < 7; ++s) {
    SCOPED_TRACE("step " + std::to_string(s));
    trainer.applyUnfreezing(schedule, trainer.stepCount());
    size_t stage = std::min<size_t>(s / 2, 2);
    bool newStage = seenStages.insert(stage).second;
    stepInStage(stage, batches[s], newStage ? 1 : 0);
  }
  // Going back to an earlier stage reuses its compiled step.
  SCOPED_TRACE("back to stage 0");
  trainer.applyUnfreezing(schedule, 0);
  stepInStage(0, batches[7], 0);
}

//===----------------------------------------------------------------------===//
// 5. Checkpoints with optimizer state
//===----------------------------------------------------------------------===//

TrainerOptions resumeOptions() {
  TrainerOptions options;
  options.optimizer = sharedAdamW();
  options.schedule = LrSchedule::warmupCosine(1e-2, 2, 6, 1e-4);
  return options;
}

TEST_F(TrainerTest, ResumeFromCheckpointIsBitExact) {
  auto batches = randomBatches(6, 505);
  ParamStore &store = model().params();

  // Six steps straight.
  Trainer straight(model(), resumeOptions());
  std::vector<double> straightLosses;
  for (const auto &batch : batches) {
    auto r = straight.step(batch);
    ASSERT_TRUE(r.ok()) << r.status().message();
    straightLosses.push_back(r->loss);
  }
  std::vector<std::byte> finalParams = bytesOf(store);
  OptimizerState finalState = straight.optimizerState();

  // Three steps, a checkpoint, then three more on a fresh model.
  ASSERT_TRUE(store.initialize(kInitSeed).ok());
  TempDir dir;
  std::string path = dir.file("run.safetensors");
  {
    Trainer first(model(), resumeOptions());
    for (int s = 0; s < 3; ++s)
      ASSERT_TRUE(first.step(batches[s]).ok());
    Status saved = first.saveCheckpoint(path, {{"note", "halfway"}});
    ASSERT_TRUE(saved.ok()) << saved.message();
  }
  std::unique_ptr<Model> resumed = compileTiny(kInitSeed + 1);
  ASSERT_NE(resumed, nullptr);
  ASSERT_NE(std::memcmp(resumed->params().data(), finalParams.data(),
                        finalParams.size()),
            0);
  Trainer second(*resumed, resumeOptions());
  Status loaded = second.loadCheckpoint(path);
  ASSERT_TRUE(loaded.ok()) << loaded.message();
  EXPECT_EQ(second.stepCount(), 3);
  EXPECT_EQ(second.currentLr(), resumeOptions().schedule.lr(3));
  for (int s = 3; s < 6; ++s) {
    auto r = second.step(batches[s]);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->loss, straightLosses[s]) << "step " << s + 1;
  }
  ASSERT_EQ(resumed->params().totalBytes(), finalParams.size());
  EXPECT_EQ(std::memcmp(resumed->params().data(), finalParams.data(),
                        finalParams.size()),
            0)
      << "resumed parameters differ from the straight run";
  const OptimizerState &state = second.optimizerState();
  EXPECT_EQ(state.step, finalState.step);
  EXPECT_EQ(state.step, 6);
  ASSERT_EQ(state.m.size(), finalState.m.size());
  ASSERT_EQ(state.v.size(), finalState.v.size());
  EXPECT_EQ(std::memcmp(state.m.data(), finalState.m.data(),
                        state.m.size() * sizeof(float)),
            0);
  EXPECT_EQ(std::memcmp(state.v.data(), finalState.v.data(),
                        state.v.size() * sizeof(float)),
            0);

  // A checkpoint of another optimizer kind is refused, leaving the model.
  std::vector<std::byte> before = bytesOf(resumed->params());
  TrainerOptions sgdOptions;
  sgdOptions.optimizer = sgd(0.9);
  Trainer other(*resumed, sgdOptions);
  Status wrong = other.loadCheckpoint(path);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.message().find("adamw"), std::string::npos)
      << wrong.message();
  EXPECT_NE(wrong.message().find("sgd"), std::string::npos) << wrong.message();
  EXPECT_NE(wrong.message().find(path), std::string::npos) << wrong.message();
  EXPECT_EQ(std::memcmp(resumed->params().data(), before.data(), before.size()),
            0);
  EXPECT_EQ(other.stepCount(), 0);
}

TEST_F(TrainerTest, CheckpointBeforeTheFirstStepLoads) {
  // A run may save before it has taken a step (e.g. a checkpoint at step
  // 0): the file must load into a trainer of the same optimizer.
  TempDir dir;
  std::string path = dir.file("start.safetensors");
  std::vector<std::byte> initial = bytesOf(model().params());
  for (const OptimizerOptions &o : {sharedAdamW(), sgd(0.9), sgd()}) {
    SCOPED_TRACE(o.kind + " momentum " + std::to_string(o.momentum));
    TrainerOptions options;
    options.optimizer = o;
    Trainer trainer(model(), options);
    Status saved = trainer.saveCheckpoint(path);
    ASSERT_TRUE(saved.ok()) << saved.message();
    Trainer again(model(), options);
    Status loaded = again.loadCheckpoint(path);
    ASSERT_TRUE(loaded.ok()) << loaded.message();
    EXPECT_EQ(again.stepCount(), 0);
    for (const std::vector<float> *moment :
         {&again.optimizerState().m, &again.optimizerState().v})
      EXPECT_TRUE(std::all_of(moment->begin(), moment->end(),
                              [](float x) { return x == 0.0f; }));
    EXPECT_EQ(
        std::memcmp(model().params().data(), initial.data(), initial.size()),
        0);
  }
}

//===----------------------------------------------------------------------===//
// 6. Schedules
//===----------------------------------------------------------------------===//

TEST_F(TrainerTest, StepsUseTheScheduledLr) {
  TrainerOptions options;
  options.optimizer = sgd(); // the update shows the LR: dp = -lr g
  options.schedule = LrSchedule::warmupCosine(0.1, 2, 6, 0.01);
  Trainer trainer(model(), options);
  ParamStore &store = model().params();
  auto batches = randomBatches(8, 606);
  for (int64_t s = 0; s < 8; ++s) {
    SCOPED_TRACE("step " + std::to_string(s));
    EXPECT_EQ(trainer.stepCount(), s);
    double lr = trainer.currentLr();
    EXPECT_EQ(lr, options.schedule.lr(s));
    auto g = model().gradient("loss", batches[s]);
    ASSERT_TRUE(g.ok()) << g.status().message();
    std::vector<float> before = floatsOf(store);
    ASSERT_TRUE(trainer.step(batches[s]).ok());
    std::vector<float> after = floatsOf(store);
    // The LR the step used: -<dp, g> / <g, g>.
    const float *grads = g->grads.data<float>();
    double dot = 0, gg = 0;
    for (size_t i = 0; i < after.size(); ++i) {
      dot -= (double(after[i]) - before[i]) * grads[i];
      gg += double(grads[i]) * grads[i];
    }
    EXPECT_NEAR(dot / gg, lr, 1e-4 * lr);
  }
  // The warmup rises to the base LR, then the cosine decays to the floor.
  EXPECT_DOUBLE_EQ(options.schedule.lr(0), 0.05);
  EXPECT_DOUBLE_EQ(options.schedule.lr(1), 0.1);
  EXPECT_DOUBLE_EQ(options.schedule.lr(7), 0.01);
}

//===----------------------------------------------------------------------===//
// 7. NaN detection
//===----------------------------------------------------------------------===//

TEST_F(TrainerTest, NonFiniteStepNamesStepAndParameter) {
  TrainerOptions options;
  options.optimizer = sharedAdamW();
  options.schedule = LrSchedule::constant(1e-3);
  Trainer trainer(model(), options);
  ParamStore &store = model().params();
  auto batches = randomBatches(2, 707);
  ASSERT_TRUE(trainer.step(batches[0]).ok());

  // Poison one element of a parameter the loss reads.
  auto index = store.indexOf("blocks.0.fc.weight");
  ASSERT_TRUE(index.has_value());
  float *weight =
      reinterpret_cast<float *>(store.data() + store.param(*index).offset);
  weight[5] = std::numeric_limits<float>::quiet_NaN();
  std::vector<std::byte> before = bytesOf(store);
  OptimizerState stateBefore = trainer.optimizerState();

  auto r = trainer.step(batches[1]);
  ASSERT_FALSE(r.ok());
  const std::string &message = r.status().message();
  EXPECT_NE(message.find("step 2"), std::string::npos) << message;
  EXPECT_NE(message.find("'blocks.0.fc.weight'"), std::string::npos) << message;
  EXPECT_EQ(std::memcmp(store.data(), before.data(), before.size()), 0)
      << "the failing step changed the parameters";
  EXPECT_EQ(trainer.stepCount(), 1);
  const OptimizerState &state = trainer.optimizerState();
  EXPECT_EQ(std::memcmp(state.m.data(), stateBefore.m.data(),
                        state.m.size() * sizeof(float)),
            0);
  EXPECT_EQ(std::memcmp(state.v.data(), stateBefore.v.data(),
                        state.v.size() * sizeof(float)),
            0);
}

TEST_F(TrainerTest, DivergingLrIsCaught) {
  TrainerOptions options;
  options.optimizer = sgd();
  options.schedule = LrSchedule::constant(1e30);
  Trainer trainer(model(), options);
  ParamStore &store = model().params();
  auto batches = randomBatches(6, 708);
  bool failed = false;
  for (size_t s = 0; s < batches.size() && !failed; ++s) {
    std::vector<std::byte> before = bytesOf(store);
    auto r = trainer.step(batches[s]);
    if (r.ok())
      continue;
    failed = true;
    const std::string &message = r.status().message();
    EXPECT_NE(message.find("step " + std::to_string(s + 1)), std::string::npos)
        << message;
    EXPECT_NE(message.find("parameter '"), std::string::npos) << message;
    EXPECT_EQ(std::memcmp(store.data(), before.data(), before.size()), 0)
        << "the failing step changed the parameters";
    EXPECT_EQ(trainer.stepCount(), int64_t(s));
  }
  EXPECT_TRUE(failed) << "an LR of 1e30 trained without a non-finite step";
}

TEST_F(TrainerTest, OverflowingUpdateIsCaughtAtItsStep) {
  // The loss and gradient of the first step are finite, but an LR beyond
  // f32's range makes the update infinite: that very step must fail and
  // name a parameter, leaving the parameters as they were.
  TrainerOptions options;
  options.optimizer = sgd();
  options.schedule = LrSchedule::constant(1e39);
  Trainer trainer(model(), options);
  ParamStore &store = model().params();
  std::vector<std::byte> before = bytesOf(store);
  auto r = trainer.step(randomBatches(1, 709)[0]);
  ASSERT_FALSE(r.ok());
  const std::string &message = r.status().message();
  EXPECT_NE(message.find("step 1: the update of parameter '"),
            std::string::npos)
      << message;
  EXPECT_EQ(std::memcmp(store.data(), before.data(), before.size()), 0);
  EXPECT_EQ(trainer.stepCount(), 0);
}

TEST_F(TrainerTest, RejectedStepLeavesParametersAndMomentsAsTheyWere) {
  // A step writes into buffers kept from the last step and commits by
  // swapping the moments in: a rejected step (an LR beyond f32's range)
  // must change neither the parameters nor the moments, and the steps
  // around it must equal those of a run without it.
  ParamStore &store = model().params();
  ASSERT_TRUE(store.initialize(kInitSeed).ok());
  StepOptions step;
  step.optimizer = sharedAdamW();
  auto batches = randomBatches(3, 911);
  OptimizerState state;
  auto first = model().trainStep(step, state, 1e-2, batches[0]);
  ASSERT_TRUE(first.ok() && first->committed);
  std::vector<std::byte> params = bytesOf(store);
  std::vector<float> m = state.m, v = state.v;
  auto rejected = model().trainStep(step, state, 1e39, batches[1]);
  ASSERT_TRUE(rejected.ok()) << rejected.status().message();
  EXPECT_FALSE(rejected->committed);
  EXPECT_GE(rejected->nonFiniteUpdateAt, 0);
  EXPECT_EQ(std::memcmp(store.data(), params.data(), params.size()), 0);
  EXPECT_EQ(state.m, m);
  EXPECT_EQ(state.v, v);
  EXPECT_EQ(state.step, 1);
  auto second = model().trainStep(step, state, 1e-2, batches[2]);
  ASSERT_TRUE(second.ok() && second->committed);
  std::vector<std::byte> after = bytesOf(store);
  std::vector<float> mAfter = state.m, vAfter = state.v;

  // The same two steps without the rejected one in between.
  ASSERT_TRUE(store.initialize(kInitSeed).ok());
  OptimizerState plain;
  ASSERT_TRUE(model().trainStep(step, plain, 1e-2, batches[0])->committed);
  ASSERT_TRUE(model().trainStep(step, plain, 1e-2, batches[2])->committed);
  EXPECT_EQ(std::memcmp(store.data(), after.data(), after.size()), 0);
  EXPECT_EQ(plain.m, mAfter);
  EXPECT_EQ(plain.v, vAfter);
  ASSERT_TRUE(store.initialize(kInitSeed).ok()); // as the next test expects
}

//===----------------------------------------------------------------------===//
// 8. The LR finder
//===----------------------------------------------------------------------===//

TEST(TrainerGptTest, LrFinderRestoresParametersAndWritesCsv) {
  std::unique_ptr<Model> gpt = compileGpt(kInitSeed);
  ASSERT_NE(gpt, nullptr);
  TrainerOptions options;
  options.optimizer = sharedAdamW();
  Trainer trainer(*gpt, options);
  ParamStore &store = gpt->params();
  std::vector<std::byte> before = bytesOf(store);
  auto batches = randomBatches(100, 808);
  TempDir dir;
  std::string csv = dir.file("lr_find.csv");
  const double start = 1e-5, end = 1.0;
  auto finder =
      trainer.findLr([&](int64_t i) { return batches[i % batches.size()]; },
                     start, end, 100, csv);
  ASSERT_TRUE(finder.ok()) << finder.status().message();
  EXPECT_EQ(std::memcmp(store.data(), before.data(), before.size()), 0)
      << "findLr did not restore the parameters";
  EXPECT_EQ(trainer.stepCount(), 0);
  EXPECT_TRUE(trainer.optimizerState().m.empty());

  const auto &points = finder->points();
  ASSERT_GE(points.size(), 3u);
  std::ifstream in(csv);
  ASSERT_TRUE(in.good()) << csv;
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line, "lr,loss,smoothed_loss");
  size_t rows = 0;
  while (std::getline(in, line)) {
    ASSERT_LT(rows, points.size()) << "extra row: " << line;
    std::istringstream fields(line);
    std::string lr, loss;
    ASSERT_TRUE(std::getline(fields, lr, ','));
    ASSERT_TRUE(std::getline(fields, loss, ','));
    EXPECT_EQ(std::strtod(lr.c_str(), nullptr), points[rows].lr);
    EXPECT_EQ(std::strtod(loss.c_str(), nullptr), points[rows].loss);
    ++rows;
  }
  EXPECT_EQ(rows, points.size());
  EXPECT_EQ(points.front().lr, start);

  auto suggestion = finder->suggestion();
  ASSERT_TRUE(suggestion.ok()) << suggestion.status().message();
  EXPECT_TRUE(std::isfinite(*suggestion));
  EXPECT_GE(*suggestion, start);
  EXPECT_LE(*suggestion, end);
}

} // namespace
