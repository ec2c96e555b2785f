//===- Session.h - Compiling a Loom program, one specialization at a time ===//
//
// The compiler-side half of the runtime API: a Session holds one parsed
// program and compiles its entry functions per shape specialization
// (function, dim bindings, training flag), caching the results. It hands
// the runtime plain function pointers and plain descriptions.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_DRIVER_SESSION_H
#define LOOM_DRIVER_SESSION_H

#include "codegen/cpu/Jit.h"
#include "frontend/Frontend.h"

#include "loom/Cuda.h"
#include "loom/Params.h"
#include "loom/Tensor.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"

#include "llvm/Support/Error.h"

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace llvm {
class SourceMgr;
} // namespace llvm

namespace loom::driver {

class CompileCache;

/// One argument or result: its source name, dtype and dims. In a signature,
/// a dim is a number or a symbolic name; in a specialization, all numbers.
struct ArgSpec {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::string> dims;
  std::vector<int64_t> shape; // specializations only
  /// For integer inputs that index something (embedding ids, class
  /// targets): the values allowed, [lo, hi) and `also` (an ignore index);
  /// `what` says what they index, for messages. Specializations only.
  struct Range {
    int64_t lo = 0, hi = 0;
    std::optional<int64_t> also;
    std::string what;
  };
  std::optional<Range> range;
};

/// The first value of `input` outside `spec.range`, as an error naming the
/// argument of `function`, the position and the value; success when it has
/// no range or all values are in it.
llvm::Error checkRange(const ArgSpec &spec, llvm::StringRef function,
                       const Tensor &input);

struct Signature {
  std::string name;
  std::vector<ArgSpec> inputs; // without the parameter buffer
  std::vector<ArgSpec> outputs;
};

/// A function compiled for one specialization.
struct CompiledFunction {
  Signature signature;
  /// The host code (target cpu), or the GPU kernels and launch plan (target
  /// cuda): exactly one is set.
  std::unique_ptr<JitModule> jit;
  std::unique_ptr<cuda::Executable> gpu;
  /// The symbol to call: the function, `<fn>_grad` or `train_step`.
  std::string entry;
  /// A decode step's context function (`<fn>_decode_context`: the work
  /// that depends on the context inputs alone, run once per context; its
  /// results are the step's `context.<i>` inputs), when it has one.
  std::string contextEntry;
  std::optional<Signature> contextSignature;
  /// Optimizer state buffers of a training step (0, 1 or 2).
  int optimizerStates = 0;
  /// The specialized loom IR, for the reference evaluator.
  mlir::OwningOpRef<mlir::ModuleOp> loomModule;
  double compileSeconds = 0;
  /// Loaded from the disk cache rather than compiled.
  bool fromDiskCache = false;
  /// Where compileSeconds went: the frontend, the MLIR pipeline, LLVM (see
  /// JitStats), linking into the process.
  double frontendSeconds = 0, mlirSeconds = 0, linkSeconds = 0;
  JitStats llvm;
  int64_t flops = -1;
  /// Size of the flat parameter buffer the code expects.
  int64_t paramBytes = 0;
  /// Target cuda: the loom IR handed to the NVPTX pipeline and that
  /// pipeline's autodiff, optimizer, arch and tensor-core options, from
  /// which its kernels can be lowered again (the tests' emulator runs them
  /// so).
  mlir::OwningOpRef<mlir::ModuleOp> gpuInput;
  std::string gpuAutodiff, gpuOptimizer, gpuArch, gpuTensorCores;
};

/// What is compiled from an entry function: the function itself, its
/// gradient (`<fn>_grad(inputs...) -> (loss, grads)`), a fused training
/// step (`train_step(state..., hyper, inputs...) -> (loss, grad_norm,
/// first_non_finite)`, the parameters and the state updated in place) or an
/// incremental decoding step; the parameter buffer is always the implicit
/// first argument.
struct Variant {
  enum Kind { Forward, Gradient, TrainStep, Decode } kind = Forward;
  /// Decode: positions per sequence in the key/value caches
  /// (`loom-derive-decode`'s capacity). The function compiled is
  /// `<fn>_decode(tokens, start, caches...) -> logits`, the caches updated
  /// in place.
  int64_t capacity = 0;
  /// Trainable parameter names or prefixes; empty: all.
  std::vector<std::string> trainable;
  /// Learning-rate multipliers by parameter name or prefix (the last match
  /// wins); the others get 1.
  std::vector<std::pair<std::string, double>> lrMultipliers;
  /// `loom-optimizer` options, e.g. "kind=adamw weight-decay=0.01".
  std::string optimizer;

  /// A text that identifies the variant in the compile cache.
  std::string key() const;
};

/// Where compiled functions run.
enum class Target { Cpu, Cuda };

struct SessionOptions {
  /// Cpu: JIT-compiled host code. Cuda: NVPTX kernels run through the CUDA
  /// driver (codegen/nvptx, loom/Cuda.h); opening such a session without a
  /// driver or device is an error.
  Target target = Target::Cpu;
  /// Target cuda: the f32 contractions' tensor-core products
  /// (NvptxPipelineOptions::tensorCores): 3xtf32, tf32, bf16 or none.
  std::string tensorCores = "3xtf32";
  std::vector<std::string> includeDirs;
  std::string model;
  /// Overrides of the model's configuration values (see GenerateOptions).
  std::map<std::string, std::string> config;
  bool training = false;
  /// LLVM's IR optimizer level: 2 compiles a GPT-mini training step in
  /// 2.3 s instead of 2.9 s at 3, with the same step time.
  unsigned optLevel = 2;
  /// f32 contractions call the packed GEMM kernel (CpuPipelineOptions).
  bool gemmKernel = true;
  /// GEMM epilogues in the kernel (CpuPipelineOptions::gemmEpilogues).
  bool gemmEpilogues = true;
  /// Repeated layers compile once (CpuPipelineOptions::outlineLayers).
  bool outlineLayers = true;
  /// Non-temporal writes into outputs of at least this many bytes
  /// (CpuPipelineOptions::streamingStoreBytes).
  int64_t streamingStoreBytes = int64_t(8) << 20;
  /// Compiled functions are kept on disk and reused across processes
  /// (driver/CompileCache.h); `cacheDir` empty: the default directory
  /// (`LOOM_CACHE_DIR`, else `$XDG_CACHE_HOME/loom` or `~/.cache/loom`).
  bool useCache = true;
  std::string cacheDir;
  /// Prints MLIR's per-pass timing report of each compilation to stderr.
  bool timePasses = false;
};

class Session {
public:
  ~Session();

  /// Parses `path` and checks every entry function with symbolic dims.
  static llvm::Expected<std::unique_ptr<Session>>
  open(const std::string &path, const SessionOptions &options);

  /// The parameter table, in the layout of the flat buffer.
  const std::vector<ParamInfo> &params() const { return paramInfos; }
  /// Entry functions with their symbolic signatures.
  const std::vector<Signature> &functions() const { return signatures; }
  const Signature *findFunction(llvm::StringRef name) const;

  /// Binds the symbolic dims of `function` from input shapes, checking
  /// counts, dtypes and shapes (errors name the argument).
  llvm::Expected<std::map<std::string, int64_t>>
  bindFromShapes(llvm::StringRef function,
                 const std::vector<std::vector<int64_t>> &shapes,
                 const std::vector<DType> &dtypes) const;

  /// The compiled specialization (compiled on first use, then cached).
  llvm::Expected<CompiledFunction *>
  get(llvm::StringRef function, const std::map<std::string, int64_t> &bindings,
      const Variant &variant = {});

  /// Number of compilations so far (misses of the in-memory cache; some may
  /// have been loaded from the disk cache, see diskHits).
  unsigned compileCount() const { return compiles; }
  /// Functions loaded from the disk cache instead of compiled.
  unsigned diskHits() const { return hits; }

  mlir::MLIRContext &getContext() { return *context; }

  /// Called with each function compiled for target cuda, before its first
  /// run (the CUDA stand-in's tests load its kernels into the emulator).
  std::function<void(CompiledFunction &)> onCudaCompiled;

  /// The loom IR of `function` specialized to `bindings` (verified, not
  /// lowered): what tests hand the reference evaluator.
  llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
  generate(llvm::StringRef function,
           const std::map<std::string, int64_t> &bindings);

private:
  Session() = default;

  SessionOptions options;
  std::unique_ptr<mlir::MLIRContext> context;
  std::unique_ptr<llvm::SourceMgr> sourceMgr;
  frontend::ProgramPtr program;
  std::vector<ParamInfo> paramInfos;
  std::vector<Signature> signatures;
  std::map<std::string, std::unique_ptr<CompiledFunction>> cache;
  unsigned compiles = 0, hits = 0;
  std::unique_ptr<CompileCache> diskCache;
};

/// While it lives, the diagnostics emitted in `context`, as "loc: message"
/// lines (for errors that travel as text).
class DiagnosticCollector {
public:
  explicit DiagnosticCollector(mlir::MLIRContext *context)
      : os(messages), handler(context, [this](mlir::Diagnostic &d) {
          os << d.getLocation() << ": " << d.str() << "\n";
          return mlir::success();
        }) {}
  const std::string &text() const { return messages; }

private:
  std::string messages;
  llvm::raw_string_ostream os;
  mlir::ScopedDiagnosticHandler handler;
};

/// The runtime ParamInfo list of a module's `loom.parameter`s.
llvm::Expected<std::vector<ParamInfo>> paramTable(mlir::ModuleOp module);

/// Signatures of the module's functions, from their types and attributes.
std::vector<Signature> signaturesOf(mlir::ModuleOp module);

} // namespace loom::driver

#endif // LOOM_DRIVER_SESSION_H
