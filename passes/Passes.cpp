//===- Passes.cpp - loom pipelines ----------------------------------------===//
//
// Pipelines are assembled here, in C++, and registered so that loom-opt runs
// exactly what loomc runs.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

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
