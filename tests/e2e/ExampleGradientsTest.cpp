//===- ExampleGradientsTest.cpp - Gradients of the example losses ---------===//
//
// For each example model's loss (small configurations), three checks of the
// derived gradient function `loss_grad`:
//
// 1. the reference evaluator's `loss_grad` (double precision) against
//    central finite differences of the reference `loss`, on a random sample
//    of parameter elements: relative error below 1e-4;
// 2. the JIT-compiled gradient (f32, packed in the parameter layout)
//    against the reference `loss_grad`, for every parameter element;
// 3. the JIT loss equals the reference loss.
//
// Parameters and inputs are random (never zeros or constants).
//
//===----------------------------------------------------------------------===//

#include "driver/Session.h"
#include "passes/Passes.h"
#include "reference/Evaluator.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>

using namespace loom;
using reference::Array;

namespace {

struct ExampleLoss {
  const char *file;
  const char *model;
  const char *function;
  std::map<std::string, std::string> config;
  std::map<std::string, int64_t> bindings;
  /// Input name -> [lo, hi) of its integer values; `special` replaces a
  /// value with probability 0.25 when set.
  std::map<std::string, std::pair<int64_t, int64_t>> ranges;
  std::map<std::string, int64_t> special;
};

const std::vector<ExampleLoss> &losses() {
  static const std::vector<ExampleLoss> list = {
      {"gpt.loom",
       "",
       "loss",
       {{"vocab", "32"},
        {"ctx", "16"},
        {"d", "16"},
        {"heads", "2"},
        {"layers", "2"}},
       {{"B", 2}, {"T", 6}},
       {{"tokens", {0, 32}}, {"targets", {0, 32}}},
       {}},
      {"bert.loom",
       "",
       "loss",
       {{"vocab", "32"},
        {"ctx", "16"},
        {"d", "16"},
        {"heads", "2"},
        {"layers", "1"}},
       {{"B", 2}, {"T", 6}},
       {{"tokens", {1, 32}},
        {"segments", {0, 2}},
        {"mlm_targets", {0, 32}},
        {"nsp_labels", {0, 2}}},
       {{"tokens", 0}, {"mlm_targets", -100}}},
      {"bert.loom",
       "",
       "finetune_loss",
       {{"vocab", "32"},
        {"ctx", "16"},
        {"d", "16"},
        {"heads", "2"},
        {"layers", "1"},
        {"classes", "3"}},
       {{"B", 3}, {"T", 5}},
       {{"tokens", {1, 32}}, {"segments", {0, 2}}, {"labels", {0, 3}}},
       {{"tokens", 0}}},
      // DistilBERT's objective: soft teacher scores (a float input) and
      // hard labels.
      {"hf/bert.loom",
       "",
       "distill_loss",
       {{"vocab", "32"},
        {"ctx", "16"},
        {"d", "16"},
        {"heads", "2"},
        {"layers", "1"},
        {"classes", "3"},
        {"temperature", "2.5"},
        {"alpha", "0.7"}},
       {{"B", 3}, {"T", 5}},
       {{"tokens", {1, 32}}, {"segments", {0, 2}}, {"labels", {0, 3}}},
       {{"tokens", 0}}},
      // ALBERT: three uses of one shared layer (their gradients add up)
      // and the factorized embedding.
      {"hf/albert.loom",
       "",
       "finetune_loss",
       {{"vocab", "32"},
        {"ctx", "16"},
        {"embed", "8"},
        {"d", "16"},
        {"heads", "2"},
        {"layers", "3"},
        {"ffn", "32"},
        {"classes", "3"}},
       {{"B", 3}, {"T", 5}},
       {{"tokens", {1, 32}}, {"segments", {0, 2}}, {"labels", {0, 3}}},
       {{"tokens", 0}}},
      {"transformer.loom",
       "",
       "loss",
       {{"src_vocab", "16"},
        {"tgt_vocab", "16"},
        {"d", "16"},
        {"heads", "2"},
        {"layers", "1"}},
       {{"B", 2}, {"S", 5}, {"T", 4}},
       {{"src", {1, 16}}, {"tgt_in", {1, 16}}, {"tgt_out", {1, 16}}},
       {{"src", 0}, {"tgt_out", 0}}},
      {"seq2seq_lstm.loom",
       "Seq2Seq",
       "loss",
       {{"src_vocab", "16"},
        {"tgt_vocab", "16"},
        {"emb", "8"},
        {"hidden", "12"}},
       {{"B", 2}, {"S", 5}, {"T", 4}},
       {{"src", {1, 16}}, {"tgt_in", {1, 16}}, {"tgt_out", {1, 16}}},
       {{"src", 0}, {"tgt_out", 0}}},
      {"seq2seq_lstm.loom",
       "Seq2SeqKQV",
       "loss",
       {{"src_vocab", "16"},
        {"tgt_vocab", "16"},
        {"emb", "8"},
        {"hidden", "12"}},
       {{"B", 2}, {"S", 5}, {"T", 4}},
       {{"src", {1, 16}}, {"tgt_in", {1, 16}}, {"tgt_out", {1, 16}}},
       {{"src", 0}, {"tgt_out", 0}}},
  };
  return list;
}

std::string caseName(const ExampleLoss &e) {
  std::string name = e.file;
  name = name.substr(0, name.find('.'));
  std::replace(name.begin(), name.end(), '/', '_');
  if (*e.model)
    name += std::string("_") + e.model;
  return name + "_" + e.function;
}

class ExampleGradients : public ::testing::TestWithParam<size_t> {};

TEST_P(ExampleGradients, MatchFiniteDifferencesAndReference) {
  const ExampleLoss &e = losses()[GetParam()];
  driver::SessionOptions options;
  options.model = e.model;
  options.config = e.config;
  auto session = driver::Session::open(
      std::string(LOOM_SOURCE_DIR) + "/examples/" + e.file, options);
  ASSERT_TRUE(bool(session)) << llvm::toString(session.takeError());
  driver::Session &s = **session;

  // The forward module and, from a copy, the gradient module.
  auto forward = s.generate(e.function, e.bindings);
  ASSERT_TRUE(bool(forward)) << llvm::toString(forward.takeError());
  mlir::OwningOpRef<mlir::ModuleOp> gradModule((*forward)->clone());
  mlir::PassManager pm(&s.getContext());
  loom::LoomAutodiffOptions autodiff;
  autodiff.function = e.function;
  pm.addPass(loom::createLoomAutodiff(autodiff));
  ASSERT_TRUE(mlir::succeeded(pm.run(*gradModule)));
  std::string gradName = std::string(e.function) + "_grad";

  // Random parameters and inputs.
  std::mt19937_64 rng(1234 + GetParam());
  std::normal_distribution<double> normal(0.0, 0.4);
  std::map<std::string, Array> params;
  for (const ParamInfo &info : s.params()) {
    Array a;
    a.shape = info.shape;
    a.data.resize(a.numElements());
    for (double &x : a.data)
      x = float(normal(rng)); // representable in f32 for the JIT
    params[info.name] = a;
  }
  const driver::Signature *sig = s.findFunction(e.function);
  ASSERT_NE(sig, nullptr);
  std::vector<Array> inputs;
  for (const driver::ArgSpec &arg : sig->inputs) {
    Array a;
    for (const std::string &dim : arg.dims) {
      auto it = e.bindings.find(dim);
      a.shape.push_back(it != e.bindings.end() ? it->second : std::stoll(dim));
    }
    a.data.resize(a.numElements());
    if (!e.ranges.count(arg.name)) { // a float input (teacher scores)
      std::normal_distribution<double> scores(0.0, 1.5);
      for (double &x : a.data)
        x = float(scores(rng));
      inputs.push_back(a);
      continue;
    }
    auto [lo, hi] = e.ranges.at(arg.name);
    std::uniform_int_distribution<int64_t> pick(lo, hi - 1);
    std::bernoulli_distribution replace(0.25);
    auto special = e.special.find(arg.name);
    for (double &x : a.data)
      x = special != e.special.end() && replace(rng) ? special->second
                                                     : pick(rng);
    inputs.push_back(a);
  }
  auto lookup = [&](llvm::StringRef name) -> const Array * {
    auto it = params.find(name.str());
    return it == params.end() ? nullptr : &it->second;
  };

  auto ref = reference::evaluate(*gradModule, gradName, inputs, lookup);
  ASSERT_TRUE(bool(ref)) << llvm::toString(ref.takeError());
  std::vector<Array> &refOut = *ref;
  ASSERT_EQ(refOut.size(), s.params().size() + 1);

  // 1. Finite differences on a sample of parameter elements.
  auto lossAt = [&]() {
    auto out = reference::evaluate(**forward, e.function, inputs, lookup);
    EXPECT_TRUE(bool(out));
    return out ? (*out)[0].data[0] : NAN;
  };
  double worstFd = 0, maxGrad = 0;
  for (size_t i = 0; i < s.params().size(); ++i)
    for (double g : refOut[i + 1].data)
      maxGrad = std::max(maxGrad, std::abs(g));
  ASSERT_GT(maxGrad, 0.0);
  std::uniform_int_distribution<size_t> pickParam(0, s.params().size() - 1);
  for (int sample = 0; sample < 24; ++sample) {
    size_t p = pickParam(rng);
    const std::string &name = s.params()[p].name;
    Array &a = params[name];
    std::uniform_int_distribution<size_t> pickElement(0, a.data.size() - 1);
    size_t k = pickElement(rng);
    double saved = a.data[k];
    double h = 1e-5 * std::max(1.0, std::abs(saved));
    a.data[k] = saved + h;
    double up = lossAt();
    a.data[k] = saved - h;
    double down = lossAt();
    a.data[k] = saved;
    double fd = (up - down) / (2 * h);
    double ad = refOut[p + 1].data[k];
    double err = std::abs(fd - ad) / std::max(std::abs(ad), 1e-3 * maxGrad);
    worstFd = std::max(worstFd, err);
    EXPECT_LT(err, 1e-4) << name << "[" << k << "]: finite difference " << fd
                         << ", autodiff " << ad;
  }

  // 2. and 3. The JIT gradient against the reference.
  driver::Variant variant;
  variant.kind = driver::Variant::Gradient;
  auto compiled = s.get(e.function, e.bindings, variant);
  ASSERT_TRUE(bool(compiled)) << llvm::toString(compiled.takeError());
  driver::CompiledFunction &fn = **compiled;
  std::vector<ParamInfo> layout = s.params();
  ASSERT_TRUE(ParamStore::layout(layout).ok());
  std::vector<float> flat(fn.paramBytes / 4, 0.0f);
  for (const ParamInfo &info : layout) {
    const Array &a = params[info.name];
    for (size_t k = 0; k < a.data.size(); ++k)
      flat[info.offset / 4 + k] = float(a.data[k]);
  }
  // Each input in its own dtype (i32 ids and labels, f32 scores).
  std::vector<std::vector<int32_t>> intInputs;
  std::vector<std::vector<float>> floatInputs;
  intInputs.reserve(inputs.size());
  floatInputs.reserve(inputs.size());
  std::vector<void *> pointers = {flat.data()};
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Array &a = inputs[i];
    if (sig->inputs[i].dtype == DType::F32) {
      floatInputs.emplace_back(a.data.begin(), a.data.end());
      pointers.push_back(floatInputs.back().data());
    } else {
      intInputs.emplace_back(a.data.begin(), a.data.end());
      pointers.push_back(intInputs.back().data());
    }
  }
  float loss = 0;
  std::vector<float> grads(flat.size(), NAN);
  pointers.push_back(&loss);
  pointers.push_back(grads.data());
  ASSERT_FALSE(bool(fn.jit->call(fn.entry, pointers)));
  EXPECT_NEAR(loss, refOut[0].data[0],
              1e-4 * std::max(1.0, std::abs(double(loss))));
  double worstJit = 0;
  for (size_t p = 0; p < layout.size(); ++p) {
    const ParamInfo &info = layout[p];
    for (size_t k = 0; k < refOut[p + 1].data.size(); ++k) {
      double err =
          std::abs(grads[info.offset / 4 + k] - refOut[p + 1].data[k]) /
          maxGrad;
      worstJit = std::max(worstJit, err);
      ASSERT_LT(err, 1e-4) << info.name << "[" << k << "]: JIT "
                           << grads[info.offset / 4 + k] << ", reference "
                           << refOut[p + 1].data[k];
    }
  }
  std::printf("[grad] %-28s params %zu  FD rel err %.2e  JIT err/max|g| "
              "%.2e  compile %.1fs\n",
              caseName(e).c_str(), s.params().size(), worstFd, worstJit,
              fn.compileSeconds);
}

INSTANTIATE_TEST_SUITE_P(Examples, ExampleGradients,
                         ::testing::Range<size_t>(0, losses().size()),
                         [](const ::testing::TestParamInfo<size_t> &info) {
                           return caseName(losses()[info.param]);
                         });

} // namespace
