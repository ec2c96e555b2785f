//===- ExamplesTest.cpp - The example models, JIT vs reference ------------===//
//
// Every entry function of examples/*.loom, compiled as-is (default config)
// with small dim bindings, run through the CPU JIT on randomly initialized
// parameters and valid random inputs, and compared with the reference
// evaluator.
//
//===----------------------------------------------------------------------===//

#include "tests/e2e/Harness.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

using namespace loom;
using namespace loom::e2e;

namespace {

struct Example {
  const char *file;  // under examples/
  const char *model; // SessionOptions::model ("" = the only model)
  std::vector<std::string> functions;
  Bindings bindings;
  std::map<std::string, Generator> inputs;
  /// The longest sum in the model (the FFN's 4 * d): sizes the tolerance.
  int64_t longestSum;
};

/// Token ids in [1, vocab) with some padding (0) tokens.
Generator tokensWithPadding(int64_t vocab) {
  return integersWith(1, vocab, 0, 0.2);
}

const std::vector<Example> &examples() {
  static const std::vector<Example> list = {
      {"gpt.loom",
       "",
       {"logits", "loss"},
       {{"B", 2}, {"T", 8}},
       {{"tokens", integers(0, 256)}, {"targets", integers(0, 256)}},
       4 * 256},
      {"bert.loom",
       "",
       {"encode", "mlm_logits", "nsp_logits", "classify", "loss",
        "finetune_loss"},
       {{"B", 2}, {"T", 8}},
       {{"tokens", tokensWithPadding(256)},
        {"segments", integers(0, 2)},
        {"mlm_targets", integersWith(0, 256, -100, 0.5)},
        {"nsp_labels", integers(0, 2)},
        {"labels", integers(0, 2)}},
       4 * 256},
      {"transformer.loom",
       "",
       {"encode", "decode", "logits", "loss"},
       {{"B", 2}, {"S", 6}, {"T", 8}},
       {{"src", tokensWithPadding(32)},
        {"tgt", integers(1, 32)},
        {"tgt_in", integers(1, 32)},
        {"tgt_out", tokensWithPadding(32)}},
       4 * 128},
      {"seq2seq_lstm.loom",
       "Seq2Seq",
       {"logits", "loss", "encode", "decode"},
       {{"B", 2}, {"S", 6}, {"T", 8}},
       {{"src", tokensWithPadding(32)},
        {"tgt", integers(1, 32)},
        {"tgt_in", integers(1, 32)},
        {"tgt_out", tokensWithPadding(32)}},
       (64 + 128) * 8},
      {"seq2seq_lstm.loom",
       "Seq2SeqKQV",
       {"logits", "loss", "encode", "decode"},
       {{"B", 2}, {"S", 6}, {"T", 8}},
       {{"src", tokensWithPadding(32)},
        {"tgt", integers(1, 32)},
        {"tgt_in", integers(1, 32)},
        {"tgt_out", tokensWithPadding(32)}},
       (64 + 128) * 8},
  };
  return list;
}

std::string exampleName(const Example &e) {
  std::string name = e.file;
  name = name.substr(0, name.find('.'));
  if (*e.model)
    name += std::string(".") + e.model;
  return name;
}

Case exampleCase(const Example &e, const std::string &function) {
  Case c;
  c.path = sourceDir() + "/examples/" + e.file;
  c.model = e.model;
  c.function = function;
  c.bindings = e.bindings;
  c.inputs = e.inputs;
  c.seed = 7;
  c.family = exampleName(e) + "." + function;
  // Several layers of f32 sums of up to `longestSum` terms: the
  // accumulating bound of the longest sum, times 4 for the depth. Relative
  // to each output's own scale (no floor): freshly initialized models have
  // small outputs (the seq2seq logits are ~5e-4).
  Tolerance t = Tolerance::accumulating(e.longestSum);
  c.tolerance = {4 * t.rel, 4 * t.scaled, 0.0};
  return c;
}

struct ExampleFunction {
  size_t example;
  std::string function;
};

std::vector<ExampleFunction> allFunctions() {
  std::vector<ExampleFunction> all;
  for (size_t i = 0; i < examples().size(); ++i)
    for (const std::string &fn : examples()[i].functions)
      all.push_back({i, fn});
  return all;
}

void PrintTo(const ExampleFunction &f, std::ostream *os) {
  *os << examples()[f.example].file << " " << f.function;
}

class Examples : public ::testing::TestWithParam<ExampleFunction> {};

TEST_P(Examples, JitMatchesReference) {
  const Example &e = examples()[GetParam().example];
  Case c = exampleCase(e, GetParam().function);
  Outcome o = run(c);
  ASSERT_TRUE(o.ran);
  std::printf("[e2e] compile time %-30s %.2fs\n", c.family.c_str(),
              o.compileSeconds);
  // Sanity: the inputs were valid and something was computed.
  for (const Array &out : o.ref)
    for (double v : out.data)
      ASSERT_TRUE(std::isfinite(v)) << "reference output is not finite";
}

INSTANTIATE_TEST_SUITE_P(Models, Examples, ::testing::ValuesIn(allFunctions()),
                         [](const auto &info) {
                           std::string name =
                               exampleName(examples()[info.param.example]) +
                               "_" + info.param.function;
                           std::replace(name.begin(), name.end(), '.', '_');
                           return name;
                         });

/// The lists above cover every entry function of each example.
TEST(Examples, EveryEntryFunctionIsTested) {
  for (const Example &e : examples()) {
    Case c = exampleCase(e, "");
    driver::Session *session = e2e::session(c);
    ASSERT_NE(session, nullptr) << e.file;
    std::vector<std::string> names;
    for (const driver::Signature &sig : session->functions())
      names.push_back(sig.name);
    std::vector<std::string> tested = e.functions;
    std::sort(names.begin(), names.end());
    std::sort(tested.begin(), tested.end());
    EXPECT_EQ(names, tested) << exampleName(e);
  }
}

/// BERT in training mode: its dropout sites draw their masks from the
/// dropout_seed argument; the JIT must reproduce the reference's masks.
TEST(Examples, BertTrainingLoss) {
  const Example &e = examples()[1];
  for (const char *fn : {"loss", "encode"}) {
    Case c = exampleCase(e, fn);
    c.training = true;
    c.family = "bert.train." + std::string(fn);
    Outcome o = run(c);
    ASSERT_TRUE(o.ran);
    ASSERT_EQ(o.compiled->signature.inputs.back().name, "dropout_seed");
    std::printf("[e2e] compile time %-30s %.2fs\n", c.family.c_str(),
                o.compileSeconds);
  }
}

} // namespace
