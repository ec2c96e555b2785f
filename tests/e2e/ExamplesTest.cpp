//===- ExamplesTest.cpp - The example models, JIT vs reference ------------===//
//
// Every entry function of examples/*.loom, compiled as-is (default config)
// with small dim bindings, run through the CPU JIT on randomly initialized
// parameters and valid random inputs, and compared with the reference
// evaluator.
//
//===----------------------------------------------------------------------===//

#include "tests/e2e/ExampleList.h"
#include "tests/e2e/Harness.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

using namespace loom;
using namespace loom::e2e;

namespace {

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
