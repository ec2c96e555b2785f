//===- DecodeTest.cpp - KV-cache decoding equals the full forward ---------===//
//
// A small GPT with random parameters: a batch of two prompts of different
// lengths is prefilled and then decoded token by token through the derived
// decode step (loom-derive-decode); the logits at every position match the
// full forward of the whole sequences; the same for the Transformer's
// decoder with its encoder's memory as context. Sampling is deterministic
// per seed;
// bad positions, full caches and models without a decoding form are errors.
//
//===----------------------------------------------------------------------===//

#include "tests/e2e/RandomCall.h"

#include "loom/Generator.h"
#include "loom/Model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

using namespace loom;

namespace {

const std::map<std::string, std::string> kConfig = {{"vocab", "61"},
                                                    {"ctx", "48"},
                                                    {"d", "32"},
                                                    {"layers", "2"},
                                                    {"heads", "2"}};

Model randomGpt() {
  CompileOptions options;
  options.config = kConfig;
  auto model = loom::compile(LOOM_SOURCE_DIR "/examples/gpt.loom", options);
  EXPECT_TRUE(model.ok()) << model.status().message();
  // Every parameter random (layer norm gains and biases included).
  std::mt19937 rng(11);
  loom::testing::randomizeParams(model->params(), rng, 0.3f);
  return std::move(*model);
}

std::vector<int32_t> randomTokens(std::mt19937 &rng, size_t n) {
  std::vector<int32_t> t(n);
  for (int32_t &x : t)
    x = int32_t(rng() % 61);
  return t;
}

/// Max |a - b| / (1 + |b|) over n values.
double maxError(const float *a, const float *b, int64_t n) {
  double worst = 0;
  for (int64_t i = 0; i < n; ++i)
    worst =
        std::max(worst, std::abs(double(a[i]) - b[i]) / (1 + std::abs(b[i])));
  return worst;
}

TEST(Decode, EveryPositionMatchesTheFullForward) {
  Model model = randomGpt();
  GeneratorOptions options;
  options.batch = 2;
  options.capacity = 40;
  auto gen = Generator::create(model, options);
  ASSERT_TRUE(gen.ok()) << gen.status().message();
  const int64_t vocab = 61;
  EXPECT_EQ(gen->vocabSize(), vocab);
  EXPECT_EQ(gen->cacheBytes(), 2 * 2 * 2 * 2 * 40 * 16 * 4);

  std::mt19937 rng(5);
  std::vector<std::vector<int32_t>> seqs = {randomTokens(rng, 5),
                                            randomTokens(rng, 11)};
  // decoded[b][pos]: the logits the decode path produced at position pos.
  std::vector<std::vector<std::vector<float>>> decoded(2);
  // The prefill through the low-level call, padded to 16 (every position).
  Tensor prompt = Tensor::empty(DType::I32, {2, 16});
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 16; ++i)
      prompt.data<int32_t>()[b * 16 + i] =
          i < int(seqs[b].size()) ? seqs[b][i] : int32_t(rng() % 61);
  auto first = gen->decode(prompt, {0, 0});
  ASSERT_TRUE(first.ok()) << first.status().message();
  for (int b = 0; b < 2; ++b)
    for (size_t i = 0; i < seqs[b].size(); ++i) {
      const float *row = first->data<float>() + (b * 16 + i) * vocab;
      decoded[b].emplace_back(row, row + vocab);
    }
  // Then one token per step, each sequence at its own position.
  std::vector<int64_t> length = {5, 11};
  for (int step = 0; step < 20; ++step) {
    std::vector<int32_t> next = randomTokens(rng, 2);
    std::vector<int32_t> start = {int32_t(length[0]), int32_t(length[1])};
    Tensor tokens = Tensor::empty(DType::I32, {2, 1});
    std::memcpy(tokens.rawData(), next.data(), 8);
    auto out = gen->decode(tokens, start);
    ASSERT_TRUE(out.ok()) << out.status().message();
    for (int b = 0; b < 2; ++b) {
      seqs[b].push_back(next[b]);
      ++length[b];
      const float *row = out->data<float>() + b * vocab;
      decoded[b].emplace_back(row, row + vocab);
    }
  }
  EXPECT_EQ(gen->lengths(), (std::vector<int64_t>{25, 31}));

  // The full forward over both sequences (the shorter padded after its end).
  Tensor all = Tensor::empty(DType::I32, {2, 31});
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 31; ++i)
      all.data<int32_t>()[b * 31 + i] =
          i < int(seqs[b].size()) ? seqs[b][i] : 7;
  auto full = model.call("logits", {all});
  ASSERT_TRUE(full.ok()) << full.status().message();
  for (int b = 0; b < 2; ++b)
    for (size_t pos = 0; pos < decoded[b].size(); ++pos)
      ASSERT_LT(maxError(decoded[b][pos].data(),
                         full->at(0).data<float>() + (b * 31 + pos) * vocab,
                         vocab),
                2e-5)
          << "sequence " << b << " position " << pos;
}

TEST(Decode, PrefillAndStepGiveTheLastLogits) {
  Model model = randomGpt();
  GeneratorOptions options;
  options.batch = 2;
  options.capacity = 24;
  auto gen = Generator::create(model, options);
  ASSERT_TRUE(gen.ok()) << gen.status().message();
  std::vector<std::vector<int32_t>> prompts = {{3, 1, 4},
                                               {1, 5, 9, 2, 6, 5, 3}};
  auto last = gen->prefill(prompts);
  ASSERT_TRUE(last.ok()) << last.status().message();
  auto after = gen->step({8, 9});
  ASSERT_TRUE(after.ok()) << after.status().message();
  for (int b = 0; b < 2; ++b) {
    std::vector<int32_t> seq = prompts[b];
    Tensor t = Tensor::empty(DType::I32, {1, int64_t(seq.size())});
    std::memcpy(t.rawData(), seq.data(), seq.size() * 4);
    auto full = model.call("logits", {t});
    ASSERT_TRUE(full.ok());
    EXPECT_LT(maxError(last->data<float>() + b * 61,
                       full->at(0).data<float>() + (seq.size() - 1) * 61, 61),
              2e-5);
    seq.push_back(b == 0 ? 8 : 9);
    Tensor t2 = Tensor::empty(DType::I32, {1, int64_t(seq.size())});
    std::memcpy(t2.rawData(), seq.data(), seq.size() * 4);
    auto full2 = model.call("logits", {t2});
    ASSERT_TRUE(full2.ok());
    EXPECT_LT(maxError(after->data<float>() + b * 61,
                       full2->at(0).data<float>() + (seq.size() - 1) * 61, 61),
              2e-5);
  }
}

TEST(Decode, EncoderDecoderStepsMatchTheFullDecoder) {
  // The Transformer's `decode(tgt, memory, src)`: the memory and the source
  // ids (a padding mask for the cross-attention) are context, computed once.
  CompileOptions options;
  options.config = {{"d", "32"}, {"heads", "2"}, {"layers", "2"}};
  auto model =
      loom::compile(LOOM_SOURCE_DIR "/examples/transformer.loom", options);
  ASSERT_TRUE(model.ok()) << model.status().message();
  std::mt19937 rng(9);
  loom::testing::randomizeParams(model->params(), rng, 0.3f);
  const int64_t batch = 2, sourceLen = 6, steps = 9, vocab = 32;
  Tensor src = Tensor::empty(DType::I32, {batch, sourceLen});
  for (int64_t i = 0; i < batch * sourceLen; ++i) // the second padded
    src.data<int32_t>()[i] = i >= batch * sourceLen - 2 ? 0 : 1 + rng() % 31;
  auto memory = model->call("encode", {src});
  ASSERT_TRUE(memory.ok()) << memory.status().message();

  GeneratorOptions g;
  g.function = "decode";
  g.batch = batch;
  g.capacity = 16;
  g.context = {memory->at(0), src};
  auto gen = Generator::create(*model, g);
  ASSERT_TRUE(gen.ok()) << gen.status().message();
  Tensor tgt = Tensor::empty(DType::I32, {batch, steps});
  for (int64_t i = 0; i < batch * steps; ++i)
    tgt.data<int32_t>()[i] = 1 + rng() % 31;
  // Three tokens of prefill, then one per step.
  std::vector<std::vector<float>> decoded(batch * steps);
  Tensor first = Tensor::empty(DType::I32, {batch, 3});
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < 3; ++i)
      first.data<int32_t>()[b * 3 + i] = tgt.data<int32_t>()[b * steps + i];
  auto out = gen->decode(first, {0, 0});
  ASSERT_TRUE(out.ok()) << out.status().message();
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < 3; ++i) {
      const float *row = out->data<float>() + (b * 3 + i) * vocab;
      decoded[b * steps + i].assign(row, row + vocab);
    }
  for (int64_t t = 3; t < steps; ++t) {
    Tensor one = Tensor::empty(DType::I32, {batch, 1});
    for (int64_t b = 0; b < batch; ++b)
      one.data<int32_t>()[b] = tgt.data<int32_t>()[b * steps + t];
    auto step = gen->decode(one, {int32_t(t), int32_t(t)});
    ASSERT_TRUE(step.ok()) << step.status().message();
    for (int64_t b = 0; b < batch; ++b) {
      const float *row = step->data<float>() + b * vocab;
      decoded[b * steps + t].assign(row, row + vocab);
    }
  }
  auto full = model->call("decode", {tgt, memory->at(0), src});
  ASSERT_TRUE(full.ok()) << full.status().message();
  // The start check holds with context inputs too (start is argument 1 of
  // the step, the memory argument 1 of the forward).
  Tensor one = Tensor::empty(DType::I32, {batch, 1});
  auto past = gen->decode(one, {int32_t(steps), 16});
  ASSERT_FALSE(past.ok());
  EXPECT_NE(past.status().message().find("start"), std::string::npos)
      << past.status().message();
  for (int64_t i = 0; i < batch * steps; ++i)
    ASSERT_LT(maxError(decoded[i].data(), full->at(0).data<float>() + i * vocab,
                       vocab),
              2e-5)
        << "sequence " << i / steps << " position " << i % steps;
}

TEST(Decode, LstmStepsCarryTheStateAndMatchTheFullDecoder) {
  // seq2seq_lstm's `decode(tgt, enc, h, c, src)`: the decode step carries
  // the decoder LSTM's state between calls (starting from the encoder's
  // where start = 0); the attention over the encoder states is context.
  CompileOptions options;
  options.config = {{"emb", "16"}, {"hidden", "32"}};
  auto model =
      loom::compile(LOOM_SOURCE_DIR "/examples/seq2seq_lstm.loom", options);
  ASSERT_TRUE(model.ok()) << model.status().message();
  std::mt19937 rng(13);
  loom::testing::randomizeParams(model->params(), rng, 0.4f);
  const int64_t batch = 2, sourceLen = 5, steps = 7, vocab = 32;
  Tensor src = Tensor::empty(DType::I32, {batch, sourceLen});
  for (int64_t i = 0; i < batch * sourceLen; ++i)
    src.data<int32_t>()[i] = i == batch * sourceLen - 1 ? 0 : 1 + rng() % 31;
  auto encoded = model->call("encode", {src});
  ASSERT_TRUE(encoded.ok()) << encoded.status().message();
  GeneratorOptions g;
  g.function = "decode";
  g.batch = batch;
  g.capacity = 12;
  g.context = {encoded->at(0), encoded->at(1), encoded->at(2), src};
  auto gen = Generator::create(*model, g);
  ASSERT_TRUE(gen.ok()) << gen.status().message();
  Tensor tgt = Tensor::empty(DType::I32, {batch, steps});
  for (int64_t i = 0; i < batch * steps; ++i)
    tgt.data<int32_t>()[i] = 1 + rng() % 31;
  std::vector<std::vector<int32_t>> prompts(batch);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < 2; ++i)
      prompts[b].push_back(tgt.data<int32_t>()[b * steps + i]);
  auto full = model->call(
      "decode", {tgt, encoded->at(0), encoded->at(1), encoded->at(2), src});
  ASSERT_TRUE(full.ok()) << full.status().message();
  auto last = gen->prefill(prompts);
  ASSERT_TRUE(last.ok()) << last.status().message();
  for (int64_t t = 1; t < steps; ++t) {
    for (int64_t b = 0; b < batch; ++b)
      ASSERT_LT(maxError(last->data<float>() + b * vocab,
                         full->at(0).data<float>() + (b * steps + t) * vocab,
                         vocab),
                2e-5)
          << "sequence " << b << " position " << t;
    if (t + 1 == steps)
      break;
    std::vector<int32_t> next(batch);
    for (int64_t b = 0; b < batch; ++b)
      next[b] = tgt.data<int32_t>()[b * steps + t + 1];
    last = gen->step(next);
    ASSERT_TRUE(last.ok()) << last.status().message();
  }
  // Ragged prompts cannot be padded through a recurrence.
  EXPECT_FALSE(gen->prefill({{1, 2, 3}, {4}}).ok());
}

/// `rows` copies of the batch-1 tensor `t`, stacked along dim 0.
Tensor repeatRows(const Tensor &t, int64_t rows) {
  std::vector<int64_t> shape = t.shape();
  shape[0] = rows;
  Tensor out = Tensor::empty(t.dtype(), shape);
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(static_cast<char *>(out.rawData()) + r * t.nbytes(),
                t.rawData(), t.nbytes());
  return out;
}

TEST(Decode, BeamSearchScoresItsSequenceAndOneBeamIsGreedy) {
  CompileOptions options;
  options.config = {{"d", "32"}, {"heads", "2"}, {"layers", "1"}};
  auto model =
      loom::compile(LOOM_SOURCE_DIR "/examples/transformer.loom", options);
  ASSERT_TRUE(model.ok()) << model.status().message();
  std::mt19937 rng(21);
  loom::testing::randomizeParams(model->params(), rng, 0.5f);
  Tensor src = Tensor::empty(DType::I32, {1, 5});
  for (int i = 0; i < 5; ++i)
    src.data<int32_t>()[i] = 1 + rng() % 31;
  auto memory = model->call("encode", {src});
  ASSERT_TRUE(memory.ok()) << memory.status().message();
  const int64_t vocab = 32, beams = 4;
  const std::vector<int32_t> prompt = {1};
  BeamSearchOptions search;
  search.maxTokens = 6;
  search.endToken = 2;

  // The log-probability of `tokens` after the prompt under the full decoder.
  auto score = [&](const std::vector<int32_t> &tokens) {
    std::vector<int32_t> seq = prompt;
    seq.insert(seq.end(), tokens.begin(), tokens.end());
    Tensor tgt = Tensor::empty(DType::I32, {1, int64_t(seq.size())});
    std::memcpy(tgt.rawData(), seq.data(), seq.size() * 4);
    auto out = model->call("decode", {tgt, memory->at(0), src});
    EXPECT_TRUE(out.ok());
    double total = 0;
    for (size_t i = 0; i < tokens.size(); ++i) {
      const float *row =
          out->at(0).data<float>() + (prompt.size() - 1 + i) * vocab;
      double top = *std::max_element(row, row + vocab), sum = 0;
      for (int64_t v = 0; v < vocab; ++v)
        sum += std::exp(row[v] - top);
      total += row[tokens[i]] - top - std::log(sum);
    }
    return total;
  };

  GeneratorOptions g;
  g.function = "decode";
  g.batch = beams;
  g.capacity = 16;
  g.context = {repeatRows(memory->at(0), beams), repeatRows(src, beams)};
  auto gen = Generator::create(*model, g);
  ASSERT_TRUE(gen.ok()) << gen.status().message();
  search.beams = beams;
  auto best = gen->beamSearch(prompt, search);
  ASSERT_TRUE(best.ok()) << best.status().message();
  ASSERT_FALSE(best->tokens.empty());
  EXPECT_NEAR(best->logProb, score(best->tokens), 1e-4);
  auto again = gen->beamSearch(prompt, search);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->tokens, best->tokens);

  // One beam is greedy decoding.
  g.batch = 1;
  g.context = {memory->at(0), src};
  auto one = Generator::create(*model, g);
  ASSERT_TRUE(one.ok()) << one.status().message();
  search.beams = 1;
  auto beam1 = one->beamSearch(prompt, search);
  ASSERT_TRUE(beam1.ok()) << beam1.status().message();
  std::vector<int32_t> greedy;
  auto logits = one->prefill({prompt});
  ASSERT_TRUE(logits.ok());
  for (int n = 0; n < search.maxTokens; ++n) {
    const float *row = logits->data<float>();
    int32_t next = int32_t(std::max_element(row, row + vocab) - row);
    greedy.push_back(next);
    if (next == search.endToken)
      break;
    logits = one->step({next});
    ASSERT_TRUE(logits.ok());
  }
  EXPECT_EQ(beam1->tokens, greedy);
  EXPECT_NEAR(beam1->logProb, score(greedy), 1e-4);
  search.beams = 3;
  EXPECT_FALSE(one->beamSearch(prompt, search).ok()); // batch 1, 3 beams
}

std::vector<int32_t> sampleText(Model &model, uint64_t seed) {
  GeneratorOptions options;
  options.capacity = 40;
  auto gen = Generator::create(model, options);
  EXPECT_TRUE(gen.ok()) << gen.status().message();
  SamplingOptions sampling;
  sampling.temperature = 0.9;
  sampling.topK = 20;
  sampling.topP = 0.95;
  sampling.seed = seed;
  Sampler sampler(sampling);
  auto logits = gen->prefill({{1, 2, 3}});
  EXPECT_TRUE(logits.ok());
  std::vector<int32_t> out;
  for (int i = 0; i < 30; ++i) {
    int32_t next = sampler.sample(logits->data<float>(), 61);
    out.push_back(next);
    logits = gen->step({next});
    EXPECT_TRUE(logits.ok());
  }
  return out;
}

TEST(Decode, TheSameSeedGivesTheSameTokens) {
  Model model = randomGpt();
  std::vector<int32_t> a = sampleText(model, 42), b = sampleText(model, 42),
                       c = sampleText(model, 43);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(Decode, SamplerLimits) {
  std::vector<float> logits = {0.1f, 2.0f, -1.0f, 1.9f, 0.5f};
  SamplingOptions greedy;
  greedy.temperature = 0;
  EXPECT_EQ(Sampler(greedy).sample(logits.data(), 5), 1);
  SamplingOptions topOne;
  topOne.topK = 1;
  topOne.seed = 3;
  SamplingOptions tinyP;
  tinyP.topP = 1e-6;
  SamplingOptions topTwo;
  topTwo.topK = 2;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    topOne.seed = tinyP.seed = topTwo.seed = seed;
    EXPECT_EQ(Sampler(topOne).sample(logits.data(), 5), 1);
    EXPECT_EQ(Sampler(tinyP).sample(logits.data(), 5), 1);
    int32_t t = Sampler(topTwo).sample(logits.data(), 5);
    EXPECT_TRUE(t == 1 || t == 3) << t;
  }
}

TEST(Decode, BadPositionsAndFullCachesAreErrors) {
  Model model = randomGpt();
  GeneratorOptions options;
  options.capacity = 8;
  auto gen = Generator::create(model, options);
  ASSERT_TRUE(gen.ok()) << gen.status().message();
  Tensor one = Tensor::empty(DType::I32, {1, 1});
  auto past = gen->decode(one, {8});
  ASSERT_FALSE(past.ok());
  EXPECT_NE(past.status().message().find("start"), std::string::npos)
      << past.status().message();
  auto negative = gen->decode(one, {-1});
  EXPECT_FALSE(negative.ok());
  one.data<int32_t>()[0] = 61; // outside the vocabulary
  auto badToken = gen->decode(one, {0});
  ASSERT_FALSE(badToken.ok());
  EXPECT_NE(badToken.status().message().find("tokens"), std::string::npos)
      << badToken.status().message();
  EXPECT_FALSE(gen->prefill({std::vector<int32_t>(9, 1)}).ok());
  EXPECT_FALSE(gen->step({1}).ok()); // no prompt yet
  auto gap = gen->decode(one, {3});  // nothing written before position 3
  ASSERT_FALSE(gap.ok());
  EXPECT_NE(gap.status().message().find("no gaps"), std::string::npos)
      << gap.status().message();
  ASSERT_TRUE(gen->prefill({std::vector<int32_t>(7, 1)}).ok());
  ASSERT_TRUE(gen->step({2}).ok());
  auto full = gen->step({3});
  ASSERT_FALSE(full.ok());
  EXPECT_NE(full.status().message().find("fills its cache"), std::string::npos)
      << full.status().message();
}

TEST(Decode, ModelsWithoutADecodingFormAreErrors) {
  Model model = randomGpt();
  GeneratorOptions tooLong;
  tooLong.capacity = 100; // the position table has 48 rows
  auto gen = Generator::create(model, tooLong);
  ASSERT_FALSE(gen.ok());
  EXPECT_NE(gen.status().message().find("position table"), std::string::npos)
      << gen.status().message();
  EXPECT_NE(gen.status().message().find("wpe"), std::string::npos)
      << gen.status().message();
  EXPECT_NE(gen.status().message().find("capacity of at most 48"),
            std::string::npos)
      << gen.status().message();

  GeneratorOptions loss;
  loss.function = "loss";
  EXPECT_FALSE(Generator::create(model, loss).ok());

  CompileOptions options;
  options.config = {{"d", "32"}, {"layers", "1"}, {"heads", "2"}};
  auto bert = loom::compile(LOOM_SOURCE_DIR "/examples/bert.loom", options);
  ASSERT_TRUE(bert.ok()) << bert.status().message();
  GeneratorOptions mlm;
  mlm.function = "mlm_logits"; // two inputs
  EXPECT_FALSE(Generator::create(*bert, mlm).ok());
}

} // namespace
