//===- ConcurrencyTest.cpp - One compiled function called from 8 threads --===//
//
// A small GPT's `loss` and its AdamW training step, each called 8 x 25 times
// from 8 threads at once on 16 different inputs (the parameter buffer shared
// read-only), give the results of serial calls on the same inputs: each
// concurrent caller runs on its own linked copy of the code and so its own
// workspaces (JitModule::call).
//
//===----------------------------------------------------------------------===//

#include "driver/Session.h"
#include "tests/e2e/RandomCall.h"

#include "loom/Params.h"
#include "loom/Tensor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <thread>

using namespace loom;

namespace {

constexpr int kCases = 16, kThreads = 8, kCallsPerThread = 25;

/// The outputs of `fn` on input case `c` (inputs from seed 1000 + c).
std::vector<float> callOnCase(driver::CompiledFunction &fn, void *params,
                              int c) {
  return loom::testing::callOnSeededInputs(fn, params, 1000 + c);
}

TEST(Concurrency, CallsFromEightThreadsMatchSerialCalls) {
  driver::SessionOptions options = loom::testing::smallGptOptions();
  auto session =
      driver::Session::open(LOOM_SOURCE_DIR "/examples/gpt.loom", options);
  ASSERT_TRUE(bool(session)) << llvm::toString(session.takeError());
  auto store = ParamStore::create((*session)->params());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(store->initialize(3).ok());

  driver::Variant step;
  step.kind = driver::Variant::TrainStep;
  for (const driver::Variant &variant : {driver::Variant(), step}) {
    auto fn = (*session)->get("loss", {{"B", 2}, {"T", 8}}, variant);
    ASSERT_TRUE(bool(fn)) << llvm::toString(fn.takeError());
    SCOPED_TRACE((*fn)->entry);
    std::vector<std::vector<float>> serial;
    for (int c = 0; c < kCases; ++c) {
      serial.push_back(callOnCase(**fn, store->data(), c));
      ASSERT_FALSE(serial.back().empty());
      ASSERT_TRUE(std::isfinite(serial.back().front()));
    }
    std::atomic<int> mismatches{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        for (int r = 0; r < kCallsPerThread; ++r) {
          int c = (t * 7 + r) % kCases;
          std::vector<float> got = callOnCase(**fn, store->data(), c);
          if (got.size() != serial[c].size()) {
            ++mismatches;
            continue;
          }
          for (size_t i = 0; i < got.size(); ++i)
            if (std::abs(got[i] - serial[c][i]) >
                1e-5f * (1.0f + std::abs(serial[c][i]))) {
              ++mismatches;
              break;
            }
        }
      });
    for (std::thread &thread : threads)
      thread.join();
    EXPECT_EQ(mismatches.load(), 0)
        << "of " << kThreads * kCallsPerThread << " concurrent calls";
    EXPECT_LE((*fn)->jit->instanceCount(), size_t(kThreads))
        << "at most one linked copy per concurrent caller";
  }
}

} // namespace
