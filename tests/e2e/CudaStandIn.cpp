//===- CudaStandIn.cpp - A CUDA driver stand-in for machines without a GPU
//-===//
//
// libloom_cuda_standin.so: the driver entry points Loom's CUDA runtime
// resolves (runtime/Cuda.cpp), implemented on the host so that the runtime
// itself runs in CI: `LOOM_CUDA_DRIVER=<this library>` makes Loom open it
// instead of libcuda.so.1. Device memory is host memory (filled with
// garbage, as a fresh cuMemAlloc is not zeroed), copies are memcpy, and a
// launch calls the launcher a test registers (the GPU emulator running the
// kernel's CPU form); the PTX is kept only to resolve kernel names. Stream
// capture records launches (their argument values, copied as the driver
// does) into a graph that a graph launch replays in order. It counts what
// the runtime does (allocations, bytes each way, launches, captures,
// graph launches), so tests can check that memory is allocated once, what
// is copied and what is captured.
//
//===----------------------------------------------------------------------===//

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace {

using CUresult = int;
using CUdeviceptr = unsigned long long;
constexpr CUresult kSuccess = 0, kInvalidValue = 1, kOutOfMemory = 2,
                   kInvalidPtx = 218, kNotFound = 500, kLaunchFailed = 719,
                   kNotSupported = 801;
constexpr int kJitErrorLogBuffer = 5, kJitErrorLogBufferSize = 6;

using Launcher = int (*)(void *user, const char *kernel, const unsigned grid[3],
                         const unsigned block[3], unsigned sharedBytes,
                         void **params);

struct Module {
  std::string ptx;
  std::map<std::string, std::string> functions; // handle storage
};

struct Event {
  std::chrono::steady_clock::time_point at;
};

/// A launch recorded by a stream capture: the kernel and its argument
/// values (the driver copies them at the launch).
struct Recorded {
  const std::string *function;
  unsigned grid[3], block[3], shared;
  std::vector<unsigned long long> values;
};

struct Graph {
  std::vector<Recorded> launches;
};

struct Stream {
  Graph *capture = nullptr; // while capturing
};

using Arity = int (*)(void *user, const char *kernel);

struct State {
  std::mutex mutex;
  std::map<CUdeviceptr, size_t> allocations;
  Launcher launcher = nullptr;
  void *user = nullptr;
  Arity arity = nullptr;
  void *arityUser = nullptr;
  uint64_t streams = 0, captures = 0, graphLaunches = 0;
  uint64_t allocated = 0, freed = 0, liveBytes = 0, toDevice = 0, toHost = 0,
           launches = 0;
  size_t failAbove = SIZE_MAX;
  bool failCopiesBack = false;
};

State &state() {
  static State s;
  return s;
}

/// Whether [p, p + bytes) lies in one allocation.
bool inAllocation(CUdeviceptr p, size_t bytes) {
  auto &allocs = state().allocations;
  auto it = allocs.upper_bound(p);
  if (it == allocs.begin())
    return false;
  --it;
  return p >= it->first && p + bytes <= it->first + it->second;
}

} // namespace

extern "C" {

//===- What tests call ------------------------------------------------===//

/// Launches call `launcher` (null: every launch fails, "not supported").
void loomStandInSetLauncher(Launcher launcher, void *user) {
  std::lock_guard<std::mutex> lock(state().mutex);
  state().launcher = launcher;
  state().user = user;
}

/// Copies back from the device fail (CUDA_ERROR_LAUNCH_FAILED, as after a
/// fault) while `fail` is set.
void loomStandInFailCopiesBack(bool fail) {
  std::lock_guard<std::mutex> lock(state().mutex);
  state().failCopiesBack = fail;
}

/// Kernel arity, which a capture needs to copy a launch's arguments (null:
/// captures fail, "not supported").
void loomStandInSetArity(Arity arity, void *user) {
  std::lock_guard<std::mutex> lock(state().mutex);
  state().arity = arity;
  state().arityUser = user;
}

/// out: streams created, graphs captured, graph launches.
void loomStandInGraphStats(uint64_t out[3]) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  uint64_t values[3] = {s.streams, s.captures, s.graphLaunches};
  std::memcpy(out, values, sizeof values);
}

/// out: allocations, frees, live bytes, bytes copied to the device, bytes
/// copied back, launches (since the library was loaded).
void loomStandInStats(uint64_t out[6]) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  uint64_t values[6] = {s.allocated, s.freed,  s.liveBytes,
                        s.toDevice,  s.toHost, s.launches};
  std::memcpy(out, values, sizeof values);
}

/// Allocations larger than `bytes` fail with CUDA_ERROR_OUT_OF_MEMORY
/// (SIZE_MAX: none do).
void loomStandInFailAllocationsAbove(size_t bytes) {
  std::lock_guard<std::mutex> lock(state().mutex);
  state().failAbove = bytes;
}

//===- The driver API (the ABI of cuda.h) -----------------------------===//

CUresult cuInit(unsigned) { return kSuccess; }
CUresult cuDeviceGetCount(int *count) {
  *count = 1;
  return kSuccess;
}
CUresult cuDeviceGet(int *device, int ordinal) {
  if (ordinal != 0)
    return kInvalidValue;
  *device = 0;
  return kSuccess;
}
CUresult cuDeviceGetName(char *name, int length, int) {
  std::strncpy(name, "Loom CUDA stand-in (host memory, emulated kernels)",
               size_t(length));
  if (length > 0)
    name[length - 1] = 0;
  return kSuccess;
}
CUresult cuDeviceGetAttribute(int *value, int attribute, int) {
  // 75, 76: the compute capability, 9.0.
  *value = attribute == 75 ? 9 : attribute == 76 ? 0 : 1;
  return kSuccess;
}
CUresult cuDevicePrimaryCtxRetain(void **context, int) {
  static int primary;
  *context = &primary;
  return kSuccess;
}
CUresult cuCtxSetCurrent(void *) { return kSuccess; }
CUresult cuCtxSynchronize() { return kSuccess; }

CUresult cuModuleLoadDataEx(void **module, const void *image, unsigned count,
                            int *options, void **values) {
  std::string ptx(static_cast<const char *>(image));
  if (ptx.find(".version") == std::string::npos ||
      ptx.find(".target") == std::string::npos) {
    for (unsigned i = 0; i + 1 < count; ++i)
      if (options[i] == kJitErrorLogBuffer &&
          options[i + 1] == kJitErrorLogBufferSize)
        std::strncpy(static_cast<char *>(values[i]),
                     "stand-in: not PTX (no .version/.target)",
                     size_t(reinterpret_cast<uintptr_t>(values[i + 1])));
    return kInvalidPtx;
  }
  *module = new Module{std::move(ptx), {}};
  return kSuccess;
}
CUresult cuModuleUnload(void *module) {
  delete static_cast<Module *>(module);
  return kSuccess;
}
CUresult cuModuleGetFunction(void **function, void *module, const char *name) {
  auto *m = static_cast<Module *>(module);
  std::string entry = std::string(".entry ") + name + "(";
  if (m->ptx.find(entry) == std::string::npos)
    return kNotFound;
  auto it = m->functions.emplace(name, name).first;
  *function = &it->second;
  return kSuccess;
}

CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t bytes) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (bytes == 0)
    return kInvalidValue;
  if (bytes > s.failAbove)
    return kOutOfMemory;
  void *memory = std::malloc(bytes);
  if (!memory)
    return kOutOfMemory;
  std::memset(memory, 0xFF, bytes); // not zeroed on a device either
  *p = CUdeviceptr(reinterpret_cast<uintptr_t>(memory));
  s.allocations[*p] = bytes;
  ++s.allocated;
  s.liveBytes += bytes;
  return kSuccess;
}
CUresult cuMemFree_v2(CUdeviceptr p) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  auto it = s.allocations.find(p);
  if (it == s.allocations.end())
    return kInvalidValue;
  s.liveBytes -= it->second;
  ++s.freed;
  s.allocations.erase(it);
  std::free(reinterpret_cast<void *>(uintptr_t(p)));
  return kSuccess;
}
CUresult cuMemcpyHtoD_v2(CUdeviceptr to, const void *from, size_t bytes) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!inAllocation(to, bytes))
    return kInvalidValue;
  std::memcpy(reinterpret_cast<void *>(uintptr_t(to)), from, bytes);
  s.toDevice += bytes;
  return kSuccess;
}
CUresult cuMemsetD8_v2(CUdeviceptr to, unsigned char value, size_t bytes) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!inAllocation(to, bytes))
    return kInvalidValue;
  std::memset(reinterpret_cast<void *>(uintptr_t(to)), value, bytes);
  return kSuccess;
}
CUresult cuMemcpyDtoH_v2(void *to, CUdeviceptr from, size_t bytes) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!inAllocation(from, bytes))
    return kInvalidValue;
  if (s.failCopiesBack)
    return kLaunchFailed;
  std::memcpy(to, reinterpret_cast<const void *>(uintptr_t(from)), bytes);
  s.toHost += bytes;
  return kSuccess;
}

CUresult cuLaunchKernel(void *function, unsigned gx, unsigned gy, unsigned gz,
                        unsigned bx, unsigned by, unsigned bz, unsigned shared,
                        void *stream, void **params, void **) {
  State &s = state();
  const std::string &name = *static_cast<std::string *>(function);
  if (stream && static_cast<Stream *>(stream)->capture) {
    Arity arity;
    void *arityUser;
    {
      std::lock_guard<std::mutex> lock(s.mutex);
      arity = s.arity;
      arityUser = s.arityUser;
    }
    int count = arity ? arity(arityUser, name.c_str()) : -1;
    if (count < 0)
      return kNotSupported;
    Recorded r{&name, {gx, gy, gz}, {bx, by, bz}, shared, {}};
    for (int i = 0; i < count; ++i)
      r.values.push_back(*static_cast<unsigned long long *>(params[i]));
    static_cast<Stream *>(stream)->capture->launches.push_back(std::move(r));
    return kSuccess;
  }
  Launcher launcher;
  void *user;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    launcher = s.launcher;
    user = s.user;
    ++s.launches;
  }
  if (!launcher)
    return kNotSupported;
  unsigned grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
  return launcher(user, name.c_str(), grid, block, shared, params) == 0
             ? kSuccess
             : kLaunchFailed;
}

CUresult cuStreamCreate(void **stream, unsigned) {
  *stream = new Stream();
  std::lock_guard<std::mutex> lock(state().mutex);
  ++state().streams;
  return kSuccess;
}
CUresult cuStreamDestroy_v2(void *stream) {
  delete static_cast<Stream *>(stream);
  return kSuccess;
}
CUresult cuStreamBeginCapture_v2(void *stream, int) {
  auto *s = static_cast<Stream *>(stream);
  if (!s || s->capture)
    return kInvalidValue;
  s->capture = new Graph();
  return kSuccess;
}
CUresult cuStreamEndCapture(void *stream, void **graph) {
  auto *s = static_cast<Stream *>(stream);
  if (!s || !s->capture)
    return kInvalidValue;
  *graph = s->capture;
  s->capture = nullptr;
  std::lock_guard<std::mutex> lock(state().mutex);
  ++state().captures;
  return kSuccess;
}
CUresult cuGraphInstantiateWithFlags(void **exec, void *graph,
                                     unsigned long long) {
  *exec = new Graph(*static_cast<Graph *>(graph));
  return kSuccess;
}
CUresult cuGraphDestroy(void *graph) {
  delete static_cast<Graph *>(graph);
  return kSuccess;
}
CUresult cuGraphExecDestroy(void *exec) {
  delete static_cast<Graph *>(exec);
  return kSuccess;
}
/// Replays the recorded launches in order (as the device would).
CUresult cuGraphLaunch(void *exec, void *) {
  {
    std::lock_guard<std::mutex> lock(state().mutex);
    ++state().graphLaunches;
  }
  for (Recorded &r : static_cast<Graph *>(exec)->launches) {
    std::vector<void *> params;
    for (unsigned long long &v : r.values)
      params.push_back(&v);
    CUresult result =
        cuLaunchKernel(const_cast<std::string *>(r.function), r.grid[0],
                       r.grid[1], r.grid[2], r.block[0], r.block[1], r.block[2],
                       r.shared, nullptr, params.data(), nullptr);
    if (result != kSuccess)
      return result;
  }
  return kSuccess;
}

CUresult cuEventCreate(void **event, unsigned) {
  *event = new Event();
  return kSuccess;
}
CUresult cuEventRecord(void *event, void *) {
  static_cast<Event *>(event)->at = std::chrono::steady_clock::now();
  return kSuccess;
}
CUresult cuEventSynchronize(void *) { return kSuccess; }
CUresult cuEventElapsedTime(float *ms, void *start, void *stop) {
  *ms = std::chrono::duration<float, std::milli>(
            static_cast<Event *>(stop)->at - static_cast<Event *>(start)->at)
            .count();
  return kSuccess;
}
CUresult cuEventDestroy_v2(void *event) {
  delete static_cast<Event *>(event);
  return kSuccess;
}
CUresult cuGetErrorString(CUresult error, const char **text) {
  switch (error) {
  case kSuccess:
    *text = "no error";
    return kSuccess;
  case kInvalidValue:
    *text = "invalid argument";
    return kSuccess;
  case kOutOfMemory:
    *text = "out of memory";
    return kSuccess;
  case kInvalidPtx:
    *text = "a PTX JIT compilation failed";
    return kSuccess;
  case kNotFound:
    *text = "named symbol not found";
    return kSuccess;
  case kLaunchFailed:
    *text = "unspecified launch failure";
    return kSuccess;
  case kNotSupported:
    *text = "operation not supported";
    return kSuccess;
  default:
    *text = nullptr;
    return kInvalidValue;
  }
}

} // extern "C"
