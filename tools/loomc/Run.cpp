//===- Run.cpp - `loomc run`: one entry function on random inputs ---------===//
//
// Compiles FUNCTION for the bound dims, initializes the parameters from a
// seed (or loads a checkpoint), draws random inputs in their valid range
// (token ids below the vocabulary they index, and so on), runs the JIT code
// and prints each output's shape and statistics.
//
//===----------------------------------------------------------------------===//

#include "tools/loomc/Run.h"

#include "driver/Session.h"
#include "ir/LoomOps.h"

#include "loom/Checkpoint.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <cmath>
#include <random>

using namespace loom;

namespace {

/// The exclusive upper bound of valid values for integer argument `arg`:
/// the rows of a table it indexes, the classes of targets it labels.
int64_t validRange(mlir::BlockArgument arg) {
  int64_t bound = std::numeric_limits<int64_t>::max();
  for (mlir::Operation *user : arg.getUsers()) {
    if (auto emb = llvm::dyn_cast<loom::EmbeddingOp>(user))
      bound = std::min(bound, emb.getTable().getType().getDimSize(0));
    if (auto ce = llvm::dyn_cast<loom::CrossEntropyOp>(user))
      if (ce.getTargets() == arg)
        bound = std::min(
            bound, llvm::cast<mlir::RankedTensorType>(ce.getLogits().getType())
                       .getShape()
                       .back());
  }
  return bound == std::numeric_limits<int64_t>::max() ? 2 : bound;
}

void printStats(llvm::raw_ostream &os, const driver::ArgSpec &spec,
                const Tensor &t) {
  os << "  " << spec.name << ": " << dtypeName(t.dtype()) << t.shapeString();
  if (t.dtype() != DType::F32 || t.numel() == 0) {
    os << "\n";
    return;
  }
  const float *x = t.data<float>();
  double sum = 0, sq = 0, lo = x[0], hi = x[0];
  for (int64_t i = 0; i < t.numel(); ++i) {
    sum += x[i];
    sq += double(x[i]) * x[i];
    lo = std::min<double>(lo, x[i]);
    hi = std::max<double>(hi, x[i]);
  }
  double mean = sum / t.numel();
  double var = std::max(0.0, sq / t.numel() - mean * mean);
  os << llvm::format("  mean %.6g  std %.6g  min %.6g  max %.6g", mean,
                     std::sqrt(var), lo, hi);
  os << "  first:";
  for (int64_t i = 0; i < std::min<int64_t>(4, t.numel()); ++i)
    os << llvm::format(" %.6g", x[i]);
  os << "\n";
}

} // namespace

int loom::tools::runFunction(const RunOptions &options) {
  driver::SessionOptions sessionOptions;
  sessionOptions.includeDirs = options.includeDirs;
  sessionOptions.model = options.model;
  sessionOptions.config = options.config;
  sessionOptions.useCache = options.diskCache;
  sessionOptions.tensorCores = options.tensorCores;
  if (options.target == "cuda")
    sessionOptions.target = driver::Target::Cuda;
  auto session = driver::Session::open(options.file, sessionOptions);
  if (!session) {
    llvm::errs() << "loomc: error: " << llvm::toString(session.takeError())
                 << "\n";
    return 1;
  }
  if (!(*session)->findFunction(options.function)) {
    llvm::errs() << "loomc: error: no function '" << options.function
                 << "' in '" << options.file << "'\n";
    return 1;
  }
  auto compiled = (*session)->get(options.function, options.bindings);
  if (!compiled) {
    llvm::errs() << llvm::toString(compiled.takeError()) << "\n";
    return 1;
  }
  driver::CompiledFunction &fn = **compiled;

  auto store = ParamStore::create((*session)->params());
  if (!store.ok()) {
    llvm::errs() << "loomc: error: " << store.status().message() << "\n";
    return 1;
  }
  Status ready = options.checkpoint.empty()
                     ? store->initialize(options.seed)
                     : loadCheckpoint(options.checkpoint, *store);
  if (!ready.ok()) {
    llvm::errs() << "loomc: error: " << ready.message() << "\n";
    return 1;
  }

  // Random inputs in their valid ranges.
  auto func = fn.loomModule->lookupSymbol<mlir::func::FuncOp>(options.function);
  std::mt19937_64 rng(options.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < fn.signature.inputs.size(); ++i) {
    const driver::ArgSpec &spec = fn.signature.inputs[i];
    Tensor t = Tensor::empty(spec.dtype, spec.shape);
    switch (spec.dtype) {
    case DType::F32:
      for (int64_t j = 0; j < t.numel(); ++j)
        t.data<float>()[j] = normal(rng);
      break;
    case DType::I32: {
      int64_t range = validRange(func.getArgument(i));
      for (int64_t j = 0; j < t.numel(); ++j)
        t.data<int32_t>()[j] = static_cast<int32_t>(rng() % range);
      break;
    }
    case DType::I64:
      for (int64_t j = 0; j < t.numel(); ++j)
        t.data<int64_t>()[j] = static_cast<int64_t>(options.seed);
      break;
    case DType::Bool:
      for (int64_t j = 0; j < t.numel(); ++j)
        static_cast<uint8_t *>(t.rawData())[j] = rng() & 1;
      break;
    default:
      llvm::errs() << "loomc: error: cannot make random inputs of type "
                   << dtypeName(spec.dtype) << " for '" << spec.name << "'\n";
      return 1;
    }
    inputs.push_back(std::move(t));
  }

  std::vector<Tensor> outputs;
  std::vector<void *> pointers = {store->data()};
  for (Tensor &t : inputs)
    pointers.push_back(t.rawData());
  for (const driver::ArgSpec &spec : fn.signature.outputs) {
    outputs.push_back(Tensor::empty(spec.dtype, spec.shape));
    pointers.push_back(outputs.back().rawData());
  }
  auto start = std::chrono::steady_clock::now();
  if (fn.gpu) {
    if (Status s = fn.gpu->run(options.function, pointers); !s.ok()) {
      llvm::errs() << "loomc: error: " << s.message() << "\n";
      return 1;
    }
  } else if (llvm::Error err = fn.jit->call(options.function, pointers)) {
    llvm::errs() << "loomc: error: " << llvm::toString(std::move(err)) << "\n";
    return 1;
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();

  llvm::outs() << options.function << ": compiled in "
               << llvm::format("%.2f", fn.compileSeconds) << " s, ran in "
               << llvm::format("%.2f", seconds * 1e3) << " ms";
  if (fn.gpu)
    llvm::outs() << llvm::format(" (kernels %.3f ms on the GPU)",
                                 fn.gpu->lastKernelMilliseconds());
  if (fn.flops > 0)
    llvm::outs() << llvm::format(" (%.2f GFLOP/s)", fn.flops / seconds / 1e9);
  llvm::outs() << "\ninputs:\n";
  for (size_t i = 0; i < inputs.size(); ++i)
    printStats(llvm::outs(), fn.signature.inputs[i], inputs[i]);
  llvm::outs() << "outputs:\n";
  for (size_t i = 0; i < outputs.size(); ++i)
    printStats(llvm::outs(), fn.signature.outputs[i], outputs[i]);
  return 0;
}
