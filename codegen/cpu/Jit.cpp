//===- Jit.cpp - JIT-compiling lowered modules for the host ---------------===//

#include "codegen/cpu/Jit.h"
#include "codegen/cpu/CpuPipeline.h"

#include "ir/LoomOps.h"
#include "loom/Kernels.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/Interfaces/FunctionInterfaces.h"

#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/ExecutionEngine/Orc/Mangling.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/TargetSelect.h"

#include <chrono>
#include <functional>
#include <mutex>

using namespace loom;

/// f32 -> bf16 with round-to-nearest-even, for the `__truncsfbf2` calls LLVM
/// emits for bf16 truncation (the JIT has no compiler-rt).
extern "C" __bf16 loomTruncSFBF2(float x) {
  uint32_t bits = __builtin_bit_cast(uint32_t, x);
  uint16_t out;
  if ((bits & 0x7fffffffu) > 0x7f800000u)
    out = static_cast<uint16_t>((bits >> 16) | 0x40); // quiet NaN
  else
    out = static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1)) >> 16);
  return __builtin_bit_cast(__bf16, out);
}

/// f64 -> bf16 (`__truncdfbf2`), rounding once from the double.
extern "C" __bf16 loomTruncDFBF2(double x) {
  uint64_t bits = __builtin_bit_cast(uint64_t, x);
  uint16_t out;
  if ((bits & 0x7fffffffffffffffull) > 0x7ff0000000000000ull) {
    out = static_cast<uint16_t>(((bits >> 48) & 0xffff) | 0x40);
  } else {
    // Round the double to bf16's 8 significant bits (RNE) through float
    // bit patterns: scale exactly, then truncate with rounding.
    float hi = static_cast<float>(x);
    double err = x - static_cast<double>(hi);
    uint32_t f = __builtin_bit_cast(uint32_t, hi);
    uint32_t rest = f & 0xffffu;
    uint32_t base = f >> 16;
    // Ties decided by the exact remainder: above half rounds up.
    bool up = rest > 0x8000u || (rest == 0x8000u && (err > 0   ? true
                                                     : err < 0 ? false
                                                               : (base & 1)));
    if (f & 0x80000000u)
      up = rest > 0x8000u || (rest == 0x8000u && (err < 0   ? true
                                                  : err > 0 ? false
                                                            : (base & 1)));
    out = static_cast<uint16_t>(base + (up ? 1 : 0));
  }
  return __builtin_bit_cast(__bf16, out);
}

JitModule::JitModule(std::unique_ptr<mlir::ExecutionEngine> engine)
    : engine(std::move(engine)) {}
JitModule::~JitModule() = default;
JitModule::JitModule(JitModule &&) noexcept = default;

void loom::stripLoomMetadata(mlir::ModuleOp module) {
  for (auto param :
       llvm::make_early_inc_range(module.getOps<loom::ParameterOp>()))
    param.erase();
  auto strip = [](mlir::Operation *op) {
    for (mlir::NamedAttribute attr : llvm::to_vector(op->getDiscardableAttrs()))
      if (attr.getName().getValue().starts_with("loom."))
        op->removeDiscardableAttr(attr.getName());
  };
  strip(module);
  for (auto llvmFunc : module.getOps<mlir::LLVM::LLVMFuncOp>()) {
    auto func = llvm::cast<mlir::FunctionOpInterface>(llvmFunc.getOperation());
    strip(func);
    for (unsigned i = 0, e = func.getNumArguments(); i < e; ++i)
      for (mlir::NamedAttribute attr : llvm::to_vector(func.getArgAttrs(i)))
        if (attr.getName().getValue().starts_with("loom."))
          func.removeArgAttr(i, attr.getName());
  }
}

llvm::Expected<std::unique_ptr<JitModule>>
JitModule::create(mlir::ModuleOp module, unsigned optLevel) {
  stripLoomMetadata(module);
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    // The generated functions are large straight-line blocks of vector code;
    // LLVM's list schedulers are superlinear in block size (a GPT training
    // step spent 70% of its codegen time in the post-RA scheduler) and
    // out-of-order x86 cores gain little from them.
    auto &registered = llvm::cl::getRegisteredOptions();
    for (const char *name : {"post-RA-scheduler", "enable-misched"})
      if (llvm::cl::Option *option = registered.lookup(name))
        (void)option->addOccurrence(/*pos=*/1, name, "false");
  });
  // Tune for the host CPU (AVX-512 where present).
  auto builder = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!builder)
    return builder.takeError();
  // The IR optimizer runs at `optLevel` (3 by default); machine code
  // generation at its default level: -O3 instruction selection and
  // scheduling cost seconds on these large functions and gained nothing
  // measurable (GPT logits: 87 vs 90 ms).
  llvm::CodeGenOptLevel level = llvm::CodeGenOptLevel::Default;
  builder->setCodeGenOptLevel(level);
  auto machine = builder->createTargetMachine();
  if (!machine)
    return machine.takeError();

  // The options hold a reference: keep the transformer alive through create.
  auto optimize = mlir::makeOptimizingTransformer(optLevel, 0, machine->get());
  double optSeconds = 0;
  size_t irInstructions = 0;
  std::function<llvm::Error(llvm::Module *)> transformer =
      [&](llvm::Module *m) {
        auto start = std::chrono::steady_clock::now();
        for (llvm::Function &fn : *m)
          irInstructions += fn.getInstructionCount();
        llvm::Error err = optimize(m);
        optSeconds += std::chrono::duration<double>(
                          std::chrono::steady_clock::now() - start)
                          .count();
        return err;
      };
  mlir::ExecutionEngineOptions options;
  options.transformer = transformer;
  // Parallel loops call into the OpenMP runtime (LLVM's libomp).
  llvm::SmallVector<llvm::StringRef, 1> libraries;
  bool usesOpenMP = false;
  module.walk([&](mlir::Operation *op) {
    if (op->getName().getDialectNamespace() == "omp")
      usesOpenMP = true;
  });
  if (usesOpenMP)
    libraries.push_back(kOpenMPRuntime);
  // memref.copy of strided views calls `memrefCopy` from MLIR's C runner
  // utilities.
  bool usesRunnerUtils = false;
  module.walk([&](mlir::LLVM::LLVMFuncOp f) {
    usesRunnerUtils |= f.isExternal() && f.getName() == "memrefCopy";
  });
  if (usesRunnerUtils)
    libraries.push_back(LOOM_MLIR_C_RUNNER_UTILS);
  options.sharedLibPaths = libraries;
  options.jitCodeGenOptLevel = level;
  auto engine =
      mlir::ExecutionEngine::create(module, options, std::move(*machine));
  if (!engine)
    return engine.takeError();
  (*engine)->registerSymbols([](llvm::orc::MangleAndInterner interner) {
    // bf16 truncation (no compiler-rt in the JIT), then the runtime's
    // kernels (loom/Kernels.h) that compiled code calls.
    const std::pair<const char *, void *> provided[] = {
        {"__truncsfbf2", reinterpret_cast<void *>(&loomTruncSFBF2)},
        {"__truncdfbf2", reinterpret_cast<void *>(&loomTruncDFBF2)},
        {"loom_sgemm", reinterpret_cast<void *>(&loom_sgemm)},
        {"loom_attention_forward",
         reinterpret_cast<void *>(&loom_attention_forward)},
        {"loom_attention_backward",
         reinterpret_cast<void *>(&loom_attention_backward)},
    };
    llvm::orc::SymbolMap symbols;
    for (auto [name, address] : provided)
      symbols[interner(name)] = {llvm::orc::ExecutorAddr::fromPtr(address),
                                 llvm::JITSymbolFlags::Exported};
    return symbols;
  });
  // ORC compiles lazily, at the first lookup: do it now, so compilation is
  // paid (and timed) here rather than by the first call.
  for (auto func : module.getOps<mlir::LLVM::LLVMFuncOp>()) {
    if (func.isExternal() || func.getLinkage() != mlir::LLVM::Linkage::External)
      continue;
    if (auto fn = (*engine)->lookupPacked(func.getName()); !fn)
      return fn.takeError();
  }
  // Runs global constructors, if the module has any.
  (*engine)->initialize();
  std::unique_ptr<JitModule> jit(new JitModule(std::move(*engine)));
  jit->optSeconds = optSeconds;
  jit->irInstructions = irInstructions;
  return jit;
}

llvm::Error JitModule::call(llvm::StringRef function,
                            llvm::ArrayRef<void *> pointers) {
  // The packed wrapper reads argument i through args[i].
  llvm::SmallVector<void *> storage(pointers.begin(), pointers.end());
  llvm::SmallVector<void *> args;
  for (void *&p : storage)
    args.push_back(&p);
  return engine->invokePacked(function, args);
}
