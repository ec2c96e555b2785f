//===- GpuTest.cpp - The NVPTX target: PTX checked by ptxas, GPU runs -----===//
//
// Without a GPU (every CI machine): every example's entry functions, the
// gradient of each loss and its AdamW training step are lowered by the
// NVPTX pipeline for sm_80 and sm_90, and every kernel is assembled by
// ptxas; `ptxas -v` must report no spills (a missing ptxas skips, loudly).
// The same launch plans and kernels run on the CPU (GpuEmulator) and match
// the CPU pipeline's results.
//
// With a GPU (the CUDA driver loads and reports a device): every entry
// function runs on it and matches the reference evaluator, and AdamW steps
// on the GPU match the CPU's. Skipped, with a message, without one.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/CpuPipeline.h"
#include "codegen/nvptx/NvptxPipeline.h"
#include "ir/LoomDialect.h"
#include "tests/TempDir.h"
#include "tests/e2e/ExampleList.h"
#include "tests/e2e/GpuEmulator.h"
#include "tests/e2e/Harness.h"
#include "tests/e2e/RandomCall.h"

#include "loom/Cuda.h"
#include "loom/Model.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>

using namespace loom;
using namespace loom::e2e;

namespace {

enum class Kind { Forward, Gradient, Step };

struct GpuCase {
  size_t example;
  std::string function;
  Kind kind;
  Bindings bindings = {}; // the example's when empty
};

bool isLoss(const std::string &name) {
  return name == "loss" || name == "finetune_loss";
}

std::vector<GpuCase> allCases() {
  std::vector<GpuCase> all;
  for (size_t i = 0; i < examples().size(); ++i)
    for (const std::string &fn : examples()[i].functions) {
      all.push_back({i, fn, Kind::Forward});
      if (isLoss(fn)) {
        all.push_back({i, fn, Kind::Gradient});
        all.push_back({i, fn, Kind::Step});
      }
    }
  return all;
}

std::string caseName(const GpuCase &c) {
  std::string name = exampleName(examples()[c.example]) + "_" + c.function +
                     (c.kind == Kind::Gradient ? "_grad"
                      : c.kind == Kind::Step   ? "_adamw_step"
                                               : "");
  std::replace(name.begin(), name.end(), '.', '_');
  return name;
}

void PrintTo(const GpuCase &c, std::ostream *os) { *os << caseName(c); }

/// The bindings `function` uses, out of the example's.
Bindings bindingsFor(driver::Session &session, const std::string &function,
                     const Bindings &all) {
  Bindings used;
  if (const driver::Signature *sig = session.findFunction(function))
    for (const auto &specs : {sig->inputs, sig->outputs})
      for (const driver::ArgSpec &arg : specs)
        for (const std::string &dim : arg.dims)
          if (auto it = all.find(dim); it != all.end())
            used.insert(*it);
  return used;
}

/// The module of one case after the NVPTX pipeline up to `stopAfter`
/// (errors as a gtest failure).
mlir::OwningOpRef<mlir::ModuleOp>
lowerCase(const GpuCase &gc, const std::string &arch,
          const std::string &stopAfter,
          const std::string &tensorCores = "3xtf32") {
  const Example &e = examples()[gc.example];
  Case c = exampleCase(e, gc.function);
  driver::Session *session = e2e::session(c);
  if (!session) {
    ADD_FAILURE() << "no session for " << e.file;
    return nullptr;
  }
  auto module = session->generate(
      gc.function, bindingsFor(*session, gc.function,
                               gc.bindings.empty() ? e.bindings : gc.bindings));
  if (!module) {
    ADD_FAILURE() << llvm::toString(module.takeError());
    return nullptr;
  }
  NvptxPipelineOptions options;
  options.arch = arch;
  options.stopAfter = stopAfter;
  options.tensorCores = tensorCores;
  if (gc.kind != Kind::Forward)
    options.autodiff = "function=" + gc.function;
  if (gc.kind == Kind::Step)
    options.optimizer = "function=" + gc.function + "_grad kind=adamw";
  driver::DiagnosticCollector collected(&session->getContext());
  mlir::PassManager pm(&session->getContext());
  if (mlir::failed(buildNvptxPipeline(pm, options)) ||
      mlir::failed(pm.run(**module))) {
    ADD_FAILURE() << "the NVPTX pipeline failed for " << caseName(gc) << " ("
                  << arch << "):\n"
                  << collected.text();
    return nullptr;
  }
  return std::move(*module);
}

/// The GPU program of one case for `arch` (errors as a gtest failure).
std::optional<gpu::Program>
compileCase(const GpuCase &gc, const std::string &arch,
            const std::string &tensorCores = "3xtf32") {
  auto module = lowerCase(gc, arch, "ptx", tensorCores);
  if (!module)
    return std::nullopt;
  auto program = extractGpuProgram(*module, arch, "");
  if (!program) {
    ADD_FAILURE() << llvm::toString(program.takeError());
    return std::nullopt;
  }
  return std::move(*program);
}

std::string ptxasPath() {
  if (auto found = llvm::sys::findProgramByName("ptxas"))
    return *found;
  for (const char *dir :
       {"/usr/local/cuda/bin", "/usr/lib/nvidia-cuda-toolkit/bin"})
    if (llvm::sys::fs::can_execute(std::string(dir) + "/ptxas"))
      return std::string(dir) + "/ptxas";
  return "";
}

/// Runs `ptxas -arch=ARCH -v` on `ptx`; returns its exit status and output.
std::pair<int, std::string> assemble(const std::string &ptxas,
                                     const std::string &ptx,
                                     const std::string &arch) {
  loom::testing::TempDir dir("loom-ptx");
  std::string in = dir.file("kernels.ptx"), log = dir.file("ptxas.log");
  { std::ofstream(in) << ptx; }
  std::optional<llvm::StringRef> redirects[] = {std::nullopt, log.c_str(),
                                                log.c_str()};
  std::string archFlag = "-arch=" + arch;
  llvm::StringRef args[] = {ptxas, archFlag, "-v", in, "-o", "/dev/null"};
  int rc = llvm::sys::ExecuteAndWait(ptxas, args, std::nullopt, redirects);
  std::ifstream file(log);
  std::stringstream text;
  text << file.rdbuf();
  return {rc, text.str()};
}

class GpuPtx : public ::testing::TestWithParam<GpuCase> {};

/// Every kernel assembles for sm_80 and sm_90 with no spills; the plan
/// launches only kernels the PTX defines.
TEST_P(GpuPtx, AssemblesWithoutSpills) {
  std::string ptxas = ptxasPath();
  if (ptxas.empty()) {
    std::fprintf(stderr, "\n*** PTXAS NOT FOUND: the generated PTX was NOT "
                         "assembled (install the CUDA toolkit) ***\n\n");
    GTEST_SKIP() << "ptxas not found: the PTX was not checked";
  }
  for (const std::string arch : {"sm_80", "sm_90"}) {
    auto program = compileCase(GetParam(), arch);
    ASSERT_TRUE(program.has_value());
    ASSERT_FALSE(program->ptx.empty());
    ASSERT_EQ(program->functions.size(), 1u);
    const gpu::Function &fn = program->functions.front();
    EXPECT_FALSE(fn.launches.empty());
    for (const gpu::Launch &l : fn.launches)
      EXPECT_NE(program->ptx.find(".entry " + l.kernel + "("),
                std::string::npos)
          << l.kernel << " is launched but not in the PTX";
    auto [rc, log] = assemble(ptxas, program->ptx, arch);
    ASSERT_EQ(rc, 0) << "ptxas rejected the PTX for " << arch << ":\n"
                     << log.substr(0, 4000);
    std::regex spills("entry function '([^']+)'[^]*?(\\d+) bytes spill "
                      "stores, (\\d+) bytes spill loads");
    int kernels = 0, spilling = 0;
    for (auto it = std::sregex_iterator(log.begin(), log.end(), spills);
         it != std::sregex_iterator(); ++it) {
      ++kernels;
      spilling += (*it)[2].str() != "0" || (*it)[3].str() != "0";
      EXPECT_EQ((*it)[2].str(), "0")
          << "spill stores in " << (*it)[1].str() << " (" << arch << ")";
      EXPECT_EQ((*it)[3].str(), "0")
          << "spill loads in " << (*it)[1].str() << " (" << arch << ")";
    }
    // ptxas reports each kernel (and each device function it calls) once.
    std::set<std::string> distinct;
    for (const gpu::Launch &l : fn.launches)
      distinct.insert(l.kernel);
    EXPECT_GE(kernels, int(distinct.size())) << arch;
    std::printf("[gpu] %-40s %s: %zu launches, %d kernels, workspace %lld "
                "bytes, ptxas ok, %s\n",
                caseName(GetParam()).c_str(), arch.c_str(), fn.launches.size(),
                kernels, (long long)fn.workspaceBytes,
                spilling ? (std::to_string(spilling) + " kernels spill").c_str()
                         : "no spills");
  }
}

INSTANTIATE_TEST_SUITE_P(Examples, GpuPtx, ::testing::ValuesIn(allCases()),
                         [](const auto &info) { return caseName(info.param); });

class GpuEmulated : public ::testing::TestWithParam<GpuCase> {};

/// The launch plan and the kernels, run on the CPU (one block, one thread
/// after another), compute what the CPU pipeline computes: every forward
/// function, gradient and AdamW step of the examples, on random
/// parameters and valid random inputs.
TEST_P(GpuEmulated, MatchesTheCpu) {
  const GpuCase &gc = GetParam();
  const Example &e = examples()[gc.example];
  Case c = exampleCase(e, gc.function);
  driver::Session *session = e2e::session(c);
  ASSERT_NE(session, nullptr);
  driver::Variant variant;
  variant.kind = gc.kind == Kind::Forward    ? driver::Variant::Forward
                 : gc.kind == Kind::Gradient ? driver::Variant::Gradient
                                             : driver::Variant::TrainStep;
  if (gc.kind == Kind::Step)
    variant.optimizer = "kind=adamw";
  Bindings bindings = bindingsFor(*session, gc.function, e.bindings);
  auto cpu = session->get(gc.function, bindings, variant);
  ASSERT_TRUE(bool(cpu)) << llvm::toString(cpu.takeError());
  driver::CompiledFunction &fn = **cpu;
  auto module = lowerCase(gc, "sm_90", "kernels");
  ASSERT_TRUE(module);
  auto emulator = GpuEmulator::create(*module);
  ASSERT_TRUE(bool(emulator)) << llvm::toString(emulator.takeError());

  // Parameters, inputs (in their ranges; optimizer moments > 0) and two
  // copies of the outputs.
  auto params = ParamStore::create(session->params());
  ASSERT_TRUE(params.ok());
  std::mt19937 rng(17);
  loom::testing::randomizeParams(params.value(), rng, 0.2f);
  std::vector<Tensor> buffers;
  std::vector<void *> pointers = {params.value().data()};
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (const driver::ArgSpec &spec : fn.signature.inputs) {
    Tensor t = Tensor::empty(spec.dtype, spec.shape);
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (spec.dtype == DType::I32) {
        int64_t lo = spec.range ? spec.range->lo : 0;
        int64_t hi = spec.range ? spec.range->hi : 2;
        t.data<int32_t>()[i] = int32_t(lo + int64_t(rng() % uint64_t(hi - lo)));
      } else if (spec.dtype == DType::F32) {
        float x = u(rng);
        t.data<float>()[i] = spec.name == "hyper" ? (i == 0 ? 1e-3f : 0.1f)
                             : spec.name == "v"   ? 1e-4f * x
                                                  : 0.01f * (x - 0.5f);
      } else if (spec.dtype == DType::I64) {
        t.data<int64_t>()[i] = int64_t(rng() % 1000);
      } else {
        static_cast<uint8_t *>(t.rawData())[i] = rng() & 1;
      }
    }
    pointers.push_back(t.rawData());
    buffers.push_back(std::move(t));
  }
  // The GPU side gets its own copies of the parameters and the inputs: a
  // training step updates its parameters and moments in place, which are
  // compared as outputs.
  auto copyOf = [](const Tensor &t) {
    Tensor copy = Tensor::empty(t.dtype(), t.shape());
    std::memcpy(copy.rawData(), t.rawData(),
                size_t(t.numel()) * dtypeSize(t.dtype()));
    return copy;
  };
  Tensor cpuParams = Tensor::borrow(
      DType::F32, {int64_t(params.value().totalBytes() / sizeof(float))},
      params.value().data());
  Tensor gpuParams = copyOf(cpuParams);
  std::vector<Tensor> gpuInputs;
  std::vector<void *> gpuPointers = {gpuParams.rawData()};
  for (const Tensor &t : buffers) {
    gpuInputs.push_back(copyOf(t));
    gpuPointers.push_back(gpuInputs.back().rawData());
  }
  std::vector<Tensor> cpuOut, gpuOut;
  std::vector<std::string> names;
  for (const driver::ArgSpec &spec : fn.signature.outputs) {
    cpuOut.push_back(Tensor::empty(spec.dtype, spec.shape));
    gpuOut.push_back(Tensor::empty(spec.dtype, spec.shape));
    pointers.push_back(cpuOut.back().rawData());
    gpuPointers.push_back(gpuOut.back().rawData());
    names.push_back(spec.name);
  }
  ASSERT_FALSE(bool(fn.jit->call(fn.entry, pointers)));
  Status ran = (*emulator)->run(fn.entry, gpuPointers);
  ASSERT_TRUE(ran.ok()) << ran.message();
  if (gc.kind == Kind::Step) {
    // What the step updated in place (the plan's arguments: the parameters,
    // then the inputs): the parameters and the moments.
    const gpu::Function *plan = (*emulator)->program().find(fn.entry);
    ASSERT_NE(plan, nullptr);
    ASSERT_TRUE(plan->args.size() > buffers.size() && plan->args[0].updated);
    cpuOut.push_back(cpuParams);
    gpuOut.push_back(gpuParams);
    names.push_back("params");
    int moments = 0;
    for (size_t i = 0; i < buffers.size(); ++i)
      if (plan->args[i + 1].updated) {
        cpuOut.push_back(buffers[i]);
        gpuOut.push_back(gpuInputs[i]);
        names.push_back(fn.signature.inputs[i].name);
        ++moments;
      }
    EXPECT_EQ(moments, fn.optimizerStates) << "updated moments";
  }
  for (size_t k = 0; k < cpuOut.size(); ++k) {
    const std::string &name = names[k];
    if (cpuOut[k].dtype() == DType::I64) { // an index: exactly the CPU's
      EXPECT_EQ(std::memcmp(cpuOut[k].rawData(), gpuOut[k].rawData(),
                            size_t(cpuOut[k].numel()) * sizeof(int64_t)),
                0)
          << name;
      continue;
    }
    if (cpuOut[k].dtype() != DType::F32)
      continue;
    const float *a = cpuOut[k].data<float>();
    const float *b = gpuOut[k].data<float>();
    double scale = 0, worst = 0;
    for (int64_t i = 0; i < cpuOut[k].numel(); ++i)
      scale = std::max(scale, double(std::abs(a[i])));
    for (int64_t i = 0; i < cpuOut[k].numel(); ++i) {
      ASSERT_TRUE(std::isfinite(b[i])) << name << "[" << i << "]";
      worst = std::max(worst, double(std::abs(a[i] - b[i])));
    }
    // f32 sums in another order (the CPU's GEMM blocks, the GPU's one
    // thread per output): the same result to ~1e-5 of the output's scale.
    EXPECT_LE(worst, 2e-5 * scale + 1e-7)
        << name << ": max |gpu - cpu| " << worst << ", scale " << scale;
    std::printf("[gpu-emulated] %-40s %-10s max |gpu - cpu| %.2e (scale "
                "%.2e)\n",
                caseName(gc).c_str(), name.c_str(), worst, scale);
  }
}

INSTANTIATE_TEST_SUITE_P(Examples, GpuEmulated, ::testing::ValuesIn(allCases()),
                         [](const auto &info) { return caseName(info.param); });

/// The manifest round-trips.
/// A context with the CPU's and the NVPTX pipeline's dialects and passes.
std::unique_ptr<mlir::MLIRContext> gpuContext() {
  mlir::DialectRegistry registry;
  registerCpuDialects(registry);
  registerNvptxDialects(registry);
  auto context = std::make_unique<mlir::MLIRContext>(registry);
  context->loadAllAvailableDialects();
  registerNvptxPipeline();
  return context;
}

/// `memref<AxBx...xf32>`.
std::string f32Memref(llvm::ArrayRef<int64_t> dims) {
  std::string t = "memref<";
  for (int64_t d : dims)
    t += std::to_string(d) + "x";
  return t + "f32>";
}

/// The emulator's fibers: a barrier orders the threads' global writes
/// and reads; shuffles (xor, down, up, idx) read the right lane of the
/// right warp of a 64-thread block, with `valid` false past the warp; each
/// block has its own shared memory; a barrier
/// that some threads skip is reported, not hung on.
TEST(GpuEmulator, BarriersAndShuffles) {
  static const char *source = R"mlir(
module attributes {gpu.container_module} {
  func.func @f(%a: memref<128xi32>, %b: memref<128xi32>, %c: memref<256xf32>) {
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c64 = arith.constant 64 : index
    gpu.launch_func @k::@sync blocks in (%c2, %c1, %c1)
        threads in (%c64, %c1, %c1) args(%a : memref<128xi32>,
        %b : memref<128xi32>, %c : memref<256xf32>)
    return
  }
  func.func @shared(%o: memref<128xf32>) {
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c64 = arith.constant 64 : index
    gpu.launch_func @k::@shared blocks in (%c2, %c1, %c1)
        threads in (%c64, %c1, %c1) args(%o : memref<128xf32>)
    return
  }
  func.func @hang(%a: memref<128xi32>) {
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    gpu.launch_func @k::@hang blocks in (%c1, %c1, %c1)
        threads in (%c64, %c1, %c1) args(%a : memref<128xi32>)
    return
  }
  gpu.module @k {
    gpu.func @sync(%a: memref<128xi32>, %b: memref<128xi32>,
                   %c: memref<256xf32>) kernel {
      %c1 = arith.constant 1 : index
      %c2 = arith.constant 2 : index
      %c3 = arith.constant 3 : index
      %c64 = arith.constant 64 : index
      %i3 = arith.constant 3 : i32
      %i5 = arith.constant 5 : i32
      %i32 = arith.constant 32 : i32
      %bid = gpu.block_id x
      %tid = gpu.thread_id x
      %base = arith.muli %bid, %c64 : index
      %me = arith.addi %base, %tid : index
      %v = arith.index_cast %me : index to i32
      memref.store %v, %a[%me] : memref<128xi32>
      gpu.barrier
      // The next thread's value (the block's first for the last thread).
      %t1 = arith.addi %tid, %c1 : index
      %wrap = arith.remui %t1, %c64 : index
      %next = arith.addi %base, %wrap : index
      %n = memref.load %a[%next] : memref<128xi32>
      memref.store %n, %b[%me] : memref<128xi32>
      %f = arith.sitofp %v : i32 to f32
      %x, %xv = gpu.shuffle xor %f, %i5, %i32 : f32
      %d, %dv = gpu.shuffle down %f, %i3, %i32 : f32
      %u, %uv = gpu.shuffle up %v, %i3, %i32 : i32
      %s, %sv = gpu.shuffle idx %f, %i5, %i32 : f32
      %uf = arith.sitofp %u : i32 to f32
      %zero = arith.constant 0.0 : f32
      %dm = arith.select %dv, %d, %zero : f32
      %um = arith.select %uv, %uf, %zero : f32
      %sum1 = arith.addf %x, %dm : f32
      %sum2 = arith.addf %um, %s : f32
      %row = arith.muli %me, %c2 : index
      %row1 = arith.addi %row, %c1 : index
      memref.store %sum1, %c[%row] : memref<256xf32>
      memref.store %sum2, %c[%row1] : memref<256xf32>
      gpu.return
    }
    gpu.func @shared(%o: memref<128xf32>)
        workgroup(%sm : memref<64xf32, #gpu.address_space<workgroup>>)
        kernel {
      %c1 = arith.constant 1 : index
      %c64 = arith.constant 64 : index
      %c1000 = arith.constant 1000 : index
      %bid = gpu.block_id x
      %tid = gpu.thread_id x
      %k = arith.muli %bid, %c1000 : index
      %id = arith.addi %k, %tid : index
      %i = arith.index_cast %id : index to i32
      %v = arith.sitofp %i : i32 to f32
      memref.store %v, %sm[%tid] : memref<64xf32, #gpu.address_space<workgroup>>
      gpu.barrier
      %t1 = arith.addi %tid, %c1 : index
      %next = arith.remui %t1, %c64 : index
      %x = memref.load %sm[%next] : memref<64xf32, #gpu.address_space<workgroup>>
      %base = arith.muli %bid, %c64 : index
      %at = arith.addi %base, %tid : index
      memref.store %x, %o[%at] : memref<128xf32>
      gpu.return
    }
    gpu.func @hang(%a: memref<128xi32>) kernel {
      %c8 = arith.constant 8 : index
      %tid = gpu.thread_id x
      %low = arith.cmpi ult, %tid, %c8 : index
      scf.if %low {
        gpu.barrier
      }
      gpu.return
    }
  }
}
)mlir";
  std::unique_ptr<mlir::MLIRContext> owned = gpuContext();
  mlir::MLIRContext &context = *owned;
  auto module = mlir::parseSourceString<mlir::ModuleOp>(source, &context);
  ASSERT_TRUE(module);
  auto emulator = GpuEmulator::create(*module);
  ASSERT_TRUE(bool(emulator)) << llvm::toString(emulator.takeError());
  std::vector<int32_t> a(128, -1), b(128, -1);
  std::vector<float> c(256, -1.0f);
  Status ran = (*emulator)->run("f", {a.data(), b.data(), c.data()});
  ASSERT_TRUE(ran.ok()) << ran.message();
  for (int t = 0; t < 128; ++t) {
    int block = t / 64, tid = t % 64, lane = tid % 32;
    auto value = [&](int l) { return float(t - lane + l); };
    EXPECT_EQ(a[t], t);
    EXPECT_EQ(b[t], block * 64 + (tid + 1) % 64) << "thread " << t;
    float x = value(lane ^ 5);
    float d = lane + 3 < 32 ? value(lane + 3) : 0.0f;
    float u = lane - 3 >= 0 ? value(lane - 3) : 0.0f;
    float s = value(5);
    EXPECT_EQ(c[2 * t], x + d) << "thread " << t;
    EXPECT_EQ(c[2 * t + 1], u + s) << "thread " << t;
  }
  // Shared memory: each block's own, read after the barrier.
  std::vector<float> o(128, -1.0f);
  ran = (*emulator)->run("shared", {o.data()});
  ASSERT_TRUE(ran.ok()) << ran.message();
  for (int t = 0; t < 128; ++t)
    EXPECT_EQ(o[t], float((t / 64) * 1000 + (t % 64 + 1) % 64)) << t;
  Status hung = (*emulator)->run("hang", {a.data()});
  ASSERT_FALSE(hung.ok());
  EXPECT_NE(hung.message().find("barrier"), std::string::npos)
      << hung.message();
}

/// The tensor-core contraction kernels, emulated, against f64 sums on
/// random operands (C filled with zeros first, as the pipeline's outputs
/// are): plain, B transposed (x @ W^T), A transposed and batched, at sizes that
/// leave partial blocks, warp tiles and k steps (70 x 20 x 40, 33 x 257 x 65,
/// ...); 3xtf32 to f32 accuracy, tf32 to its 10-bit mantissa, bf16 to its 7.
TEST(GpuEmulator, TensorCoreContractions) {
  struct Shape {
    const char *name;
    int64_t batch, m, k, n;
    bool transA, transB;
  };
  const Shape shapes[] = {{"plain", 1, 70, 20, 40, false, false},
                          {"odd", 1, 33, 257, 65, false, false},
                          {"weight_t", 1, 48, 40, 72, false, true},
                          {"lhs_t", 1, 65, 33, 16, true, false},
                          {"batched", 3, 17, 24, 9 + 8, false, false}};
  std::unique_ptr<mlir::MLIRContext> owned = gpuContext();
  mlir::MLIRContext &context = *owned;
  // "bf16 exact": small integers, which bf16 holds exactly, so that any
  // misplaced fragment element shows beyond f32 rounding.
  for (std::string mode : {"3xtf32", "tf32", "bf16", "bf16 exact"})
    for (const Shape &sh : shapes) {
      SCOPED_TRACE(mode + " " + sh.name);
      bool exact = mode == "bf16 exact";
      std::string cores = exact ? "bf16" : mode;
      std::vector<int64_t> aDims =
          sh.transA ? std::vector{sh.k, sh.m} : std::vector{sh.m, sh.k};
      std::vector<int64_t> bDims =
          sh.transB ? std::vector{sh.n, sh.k} : std::vector{sh.k, sh.n};
      std::vector<int64_t> cDims = {sh.m, sh.n};
      std::string mapA = sh.transA ? "(k, m)" : "(m, k)";
      std::string mapB = sh.transB ? "(n, k)" : "(k, n)";
      std::string bdim, bidx;
      if (sh.batch > 1) {
        aDims.insert(aDims.begin(), sh.batch);
        bDims.insert(bDims.begin(), sh.batch);
        cDims.insert(cDims.begin(), sh.batch);
        bdim = "b, ";
        bidx = "parallel, ";
        mapA = "(b, " + mapA.substr(1);
        mapB = "(b, " + mapB.substr(1);
      }
      std::string source =
          "func.func @f(%a: " + f32Memref(aDims) + ", %b: " + f32Memref(bDims) +
          ", %c: " + f32Memref(cDims) +
          ") {\n  %zero = arith.constant 0.0 : f32\n  linalg.fill ins(%zero : "
          "f32) outs(%c : " +
          f32Memref(cDims) + ")\n  linalg.generic {indexing_maps = [" +
          "affine_map<(" + bdim + "m, n, k) -> " + mapA + ">, affine_map<(" +
          bdim + "m, n, k) -> " + mapB + ">, affine_map<(" + bdim +
          "m, n, k) -> (" + bdim + "m, n)>], iterator_types = [\"" +
          (sh.batch > 1 ? std::string("parallel\", \"") : "") +
          "parallel\", \"parallel\", \"reduction\"]} ins(%a, %b : " +
          f32Memref(aDims) + ", " + f32Memref(bDims) +
          ") outs(%c : " + f32Memref(cDims) +
          ") {\n  ^bb0(%x: f32, %y: f32, %acc: f32):\n    %p = arith.mulf "
          "%x, %y : f32\n    %s = arith.addf %acc, %p : f32\n    "
          "linalg.yield %s : f32\n  }\n  return\n}\n";
      auto module = mlir::parseSourceString<mlir::ModuleOp>(source, &context);
      ASSERT_TRUE(module) << source;
      mlir::PassManager pm(&context);
      ASSERT_TRUE(mlir::succeeded(mlir::parsePassPipeline(
          "loom-gpu-outline-kernels{tensor-cores=" + cores +
              "},canonicalize,cse",
          pm)));
      ASSERT_TRUE(mlir::succeeded(pm.run(*module)));
      std::string text;
      llvm::raw_string_ostream os(text);
      module->print(os);
      ASSERT_NE(text.find("nvgpu.mma.sync"), std::string::npos) << text;
      auto emulator = GpuEmulator::create(*module);
      ASSERT_TRUE(bool(emulator)) << llvm::toString(emulator.takeError());
      std::mt19937 rng(5);
      std::normal_distribution<float> normal(0.0f, 1.0f);
      auto numel = [](const std::vector<int64_t> &d) {
        int64_t n = 1;
        for (int64_t x : d)
          n *= x;
        return n;
      };
      std::vector<float> a(numel(aDims)), b(numel(bDims)), c(numel(cDims));
      std::uniform_int_distribution<int> small(-8, 8);
      for (float &x : a)
        x = exact ? float(small(rng)) : normal(rng);
      for (float &x : b)
        x = exact ? float(small(rng)) : normal(rng);
      for (float &x : c)
        x = normal(rng);
      Status ran = (*emulator)->run("f", {a.data(), b.data(), c.data()});
      ASSERT_TRUE(ran.ok()) << ran.message();
      double worst = 0, scale = 0;
      for (int64_t bi = 0; bi < sh.batch; ++bi)
        for (int64_t i = 0; i < sh.m; ++i)
          for (int64_t j = 0; j < sh.n; ++j) {
            int64_t at = (bi * sh.m + i) * sh.n + j;
            double sum = 0;
            for (int64_t p = 0; p < sh.k; ++p) {
              float x = sh.transA ? a[(bi * sh.k + p) * sh.m + i]
                                  : a[(bi * sh.m + i) * sh.k + p];
              float y = sh.transB ? b[(bi * sh.n + j) * sh.k + p]
                                  : b[(bi * sh.k + p) * sh.n + j];
              sum += double(x) * y;
            }
            ASSERT_TRUE(std::isfinite(c[at])) << at;
            worst = std::max(worst, std::abs(sum - c[at]));
            scale = std::max(scale, std::abs(sum));
          }
      // f32 sums of k products: ~1e-6 of the scale; tf32 (10 bits):
      // ~1e-3; bf16 (7 bits): ~8e-3.
      std::printf("[tensor-cores] %-10s %-9s max |gpu - f64| %.2e (scale "
                  "%.2e)\n",
                  mode.c_str(), sh.name, worst, scale);
      const std::string &m = mode;
      double tolerance = m == "tf32" ? 4e-3 : m == "bf16" ? 1.5e-2 : 5e-6;
      EXPECT_LE(worst, tolerance * scale)
          << "max |gpu - f64| " << worst << ", scale " << scale;
      if (m == "tf32")
        EXPECT_GT(worst, 1e-5 * scale) << "tf32 rounding not emulated";
      if (m == "bf16")
        EXPECT_GT(worst, 5e-4 * scale) << "bf16 rounding not emulated";
    }
}

/// Row reductions, emulated, against f64 on random rows: a warp per row
/// (100 x 300 sums), a block per row for few long rows (3 x 5000 sums,
/// 2 x 3 x 4100 maxima of x * 2), lanes and warps past the row's end
/// combining the neutral element.
TEST(GpuEmulator, RowReductions) {
  struct Shape {
    const char *name;
    std::vector<int64_t> dims; // the last one reduced
    bool max, perBlock;
  };
  const Shape shapes[] = {{"warp_sums", {100, 300}, false, false},
                          {"block_sums", {3, 5000}, false, true},
                          {"block_max", {2, 3, 4100}, true, true}};
  std::unique_ptr<mlir::MLIRContext> owned = gpuContext();
  mlir::MLIRContext &context = *owned;
  for (const Shape &sh : shapes) {
    SCOPED_TRACE(sh.name);
    llvm::ArrayRef<int64_t> all(sh.dims), rows = all.drop_back();
    std::string dimsIn, dimsOut, iterators;
    for (size_t i = 0; i < all.size(); ++i) {
      std::string d = "d" + std::to_string(i);
      dimsIn += (i ? ", " : "") + d;
      if (i + 1 < all.size())
        dimsOut += (i ? ", " : "") + d;
      iterators += std::string(i ? ", " : "") +
                   (i + 1 < all.size() ? "\"parallel\"" : "\"reduction\"");
    }
    std::string init = sh.max ? "0xFF800000" : "0.0";
    std::string source =
        "func.func @f(%x: " + f32Memref(all) + ", %y: " + f32Memref(rows) +
        ") {\n  %init = arith.constant " + init +
        " : f32\n  %two = arith.constant 2.0 : f32\n  linalg.fill ins(%init : "
        "f32) outs(%y : " +
        f32Memref(rows) + ")\n  linalg.generic {indexing_maps = [affine_map<(" +
        dimsIn + ") -> (" + dimsIn + ")>, affine_map<(" + dimsIn + ") -> (" +
        dimsOut + ")>], iterator_types = [" + iterators +
        "]} ins(%x : " + f32Memref(all) + ") outs(%y : " + f32Memref(rows) +
        ") {\n  ^bb0(%v: f32, %acc: f32):\n    %d = arith.mulf %v, %two : "
        "f32\n    %r = " +
        (sh.max ? "arith.maximumf" : "arith.addf") +
        " %acc, %d : f32\n    linalg.yield %r : f32\n  }\n  return\n}\n";
    auto module = mlir::parseSourceString<mlir::ModuleOp>(source, &context);
    ASSERT_TRUE(module) << source;
    mlir::PassManager pm(&context);
    ASSERT_TRUE(mlir::succeeded(mlir::parsePassPipeline(
        "loom-gpu-outline-kernels,canonicalize,cse", pm)));
    ASSERT_TRUE(mlir::succeeded(pm.run(*module)));
    std::string text;
    llvm::raw_string_ostream os(text);
    module->print(os);
    ASSERT_NE(text.find("gpu.shuffle"), std::string::npos) << text;
    EXPECT_EQ(text.find("gpu.barrier") != std::string::npos, sh.perBlock)
        << text;
    auto emulator = GpuEmulator::create(*module);
    ASSERT_TRUE(bool(emulator)) << llvm::toString(emulator.takeError());
    int64_t length = all.back(), count = 1;
    for (int64_t r : rows)
      count *= r;
    std::mt19937 rng(9);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(count * length), y(count, -7.0f);
    for (float &v : x)
      v = normal(rng);
    Status ran = (*emulator)->run("f", {x.data(), y.data()});
    ASSERT_TRUE(ran.ok()) << ran.message();
    for (int64_t i = 0; i < count; ++i) {
      double expected = sh.max ? -INFINITY : 0.0, magnitude = 0;
      for (int64_t r = 0; r < length; ++r) {
        double v = 2.0 * x[i * length + r];
        expected = sh.max ? std::max(expected, v) : expected + v;
        magnitude += std::abs(v);
      }
      // A max is exact; a sum of n in f32 within ~n ulp of its terms.
      EXPECT_NEAR(y[i], expected, sh.max ? 0.0 : 1e-6 * magnitude)
          << "row " << i;
    }
  }
}

/// Attention, its log-sum-exp and its gradient as block-tiled kernels (a
/// block per query tile, K and V tiles in shared memory; a block per key
/// tile for dK and dV), emulated, against f64:
/// causal with Tq = Tk over two key tiles, a key mask with Tq < Tk and
/// head dims that are not the tile's, one query (a decode step), and a
/// causal Tq > Tk whose first queries attend no key (zeros, lse 0); the
/// forward and lse with a thread per query (FMAs) and on tensor cores
/// (mma.sync, 3xtf32).
TEST(GpuEmulator, TiledAttention) {
  struct Shape {
    const char *name;
    int64_t batch, heads, tq, tk, d, dv;
    bool causal, mask;
  };
  const Shape shapes[] = {{"causal", 2, 3, 100, 100, 64, 64, true, false},
                          {"masked", 2, 2, 33, 70, 35, 24, false, true},
                          {"decode", 1, 2, 1, 130, 16, 16, true, false},
                          {"no_keys", 1, 1, 70, 33, 8, 8, true, false}};
  std::unique_ptr<mlir::MLIRContext> owned = gpuContext();
  mlir::MLIRContext &context = *owned;
  context.getOrLoadDialect<LoomDialect>();
  for (std::string cores : {"none", "3xtf32"})
    for (const Shape &sh : shapes) {
      SCOPED_TRACE(std::string(sh.name) + " tensor-cores=" + cores);
      std::string tq = std::to_string(sh.tq), tk = std::to_string(sh.tk);
      std::string prefix =
          std::to_string(sh.batch) + "x" + std::to_string(sh.heads) + "x";
      std::string qT = prefix + tq + "x" + std::to_string(sh.d) + "xf32";
      std::string kT = prefix + tk + "x" + std::to_string(sh.d) + "xf32";
      std::string vT = prefix + tk + "x" + std::to_string(sh.dv) + "xf32";
      std::string oT = prefix + tq + "x" + std::to_string(sh.dv) + "xf32";
      std::string lT = prefix + tq + "xf32";
      std::string mT = std::to_string(sh.batch) + "x" + tk + "xi1";
      std::string maskArg = sh.mask ? ", %m: memref<" + mT + ">" : "";
      std::string maskUse = sh.mask ? "mask %mt, " : "";
      std::string maskType = sh.mask ? ", tensor<" + mT + ">" : "";
      std::string gradTypes = "tensor<" + qT + ">, tensor<" + kT +
                              ">, tensor<" + vT + ">, tensor<" + oT +
                              ">, tensor<" + lT + ">" + maskType;
      std::string source =
          "func.func @f(%q: memref<" + qT + ">, %k: memref<" + kT +
          ">, %v: memref<" + vT + ">" + maskArg + ", %do: memref<" + oT +
          ">) -> (memref<" + oT + ">, memref<" + lT + ">, memref<" + qT +
          ">, memref<" + kT + ">, memref<" + vT + ">) {\n" +
          "  %qt = bufferization.to_tensor %q : memref<" + qT + "> to tensor<" +
          qT + ">\n" + "  %kt = bufferization.to_tensor %k : memref<" + kT +
          "> to tensor<" + kT + ">\n" +
          "  %vt = bufferization.to_tensor %v : memref<" + vT + "> to tensor<" +
          vT + ">\n" +
          (sh.mask ? "  %mt = bufferization.to_tensor %m : memref<" + mT +
                         "> to tensor<" + mT + ">\n"
                   : std::string()) +
          "  %o = loom.attention %qt, %kt, %vt, " + maskUse +
          "causal = " + (sh.causal ? "true" : "false") +
          ", scale = 1.250000e-01 : tensor<" + qT + ">, tensor<" + kT +
          ">, tensor<" + vT + ">" + maskType + "\n" +
          "  %l = loom.attention_lse %qt, %kt, " + maskUse +
          "causal = " + (sh.causal ? "true" : "false") +
          ", scale = 1.250000e-01 : tensor<" + qT + ">, tensor<" + kT + ">" +
          maskType + " -> tensor<" + lT + ">\n" +
          "  %dot = bufferization.to_tensor %do : memref<" + oT +
          "> to tensor<" + oT + ">\n" +
          "  %dq, %dk, %dv = loom.attention_grad %qt, %kt, %vt, %o, %l, "
          "%dot, " +
          maskUse + "causal = " + (sh.causal ? "true" : "false") +
          ", scale = 1.250000e-01 : " + gradTypes + "\n" +
          "  %ob = bufferization.to_buffer %o : tensor<" + oT + "> to memref<" +
          oT + ">\n" + "  %lb = bufferization.to_buffer %l : tensor<" + lT +
          "> to memref<" + lT + ">\n" +
          "  %dqb = bufferization.to_buffer %dq : tensor<" + qT +
          "> to memref<" + qT + ">\n" +
          "  %dkb = bufferization.to_buffer %dk : tensor<" + kT +
          "> to memref<" + kT + ">\n" +
          "  %dvb = bufferization.to_buffer %dv : tensor<" + vT +
          "> to memref<" + vT + ">\n" +
          "  return %ob, %lb, %dqb, %dkb, %dvb : memref<" + oT + ">, memref<" +
          lT + ">, memref<" + qT + ">, memref<" + kT + ">, memref<" + vT +
          ">\n}\n";
      auto module = mlir::parseSourceString<mlir::ModuleOp>(source, &context);
      ASSERT_TRUE(module) << source;
      mlir::PassManager pm(&context);
      ASSERT_TRUE(mlir::succeeded(mlir::parsePassPipeline(
          "func.func(loom-gpu-attention{tensor-cores=" + cores +
              "}),canonicalize,cse,"
              "buffer-results-to-out-params{hoist-static-allocs=true "
              "modify-public-functions=true},"
              "loom-gpu-outline-kernels,canonicalize,cse",
          pm)));
      ASSERT_TRUE(mlir::succeeded(pm.run(*module)));
      std::string text;
      llvm::raw_string_ostream os(text);
      module->print(os);
      ASSERT_NE(text.find("gpu.barrier"), std::string::npos) << text;
      ASSERT_NE(text.find("workgroup(%"), std::string::npos) << text;
      auto emulator = GpuEmulator::create(*module);
      ASSERT_TRUE(bool(emulator)) << llvm::toString(emulator.takeError());
      int64_t rows = sh.batch * sh.heads;
      std::mt19937 rng(11);
      std::normal_distribution<float> normal(0.0f, 1.0f);
      std::vector<float> q(rows * sh.tq * sh.d), k(rows * sh.tk * sh.d),
          v(rows * sh.tk * sh.dv), o(rows * sh.tq * sh.dv, 7.0f),
          lse(rows * sh.tq, 7.0f), dO(o.size()), dq(q.size(), 7.0f),
          dk(k.size(), 7.0f), dv(v.size(), 7.0f);
      for (auto *x : {&q, &k, &v, &dO})
        for (float &y : *x)
          y = 2.0f * normal(rng);
      std::vector<uint8_t> mask(sh.batch * sh.tk);
      for (uint8_t &m : mask)
        m = (rng() % 4) != 0;
      std::vector<void *> args = {q.data(), k.data(), v.data()};
      if (sh.mask)
        args.push_back(mask.data());
      for (auto *x : {&dO, &o, &lse, &dq, &dk, &dv})
        args.push_back(x->data());
      Status ran = (*emulator)->run("f", args);
      ASSERT_TRUE(ran.ok()) << ran.message();
      double worstO = 0, worstL = 0;
      // How far f32 rounding alone moves an output: an ulp of a score (up to
      // scale * sum |q k|) is that relative error of its exp, times |v|.
      double scoreBound = 0, vBound = 0;
      for (float x : v)
        vBound = std::max(vBound, double(std::abs(x)));
      int64_t empty = 0;
      // f64 gradients: P = exp(S - lse), dS = P (dO . v - dO . O).
      std::vector<double> gq(q.size(), 0.0), gk(k.size(), 0.0),
          gv(v.size(), 0.0);
      for (int64_t bh = 0; bh < rows; ++bh)
        for (int64_t i = 0; i < sh.tq; ++i) {
          std::vector<double> s(sh.tk, -INFINITY);
          double m = -INFINITY;
          for (int64_t j = 0; j < sh.tk; ++j) {
            if (sh.causal && j > i + (sh.tk - sh.tq))
              continue;
            if (sh.mask && !mask[(bh / sh.heads) * sh.tk + j])
              continue;
            double dot = 0, absDot = 0;
            for (int64_t c = 0; c < sh.d; ++c) {
              double x = double(q[(bh * sh.tq + i) * sh.d + c]) *
                         k[(bh * sh.tk + j) * sh.d + c];
              dot += x;
              absDot += std::abs(x);
            }
            s[j] = 0.125 * dot;
            scoreBound = std::max(scoreBound, 0.125 * absDot);
            m = std::max(m, s[j]);
          }
          double l = 0;
          std::vector<double> out(sh.dv, 0.0);
          for (int64_t j = 0; j < sh.tk; ++j) {
            if (s[j] == -INFINITY)
              continue;
            double p = std::exp(s[j] - m);
            l += p;
            for (int64_t c = 0; c < sh.dv; ++c)
              out[c] += p * v[(bh * sh.tk + j) * sh.dv + c];
          }
          empty += l == 0;
          if (l > 0) {
            double deltaI = 0;
            for (int64_t c = 0; c < sh.dv; ++c)
              deltaI += double(dO[(bh * sh.tq + i) * sh.dv + c]) * out[c] / l;
            for (int64_t j = 0; j < sh.tk; ++j) {
              if (s[j] == -INFINITY)
                continue;
              double p = std::exp(s[j] - m) / l, dp = 0;
              for (int64_t c = 0; c < sh.dv; ++c) {
                double g = dO[(bh * sh.tq + i) * sh.dv + c];
                dp += g * v[(bh * sh.tk + j) * sh.dv + c];
                gv[(bh * sh.tk + j) * sh.dv + c] += p * g;
              }
              double ds = 0.125 * p * (dp - deltaI);
              for (int64_t c = 0; c < sh.d; ++c) {
                gq[(bh * sh.tq + i) * sh.d + c] +=
                    ds * k[(bh * sh.tk + j) * sh.d + c];
                gk[(bh * sh.tk + j) * sh.d + c] +=
                    ds * q[(bh * sh.tq + i) * sh.d + c];
              }
            }
          }
          double expectedLse = l > 0 ? m + std::log(l) : 0.0;
          worstL =
              std::max(worstL, std::abs(lse[bh * sh.tq + i] - expectedLse) /
                                   std::max(1.0, std::abs(expectedLse)));
          for (int64_t c = 0; c < sh.dv; ++c) {
            float got = o[(bh * sh.tq + i) * sh.dv + c];
            ASSERT_TRUE(std::isfinite(got)) << "row " << i << " col " << c;
            worstO =
                std::max(worstO, std::abs(got - (l > 0 ? out[c] / l : 0.0)));
          }
        }
      double boundO = 2 * std::ldexp(scoreBound * vBound, -24);
      std::printf("[tiled-attention] %-8s %-6s max |o - f64| %.2e (bound "
                  "%.2e), lse rel %.2e, %lld queries without keys\n",
                  sh.name, cores.c_str(), worstO, boundO, worstL,
                  (long long)empty);
      // The gradients against f64, relative to each one's largest value.
      auto compare = [&](const char *what, const std::vector<float> &got,
                         const std::vector<double> &expected) {
        double worst = 0, scale = 0;
        for (size_t i = 0; i < got.size(); ++i) {
          ASSERT_TRUE(std::isfinite(got[i])) << what << "[" << i << "]";
          worst = std::max(worst, std::abs(got[i] - expected[i]));
          scale = std::max(scale, std::abs(expected[i]));
        }
        std::printf("[tiled-attention] %-8s %-6s %s max |gpu - f64| %.2e "
                    "(scale %.2e)\n",
                    sh.name, cores.c_str(), what, worst, scale);
        EXPECT_LE(worst, 1e-5 * scale) << what;
        EXPECT_GT(scale, 0.0) << what;
      };
      compare("dq", dq, gq);
      compare("dk", dk, gk);
      compare("dv", dv, gv);
      // Two ulps of the largest score's sum, carried through exp to |v|
      // (2.2e-5 for the causal shape, whose scores reach 30).
      EXPECT_LE(worstO, boundO);
      EXPECT_LE(worstL, 2e-6);
      EXPECT_EQ(empty > 0, std::string(sh.name) == "no_keys");
    }
}

/// With `tensor-cores=bf16` the GPT training step's contractions are bf16
/// products (m16n8k16, lowered by loom-gpu-lower-bf16-mma) that assemble
/// for sm_80 and sm_90 without spills.
TEST(GpuPtx, Bf16TrainingStepAssembles) {
  std::string ptxas = ptxasPath();
  if (ptxas.empty())
    GTEST_SKIP() << "ptxas not found: the PTX was not checked";
  for (const std::string arch : {"sm_80", "sm_90"}) {
    auto program = compileCase({0, "loss", Kind::Step, {}}, arch, "bf16");
    ASSERT_TRUE(program.has_value());
    EXPECT_NE(program->ptx.find("mma.sync.aligned.m16n8k16.row.col.f32.bf16."
                                "bf16.f32"),
              std::string::npos);
    auto [rc, log] = assemble(ptxas, program->ptx, arch);
    ASSERT_EQ(rc, 0) << "ptxas rejected the PTX for " << arch << ":\n"
                     << log.substr(0, 4000);
    std::regex spills("entry function '([^']+)'[^]*?(\\d+) bytes spill "
                      "stores, (\\d+) bytes spill loads");
    for (auto it = std::sregex_iterator(log.begin(), log.end(), spills);
         it != std::sregex_iterator(); ++it) {
      EXPECT_EQ((*it)[2].str(), "0") << "spill stores in " << (*it)[1].str();
      EXPECT_EQ((*it)[3].str(), "0") << "spill loads in " << (*it)[1].str();
    }
  }
}

/// The examples' sequences are short (T 8: key tiles of 16); at GPT's
/// full context (T 256, Dh 64) attention's kernels take their largest
/// tiles. A block's static shared memory is at most 48 KB: ptxas rejects
/// more (the first tensor-core forward needed 53 KB and only the benchmark
/// shapes showed it).
TEST(GpuPtx, FullContextAttentionFitsABlock) {
  std::string ptxas = ptxasPath();
  if (ptxas.empty())
    GTEST_SKIP() << "ptxas not found: the PTX was not checked";
  auto program =
      compileCase({0, "loss", Kind::Gradient, {{"B", 1}, {"T", 256}}}, "sm_90");
  ASSERT_TRUE(program.has_value());
  auto [rc, log] = assemble(ptxas, program->ptx, "sm_90");
  ASSERT_EQ(rc, 0) << "ptxas rejected the PTX:\n" << log.substr(0, 4000);
  std::regex shared("entry function '([^']+)'[^]*?(\\d+) bytes spill "
                    "stores, (\\d+) bytes spill loads[^]*?Used (\\d+) "
                    "registers(, used \\d+ barriers)?(, (\\d+) bytes smem)?");
  int64_t most = 0;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), shared);
       it != std::sregex_iterator(); ++it) {
    EXPECT_EQ((*it)[2].str(), "0") << "spill stores in " << (*it)[1].str();
    EXPECT_EQ((*it)[3].str(), "0") << "spill loads in " << (*it)[1].str();
    if ((*it)[7].matched)
      most = std::max<int64_t>(most, std::stoll((*it)[7].str()));
  }
  std::printf("[gpu] gpt loss_grad B 1 T 256: most shared memory of a block "
              "%lld bytes\n",
              (long long)most);
  EXPECT_GT(most, 16384) << "the attention kernels' tiles were expected";
  EXPECT_LE(most, 48 * 1024);
}

/// What only a launch would otherwise tell (CUDA_ERROR_LAUNCH_OUT_OF_
/// RESOURCES, CUDA_ERROR_INVALID_VALUE): every launch of GPT's training
/// step at full context fits the device's per-block limits, with the
/// registers ptxas allocated (8 per thread at a time, whole warps) and
/// the shared memory it reports plus the dynamic bytes (48 KB without the
/// opt-in the runtime does not make).
TEST(GpuPtx, EveryLaunchFitsTheLimitsOfABlock) {
  std::string ptxas = ptxasPath();
  if (ptxas.empty())
    GTEST_SKIP() << "ptxas not found: the PTX was not checked";
  for (const std::string arch : {"sm_80", "sm_90"}) {
    auto program =
        compileCase({0, "loss", Kind::Step, {{"B", 8}, {"T", 256}}}, arch);
    ASSERT_TRUE(program.has_value());
    auto [rc, log] = assemble(ptxas, program->ptx, arch);
    ASSERT_EQ(rc, 0) << "ptxas rejected the PTX:\n" << log.substr(0, 4000);
    std::regex used("entry function '([^']+)'[^]*?Used (\\d+) registers(, "
                    "used \\d+ barriers)?(, (\\d+) bytes smem)?");
    std::map<std::string, std::pair<int64_t, int64_t>> resources;
    for (auto it = std::sregex_iterator(log.begin(), log.end(), used);
         it != std::sregex_iterator(); ++it)
      resources[(*it)[1].str()] = {std::stoll((*it)[2].str()),
                                   (*it)[5].matched ? std::stoll((*it)[5].str())
                                                    : 0};
    int64_t launches = 0, mostRegisters = 0;
    for (const gpu::Function &fn : program->functions)
      for (const gpu::Launch &launch : fn.launches) {
        ++launches;
        auto found = resources.find(launch.kernel);
        ASSERT_NE(found, resources.end())
            << launch.kernel << ": not in ptxas's report";
        auto [registers, staticShared] = found->second;
        int64_t threads = launch.block[0] * launch.block[1] * launch.block[2];
        int64_t warps = (threads + 31) / 32;
        int64_t perBlock = (registers + 7) / 8 * 8 * 32 * warps;
        mostRegisters = std::max(mostRegisters, perBlock);
        EXPECT_LE(threads, 1024) << launch.kernel;
        EXPECT_LE(launch.block[2], 64) << launch.kernel;
        EXPECT_LE(perBlock, 65536) << launch.kernel << ": " << registers
                                   << " registers x " << threads << " threads";
        EXPECT_LE(staticShared + launch.sharedBytes, 48 * 1024)
            << launch.kernel;
        EXPECT_LE(launch.grid[0], (int64_t(1) << 31) - 1) << launch.kernel;
        EXPECT_LE(launch.grid[1], 65535) << launch.kernel;
        EXPECT_LE(launch.grid[2], 65535) << launch.kernel;
        for (int64_t d : {launch.grid[0], launch.grid[1], launch.grid[2],
                          launch.block[0], launch.block[1], launch.block[2]})
          EXPECT_GE(d, 1) << launch.kernel;
      }
    std::printf("[gpu] %s gpt train_step B 8 T 256: %lld launches, at most "
                "%lld registers a block\n",
                arch.c_str(), (long long)launches, (long long)mostRegisters);
    EXPECT_GT(launches, 50);
    EXPECT_GT(mostRegisters, 16384) << "the attention kernels were expected";
  }
}

TEST(GpuManifest, RoundTrips) {
  auto program = compileCase({0, "loss", Kind::Step}, "sm_90");
  ASSERT_TRUE(program.has_value());
  program->bindings = "B=2,T=8";
  std::string json = gpu::toManifest(*program);
  auto back = gpu::fromManifest(json);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(gpu::toManifest(back.value()), json);
  const gpu::Function &fn = back.value().functions.front();
  EXPECT_EQ(fn.name, "train_step");
  // The outputs are what the step writes: the parameters and the moments
  // (updated in place: read, then written), the loss, the norm and the
  // first non-finite update's index.
  int outputs = 0, updated = 0;
  for (const gpu::Argument &a : fn.args) {
    outputs += a.output;
    updated += a.updated;
  }
  EXPECT_EQ(outputs, 6);
  EXPECT_EQ(updated, 3);
  EXPECT_TRUE(fn.args.front().updated && fn.args.front().read())
      << "the parameters are updated in place";
}

TEST(GpuManifest, RejectsMalformed) {
  auto bad = gpu::fromManifest("{\"format\": \"loom-gpu-manifest\"}");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("arch"), std::string::npos)
      << bad.status().message();
  auto range = gpu::fromManifest(
      "{\"format\": \"loom-gpu-manifest\", \"arch\": \"sm_90\", "
      "\"bindings\": \"\", \"functions\": [{\"name\": \"f\", "
      "\"workspace_bytes\": 0, \"args\": [], \"launches\": [{\"kernel\": "
      "\"k\", \"grid\": [1, 1, 1], \"block\": [1, 1, 1], \"shared_bytes\": "
      "0, \"args\": [{\"arg\": 3, \"offset\": 0}]}]}]}");
  ASSERT_FALSE(range.ok());
  EXPECT_NE(range.status().message().find("out of range"), std::string::npos)
      << range.status().message();
}

/// Without a driver the CUDA target is one clear error, and the CPU path
/// is unaffected.
TEST(GpuRuntime, WithoutADriverTheErrorSaysSo) {
  if (cuda::available().ok())
    GTEST_SKIP() << "a CUDA device is present";
  CompileOptions options;
  options.target = "cuda";
  options.diskCache = false;
  auto model = compile(sourceDir() + "/examples/gpt.loom", options);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("target cuda: no CUDA"),
            std::string::npos)
      << model.status().message();
  options.target = "tpu";
  auto unknown = compile(sourceDir() + "/examples/gpt.loom", options);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown target 'tpu'"),
            std::string::npos);
  options.target = "cpu";
  EXPECT_TRUE(compile(sourceDir() + "/examples/gpt.loom", options).ok());
}

std::string noGpuMessage() {
  return "NO GPU: " + cuda::available().message() +
         " -- the GPU numerics were not checked";
}

class GpuRun : public ::testing::TestWithParam<GpuCase> {};

/// Every entry function on the GPU against the reference evaluator.
TEST_P(GpuRun, MatchesReference) {
  if (Status s = cuda::available(); !s.ok())
    GTEST_SKIP() << noGpuMessage();
  const Example &e = examples()[GetParam().example];
  Case c = exampleCase(e, GetParam().function);
  c.target = driver::Target::Cuda;
  c.family = "gpu." + c.family;
  Outcome o = run(c);
  ASSERT_TRUE(o.ran);
}

std::vector<GpuCase> forwardCases() {
  std::vector<GpuCase> all;
  for (const GpuCase &c : allCases())
    if (c.kind == Kind::Forward)
      all.push_back(c);
  return all;
}

INSTANTIATE_TEST_SUITE_P(Examples, GpuRun, ::testing::ValuesIn(forwardCases()),
                         [](const auto &info) { return caseName(info.param); });

/// Three AdamW steps of GPT on the GPU and on the CPU from the same
/// parameters and batch: the same losses and parameters.
TEST(GpuTraining, AdamwStepsMatchTheCpu) {
  if (Status s = cuda::available(); !s.ok())
    GTEST_SKIP() << noGpuMessage();
  CompileOptions options;
  options.diskCache = false;
  options.config = {{"d", "64"}, {"layers", "2"}, {"heads", "2"}};
  options.seed = 3;
  auto cpu = compile(sourceDir() + "/examples/gpt.loom", options);
  options.target = "cuda";
  auto gpuModel = compile(sourceDir() + "/examples/gpt.loom", options);
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();
  ASSERT_TRUE(gpuModel.ok()) << gpuModel.status().message();
  std::mt19937 rng(11);
  Tensor tokens = Tensor::empty(DType::I32, {4, 32});
  Tensor targets = Tensor::empty(DType::I32, {4, 32});
  for (int64_t i = 0; i < tokens.numel(); ++i) {
    tokens.data<int32_t>()[i] = int32_t(rng() % 256);
    targets.data<int32_t>()[i] = int32_t(rng() % 256);
  }
  StepOptions step;
  OptimizerState cpuState, gpuState;
  for (int i = 0; i < 3; ++i) {
    auto a = cpu.value().trainStep(step, cpuState, 1e-3, {tokens, targets});
    auto b =
        gpuModel.value().trainStep(step, gpuState, 1e-3, {tokens, targets});
    ASSERT_TRUE(a.ok()) << a.status().message();
    ASSERT_TRUE(b.ok()) << b.status().message();
    EXPECT_NEAR(a.value().loss, b.value().loss, 1e-4 * std::abs(a.value().loss))
        << "step " << i;
    EXPECT_NEAR(a.value().gradNorm, b.value().gradNorm,
                1e-3 * a.value().gradNorm)
        << "step " << i;
  }
  const float *p = reinterpret_cast<const float *>(cpu.value().params().data());
  const float *q =
      reinterpret_cast<const float *>(gpuModel.value().params().data());
  double worst = 0;
  for (size_t i = 0; i < cpu.value().params().totalBytes() / 4; ++i)
    worst = std::max(worst, double(std::abs(p[i] - q[i])));
  EXPECT_LT(worst, 1e-4) << "largest parameter difference after 3 steps";
}

} // namespace
