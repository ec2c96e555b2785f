//===- Jit.cpp - Compiling lowered modules for the host and linking them ==//

#include "codegen/cpu/Jit.h"
#include "codegen/cpu/CpuPipeline.h"

#include "ir/LoomOps.h"
#include "loom/Kernels.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "mlir/Target/LLVMIR/Export.h"

#include "llvm/Bitcode/BitcodeReader.h"
#include "llvm/Bitcode/BitcodeWriter.h"
#include "llvm/ExecutionEngine/JITEventListener.h"
#include "llvm/ExecutionEngine/Orc/ExecutionUtils.h"
#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/ExecutionEngine/Orc/RTDyldObjectLinkingLayer.h"
#include "llvm/ExecutionEngine/SectionMemoryManager.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/Threading.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/SubtargetFeature.h"
#include "llvm/Transforms/IPO/MergeFunctions.h"
#include "llvm/Transforms/Utils/SplitModule.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <sys/mman.h>
#include <thread>

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

namespace {

constexpr llvm::StringLiteral kPackedPrefix = "__loom_packed_";

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

void initializeLlvm() {
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
}

/// The host as a target, machine code at LLVM's default level: -O3
/// instruction selection and scheduling cost seconds on these large
/// functions and gained nothing measurable (GPT logits: 87 vs 90 ms).
llvm::Expected<llvm::orc::JITTargetMachineBuilder> hostTarget() {
  initializeLlvm();
  auto builder = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!builder)
    return builder.takeError();
  builder->setCodeGenOptLevel(llvm::CodeGenOptLevel::Default);
  if (auto cpu = llvm::sys::Process::GetEnv("LOOM_TARGET_CPU");
      cpu && !cpu->empty()) {
    builder->setCPU(*cpu);
    builder->getFeatures() = llvm::SubtargetFeatures();
  }
  return std::move(*builder);
}

} // namespace

std::string loom::targetDescription() {
  auto target = hostTarget();
  if (!target) {
    llvm::consumeError(target.takeError());
    return "unknown";
  }
  return target->getTargetTriple().str() + " " + target->getCPU() + " " +
         target->getFeatures().getString();
}

namespace {

/// Adds `void __loom_packed_<f>(void **args)` for each defined function
/// `f` the module exports: argument i is read through args[i], a result is
/// stored through args[n].
void addPackedWrappers(llvm::Module &module, std::vector<std::string> &names) {
  llvm::LLVMContext &ctx = module.getContext();
  auto *ptr = llvm::PointerType::getUnqual(ctx);
  std::vector<llvm::Function *> exported;
  for (llvm::Function &fn : module)
    if (!fn.isDeclaration() && fn.hasExternalLinkage())
      exported.push_back(&fn);
  for (llvm::Function *fn : exported) {
    auto *type = llvm::FunctionType::get(llvm::Type::getVoidTy(ctx), {ptr},
                                         /*isVarArg=*/false);
    auto *wrapper =
        llvm::Function::Create(type, llvm::GlobalValue::ExternalLinkage,
                               (kPackedPrefix + fn->getName()).str(), module);
    llvm::IRBuilder<> b(llvm::BasicBlock::Create(ctx, "entry", wrapper));
    llvm::Value *args = wrapper->getArg(0);
    llvm::SmallVector<llvm::Value *> operands;
    for (auto [i, param] : llvm::enumerate(fn->args())) {
      llvm::Value *slot = b.CreateConstGEP1_64(ptr, args, i);
      llvm::Value *address = b.CreateLoad(ptr, slot);
      operands.push_back(b.CreateLoad(param.getType(), address));
    }
    llvm::Value *result = b.CreateCall(fn, operands);
    if (!fn->getReturnType()->isVoidTy()) {
      llvm::Value *slot = b.CreateConstGEP1_64(ptr, args, fn->arg_size());
      b.CreateStore(result, b.CreateLoad(ptr, slot));
    }
    b.CreateRetVoid();
    names.push_back(fn->getName().str());
  }
}

/// Optimizes and code-generates one partition (bitcode) in its own context.
llvm::Expected<std::string>
compilePartition(llvm::StringRef bitcode,
                 llvm::orc::JITTargetMachineBuilder target, unsigned optLevel,
                 double &optimizeSeconds) {
  llvm::LLVMContext ctx;
  auto module = llvm::parseBitcodeFile(
      llvm::MemoryBufferRef(bitcode, "loom-partition"), ctx);
  if (!module)
    return module.takeError();
  auto machine = target.createTargetMachine();
  if (!machine)
    return machine.takeError();
  auto start = std::chrono::steady_clock::now();
  auto optimize = mlir::makeOptimizingTransformer(optLevel, 0, machine->get());
  if (llvm::Error err = optimize(module->get()))
    return std::move(err);
  optimizeSeconds = secondsSince(start);
  llvm::SmallVector<char, 0> buffer;
  llvm::raw_svector_ostream os(buffer);
  llvm::legacy::PassManager codegen;
  if ((*machine)->addPassesToEmitFile(codegen, os, nullptr,
                                      llvm::CodeGenFileType::ObjectFile))
    return llvm::createStringError("loom: the host target cannot emit "
                                   "object files");
  codegen.run(**module);
  return std::string(buffer.begin(), buffer.end());
}

} // namespace

/// One linked copy of the objects: its JIT, entries and workspaces.
struct JitModule::Instance {
  std::unique_ptr<llvm::orc::LLJIT> jit;
  /// Packed wrappers by function: `void(void **args)`.
  llvm::StringMap<void (*)(void **)> packed;
  /// The mapped workspaces: address, bytes.
  std::vector<std::pair<void *, size_t>> workspaces;
  ~Instance() {
    jit.reset(); // the code goes before the memory it uses
    for (auto [address, bytes] : workspaces)
      ::munmap(address, bytes);
  }
};

JitModule::JitModule() = default;
JitModule::~JitModule() = default;

llvm::Expected<JitObjects> JitModule::compile(mlir::ModuleOp module,
                                              unsigned optLevel,
                                              unsigned threads,
                                              JitStats *stats) {
  return compileObjects(module, optLevel, threads, stats, /*aotEntry=*/"");
}

llvm::Expected<JitObjects> JitModule::compileAheadOfTime(mlir::ModuleOp module,
                                                         llvm::StringRef entry,
                                                         unsigned optLevel) {
  if (entry.empty())
    return llvm::createStringError("loom: an ahead-of-time object needs an "
                                   "entry function");
  return compileObjects(module, optLevel, /*threads=*/1, nullptr, entry);
}

/// `JitModule::compile`; with `aotEntry`: one object that exports only that
/// function and defines its workspaces (zero-filled .bss, mapped lazily by
/// the OS when a program starts).
llvm::Expected<JitObjects>
loom::compileObjects(mlir::ModuleOp module, unsigned optLevel, unsigned threads,
                     JitStats *stats, llvm::StringRef aotEntry) {
  bool aot = !aotEntry.empty();
  JitStats local;
  JitStats &stat = stats ? *stats : local;
  auto start = std::chrono::steady_clock::now();
  stripLoomMetadata(module);
  auto target = hostTarget();
  if (!target)
    return target.takeError();
  if (aot) // linked into position-independent executables and libraries
    target->setRelocationModel(llvm::Reloc::PIC_);
  auto machine = target->createTargetMachine();
  if (!machine)
    return machine.takeError();

  JitObjects result;
  // Workspaces become declarations that `load` defines.
  for (auto global : module.getOps<mlir::LLVM::GlobalOp>()) {
    auto array = llvm::dyn_cast<mlir::LLVM::LLVMArrayType>(global.getType());
    if (!global.getSymName().starts_with("__loom_workspace_") ||
        global.getValueAttr() || !array || !array.getElementType().isInteger(8))
      continue;
    // Uninitialized: no initializer, or one that returns undef.
    mlir::Region &init = global.getInitializerRegion();
    if (!init.empty()) {
      mlir::Block &body = init.front();
      if (body.getOperations().size() != 2 ||
          !llvm::isa<mlir::LLVM::UndefOp>(body.front()))
        continue;
      init.getBlocks().clear();
    }
    result.workspaces.emplace_back(global.getSymName().str(),
                                   array.getNumElements());
    if (aot) {
      // Zero-initialized, internal: .bss of the program that links it.
      mlir::Block *block = new mlir::Block();
      init.push_back(block);
      auto b = mlir::OpBuilder::atBlockBegin(block);
      auto zero =
          mlir::LLVM::ZeroOp::create(b, global.getLoc(), global.getType());
      mlir::LLVM::ReturnOp::create(b, global.getLoc(), zero.getResult());
      global.setLinkage(mlir::LLVM::Linkage::Internal);
      continue;
    }
    global.setLinkage(mlir::LLVM::Linkage::External);
  }
  llvm::LLVMContext ctx;
  std::unique_ptr<llvm::Module> llvmModule =
      mlir::translateModuleToLLVMIR(module, ctx);
  if (!llvmModule)
    return llvm::createStringError(
        "loom: translating the lowered module to LLVM IR failed");
  llvmModule->setDataLayout((*machine)->createDataLayout());
  llvmModule->setTargetTriple((*machine)->getTargetTriple());

  addPackedWrappers(*llvmModule, result.entries);
  if (!aotEntry.empty()) { // the entry (and its packed form) is the API
    for (llvm::Function &fn : *llvmModule)
      if (!fn.isDeclaration() && fn.getName() != aotEntry &&
          fn.getName() != (kPackedPrefix + aotEntry).str())
        fn.setLinkage(llvm::GlobalValue::InternalLinkage);
    result.entries = {aotEntry.str()};
  }
  // Identical kernels (the same fused op on the same shapes: the q, k and v
  // bias adds of a layer, say) are compiled once; the others call it.
  llvm::MergeFunctionsPass::runOnModule(*llvmModule);
  unsigned defined = 0;
  for (llvm::Function &fn : *llvmModule) {
    if (fn.isDeclaration()) {
      result.openmp |= fn.getName().starts_with("__kmpc_");
      result.runnerUtils |= fn.getName() == "memrefCopy";
      continue;
    }
    ++defined;
    stat.instructions += fn.getInstructionCount();
  }

  // Partitions: functions dealt out by size, so that each thread gets a
  // similar share (the outlined layers and OpenMP regions are many
  // functions).
  if (threads == 0)
    threads = std::max(1u, llvm::get_physical_cores() > 0
                               ? unsigned(llvm::get_physical_cores())
                               : std::thread::hardware_concurrency());
  unsigned parts = aot ? 1 : std::max(1u, std::min(2 * threads, defined / 4));
  std::vector<std::string> bitcodes;
  auto addBitcode = [&](llvm::Module &part) {
    std::string bitcode;
    llvm::raw_string_ostream os(bitcode);
    llvm::WriteBitcodeToFile(part, os);
    bitcodes.push_back(std::move(bitcode));
  };
  if (parts == 1)
    addBitcode(*llvmModule);
  else
    llvm::SplitModule(
        *llvmModule, parts,
        [&](std::unique_ptr<llvm::Module> part) { addBitcode(*part); },
        /*PreserveLocals=*/false, /*RoundRobin=*/true);
  stat.translateSeconds = secondsSince(start);

  auto llvmStart = std::chrono::steady_clock::now();
  std::vector<std::string> objects(bitcodes.size()), errors(bitcodes.size());
  std::vector<double> optimizeTimes(bitcodes.size(), 0);
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next++) < bitcodes.size();) {
      auto object =
          compilePartition(bitcodes[i], *target, optLevel, optimizeTimes[i]);
      if (object)
        objects[i] = std::move(*object);
      else
        errors[i] = llvm::toString(object.takeError());
    }
  };
  std::vector<std::thread> workers;
  for (unsigned t = 1; t < std::min<size_t>(threads, bitcodes.size()); ++t)
    workers.emplace_back(work);
  work();
  for (std::thread &worker : workers)
    worker.join();
  stat.llvmSeconds = secondsSince(llvmStart);
  for (size_t i = 0; i < objects.size(); ++i) {
    if (!errors[i].empty())
      return llvm::createStringError(errors[i]);
    stat.optimizeSeconds += optimizeTimes[i];
    result.objects.push_back(std::move(objects[i]));
  }
  return result;
}

/// Links `objects` into this process once more.
static llvm::Expected<std::unique_ptr<JitModule::Instance>>
linkInstance(const JitObjects &objects) {
  auto target = hostTarget();
  if (!target)
    return target.takeError();
  llvm::orc::LLJITBuilder builder;
  builder.setJITTargetMachineBuilder(std::move(*target));
  builder.setObjectLinkingLayerCreator(
      [](llvm::orc::ExecutionSession &session)
          -> llvm::Expected<std::unique_ptr<llvm::orc::ObjectLayer>> {
        auto layer = std::make_unique<llvm::orc::RTDyldObjectLinkingLayer>(
            session, [](const llvm::MemoryBuffer &) {
              return std::make_unique<llvm::SectionMemoryManager>();
            });
        // Debuggers see the code; `perf` too when JITDUMPDIR names where
        // its jitdump files go (otherwise LLVM's listener would write them
        // under ~/.debug on every run).
        if (auto *gdb = llvm::JITEventListener::createGDBRegistrationListener())
          layer->registerJITEventListener(*gdb);
        if (llvm::sys::Process::GetEnv("JITDUMPDIR"))
          if (auto *perf = llvm::JITEventListener::createPerfJITEventListener())
            layer->registerJITEventListener(*perf);
        return layer;
      });
  auto jit = builder.create();
  if (!jit)
    return jit.takeError();
  llvm::orc::JITDylib &dylib = (*jit)->getMainJITDylib();
  char prefix = (*jit)->getDataLayout().getGlobalPrefix();
  auto process =
      llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(prefix);
  if (!process)
    return process.takeError();
  dylib.addGenerator(std::move(*process));
  // Parallel loops call into the OpenMP runtime (LLVM's libomp); memref.copy
  // of strided views calls `memrefCopy` from MLIR's C runner utilities.
  llvm::SmallVector<const char *, 2> libraries;
  if (objects.openmp)
    libraries.push_back(kOpenMPRuntime);
  if (objects.runnerUtils)
    libraries.push_back(LOOM_MLIR_C_RUNNER_UTILS);
  for (const char *library : libraries) {
    auto generator =
        llvm::orc::DynamicLibrarySearchGenerator::Load(library, prefix);
    if (!generator)
      return generator.takeError();
    dylib.addGenerator(std::move(*generator));
  }
  // bf16 truncation (no compiler-rt in the JIT), then the runtime's kernels
  // (loom/Kernels.h) that compiled code calls.
  const std::pair<const char *, void *> provided[] = {
      {"__truncsfbf2", reinterpret_cast<void *>(&loomTruncSFBF2)},
      {"__truncdfbf2", reinterpret_cast<void *>(&loomTruncDFBF2)},
      {"loom_sgemm", reinterpret_cast<void *>(&loom_sgemm)},
      {"loom_sgemm_epilogue", reinterpret_cast<void *>(&loom_sgemm_epilogue)},
      {"loom_attention_forward",
       reinterpret_cast<void *>(&loom_attention_forward)},
      {"loom_attention_backward",
       reinterpret_cast<void *>(&loom_attention_backward)},
  };
  llvm::orc::SymbolMap symbols;
  for (auto [name, address] : provided)
    symbols[(*jit)->mangleAndIntern(name)] = {
        llvm::orc::ExecutorAddr::fromPtr(address),
        llvm::JITSymbolFlags::Exported};
  auto result = std::make_unique<JitModule::Instance>();
  for (const auto &[name, bytes] : objects.workspaces) {
    size_t size = std::max<size_t>(bytes, 1);
    void *address = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (address == MAP_FAILED)
      return llvm::createStringError("loom: cannot map a workspace of " +
                                     std::to_string(bytes) + " bytes");
    // Transparent huge pages where the OS allows them (madvise mode): a
    // GPT-2-small step's 1 GB workspace is 500 page faults, not 250 000.
    (void)::madvise(address, size, MADV_HUGEPAGE);
    result->workspaces.emplace_back(address, size);
    symbols[(*jit)->mangleAndIntern(name)] = {
        llvm::orc::ExecutorAddr::fromPtr(address),
        llvm::JITSymbolFlags::Exported};
  }
  if (llvm::Error err =
          dylib.define(llvm::orc::absoluteSymbols(std::move(symbols))))
    return std::move(err);
  for (const std::string &object : objects.objects)
    if (llvm::Error err = (*jit)->addObjectFile(
            llvm::MemoryBuffer::getMemBufferCopy(object, "loom-object")))
      return std::move(err);

  // Linking happens at the first lookup: do it now, for every entry, so
  // that it is paid (and timed) here rather than by the first call.
  for (const std::string &entry : objects.entries) {
    auto address = (*jit)->lookup(kPackedPrefix.str() + entry);
    if (!address)
      return address.takeError();
    result->packed[entry] = address->toPtr<void (*)(void **)>();
  }
  result->jit = std::move(*jit);
  return result;
}

llvm::Expected<std::unique_ptr<JitModule>>
JitModule::load(const JitObjects &objects) {
  auto instance = linkInstance(objects);
  if (!instance)
    return instance.takeError();
  std::unique_ptr<JitModule> result(new JitModule());
  result->objects = objects;
  result->idle.push_back(instance->get());
  result->instances.push_back(std::move(*instance));
  return result;
}

size_t JitModule::instanceCount() const {
  std::lock_guard<std::mutex> lock(mutex);
  return instances.size();
}

llvm::Expected<JitModule::Instance *> JitModule::acquire() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (!idle.empty()) {
      Instance *instance = idle.back();
      idle.pop_back();
      return instance;
    }
  }
  // Every copy is busy: link another (outside the lock; linking is
  // independent of the running calls).
  auto instance = linkInstance(objects);
  if (!instance)
    return instance.takeError();
  std::lock_guard<std::mutex> lock(mutex);
  instances.push_back(std::move(*instance));
  return instances.back().get();
}

void JitModule::release(Instance *instance) {
  std::lock_guard<std::mutex> lock(mutex);
  idle.push_back(instance);
}

llvm::Expected<std::unique_ptr<JitModule>>
JitModule::create(mlir::ModuleOp module, unsigned optLevel, JitStats *stats) {
  auto objects = compile(module, optLevel, /*threads=*/0, stats);
  if (!objects)
    return objects.takeError();
  return load(*objects);
}

llvm::Expected<void (*)(void **)>
JitModule::packedFunction(llvm::StringRef function) {
  auto acquired = acquire();
  if (!acquired)
    return acquired.takeError();
  Instance *instance = *acquired;
  release(instance);
  if (!instance->workspaces.empty())
    return llvm::createStringError(
        "loom: the code has planned workspaces; call it through call()");
  auto it = instance->packed.find(function);
  if (it == instance->packed.end())
    return llvm::createStringError("loom: no compiled function '" +
                                   function.str() + "'");
  return it->second;
}

llvm::Error JitModule::call(llvm::StringRef function,
                            llvm::ArrayRef<void *> pointers) {
  auto acquired = acquire();
  if (!acquired)
    return acquired.takeError();
  Instance *instance = *acquired;
  auto it = instance->packed.find(function);
  if (it == instance->packed.end()) {
    release(instance);
    return llvm::createStringError("loom: no compiled function '" +
                                   function.str() + "'");
  }
  // The packed wrapper reads argument i through args[i].
  llvm::SmallVector<void *> storage(pointers.begin(), pointers.end());
  llvm::SmallVector<void *> args;
  for (void *&p : storage)
    args.push_back(&p);
  it->second(args.data());
  release(instance);
  return llvm::Error::success();
}
