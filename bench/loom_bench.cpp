//===- loom_bench.cpp - Time one compiled entry function ------------------===//
//
//   loom_bench FILE FUNCTION B=8,T=256 [REPEATS] [--model NAME]
//              [--train [sgd|adam|adamw]] [--config NAME=VALUE,...]
//              [--no-gemm-kernel] [--opt LEVEL] [--grad] [--time-passes]
//              [--no-outline] [--no-cache] [--no-streaming-stores]
//   loom_bench --kernels     (the kernels' ISA on this host: amx, avx512, ...)
//
// With --train, FUNCTION is a loss and what is timed is the whole compiled
// training step (forward, backward and the fused optimizer update); with
// --grad, the loss and its gradient.
//
// Compiles FUNCTION for the bindings (reporting compile time), then calls it
// REPEATS times (default 11) on fixed random inputs and prints the median,
// min and max time per call and the GFLOP/s of the median (from the
// compiler's FLOP count). Run it with nothing else on the machine.
//
//===----------------------------------------------------------------------===//

#include "driver/Session.h"

#include "loom/Kernels.h"

#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <random>
#include <string_view>

using namespace loom;

int main(int argc, char **argv) {
  if (argc == 2 && std::string_view(argv[1]) == "--kernels") {
    std::printf("%s\n", loom_sgemm_isa());
    return 0;
  }
  if (argc < 4) {
    std::fprintf(stderr, "usage: loom_bench FILE FUNCTION B=8,T=256 [REPEATS] "
                         "[--model NAME]\n");
    return 2;
  }
  driver::SessionOptions options;
  driver::Variant variant;
  int repeats = 11;
  for (int i = 4; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--model" && i + 1 < argc)
      options.model = argv[++i];
    else if (arg == "--opt" && i + 1 < argc)
      options.optLevel = unsigned(std::atoi(argv[++i]));
    else if (arg == "--no-cache")
      options.useCache = false;
    else if (arg == "--no-outline")
      options.outlineLayers = false;
    else if (arg == "--time-passes")
      options.timePasses = true;
    else if (arg == "--no-gemm-kernel")
      options.gemmKernel = false;
    else if (arg == "--no-gemm-epilogues")
      options.gemmEpilogues = false;
    else if (arg == "--no-streaming-stores")
      options.streamingStoreBytes = -1;
    else if (arg == "--grad")
      variant.kind = driver::Variant::Gradient;
    else if (arg == "--train") {
      variant.kind = driver::Variant::TrainStep;
      if (i + 1 < argc && argv[i + 1][0] != '-' &&
          !std::isdigit(argv[i + 1][0]))
        variant.optimizer = std::string("kind=") + argv[++i];
    } else if (arg == "--config" && i + 1 < argc) {
      llvm::SmallVector<llvm::StringRef> items;
      llvm::StringRef(argv[++i]).split(items, ',', -1, false);
      for (llvm::StringRef item : items) {
        auto [name, value] = item.split('=');
        options.config[name.str()] = value.str();
      }
    } else
      repeats = std::max(1, std::atoi(argv[i]));
  }
  std::map<std::string, int64_t> bindings;
  llvm::SmallVector<llvm::StringRef> entries;
  llvm::StringRef(argv[3]).split(entries, ',', -1, false);
  for (llvm::StringRef entry : entries) {
    auto [name, value] = entry.split('=');
    int64_t v = 0;
    if (value.getAsInteger(10, v)) {
      std::fprintf(stderr, "bad binding '%s'\n", entry.str().c_str());
      return 2;
    }
    bindings[name.str()] = v;
  }
  auto session = driver::Session::open(argv[1], options);
  if (!session) {
    llvm::errs() << llvm::toString(session.takeError()) << "\n";
    return 1;
  }
  auto compiled = (*session)->get(argv[2], bindings, variant);
  if (!compiled) {
    llvm::errs() << llvm::toString(compiled.takeError()) << "\n";
    return 1;
  }
  driver::CompiledFunction &fn = **compiled;
  auto store = ParamStore::create((*session)->params());
  if (!store.ok() || !store->initialize(1).ok())
    return 1;

  std::mt19937_64 rng(5);
  std::vector<Tensor> buffers;
  std::vector<void *> pointers = {store->data()};
  for (const driver::ArgSpec &spec : fn.signature.inputs) {
    Tensor t = Tensor::empty(spec.dtype, spec.shape);
    int64_t n = t.numel();
    if (spec.name == "m" || spec.name == "v")
      std::fill_n(t.data<float>(), n, spec.name == "m" ? 0.0f : 1e-4f);
    else if (spec.name == "hyper")
      for (int64_t i = 0; i < n; ++i)
        t.data<float>()[i] = i == 0 ? 1e-4f : 0.5f; // lr, 1 - beta^t
    else if (spec.dtype == DType::F32)
      for (int64_t i = 0; i < n; ++i)
        t.data<float>()[i] = std::normal_distribution<float>()(rng);
    else if (spec.dtype == DType::I32)
      for (int64_t i = 0; i < n; ++i)
        t.data<int32_t>()[i] = static_cast<int32_t>(rng() % 32); // < any vocab
    else if (spec.dtype == DType::Bool)
      std::fill_n(static_cast<uint8_t *>(t.rawData()), n, uint8_t(1));
    pointers.push_back(t.rawData());
    buffers.push_back(std::move(t));
  }
  for (const driver::ArgSpec &spec : fn.signature.outputs) {
    buffers.push_back(Tensor::empty(spec.dtype, spec.shape));
    pointers.push_back(buffers.back().rawData());
  }
  std::vector<double> times;
  for (int i = 0; i < repeats + 1; ++i) { // the first call warms caches
    auto start = std::chrono::steady_clock::now();
    if (llvm::Error err = fn.jit->call(fn.entry, pointers)) {
      llvm::errs() << llvm::toString(std::move(err)) << "\n";
      return 1;
    }
    double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    if (i > 0)
      times.push_back(s);
    else
      loom_gemm_trace_reset(); // LOOM_GEMM_TRACE: the timed calls only
  }
  std::sort(times.begin(), times.end());
  double median = times[times.size() / 2];
  std::printf("%s %s %s: compile %.2f s%s (frontend %.2f, MLIR %.2f, LLVM IR "
              "%.2f, LLVM %.2f of which optimizer %.2f CPU, link %.2f; %zu "
              "LLVM instructions); per call median %.2f ms (min %.2f, max "
              "%.2f, %d calls)",
              argv[1], fn.entry.c_str(), argv[3], fn.compileSeconds,
              fn.fromDiskCache ? " from the disk cache" : "",
              fn.frontendSeconds, fn.mlirSeconds, fn.llvm.translateSeconds,
              fn.llvm.llvmSeconds, fn.llvm.optimizeSeconds, fn.linkSeconds,
              fn.llvm.instructions, median * 1e3, times.front() * 1e3,
              times.back() * 1e3, repeats);
  if (fn.flops > 0)
    std::printf("; %.1f GFLOP/s", fn.flops / median / 1e9);
  std::printf("\n");
  return 0;
}
