//===- main.cpp - Run a compiled GPU program on the device ---------------===//
//
//   loom-gpu-run DIR --fn NAME [--inputs DIR] [--expect DIR] [--tol X]
//                [--repeats N] [--warmup N] [--int-max N] [--steps N]
//
// DIR holds what `loomc compile --target=nvptx --emit=ptx` writes
// (kernels.ptx, manifest.json). The program runs through the CUDA driver
// (loom/Cuda.h) and nothing else: no LLVM or MLIR, so it runs on GPU
// machines where the compiler is not installed.
//
// Inputs are DIR/<i>.bin files (argument i's raw bytes) with --inputs, else
// random (f32 ~ N(0, 0.5), integers uniform in [0, --int-max)). With
// --expect, the outputs are compared with expected files (<i>.bin): the
// largest |gpu - expected| over the output's largest |expected| must stay
// under --tol; --steps N runs the function N times (a training step
// updates its parameters and moments in place, so the runs chain) and
// compares the last outputs, then does it again with every argument in
// device memory (as a target-cuda Model keeps them). Timing: the median and
// minimum over
// --repeats runs of the device time of the launches (CUDA events), of the
// whole call (copies included), and of the call with every argument
// resident on the device (as Model keeps a training step's parameters).
//
//===----------------------------------------------------------------------===//

#include "loom/Cuda.h"
#include "loom/GpuProgram.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

using namespace loom;

namespace {

int fail(const std::string &message) {
  std::fprintf(stderr, "loom-gpu-run: error: %s\n", message.c_str());
  return 2;
}

bool readFile(const std::string &path, std::string &out) {
  std::ifstream file(path, std::ios::binary);
  if (!file)
    return false;
  std::stringstream text;
  text << file.rdbuf();
  out = text.str();
  return true;
}

/// Every argument of `fn` in a device buffer of its own, the inputs
/// uploaded from `host` (outputs left as allocated): what a Model keeps
/// resident between calls.
Result<std::vector<cuda::DeviceBuffer>>
residentArguments(const gpu::Function &fn,
                  const std::vector<std::vector<uint8_t>> &host) {
  std::vector<cuda::DeviceBuffer> buffers;
  for (size_t i = 0; i < fn.args.size(); ++i) {
    auto buffer = cuda::DeviceBuffer::allocate(size_t(fn.args[i].bytes));
    if (!buffer.ok())
      return buffer.status();
    buffers.push_back(std::move(buffer.value()));
    if (fn.args[i].read())
      LOOM_RETURN_IF_ERROR(
          buffers.back().upload(host[i].data(), size_t(fn.args[i].bytes)));
  }
  return buffers;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

} // namespace

int main(int argc, char **argv) {
  std::string dir, function, inputs, expect;
  double tol = 1e-4;
  int repeats = 5, warmup = 1, steps = 1;
  int64_t intMax = 2;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      return i + 1 < argc ? argv[++i] : std::string();
    };
    if (arg == "--fn")
      function = value();
    else if (arg == "--inputs")
      inputs = value();
    else if (arg == "--expect")
      expect = value();
    else if (arg == "--tol")
      tol = std::atof(value().c_str());
    else if (arg == "--repeats")
      repeats = std::atoi(value().c_str());
    else if (arg == "--warmup")
      warmup = std::atoi(value().c_str());
    else if (arg == "--int-max")
      intMax = std::atoll(value().c_str());
    else if (arg == "--steps")
      steps = std::atoi(value().c_str());
    else if (!arg.empty() && arg[0] != '-' && dir.empty())
      dir = arg;
    else
      return fail("unknown argument '" + arg + "'");
  }
  if (dir.empty() || function.empty())
    return fail("usage: loom-gpu-run DIR --fn NAME [--inputs DIR] "
                "[--expect DIR] [--tol X] [--repeats N] [--int-max N] "
                "[--steps N]");
  if (Status s = cuda::available(); !s.ok())
    return fail(s.message());
  std::string manifest, ptx;
  if (!readFile(dir + "/manifest.json", manifest) ||
      !readFile(dir + "/kernels.ptx", ptx))
    return fail("cannot read " + dir + "/manifest.json and kernels.ptx");
  auto program = gpu::fromManifest(manifest);
  if (!program.ok())
    return fail(program.status().message());
  program.value().ptx = ptx;
  const gpu::Function *fn = program.value().find(function);
  if (!fn)
    return fail("no function '" + function + "' in " + dir);
  gpu::Function signature = *fn;
  if (repeats < 1 || warmup < 0 || steps < 1)
    return fail("--repeats and --steps must be at least 1, --warmup 0");
  auto device = cuda::deviceDescription();
  auto compileStart = std::chrono::steady_clock::now();
  auto exe = cuda::Executable::load(std::move(program.value()));
  if (!exe.ok())
    return fail(exe.status().message());
  double loadMs = std::chrono::duration<double, std::milli>(
                      std::chrono::steady_clock::now() - compileStart)
                      .count();

  // Host buffers.
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  std::vector<std::vector<uint8_t>> buffers;
  std::vector<void *> pointers;
  for (size_t i = 0; i < signature.args.size(); ++i) {
    const gpu::Argument &a = signature.args[i];
    buffers.emplace_back(std::max<int64_t>(a.bytes, 4), 0);
    std::vector<uint8_t> &b = buffers.back();
    if (a.read()) {
      std::string path = inputs + "/" + std::to_string(i) + ".bin";
      std::string data;
      if (!inputs.empty()) {
        if (!readFile(path, data) || int64_t(data.size()) != a.bytes)
          return fail("cannot read " + std::to_string(a.bytes) +
                      " bytes of input '" + a.name + "' from " + path);
        std::memcpy(b.data(), data.data(), data.size());
      } else if (a.dtype == "f32") {
        for (int64_t j = 0; j < a.bytes / 4; ++j)
          reinterpret_cast<float *>(b.data())[j] = normal(rng);
      } else if (a.dtype == "i32") {
        for (int64_t j = 0; j < a.bytes / 4; ++j)
          reinterpret_cast<int32_t *>(b.data())[j] =
              int32_t(rng() % uint64_t(std::max<int64_t>(intMax, 1)));
      } else if (a.dtype == "i64") {
        for (int64_t j = 0; j < a.bytes / 8; ++j)
          reinterpret_cast<int64_t *>(b.data())[j] = int64_t(rng() % 1000);
      } else {
        for (int64_t j = 0; j < a.bytes; ++j)
          b[j] = uint8_t(rng() & 1);
      }
    }
    pointers.push_back(b.data());
  }

  // Numerics: N chained runs against the expected outputs, twice: through
  // host buffers (copied over and back by each run) and with every argument
  // resident on the device.
  int status = 0;
  auto check = [&](const char *how,
                   const std::vector<std::vector<uint8_t>> &got) {
    for (size_t i = 0; i < signature.args.size(); ++i) {
      const gpu::Argument &a = signature.args[i];
      if (!a.output || (a.dtype != "f32" && a.dtype != "i64"))
        continue;
      std::string data;
      std::string path = expect + "/" + std::to_string(i) + ".bin";
      if (!readFile(path, data) || int64_t(data.size()) != a.bytes) {
        std::printf("check %s %s: cannot read the expected values from %s: "
                    "FAIL\n",
                    function.c_str(), a.name.c_str(), path.c_str());
        status = 1;
        continue;
      }
      if (a.dtype == "i64") { // an index (a step's first non-finite update)
        bool same = std::memcmp(data.data(), got[i].data(), data.size()) == 0;
        std::printf("check %s%s %s: %s\n", function.c_str(), how,
                    a.name.c_str(), same ? "the same: PASS" : "differs: FAIL");
        if (!same)
          status = 1;
        continue;
      }
      const float *want = reinterpret_cast<const float *>(data.data());
      const float *have = reinterpret_cast<const float *>(got[i].data());
      double scale = 0, worst = 0;
      bool finite = true;
      for (int64_t j = 0; j < a.bytes / 4; ++j) {
        scale = std::max(scale, double(std::fabs(want[j])));
        finite &= std::isfinite(have[j]);
        worst = std::max(worst, double(std::fabs(have[j] - want[j])));
      }
      bool ok = finite && worst <= tol * std::max(scale, 1e-30);
      std::printf("check %s%s %s: max |gpu - expected| %.3e, scale %.3e, "
                  "relative %.2e: %s\n",
                  function.c_str(), how, a.name.c_str(), worst, scale,
                  scale > 0 ? worst / scale : worst, ok ? "PASS" : "FAIL");
      if (!ok)
        status = 1;
    }
  };
  if (!expect.empty()) {
    std::vector<std::vector<uint8_t>> initial = buffers;
    for (int s = 0; s < steps; ++s)
      if (Status r = exe.value()->run(function, pointers); !r.ok())
        return fail(r.message());
    check("", buffers);
    auto resident = residentArguments(signature, initial);
    if (!resident.ok())
      return fail(resident.status().message());
    std::vector<cuda::DeviceBuffer> &onDevice = resident.value();
    std::vector<cuda::Binding> bound;
    for (cuda::DeviceBuffer &buffer : onDevice)
      bound.push_back(&buffer);
    for (int s = 0; s < steps; ++s)
      if (Status r = exe.value()->run(function, bound); !r.ok())
        return fail(r.message());
    std::vector<std::vector<uint8_t>> got = initial;
    for (size_t i = 0; i < signature.args.size(); ++i)
      if (signature.args[i].output)
        if (Status d = onDevice[i].download(got[i].data(), got[i].size());
            !d.ok())
          return fail(d.message());
    check(" (resident)", got);
    if (steps > 1 || status)
      return status;
  }

  // Timing.
  std::vector<double> kernel, wall;
  for (int r = 0; r < warmup + repeats; ++r) {
    auto start = std::chrono::steady_clock::now();
    if (Status s = exe.value()->run(function, pointers); !s.ok())
      return fail(s.message());
    double ms = std::chrono::duration<double, std::milli>(
                    std::chrono::steady_clock::now() - start)
                    .count();
    if (r >= warmup) {
      kernel.push_back(exe.value()->lastKernelMilliseconds());
      wall.push_back(ms);
    }
  }
  // The same calls with every argument resident on the device (as Model
  // keeps a training step's parameters and moments): launches and their
  // overhead, no copies.
  auto resident = residentArguments(signature, buffers);
  if (!resident.ok())
    return fail(resident.status().message());
  std::vector<cuda::Binding> bound;
  for (cuda::DeviceBuffer &buffer : resident.value())
    bound.push_back(&buffer);
  std::vector<double> onDevice;
  for (int r = 0; r < warmup + repeats; ++r) {
    auto start = std::chrono::steady_clock::now();
    if (Status s = exe.value()->run(function, bound); !s.ok())
      return fail(s.message());
    if (r >= warmup)
      onDevice.push_back(std::chrono::duration<double, std::milli>(
                             std::chrono::steady_clock::now() - start)
                             .count());
  }
  std::printf("time %s: kernels median %.4f ms min %.4f ms, call (copies "
              "included) median %.3f ms, call (arguments resident) median "
              "%.3f ms; %zu launches%s; PTX load %.0f ms; %s\n",
              function.c_str(), median(kernel),
              *std::min_element(kernel.begin(), kernel.end()), median(wall),
              median(onDevice), signature.launches.size(),
              exe.value()->usesGraphs() ? " (a CUDA graph)" : "", loadMs,
              device.ok() ? device.value().c_str() : "?");
  return status;
}
