//===- TrainingDataTest.cpp - LR schedules, LR finder, data pipelines -----===//
//
// Each schedule at chosen steps (hand-computed values), the spec parser and
// its errors, the LR finder on a synthetic loss curve with a known steepest
// descent, the PRNG against an independent implementation's outputs, and
// the batch samplers: determinism per seed, shapes and dtypes, shifted
// targets, MLM/NSP statistics on large samples, and the seq2seq tasks.
//
//===----------------------------------------------------------------------===//

#include "loom/Data.h"
#include "loom/Schedule.h"
#include "tests/TempDir.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <sstream>
#include <stdlib.h>

using namespace loom;

namespace {

/// Scratch directories of this file's tests.
class TempDir : public loom::testing::TempDir {
public:
  TempDir() : loom::testing::TempDir("loom-training-test") {}
};

void writeFile(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

bool sameTensor(const Tensor &a, const Tensor &b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.rawData(), b.rawData(), a.nbytes()) == 0;
}

void expectShape(const Tensor &t, std::vector<int64_t> shape) {
  EXPECT_EQ(t.dtype(), DType::I32);
  EXPECT_EQ(t.shape(), shape);
  EXPECT_TRUE(t.isContiguous());
}

/// Letters 'a'..'z' drawn uniformly: text without special bytes.
std::vector<uint8_t> letterCorpus(size_t size, uint64_t seed) {
  Rng rng(seed);
  std::vector<uint8_t> bytes(size);
  for (uint8_t &b : bytes)
    b = static_cast<uint8_t>('a' + rng.below(26));
  return bytes;
}

//===----------------------------------------------------------------------===//
// Schedules
//===----------------------------------------------------------------------===//

TEST(LrSchedule, Constant) {
  LrSchedule s = LrSchedule::constant(0.01);
  EXPECT_DOUBLE_EQ(s.lr(0), 0.01);
  EXPECT_DOUBLE_EQ(s.lr(12345), 0.01);
  EXPECT_DOUBLE_EQ(LrSchedule().lr(7), 1e-3);
}

TEST(LrSchedule, StepDecay) {
  LrSchedule s = LrSchedule::step(0.1, 100, 0.5);
  EXPECT_DOUBLE_EQ(s.lr(0), 0.1);
  EXPECT_DOUBLE_EQ(s.lr(99), 0.1);
  EXPECT_DOUBLE_EQ(s.lr(100), 0.05);
  EXPECT_DOUBLE_EQ(s.lr(199), 0.05);
  EXPECT_DOUBLE_EQ(s.lr(250), 0.025);
  EXPECT_DOUBLE_EQ(s.lr(-3), 0.1);
}

TEST(LrSchedule, Exponential) {
  LrSchedule s = LrSchedule::exponential(2.0, 0.5);
  EXPECT_DOUBLE_EQ(s.lr(0), 2.0);
  EXPECT_DOUBLE_EQ(s.lr(1), 1.0);
  EXPECT_DOUBLE_EQ(s.lr(3), 0.25);
  EXPECT_NEAR(LrSchedule::exponential(0.1, 0.999).lr(1000),
              0.1 * 0.36769542477096373, 1e-15);
}

TEST(LrSchedule, CyclicTriangular) {
  LrSchedule s = LrSchedule::cyclic(1.0, 3.0, 4);
  const double expected[] = {1.0, 1.5, 2.0, 2.5, 3.0, 2.5, 2.0,
                             1.5, 1.0, 1.5, 2.0, 2.5, 3.0, 2.5};
  for (int step = 0; step < 14; ++step)
    EXPECT_DOUBLE_EQ(s.lr(step), expected[step]) << "step " << step;
  LrSchedule small = LrSchedule::cyclic(1e-4, 1e-2, 200);
  EXPECT_DOUBLE_EQ(small.lr(0), 1e-4);
  EXPECT_DOUBLE_EQ(small.lr(100), 1e-4 + (1e-2 - 1e-4) * 0.5);
  EXPECT_DOUBLE_EQ(small.lr(200), 1e-2);
  EXPECT_DOUBLE_EQ(small.lr(400), 1e-4);
}

TEST(LrSchedule, WarmupLinear) {
  LrSchedule s = LrSchedule::warmupLinear(1.0, 4, 12, 0.2);
  EXPECT_DOUBLE_EQ(s.lr(0), 0.25);
  EXPECT_DOUBLE_EQ(s.lr(1), 0.5);
  EXPECT_DOUBLE_EQ(s.lr(2), 0.75);
  EXPECT_DOUBLE_EQ(s.lr(3), 1.0);
  EXPECT_DOUBLE_EQ(s.lr(4), 1.0);  // p = 0
  EXPECT_DOUBLE_EQ(s.lr(8), 0.6);  // p = 1/2
  EXPECT_DOUBLE_EQ(s.lr(10), 0.4); // p = 3/4
  EXPECT_DOUBLE_EQ(s.lr(12), 0.2);
  EXPECT_DOUBLE_EQ(s.lr(1000), 0.2);
  // No warmup: the decay starts at step 0 from the base.
  LrSchedule noWarmup = LrSchedule::warmupLinear(1.0, 0, 10, 0.0);
  EXPECT_DOUBLE_EQ(noWarmup.lr(0), 1.0);
  EXPECT_DOUBLE_EQ(noWarmup.lr(5), 0.5);
}

TEST(LrSchedule, WarmupCosine) {
  LrSchedule s = LrSchedule::warmupCosine(1.0, 4, 12, 0.2);
  EXPECT_DOUBLE_EQ(s.lr(0), 0.25);
  EXPECT_DOUBLE_EQ(s.lr(3), 1.0);
  EXPECT_DOUBLE_EQ(s.lr(4), 1.0);
  // p = 1/4: 0.2 + 0.8 * (1 + cos(pi/4)) / 2
  EXPECT_NEAR(s.lr(6), 0.882842712474619, 1e-14);
  EXPECT_NEAR(s.lr(8), 0.6, 1e-15);
  // p = 3/4: 0.2 + 0.8 * (1 - cos(pi/4)) / 2
  EXPECT_NEAR(s.lr(10), 0.317157287525381, 1e-14);
  EXPECT_DOUBLE_EQ(s.lr(12), 0.2);
  EXPECT_DOUBLE_EQ(s.lr(99), 0.2);
}

TEST(LrSchedule, ParseEveryKind) {
  struct Case {
    const char *spec;
    LrSchedule::Kind kind;
    int64_t step;
    double lr;
  };
  const Case cases[] = {
      {"constant", LrSchedule::Kind::Constant, 50, 0.1},
      {"step:size=100,gamma=0.5", LrSchedule::Kind::Step, 200, 0.025},
      {"step:size=10", LrSchedule::Kind::Step, 10, 0.1 * 0.1},
      {"exp:gamma=0.5", LrSchedule::Kind::Exponential, 2, 0.025},
      {"cyclic:min=1e-4,max=1e-2,size=200", LrSchedule::Kind::Cyclic, 200,
       1e-2},
      {"warmup-linear:warmup=100,total=1000,min=0",
       LrSchedule::Kind::WarmupLinear, 49, 0.05},
      {"warmup-cosine:warmup=100,total=1000,min=1e-5",
       LrSchedule::Kind::WarmupCosine, 1000, 1e-5},
      {" warmup-cosine : warmup = 0 , total = 10 ",
       LrSchedule::Kind::WarmupCosine, 10, 0.0},
  };
  for (const Case &c : cases) {
    Result<LrSchedule> s = parseLrSchedule(c.spec, 0.1);
    ASSERT_TRUE(s.ok()) << c.spec << ": " << s.status().message();
    EXPECT_EQ(s->kind(), c.kind) << c.spec;
    EXPECT_DOUBLE_EQ(s->lr(c.step), c.lr) << c.spec;
    // spec() reads back to the same schedule.
    Result<LrSchedule> again = parseLrSchedule(s->spec(), 0.1);
    ASSERT_TRUE(again.ok()) << s->spec() << ": " << again.status().message();
    EXPECT_EQ(again->spec(), s->spec());
    for (int64_t step : {0, 1, 7, 99, 100, 150, 999, 1000, 5000})
      EXPECT_EQ(again->lr(step), s->lr(step)) << s->spec() << " @" << step;
  }
  Result<LrSchedule> s =
      parseLrSchedule("warmup-cosine:warmup=100,total=1000,min=1e-5", 3e-4);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->warmupSteps(), 100);
  EXPECT_EQ(s->totalSteps(), 1000);
  EXPECT_DOUBLE_EQ(s->minLr(), 1e-5);
  EXPECT_DOUBLE_EQ(s->baseLr(), 3e-4);
  EXPECT_EQ(s->spec(), "warmup-cosine:warmup=100,total=1000,min=1e-05");
}

TEST(LrSchedule, ParseErrorsNameTheField) {
  struct Case {
    const char *spec;
    const char *expected; // a substring of the message
  };
  const Case cases[] = {
      {"", "no schedule kind"},
      {"linear", "unknown kind 'linear'"},
      {"step", "field 'size': missing"},
      {"step:gamma=0.5", "field 'size': missing"},
      {"step:size=abc", "field 'size': 'abc' is not an integer"},
      {"step:size=1.5", "field 'size': '1.5' is not an integer"},
      {"step:size=0", "field 'size': 0 must be >= 1"},
      {"step:size=10,gamma=-1", "field 'gamma': -1 must be > 0"},
      {"step:size=10,gamma=", "field 'gamma': no value"},
      {"step:size", "field 'size': no value"},
      {"step:size=10,,gamma=1", "empty field"},
      {"step:size=10,size=20", "field 'size': given twice"},
      {"step:size=10,bogus=1", "field 'bogus': unknown for 'step' (it takes "
                               "size, gamma)"},
      {"constant:gamma=1", "field 'gamma': unknown for 'constant' (it takes "
                           "no fields)"},
      {"exp", "field 'gamma': missing"},
      {"exp:gamma=x", "field 'gamma': 'x' is not a finite number"},
      {"exp:gamma=inf", "field 'gamma': 'inf' is not a finite number"},
      {"cyclic:min=1e-4,size=10", "field 'max': missing"},
      {"cyclic:min=1,max=0.5,size=3", "field 'max': 0.5 is below min 1"},
      {"cyclic:min=-1,max=1,size=3", "field 'min': -1 must be >= 0"},
      {"warmup-linear:total=10", "field 'warmup': missing"},
      {"warmup-linear:warmup=10", "field 'total': missing"},
      {"warmup-cosine:warmup=100,total=50", "field 'total': 50 is below "
                                            "warmup 100"},
      {"warmup-cosine:warmup=-1,total=50", "field 'warmup': -1 must be >= 0"},
      {"warmup-cosine:warmup=1,total=50,min=0.5",
       "field 'min': 0.5 is above the base learning rate 0.1"},
      {"warmup-linear:warmup=1,total=99999999999999999999",
       "field 'total': '99999999999999999999' is out of range"},
  };
  for (const Case &c : cases) {
    Result<LrSchedule> s = parseLrSchedule(c.spec, 0.1);
    ASSERT_FALSE(s.ok()) << c.spec;
    EXPECT_NE(s.status().message().find(c.expected), std::string::npos)
        << c.spec << ": " << s.status().message();
    EXPECT_EQ(s.status().message().rfind(
                  "lr schedule '" + std::string(c.spec) + "': ", 0),
              0u)
        << s.status().message();
  }
  Result<LrSchedule> bad = parseLrSchedule("constant", 0.0);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("base learning rate"),
            std::string::npos);
}

//===----------------------------------------------------------------------===//
// LR finder
//===----------------------------------------------------------------------===//

TEST(LrFinder, CreateChecksArguments) {
  EXPECT_FALSE(LrFinder::create(0, 1, 10).ok());
  EXPECT_FALSE(LrFinder::create(1, 1, 10).ok());
  EXPECT_FALSE(LrFinder::create(1e-5, 1, 1).ok());
  EXPECT_FALSE(LrFinder::create(1e-5, 1, 10, 1.0).ok());
  EXPECT_FALSE(LrFinder::create(1e-5, 1, 10, 0.98, 1.0).ok());
  EXPECT_TRUE(LrFinder::create(1e-5, 1, 10).ok());
}

TEST(LrFinder, ExponentialSweep) {
  Result<LrFinder> finder = LrFinder::create(1e-4, 1.0, 5);
  ASSERT_TRUE(finder.ok());
  const double expected[] = {1e-4, 1e-3, 1e-2, 1e-1, 1.0};
  for (int i = 0; i < 5; ++i) {
    EXPECT_NEAR(finder->lrAt(i), expected[i], expected[i] * 1e-12);
    EXPECT_NEAR(finder->currentLr(), expected[i], expected[i] * 1e-12);
    EXPECT_EQ(finder->record(1.0), i < 4);
  }
  EXPECT_TRUE(finder->done());
  EXPECT_FALSE(finder->diverged());
  EXPECT_EQ(finder->points().size(), 5u);
  EXPECT_FALSE(finder->record(1.0)); // ignored once done
  EXPECT_EQ(finder->points().size(), 5u);
  EXPECT_EQ(finder->points().back().lr, 1.0);
}

TEST(LrFinder, SmoothingWithBiasCorrection) {
  Result<LrFinder> finder = LrFinder::create(1e-4, 1.0, 10);
  ASSERT_TRUE(finder.ok());
  EXPECT_TRUE(finder->record(1.0));
  EXPECT_TRUE(finder->record(2.0));
  // avg0 = 0.02, s0 = 0.02 / 0.02 = 1;
  // avg1 = 0.98 * 0.02 + 0.02 * 2 = 0.0596, s1 = 0.0596 / (1 - 0.9604).
  EXPECT_DOUBLE_EQ(finder->points()[0].smoothedLoss, 1.0);
  EXPECT_NEAR(finder->points()[1].smoothedLoss, 0.0596 / 0.0396, 1e-12);
  EXPECT_EQ(finder->points()[1].loss, 2.0);
  EXPECT_DOUBLE_EQ(finder->bestSmoothedLoss(), 1.0);
}

TEST(LrFinder, StopsWhenTheLossDiverges) {
  Result<LrFinder> finder = LrFinder::create(1e-6, 10, 100);
  ASSERT_TRUE(finder.ok());
  int recorded = 0;
  while (!finder->done()) {
    double loss = recorded < 20 ? 1.0 : 100.0;
    finder->record(loss);
    ++recorded;
  }
  EXPECT_TRUE(finder->diverged());
  EXPECT_LT(recorded, 100);
  const LrFinderPoint &last = finder->points().back();
  EXPECT_GT(last.smoothedLoss, 4 * finder->bestSmoothedLoss());
  EXPECT_LE(finder->points()[recorded - 2].smoothedLoss,
            4 * finder->bestSmoothedLoss());

  Result<LrFinder> nan = LrFinder::create(1e-6, 10, 100);
  ASSERT_TRUE(nan.ok());
  EXPECT_TRUE(nan->record(1.0));
  EXPECT_FALSE(nan->record(std::nan("")));
  EXPECT_TRUE(nan->done());
  EXPECT_TRUE(nan->diverged());
  EXPECT_EQ(nan->points().size(), 1u);
}

/// loss(lr) = 3 - tanh(ln(lr / 1e-3)) + exp(2 ln(lr / 1)): a smooth drop
/// whose steepest point in ln(lr) is at lr = 1e-3, then a blow-up past 1.
double syntheticLoss(double lr) {
  double x = std::log(lr);
  return 3 - std::tanh(x - std::log(1e-3)) + std::exp(2 * x);
}

double runFinder(LrFinder &finder, double noise, uint64_t seed) {
  Rng rng(seed);
  while (!finder.done())
    finder.record(syntheticLoss(finder.currentLr()) +
                  noise * (rng.uniform() - 0.5));
  Result<double> lr = finder.suggestion();
  EXPECT_TRUE(lr.ok()) << lr.status().message();
  return lr.ok() ? *lr : 0;
}

TEST(LrFinder, SuggestsTheSteepestDescent) {
  // Without smoothing the rule finds the steepest point up to the grid
  // (one step is a factor of exp(ln(1e8) / 999) = 1.019).
  Result<LrFinder> raw = LrFinder::create(1e-7, 10, 1000, /*beta=*/0.0);
  ASSERT_TRUE(raw.ok());
  double rawLr = runFinder(*raw, 0, 1);
  EXPECT_NEAR(std::log(rawLr / 1e-3), 0, 0.02) << rawLr;
  EXPECT_TRUE(raw->diverged()); // the blow-up past lr = 1 stops the sweep
  EXPECT_LT(raw->points().back().lr, 10);

  // With beta = 0.98 the average lags ~49 steps of the sweep (a factor of
  // ~2.5 here), which moves the suggestion up but not past a factor of 2.5.
  Result<LrFinder> smooth = LrFinder::create(1e-7, 10, 1000);
  ASSERT_TRUE(smooth.ok());
  double lr = runFinder(*smooth, 0, 1);
  EXPECT_GT(lr, 1e-3 / 2.5);
  EXPECT_LT(lr, 1e-3 * 2.5);
  EXPECT_TRUE(smooth->diverged());

  // Noisy losses: the smoothing keeps the suggestion near.
  Result<LrFinder> noisy = LrFinder::create(1e-7, 10, 1000);
  ASSERT_TRUE(noisy.ok());
  double noisyLr = runFinder(*noisy, 0.2, 7);
  EXPECT_GT(noisyLr, 1e-3 / 3);
  EXPECT_LT(noisyLr, 1e-3 * 3);
}

TEST(LrFinder, SuggestionErrors) {
  Result<LrFinder> finder = LrFinder::create(1e-5, 1, 100);
  ASSERT_TRUE(finder.ok());
  EXPECT_FALSE(finder->suggestion().ok()); // no points
  for (int i = 0; i < 50; ++i)
    finder->record(1.0 + 0.01 * i); // the loss only rises
  Result<double> lr = finder->suggestion();
  ASSERT_FALSE(lr.ok());
  EXPECT_NE(lr.status().message().find("never decreased"), std::string::npos)
      << lr.status().message();
}

TEST(LrFinder, WritesCsv) {
  TempDir dir;
  Result<LrFinder> finder = LrFinder::create(1e-4, 1.0, 5);
  ASSERT_TRUE(finder.ok());
  finder->record(2.0);
  finder->record(1.0);
  ASSERT_TRUE(finder->writeCsv(dir.file("lr.csv")).ok());
  std::ifstream in(dir.file("lr.csv"));
  std::stringstream text;
  text << in.rdbuf();
  std::string lines = text.str();
  EXPECT_EQ(lines.substr(0, lines.find('\n')), "lr,loss,smoothed_loss");
  EXPECT_NE(lines.find("\n1e-04,2,2\n"), std::string::npos) << lines;
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 3);
  // Each number reads back exactly.
  std::istringstream rows(lines);
  std::string row;
  std::getline(rows, row);
  for (const LrFinderPoint &point : finder->points()) {
    ASSERT_TRUE(std::getline(rows, row));
    double lr = 0, loss = 0, smooth = 0;
    ASSERT_EQ(std::sscanf(row.c_str(), "%lf,%lf,%lf", &lr, &loss, &smooth), 3);
    EXPECT_EQ(lr, point.lr);
    EXPECT_EQ(loss, point.loss);
    EXPECT_EQ(smooth, point.smoothedLoss);
  }
  EXPECT_FALSE(finder->writeCsv(dir.file("missing/dir/lr.csv")).ok());
}

//===----------------------------------------------------------------------===//
// Rng, tokenizer, corpus
//===----------------------------------------------------------------------===//

TEST(Rng, MatchesReferenceOutputs) {
  // From an independent implementation (SplitMix64-seeded xoshiro256**).
  Rng zero(0);
  EXPECT_EQ(zero.next(), 0x99ec5f36cb75f2b4ull);
  EXPECT_EQ(zero.next(), 0xbf6e1f784956452aull);
  EXPECT_EQ(zero.next(), 0x1a5f849d4933e6e0ull);
  Rng answer(42);
  EXPECT_EQ(answer.next(), 0x15780b2e0c2ec716ull);
  EXPECT_EQ(answer.next(), 0x6104d9866d113a7eull);
  EXPECT_EQ(answer.next(), 0xae17533239e499a1ull);
}

TEST(Rng, RangesAndUniformity) {
  Rng rng(3);
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 70000; ++i) {
    uint64_t v = rng.below(7);
    ASSERT_LT(v, 7u);
    ++counts[v];
  }
  for (int c : counts)
    EXPECT_NEAR(c, 10000, 400);
  for (int i = 0; i < 1000; ++i) {
    int64_t v = rng.between(-3, 3);
    EXPECT_GE(v, -3);
    EXPECT_LE(v, 3);
    double u = rng.uniform();
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
  }
  EXPECT_EQ(rng.below(1), 0u);
  EXPECT_EQ(rng.between(5, 5), 5);
}

TEST(ByteTokenizer, RoundTripAndPrintable) {
  ByteTokenizer tok;
  EXPECT_EQ(tok.vocabSize(), 256);
  std::string text = "hi\n\xff\x01";
  std::vector<int32_t> ids = tok.encode(text);
  EXPECT_EQ(ids, (std::vector<int32_t>{'h', 'i', '\n', 255, 1}));
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_EQ(tok.printable(ids), "hi\\n\\xff\\x01");
  EXPECT_EQ(tok.printable({'a', '\\', '\t', 300, -1}), "a\\\\\\t<300><-1>");
  EXPECT_EQ(tok.decode({'o', 'k', 999}), "ok?");
}

TEST(Corpus, ReadAndSplit) {
  TempDir dir;
  Result<std::vector<uint8_t>> missing = readCorpus(dir.file("nope.txt"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nope.txt"), std::string::npos);
  EXPECT_NE(missing.status().message().find("cannot open"), std::string::npos);

  writeFile(dir.file("empty.txt"), "");
  Result<std::vector<uint8_t>> empty = readCorpus(dir.file("empty.txt"));
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("empty"), std::string::npos);

  EXPECT_FALSE(readCorpus(dir.path).ok()); // a directory

  std::string text(100, 'x');
  for (int i = 0; i < 100; ++i)
    text[i] = static_cast<char>(i);
  writeFile(dir.file("c.txt"), text);
  Result<std::vector<uint8_t>> bytes = readCorpus(dir.file("c.txt"));
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  ASSERT_EQ(bytes->size(), 100u);
  EXPECT_EQ((*bytes)[42], 42);

  Result<CorpusSplit> split = splitCorpus(*bytes, 0.1);
  ASSERT_TRUE(split.ok());
  EXPECT_EQ(split->train.size(), 90u);
  EXPECT_EQ(split->validation.size(), 10u);
  EXPECT_EQ(split->train.back(), 89);
  EXPECT_EQ(split->validation.front(), 90);
  Result<CorpusSplit> all = splitCorpus(*bytes, 0.0);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->train.size(), 100u);
  EXPECT_TRUE(all->validation.empty());
  EXPECT_FALSE(splitCorpus(*bytes, 1.0).ok());
  EXPECT_FALSE(splitCorpus(*bytes, -0.5).ok());
  EXPECT_FALSE(splitCorpus({1, 2, 3}, 0.1).ok()); // no validation byte
}

//===----------------------------------------------------------------------===//
// Causal LM
//===----------------------------------------------------------------------===//

TEST(LmBatch, WindowsShiftedByOne) {
  // Bytes i % 251: every window of 251 or fewer bytes is found by its first.
  std::vector<uint8_t> data(5000);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<uint8_t>(i % 251);
  Rng rng(11);
  Result<LmBatch> batch = sampleLmBatch(data, 8, 32, rng);
  ASSERT_TRUE(batch.ok()) << batch.status().message();
  expectShape(batch->tokens, {8, 32});
  expectShape(batch->targets, {8, 32});
  ASSERT_EQ(batch->inputs().size(), 2u);
  const int32_t *tokens = batch->tokens.data<int32_t>();
  const int32_t *targets = batch->targets.data<int32_t>();
  for (int b = 0; b < 8; ++b)
    for (int t = 0; t < 32; ++t) {
      EXPECT_EQ(targets[b * 32 + t], (tokens[b * 32 + t] + 1) % 251);
      if (t + 1 < 32)
        EXPECT_EQ(targets[b * 32 + t], tokens[b * 32 + t + 1]);
    }

  // Determinism per seed.
  Rng a(5), b(5), c(6);
  LmBatch first = *sampleLmBatch(data, 4, 16, a);
  LmBatch second = *sampleLmBatch(data, 4, 16, b);
  LmBatch other = *sampleLmBatch(data, 4, 16, c);
  EXPECT_TRUE(sameTensor(first.tokens, second.tokens));
  EXPECT_TRUE(sameTensor(first.targets, second.targets));
  EXPECT_FALSE(sameTensor(first.tokens, other.tokens));

  // Exactly T + 1 bytes: the one window.
  std::vector<uint8_t> tiny = {1, 2, 3, 4};
  Result<LmBatch> exact = sampleLmBatch(tiny, 2, 3, rng);
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(tensorValues(exact->tokens),
            (std::vector<int32_t>{1, 2, 3, 1, 2, 3}));
  EXPECT_EQ(tensorValues(exact->targets),
            (std::vector<int32_t>{2, 3, 4, 2, 3, 4}));
  EXPECT_FALSE(sampleLmBatch(tiny, 2, 4, rng).ok());
  EXPECT_FALSE(sampleLmBatch(tiny, 0, 2, rng).ok());
  EXPECT_FALSE(sampleLmBatch(tiny, 1, 0, rng).ok());
}

//===----------------------------------------------------------------------===//
// BERT: MLM + NSP
//===----------------------------------------------------------------------===//

TEST(BertBatch, LayoutAndNextSentence) {
  std::vector<uint8_t> corpus = letterCorpus(20000, 1);
  BertDataConfig config;
  const int64_t B = 64, T = 40;
  Rng rng(2);
  Result<BertBatch> batch = sampleBertBatch(corpus, B, T, rng, config);
  ASSERT_TRUE(batch.ok()) << batch.status().message();
  expectShape(batch->tokens, {B, T});
  expectShape(batch->segments, {B, T});
  expectShape(batch->mlmTargets, {B, T});
  expectShape(batch->nspLabels, {B});
  ASSERT_EQ(batch->inputs().size(), 4u);
  for (int64_t b = 0; b < B; ++b) {
    const int32_t *tokens = batch->tokens.data<int32_t>() + b * T;
    const int32_t *segments = batch->segments.data<int32_t>() + b * T;
    const int32_t *targets = batch->mlmTargets.data<int32_t>() + b * T;
    EXPECT_EQ(tokens[0], config.cls);
    EXPECT_EQ(tokens[T - 1], config.sep);
    std::vector<int64_t> seps;
    for (int64_t t = 0; t < T; ++t)
      if (tokens[t] == config.sep)
        seps.push_back(t);
    ASSERT_EQ(seps.size(), 2u);
    int64_t lenA = seps[0] - 1;
    EXPECT_GE(lenA, 1);
    EXPECT_LE(lenA, T - 4);
    for (int64_t t = 0; t < T; ++t) {
      EXPECT_EQ(segments[t], t <= seps[0] ? 0 : 1);
      EXPECT_NE(tokens[t], config.pad);
    }
    EXPECT_EQ(targets[0], config.ignoreIndex);
    EXPECT_EQ(targets[seps[0]], config.ignoreIndex);
    EXPECT_EQ(targets[T - 1], config.ignoreIndex);
    // The original text: the targets where selected.
    std::vector<uint8_t> a, bSeg;
    for (int64_t t = 1; t < T - 1; ++t) {
      if (t == seps[0])
        continue;
      int32_t original =
          targets[t] == config.ignoreIndex ? tokens[t] : targets[t];
      EXPECT_GE(original, 'a');
      EXPECT_LE(original, 'z');
      (t < seps[0] ? a : bSeg).push_back(static_cast<uint8_t>(original));
    }
    std::vector<uint8_t> joined = a;
    joined.insert(joined.end(), bSeg.begin(), bSeg.end());
    bool contiguous = std::search(corpus.begin(), corpus.end(), joined.begin(),
                                  joined.end()) != corpus.end();
    EXPECT_TRUE(std::search(corpus.begin(), corpus.end(), a.begin(), a.end()) !=
                corpus.end());
    int32_t label = batch->nspLabels.data<int32_t>()[b];
    ASSERT_TRUE(label == 0 || label == 1);
    if (label == 0)
      EXPECT_TRUE(contiguous) << "row " << b;
    else if (bSeg.size() >= 12)
      EXPECT_FALSE(contiguous) << "row " << b; // a chance match is ~26^-12
  }

  // Determinism per seed.
  Rng x(9), y(9), z(10);
  BertBatch first = *sampleBertBatch(corpus, 4, 32, x);
  BertBatch second = *sampleBertBatch(corpus, 4, 32, y);
  BertBatch other = *sampleBertBatch(corpus, 4, 32, z);
  EXPECT_TRUE(sameTensor(first.tokens, second.tokens));
  EXPECT_TRUE(sameTensor(first.segments, second.segments));
  EXPECT_TRUE(sameTensor(first.mlmTargets, second.mlmTargets));
  EXPECT_TRUE(sameTensor(first.nspLabels, second.nspLabels));
  EXPECT_FALSE(sameTensor(first.tokens, other.tokens));
}

TEST(BertBatch, WithoutNextSentenceTheTextIsContiguous) {
  // RoBERTa's packing: [CLS] one run of text [SEP] (the middle [SEP] splits
  // contiguous text), segments and NSP labels 0, and a different mask each
  // time the same text comes back (the masks follow the batch's seed).
  std::vector<uint8_t> corpus = letterCorpus(20000, 5);
  BertDataConfig config;
  config.nextSentence = false;
  const int64_t B = 32, T = 40;
  Rng rng(3);
  Result<BertBatch> batch = sampleBertBatch(corpus, B, T, rng, config);
  ASSERT_TRUE(batch.ok()) << batch.status().message();
  for (int64_t b = 0; b < B; ++b) {
    const int32_t *tokens = batch->tokens.data<int32_t>() + b * T;
    const int32_t *segments = batch->segments.data<int32_t>() + b * T;
    const int32_t *targets = batch->mlmTargets.data<int32_t>() + b * T;
    EXPECT_EQ(batch->nspLabels.data<int32_t>()[b], 0);
    std::string text; // the original bytes, masks undone
    for (int64_t t = 0; t < T; ++t) {
      EXPECT_EQ(segments[t], 0);
      int32_t original = targets[t] >= 0 ? targets[t] : tokens[t];
      if (original != config.cls && original != config.sep)
        text += char(original);
    }
    std::string all(corpus.begin(), corpus.end());
    EXPECT_NE(all.find(text), std::string::npos) << "row " << b;
  }
  Rng again(3), other(4);
  BertBatch first = *sampleBertBatch(corpus, B, T, again, config);
  BertBatch second = *sampleBertBatch(corpus, B, T, other, config);
  EXPECT_TRUE(sameTensor(first.tokens, batch->tokens));
  EXPECT_FALSE(sameTensor(first.mlmTargets, second.mlmTargets));
}

TEST(BertBatch, MaskingAndNspStatistics) {
  std::vector<uint8_t> corpus = letterCorpus(50000, 3);
  BertDataConfig config;
  const int64_t B = 4000, T = 128; // 125 content positions, 19 selected
  Rng rng(4);
  Result<BertBatch> batch = sampleBertBatch(corpus, B, T, rng, config);
  ASSERT_TRUE(batch.ok()) << batch.status().message();
  const int32_t *tokens = batch->tokens.data<int32_t>();
  const int32_t *targets = batch->mlmTargets.data<int32_t>();
  int64_t selected = 0, masked = 0, randomized = 0, kept = 0, content = 0;
  for (int64_t b = 0; b < B; ++b) {
    int64_t rowSelected = 0;
    for (int64_t t = 0; t < T; ++t) {
      int32_t tok = tokens[b * T + t], target = targets[b * T + t];
      if (tok != config.cls && tok != config.sep)
        ++content;
      if (target == config.ignoreIndex)
        continue;
      ++selected;
      ++rowSelected;
      EXPECT_NE(target, config.mask);
      if (tok == config.mask)
        ++masked;
      else if (tok == target)
        ++kept;
      else {
        ++randomized;
        EXPECT_GE(tok, 4); // never a special token
      }
    }
    EXPECT_EQ(rowSelected, 19); // round(0.15 * 125)
  }
  EXPECT_EQ(content, B * (T - 3));
  double selectRate = double(selected) / double(content);
  EXPECT_NEAR(selectRate, 0.15, 0.005) << selectRate;
  double n = double(selected);
  // A random replacement equals the original with probability 1/252.
  EXPECT_NEAR(masked / n, 0.8, 0.01);
  EXPECT_NEAR(randomized / n, 0.1 * 251.0 / 252.0, 0.01);
  EXPECT_NEAR(kept / n, 0.1 + 0.1 / 252.0, 0.01);

  int64_t random = 0;
  for (int64_t b = 0; b < B; ++b)
    random += batch->nspLabels.data<int32_t>()[b];
  EXPECT_NEAR(double(random) / double(B), 0.5, 0.03);
}

TEST(BertBatch, SpecialBytesAndErrors) {
  // Corpus bytes equal to special ids are read as spaces.
  std::vector<uint8_t> corpus(200);
  for (size_t i = 0; i < corpus.size(); ++i)
    corpus[i] = static_cast<uint8_t>(i % 8); // 0..7
  BertDataConfig noMask;
  noMask.selectFraction = 0;
  Rng rng(1);
  Result<BertBatch> batch = sampleBertBatch(corpus, 8, 16, rng, noMask);
  ASSERT_TRUE(batch.ok()) << batch.status().message();
  for (int64_t i = 0; i < 8 * 16; ++i) {
    int32_t tok = batch->tokens.data<int32_t>()[i];
    int64_t t = i % 16;
    if (t == 0)
      EXPECT_EQ(tok, noMask.cls);
    else if (tok != noMask.sep)
      EXPECT_TRUE(tok == ' ' || (tok >= 4 && tok < 8)) << tok;
    EXPECT_EQ(batch->mlmTargets.data<int32_t>()[i], -100);
  }

  EXPECT_FALSE(sampleBertBatch(corpus, 1, 4, rng).ok());  // T < 5
  EXPECT_FALSE(sampleBertBatch(corpus, 0, 16, rng).ok()); // B < 1
  EXPECT_FALSE(sampleBertBatch({1, 2}, 1, 16, rng).ok()); // short corpus
  BertDataConfig clash;
  clash.mask = clash.sep;
  EXPECT_FALSE(sampleBertBatch(corpus, 1, 16, rng, clash).ok());
  BertDataConfig shares;
  shares.maskShare = 0.95;
  EXPECT_FALSE(sampleBertBatch(corpus, 1, 16, rng, shares).ok());
}

//===----------------------------------------------------------------------===//
// Sequence classification
//===----------------------------------------------------------------------===//

TEST(CountTask, LabelsFollowTheRule) {
  CountTaskConfig config;
  const int64_t B = 2000, T = 24;
  Rng rng(8);
  Result<ClassificationBatch> batch = sampleCountTask(B, T, rng, config);
  ASSERT_TRUE(batch.ok()) << batch.status().message();
  expectShape(batch->tokens, {B, T});
  expectShape(batch->segments, {B, T});
  expectShape(batch->labels, {B});
  ASSERT_EQ(batch->inputs().size(), 3u);
  int64_t ones = 0;
  for (int64_t b = 0; b < B; ++b) {
    const int32_t *tokens = batch->tokens.data<int32_t>() + b * T;
    EXPECT_EQ(tokens[0], config.cls);
    std::vector<int32_t> letters(tokens + 1, tokens + T);
    int64_t a = std::count(letters.begin(), letters.end(), 'a');
    int64_t c = std::count(letters.begin(), letters.end(), 'b');
    EXPECT_NE(a, c);
    for (int32_t l : letters) {
      EXPECT_GE(l, 'a');
      EXPECT_LE(l, 'd');
    }
    int32_t label = batch->labels.data<int32_t>()[b];
    EXPECT_EQ(label, a > c ? 1 : 0);
    EXPECT_EQ(label, countTaskLabel(letters, config));
    ones += label;
    for (int64_t t = 0; t < T; ++t)
      EXPECT_EQ(batch->segments.data<int32_t>()[b * T + t], 0);
  }
  EXPECT_NEAR(double(ones) / double(B), 0.5, 0.04);

  Rng x(1), y(1);
  EXPECT_TRUE(sameTensor(sampleCountTask(8, 10, x)->tokens,
                         sampleCountTask(8, 10, y)->tokens));
  EXPECT_FALSE(sampleCountTask(8, 1, rng).ok());
  CountTaskConfig bad;
  bad.tokenB = 'z';
  EXPECT_FALSE(sampleCountTask(8, 10, rng, bad).ok());
}

//===----------------------------------------------------------------------===//
// Seq2seq
//===----------------------------------------------------------------------===//

void checkSeq2Seq(Seq2SeqTask task, const Seq2SeqBatch &batch,
                  const Seq2SeqConfig &config, int64_t B, int64_t S) {
  int64_t T = S + 1;
  expectShape(batch.src, {B, S});
  expectShape(batch.tgtIn, {B, T});
  expectShape(batch.tgtOut, {B, T});
  for (int64_t b = 0; b < B; ++b) {
    const int32_t *src = batch.src.data<int32_t>() + b * S;
    const int32_t *in = batch.tgtIn.data<int32_t>() + b * T;
    const int32_t *out = batch.tgtOut.data<int32_t>() + b * T;
    int64_t length = std::find(src, src + S, config.pad) - src;
    EXPECT_GE(length, config.minLength == 0 ? S : config.minLength);
    for (int64_t i = 0; i < S; ++i) {
      if (i < length) {
        EXPECT_GE(src[i], config.firstToken);
        EXPECT_LT(src[i], config.vocab);
      } else {
        EXPECT_EQ(src[i], config.pad);
      }
    }
    for (int64_t i = 0; i < length; ++i)
      EXPECT_EQ(out[i],
                task == Seq2SeqTask::Copy ? src[i] : src[length - 1 - i]);
    EXPECT_EQ(out[length], config.eos);
    for (int64_t i = length + 1; i < T; ++i)
      EXPECT_EQ(out[i], config.pad);
    EXPECT_EQ(in[0], config.bos);
    for (int64_t i = 1; i < T; ++i)
      EXPECT_EQ(in[i], out[i - 1]);
  }
}

TEST(Seq2Seq, CopyAndReverse) {
  Seq2SeqConfig config;
  Rng rng(12);
  Result<Seq2SeqBatch> reverse =
      sampleSeq2SeqBatch(Seq2SeqTask::Reverse, 64, 10, rng, config);
  ASSERT_TRUE(reverse.ok()) << reverse.status().message();
  ASSERT_EQ(reverse->inputs().size(), 3u);
  checkSeq2Seq(Seq2SeqTask::Reverse, *reverse, config, 64, 10);
  Result<Seq2SeqBatch> copy =
      sampleSeq2SeqBatch(Seq2SeqTask::Copy, 64, 10, rng, config);
  ASSERT_TRUE(copy.ok());
  checkSeq2Seq(Seq2SeqTask::Copy, *copy, config, 64, 10);

  // A fixed example: src 5 4 3 -> reverse 3 4 5 eos.
  Seq2SeqConfig full;
  full.minLength = 0;
  Rng one(1);
  Seq2SeqBatch fixed =
      *sampleSeq2SeqBatch(Seq2SeqTask::Reverse, 1, 3, one, full);
  std::vector<int32_t> src = tensorValues(fixed.src);
  ASSERT_EQ(src.size(), 3u);
  EXPECT_EQ(tensorValues(fixed.tgtOut),
            (std::vector<int32_t>{src[2], src[1], src[0], full.eos}));
  EXPECT_EQ(tensorValues(fixed.tgtIn),
            (std::vector<int32_t>{full.bos, src[2], src[1], src[0]}));
  Result<Seq2SeqBatch> noPad =
      sampleSeq2SeqBatch(Seq2SeqTask::Reverse, 32, 6, rng, full);
  ASSERT_TRUE(noPad.ok());
  checkSeq2Seq(Seq2SeqTask::Reverse, *noPad, full, 32, 6);

  Rng x(3), y(3);
  Seq2SeqBatch first = *sampleSeq2SeqBatch(Seq2SeqTask::Copy, 8, 12, x);
  Seq2SeqBatch second = *sampleSeq2SeqBatch(Seq2SeqTask::Copy, 8, 12, y);
  EXPECT_TRUE(sameTensor(first.src, second.src));
  EXPECT_TRUE(sameTensor(first.tgtIn, second.tgtIn));
  EXPECT_TRUE(sameTensor(first.tgtOut, second.tgtOut));

  EXPECT_EQ(*parseSeq2SeqTask("copy"), Seq2SeqTask::Copy);
  EXPECT_EQ(*parseSeq2SeqTask("reverse"), Seq2SeqTask::Reverse);
  EXPECT_FALSE(parseSeq2SeqTask("sort").ok());
  EXPECT_FALSE(sampleSeq2SeqBatch(Seq2SeqTask::Copy, 1, 0, rng).ok());
  Seq2SeqConfig bad;
  bad.minLength = 20;
  EXPECT_FALSE(sampleSeq2SeqBatch(Seq2SeqTask::Copy, 1, 10, rng, bad).ok());
  bad = Seq2SeqConfig();
  bad.eos = bad.pad;
  EXPECT_FALSE(sampleSeq2SeqBatch(Seq2SeqTask::Copy, 1, 10, rng, bad).ok());
  bad = Seq2SeqConfig();
  bad.firstToken = 32;
  EXPECT_FALSE(sampleSeq2SeqBatch(Seq2SeqTask::Copy, 1, 10, rng, bad).ok());
}

} // namespace
