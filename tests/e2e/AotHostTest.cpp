//===- AotHostTest.cpp - The ahead-of-time host computes what the JIT does ===//
//
// examples/host/aot_host links GPT's `logits` compiled ahead of time
// (`loomc compile --emit=obj|header`, B 2, T 16, d 64, 2 layers, 2 heads)
// with the runtime and kernels only. Here the JIT computes the same logits
// from the same random parameters (handed over as a checkpoint) and tokens.
//
//===----------------------------------------------------------------------===//

#include "tests/TempDir.h"
#include "tests/e2e/RandomCall.h"

#include "loom/Model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>

using namespace loom;
using loom::testing::TempDir;

namespace {

TEST(AotHost, MatchesTheJit) {
  CompileOptions options;
  options.config = {{"d", "64"}, {"layers", "2"}, {"heads", "2"}};
  auto model = loom::compile(LOOM_SOURCE_DIR "/examples/gpt.loom", options);
  ASSERT_TRUE(model.ok()) << model.status().message();
  std::mt19937 rng(3);
  loom::testing::randomizeParams(model->params(), rng, 0.2f);
  TempDir dir("loom-aot-host");
  std::string ckpt = dir.file("gpt.safetensors"), out = dir.file("out.bin");
  ASSERT_TRUE(model->saveCheckpoint(ckpt).ok());
  std::string command = std::string(LOOM_AOT_HOST) + " " + ckpt + " " + out +
                        " 5 > " + dir.file("log.txt") + " 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0)
      << std::ifstream(dir.file("log.txt")).rdbuf();

  const int batch = 2, steps = 16, vocab = 256;
  Tensor tokens = Tensor::empty(DType::I32, {batch, steps});
  for (int i = 0; i < batch * steps; ++i)
    tokens.data<int32_t>()[i] = (i * 37 + 5 * 11) % vocab;
  auto jit = model->call("logits", {tokens});
  ASSERT_TRUE(jit.ok()) << jit.status().message();
  std::vector<float> aot(batch * steps * vocab);
  std::ifstream in(out, std::ios::binary);
  in.read(reinterpret_cast<char *>(aot.data()), aot.size() * sizeof(float));
  ASSERT_TRUE(in) << "short output";
  const float *want = jit->at(0).data<float>();
  double worst = 0;
  for (size_t i = 0; i < aot.size(); ++i)
    worst = std::max(worst, std::abs(double(aot[i]) - want[i]) /
                                (1 + std::abs(double(want[i]))));
  EXPECT_LT(worst, 1e-5);
}

} // namespace
