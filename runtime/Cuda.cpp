//===- Cuda.cpp - The CUDA driver, opened at run time ---------------------===//
//
// The few driver API entry points Loom uses, resolved with dlsym from
// libcuda.so.1 (by their versioned names, which is what cuda.h's macros
// expand to). Types are declared here with the driver ABI's layout, so the
// runtime builds without the CUDA toolkit.
//
//===----------------------------------------------------------------------===//

#include "loom/Cuda.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

using namespace loom;
using namespace loom::cuda;

namespace {

// The driver ABI (cuda.h): results are ints (0 = CUDA_SUCCESS), handles
// are opaque pointers, device pointers 64-bit integers.
using CUresult = int;
using CUdevice = int;
using CUcontext = struct CUctx_st *;
using CUmodule = struct CUmod_st *;
using CUfunction = struct CUfunc_st *;
using CUstream = struct CUstream_st *;
using CUevent = struct CUevent_st *;
using CUgraph = struct CUgraph_st *;
using CUgraphExec = struct CUgraphExec_st *;
using CUdeviceptr = unsigned long long;
constexpr int kJitInfoLogBuffer = 3, kJitInfoLogBufferSize = 4,
              kJitErrorLogBuffer = 5, kJitErrorLogBufferSize = 6;
constexpr int kAttrComputeMajor = 75, kAttrComputeMinor = 76;
// cuStreamCreate's flags: a blocking stream, ordered after the synchronous
// copies of the legacy stream (DeviceBuffer's, the host-bound arguments').
constexpr unsigned kStreamDefault = 0;
// cuStreamBeginCapture's mode: only this thread's calls are checked.
constexpr int kCaptureModeThreadLocal = 1;

struct Driver {
  void *handle = nullptr;
  Status status;
  CUcontext context = nullptr;
  CUdevice device = 0;

  CUresult (*cuInit)(unsigned);
  CUresult (*cuDeviceGetCount)(int *);
  CUresult (*cuDeviceGet)(CUdevice *, int);
  CUresult (*cuDeviceGetName)(char *, int, CUdevice);
  CUresult (*cuDeviceGetAttribute)(int *, int, CUdevice);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
  CUresult (*cuCtxSetCurrent)(CUcontext);
  CUresult (*cuCtxSynchronize)();
  CUresult (*cuModuleLoadDataEx)(CUmodule *, const void *, unsigned, int *,
                                 void **);
  CUresult (*cuModuleUnload)(CUmodule);
  CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
  CUresult (*cuMemAlloc)(CUdeviceptr *, size_t);
  CUresult (*cuMemFree)(CUdeviceptr);
  CUresult (*cuMemcpyHtoD)(CUdeviceptr, const void *, size_t);
  CUresult (*cuMemcpyDtoH)(void *, CUdeviceptr, size_t);
  CUresult (*cuMemsetD8)(CUdeviceptr, unsigned char, size_t);
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned,
                             unsigned, unsigned, unsigned, CUstream, void **,
                             void **);
  CUresult (*cuEventCreate)(CUevent *, unsigned);
  CUresult (*cuEventRecord)(CUevent, CUstream);
  CUresult (*cuEventSynchronize)(CUevent);
  CUresult (*cuEventElapsedTime)(float *, CUevent, CUevent);
  CUresult (*cuEventDestroy)(CUevent);
  CUresult (*cuGetErrorString)(CUresult, const char **);
  // CUDA graphs (optional: without them every launch goes one by one).
  CUresult (*cuStreamCreate)(CUstream *, unsigned) = nullptr;
  CUresult (*cuStreamDestroy)(CUstream) = nullptr;
  CUresult (*cuStreamBeginCapture)(CUstream, int) = nullptr;
  CUresult (*cuStreamEndCapture)(CUstream, CUgraph *) = nullptr;
  CUresult (*cuGraphInstantiate)(CUgraphExec *, CUgraph,
                                 unsigned long long) = nullptr;
  CUresult (*cuGraphLaunch)(CUgraphExec, CUstream) = nullptr;
  CUresult (*cuGraphExecDestroy)(CUgraphExec) = nullptr;
  CUresult (*cuGraphDestroy)(CUgraph) = nullptr;
  bool graphs = false;

  std::string errorText(CUresult r) const {
    const char *text = nullptr;
    if (cuGetErrorString && cuGetErrorString(r, &text) == 0 && text)
      return std::string(text) + " (CUDA error " + std::to_string(r) + ")";
    return "CUDA error " + std::to_string(r);
  }
  Status check(CUresult r, const std::string &what) const {
    if (r == 0)
      return Status();
    return Status::error(what + ": " + errorText(r));
  }
};

template <class Fn> bool resolve(void *handle, Fn &fn, const char *name) {
  fn = reinterpret_cast<Fn>(dlsym(handle, name));
  return fn != nullptr;
}

Driver &driver() {
  static Driver d;
  static std::once_flag once;
  std::call_once(once, [] {
    // LOOM_CUDA_DRIVER: another driver library (a driver outside the
    // loader's path, or the tests' stand-in that runs kernels on the CPU).
    const char *library = std::getenv("LOOM_CUDA_DRIVER");
    if (!library || !*library)
      library = "libcuda.so.1";
    d.handle = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    if (!d.handle) {
      const char *why = dlerror();
      d.status = Status::error(std::string("no CUDA driver: ") +
                               (why ? why : library));
      return;
    }
    bool ok =
        resolve(d.handle, d.cuInit, "cuInit") &&
        resolve(d.handle, d.cuDeviceGetCount, "cuDeviceGetCount") &&
        resolve(d.handle, d.cuDeviceGet, "cuDeviceGet") &&
        resolve(d.handle, d.cuDeviceGetName, "cuDeviceGetName") &&
        resolve(d.handle, d.cuDeviceGetAttribute, "cuDeviceGetAttribute") &&
        resolve(d.handle, d.cuDevicePrimaryCtxRetain,
                "cuDevicePrimaryCtxRetain") &&
        resolve(d.handle, d.cuCtxSetCurrent, "cuCtxSetCurrent") &&
        resolve(d.handle, d.cuCtxSynchronize, "cuCtxSynchronize") &&
        resolve(d.handle, d.cuModuleLoadDataEx, "cuModuleLoadDataEx") &&
        resolve(d.handle, d.cuModuleUnload, "cuModuleUnload") &&
        resolve(d.handle, d.cuModuleGetFunction, "cuModuleGetFunction") &&
        resolve(d.handle, d.cuMemAlloc, "cuMemAlloc_v2") &&
        resolve(d.handle, d.cuMemFree, "cuMemFree_v2") &&
        resolve(d.handle, d.cuMemcpyHtoD, "cuMemcpyHtoD_v2") &&
        resolve(d.handle, d.cuMemcpyDtoH, "cuMemcpyDtoH_v2") &&
        resolve(d.handle, d.cuMemsetD8, "cuMemsetD8_v2") &&
        resolve(d.handle, d.cuLaunchKernel, "cuLaunchKernel") &&
        resolve(d.handle, d.cuEventCreate, "cuEventCreate") &&
        resolve(d.handle, d.cuEventRecord, "cuEventRecord") &&
        resolve(d.handle, d.cuEventSynchronize, "cuEventSynchronize") &&
        resolve(d.handle, d.cuEventElapsedTime, "cuEventElapsedTime") &&
        resolve(d.handle, d.cuEventDestroy, "cuEventDestroy_v2") &&
        resolve(d.handle, d.cuGetErrorString, "cuGetErrorString");
    if (!ok) {
      d.status = Status::error("the CUDA driver lacks an entry point Loom "
                               "needs (driver too old?)");
      return;
    }
    d.graphs =
        resolve(d.handle, d.cuStreamCreate, "cuStreamCreate") &&
        resolve(d.handle, d.cuStreamDestroy, "cuStreamDestroy_v2") &&
        resolve(d.handle, d.cuStreamBeginCapture, "cuStreamBeginCapture_v2") &&
        resolve(d.handle, d.cuStreamEndCapture, "cuStreamEndCapture") &&
        resolve(d.handle, d.cuGraphInstantiate,
                "cuGraphInstantiateWithFlags") &&
        resolve(d.handle, d.cuGraphLaunch, "cuGraphLaunch") &&
        resolve(d.handle, d.cuGraphExecDestroy, "cuGraphExecDestroy") &&
        resolve(d.handle, d.cuGraphDestroy, "cuGraphDestroy");
    if (Status s = d.check(d.cuInit(0), "no usable CUDA driver (cuInit)");
        !s.ok()) {
      d.status = s;
      return;
    }
    int count = 0;
    if (d.cuDeviceGetCount(&count) != 0 || count == 0) {
      d.status = Status::error("no CUDA device");
      return;
    }
    if (Status s = d.check(d.cuDeviceGet(&d.device, 0), "cuDeviceGet");
        !s.ok()) {
      d.status = s;
      return;
    }
    d.status = d.check(d.cuDevicePrimaryCtxRetain(&d.context, d.device),
                       "cuDevicePrimaryCtxRetain");
  });
  return d;
}

/// Held by what uses the legacy stream (synchronous copies, allocations
/// and frees) and by stream captures: while a blocking stream is being
/// captured, the driver rejects the legacy stream's use from any thread.
std::mutex &legacyStreamUse() {
  static std::mutex mutex;
  return mutex;
}

/// LOOM_CUDA_SYNC=1: each kernel waited for, so a fault names its kernel
/// (and no graphs, whose replays would not).
bool syncEachKernel() {
  static const bool sync = [] {
    const char *v = std::getenv("LOOM_CUDA_SYNC");
    return v && std::strcmp(v, "0") != 0;
  }();
  return sync;
}

/// The driver, made current on this thread; an error when unavailable.
Result<Driver *> current() {
  Driver &d = driver();
  if (!d.status.ok())
    return d.status;
  LOOM_RETURN_IF_ERROR(
      d.check(d.cuCtxSetCurrent(d.context), "cuCtxSetCurrent"));
  return &d;
}

} // namespace

Status loom::cuda::available() {
  auto d = current();
  return d.ok() ? Status() : d.status();
}

Result<std::string> loom::cuda::deviceArch() {
  auto d = current();
  if (!d.ok())
    return d.status();
  int major = 0, minor = 0;
  Driver &drv = *d.value();
  LOOM_RETURN_IF_ERROR(
      drv.check(drv.cuDeviceGetAttribute(&major, kAttrComputeMajor, drv.device),
                "cuDeviceGetAttribute"));
  LOOM_RETURN_IF_ERROR(
      drv.check(drv.cuDeviceGetAttribute(&minor, kAttrComputeMinor, drv.device),
                "cuDeviceGetAttribute"));
  return "sm_" + std::to_string(major) + std::to_string(minor);
}

Result<std::string> loom::cuda::deviceDescription() {
  auto d = current();
  if (!d.ok())
    return d.status();
  char name[256] = {0};
  Driver &drv = *d.value();
  LOOM_RETURN_IF_ERROR(
      drv.check(drv.cuDeviceGetName(name, sizeof(name) - 1, drv.device),
                "cuDeviceGetName"));
  auto arch = deviceArch();
  if (!arch.ok())
    return arch.status();
  return std::string(name) + " (" + arch.value() + ")";
}

/// Device memory of one function: a buffer per argument bound to host
/// memory (0 until a run binds it so) and the workspace, when no run
/// passed one.
struct FunctionMemory {
  std::vector<CUdeviceptr> args;
  CUdeviceptr workspace = 0;
};

/// A function's launch sequence captured as a CUDA graph, for one set of
/// buffer addresses (kernel arguments are values: other buffers need
/// another graph).
struct CapturedPlan {
  std::vector<CUdeviceptr> addresses;
  CUgraphExec exec = nullptr;
};

struct Executable::State {
  /// One run at a time: runs share the device buffers.
  std::mutex running;
  Driver *driver = nullptr;
  CUmodule module = nullptr;
  std::map<std::string, CUfunction> functions;
  std::map<std::string, FunctionMemory> memory;
  CUevent start = nullptr, stop = nullptr;
  /// Where the launches go: a stream of the executable's own when graphs
  /// are on (capture needs one), else the legacy stream.
  CUstream stream = nullptr;
  bool graphs = false;
  /// The graphs of each function, the most recently used last.
  std::map<std::string, std::vector<CapturedPlan>> captured;
  uint64_t captures = 0;

  ~State() {
    if (!driver)
      return;
    std::lock_guard<std::mutex> lock(legacyStreamUse());
    driver->cuCtxSetCurrent(driver->context);
    for (auto &[name, plans] : captured)
      for (CapturedPlan &plan : plans)
        driver->cuGraphExecDestroy(plan.exec);
    if (stream)
      driver->cuStreamDestroy(stream);
    for (auto &[name, mem] : memory) {
      for (CUdeviceptr p : mem.args)
        if (p)
          driver->cuMemFree(p);
      if (mem.workspace)
        driver->cuMemFree(mem.workspace);
    }
    if (start)
      driver->cuEventDestroy(start);
    if (stop)
      driver->cuEventDestroy(stop);
    if (module)
      driver->cuModuleUnload(module);
  }
};

//===- DeviceBuffer ------------------------------------------------------===//

DeviceBuffer::~DeviceBuffer() {
  if (!address)
    return;
  Driver &d = driver();
  std::lock_guard<std::mutex> lock(legacyStreamUse());
  if (d.status.ok() && d.cuCtxSetCurrent(d.context) == 0)
    d.cuMemFree(CUdeviceptr(address));
}

DeviceBuffer::DeviceBuffer(DeviceBuffer &&other) noexcept
    : address(std::exchange(other.address, 0)),
      bytes(std::exchange(other.bytes, 0)) {}

DeviceBuffer &DeviceBuffer::operator=(DeviceBuffer &&other) noexcept {
  if (this == &other)
    return *this;
  DeviceBuffer old(std::move(*this));
  swap(*this, other);
  return *this;
}

Result<DeviceBuffer> DeviceBuffer::allocate(size_t bytes) {
  auto d = current();
  if (!d.ok())
    return d.status();
  Driver &drv = *d.value();
  CUdeviceptr p = 0;
  std::lock_guard<std::mutex> lock(legacyStreamUse());
  LOOM_RETURN_IF_ERROR(
      drv.check(drv.cuMemAlloc(&p, std::max<size_t>(bytes, 4)),
                "allocating " + std::to_string(bytes) + " device bytes"));
  DeviceBuffer buffer;
  buffer.address = p;
  buffer.bytes = bytes;
  return buffer;
}

/// The driver, current, for a copy of `count` bytes at `offset` of a
/// buffer of `bytes` (`direction`: "to" or "from" the device).
static Result<Driver *> copyDriver(size_t count, size_t offset, size_t bytes,
                                   const char *direction) {
  if (count > bytes || offset > bytes - count)
    return Status::error("copying " + std::to_string(count) + " bytes " +
                         direction + " a device buffer of " +
                         std::to_string(bytes) + " at offset " +
                         std::to_string(offset));
  return current();
}

Status DeviceBuffer::upload(const void *host, size_t count, size_t offset) {
  auto d = copyDriver(count, offset, bytes, "to");
  if (!d.ok() || count == 0)
    return d.status();
  Driver &drv = *d.value();
  std::lock_guard<std::mutex> lock(legacyStreamUse());
  return drv.check(drv.cuMemcpyHtoD(CUdeviceptr(address + offset), host, count),
                   "copying " + std::to_string(count) + " bytes to the device");
}

Status DeviceBuffer::download(void *host, size_t count, size_t offset) const {
  auto d = copyDriver(count, offset, bytes, "from");
  if (!d.ok() || count == 0)
    return d.status();
  Driver &drv = *d.value();
  std::lock_guard<std::mutex> lock(legacyStreamUse());
  return drv.check(drv.cuMemcpyDtoH(host, CUdeviceptr(address + offset), count),
                   "copying " + std::to_string(count) +
                       " bytes back from the device");
}

Status DeviceBuffer::zero() {
  auto d = current();
  if (!d.ok() || bytes == 0)
    return d.status();
  Driver &drv = *d.value();
  std::lock_guard<std::mutex> lock(legacyStreamUse());
  return drv.check(drv.cuMemsetD8(CUdeviceptr(address), 0, bytes),
                   "zeroing " + std::to_string(bytes) + " device bytes");
}

Executable::~Executable() = default;

bool Executable::usesGraphs() const {
  std::lock_guard<std::mutex> lock(state->running);
  return state->graphs;
}

uint64_t Executable::graphCaptures() const {
  std::lock_guard<std::mutex> lock(state->running);
  return state->captures;
}

Result<std::unique_ptr<Executable>> Executable::load(gpu::Program program) {
  auto d = current();
  if (!d.ok())
    return d.status();
  Driver &drv = *d.value();
  std::unique_ptr<Executable> exe(new Executable());
  exe->state = std::make_unique<State>();
  exe->state->driver = &drv;
  std::string ptx = program.ptx;
  std::vector<char> errorLog(1 << 16, 0), infoLog(1 << 16, 0);
  int options[] = {kJitErrorLogBuffer, kJitErrorLogBufferSize,
                   kJitInfoLogBuffer, kJitInfoLogBufferSize};
  void *values[] = {
      errorLog.data(), reinterpret_cast<void *>(uintptr_t(errorLog.size())),
      infoLog.data(), reinterpret_cast<void *>(uintptr_t(infoLog.size()))};
  CUresult r = drv.cuModuleLoadDataEx(&exe->state->module, ptx.c_str(), 4,
                                      options, values);
  if (r != 0)
    return Status::error("loading the PTX (" + program.arch +
                         ") failed: " + drv.errorText(r) + "\n" +
                         std::string(errorLog.data()));
  for (const gpu::Function &fn : program.functions)
    for (const gpu::Launch &launch : fn.launches) {
      if (exe->state->functions.count(launch.kernel))
        continue;
      CUfunction f = nullptr;
      LOOM_RETURN_IF_ERROR(
          drv.check(drv.cuModuleGetFunction(&f, exe->state->module,
                                            launch.kernel.c_str()),
                    "kernel '" + launch.kernel + "' is not in the PTX"));
      exe->state->functions[launch.kernel] = f;
    }
  // LOOM_CUDA_GRAPHS=0: every launch one by one (LOOM_CUDA_SYNC=1 does
  // that too, to name the kernel that faults).
  static const bool graphsWanted = [] {
    const char *graphs = std::getenv("LOOM_CUDA_GRAPHS");
    return !(graphs && std::strcmp(graphs, "0") == 0) && !syncEachKernel();
  }();
  if (drv.graphs && graphsWanted &&
      drv.cuStreamCreate(&exe->state->stream, kStreamDefault) == 0)
    exe->state->graphs = true;
  LOOM_RETURN_IF_ERROR(
      drv.check(drv.cuEventCreate(&exe->state->start, 0), "cuEventCreate"));
  LOOM_RETURN_IF_ERROR(
      drv.check(drv.cuEventCreate(&exe->state->stop, 0), "cuEventCreate"));
  exe->prog = std::move(program);
  return exe;
}

Status Executable::run(const std::string &name,
                       const std::vector<void *> &pointers) {
  std::vector<Binding> args(pointers.begin(), pointers.end());
  return run(name, args);
}

Status Executable::run(const std::string &name,
                       const std::vector<Binding> &bound,
                       DeviceBuffer *workspace) {
  const gpu::Function *fn = prog.find(name);
  if (!fn)
    return Status::error("no GPU function '" + name + "' in the program");
  if (bound.size() != fn->args.size())
    return Status::error("GPU function '" + name + "' takes " +
                         std::to_string(fn->args.size()) + " buffers, got " +
                         std::to_string(bound.size()));
  for (size_t i = 0; i < bound.size(); ++i)
    if (bound[i].device && bound[i].device->size() < size_t(fn->args[i].bytes))
      return Status::error(
          "device buffer of " + std::to_string(bound[i].device->size()) +
          " bytes bound to '" + fn->args[i].name + "' of '" + name +
          "', which has " + std::to_string(fn->args[i].bytes));
  if (workspace && workspace->size() < size_t(fn->workspaceBytes))
    return Status::error("a workspace of " + std::to_string(workspace->size()) +
                         " bytes for '" + name + "', which needs " +
                         std::to_string(fn->workspaceBytes));
  std::lock_guard<std::mutex> lock(state->running);
  Driver &drv = *state->driver;
  LOOM_RETURN_IF_ERROR(
      drv.check(drv.cuCtxSetCurrent(drv.context), "cuCtxSetCurrent"));
  FunctionMemory &mem = state->memory[name];
  mem.args.resize(fn->args.size(), 0);
  std::unique_lock<std::mutex> legacy(legacyStreamUse());
  {
    // What this run needs and the last did not: all or nothing, so a
    // failed allocation frees the others and the next run tries again
    // rather than launching on null pointers.
    std::vector<CUdeviceptr *> fresh;
    auto release = [&] {
      for (CUdeviceptr *p : fresh) {
        drv.cuMemFree(*p);
        *p = 0;
      }
    };
    for (size_t i = 0; i < fn->args.size(); ++i) {
      if (bound[i].device || mem.args[i])
        continue;
      if (Status s =
              drv.check(drv.cuMemAlloc(&mem.args[i],
                                       std::max<size_t>(fn->args[i].bytes, 4)),
                        "allocating " + std::to_string(fn->args[i].bytes) +
                            " device bytes for '" + fn->args[i].name + "'");
          !s.ok()) {
        release();
        return s;
      }
      fresh.push_back(&mem.args[i]);
    }
    if (!workspace && fn->workspaceBytes > 0 && !mem.workspace) {
      if (Status s = drv.check(
              drv.cuMemAlloc(&mem.workspace, size_t(fn->workspaceBytes)),
              "allocating the " + std::to_string(fn->workspaceBytes) +
                  "-byte workspace of '" + name + "'");
          !s.ok()) {
        release();
        return s;
      }
    }
  }
  auto addressOf = [&](size_t i) {
    return bound[i].device ? CUdeviceptr(bound[i].device->deviceAddress())
                           : mem.args[i];
  };
  CUdeviceptr workspaceAddress =
      workspace ? CUdeviceptr(workspace->deviceAddress()) : mem.workspace;
  for (size_t i = 0; i < fn->args.size(); ++i)
    if (!bound[i].device && fn->args[i].read() && fn->args[i].bytes > 0)
      LOOM_RETURN_IF_ERROR(drv.check(
          drv.cuMemcpyHtoD(mem.args[i], bound[i].host, fn->args[i].bytes),
          "copying '" + fn->args[i].name + "' to the device"));
  legacy.unlock();
  CUstream stream = state->stream;
  // Each launch's kernel arguments: addresses in the bound buffers.
  auto launchAll = [&](bool waitEach) -> Status {
    std::vector<CUdeviceptr> addresses;
    std::vector<void *> params;
    for (const gpu::Launch &launch : fn->launches) {
      addresses.clear();
      for (const gpu::BufferRef &ref : launch.args)
        addresses.push_back((ref.kind == gpu::BufferRef::Kind::Argument
                                 ? addressOf(size_t(ref.index))
                                 : workspaceAddress) +
                            CUdeviceptr(ref.offset));
      params.clear();
      for (CUdeviceptr &a : addresses)
        params.push_back(&a);
      CUresult r = drv.cuLaunchKernel(
          state->functions.at(launch.kernel), unsigned(launch.grid[0]),
          unsigned(launch.grid[1]), unsigned(launch.grid[2]),
          unsigned(launch.block[0]), unsigned(launch.block[1]),
          unsigned(launch.block[2]), unsigned(launch.sharedBytes), stream,
          params.data(), nullptr);
      if (r != 0)
        return Status::error("launching kernel '" + launch.kernel +
                             "' failed: " + drv.errorText(r));
      // LOOM_CUDA_SYNC=1: wait for each kernel, so a fault names its
      // kernel.
      if (waitEach)
        LOOM_RETURN_IF_ERROR(drv.check(drv.cuCtxSynchronize(),
                                       "kernel '" + launch.kernel + "'"));
    }
    return Status();
  };
  // With graphs, the sequence is captured once per set of buffer addresses
  // (a training step updates its buffers in place: one graph) and
  // replayed with one launch: hundreds of kernels per training step, each
  // launch's host and device overhead paid once per graph.
  CUgraphExec exec = nullptr;
  if (state->graphs) {
    std::vector<CUdeviceptr> key;
    for (size_t i = 0; i < fn->args.size(); ++i)
      key.push_back(addressOf(i));
    key.push_back(workspaceAddress);
    std::vector<CapturedPlan> &plans = state->captured[name];
    for (size_t i = 0; i < plans.size() && !exec; ++i)
      if (plans[i].addresses == key) {
        exec = plans[i].exec;
        std::rotate(plans.begin() + i, plans.begin() + i + 1, plans.end());
      }
    if (!exec) {
      // A capture that fails turns graphs off for this executable: the
      // launches then go one by one, and name the kernel that fails.
      std::lock_guard<std::mutex> noLegacyStream(legacyStreamUse());
      CUgraph graph = nullptr;
      bool captured =
          drv.cuStreamBeginCapture(stream, kCaptureModeThreadLocal) == 0;
      Status launched = captured ? launchAll(false) : Status();
      if (captured && drv.cuStreamEndCapture(stream, &graph) == 0 &&
          launched.ok() && graph &&
          drv.cuGraphInstantiate(&exec, graph, 0) == 0) {
        ++state->captures;
        constexpr size_t kGraphsPerFunction = 4;
        if (plans.size() == kGraphsPerFunction) {
          drv.cuGraphExecDestroy(plans.front().exec);
          plans.erase(plans.begin());
        }
        plans.push_back({std::move(key), exec});
      } else {
        exec = nullptr;
        state->graphs = false;
      }
      if (graph)
        drv.cuGraphDestroy(graph);
    }
  }
  LOOM_RETURN_IF_ERROR(
      drv.check(drv.cuEventRecord(state->start, stream), "cuEventRecord"));
  bool replayed = exec && drv.cuGraphLaunch(exec, stream) == 0;
  if (!replayed) {
    if (exec) // a replay that fails is run again launch by launch, to
      state->graphs = false; // name the kernel; graphs stay off
    LOOM_RETURN_IF_ERROR(launchAll(syncEachKernel()));
  }
  LOOM_RETURN_IF_ERROR(
      drv.check(drv.cuEventRecord(state->stop, stream), "cuEventRecord"));
  // Errors inside kernels surface at the synchronization.
  LOOM_RETURN_IF_ERROR(drv.check(drv.cuEventSynchronize(state->stop),
                                 "running '" + name + "' on the device"));
  float ms = 0;
  if (drv.cuEventElapsedTime(&ms, state->start, state->stop) == 0)
    kernelMs = ms;
  legacy.lock();
  for (size_t i = 0; i < fn->args.size(); ++i)
    if (!bound[i].device && fn->args[i].output && fn->args[i].bytes > 0)
      LOOM_RETURN_IF_ERROR(drv.check(
          drv.cuMemcpyDtoH(bound[i].host, mem.args[i], fn->args[i].bytes),
          "copying '" + fn->args[i].name + "' back from the device"));
  return Status();
}
