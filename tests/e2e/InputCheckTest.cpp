//===- InputCheckTest.cpp - Bad integer inputs are errors, never clamps ---===//
//
// A GPT with vocab 300 and ctx 64 through the host API (loom::compile):
// a token id out of range and a target that is neither a class nor the
// ignore index are reported naming the argument, the position and the
// value, and the reference evaluator rejects the same inputs; the ignore
// index and in-range values run; binding T beyond ctx is a compile-time
// error at the position embedding.
//
//===----------------------------------------------------------------------===//

#include "driver/Session.h"
#include "reference/Evaluator.h"

#include "loom/Model.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace loom;

namespace {

const std::map<std::string, std::string> kConfig = {{"vocab", "300"},
                                                    {"ctx", "64"},
                                                    {"d", "32"},
                                                    {"layers", "1"},
                                                    {"heads", "2"}};

Model open() {
  CompileOptions options;
  options.config = kConfig;
  options.diskCache = false;
  auto model = loom::compile(LOOM_SOURCE_DIR "/examples/gpt.loom", options);
  EXPECT_TRUE(model.ok()) << model.status().message();
  return std::move(*model);
}

Tensor ids(std::vector<int32_t> values, std::vector<int64_t> shape) {
  Tensor t = Tensor::empty(DType::I32, std::move(shape));
  for (size_t i = 0; i < values.size(); ++i)
    t.data<int32_t>()[i] = values[i];
  return t;
}

std::vector<int32_t> valid(int n) {
  std::vector<int32_t> v;
  for (int i = 0; i < n; ++i)
    v.push_back((i * 37) % 300);
  return v;
}

/// The reference evaluator's verdict on `loss` for the same inputs.
std::string referenceError(const std::vector<int32_t> &tokens,
                           const std::vector<int32_t> &targets) {
  driver::SessionOptions options;
  options.config = kConfig;
  options.useCache = false;
  auto session =
      driver::Session::open(LOOM_SOURCE_DIR "/examples/gpt.loom", options);
  if (!session)
    return llvm::toString(session.takeError());
  auto module = (*session)->generate("loss", {{"B", 2}, {"T", 4}});
  if (!module)
    return llvm::toString(module.takeError());
  std::vector<reference::Array> args(2);
  for (int a = 0; a < 2; ++a) {
    args[a].shape = {2, 4};
    for (int32_t v : a == 0 ? tokens : targets)
      args[a].data.push_back(v);
  }
  // Parameters are irrelevant to the range check; any values do.
  std::map<std::string, reference::Array> params;
  for (const ParamInfo &p : (*session)->params()) {
    reference::Array &array = params[p.name];
    array.shape = p.shape;
    array.data.assign(array.numElements(), 0.01);
  }
  auto out =
      reference::evaluate(**module, "loss", args, [&](llvm::StringRef name) {
        auto it = params.find(name.str());
        return it == params.end() ? nullptr : &it->second;
      });
  return out ? "" : llvm::toString(out.takeError());
}

TEST(InputCheck, TokenIdOutOfRangeIsAnError) {
  Model model = open();
  std::vector<int32_t> tokens = valid(8);
  tokens[5] = 5000; // [1, 1]
  auto out = model.call("logits", {ids(tokens, {2, 4})});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find(
                "argument 'tokens' of 'logits': value 5000 at [1, 1] is "
                "outside [0, 300) (the ids of an embedding table of 300 rows)"),
            std::string::npos)
      << out.status().message();
  EXPECT_NE(referenceError(tokens, valid(8)).find("out of range"),
            std::string::npos);
}

TEST(InputCheck, TargetNeitherClassNorIgnoreIndexIsAnError) {
  Model model = open();
  std::vector<int32_t> targets = valid(8);
  targets[6] = -5; // [1, 2]
  auto out = model.call("loss", {ids(valid(8), {2, 4}), ids(targets, {2, 4})});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find(
                "argument 'targets' of 'loss': value -5 at [1, 2] is outside "
                "[0, 300) or -100"),
            std::string::npos)
      << out.status().message();
  EXPECT_NE(referenceError(valid(8), targets), "");
  targets[6] = 777;
  EXPECT_FALSE(
      model.call("loss", {ids(valid(8), {2, 4}), ids(targets, {2, 4})}).ok());
}

TEST(InputCheck, IgnoreIndexAndValidValuesRun) {
  Model model = open();
  std::vector<int32_t> targets = valid(8);
  targets[0] = targets[7] = -100;
  auto out = model.call("loss", {ids(valid(8), {2, 4}), ids(targets, {2, 4})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_TRUE(std::isfinite((*out)[0].data<float>()[0]));
  EXPECT_EQ(referenceError(valid(8), targets), "");
}

TEST(InputCheck, LengthBeyondThePositionTableIsACompileError) {
  Model model = open();
  auto out = model.call("logits", {ids(valid(100), {1, 100})});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find(
                "positions arange(100) index an embedding table of 64 rows"),
            std::string::npos)
      << out.status().message();
  EXPECT_NE(out.status().message().find("examples/gpt.loom"), std::string::npos)
      << "located at the model's embedding call: " << out.status().message();
}

} // namespace
