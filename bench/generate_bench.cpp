//===- generate_bench.cpp - Tokens per second of KV-cache generation ------===//
//
//   loom_generate_bench CKPT TEXT [--batch B] [--prompt N] [--new N]
//                       [--repeats R] [--window N] [--config k=v,...]
//
// GPT (examples/gpt.loom with the checkpoint's weights) generates greedily:
// B prompts of N bytes taken from TEXT at fixed offsets, one prefill, then
// --new decode steps through the derived decode step (loom::Generator).
// Prints one line: the median prefill time, the decode tokens/s (B x new /
// decode time, medians over --repeats), and the generated ids of sequence 0
// (for comparing with the peer's greedy text). With --window N > 0 it also
// times what `loomc sample` does, the full forward over a [B, ctx] window
// per token, for N tokens.
//
//===----------------------------------------------------------------------===//

#include "loom/Generator.h"
#include "loom/Model.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace loom;
using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int32_t argmax(const float *row, int64_t n) {
  return int32_t(std::max_element(row, row + n) - row);
}

int fail(const std::string &message) {
  std::fprintf(stderr, "loom_generate_bench: %s\n", message.c_str());
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 3)
    return fail("usage: loom_generate_bench CKPT TEXT [--batch B] [--prompt "
                "N] [--new N] [--repeats R] [--window N] [--config k=v,...]");
  std::string ckpt = argv[1], textPath = argv[2];
  int64_t batch = 1, promptLen = 32, fresh = 224, repeats = 5, window = 0;
  CompileOptions options;
  for (int i = 3; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--batch")
      batch = std::atoll(value.c_str());
    else if (flag == "--prompt")
      promptLen = std::atoll(value.c_str());
    else if (flag == "--new")
      fresh = std::atoll(value.c_str());
    else if (flag == "--repeats")
      repeats = std::atoll(value.c_str());
    else if (flag == "--window")
      window = std::atoll(value.c_str());
    else if (flag == "--config") {
      std::stringstream entries(value);
      std::string entry;
      while (std::getline(entries, entry, ',')) {
        size_t eq = entry.find('=');
        if (eq == std::string::npos)
          return fail("--config expects k=v, got '" + entry + "'");
        options.config[entry.substr(0, eq)] = entry.substr(eq + 1);
      }
    } else
      return fail("unknown flag " + flag);
  }
  std::ifstream in(textPath, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  if (int64_t(text.size()) < batch * 997 + promptLen)
    return fail("text too short: " + textPath);

  auto model = loom::compile(LOOM_EXAMPLES_DIR "/gpt.loom", options);
  if (!model.ok())
    return fail(model.status().message());
  if (Status s = model->loadCheckpoint(ckpt); !s.ok())
    return fail(s.message());
  std::vector<std::vector<int32_t>> prompts(batch);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < promptLen; ++i)
      prompts[b].push_back(static_cast<unsigned char>(text[b * 997 + i]));

  GeneratorOptions gopts;
  gopts.batch = batch;
  gopts.capacity = promptLen + fresh;
  auto gen = Generator::create(*model, gopts);
  if (!gen.ok())
    return fail(gen.status().message());
  int64_t vocab = gen->vocabSize();
  std::vector<double> prefillTimes, decodeTimes;
  std::vector<int32_t> ids;
  for (int64_t rep = 0; rep <= repeats; ++rep) { // the first is warm-up
    auto t0 = Clock::now();
    auto logits = gen->prefill(prompts);
    if (!logits.ok())
      return fail(logits.status().message());
    auto t1 = Clock::now();
    std::vector<int32_t> next(batch);
    ids.clear();
    for (int64_t n = 0; n < fresh; ++n) {
      for (int64_t b = 0; b < batch; ++b)
        next[b] = argmax(logits->data<float>() + b * vocab, vocab);
      ids.push_back(next[0]);
      if (n + 1 == fresh)
        break;
      logits = gen->step(next);
      if (!logits.ok())
        return fail(logits.status().message());
    }
    auto t2 = Clock::now();
    if (rep > 0) {
      prefillTimes.push_back(seconds(t0, t1));
      decodeTimes.push_back(seconds(t1, t2));
    }
  }
  double decode = median(decodeTimes);
  std::printf("loom batch=%lld prefill_ms=%.3f decode_tps=%.1f "
              "ms_per_step=%.4f cache_mb=%.2f",
              (long long)batch, median(prefillTimes) * 1e3,
              batch * fresh / decode, decode / fresh * 1e3,
              gen->cacheBytes() / 1e6);

  if (window > 0) {
    // What `loomc sample` does: the whole window recomputed per token.
    int64_t ctx = promptLen + fresh;
    Tensor tokens = Tensor::empty(DType::I32, {batch, ctx});
    std::vector<std::vector<int32_t>> seqs = prompts;
    auto run = [&](int64_t count) -> bool {
      for (int64_t n = 0; n < count; ++n) {
        for (int64_t b = 0; b < batch; ++b)
          for (int64_t i = 0; i < ctx; ++i)
            tokens.data<int32_t>()[b * ctx + i] =
                i < int64_t(seqs[b].size()) ? seqs[b][i] : 0;
        auto out = model->call("logits", {tokens});
        if (!out.ok())
          return false;
        for (int64_t b = 0; b < batch; ++b) {
          int64_t last = int64_t(seqs[b].size()) - 1;
          seqs[b].push_back(argmax(
              out->at(0).data<float>() + (b * ctx + last) * vocab, vocab));
        }
      }
      return true;
    };
    if (!run(1))
      return fail("window forward failed");
    auto t0 = Clock::now();
    if (!run(window))
      return fail("window forward failed");
    std::printf(" window_tps=%.1f", batch * window / seconds(t0, Clock::now()));
  }
  std::printf(" ids=");
  for (size_t i = 0; i < ids.size(); ++i)
    std::printf("%s%d", i ? "," : "", ids[i]);
  std::printf("\n");
  return 0;
}
