//===- Session.cpp - Compiling a Loom program, one specialization at a time =//

#include "driver/Session.h"
#include "driver/CompileCache.h"

#include "codegen/cpu/CpuPipeline.h"
#include "codegen/nvptx/NvptxPipeline.h"
#include "frontend/Diagnostics.h"
#include "frontend/Frontend.h"
#include "ir/LoomDialect.h"
#include "ir/LoomOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/TargetParser/Host.h"

#include <chrono>
#include <dlfcn.h>

using namespace loom;
using namespace loom::driver;

namespace {

llvm::Error makeError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

std::optional<DType> dtypeOf(mlir::Type type) {
  if (type.isF32())
    return DType::F32;
  if (type.isBF16())
    return DType::BF16;
  if (type.isF16())
    return DType::F16;
  if (type.isF64())
    return DType::F64;
  if (type.isInteger(32))
    return DType::I32;
  if (type.isInteger(64))
    return DType::I64;
  if (type.isInteger(1))
    return DType::Bool;
  return std::nullopt;
}

std::string shapeText(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string dimsText(const std::vector<std::string> &dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i)
    s += (i ? ", " : "") + dims[i];
  return s + "]";
}

ArgSpec specOf(mlir::Type type, llvm::StringRef name, mlir::ArrayAttr dims) {
  ArgSpec spec;
  spec.name = name.str();
  auto tensor = llvm::cast<mlir::RankedTensorType>(type);
  spec.dtype = dtypeOf(tensor.getElementType()).value_or(DType::F32);
  for (int64_t i = 0; i < tensor.getRank(); ++i) {
    int64_t size = tensor.getDimSize(i);
    auto named = dims && i < int64_t(dims.size())
                     ? llvm::dyn_cast<mlir::StringAttr>(dims[i])
                     : mlir::StringAttr();
    if (mlir::ShapedType::isDynamic(size) && named)
      spec.dims.push_back(named.str());
    else
      spec.dims.push_back(std::to_string(size));
    spec.shape.push_back(mlir::ShapedType::isDynamic(size) ? -1 : size);
  }
  return spec;
}

/// What the machine code depends on besides the IR and the pipeline: this
/// Loom (its version, and the binaries that hold the compiler, which change
/// with every rebuild), and the host CPU.
std::string compilerAndHost() {
  static const std::string text = [] {
    std::string s = "loom " LOOM_VERSION "\n";
    auto identify = [&](const std::string &path) {
      llvm::sys::fs::file_status status;
      if (path.empty() || llvm::sys::fs::status(path, status))
        return;
      s += path + " " + std::to_string(status.getSize()) + " " +
           std::to_string(
               status.getLastModificationTime().time_since_epoch().count()) +
           "\n";
    };
    identify(llvm::sys::fs::getMainExecutable(
        nullptr, reinterpret_cast<void *>(&compilerAndHost)));
    for (void *symbol : {reinterpret_cast<void *>(&llvm::sys::getHostCPUName),
                         reinterpret_cast<void *>(&mlir::verify)}) {
      Dl_info info;
      if (dladdr(symbol, &info) && info.dli_fname)
        identify(info.dli_fname);
    }
    return s;
  }();
  // Not cached: LOOM_TARGET_CPU may change within a process.
  return text + targetDescription();
}

/// The values an integer argument may hold, from its uses: the ids of an
/// embedding index its table's rows, the targets of a cross-entropy its
/// classes (or the ignore index). Reshapes, transposes and slices pass the
/// values through; other uses (compares, masks) allow anything.
std::optional<ArgSpec::Range> rangeOf(mlir::Value arg) {
  // Every use's allowance: [0, hi) or `also`; the range is their
  // intersection (an extra value survives only if every use allows it).
  struct Use {
    int64_t hi;
    std::optional<int64_t> also;
    std::string what;
  };
  std::vector<Use> uses;
  auto narrow = [&](int64_t hi, std::optional<int64_t> also, std::string what) {
    uses.push_back({hi, also, std::move(what)});
  };
  llvm::SmallVector<mlir::Value> work = {arg};
  llvm::DenseSet<mlir::Value> seen;
  while (!work.empty()) {
    mlir::Value v = work.pop_back_val();
    if (!seen.insert(v).second)
      continue;
    for (mlir::OpOperand &use : v.getUses()) {
      mlir::Operation *user = use.getOwner();
      if (llvm::isa<loom::ReshapeOp, loom::TransposeOp, loom::SliceOp>(user)) {
        work.push_back(user->getResult(0));
      } else if (auto e = llvm::dyn_cast<loom::EmbeddingOp>(user)) {
        if (use.getOperandNumber() == 1) {
          int64_t rows =
              llvm::cast<mlir::RankedTensorType>(e.getTable().getType())
                  .getDimSize(0);
          narrow(rows, std::nullopt,
                 "ids of an embedding table of " + std::to_string(rows) +
                     " rows");
        }
      } else if (auto ce = llvm::dyn_cast<loom::CrossEntropyOp>(user)) {
        if (use.getOperandNumber() == 1) {
          int64_t classes =
              llvm::cast<mlir::RankedTensorType>(ce.getLogits().getType())
                  .getShape()
                  .back();
          narrow(classes, ce.getIgnoreIndex(),
                 "targets of a cross-entropy over " + std::to_string(classes) +
                     " classes");
        }
      }
    }
  }
  if (uses.empty())
    return std::nullopt;
  const Use *tightest = &uses.front();
  for (const Use &u : uses)
    if (u.hi < tightest->hi)
      tightest = &u;
  ArgSpec::Range range{0, tightest->hi, std::nullopt, tightest->what};
  for (const Use &candidate : uses) {
    if (!candidate.also)
      continue;
    int64_t v = *candidate.also;
    bool everyUseAllows = llvm::all_of(uses, [&](const Use &u) {
      return (v >= 0 && v < u.hi) || u.also == v;
    });
    if (everyUseAllows && !(v >= 0 && v < range.hi))
      range.also = v;
  }
  return range;
}

} // namespace

llvm::Error loom::driver::checkRange(const ArgSpec &spec,
                                     llvm::StringRef function,
                                     const Tensor &input) {
  if (!spec.range || input.dtype() != DType::I32)
    return llvm::Error::success();
  const ArgSpec::Range &r = *spec.range;
  const int32_t *data = input.data<int32_t>();
  for (int64_t i = 0, n = input.numel(); i < n; ++i) {
    int64_t value = data[i];
    if ((value >= r.lo && value < r.hi) || (r.also && value == *r.also))
      continue;
    std::string at = "[";
    int64_t rest = i;
    std::vector<int64_t> index(input.shape().size());
    for (size_t d = index.size(); d-- > 0;) {
      index[d] = rest % input.shape()[d];
      rest /= input.shape()[d];
    }
    for (size_t d = 0; d < index.size(); ++d)
      at += (d ? ", " : "") + std::to_string(index[d]);
    at += "]";
    std::string allowed = "[" + std::to_string(r.lo) + ", " +
                          std::to_string(r.hi) + ")" +
                          (r.also ? " or " + std::to_string(*r.also) : "");
    return makeError("argument '" + spec.name + "' of '" + function +
                     "': value " + std::to_string(value) + " at " + at +
                     " is outside " + allowed + " (the " + r.what + ")");
  }
  return llvm::Error::success();
}

std::vector<Signature> loom::driver::signaturesOf(mlir::ModuleOp module) {
  std::vector<Signature> result;
  for (auto func : module.getOps<mlir::func::FuncOp>()) {
    Signature sig;
    sig.name = func.getSymName().str();
    for (unsigned i = 0; i < func.getNumArguments(); ++i) {
      auto name = func.getArgAttrOfType<mlir::StringAttr>(i, "loom.name");
      auto dims = func.getArgAttrOfType<mlir::ArrayAttr>(i, "loom.dims");
      sig.inputs.push_back(specOf(
          func.getArgument(i).getType(),
          name ? name.getValue() : llvm::StringRef("arg" + std::to_string(i)),
          dims));
    }
    auto results = func.getFunctionType().getResults();
    for (unsigned i = 0; i < results.size(); ++i)
      if (!func.getResultAttr(i, "loom.updates")) // updated in place
        sig.outputs.push_back(
            specOf(results[i], "result" + std::to_string(i), nullptr));
    result.push_back(std::move(sig));
  }
  return result;
}

llvm::Expected<std::vector<ParamInfo>>
loom::driver::paramTable(mlir::ModuleOp module) {
  std::vector<ParamInfo> infos;
  for (auto param : module.getOps<loom::ParameterOp>()) {
    ParamInfo info;
    info.name = param.getSymName().str();
    auto type = llvm::cast<mlir::RankedTensorType>(param.getType());
    auto dtype = dtypeOf(type.getElementType());
    if (!dtype || *dtype != DType::F32)
      return makeError("parameter '" + info.name +
                       "': only f32 parameters are supported by the runtime");
    info.dtype = *dtype;
    info.shape.assign(type.getShape().begin(), type.getShape().end());
    for (mlir::NamedAttribute field : param.getInit()) {
      if (field.getName() == "kind") {
        info.init.kind =
            llvm::cast<mlir::StringAttr>(field.getValue()).getValue().str();
        continue;
      }
      if (auto f = llvm::dyn_cast<mlir::FloatAttr>(field.getValue()))
        info.init.fields.emplace_back(field.getName().str(),
                                      f.getValueAsDouble());
    }
    infos.push_back(std::move(info));
  }
  return infos;
}

Session::~Session() = default;

llvm::Expected<std::unique_ptr<Session>>
Session::open(const std::string &path, const SessionOptions &options) {
  std::unique_ptr<Session> session(new Session());
  session->options = options;
  if (options.target == Target::Cuda) {
    if (!isTensorCoreMode(options.tensorCores))
      return makeError("tensor cores '" + options.tensorCores + "': expected " +
                       kTensorCoreModes.str());
    if (Status cuda = cuda::available(); !cuda.ok())
      return makeError("target cuda: " + cuda.message());
  }
  mlir::DialectRegistry registry;
  registerCpuDialects(registry);
  registerNvptxDialects(registry);
  registry.insert<loom::LoomDialect>();
  session->context = std::make_unique<mlir::MLIRContext>(registry);
  session->context->loadAllAvailableDialects();
  session->sourceMgr = std::make_unique<llvm::SourceMgr>();

  std::string diagnostics;
  llvm::raw_string_ostream os(diagnostics);
  frontend::DiagnosticEngine diags(*session->sourceMgr, os);
  session->program = frontend::loadProgram(path, options.includeDirs,
                                           *session->sourceMgr, diags);
  if (!session->program)
    return makeError(diagnostics.empty() ? "cannot load '" + path + "'"
                                         : diagnostics);
  if (options.useCache) {
    std::string dir = options.cacheDir.empty()
                          ? CompileCache::defaultDirectory()
                          : options.cacheDir;
    if (!dir.empty())
      session->diskCache =
          std::make_unique<CompileCache>(dir, CompileCache::defaultLimit());
  }
  auto module = session->generate("", {});
  if (!module)
    return module.takeError();
  auto params = paramTable(**module);
  if (!params)
    return params.takeError();
  session->paramInfos = std::move(*params);
  session->signatures = signaturesOf(**module);
  return session;
}

const Signature *Session::findFunction(llvm::StringRef name) const {
  for (const Signature &sig : signatures)
    if (sig.name == name)
      return &sig;
  return nullptr;
}

llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
Session::generate(llvm::StringRef function,
                  const std::map<std::string, int64_t> &bindings) {
  std::string diagnostics;
  llvm::raw_string_ostream os(diagnostics);
  frontend::DiagnosticEngine diags(*sourceMgr, os);
  frontend::GenerateOptions gen;
  gen.function = function.str();
  gen.bindings = bindings;
  gen.model = options.model;
  gen.config = options.config;
  gen.training = options.training;
  auto module =
      frontend::generateModule(*program, *context, *sourceMgr, diags, gen);
  if (!module)
    return makeError(diagnostics.empty() ? "compilation failed" : diagnostics);
  return std::move(module);
}

llvm::Expected<std::map<std::string, int64_t>>
Session::bindFromShapes(llvm::StringRef function,
                        const std::vector<std::vector<int64_t>> &shapes,
                        const std::vector<DType> &dtypes) const {
  const Signature *sig = findFunction(function);
  if (!sig)
    return makeError("no function '" + function + "'");
  if (shapes.size() != sig->inputs.size())
    return makeError("'" + function + "' takes " +
                     llvm::Twine(sig->inputs.size()) + " inputs, got " +
                     llvm::Twine(shapes.size()));
  std::map<std::string, int64_t> bound;
  std::map<std::string, std::string> boundBy;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const ArgSpec &arg = sig->inputs[i];
    std::string want = std::string(dtypeName(arg.dtype)) + dimsText(arg.dims);
    if (dtypes[i] != arg.dtype)
      return makeError("argument '" + arg.name + "' of '" + function +
                       "': expected " + want + ", got dtype " +
                       std::string(dtypeName(dtypes[i])));
    if (shapes[i].size() != arg.dims.size())
      return makeError("argument '" + arg.name + "' of '" + function +
                       "': expected " + want + ", got shape " +
                       shapeText(shapes[i]));
    for (size_t d = 0; d < arg.dims.size(); ++d) {
      const std::string &dim = arg.dims[d];
      int64_t have = shapes[i][d];
      int64_t number = 0;
      if (!llvm::StringRef(dim).getAsInteger(10, number)) {
        if (number != have)
          return makeError("argument '" + arg.name + "' of '" + function +
                           "': expected " + want + ", got shape " +
                           shapeText(shapes[i]));
        continue;
      }
      auto [it, inserted] = bound.emplace(dim, have);
      if (inserted) {
        boundBy[dim] = arg.name;
        continue;
      }
      if (it->second != have)
        return makeError("argument '" + arg.name + "' of '" + function +
                         "': dim " + llvm::Twine(d) + " is " +
                         llvm::Twine(have) + " but " + dim + " = " +
                         llvm::Twine(it->second) + " from argument '" +
                         boundBy[dim] + "'");
    }
  }
  return bound;
}

/// A copy of `module` with `loom-derive-decode{options}` run on it.
static llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
deriveDecode(mlir::ModuleOp module, const std::string &options) {
  mlir::OwningOpRef<mlir::ModuleOp> copy(module.clone());
  driver::DiagnosticCollector collected(module.getContext());
  registerCpuPipeline();
  mlir::PassManager pm(module.getContext());
  if (mlir::failed(mlir::parsePassPipeline(
          "loom-derive-decode{" + options + "}", pm, llvm::errs())) ||
      mlir::failed(pm.run(*copy)))
    return makeError("cannot derive a decode step: " + collected.text());
  return std::move(copy);
}

std::string Variant::key() const {
  std::string text = std::to_string(int(kind)) + "|";
  for (const std::string &name : trainable)
    text += name + ",";
  text += "|";
  for (const auto &[name, mult] : lrMultipliers)
    text += name + "=" + llvm::formatv("{0:e}", mult).str() + ",";
  return text + "|" + optimizer + "|" + std::to_string(capacity);
}

/// Matches a parameter name against a name or a prefix ending at a `.`.
static bool matchesPrefix(llvm::StringRef name, llvm::StringRef pattern) {
  return name == pattern ||
         (name.starts_with(pattern) && name.size() > pattern.size() &&
          (name[pattern.size()] == '.' || pattern.ends_with(".")));
}

/// Rewrites `sig` (the forward signature) into the variant's signature.
static Signature variantSignature(const Signature &forward,
                                  const Variant &variant, int64_t paramCount,
                                  int states) {
  if (variant.kind == Variant::Forward || variant.kind == Variant::Decode)
    return forward;
  auto spec = [](std::string name, std::vector<int64_t> shape) {
    ArgSpec arg;
    arg.name = std::move(name);
    arg.dtype = DType::F32;
    arg.shape = shape;
    for (int64_t d : shape)
      arg.dims.push_back(std::to_string(d));
    return arg;
  };
  Signature sig;
  sig.name = forward.name;
  if (variant.kind == Variant::Gradient) {
    sig.inputs = forward.inputs;
    sig.outputs = {spec("loss", {}), spec("grads", {paramCount})};
    return sig;
  }
  static const char *stateNames[] = {"m", "v"};
  for (int i = 0; i < states; ++i)
    sig.inputs.push_back(spec(stateNames[i], {paramCount}));
  sig.inputs.push_back(spec("hyper", {4}));
  llvm::append_range(sig.inputs, forward.inputs);
  // The parameters and the state are updated in place.
  sig.outputs = {spec("loss", {}), spec("grad_norm", {}),
                 spec("first_non_finite", {})};
  sig.outputs.back().dtype = DType::I64;
  return sig;
}

/// Lowers `module` with the NVPTX pipeline (the same autodiff and optimizer
/// as the CPU pipeline's `cpu`) and loads its kernels on the device.
static llvm::Error compileForCuda(mlir::ModuleOp module,
                                  const CpuPipelineOptions &cpu,
                                  const std::string &tensorCores,
                                  CompiledFunction &compiled) {
  NvptxPipelineOptions options;
  options.autodiff = cpu.autodiff;
  options.optimizer = cpu.optimizer;
  options.tensorCores = tensorCores;
  auto arch = cuda::deviceArch();
  if (!arch.ok())
    return makeError("target cuda: " + arch.status().message());
  options.arch = arch.value();
  compiled.gpuInput = mlir::OwningOpRef<mlir::ModuleOp>(module.clone());
  compiled.gpuAutodiff = options.autodiff;
  compiled.gpuOptimizer = options.optimizer;
  compiled.gpuArch = options.arch;
  compiled.gpuTensorCores = options.tensorCores;
  driver::DiagnosticCollector collected(module.getContext());
  mlir::PassManager pm(module.getContext());
  if (mlir::failed(buildNvptxPipeline(pm, options)) ||
      mlir::failed(pm.run(module)))
    return makeError("lowering '" + compiled.entry + "' for " + options.arch +
                     " failed:\n" + collected.text());
  if (auto bytes = module->getAttrOfType<mlir::IntegerAttr>("loom.param_bytes"))
    compiled.paramBytes = bytes.getInt();
  if (auto func = module.lookupSymbol<mlir::func::FuncOp>(compiled.entry)) {
    if (auto flops = func->getAttrOfType<mlir::IntegerAttr>("loom.flops"))
      compiled.flops = flops.getInt();
    if (auto states =
            func->getAttrOfType<mlir::IntegerAttr>("loom.optimizer_states"))
      compiled.optimizerStates = int(states.getInt());
  }
  auto program = extractGpuProgram(module, options.arch, "");
  if (!program)
    return program.takeError();
  auto exe = cuda::Executable::load(std::move(*program));
  if (!exe.ok())
    return makeError(exe.status().message());
  compiled.gpu = std::move(exe.value());
  return llvm::Error::success();
}

llvm::Expected<CompiledFunction *>
Session::get(llvm::StringRef function,
             const std::map<std::string, int64_t> &bindings,
             const Variant &variant) {
  std::string key = function.str() + "|" + variant.key() + "|";
  for (const auto &[name, value] : bindings)
    key += name + "=" + std::to_string(value) + ",";
  auto it = cache.find(key);
  if (it != cache.end())
    return it->second.get();

  auto start = std::chrono::steady_clock::now();
  auto since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t)
        .count();
  };
  auto module = generate(function, bindings);
  if (!module)
    return module.takeError();
  auto compiled = std::make_unique<CompiledFunction>();
  compiled->loomModule = mlir::OwningOpRef<mlir::ModuleOp>((*module)->clone());
  compiled->frontendSeconds = since(start);
  std::vector<Signature> sigs = signaturesOf(**module);
  if (sigs.size() != 1)
    return makeError("no function '" + function + "'");
  std::string decodeOptions;
  if (variant.kind == Variant::Decode) {
    // The decode step's signature (start, caches) is the derived function's.
    decodeOptions = "function=" + function.str() +
                    " capacity=" + std::to_string(variant.capacity);
    auto derived = deriveDecode(**module, decodeOptions);
    if (!derived)
      return derived.takeError();
    std::vector<Signature> derivedSigs = signaturesOf(**derived);
    sigs.clear();
    for (Signature &sig : derivedSigs) {
      if (sig.name == function.str() + "_decode")
        sigs.push_back(std::move(sig));
      else if (sig.name == function.str() + "_decode_context")
        compiled->contextSignature = std::move(sig);
    }
    if (sigs.size() != 1)
      return makeError("internal error: no decode step of '" + function + "'");
    if (compiled->contextSignature)
      compiled->contextEntry = compiled->contextSignature->name;
    // The ranges of the derived functions' own arguments (start sits at 1;
    // a context input's uses may have moved to the context function).
    for (auto func : (*derived)->getOps<mlir::func::FuncOp>()) {
      Signature *sig = func.getSymName() == sigs.front().name ? &sigs.front()
                       : (compiled->contextSignature &&
                          func.getSymName() == compiled->contextSignature->name)
                           ? &*compiled->contextSignature
                           : nullptr;
      if (!sig)
        continue;
      for (unsigned i = 0; i < func.getNumArguments() && i < sig->inputs.size();
           ++i)
        sig->inputs[i].range = rangeOf(func.getArgument(i));
    }
    sigs.front().name = function.str();
    // start + T <= capacity, so the caches are never written out of bounds.
    int64_t steps = sigs.front().inputs[0].shape[1];
    ArgSpec &start = sigs.front().inputs[1];
    start.range =
        ArgSpec::Range{0, variant.capacity - steps + 1, std::nullopt,
                       "start positions of " + std::to_string(steps) +
                           " new tokens in a cache of " +
                           std::to_string(variant.capacity) + " positions"};
  }
  compiled->signature = sigs.front();
  if (variant.kind != Variant::Decode)
    for (auto func : (*module)->getOps<mlir::func::FuncOp>())
      for (unsigned i = 0;
           i < func.getNumArguments() && i < compiled->signature.inputs.size();
           ++i)
        compiled->signature.inputs[i].range = rangeOf(func.getArgument(i));
  for (const ArgSpec &arg : compiled->signature.inputs)
    for (int64_t d : arg.shape)
      if (d < 0)
        return makeError("argument '" + arg.name + "' of '" + function +
                         "' still has a symbolic dim; bind every dim");

  driver::DiagnosticCollector collected(context.get());
  CpuPipelineOptions pipeline;
  pipeline.gemmKernel = options.gemmKernel;
  pipeline.gemmEpilogues = options.gemmEpilogues;
  pipeline.outlineLayers = options.outlineLayers;
  pipeline.streamingStoreBytes = options.streamingStoreBytes;
  compiled->entry = function.str();
  if (variant.kind == Variant::Decode) {
    pipeline.decode = decodeOptions;
    compiled->entry = function.str() + "_decode";
  } else if (variant.kind != Variant::Forward) {
    pipeline.autodiff = "function=" + function.str();
    if (!variant.trainable.empty())
      pipeline.autodiff += " trainable=" + llvm::join(variant.trainable, ",");
    compiled->entry = function.str() + "_grad";
  }
  if (variant.kind == Variant::TrainStep) {
    pipeline.optimizer = "function=" + function.str() + "_grad " +
                         (variant.optimizer.empty() ? std::string("kind=adamw")
                                                    : variant.optimizer);
    compiled->entry = "train_step";
    mlir::Builder b(context.get());
    for (auto param : (*module)->getOps<loom::ParameterOp>()) {
      double mult = 1.0;
      for (const auto &[pattern, value] : variant.lrMultipliers)
        if (matchesPrefix(param.getSymName(), pattern))
          mult = value;
      param->setAttr("loom.lr_mult", b.getF64FloatAttr(mult));
    }
  }
  if (options.target == Target::Cuda) {
    if (variant.kind == Variant::Decode)
      return makeError("decode steps have no GPU pipeline yet (target cpu)");
    if (llvm::Error err =
            compileForCuda(**module, pipeline, options.tensorCores, *compiled))
      return std::move(err);
    compiled->mlirSeconds = since(start) - compiled->frontendSeconds;
    compiled->signature =
        variantSignature(compiled->signature, variant, compiled->paramBytes / 4,
                         compiled->optimizerStates);
    compiled->compileSeconds = since(start);
    ++compiles;
    CompiledFunction *result = compiled.get();
    cache[key] = std::move(compiled);
    if (onCudaCompiled)
      onCudaCompiled(*result);
    return result;
  }
  // The disk cache: the key is everything the machine code depends on.
  std::string cacheKey;
  std::optional<CachedFunction> built;
  if (diskCache) {
    std::string text;
    llvm::raw_string_ostream os(text);
    (*module)->print(os, mlir::OpPrintingFlags().enableDebugInfo());
    std::string config = cpuPipelineText(pipeline) + "\nO" +
                         std::to_string(options.optLevel) + "\n" +
                         compiled->entry;
    cacheKey = CompileCache::key({compilerAndHost(), config, text});
    built = diskCache->lookup(cacheKey);
    compiled->fromDiskCache = built.has_value();
  }
  if (!built) {
    mlir::PassManager pm(context.get());
    if (options.timePasses)
      pm.enableTiming();
    auto mlirStart = std::chrono::steady_clock::now();
    if (mlir::failed(buildCpuPipeline(pm, pipeline)) ||
        mlir::failed(pm.run(**module)))
      return makeError("lowering '" + function + "' failed:\n" +
                       collected.text());
    compiled->mlirSeconds = since(mlirStart);
    built.emplace();
    if (auto bytes =
            (**module)->getAttrOfType<mlir::IntegerAttr>("loom.param_bytes"))
      built->paramBytes = bytes.getInt();
    for (auto func : (*module)->getOps<mlir::LLVM::LLVMFuncOp>())
      if (func.getName() == compiled->entry) {
        if (auto flops = func->getAttrOfType<mlir::IntegerAttr>("loom.flops"))
          built->flops = flops.getInt();
        if (auto states =
                func->getAttrOfType<mlir::IntegerAttr>("loom.optimizer_states"))
          built->optimizerStates = states.getInt();
      }
    auto objects = JitModule::compile(**module, options.optLevel,
                                      /*threads=*/0, &compiled->llvm);
    if (!objects)
      return objects.takeError();
    built->objects = std::move(*objects);
    if (diskCache)
      diskCache->store(cacheKey, *built);
  }
  compiled->flops = built->flops;
  compiled->paramBytes = built->paramBytes;
  compiled->optimizerStates = int(built->optimizerStates);
  compiled->signature =
      variantSignature(compiled->signature, variant, compiled->paramBytes / 4,
                       compiled->optimizerStates);
  auto linkStart = std::chrono::steady_clock::now();
  auto jit = JitModule::load(built->objects);
  if (!jit)
    return jit.takeError();
  compiled->jit = std::move(*jit);
  compiled->linkSeconds = since(linkStart);
  compiled->compileSeconds = since(start);
  ++compiles;
  hits += compiled->fromDiskCache;
  CompiledFunction *result = compiled.get();
  cache[key] = std::move(compiled);
  return result;
}
