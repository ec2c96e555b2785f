//===- Passes.cpp - loom pipelines ----------------------------------------===//
//
// Pipelines are assembled here, in C++, and registered so that loom-opt runs
// exactly what loomc runs.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

#include <mutex>

using namespace mlir;

LogicalResult loom::reinferResultTypes(Operation *op) {
  auto infer = llvm::dyn_cast<InferTypeOpInterface>(op);
  if (!infer)
    return success();
  SmallVector<Type> types;
  if (failed(infer.inferReturnTypes(
          op->getContext(), op->getLoc(), op->getOperands(),
          op->getRawDictionaryAttrs(), op->getPropertiesStorage(),
          op->getRegions(), types)))
    return failure();
  for (auto [value, type] : llvm::zip_equal(op->getResults(), types))
    value.setType(type);
  return success();
}

namespace {
struct PreparePipelineCLOptions
    : public PassPipelineOptions<PreparePipelineCLOptions> {
  ListOption<std::string> bind{*this, "bind",
                               llvm::cl::desc("Dim bindings NAME=VALUE")};
};
} // namespace

void loom::buildPreparePipeline(OpPassManager &pm,
                                const PreparePipelineOptions &options) {
  if (!options.bind.empty()) {
    LoomSpecializeOptions specialize;
    specialize.bind.assign(options.bind.begin(), options.bind.end());
    pm.addPass(createLoomSpecialize(specialize));
  }
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  pm.addNestedPass<func::FuncOp>(createLoomCountFlops());
}

std::vector<std::string>
loom::linalgStages(const LinalgStagesOptions &options) {
  std::vector<std::string> stages;
  auto join = [](const std::vector<std::string> &parts) {
    std::string text;
    for (const std::string &part : parts)
      text += (text.empty() ? "" : ",") + part;
    return text;
  };
  if (!options.bind.empty())
    stages.push_back("loom-specialize{bind=" + join(options.bind) + "}");
  if (!options.decode.empty())
    stages.push_back("loom-derive-decode{" + options.decode + "}");
  stages.push_back("canonicalize,cse");
  if (!options.autodiff.empty())
    stages.push_back("loom-autodiff{" + options.autodiff +
                     "},canonicalize,cse");
  stages.push_back("func.func(loom-count-flops)");
  stages.push_back("loom-materialize-parameters");
  if (!options.optimizer.empty())
    stages.push_back("loom-optimizer{" + options.optimizer + "}");
  // (A decode step's caches are updated in place through the calls of
  // outlined layers only with inter-procedural bufferization; not yet.)
  if (options.outlineLayers && options.decode.empty())
    stages.push_back(
        std::string("loom-outline-layers{head-views=") +
        (options.keepAttention && options.keepHeadViews ? "1" : "0") + "}");
  if (!options.autodiff.empty())
    stages.push_back("func.func(loom-fuse-cross-entropy)");
  stages.push_back(
      std::string("func.func(loom-lower-to-linalg{keep-attention=") +
      (options.keepAttention ? "1" : "0") +
      " keep-head-views=" + (options.keepHeadViews ? "1" : "0") + "})");
  stages.push_back("canonicalize,cse");
  stages.push_back("func.func(loom-fuse-elementwise)");
  stages.push_back("canonicalize,cse");
  return stages;
}

void loom::registerAllPassesAndPipelines() {
  static std::once_flag once;
  std::call_once(once, [] {
    mlir::registerAllPasses();
    registerLoomPasses();
    PassPipelineRegistration<PreparePipelineCLOptions>(
        "loom-prepare-pipeline",
        "Specialize, canonicalize, CSE and count FLOPs on loom IR",
        [](OpPassManager &pm, const PreparePipelineCLOptions &cl) {
          PreparePipelineOptions options;
          options.bind.assign(cl.bind.begin(), cl.bind.end());
          buildPreparePipeline(pm, options);
        });
  });
}
