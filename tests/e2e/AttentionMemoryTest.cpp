//===- AttentionMemoryTest.cpp - No [T x T] tensor or buffer at long T ----===//
//
// GPT at B = 1, T = 4096 through the whole CPU pipeline for its `loss`, the
// loss's gradient and an AdamW training step: after every pass, no value in
// the module has a tensor or buffer type with two dims of 4096 (attention
// runs as flash attention kernel calls, one [64 x 64] block at a time).
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/CpuPipeline.h"
#include "driver/Session.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassInstrumentation.h"
#include "mlir/Pass/PassManager.h"

#include <gtest/gtest.h>

#include <string>

using namespace loom;

namespace {

constexpr int64_t kT = 4096;

/// Records the first value whose type has two dims of kT, and the pass
/// after which it appeared.
struct SquareFinder : mlir::PassInstrumentation {
  std::string *found;
  explicit SquareFinder(std::string *found) : found(found) {}
  void runAfterPass(mlir::Pass *pass, mlir::Operation *op) override {
    if (!found->empty())
      return;
    op->walk([&](mlir::Operation *inner) {
      for (mlir::Type t : llvm::concat<const mlir::Type>(
               inner->getOperandTypes(), inner->getResultTypes())) {
        auto shaped = llvm::dyn_cast<mlir::ShapedType>(t);
        if (!shaped || !shaped.hasRank())
          continue;
        if (llvm::count(shaped.getShape(), kT) >= 2 && found->empty()) {
          std::string s;
          llvm::raw_string_ostream os(s);
          os << "after " << pass->getName() << ": " << inner->getName()
             << " has type " << t;
          *found = s;
        }
      }
    });
  }
};

void expectNoSquare(driver::Session &session, const std::string &autodiff,
                    const std::string &optimizer) {
  auto module = session.generate("loss", {{"B", 1}, {"T", kT}});
  ASSERT_TRUE(bool(module)) << llvm::toString(module.takeError());
  CpuPipelineOptions options;
  options.autodiff = autodiff;
  options.optimizer = optimizer;
  mlir::PassManager pm(&session.getContext());
  ASSERT_TRUE(mlir::succeeded(buildCpuPipeline(pm, options)));
  std::string found;
  pm.addInstrumentation(std::make_unique<SquareFinder>(&found));
  ASSERT_TRUE(mlir::succeeded(pm.run(**module)));
  EXPECT_EQ(found, "") << "autodiff '" << autodiff << "', optimizer '"
                       << optimizer << "'";
}

/// A small GPT (d 64, one layer) whose context holds T = kT.
llvm::Expected<std::unique_ptr<driver::Session>> openLongGpt() {
  driver::SessionOptions options;
  options.config = {{"ctx", std::to_string(kT)},
                    {"d", "64"},
                    {"heads", "2"},
                    {"layers", "1"},
                    {"vocab", "64"}};
  return driver::Session::open(
      std::string(LOOM_SOURCE_DIR) + "/examples/gpt.loom", options);
}

TEST(AttentionMemory, GptAtT4096HasNoTByTBuffer) {
  auto session = openLongGpt();
  ASSERT_TRUE(bool(session)) << llvm::toString(session.takeError());
  expectNoSquare(**session, "", "");
  expectNoSquare(**session, "function=loss", "");
  expectNoSquare(**session, "function=loss", "function=loss_grad kind=adamw");
}

/// The same check fails on the linalg path that materializes the scores,
/// so the test above can tell the two apart.
TEST(AttentionMemory, UntiledPathHasTheSquare) {
  auto session = openLongGpt();
  ASSERT_TRUE(bool(session)) << llvm::toString(session.takeError());
  auto module = (*session)->generate("loss", {{"B", 1}, {"T", kT}});
  ASSERT_TRUE(bool(module)) << llvm::toString(module.takeError());
  CpuPipelineOptions pipeline;
  pipeline.attentionKernel = false;
  pipeline.stopAfter = "linalg";
  mlir::PassManager pm(&(*session)->getContext());
  ASSERT_TRUE(mlir::succeeded(buildCpuPipeline(pm, pipeline)));
  std::string found;
  pm.addInstrumentation(std::make_unique<SquareFinder>(&found));
  ASSERT_TRUE(mlir::succeeded(pm.run(**module)));
  EXPECT_NE(found, "");
}

} // namespace
