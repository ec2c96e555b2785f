//===- StreamingStoresTest.cpp - Non-temporal outputs, the same bits ------===//
//
// loom-cpu-streaming-stores writes large outputs with non-temporal stores
// (and a fence per thread): the values must be those of ordinary stores.
// With the threshold at 0 every qualifying write of a small GPT's AdamW
// step (its parameters and moments, updated in place) and of its gradient
// is written so; the results (the updated state included) match a session
// without such stores bit for bit.
//
//===----------------------------------------------------------------------===//

#include "driver/Session.h"
#include "tests/e2e/RandomCall.h"

#include "loom/Params.h"

#include <gtest/gtest.h>

#include <cstring>

using namespace loom;

namespace {

std::unique_ptr<driver::Session> gptSession(int64_t streamingStoreBytes) {
  driver::SessionOptions options = loom::testing::smallGptOptions();
  options.streamingStoreBytes = streamingStoreBytes;
  auto session =
      driver::Session::open(LOOM_SOURCE_DIR "/examples/gpt.loom", options);
  if (!session) {
    ADD_FAILURE() << llvm::toString(session.takeError());
    return nullptr;
  }
  return std::move(*session);
}

TEST(StreamingStores, SameBitsAsOrdinaryStores) {
  auto streaming = gptSession(0), ordinary = gptSession(-1);
  ASSERT_TRUE(streaming && ordinary);
  auto store = ParamStore::create(streaming->params());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(store->initialize(7).ok());
  driver::Variant gradient, step;
  gradient.kind = driver::Variant::Gradient;
  step.kind = driver::Variant::TrainStep;
  for (const driver::Variant &variant : {gradient, step}) {
    auto a = streaming->get("loss", {{"B", 2}, {"T", 8}}, variant);
    auto b = ordinary->get("loss", {{"B", 2}, {"T", 8}}, variant);
    ASSERT_TRUE(bool(a)) << llvm::toString(a.takeError());
    ASSERT_TRUE(bool(b)) << llvm::toString(b.takeError());
    SCOPED_TRACE((*a)->entry);
    // (The step's update loop meets a fence once its stores stream.)
    if (variant.kind == driver::Variant::TrainStep)
      EXPECT_GT((*a)->llvm.instructions, (*b)->llvm.instructions);
    for (uint32_t seed : {1u, 2u, 3u}) {
      std::vector<float> x =
          loom::testing::callOnSeededInputs(**a, store->data(), seed);
      std::vector<float> y =
          loom::testing::callOnSeededInputs(**b, store->data(), seed);
      ASSERT_FALSE(x.empty());
      ASSERT_EQ(x.size(), y.size());
      EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)), 0)
          << "seed " << seed;
    }
  }
}

} // namespace
