//===- loom-opt.cpp - IR in, IR out, for lit tests ------------------------===//
//
// The loom dialect, the upstream dialects it lowers to, and every upstream and
// loom pass and pipeline, behind MlirOptMain.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/CpuPipeline.h"
#include "codegen/nvptx/NvptxPipeline.h"
#include "ir/LoomDialect.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  // Upstream and loom passes, loom-prepare-pipeline, loom-cpu-pipeline,
  // loom-nvptx-pipeline.
  loom::registerCpuPipeline();
  loom::registerNvptxPipeline();

  // The CPU dialects with their interface extensions (inlining into LLVM
  // functions among them), as loomc and the JIT register them.
  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  loom::registerCpuDialects(registry);
  loom::registerNvptxDialects(registry);
  registry.insert<loom::LoomDialect>();

  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "Loom optimizer driver\n", registry));
}
