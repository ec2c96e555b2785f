//===- ModelTest.cpp - The loom::compile / Model runtime API --------------===//

#include "loom/Model.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <unistd.h>

namespace {

/// A temporary .loom file holding `source`.
struct TempLoom {
  explicit TempLoom(const std::string &source) {
    char name[] = "/tmp/loom-model-test-XXXXXX.loom";
    int fd = mkstemps(name, 5);
    path = name;
    std::string text = source;
    (void)!write(fd, text.data(), text.size());
    close(fd);
  }
  ~TempLoom() { std::remove(path.c_str()); }
  std::string path;
};

const char *kSource = R"(
model Mlp(d = 8, h = 16) {
  param w1: f32[d, h] = normal(0.5)
  param b1: f32[h] = normal(0.1)
  param w2: f32[h, d] = normal(0.5)
  fn f(x: f32[B, d]) -> f32[B, d] { return tanh(x @ w1 + b1) @ w2 }
  fn g(x: f32[B, d], y: f32[B, d]) -> f32 { return mean((f(x) - y) * (f(x) - y)) }
}
)";

loom::Tensor randomTensor(std::vector<int64_t> shape, unsigned seed) {
  loom::Tensor t = loom::Tensor::empty(loom::DType::F32, std::move(shape));
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data<float>()[i] = normal(rng);
  return t;
}

TEST(ModelTest, CompilesOncePerShapeAndChecksInputs) {
  TempLoom file(kSource);
  auto model = loom::compile(file.path, {});
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_EQ(model->params().size(), 3u);
  ASSERT_EQ(model->functions().size(), 2u);
  EXPECT_EQ(model->functions()[0].inputs[0].dims,
            (std::vector<std::string>{"B", "8"}));

  loom::Tensor x = randomTensor({3, 8}, 1);
  auto first = model->call("f", {x});
  ASSERT_TRUE(first.ok()) << first.status().message();
  auto second = model->call("f", {x});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(model->compileCount(), 1u) << "same shapes must not recompile";
  EXPECT_EQ(std::memcmp((*first)[0].rawData(), (*second)[0].rawData(),
                        (*first)[0].nbytes()),
            0);
  ASSERT_TRUE(model->call("f", {randomTensor({5, 8}, 2)}).ok());
  EXPECT_EQ(model->compileCount(), 2u) << "a new B is a new specialization";

  auto badRank = model->call("f", {randomTensor({8}, 3)});
  ASSERT_FALSE(badRank.ok());
  EXPECT_NE(badRank.status().message().find(
                "argument 'x' of 'f': expected f32[B, 8], got shape [8]"),
            std::string::npos)
      << badRank.status().message();
  auto badDim =
      model->call("g", {randomTensor({3, 8}, 4), randomTensor({4, 8}, 5)});
  ASSERT_FALSE(badDim.ok());
  EXPECT_NE(badDim.status().message().find(
                "argument 'y' of 'g': dim 0 is 4 but B = 3 from argument 'x'"),
            std::string::npos)
      << badDim.status().message();
  loom::Tensor ids = loom::Tensor::empty(loom::DType::I32, {3, 8});
  auto badType = model->call("f", {ids});
  ASSERT_FALSE(badType.ok());
  EXPECT_NE(
      badType.status().message().find("expected f32[B, 8], got dtype i32"),
      std::string::npos)
      << badType.status().message();
  EXPECT_FALSE(model->call("nope", {x}).ok());
}

TEST(ModelTest, CheckpointRoundTripGivesIdenticalOutputs) {
  TempLoom file(kSource);
  loom::CompileOptions options;
  options.seed = 11;
  auto model = loom::compile(file.path, options);
  ASSERT_TRUE(model.ok()) << model.status().message();
  loom::Tensor x = randomTensor({2, 8}, 6);
  auto before = model->call("f", {x});
  ASSERT_TRUE(before.ok());
  std::string path = file.path + ".safetensors";
  ASSERT_TRUE(model->saveCheckpoint(path).ok());
  ASSERT_TRUE(model->params().initialize(99).ok()); // different weights
  auto changed = model->call("f", {x});
  ASSERT_TRUE(changed.ok());
  EXPECT_NE(std::memcmp((*before)[0].rawData(), (*changed)[0].rawData(),
                        (*before)[0].nbytes()),
            0);
  loom::Status loaded = model->loadCheckpoint(path);
  ASSERT_TRUE(loaded.ok()) << loaded.message();
  auto after = model->call("f", {x});
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(std::memcmp((*before)[0].rawData(), (*after)[0].rawData(),
                        (*before)[0].nbytes()),
            0);
  std::remove(path.c_str());
}

TEST(ModelTest, ReportsSourceErrors) {
  TempLoom file("model M { fn f(x: f32[B]) { return undefined } }");
  auto model = loom::compile(file.path, {});
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("unknown name 'undefined'"),
            std::string::npos)
      << model.status().message();
}

} // namespace
