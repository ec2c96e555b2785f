//===- Passes.cpp - loom pipelines ----------------------------------------===//
//
// Pipelines are assembled here, in C++, and registered so that loom-opt runs
// exactly what loomc runs.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

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

void loom::registerAllPassesAndPipelines() {
  registerLoomPasses();
  PassPipelineRegistration<PreparePipelineCLOptions>(
      "loom-prepare-pipeline",
      "Specialize, canonicalize, CSE and count FLOPs on loom IR",
      [](OpPassManager &pm, const PreparePipelineCLOptions &cl) {
        PreparePipelineOptions options;
        options.bind.assign(cl.bind.begin(), cl.bind.end());
        buildPreparePipeline(pm, options);
      });
}
