//===- loomc.cpp - The Loom compiler driver -------------------------------===//
//
//   loomc check   FILE [-I DIR] [--model NAME]
//   loomc compile FILE --emit=ast|loom [--fn NAME] [--bind B=2,T=16] [-o OUT]
//                      [--dump-after=PASS] [--time-passes]
//   loomc compile FILE --target=nvptx [--gpu-arch=sm_90] [--tensor-cores=MODE]
//                      --emit=ptx --fn NAME --bind B=2,T=16 -o DIR
//   loomc run     FILE --fn NAME --bind B=2,T=16 [--ckpt CKPT] [--seed N]
//                      [--target=cuda [--tensor-cores=MODE]]
//
// FILE is a Loom program (.loom) or loom dialect IR (.mlir).
//
// Subcommands that later stages add (run, train, generate) plug in here.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/CpuPipeline.h"
#include "codegen/cpu/Jit.h"
#include "codegen/nvptx/NvptxPipeline.h"
#include "driver/Session.h"
#include "frontend/AST.h"
#include "frontend/Diagnostics.h"
#include "frontend/Frontend.h"
#include "ir/LoomDialect.h"
#include "passes/Passes.h"
#include "tools/loomc/Aot.h"
#include "tools/loomc/Run.h"
#include "tools/loomc/Train.h"

#include "loom/Import.h"

#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"

#include "llvm/Config/llvm-config.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
namespace cl = llvm::cl;

namespace {

cl::OptionCategory loomCategory("loomc options");

cl::SubCommand checkCmd("check",
                        "Report diagnostics only; exit 1 on any error");
cl::SubCommand compileCmd("compile", "Compile FILE and print a chosen stage");
cl::SubCommand runCmd("run",
                      "JIT-run one entry function on random inputs and print "
                      "output statistics");

cl::SubCommand trainCmd("train",
                        "Train a model's loss with the compiled fused step");
cl::SubCommand sampleCmd("sample",
                         "Generate text from a causal LM's logits function "
                         "(recomputing the window per token)");
cl::SubCommand generateCmd("generate",
                           "Generate text with the derived KV-cache decode "
                           "step, streamed, with tokens/s");
cl::SubCommand importCmd("import",
                         "Import a Hugging Face model directory (BERT, "
                         "RoBERTa, DistilBERT, GPT-2) into a Loom checkpoint");

cl::opt<std::string> inputFile(cl::Positional, cl::desc("FILE (import: DIR)"),
                               cl::Required, cl::sub(checkCmd),
                               cl::sub(compileCmd), cl::sub(runCmd),
                               cl::sub(trainCmd), cl::sub(sampleCmd),
                               cl::sub(generateCmd), cl::sub(importCmd),
                               cl::cat(loomCategory));

// train / sample
cl::list<std::string> configValues(
    "config", cl::desc("Override model configuration values, e.g. d=64"),
    cl::value_desc("NAME=VALUE,..."), cl::CommaSeparated, cl::sub(compileCmd),
    cl::sub(runCmd), cl::sub(trainCmd), cl::sub(sampleCmd),
    cl::sub(generateCmd), cl::sub(importCmd), cl::cat(loomCategory));
cl::opt<std::string>
    taskName("task",
             cl::desc("Objective: lm, mlm, mlm-only, classify, copy, "
                      "reverse (default: from the loss)"),
             cl::sub(trainCmd), cl::cat(loomCategory));
cl::opt<std::string> dataFile("data",
                              cl::desc("Training text (lm, mlm), or lines "
                                       "LABEL<TAB>TEXT (classify)"),
                              cl::value_desc("FILE"), cl::sub(trainCmd),
                              cl::cat(loomCategory));
cl::opt<std::string> initFrom(
    "init",
    cl::desc("Start from this checkpoint's parameters (e.g. loomc import's; "
             "new heads keep their initializer), configuration and "
             "tokenizer"),
    cl::value_desc("CKPT"), cl::sub(trainCmd), cl::cat(loomCategory));
cl::opt<std::string> tokenizerDir(
    "tokenizer",
    cl::desc("A model directory whose tokenizer encodes --data (classify) or "
             "the prompt (sample, generate; default: the checkpoint's, else "
             "bytes)"),
    cl::value_desc("DIR"), cl::sub(trainCmd), cl::sub(sampleCmd),
    cl::sub(generateCmd), cl::cat(loomCategory));
cl::opt<std::string> teacherCkpt(
    "teacher",
    cl::desc("Distillation: the teacher's checkpoint (its configuration "
             "applies); its classify scores each batch"),
    cl::value_desc("CKPT"), cl::sub(trainCmd), cl::cat(loomCategory));
cl::opt<std::string> teacherModelFile(
    "teacher-model",
    cl::desc("Distillation: the teacher's model file (default: FILE)"),
    cl::value_desc("FILE"), cl::sub(trainCmd), cl::cat(loomCategory));
cl::opt<double> heldOutFraction(
    "held-out",
    cl::desc("Share of each label's examples held out for accuracy "
             "(classify)"),
    cl::init(0.2), cl::sub(trainCmd), cl::cat(loomCategory));
cl::opt<int64_t> trainSteps("steps", cl::desc("Training steps"), cl::init(100),
                            cl::sub(trainCmd), cl::cat(loomCategory));
cl::opt<int64_t> batchSize("batch", cl::desc("Batch size"), cl::init(8),
                           cl::sub(trainCmd), cl::cat(loomCategory));
cl::opt<int64_t> ctxLen("ctx", cl::desc("Sequence length (train, sample)"),
                        cl::init(64), cl::sub(trainCmd), cl::sub(sampleCmd),
                        cl::cat(loomCategory));
cl::opt<double> learningRate("lr", cl::desc("Base learning rate"),
                             cl::init(1e-3), cl::sub(trainCmd),
                             cl::cat(loomCategory));
cl::opt<std::string> scheduleSpec(
    "schedule",
    cl::desc("LR schedule: constant, step:size=N,gamma=G, exp:gamma=G, "
             "cyclic:min=,max=,size=, warmup-linear:warmup=,total=[,min=], "
             "warmup-cosine:..."),
    cl::init("constant"), cl::sub(trainCmd), cl::cat(loomCategory));
cl::opt<std::string> optimizerKind("optimizer", cl::desc("sgd, adam or adamw"),
                                   cl::init("adamw"), cl::sub(trainCmd),
                                   cl::cat(loomCategory));
cl::opt<double> momentumValue("momentum", cl::desc("SGD momentum"),
                              cl::init(0.0), cl::sub(trainCmd),
                              cl::cat(loomCategory));
cl::opt<bool> nesterovFlag("nesterov", cl::desc("Nesterov momentum (sgd)"),
                           cl::sub(trainCmd), cl::cat(loomCategory));
cl::opt<double> weightDecayValue("weight-decay", cl::desc("Weight decay"),
                                 cl::init(0.0), cl::sub(trainCmd),
                                 cl::cat(loomCategory));
cl::opt<double> clipNorm("clip", cl::desc("Global gradient-norm clipping"),
                         cl::init(0.0), cl::sub(trainCmd),
                         cl::cat(loomCategory));
cl::opt<std::string> logFile("log", cl::desc("CSV log of every step"),
                             cl::value_desc("CSV"), cl::sub(trainCmd),
                             cl::cat(loomCategory));
cl::opt<int64_t> logEvery("log-every",
                          cl::desc("Progress line every N steps (no tty)"),
                          cl::init(10), cl::sub(trainCmd),
                          cl::cat(loomCategory));
cl::opt<std::string> ckptOut("ckpt-out",
                             cl::desc("Write a training checkpoint here"),
                             cl::value_desc("CKPT"), cl::sub(trainCmd),
                             cl::cat(loomCategory));
cl::opt<int64_t> ckptEvery("ckpt-every",
                           cl::desc("Also checkpoint every N steps"),
                           cl::init(0), cl::sub(trainCmd),
                           cl::cat(loomCategory));
cl::opt<std::string> resumeFrom("resume",
                                cl::desc("Resume from a training checkpoint"),
                                cl::value_desc("CKPT"), cl::sub(trainCmd),
                                cl::cat(loomCategory));
cl::opt<std::string>
    lrFindCsv("lr-find",
              cl::desc("Run the LR range test, write CSV, print the "
                       "suggested LR and exit"),
              cl::value_desc("CSV"), cl::sub(trainCmd), cl::cat(loomCategory));
cl::opt<int64_t> lrFindSteps("lr-find-steps", cl::desc("Steps of --lr-find"),
                             cl::init(100), cl::sub(trainCmd),
                             cl::cat(loomCategory));
cl::opt<std::string> groupSpec(
    "groups",
    cl::desc("Layer groups bottom first: NAME=PREFIX[,PREFIX];NAME=..."),
    cl::sub(trainCmd), cl::cat(loomCategory));
cl::opt<double> lrDecay("lr-decay",
                        cl::desc("Discriminative LRs: group k below the top "
                                 "trains at lr / DECAY^k"),
                        cl::init(1.0), cl::sub(trainCmd),
                        cl::cat(loomCategory));
cl::opt<int64_t> unfreezeEvery(
    "unfreeze-every",
    cl::desc("Gradual unfreezing: one more group (top-down) every N steps"),
    cl::init(0), cl::sub(trainCmd), cl::cat(loomCategory));
cl::opt<std::string> promptText("prompt", cl::desc("Text to continue"),
                                cl::init("\n"), cl::sub(sampleCmd),
                                cl::sub(generateCmd), cl::cat(loomCategory));
cl::opt<int64_t> sampleTokens("tokens", cl::desc("Bytes to generate"),
                              cl::init(200), cl::sub(sampleCmd),
                              cl::cat(loomCategory));
cl::opt<int64_t> sampleLines("lines", cl::desc("Stop after N generated lines"),
                             cl::init(0), cl::sub(sampleCmd),
                             cl::cat(loomCategory));
cl::opt<double> temperature("temperature", cl::desc("Sampling temperature"),
                            cl::init(0.8), cl::sub(sampleCmd),
                            cl::sub(generateCmd), cl::cat(loomCategory));

cl::opt<int64_t> maxTokens("max-tokens", cl::desc("Tokens to generate"),
                           cl::init(200), cl::sub(generateCmd),
                           cl::cat(loomCategory));
cl::opt<int64_t> topK("top-k", cl::desc("Sample from the K likeliest (0: all)"),
                      cl::init(0), cl::sub(generateCmd), cl::cat(loomCategory));
cl::opt<double> topP("top-p",
                     cl::desc("Sample from the likeliest tokens holding "
                              "probability P (1: all)"),
                     cl::init(1.0), cl::sub(generateCmd),
                     cl::cat(loomCategory));
cl::list<std::string> stopStrings("stop",
                                  cl::desc("Stop when the text ends with S "
                                           "(repeatable)"),
                                  cl::value_desc("S"), cl::sub(generateCmd),
                                  cl::cat(loomCategory));
cl::opt<int64_t> cacheCapacity(
    "capacity",
    cl::desc("Positions of the key/value cache (default: the model's ctx)"),
    cl::init(0), cl::sub(generateCmd), cl::cat(loomCategory));

cl::opt<bool> noCache("no-cache",
                      cl::desc("Compile everything: neither read nor write "
                               "the disk cache of compiled functions "
                               "(LOOM_CACHE_DIR, default ~/.cache/loom)"),
                      cl::sub(runCmd), cl::sub(trainCmd), cl::sub(sampleCmd),
                      cl::sub(generateCmd), cl::cat(loomCategory));

cl::opt<std::string> checkpoint("ckpt",
                                cl::desc("Load parameters from a safetensors "
                                         "checkpoint"),
                                cl::value_desc("CKPT"), cl::sub(runCmd),
                                cl::sub(sampleCmd), cl::sub(generateCmd),
                                cl::cat(loomCategory));
cl::opt<uint64_t> seed("seed",
                       cl::desc("Seed of the parameters, data and sampling"),
                       cl::init(0), cl::sub(runCmd), cl::sub(trainCmd),
                       cl::sub(sampleCmd), cl::sub(generateCmd),
                       cl::sub(importCmd), cl::cat(loomCategory));

enum class Emit { Ast, Loom, Linalg, Llvm, Obj, Header, Gpu, Ptx };
cl::opt<Emit> emit(
    "emit", cl::desc("The stage to print"),
    cl::values(clEnumValN(Emit::Ast, "ast", "the syntax tree of a .loom file"),
               clEnumValN(Emit::Loom, "loom", "loom dialect IR"),
               clEnumValN(Emit::Linalg, "linalg",
                          "linalg on tensors (CPU pipeline)"),
               clEnumValN(Emit::Llvm, "llvm", "LLVM IR for the host CPU"),
               clEnumValN(Emit::Obj, "obj",
                          "an object file with --fn for the host CPU "
                          "(ahead of time; needs -o)"),
               clEnumValN(Emit::Header, "header",
                          "the C header of --emit=obj's object"),
               clEnumValN(Emit::Gpu, "gpu",
                          "host launch sequences and GPU kernels "
                          "(--target=nvptx)"),
               clEnumValN(Emit::Ptx, "ptx",
                          "kernels.ptx and manifest.json in the directory "
                          "-o DIR (--target=nvptx)")),
    cl::init(Emit::Loom), cl::sub(compileCmd), cl::cat(loomCategory));

cl::list<std::string> includeDirs("I", cl::desc("Add a library search dir"),
                                  cl::value_desc("DIR"), cl::Prefix,
                                  cl::sub(checkCmd), cl::sub(compileCmd),
                                  cl::sub(runCmd), cl::sub(trainCmd),
                                  cl::sub(sampleCmd), cl::sub(generateCmd),
                                  cl::sub(importCmd), cl::cat(loomCategory));

cl::opt<std::string> modelName("model",
                               cl::desc("The model to compile (default: the "
                                        "first in FILE)"),
                               cl::value_desc("NAME"), cl::sub(checkCmd),
                               cl::sub(compileCmd), cl::sub(runCmd),
                               cl::sub(trainCmd), cl::sub(sampleCmd),
                               cl::sub(generateCmd), cl::cat(loomCategory));

cl::opt<std::string> fnName("fn", cl::desc("Keep only entry function NAME"),
                            cl::value_desc("NAME"), cl::sub(checkCmd),
                            cl::sub(compileCmd), cl::sub(runCmd),
                            cl::sub(trainCmd), cl::sub(sampleCmd),
                            cl::sub(generateCmd), cl::cat(loomCategory));

cl::list<std::string> bindings("bind",
                               cl::desc("Bind symbolic dims, e.g. B=2,T=16"),
                               cl::value_desc("NAME=VALUE,..."),
                               cl::CommaSeparated, cl::sub(checkCmd),
                               cl::sub(compileCmd), cl::sub(runCmd),
                               cl::cat(loomCategory));

cl::opt<std::string> outputFile("o", cl::desc("Output file (default stdout)"),
                                cl::value_desc("OUT"), cl::init("-"),
                                cl::sub(compileCmd), cl::sub(importCmd),
                                cl::cat(loomCategory));
cl::opt<std::string> importModelFile(
    "model-file",
    cl::desc("The Loom model the imported checkpoint is for (default: "
             "examples/hf/bert.loom or examples/gpt.loom by architecture)"),
    cl::value_desc("FILE"), cl::sub(importCmd), cl::cat(loomCategory));

cl::list<std::string>
    dumpAfter("dump-after",
              cl::desc("Print the IR after each pass with this argument"),
              cl::value_desc("PASS"), cl::CommaSeparated, cl::sub(compileCmd),
              cl::cat(loomCategory));

cl::opt<bool> timePasses("time-passes", cl::desc("Time each pass"),
                         cl::sub(compileCmd), cl::cat(loomCategory));

cl::opt<bool> gradVariant("grad",
                          cl::desc("Compile the gradient of --fn (a loss): "
                                   "<fn>_grad"),
                          cl::sub(compileCmd), cl::cat(loomCategory));
cl::opt<std::string>
    stepVariant("step",
                cl::desc("Compile the fused training step of --fn (a loss) "
                         "with this optimizer: sgd, adam or adamw"),
                cl::value_desc("OPTIMIZER"), cl::sub(compileCmd),
                cl::cat(loomCategory));
cl::opt<int64_t>
    decodeCapacity("decode",
                   cl::desc("Derive the incremental decoding step of --fn (a "
                            "decoder's forward) with key/value caches of C "
                            "positions: <fn>_decode"),
                   cl::value_desc("C"), cl::init(0), cl::sub(compileCmd),
                   cl::cat(loomCategory));
cl::opt<bool> noOutline("no-outline",
                        cl::desc("Inline every layer of a repeat (no "
                                 "loom-outline-layers)"),
                        cl::sub(compileCmd), cl::cat(loomCategory));
cl::opt<bool> printLocations("print-locations",
                             cl::desc("Print the source location of each op"),
                             cl::sub(compileCmd), cl::cat(loomCategory));

enum class Target { Cpu, Nvptx };
cl::opt<Target>
    target("target", cl::desc("The code to generate"),
           cl::values(clEnumValN(Target::Cpu, "cpu", "the host CPU (default)"),
                      clEnumValN(Target::Nvptx, "nvptx",
                                 "NVIDIA GPUs: PTX kernels and launch plans")),
           cl::init(Target::Cpu), cl::sub(compileCmd), cl::cat(loomCategory));
cl::opt<std::string> gpuArch("gpu-arch",
                             cl::desc("The GPU architecture of --target=nvptx "
                                      "(sm_80, sm_90, ...)"),
                             cl::value_desc("SM"), cl::init("sm_90"),
                             cl::sub(compileCmd), cl::cat(loomCategory));
cl::opt<std::string> tensorCores(
    "tensor-cores",
    cl::desc("The f32 contractions' products on tensor cores (compile "
             "--target=nvptx, run and train --target=cuda): 3xtf32 "
             "(default; f32 accuracy from three tf32 products), tf32 (one; "
             "about 1e-3 relative), bf16 (operands rounded to bf16; about "
             "4e-3) or none (CUDA cores)"),
    cl::value_desc("MODE"), cl::init("3xtf32"), cl::sub(compileCmd),
    cl::sub(runCmd), cl::sub(trainCmd), cl::cat(loomCategory));

cl::opt<std::string>
    runTarget("target",
              cl::desc("Where to run: cpu (default) or cuda (NVPTX kernels "
                       "through the CUDA driver)"),
              cl::value_desc("cpu|cuda"), cl::init("cpu"), cl::sub(runCmd),
              cl::sub(trainCmd), cl::cat(loomCategory));

/// Set once `--emit=ast` has printed the tree (there is no module then).
bool astDumped = false;

/// Parses `NAME=VALUE` bindings for the frontend.
bool parseBindings(std::map<std::string, int64_t> &out) {
  for (StringRef entry : bindings) {
    auto [name, value] = entry.split('=');
    int64_t size = 0;
    if (name.trim().empty() || value.trim().getAsInteger(10, size) ||
        size <= 0) {
      llvm::errs() << "loomc: error: malformed binding '" << entry
                   << "': expected NAME=VALUE with VALUE > 0\n";
      return false;
    }
    out[name.trim().str()] = size;
  }
  return true;
}

/// Loads FILE: a .loom program is elaborated by the frontend (with its dims
/// bound and only --fn kept); a .mlir file is parsed and verified.
OwningOpRef<ModuleOp> loadModule(MLIRContext &context,
                                 llvm::SourceMgr &sourceMgr, bool &bound) {
  bound = false;
  if (StringRef(inputFile).ends_with(".loom")) {
    loom::frontend::DiagnosticEngine diags(sourceMgr, llvm::errs());
    auto program =
        loom::frontend::loadProgram(inputFile, includeDirs, sourceMgr, diags);
    if (!program)
      return nullptr;
    if (compileCmd && emit == Emit::Ast) {
      loom::frontend::dumpAST(loom::frontend::rootFile(*program), sourceMgr,
                              llvm::outs());
      astDumped = true;
      return nullptr;
    }
    loom::frontend::GenerateOptions options;
    options.function = fnName;
    options.model = modelName;
    for (const std::string &entry : configValues) {
      auto [name, value] = StringRef(entry).split('=');
      options.config[name.str()] = value.str();
    }
    if (!parseBindings(options.bindings))
      return nullptr;
    bound = true;
    // `check` without --model checks every model of the file.
    if (checkCmd && modelName.empty()) {
      OwningOpRef<ModuleOp> last;
      bool ok = true;
      for (const std::string &name : loom::frontend::modelNames(*program)) {
        options.model = name;
        last = loom::frontend::generateModule(*program, context, sourceMgr,
                                              diags, options);
        ok &= static_cast<bool>(last);
      }
      if (!ok)
        return nullptr;
      if (!last)
        return loom::frontend::generateModule(*program, context, sourceMgr,
                                              diags, options);
      return last;
    }
    return loom::frontend::generateModule(*program, context, sourceMgr, diags,
                                          options);
  }
  std::string error;
  auto file = openInputFile(inputFile, &error);
  if (!file) {
    llvm::errs() << "loomc: error: " << error << "\n";
    return nullptr;
  }
  if (!StringRef(inputFile).ends_with(".mlir")) {
    llvm::errs() << "loomc: error: '" << inputFile
                 << "': expected a .loom program or a .mlir file\n";
    return nullptr;
  }
  sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  return parseSourceFile<ModuleOp>(sourceMgr, &context);
}

/// Erases every function but `name`; reports an unknown name.
LogicalResult keepOnlyFunction(ModuleOp module, StringRef name) {
  if (!module.lookupSymbol<func::FuncOp>(name)) {
    llvm::errs() << "loomc: error: no function named '" << name << "' in '"
                 << inputFile << "'\n";
    return failure();
  }
  for (auto func : llvm::make_early_inc_range(module.getOps<func::FuncOp>()))
    if (func.getSymName() != name)
      func.erase();
  return success();
}

/// --step names an optimizer the training step knows (else an error).
bool knownOptimizer() {
  if (stepVariant == "sgd" || stepVariant == "adam" || stepVariant == "adamw")
    return true;
  llvm::errs() << "loomc: error: --step expects sgd, adam or adamw, got '"
               << stepVariant << "'\n";
  return false;
}

/// Writes DIR/kernels.ptx and DIR/manifest.json.
int writeGpuProgram(const loom::gpu::Program &program, StringRef dir) {
  if (std::error_code ec = llvm::sys::fs::create_directories(dir)) {
    llvm::errs() << "loomc: error: cannot create '" << dir
                 << "': " << ec.message() << "\n";
    return 1;
  }
  for (auto [name, text] :
       {std::pair<std::string, std::string>{"kernels.ptx", program.ptx},
        {"manifest.json", loom::gpu::toManifest(program)}}) {
    std::string error;
    auto file = openOutputFile((dir + "/" + name).str(), &error);
    if (!file) {
      llvm::errs() << "loomc: error: " << error << "\n";
      return 1;
    }
    file->os() << text;
    file->keep();
  }
  return 0;
}

/// `compile --target=nvptx`: the GPU pipeline to a stage.
int runCompileNvptx(ModuleOp module, bool frontendBound) {
  if (emit != Emit::Linalg && emit != Emit::Gpu && emit != Emit::Ptx) {
    llvm::errs() << "loomc: error: --target=nvptx emits linalg, gpu or ptx\n";
    return 1;
  }
  if (emit == Emit::Ptx && outputFile == "-") {
    llvm::errs() << "loomc: error: --emit=ptx writes a directory: -o DIR\n";
    return 1;
  }
  if (decodeCapacity != 0) {
    llvm::errs() << "loomc: error: --decode has no GPU pipeline yet "
                    "(--target=cpu)\n";
    return 1;
  }
  bool train = !stepVariant.empty();
  if ((gradVariant || train) && fnName.empty()) {
    llvm::errs() << "loomc: error: --grad and --step need --fn LOSS\n";
    return 1;
  }
  if (train && !knownOptimizer())
    return 1;
  loom::NvptxPipelineOptions options;
  if (!frontendBound)
    options.bind.assign(bindings.begin(), bindings.end());
  options.arch = gpuArch;
  if (!loom::isTensorCoreMode(tensorCores)) {
    llvm::errs() << "loomc: error: --tensor-cores must be "
                 << loom::kTensorCoreModes << ", got '" << tensorCores << "'\n";
    return 1;
  }
  options.tensorCores = tensorCores;
  options.stopAfter = emit == Emit::Linalg ? "linalg"
                      : emit == Emit::Gpu  ? "kernels"
                                           : "ptx";
  if (gradVariant || train)
    options.autodiff = "function=" + fnName;
  if (train)
    options.optimizer = "function=" + fnName + "_grad kind=" + stepVariant;
  PassManager pm(module.getContext());
  if (timePasses)
    pm.enableTiming();
  if (!dumpAfter.empty()) {
    module.getContext()->disableMultithreading();
    auto after = [](Pass *pass, Operation *) {
      return llvm::is_contained(dumpAfter, pass->getArgument());
    };
    pm.enableIRPrinting([](Pass *, Operation *) { return false; }, after,
                        /*printModuleScope=*/true,
                        /*printAfterOnlyOnChange=*/false);
  }
  if (failed(loom::buildNvptxPipeline(pm, options)) || failed(pm.run(module)))
    return 1;
  if (emit == Emit::Ptx) {
    auto program =
        loom::extractGpuProgram(module, gpuArch, llvm::join(bindings, ","));
    if (!program) {
      llvm::errs() << "loomc: error: " << llvm::toString(program.takeError())
                   << "\n";
      return 1;
    }
    return writeGpuProgram(*program, outputFile);
  }
  std::string error;
  auto output = openOutputFile(outputFile, &error);
  if (!output) {
    llvm::errs() << "loomc: error: " << error << "\n";
    return 1;
  }
  module.print(output->os());
  output->os() << "\n";
  output->keep();
  return 0;
}

int runCompile(MLIRContext &context, ModuleOp module, bool frontendBound) {
  if (!frontendBound && !fnName.empty() &&
      failed(keepOnlyFunction(module, fnName)))
    return 1;
  if (target == Target::Nvptx)
    return runCompileNvptx(module, frontendBound);
  if (emit == Emit::Gpu || emit == Emit::Ptx) {
    llvm::errs() << "loomc: error: --emit=gpu and --emit=ptx need "
                    "--target=nvptx\n";
    return 1;
  }

  bool aot = emit == Emit::Obj || emit == Emit::Header;
  bool lower = emit == Emit::Linalg || emit == Emit::Llvm || aot;
  if (aot && (fnName.empty() || gradVariant || !stepVariant.empty() ||
              outputFile == "-")) {
    llvm::errs() << "loomc: error: --emit=obj and --emit=header need --fn "
                    "(a forward function, or a decode step with --decode), "
                    "bound dims and -o FILE\n";
    return 1;
  }
  // What the header describes, from the loom IR before lowering.
  loom::tools::AotDescription description;
  if (aot) {
    OwningOpRef<ModuleOp> copy(module.clone());
    if (decodeCapacity > 0) {
      PassManager pm(&context);
      loom::LoomDeriveDecodeOptions derive;
      derive.function = fnName;
      derive.capacity = decodeCapacity;
      pm.addPass(loom::createLoomDeriveDecode(derive));
      if (failed(pm.run(*copy)))
        return 1;
    }
    auto sigs = loom::driver::signaturesOf(*copy);
    if (decodeCapacity > 0 && sigs.size() != 1) {
      llvm::errs() << "loomc: error: '" << fnName
                   << "' has work on its context inputs alone (a "
                      "<fn>_decode_context function); ahead-of-time decode "
                      "steps are for decoders of tokens alone so far\n";
      return 1;
    }
    auto params = loom::driver::paramTable(*copy);
    if (!params) {
      llvm::errs() << "loomc: error: " << llvm::toString(params.takeError())
                   << "\n";
      return 1;
    }
    auto bytes = loom::ParamStore::layout(*params);
    if (sigs.size() != 1 || !bytes.ok()) {
      llvm::errs() << "loomc: error: cannot describe '" << fnName << "'\n";
      return 1;
    }
    for (const auto &arg : sigs.front().inputs)
      for (int64_t d : arg.shape)
        if (d < 0) {
          llvm::errs() << "loomc: error: argument '" << arg.name
                       << "' has a symbolic dim; bind every dim (--bind)\n";
          return 1;
        }
    description.source = inputFile;
    description.model =
        modelName.empty() ? std::string("(first)") : std::string(modelName);
    description.entry = sigs.front().name;
    description.signature = sigs.front();
    description.params = std::move(*params);
    description.paramBytes = bytes.value();
  }
  bool train = !stepVariant.empty();
  if ((gradVariant || train) && (fnName.empty() || !lower)) {
    llvm::errs() << "loomc: error: --grad and --step need --fn LOSS and "
                    "--emit=linalg or --emit=llvm\n";
    return 1;
  }
  if (decodeCapacity != 0 &&
      (fnName.empty() || gradVariant || train || decodeCapacity < 0)) {
    llvm::errs() << "loomc: error: --decode=C needs --fn FORWARD and C > 0, "
                    "and no --grad or --step\n";
    return 1;
  }
  if (train && !knownOptimizer())
    return 1;
  std::string decode;
  if (decodeCapacity > 0)
    decode =
        "function=" + fnName + " capacity=" + std::to_string(decodeCapacity);
  if (!bindings.empty() || lower || !decode.empty()) {
    PassManager pm(&context);
    if (timePasses)
      pm.enableTiming();
    if (!dumpAfter.empty()) {
      context.disableMultithreading();
      auto after = [](Pass *pass, Operation *) {
        return llvm::is_contained(dumpAfter, pass->getArgument());
      };
      pm.enableIRPrinting([](Pass *, Operation *) { return false; }, after,
                          /*printModuleScope=*/true,
                          /*printAfterOnlyOnChange=*/false);
    }
    // The frontend binds dims itself; .mlir input is bound by the pass.
    std::vector<std::string> bind;
    if (!frontendBound)
      bind.assign(bindings.begin(), bindings.end());
    if (lower) {
      loom::CpuPipelineOptions options;
      options.bind = bind;
      options.stopAfter = emit == Emit::Linalg ? "linalg" : "llvm";
      options.outlineLayers = !noOutline;
      options.decode = decode;
      if (gradVariant || train)
        options.autodiff = "function=" + fnName;
      if (train)
        options.optimizer = "function=" + fnName + "_grad kind=" + stepVariant;
      if (failed(loom::buildCpuPipeline(pm, options)))
        return 1;
    } else {
      loom::PreparePipelineOptions options;
      options.bind = bind;
      loom::buildPreparePipeline(pm, options);
      if (!decode.empty()) {
        loom::LoomDeriveDecodeOptions derive;
        derive.function = fnName;
        derive.capacity = decodeCapacity;
        pm.addPass(loom::createLoomDeriveDecode(derive));
      }
    }
    if (failed(pm.run(module)))
      return 1;
  }

  std::string error;
  auto output = openOutputFile(outputFile, &error);
  if (!output) {
    llvm::errs() << "loomc: error: " << error << "\n";
    return 1;
  }
  if (aot) {
    auto objects =
        loom::JitModule::compileAheadOfTime(module, description.entry);
    if (!objects) {
      llvm::errs() << "loomc: error: " << llvm::toString(objects.takeError())
                   << "\n";
      return 1;
    }
    if (objects->objects.size() != 1) {
      llvm::errs() << "loomc: error: expected one object\n";
      return 1;
    }
    description.objects = std::move(*objects);
    if (emit == Emit::Obj)
      output->os() << description.objects.objects.front();
    else
      loom::tools::writeAotHeader(output->os(), description);
  } else if (emit == Emit::Llvm) {
    loom::stripLoomMetadata(module);
    llvm::LLVMContext llvmContext;
    auto llvmModule = mlir::translateModuleToLLVMIR(module, llvmContext);
    if (!llvmModule) {
      llvm::errs() << "loomc: error: translation to LLVM IR failed\n";
      return 1;
    }
    llvmModule->print(output->os(), nullptr);
  } else {
    OpPrintingFlags flags;
    if (printLocations)
      flags.enableDebugInfo(/*enable=*/true, /*prettyForm=*/false);
    module.print(output->os(), flags);
    output->os() << "\n";
  }
  output->keep();
  return 0;
}

/// `loomc import DIR -o CKPT`: a Hugging Face model into a Loom checkpoint.
int importModel(const std::map<std::string, std::string> &config) {
  if (outputFile == "-") {
    llvm::errs() << "loomc: error: 'import' needs -o CKPT (the Loom "
                    "checkpoint to write)\n";
    return 1;
  }
  loom::ImportOptions options;
  options.modelFile = importModelFile;
  options.includeDirs.assign(includeDirs.begin(), includeDirs.end());
  options.config = config;
  options.seed = seed;
  auto report = loom::importHuggingFace(inputFile, outputFile, options);
  if (!report.ok()) {
    llvm::errs() << "loomc: error: " << report.status().message() << "\n";
    return 1;
  }
  const loom::ImportReport &r = report.value();
  llvm::outs() << "imported " << r.architecture << " from " << inputFile << ": "
               << r.tensors << " tensors, " << r.parameters << " parameters -> "
               << outputFile << "\n";
  llvm::outs() << "model: " << r.modelFile << "\nconfig:";
  for (const auto &[key, value] : r.config)
    llvm::outs() << " " << key << "=" << value;
  llvm::outs() << "\n";
  if (!r.tokenizer.empty())
    llvm::outs() << "tokenizer: " << r.tokenizer
                 << " (kept in the checkpoint)\n";
  if (!r.initialized.empty()) {
    llvm::outs() << "initialized (not in the directory):";
    for (const std::string &name : r.initialized)
      llvm::outs() << " " << name;
    llvm::outs() << "\n";
  }
  if (!r.ignored.empty()) {
    llvm::outs() << "ignored (no use in the model):";
    for (const std::string &name : r.ignored)
      llvm::outs() << " " << name;
    llvm::outs() << "\n";
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::SetVersionPrinter([](llvm::raw_ostream &os) {
    os << "loomc " << LOOM_VERSION << " (LLVM/MLIR " << LLVM_VERSION_STRING
       << ")\n";
  });
  cl::HideUnrelatedOptions(loomCategory);
  cl::ParseCommandLineOptions(argc, argv,
                              "loomc: the Loom compiler for transformer-family "
                              "models\n");

  if ((runCmd || trainCmd) && runTarget != "cpu" && runTarget != "cuda") {
    llvm::errs() << "loomc: error: --target expects cpu or cuda, got '"
                 << runTarget << "'\n";
    return 1;
  }
  // Tensor cores are the GPU's: a CPU run that asks for them is a mistake
  // worth saying, not a flag to ignore.
  bool gpuTarget = compileCmd ? target == Target::Nvptx : runTarget == "cuda";
  if (tensorCores.getNumOccurrences() && !gpuTarget) {
    llvm::errs() << "loomc: error: --tensor-cores applies to "
                 << (compileCmd ? "--target=nvptx" : "--target=cuda") << "\n";
    return 1;
  }
  if (!checkCmd && !compileCmd && !runCmd && !trainCmd && !sampleCmd &&
      !generateCmd && !importCmd) {
    llvm::errs() << "loomc: error: expected a subcommand (check, compile, "
                    "run, train, sample, generate, import); see loomc "
                    "--help\n";
    return 1;
  }
  std::map<std::string, std::string> config;
  for (const std::string &entry : configValues) {
    size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) {
      llvm::errs() << "loomc: error: --config expects NAME=VALUE, got '"
                   << entry << "'\n";
      return 1;
    }
    config[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  if (importCmd)
    return importModel(config);
  // An imported checkpoint carries the configuration its weights need;
  // --config values win.
  if (!checkpoint.empty()) {
    auto saved = loom::checkpointConfig(checkpoint);
    if (!saved.ok()) {
      llvm::errs() << "loomc: error: " << saved.status().message() << "\n";
      return 1;
    }
    for (const auto &[key, value] : saved.value())
      config.emplace(key, value);
  }
  if (trainCmd) {
    loom::tools::TrainOptions t;
    t.file = inputFile;
    t.diskCache = !noCache;
    t.model = modelName;
    if (!fnName.empty())
      t.function = fnName;
    t.includeDirs.assign(includeDirs.begin(), includeDirs.end());
    t.config = config;
    t.task = taskName;
    t.data = dataFile;
    t.init = initFrom;
    t.tokenizer = tokenizerDir;
    t.heldOut = heldOutFraction;
    t.teacher = teacherCkpt;
    t.teacherModel = teacherModelFile;
    t.steps = trainSteps;
    t.batch = batchSize;
    t.ctx = ctxLen;
    t.lr = learningRate;
    t.schedule = scheduleSpec;
    t.optimizer = optimizerKind;
    t.momentum = momentumValue;
    t.nesterov = nesterovFlag;
    t.weightDecay = weightDecayValue;
    t.clip = clipNorm;
    t.seed = seed;
    t.log = logFile;
    t.logEvery = logEvery;
    t.checkpoint = ckptOut;
    t.checkpointEvery = ckptEvery;
    t.resume = resumeFrom;
    t.lrFind = lrFindCsv;
    t.lrFindSteps = lrFindSteps;
    t.groups = groupSpec;
    t.lrDecay = lrDecay;
    t.unfreezeEvery = unfreezeEvery;
    t.target = runTarget;
    t.tensorCores = tensorCores;
    return loom::tools::trainModel(t);
  }
  // What sample and generate run.
  auto inferenceModel = [&](loom::tools::InferenceModel &m) {
    m.file = inputFile;
    m.diskCache = !noCache;
    m.model = modelName;
    if (!fnName.empty())
      m.function = fnName;
    m.includeDirs.assign(includeDirs.begin(), includeDirs.end());
    m.config = config;
    m.checkpoint = checkpoint;
    m.tokenizer = tokenizerDir;
  };
  if (sampleCmd) {
    loom::tools::SampleOptions s;
    inferenceModel(s);
    s.prompt = promptText == "\\n" ? "\n" : std::string(promptText);
    s.tokens = sampleTokens;
    s.lines = sampleLines;
    s.ctx = ctxLen;
    s.temperature = temperature;
    s.seed = seed;
    return loom::tools::sampleModel(s);
  }
  if (generateCmd) {
    loom::tools::GenerateOptions g;
    inferenceModel(g);
    g.prompt = promptText == "\\n" ? "\n" : std::string(promptText);
    g.maxTokens = maxTokens;
    g.capacity = cacheCapacity;
    g.sampling.temperature = temperature;
    g.sampling.topK = topK;
    g.sampling.topP = topP;
    g.sampling.seed = seed;
    g.stop.assign(stopStrings.begin(), stopStrings.end());
    return loom::tools::generateText(g);
  }
  if (runCmd) {
    loom::tools::RunOptions run;
    run.file = inputFile;
    run.diskCache = !noCache;
    run.function = fnName;
    run.model = modelName;
    run.includeDirs.assign(includeDirs.begin(), includeDirs.end());
    run.checkpoint = checkpoint;
    run.config = config;
    run.seed = seed;
    run.target = runTarget;
    run.tensorCores = tensorCores;
    if (run.function.empty()) {
      llvm::errs() << "loomc: error: 'run' needs --fn NAME\n";
      return 1;
    }
    if (!parseBindings(run.bindings))
      return 1;
    return loom::tools::runFunction(run);
  }

  DialectRegistry registry;
  loom::registerCpuDialects(registry);
  loom::registerNvptxDialects(registry);
  registry.insert<loom::LoomDialect>();
  MLIRContext context(registry);
  context.loadAllAvailableDialects();

  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);
  bool frontendBound = false;
  OwningOpRef<ModuleOp> module = loadModule(context, sourceMgr, frontendBound);
  if (!module)
    return astDumped ? 0 : 1;
  if (checkCmd)
    return 0;
  return runCompile(context, *module, frontendBound);
}
