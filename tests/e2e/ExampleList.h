//===- ExampleList.h - The example models the e2e tests run ------*- C++
//-*-===//
//
// examples/*.loom with the functions, dim bindings and input generators the
// tests use (ExamplesTest: JIT vs reference; GpuTest: PTX and GPU runs).
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_TESTS_E2E_EXAMPLELIST_H
#define LOOM_TESTS_E2E_EXAMPLELIST_H

#include "tests/e2e/Harness.h"

#include <map>
#include <string>
#include <vector>

namespace loom::e2e {

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
inline Generator tokensWithPadding(int64_t vocab) {
  return integersWith(1, vocab, 0, 0.2);
}

inline const std::vector<Example> &examples() {
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
        "finetune_loss", "mlm_loss"},
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

inline std::string exampleName(const Example &e) {
  std::string name = e.file;
  name = name.substr(0, name.find('.'));
  if (*e.model)
    name += std::string(".") + e.model;
  return name;
}

inline Case exampleCase(const Example &e, const std::string &function) {
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

} // namespace loom::e2e

#endif // LOOM_TESTS_E2E_EXAMPLELIST_H
