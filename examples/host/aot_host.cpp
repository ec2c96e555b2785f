//===- aot_host.cpp - A model linked ahead of time, no LLVM or MLIR -------===//
//
//   aot_host CHECKPOINT OUT.bin [SEED]
//
// Links the object that `loomc compile --emit=obj` made of GPT's `logits`
// (B 2, T 16, a small configuration; see examples/CMakeLists.txt) and calls
// it through the generated header: the parameters come from a Loom
// checkpoint (read with the runtime library, which has no LLVM or MLIR),
// the token ids from SEED; the logits go to OUT.bin as raw floats. Prints
// the shape, a checksum and the time per call.
//
//===----------------------------------------------------------------------===//

#include "gpt_logits.h"

#include "loom/Checkpoint.h"
#include "loom/Params.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char **argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: aot_host CHECKPOINT OUT.bin [SEED]\n");
    return 2;
  }
  // The parameter table of the header, laid out as the object expects.
  std::vector<loom::ParamInfo> infos;
  for (const auto &p : loom_logits_params) {
    loom::ParamInfo info;
    info.name = p.name;
    info.shape.assign(p.shape, p.shape + p.rank);
    infos.push_back(info);
  }
  auto store = loom::ParamStore::create(infos);
  if (!store.ok() || store->totalBytes() != LOOM_LOGITS_PARAM_BYTES) {
    std::fprintf(stderr, "aot_host: parameter layout mismatch\n");
    return 1;
  }
  for (size_t i = 0; i < store->size(); ++i)
    if (int64_t(store->param(i).offset) != loom_logits_params[i].offset) {
      std::fprintf(stderr, "aot_host: offset of %s differs\n",
                   loom_logits_params[i].name);
      return 1;
    }
  if (loom::Status s = loom::loadCheckpoint(argv[1], *store); !s.ok()) {
    std::fprintf(stderr, "aot_host: %s\n", s.message().c_str());
    return 1;
  }
  const int batch = 2, steps = 16, vocab = 256;
  unsigned seed = argc > 3 ? unsigned(std::atoi(argv[3])) : 1;
  std::vector<int32_t> tokens(batch * steps);
  for (size_t i = 0; i < tokens.size(); ++i)
    tokens[i] = int32_t((i * 37 + seed * 11) % vocab);
  std::vector<float> out(batch * steps * vocab);
  const float *params = reinterpret_cast<const float *>(store->data());
  logits(params, tokens.data(), out.data());
  auto start = std::chrono::steady_clock::now();
  const int calls = 20;
  for (int i = 0; i < calls; ++i)
    logits(params, tokens.data(), out.data());
  double perCall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count() /
      calls;
  double sum = 0;
  for (float x : out)
    sum += x;
  std::FILE *file = std::fopen(argv[2], "wb");
  if (!file ||
      std::fwrite(out.data(), sizeof(float), out.size(), file) != out.size()) {
    std::fprintf(stderr, "aot_host: cannot write %s\n", argv[2]);
    return 1;
  }
  std::fclose(file);
  std::printf("logits [%d, %d, %d], sum %.6f, %.3f ms per call\n", batch, steps,
              vocab, sum, perCall * 1e3);
  return 0;
}
