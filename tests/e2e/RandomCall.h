//===- RandomCall.h - Call a compiled function on seeded inputs -*- C++ -*-===//

#ifndef LOOM_TESTS_E2E_RANDOMCALL_H
#define LOOM_TESTS_E2E_RANDOMCALL_H

#include "driver/Session.h"

#include "loom/Params.h"
#include "loom/Tensor.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

namespace loom::testing {

/// A small GPT of examples/gpt.loom (d 32, 2 layers, 2 heads, vocab 64,
/// ctx 16) without the disk cache.
inline driver::SessionOptions smallGptOptions() {
  driver::SessionOptions options;
  options.config = {{"d", "32"},
                    {"layers", "2"},
                    {"heads", "2"},
                    {"vocab", "64"},
                    {"ctx", "16"}};
  options.useCache = false;
  return options;
}

/// Every float of `params` (layer-norm gains and biases included) drawn
/// uniformly from [-scale, scale) with `rng`.
inline void randomizeParams(ParamStore &params, std::mt19937 &rng,
                            float scale) {
  std::uniform_real_distribution<float> u(-scale, scale);
  auto *p = reinterpret_cast<float *>(params.data());
  for (size_t i = 0; i < params.totalBytes() / sizeof(float); ++i)
    p[i] = u(rng);
}

/// Calls `fn` with a copy of the parameter buffer `params` and inputs drawn
/// from `seed`: i32 ids below 64, the training step's `hyper` as lr 1e-3
/// and bias corrections 0.1, optimizer state zero. Returns every output,
/// then the parameters and every f32 input as the call left them (a
/// training step updates its parameters and moments in place), flattened
/// into floats (empty after a reported failure).
inline std::vector<float> callOnSeededInputs(driver::CompiledFunction &fn,
                                             const void *params,
                                             uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> ownParams(size_t(fn.paramBytes) / sizeof(float));
  std::memcpy(ownParams.data(), params, size_t(fn.paramBytes));
  std::vector<Tensor> buffers;
  std::vector<void *> pointers = {ownParams.data()};
  for (const driver::ArgSpec &spec : fn.signature.inputs) {
    Tensor t = Tensor::empty(spec.dtype, spec.shape);
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (spec.dtype == DType::I32)
        t.data<int32_t>()[i] = int32_t(rng() % 64);
      else if (spec.name == "hyper")
        t.data<float>()[i] = i == 0 ? 1e-3f : 0.1f;
    }
    pointers.push_back(t.rawData());
    buffers.push_back(std::move(t));
  }
  size_t firstOutput = buffers.size();
  for (const driver::ArgSpec &spec : fn.signature.outputs) {
    buffers.push_back(Tensor::empty(spec.dtype, spec.shape));
    pointers.push_back(buffers.back().rawData());
  }
  if (llvm::Error err = fn.jit->call(fn.entry, pointers)) {
    ADD_FAILURE() << llvm::toString(std::move(err));
    return {};
  }
  std::vector<float> out;
  auto append = [&](const Tensor &t) {
    for (int64_t j = 0; j < t.numel(); ++j)
      out.push_back(t.dtype() == DType::F32   ? t.data<float>()[j]
                    : t.dtype() == DType::I64 ? float(t.data<int64_t>()[j])
                    : t.dtype() == DType::I32 ? float(t.data<int32_t>()[j])
                                              : 0.0f);
  };
  for (size_t i = firstOutput; i < buffers.size(); ++i)
    append(buffers[i]);
  out.insert(out.end(), ownParams.begin(), ownParams.end());
  for (size_t i = 0; i < firstOutput; ++i)
    if (buffers[i].dtype() == DType::F32)
      append(buffers[i]);
  return out;
}

} // namespace loom::testing

#endif // LOOM_TESTS_E2E_RANDOMCALL_H
