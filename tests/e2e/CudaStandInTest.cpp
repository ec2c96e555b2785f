//===- CudaStandInTest.cpp - The CUDA runtime, run on the CPU -------------===//
//
// Loom's CUDA runtime (runtime/Cuda.cpp: loading PTX, device memory,
// copies, launch plans, errors) against the driver stand-in
// (CudaStandIn.cpp, opened through LOOM_CUDA_DRIVER), whose launches run the
// same kernels in the GPU emulator: every step of a target-cuda call except
// the device itself, checked in CI on machines without a GPU.
//
//===----------------------------------------------------------------------===//

#include "codegen/nvptx/NvptxPipeline.h"
#include "driver/ModelImpl.h"
#include "driver/Session.h"
#include "tests/e2e/GpuEmulator.h"

#include "loom/Cuda.h"
#include "loom/Model.h"
#include "loom/Params.h"
#include "loom/Tensor.h"
#include "loom/Trainer.h"

#include "mlir/Pass/PassManager.h"

#include <gtest/gtest.h>

#include <dlfcn.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <utility>

using namespace loom;
using loom::e2e::GpuEmulator;

namespace {

using Launcher = int (*)(void *, const char *, const unsigned[3],
                         const unsigned[3], unsigned, void **);

/// The stand-in's own entry points (CudaStandIn.cpp).
struct StandIn {
  void (*setLauncher)(Launcher, void *) = nullptr;
  void (*stats)(uint64_t[6]) = nullptr;
  void (*failAllocationsAbove)(size_t) = nullptr;
  void (*setArity)(int (*)(void *, const char *), void *) = nullptr;
  void (*graphStats)(uint64_t[3]) = nullptr;
  void (*failCopiesBack)(bool) = nullptr;
};

StandIn &standIn() {
  static StandIn s = [] {
    StandIn s;
    // The library the runtime opens (LOOM_CUDA_DRIVER, set in main): the
    // same handle, so the same state.
    void *handle = dlopen(LOOM_CUDA_STANDIN, RTLD_NOW | RTLD_LOCAL);
    if (!handle)
      return s;
    s.setLauncher = reinterpret_cast<decltype(s.setLauncher)>(
        dlsym(handle, "loomStandInSetLauncher"));
    s.stats =
        reinterpret_cast<decltype(s.stats)>(dlsym(handle, "loomStandInStats"));
    s.failAllocationsAbove = reinterpret_cast<decltype(s.failAllocationsAbove)>(
        dlsym(handle, "loomStandInFailAllocationsAbove"));
    s.setArity = reinterpret_cast<decltype(s.setArity)>(
        dlsym(handle, "loomStandInSetArity"));
    s.graphStats = reinterpret_cast<decltype(s.graphStats)>(
        dlsym(handle, "loomStandInGraphStats"));
    s.failCopiesBack = reinterpret_cast<decltype(s.failCopiesBack)>(
        dlsym(handle, "loomStandInFailCopiesBack"));
    return s;
  }();
  return s;
}

struct Stats {
  uint64_t allocations, frees, liveBytes, toDevice, toHost, launches;
};

Stats stats() {
  uint64_t v[6] = {0, 0, 0, 0, 0, 0};
  standIn().stats(v);
  return {v[0], v[1], v[2], v[3], v[4], v[5]};
}

/// The emulators that run launches, by kernel name, and the last failure.
std::map<std::string, GpuEmulator *> &kernels() {
  static std::map<std::string, GpuEmulator *> map;
  return map;
}
std::string &launchError() {
  static std::string text;
  return text;
}

int emulateLaunch(void *, const char *kernel, const unsigned grid[3],
                  const unsigned block[3], unsigned, void **params) {
  auto it = kernels().find(kernel);
  if (it == kernels().end()) {
    launchError() = std::string("no emulated kernel '") + kernel + "'";
    return 1;
  }
  std::vector<void *> args;
  for (int64_t i = 0; i < it->second->arity(kernel); ++i)
    args.push_back(reinterpret_cast<void *>(
        uintptr_t(*static_cast<unsigned long long *>(params[i]))));
  int64_t g[3] = {grid[0], grid[1], grid[2]};
  int64_t b[3] = {block[0], block[1], block[2]};
  Status ran = it->second->launch(kernel, g, b, std::move(args));
  if (!ran.ok()) {
    launchError() = ran.message();
    return 1;
  }
  return 0;
}

/// The number of arguments of an emulated kernel (-1: unknown), for the
/// stand-in's stream captures.
int arityOf(void *, const char *kernel) {
  auto it = kernels().find(kernel);
  return it == kernels().end() ? -1 : int(it->second->arity(kernel));
}

struct GraphStats {
  uint64_t streams, captures, launches;
};

GraphStats graphStats() {
  uint64_t v[3] = {0, 0, 0};
  standIn().graphStats(v);
  return {v[0], v[1], v[2]};
}

int failingLaunch(void *, const char *, const unsigned[3], const unsigned[3],
                  unsigned, void **) {
  return 1;
}

/// The kernels of `fn` (compiled for target cuda) lowered again from what
/// its NVPTX pipeline was given, in the emulator; launches of them run
/// there from now on.
std::unique_ptr<GpuEmulator> emulate(driver::CompiledFunction &fn) {
  if (!fn.gpuInput) {
    ADD_FAILURE() << "not compiled for target cuda";
    return nullptr;
  }
  mlir::OwningOpRef<mlir::ModuleOp> module(fn.gpuInput->clone());
  NvptxPipelineOptions options;
  options.arch = fn.gpuArch;
  options.tensorCores = fn.gpuTensorCores;
  options.autodiff = fn.gpuAutodiff;
  options.optimizer = fn.gpuOptimizer;
  options.stopAfter = "kernels";
  mlir::PassManager pm(module->getContext());
  if (mlir::failed(buildNvptxPipeline(pm, options)) ||
      mlir::failed(pm.run(*module))) {
    ADD_FAILURE() << "lowering the kernels for the emulator failed";
    return nullptr;
  }
  auto emulator = GpuEmulator::create(*module);
  if (!emulator) {
    ADD_FAILURE() << llvm::toString(emulator.takeError());
    return nullptr;
  }
  for (const gpu::Function &f : (*emulator)->program().functions)
    for (const gpu::Launch &launch : f.launches)
      kernels()[launch.kernel] = emulator->get();
  standIn().setLauncher(emulateLaunch, nullptr);
  standIn().setArity(arityOf, nullptr);
  return std::move(*emulator);
}

std::string examplePath(const std::string &name) {
  return std::string(LOOM_SOURCE_DIR) + "/examples/" + name;
}

std::unique_ptr<driver::Session>
openSession(driver::Target target, const std::string &tensorCores = "3xtf32") {
  driver::SessionOptions options;
  options.target = target;
  options.tensorCores = tensorCores;
  options.useCache = false;
  auto session = driver::Session::open(examplePath("gpt.loom"), options);
  if (!session) {
    ADD_FAILURE() << llvm::toString(session.takeError());
    return nullptr;
  }
  return std::move(*session);
}

/// Inputs of `fn` drawn from `seed`: token ids below 256, the training
/// step's hyper (lr 1e-3, bias corrections 0.1) and small moments.
std::vector<Tensor> inputsFor(const driver::CompiledFunction &fn,
                              uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<Tensor> inputs;
  for (const driver::ArgSpec &spec : fn.signature.inputs) {
    Tensor t = Tensor::empty(spec.dtype, spec.shape);
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (spec.dtype == DType::I32)
        t.data<int32_t>()[i] = int32_t(rng() % 256);
      else if (spec.name == "hyper")
        t.data<float>()[i] = i == 0 ? 1e-3f : 0.1f;
      else if (spec.name == "v")
        t.data<float>()[i] = 1e-4f * u(rng);
      else
        t.data<float>()[i] = 0.01f * (u(rng) - 0.5f);
    }
    inputs.push_back(std::move(t));
  }
  return inputs;
}

std::vector<void *> pointersOf(std::vector<Tensor> &tensors) {
  std::vector<void *> pointers;
  for (Tensor &t : tensors)
    pointers.push_back(t.rawData());
  return pointers;
}

/// max |a - b| over every f32 output, relative to each output's scale.
void expectClose(const std::vector<Tensor> &cpu, const std::vector<Tensor> &gpu,
                 const driver::CompiledFunction &fn, const std::string &what) {
  ASSERT_EQ(cpu.size(), gpu.size());
  for (size_t k = 0; k < cpu.size(); ++k) {
    if (cpu[k].dtype() != DType::F32)
      continue;
    const float *a = cpu[k].data<float>();
    const float *b = gpu[k].data<float>();
    double scale = 0, worst = 0;
    for (int64_t i = 0; i < cpu[k].numel(); ++i)
      scale = std::max(scale, double(std::abs(a[i])));
    for (int64_t i = 0; i < cpu[k].numel(); ++i) {
      ASSERT_TRUE(std::isfinite(b[i])) << what << " output " << k;
      worst = std::max(worst, double(std::abs(a[i] - b[i])));
    }
    EXPECT_LE(worst, 2e-5 * scale + 1e-7)
        << what << ": " << fn.signature.outputs[k].name << " max |gpu - cpu| "
        << worst << ", scale " << scale;
  }
}

TEST(CudaStandIn, IsTheDriver) {
  ASSERT_TRUE(cuda::available().ok()) << cuda::available().message();
  auto description = cuda::deviceDescription();
  ASSERT_TRUE(description.ok());
  EXPECT_NE(description.value().find("stand-in"), std::string::npos);
  EXPECT_NE(description.value().find("(sm_90)"), std::string::npos);
}

/// GPT's loss and its gradient through Session (target cuda), Executable
/// and the stand-in: the CPU's numbers; device memory allocated on the
/// first call only; each call copies the parameters and inputs over and
/// the outputs back, nothing more.
TEST(CudaStandIn, GptLossAndGradientMatchTheCpu) {
  auto cpuSession = openSession(driver::Target::Cpu);
  auto gpuSession = openSession(driver::Target::Cuda);
  ASSERT_TRUE(cpuSession && gpuSession);
  auto store = ParamStore::create(cpuSession->params());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(store.value().initialize(5).ok());
  std::map<std::string, int64_t> bindings = {{"B", 2}, {"T", 8}};
  for (auto kind : {driver::Variant::Forward, driver::Variant::Gradient}) {
    driver::Variant variant;
    variant.kind = kind;
    auto cpu = cpuSession->get("loss", bindings, variant);
    auto gpu = gpuSession->get("loss", bindings, variant);
    ASSERT_TRUE(bool(cpu)) << llvm::toString(cpu.takeError());
    ASSERT_TRUE(bool(gpu)) << llvm::toString(gpu.takeError());
    ASSERT_NE((*gpu)->gpu, nullptr);
    auto emulator = emulate(**gpu);
    ASSERT_NE(emulator, nullptr);
    for (uint32_t seed : {1u, 2u}) {
      std::vector<Tensor> inputs = inputsFor(**cpu, seed);
      Stats before = stats();
      GraphStats graphsBefore = graphStats();
      auto a = driver::invoke(**cpu, store.value().data(), pointersOf(inputs));
      auto b = driver::invoke(**gpu, store.value().data(), pointersOf(inputs));
      ASSERT_TRUE(a.ok()) << a.status().message();
      ASSERT_TRUE(b.ok()) << b.status().message() << "\n" << launchError();
      expectClose(a.value(), b.value(), **gpu, (*gpu)->entry);
      Stats after = stats();
      const gpu::Function *plan = (*gpu)->gpu->program().find((*gpu)->entry);
      ASSERT_NE(plan, nullptr);
      uint64_t in = 0, out = 0;
      for (const gpu::Argument &arg : plan->args) {
        in += arg.read() ? uint64_t(arg.bytes) : 0;
        out += arg.output ? uint64_t(arg.bytes) : 0;
      }
      EXPECT_EQ(after.toDevice - before.toDevice, in) << (*gpu)->entry;
      EXPECT_EQ(after.toHost - before.toHost, out) << (*gpu)->entry;
      EXPECT_EQ(after.launches - before.launches, plan->launches.size());
      if (seed == 2) { // the buffers of the first call, kept
        EXPECT_EQ(after.allocations, before.allocations) << (*gpu)->entry;
        // ... and so the graph captured then, replayed.
        EXPECT_TRUE((*gpu)->gpu->usesGraphs());
        EXPECT_EQ(graphStats().captures, graphsBefore.captures);
        EXPECT_EQ(graphStats().launches, graphsBefore.launches + 1);
      }
    }
  }
}

/// With tensor cores "bf16" the session's kernels multiply bf16 operands
/// (m16n8k16 in the PTX) and GPT's loss and gradient stay within bf16's
/// rounding of the CPU's; a mode the pipeline does not know is refused
/// when the session opens.
TEST(CudaStandIn, Bf16TensorCores) {
  auto cpuSession = openSession(driver::Target::Cpu);
  auto gpuSession = openSession(driver::Target::Cuda, "bf16");
  ASSERT_TRUE(cpuSession && gpuSession);
  auto store = ParamStore::create(cpuSession->params());
  ASSERT_TRUE(store.ok() && store.value().initialize(5).ok());
  driver::Variant variant;
  variant.kind = driver::Variant::Gradient;
  std::map<std::string, int64_t> bindings = {{"B", 2}, {"T", 8}};
  auto cpu = cpuSession->get("loss", bindings, variant);
  auto gpu = gpuSession->get("loss", bindings, variant);
  ASSERT_TRUE(bool(cpu)) << llvm::toString(cpu.takeError());
  ASSERT_TRUE(bool(gpu)) << llvm::toString(gpu.takeError());
  EXPECT_EQ((*gpu)->gpuTensorCores, "bf16");
  EXPECT_NE((*gpu)->gpu->program().ptx.find(
                "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"),
            std::string::npos);
  auto emulator = emulate(**gpu);
  ASSERT_NE(emulator, nullptr);
  std::vector<Tensor> inputs = inputsFor(**cpu, 1);
  auto a = driver::invoke(**cpu, store.value().data(), pointersOf(inputs));
  auto b = driver::invoke(**gpu, store.value().data(), pointersOf(inputs));
  ASSERT_TRUE(a.ok()) << a.status().message();
  ASSERT_TRUE(b.ok()) << b.status().message() << "\n" << launchError();
  for (size_t k = 0; k < a.value().size(); ++k) {
    const Tensor &x = a.value()[k], &y = b.value()[k];
    double scale = 0, worst = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      scale = std::max(scale, double(std::abs(x.data<float>()[i])));
      worst = std::max(
          worst, double(std::abs(x.data<float>()[i] - y.data<float>()[i])));
    }
    std::printf("[stand-in bf16] %-6s max |gpu - cpu| %.2e (scale %.2e)\n",
                (*gpu)->signature.outputs[k].name.c_str(), worst, scale);
    EXPECT_LE(worst, 2e-2 * scale) << (*gpu)->signature.outputs[k].name;
  }

  driver::SessionOptions options;
  options.target = driver::Target::Cuda;
  options.tensorCores = "fp8";
  auto refused = driver::Session::open(examplePath("gpt.loom"), options);
  ASSERT_FALSE(bool(refused));
  EXPECT_NE(llvm::toString(refused.takeError())
                .find("tensor cores 'fp8': expected 3xtf32, tf32, bf16 or "
                      "none"),
            std::string::npos);
}

/// Three AdamW steps of GPT through the stand-in and on the CPU, from the
/// same parameters and batches (what Model::trainStep passes): the same
/// losses, gradient norms and parameters.
TEST(CudaStandIn, AdamwStepsMatchTheCpu) {
  auto cpuSession = openSession(driver::Target::Cpu);
  auto gpuSession = openSession(driver::Target::Cuda);
  ASSERT_TRUE(cpuSession && gpuSession);
  std::map<std::string, int64_t> bindings = {{"B", 2}, {"T", 8}};
  driver::Variant variant;
  variant.kind = driver::Variant::TrainStep;
  variant.optimizer = "kind=adamw";
  auto cpu = cpuSession->get("loss", bindings, variant);
  auto gpu = gpuSession->get("loss", bindings, variant);
  ASSERT_TRUE(bool(cpu)) << llvm::toString(cpu.takeError());
  ASSERT_TRUE(bool(gpu)) << llvm::toString(gpu.takeError());
  auto emulator = emulate(**gpu);
  ASSERT_NE(emulator, nullptr);
  auto cpuParams = ParamStore::create(cpuSession->params());
  auto gpuParams = ParamStore::create(gpuSession->params());
  ASSERT_TRUE(cpuParams.ok() && gpuParams.ok());
  ASSERT_TRUE(cpuParams.value().initialize(9).ok());
  ASSERT_TRUE(gpuParams.value().initialize(9).ok());
  size_t n = cpuParams.value().totalBytes() / sizeof(float);
  std::vector<float> m[2], v[2];
  for (int side = 0; side < 2; ++side) {
    m[side].assign(n, 0.0f);
    v[side].assign(n, 0.0f);
  }
  for (int step = 1; step <= 3; ++step) {
    std::vector<Tensor> batch = inputsFor(**cpu, 40 + step);
    float hyper[4] = {1e-3f, float(1 - std::pow(0.9, step)),
                      float(1 - std::pow(0.999, step)), 0.0f};
    float loss[2], norm[2];
    for (int side = 0; side < 2; ++side) {
      driver::CompiledFunction &fn = side == 0 ? **cpu : **gpu;
      ParamStore &params = side == 0 ? cpuParams.value() : gpuParams.value();
      // (m, v, hyper, tokens, targets): the batch's own m, v and hyper
      // tensors are replaced by the running ones.
      std::vector<void *> args = {m[side].data(), v[side].data(), hyper};
      for (size_t i = 3; i < batch.size(); ++i)
        args.push_back(batch[i].rawData());
      auto out = driver::invoke(fn, params.data(), args);
      ASSERT_TRUE(out.ok()) << out.status().message() << "\n" << launchError();
      // (loss, grad_norm, first_non_finite): the parameters and the
      // moments were updated in place.
      std::vector<Tensor> &o = out.value();
      ASSERT_EQ(o.size(), 3u);
      loss[side] = *o[0].data<float>();
      norm[side] = *o[1].data<float>();
      EXPECT_EQ(*o[2].data<int64_t>(), int64_t(n)) << "step " << step;
    }
    EXPECT_NEAR(loss[0], loss[1], 1e-5 * std::abs(loss[0])) << "step " << step;
    EXPECT_NEAR(norm[0], norm[1], 1e-4 * norm[0]) << "step " << step;
  }
  const float *p = reinterpret_cast<const float *>(cpuParams.value().data());
  const float *q = reinterpret_cast<const float *>(gpuParams.value().data());
  // Adam moves a parameter by about lr per step whatever its gradient's
  // size, so where a gradient is near zero, f32 sums in another order can
  // send it the other way (by up to 2 lr): few may differ by more than
  // 1e-5, none by more than 6 lr.
  double worst = 0;
  size_t apart = 0;
  for (size_t i = 0; i < n; ++i) {
    double d = std::abs(p[i] - q[i]);
    worst = std::max(worst, d);
    apart += d > 1e-5;
  }
  std::printf("[standin] AdamW x3: %zu of %zu parameters differ by > 1e-5, "
              "largest difference %.2e\n",
              apart, n, worst);
  EXPECT_LT(worst, 6e-3) << "largest parameter difference after 3 steps";
  EXPECT_LT(apart, n / 1000) << "parameters that differ by more than 1e-5";
}

/// Random token ids below 256, [2, 8].
Tensor tokens(uint32_t seed) {
  std::mt19937 rng(seed);
  Tensor t = Tensor::empty(DType::I32, {2, 8});
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data<int32_t>()[i] = int32_t(rng() % 256);
  return t;
}

/// Model with target cuda: the parameters and the AdamW moments stay on
/// the device from step to step, updated in place (a step copies the
/// hyperparameters and the batch over and the loss, the norm and the
/// first non-finite index back), the results are the CPU model's;
/// params() copies back only when the device's are newer, and what is
/// written through it reaches the device; an overflowing update is
/// counted on the device and rejected, leaving everything as it was.
TEST(CudaStandIn, ModelKeepsParametersAndMomentsOnTheDevice) {
  CompileOptions options;
  options.diskCache = false;
  options.seed = 11;
  auto cpuModel = compile(examplePath("gpt.loom"), options);
  options.target = "cuda";
  auto gpuModel = compile(examplePath("gpt.loom"), options);
  ASSERT_TRUE(cpuModel.ok()) << cpuModel.status().message();
  ASSERT_TRUE(gpuModel.ok()) << gpuModel.status().message();
  Model &cpu = cpuModel.value(), &gpu = gpuModel.value();
  std::vector<std::unique_ptr<GpuEmulator>> emulators;
  driver::ModelAccess::impl(gpu).session->onCudaCompiled =
      [&](driver::CompiledFunction &fn) { emulators.push_back(emulate(fn)); };
  size_t bytes = cpu.params().totalBytes(), n = bytes / sizeof(float);
  StepOptions step;
  OptimizerState cpuState, gpuState;
  uint64_t batchBytes = 2 * 2 * 8 * sizeof(int32_t), hyperBytes = 16;
  for (int s = 1; s <= 3; ++s) {
    std::vector<Tensor> batch = {tokens(100 + s), tokens(200 + s)};
    auto a = cpu.trainStep(step, cpuState, 1e-3, batch);
    Stats before = stats();
    GraphStats graphsBefore = graphStats();
    auto b = gpu.trainStep(step, gpuState, 1e-3, batch);
    Stats after = stats();
    GraphStats graphsAfter = graphStats();
    // The step's launches as one graph: captured once (the step updates
    // the same buffers in place), then replayed.
    EXPECT_EQ(graphsAfter.launches, graphsBefore.launches + 1) << "step " << s;
    EXPECT_EQ(graphsAfter.captures, graphsBefore.captures + (s == 1))
        << "step " << s;
    ASSERT_TRUE(a.ok()) << a.status().message();
    ASSERT_TRUE(b.ok()) << b.status().message() << "\n" << launchError();
    ASSERT_TRUE(a.value().committed && b.value().committed) << "step " << s;
    EXPECT_NEAR(a.value().loss, b.value().loss, 1e-5 * a.value().loss);
    EXPECT_NEAR(a.value().gradNorm, b.value().gradNorm,
                1e-4 * a.value().gradNorm);
    EXPECT_EQ(gpuState.step, s);
    EXPECT_TRUE(gpuState.m.empty() && gpuState.v.empty())
        << "the moments stay on the device";
    EXPECT_EQ(after.toHost - before.toHost, 2 * sizeof(float) + sizeof(int64_t))
        << "step " << s << ": the loss, the norm and the index come back";
    if (s == 1) {
      // The parameters went over once; the moments were zeroed there.
      EXPECT_EQ(after.toDevice - before.toDevice,
                bytes + hyperBytes + batchBytes);
      continue;
    }
    EXPECT_EQ(after.toDevice - before.toDevice, hyperBytes + batchBytes)
        << "step " << s << ": only the hyperparameters and the batch";
    EXPECT_EQ(after.allocations, before.allocations) << "step " << s;
  }

  // The host copy, brought up to date once.
  Stats before = stats();
  const ParamStore &host = std::as_const(gpu).params();
  EXPECT_EQ(stats().toHost - before.toHost, bytes);
  const ParamStore &again = std::as_const(gpu).params();
  EXPECT_EQ(stats().toHost - before.toHost, bytes) << "copied back once";
  EXPECT_EQ(&host, &again);
  const float *p = reinterpret_cast<const float *>(cpu.params().data());
  const float *q = reinterpret_cast<const float *>(host.data());
  double worst = 0;
  for (size_t i = 0; i < n; ++i)
    worst = std::max(worst, double(std::abs(p[i] - q[i])));
  EXPECT_LT(worst, 6e-3) << "(see AdamwStepsMatchTheCpu)";
  auto moments = gpu.hostCopy(gpuState);
  ASSERT_TRUE(moments.ok()) << moments.status().message();
  ASSERT_EQ(moments.value().m.size(), n);
  ASSERT_EQ(moments.value().v.size(), n);
  EXPECT_EQ(moments.value().device, nullptr);
  double mScale = 0, mWorst = 0;
  for (size_t i = 0; i < n; ++i) {
    mScale = std::max(mScale, double(std::abs(cpuState.m[i])));
    mWorst = std::max(mWorst,
                      double(std::abs(cpuState.m[i] - moments.value().m[i])));
  }
  EXPECT_LE(mWorst, 1e-3 * mScale) << "first moments";

  // Written on the host, seen by the device: both models from the same
  // values give the same loss.
  std::memcpy(gpu.params().data(), cpu.params().data(), bytes);
  std::vector<Tensor> batch = {tokens(7), tokens(8)};
  before = stats();
  auto lossCpu = cpu.call("loss", batch);
  auto lossGpu = gpu.call("loss", batch);
  ASSERT_TRUE(lossCpu.ok() && lossGpu.ok())
      << lossGpu.status().message() << "\n"
      << launchError();
  EXPECT_GE(stats().toDevice - before.toDevice, bytes) << "uploaded again";
  float l0 = *lossCpu.value()[0].data<float>();
  EXPECT_NEAR(l0, *lossGpu.value()[0].data<float>(), 1e-5 * l0);

  // An overflowing update (an infinite learning rate) is rejected on the
  // index the device returns; nothing changes.
  std::vector<float> kept(n);
  std::memcpy(kept.data(), std::as_const(gpu).params().data(), bytes);
  auto rejected = gpu.trainStep(step, gpuState, 1e39, batch);
  ASSERT_TRUE(rejected.ok()) << rejected.status().message();
  EXPECT_FALSE(rejected.value().committed);
  EXPECT_GE(rejected.value().nonFiniteUpdateAt, 0);
  EXPECT_EQ(gpuState.step, 3);
  // The device's parameters themselves (the host's copy is not refreshed
  // by a rejected step), bit for bit.
  std::vector<float> onDevice(n);
  ASSERT_TRUE(driver::ModelAccess::impl(gpu)
                  .device.params.download(onDevice.data(), bytes)
                  .ok());
  EXPECT_EQ(std::memcmp(kept.data(), onDevice.data(), bytes), 0);
  auto after = gpu.hostCopy(gpuState);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after.value().m, moments.value().m) << "moments unchanged";
  // The device's parameters (the step rewrote them in place with what was
  // there): the same loss as before, bit for bit.
  auto lossAfter = gpu.call("loss", batch);
  ASSERT_TRUE(lossAfter.ok()) << lossAfter.status().message();
  EXPECT_EQ(*lossAfter.value()[0].data<float>(),
            *lossGpu.value()[0].data<float>());

  // A step whose run fails after its kernels (the copy of the loss back)
  // may have updated the device's parameters in place: the error says so
  // and the host's parameters, current here, are what the next call uses.
  float lossBefore = *lossAfter.value()[0].data<float>();
  standIn().failCopiesBack(true);
  auto failed = gpu.trainStep(step, gpuState, 1e-3, batch);
  standIn().failCopiesBack(false);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("partly updated"), std::string::npos)
      << failed.status().message();
  EXPECT_EQ(gpuState.step, 3);
  auto lossAgain = gpu.call("loss", batch);
  ASSERT_TRUE(lossAgain.ok()) << lossAgain.status().message();
  EXPECT_EQ(*lossAgain.value()[0].data<float>(), lossBefore)
      << "the host's parameters were uploaded again";
  // After a committed step the device's parameters are the only current
  // ones: a failed step says that they, too, may be partly updated.
  auto committed = gpu.trainStep(step, gpuState, 1e-3, batch);
  ASSERT_TRUE(committed.ok() && committed.value().committed)
      << committed.status().message();
  standIn().failCopiesBack(true);
  auto failedAgain = gpu.trainStep(step, gpuState, 1e-3, batch);
  standIn().failCopiesBack(false);
  ASSERT_FALSE(failedAgain.ok());
  EXPECT_NE(failedAgain.status().message().find(
                "the parameters and the optimizer moments"),
            std::string::npos)
      << failedAgain.status().message();
  EXPECT_EQ(gpuState.step, 4);

  // The same state on the CPU model: its moments come back from the
  // device first.
  auto onCpu = cpu.trainStep(step, gpuState, 1e-3, batch);
  ASSERT_TRUE(onCpu.ok()) << onCpu.status().message();
  EXPECT_TRUE(onCpu.value().committed);
  EXPECT_EQ(gpuState.m.size(), n);
  EXPECT_EQ(gpuState.device, nullptr);
}

/// The Trainer on a target-cuda model, whose moments stay on the device:
/// a checkpoint holds the device's parameters and moments (resuming from it
/// repeats the steps bit for bit), and the LR finder restores both.
TEST(CudaStandIn, TrainerCheckpointsAndLrFinderOnTheDevice) {
  CompileOptions options;
  options.diskCache = false;
  options.seed = 3;
  options.target = "cuda";
  options.config = {{"d", "32"}, {"layers", "1"}, {"heads", "2"}};
  auto compiled = compile(examplePath("gpt.loom"), options);
  ASSERT_TRUE(compiled.ok()) << compiled.status().message();
  Model &model = compiled.value();
  std::vector<std::unique_ptr<GpuEmulator>> emulators;
  driver::ModelAccess::impl(model).session->onCudaCompiled =
      [&](driver::CompiledFunction &fn) { emulators.push_back(emulate(fn)); };
  std::vector<std::vector<Tensor>> batches;
  for (uint32_t b = 0; b < 4; ++b)
    batches.push_back({tokens(300 + b), tokens(400 + b)});
  TrainerOptions trainerOptions;
  trainerOptions.schedule = LrSchedule::constant(1e-2);
  std::string path = ::testing::TempDir() + "/standin-trainer.safetensors";
  std::vector<double> losses;
  {
    Trainer trainer(model, trainerOptions);
    for (int s = 0; s < 2; ++s)
      ASSERT_TRUE(trainer.step(batches[s]).ok()) << launchError();
    ASSERT_TRUE(trainer.saveCheckpoint(path).ok());
    for (int s = 2; s < 4; ++s) {
      auto r = trainer.step(batches[s]);
      ASSERT_TRUE(r.ok()) << r.status().message();
      losses.push_back(r.value().loss);
    }
  }
  Trainer resumed(model, trainerOptions);
  Status loaded = resumed.loadCheckpoint(path);
  ASSERT_TRUE(loaded.ok()) << loaded.message();
  EXPECT_EQ(resumed.stepCount(), 2);
  for (int s = 2; s < 4; ++s) {
    auto r = resumed.step(batches[s]);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r.value().loss, losses[size_t(s - 2)])
        << "step " << s + 1 << " after resuming";
  }
  EXPECT_TRUE(resumed.optimizerState().m.empty()) << "moments on the device";

  size_t bytes = std::as_const(model).params().totalBytes();
  std::vector<std::byte> before(bytes);
  std::memcpy(before.data(), std::as_const(model).params().data(), bytes);
  auto moments = model.hostCopy(resumed.optimizerState());
  ASSERT_TRUE(moments.ok());
  auto finder = resumed.findLr(
      [&](int64_t i) { return batches[size_t(i) % batches.size()]; }, 1e-4, 1.0,
      6);
  ASSERT_TRUE(finder.ok()) << finder.status().message();
  EXPECT_EQ(
      std::memcmp(before.data(), std::as_const(model).params().data(), bytes),
      0)
      << "findLr restores the parameters";
  auto after = model.hostCopy(resumed.optimizerState());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after.value().m, moments.value().m) << "and the moments";
  EXPECT_EQ(after.value().v, moments.value().v);
  EXPECT_EQ(resumed.stepCount(), 4);

  // A copy back that fails is an error, and writes no checkpoint from the
  // stale host copy; the device's values are still there afterwards.
  ASSERT_TRUE(resumed.step(batches[0]).ok());
  std::remove(path.c_str());
  standIn().failCopiesBack(true);
  Status failed = resumed.saveCheckpoint(path);
  Status failedModel = model.saveCheckpoint(path);
  standIn().failCopiesBack(false);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.message().find("back from the device"), std::string::npos)
      << failed.message();
  EXPECT_FALSE(failedModel.ok());
  EXPECT_FALSE(std::ifstream(path).good()) << "no checkpoint written";
  EXPECT_TRUE(resumed.saveCheckpoint(path).ok());
  std::remove(path.c_str());
}

/// What the runtime reports when the driver fails: a kernel missing from
/// the PTX, a device allocation (all or nothing: the next run retries), a
/// launch (named).
TEST(CudaStandIn, ErrorsSayWhatFailed) {
  auto session = openSession(driver::Target::Cuda);
  ASSERT_TRUE(session);
  auto fn = session->get("loss", {{"B", 2}, {"T", 8}});
  ASSERT_TRUE(bool(fn)) << llvm::toString(fn.takeError());
  auto emulator = emulate(**fn);
  ASSERT_NE(emulator, nullptr);
  const gpu::Program &program = (*fn)->gpu->program();

  gpu::Program renamed = program;
  renamed.functions.front().launches.front().kernel = "no_such_kernel";
  auto missing = cuda::Executable::load(renamed);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(
                "kernel 'no_such_kernel' is not in the PTX"),
            std::string::npos)
      << missing.status().message();

  gpu::Program notPtx = program;
  notPtx.ptx = "garbage";
  auto bad = cuda::Executable::load(notPtx);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("loading the PTX"), std::string::npos);
  EXPECT_NE(bad.status().message().find("stand-in: not PTX"), std::string::npos)
      << "the driver's error log is passed on: " << bad.status().message();

  auto exe = cuda::Executable::load(program);
  ASSERT_TRUE(exe.ok()) << exe.status().message();
  std::vector<Tensor> inputs = inputsFor(**fn, 3);
  auto store = ParamStore::create(session->params());
  ASSERT_TRUE(store.ok() && store.value().initialize(1).ok());
  std::vector<Tensor> outputs;
  std::vector<void *> pointers = {store.value().data()};
  for (Tensor &t : inputs)
    pointers.push_back(t.rawData());
  for (const driver::ArgSpec &spec : (*fn)->signature.outputs) {
    outputs.push_back(Tensor::empty(spec.dtype, spec.shape));
    pointers.push_back(outputs.back().rawData());
  }
  Stats before = stats();
  standIn().failAllocationsAbove(256);
  Status oom = exe.value()->run((*fn)->entry, pointers);
  standIn().failAllocationsAbove(SIZE_MAX);
  ASSERT_FALSE(oom.ok());
  EXPECT_NE(oom.message().find("device bytes for"), std::string::npos)
      << oom.message();
  EXPECT_NE(oom.message().find("out of memory"), std::string::npos);
  EXPECT_EQ(stats().liveBytes, before.liveBytes) << "a failed run keeps none";

  // The sequence is captured as a graph; its replay fails, so it runs
  // again launch by launch, which names the kernel, and graphs stay off.
  EXPECT_TRUE(exe.value()->usesGraphs());
  standIn().setLauncher(failingLaunch, nullptr);
  Status failed = exe.value()->run((*fn)->entry, pointers);
  standIn().setLauncher(emulateLaunch, nullptr);
  EXPECT_FALSE(exe.value()->usesGraphs());
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.message().find(
                "launching kernel '" +
                program.find((*fn)->entry)->launches.front().kernel +
                "' failed: unspecified launch failure"),
            std::string::npos)
      << failed.message();

  Status ran = exe.value()->run((*fn)->entry, pointers);
  EXPECT_TRUE(ran.ok()) << ran.message() << "\n" << launchError();
  exe.value().reset();
  EXPECT_EQ(stats().liveBytes, before.liveBytes)
      << "an unloaded program frees its device memory";
}

} // namespace

int main(int argc, char **argv) {
  // Before the runtime first opens the driver.
  setenv("LOOM_CUDA_DRIVER", LOOM_CUDA_STANDIN, 1);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
