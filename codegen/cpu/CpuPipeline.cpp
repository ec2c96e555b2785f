//===- CpuPipeline.cpp - loom IR to LLVM for the host CPU -----------------===//
//
// The pipeline is spelled as text so that `loom-opt --loom-cpu-pipeline`,
// `loomc --dump-after` and this file always agree on what runs.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/CpuPipeline.h"
#include "codegen/cpu/Passes.h"

#include "passes/Passes.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/OpenMP/OpenMPToLLVMIRTranslation.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <mutex>

using namespace mlir;

std::string loom::cpuPipelineText(const CpuPipelineOptions &options) {
  LinalgStagesOptions front;
  front.bind = options.bind;
  front.decode = options.decode;
  front.autodiff = options.autodiff;
  front.optimizer = options.optimizer;
  front.outlineLayers = options.outlineLayers;
  front.keepAttention = options.attentionKernel;
  front.keepHeadViews = options.attentionKernel;
  // On loom IR, then to fused linalg on tensors.
  std::vector<std::string> stages = linalgStages(front);
  if (options.gemmKernel)
    stages.push_back("func.func(loom-cpu-prepare-gemms)");
  if (options.gemmKernel && options.gemmEpilogues)
    stages.push_back("func.func(loom-cpu-fuse-gemm-epilogues)");
  if (options.stopAfter == "linalg")
    return llvm::join(stages, ",");
  // Register blocks and vectors, on tensors.
  int threads = llvm::sys::fs::exists(kOpenMPRuntime) ? options.threads : 1;
  stages.push_back("func.func(loom-cpu-tile-and-vectorize{threads=" +
                   std::to_string(threads) +
                   " gemm-kernel=" + (options.gemmKernel ? "1" : "0") + "})");
  stages.push_back("canonicalize,cse");
  // Attention as flash-attention kernel calls on buffers, right before
  // bufferization: a canonicalization in between would fold the buffers
  // handed back as tensors into their later readers, out of the analysis'
  // sight.
  if (options.attentionKernel)
    stages.push_back("loom-cpu-attention-to-call{block-q=" +
                     std::to_string(options.attentionBlockQ) + " block-k=" +
                     std::to_string(options.attentionBlockK) + "}");
  // Buffers: outputs become caller-provided arguments, temporaries are
  // freed when they die.
  stages.push_back("one-shot-bufferize{bufferize-function-boundaries "
                   "allow-return-allocs-from-loops "
                   "function-boundary-type-conversion=identity-layout-map}");
  // Canonicalization folds the results of loops that wrote their buffer in
  // place (scf.for yielding its iter_arg) to the buffer itself, so that a
  // returned one is the memref.alloc that buffer-results-to-out-params
  // replaces with the caller's buffer. Left as a loop result, each was
  // copied into the out-param after the fact: every saved activation of
  // an outlined layer's forward and every gradient of its backward (and,
  // before the training step updated them in place, its parameters and
  // Adam moments: 3 x 500 MB per GPT-2-small step).
  stages.push_back("canonicalize");
  // Results updated in place (a decode step's caches, a training step's
  // parameters and moments) leave the signature.
  stages.push_back("loom-drop-updated-results");
  stages.push_back("loom-cpu-return-allocations");
  stages.push_back("func.func(loom-distinct-results)");
  stages.push_back("buffer-results-to-out-params{hoist-static-allocs=true "
                   "modify-public-functions=true}");
  stages.push_back("canonicalize,cse");
  stages.push_back("func.func(loom-cpu-concat-in-place)");
  stages.push_back("loom-cpu-plan-workspace");
  // Dynamic-ownership deallocation calls a generated helper with dynamic
  // memrefs, which the bare-pointer convention cannot express: inline it.
  stages.push_back("buffer-deallocation-pipeline,inline,symbol-dce");
  // Contractions call the packed GEMM kernel (after deallocation, which
  // would otherwise free a buffer between reading its address and the call).
  if (options.gemmKernel)
    stages.push_back(
        "loom-cpu-gemm-to-call{threads=" + std::to_string(threads) + "}");
  // What was not vectorized becomes loops; vectors become LLVM vectors.
  stages.push_back("func.func(convert-linalg-to-loops)");
  stages.push_back("func.func(lower-vector-multi-reduction{lowering-strategy="
                   "inner-reduction},convert-vector-to-scf{full-unroll=true})");
  // Large outputs (a gradient, a training step's parameters and moments
  // updated in place) bypass the caches.
  if (options.streamingStoreBytes >= 0)
    stages.push_back("func.func(loom-cpu-streaming-stores{min-bytes=" +
                     std::to_string(options.streamingStoreBytes) + "})");
  // Thread-level loops to OpenMP (memrefs reach LLVM before scf leaves).
  stages.push_back("func.func(scf-forall-to-parallel),convert-scf-to-openmp");
  stages.push_back("lower-affine,expand-strided-metadata,lower-affine");
  stages.push_back("finalize-memref-to-llvm,convert-scf-to-cf");
  // Math first: libm calls for vector math (erf) are scalarized into vector
  // ops that vector-to-llvm then lowers. bf16 conversions are expanded to
  // integer ops (the JIT has no compiler-rt for __truncsfbf2).
  stages.push_back("func.func(loom-cpu-approximate-math)");
  stages.push_back("convert-math-to-llvm,convert-math-to-libm");
  stages.push_back("func.func(arith-expand{include-bf16=true})");
  stages.push_back("convert-vector-to-llvm{vector-contract-lowering="
                   "outerproduct vector-transpose-lowering=shuffle1d "
                   "reassociate-fp-reductions}");

  stages.push_back("convert-arith-to-llvm,convert-index-to-llvm,"
                   "convert-cf-to-llvm");
  stages.push_back("convert-func-to-llvm{use-bare-ptr-memref-call-conv=1}");
  stages.push_back("convert-openmp-to-llvm");
  stages.push_back("convert-ub-to-llvm,canonicalize,"
                   "reconcile-unrealized-casts");
  return llvm::join(stages, ",");
}

void loom::registerCpuPipeline() {
  static std::once_flag once;
  std::call_once(once, [] {
    loom::registerAllPassesAndPipelines();
    loom::cpu::registerLoomCpuPasses();
    PassPipelineRegistration<>(
        "loom-cpu-pipeline",
        "Lower loom IR with static shapes to the LLVM dialect for the host",
        [](OpPassManager &pm) {
          (void)buildCpuPipeline(pm, CpuPipelineOptions());
        });
  });
}

LogicalResult loom::buildCpuPipeline(OpPassManager &pm,
                                     const CpuPipelineOptions &options) {
  registerCpuPipeline();
  std::string error;
  llvm::raw_string_ostream os(error);
  if (failed(parsePassPipeline(cpuPipelineText(options), pm, os))) {
    llvm::errs() << "loom: internal error: bad CPU pipeline: " << error << "\n";
    return failure();
  }
  return success();
}

void loom::registerCpuDialects(DialectRegistry &registry) {
  registerAllDialects(registry);
  registerAllExtensions(registry);
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  registerOpenMPDialectTranslation(registry);
}
