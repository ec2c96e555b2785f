//===- gpt_host.cpp - Embedding a Loom model in a C++ program -------------===//
//
//   gpt_host [MODEL.loom] [CHECKPOINT.safetensors]
//
// Compiles the GPT example, initializes (or loads) its parameters, runs
// `logits` on a batch of token ids and prints a summary: the shape, the
// mean predicted-token log-probability and the time per call.
//
//===----------------------------------------------------------------------===//

#include "loom/Checkpoint.h"
#include "loom/Model.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

int main(int argc, char **argv) {
  std::string path = argc > 1 ? argv[1] : LOOM_EXAMPLES_DIR "/gpt.loom";
  loom::CompileOptions options;
  options.seed = 1234;
  auto model = loom::compile(path, options);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().message().c_str());
    return 1;
  }
  if (argc > 2) {
    loom::Status loaded = model->loadCheckpoint(argv[2]);
    if (!loaded.ok()) {
      std::fprintf(stderr, "%s\n", loaded.message().c_str());
      return 1;
    }
  }
  std::printf("model: %s, %zu parameter tensors, %.1f MB\n", path.c_str(),
              model->params().size(), model->params().totalBytes() / 1e6);

  // tokens: [B, T] below the vocabulary size of 256.
  const int64_t batch = 4, steps = 64;
  loom::Tensor tokens = loom::Tensor::empty(loom::DType::I32, {batch, steps});
  std::mt19937 rng(7);
  for (int64_t i = 0; i < tokens.numel(); ++i)
    tokens.data<int32_t>()[i] = static_cast<int32_t>(rng() % 256);

  auto first = model->call("logits", {tokens});
  if (!first.ok()) {
    std::fprintf(stderr, "%s\n", first.status().message().c_str());
    return 1;
  }
  auto start = std::chrono::steady_clock::now();
  const int calls = 5;
  for (int i = 0; i < calls; ++i)
    if (!model->call("logits", {tokens}).ok())
      return 1;
  double perCall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count() /
      calls;

  // Mean log-softmax of the next token: ~ -log(256) for untrained weights.
  const loom::Tensor &logits = (*first)[0]; // [B, T, V]
  int64_t vocab = logits.dim(2);
  double total = 0;
  for (int64_t row = 0; row < batch * steps; ++row) {
    const float *x = logits.data<float>() + row * vocab;
    double max = x[0], sum = 0;
    for (int64_t v = 0; v < vocab; ++v)
      max = std::max<double>(max, x[v]);
    for (int64_t v = 0; v < vocab; ++v)
      sum += std::exp(x[v] - max);
    int32_t next = tokens.data<int32_t>()[(row + 1) % (batch * steps)];
    total += x[next] - max - std::log(sum);
  }
  std::printf("logits: %s, mean next-token log-prob %.4f (uniform: %.4f)\n",
              logits.shapeString().c_str(), total / (batch * steps),
              -std::log(double(vocab)));
  std::printf("compile: %.2f s for %u specialization(s); per call: %.2f ms\n",
              model->compileSeconds(), model->compileCount(), perCall * 1e3);
  return 0;
}
