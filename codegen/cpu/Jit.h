//===- Jit.h - Compiling for the host, linking into the process -*- C++ -*-===//
//
// Two steps, so that what the first produces can be cached on disk:
// `compile` turns an LLVM-dialect module into relocatable objects (the
// module split into partitions, optimized and code-generated on several
// threads), `load` links objects into this process.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_CODEGEN_CPU_JIT_H
#define LOOM_CODEGEN_CPU_JIT_H

#include "mlir/IR/BuiltinOps.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace llvm::orc {
class LLJIT;
} // namespace llvm::orc

namespace loom {

/// The CPU machine code is generated for and its features: the host's, or
/// the CPU named by `LOOM_TARGET_CPU` (an LLVM CPU name such as `x86-64-v3`
/// or `haswell`, with that CPU's features: AVX2 code on an AVX-512 host,
/// say). Part of the compile cache's key.
std::string targetDescription();

/// Drops what only the compiler reads (the parameter table, `loom.*`
/// attributes) from an LLVM-dialect module; LLVM IR translation rejects it.
void stripLoomMetadata(mlir::ModuleOp module);

/// Machine code for the host: what `JitModule::load` links, and what the
/// compile cache stores.
struct JitObjects {
  /// Relocatable ELF objects, one per partition.
  std::vector<std::string> objects;
  /// The functions `JitModule::call` can call.
  std::vector<std::string> entries;
  /// The code calls into the OpenMP runtime / MLIR's C runner utilities.
  bool openmp = false, runnerUtils = false;
  /// The planned workspaces (loom-cpu-plan-workspace) by symbol, in bytes:
  /// `load` maps them as fresh zero pages (untouched until used) rather
  /// than the objects carrying them as sections that linking would fill.
  std::vector<std::pair<std::string, uint64_t>> workspaces;
};

/// Where `JitModule::compile` spent its time.
struct JitStats {
  /// Translation to LLVM IR (with OpenMP outlining) and partitioning.
  double translateSeconds = 0;
  /// LLVM's IR optimizer and machine code generation, wall time over all
  /// threads; `optimizeSeconds` is the optimizer's share, summed over
  /// partitions (CPU time).
  double llvmSeconds = 0, optimizeSeconds = 0;
  /// LLVM IR instructions handed to the optimizer: the size of the code.
  size_t instructions = 0;
};

/// `JitModule::compile` (`aotEntry` empty) or `compileAheadOfTime`.
llvm::Expected<JitObjects> compileObjects(mlir::ModuleOp module,
                                          unsigned optLevel, unsigned threads,
                                          JitStats *stats,
                                          llvm::StringRef aotEntry);

/// A module linked into this process. Every function was lowered with
/// bare-pointer arguments; `call` passes one pointer per argument.
///
/// `call` is thread-safe: the code keeps its temporaries in workspaces (one
/// per function, at fixed addresses), so each concurrent caller gets its own
/// linked copy of the objects with its own workspaces, linked on first need
/// (milliseconds) and reused after.
class JitModule {
public:
  ~JitModule();

  /// Compiles `module` (in the LLVM dialect; its `loom.*` metadata is
  /// removed first) for the host CPU: the IR optimizer at `optLevel`, on
  /// `threads` threads (0: one per core).
  static llvm::Expected<JitObjects> compile(mlir::ModuleOp module,
                                            unsigned optLevel,
                                            unsigned threads = 0,
                                            JitStats *stats = nullptr);

  /// Ahead of time: one relocatable object for the host CPU that defines
  /// its workspaces (zero-filled .bss; so the functions of one object must
  /// not run concurrently). It calls the kernels of loom/Kernels.h
  /// (LoomKernels), and the OpenMP runtime when `openmp`.
  /// Only `entry` (and `__loom_packed_<entry>`) is exported.
  static llvm::Expected<JitObjects> compileAheadOfTime(mlir::ModuleOp module,
                                                       llvm::StringRef entry,
                                                       unsigned optLevel = 2);

  /// Links `objects` into this process and resolves every entry.
  static llvm::Expected<std::unique_ptr<JitModule>>
  load(const JitObjects &objects);

  /// `compile`, then `load`.
  static llvm::Expected<std::unique_ptr<JitModule>>
  create(mlir::ModuleOp module, unsigned optLevel = 2,
         JitStats *stats = nullptr);

  /// Calls `function` with `pointers[i]` as argument i.
  llvm::Error call(llvm::StringRef function, llvm::ArrayRef<void *> pointers);

  /// The packed wrapper of `function` (it reads argument i through
  /// args[i]) in one linked copy, for a caller that calls it itself, also
  /// re-entrantly (the GPU emulator's fibers). Code with planned
  /// workspaces must not be called this way: calls would share them.
  llvm::Expected<void (*)(void **)> packedFunction(llvm::StringRef function);

  /// Linked copies so far (one per caller that ran concurrently).
  size_t instanceCount() const;

  struct Instance;

private:
  JitModule();
  llvm::Expected<Instance *> acquire();
  void release(Instance *instance);

  JitObjects objects;
  std::vector<std::unique_ptr<Instance>> instances;
  std::vector<Instance *> idle;
  mutable std::mutex mutex;
};

} // namespace loom

#endif // LOOM_CODEGEN_CPU_JIT_H
