//===- frontend_fuzzer.cpp - libFuzzer target for the Loom frontend -------===//
//
// Feeds each input as the root `.loom` file of a program (from memory; the
// built-in `nn` library resolves without touching the disk), then elaborates
// every model of that file into a loom module, once with all dims symbolic
// and once with B=2, T=4, S=3 bound. Diagnostics go to llvm::nulls().
//
// Any input must end in diagnostics or a verified module: a crash, a
// sanitizer report, a hang, a leak, or a null module without a diagnostic
// (the generated IR failed to verify: a frontend bug) is a finding.
//
// Build and run: see tests/fuzz/README.md.
//
//===----------------------------------------------------------------------===//

#include "frontend/AST.h"
#include "frontend/Diagnostics.h"
#include "frontend/Frontend.h"

#include "mlir/IR/MLIRContext.h"

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>

using namespace loom::frontend;

namespace {

/// The root file's name. Its directory does not exist, so `import X` finds
/// only the built-in libraries, whatever the fuzzer's working directory.
constexpr const char *kInputName = "/nonexistent-loom-fuzz/input.loom";

void generate(const Program &program, llvm::SourceMgr &sourceMgr,
              const std::string &model,
              const std::map<std::string, int64_t> &bindings) {
  // One context per compilation: nothing uniqued by one input outlives it.
  mlir::MLIRContext context(mlir::MLIRContext::Threading::DISABLED);
  DiagnosticEngine diags(sourceMgr, llvm::nulls());
  GenerateOptions options;
  options.model = model;
  options.bindings = bindings;
  mlir::OwningOpRef<mlir::ModuleOp> module =
      generateModule(program, context, sourceMgr, diags, options);
  if (!module && !diags.hadError()) {
    // generateModule failed without a diagnostic: the IR did not verify.
    std::fprintf(stderr,
                 "frontend_fuzzer: model '%s' failed without a "
                 "diagnostic (the generated IR does not verify)\n",
                 model.c_str());
    std::abort();
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::SourceMgr sourceMgr;
  DiagnosticEngine diags(sourceMgr, llvm::nulls());
  ProgramPtr program = loadProgramFromBuffer(
      llvm::MemoryBuffer::getMemBufferCopy(
          llvm::StringRef(reinterpret_cast<const char *>(data), size),
          kInputName),
      /*includeDirs=*/{}, sourceMgr, diags);
  if (!program)
    return 0;

  static const std::map<std::string, int64_t> kNoBindings;
  static const std::map<std::string, int64_t> kBindings = {
      {"B", 2}, {"T", 4}, {"S", 3}};
  for (const auto &block : rootFile(*program).blocks) {
    if (!block->isModel)
      continue;
    generate(*program, sourceMgr, block->name, kNoBindings);
    generate(*program, sourceMgr, block->name, kBindings);
  }
  return 0;
}
