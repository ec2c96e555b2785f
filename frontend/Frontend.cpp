//===- Frontend.cpp - Loading and compiling Loom source files -------------===//

#include "frontend/Frontend.h"
#include "frontend/Diagnostics.h"
#include "frontend/MLIRGen.h"
#include "frontend/Parser.h"
#include "frontend/Sema.h"

#include "ir/LoomDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"

#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

using namespace loom::frontend;

namespace {

/// The standard library, compiled into the binary so loomc works anywhere.
struct BuiltinLibrary {
  const char *name;
  const char *source;
};
const BuiltinLibrary kBuiltinLibraries[] = {
    {
        "nn",
#include "frontend/NNLibrary.inc"
    },
};

class Loader {
public:
  Loader(Program &program, const std::vector<std::string> &includeDirs,
         llvm::SourceMgr &sourceMgr, DiagnosticEngine &diags)
      : program(program), includeDirs(includeDirs), sourceMgr(sourceMgr),
        diags(diags) {}

  /// Parses one buffer, then its imports depth first.
  const SourceFile *load(std::unique_ptr<llvm::MemoryBuffer> buffer,
                         llvm::StringRef moduleName) {
    std::string path = buffer->getBufferIdentifier().str();
    unsigned id =
        sourceMgr.AddNewSourceBuffer(std::move(buffer), llvm::SMLoc());
    llvm::StringRef text = sourceMgr.getMemoryBuffer(id)->getBuffer();
    Parser parser(text, diags);
    program.files.push_back(parser.parseFile(path, moduleName));
    SourceFile *file = program.files.back().get();
    inProgress.push_back(moduleName.str());
    for (const ImportDecl &import : file->imports)
      loadImport(*file, import);
    inProgress.pop_back();
    return file;
  }

private:
  void loadImport(const SourceFile &from, const ImportDecl &import) {
    if (llvm::is_contained(inProgress, import.name)) {
      std::string chain;
      bool on = false;
      for (const std::string &m : inProgress) {
        on |= m == import.name;
        if (on)
          chain += m + " -> ";
      }
      diags.error(import.loc, "import cycle: " + chain + import.name);
      return;
    }
    if (program.findModule(import.name))
      return;
    // Beside the importing file, then the include dirs.
    llvm::SmallVector<std::string, 4> dirs;
    dirs.push_back(llvm::sys::path::parent_path(from.path).str());
    dirs.append(includeDirs.begin(), includeDirs.end());
    for (const std::string &dir : dirs) {
      llvm::SmallString<256> candidate(dir);
      llvm::sys::path::append(candidate, import.name + ".loom");
      if (!llvm::sys::fs::is_regular_file(candidate))
        continue;
      auto buffer = llvm::MemoryBuffer::getFile(candidate);
      if (!buffer) {
        diags.error(import.loc, "cannot read '" + candidate +
                                    "': " + buffer.getError().message());
        return;
      }
      load(std::move(*buffer), import.name);
      return;
    }
    for (const BuiltinLibrary &lib : kBuiltinLibraries) {
      if (import.name != lib.name)
        continue;
      load(llvm::MemoryBuffer::getMemBuffer(
               lib.source, "<builtin>/" + import.name + ".loom"),
           import.name);
      return;
    }
    diags.error(import.loc, "cannot find library '" + import.name +
                                "' (looked for " + import.name +
                                ".loom beside this file, in the include "
                                "dirs and among the built-in libraries)");
  }

  Program &program;
  const std::vector<std::string> &includeDirs;
  llvm::SourceMgr &sourceMgr;
  DiagnosticEngine &diags;
  std::vector<std::string> inProgress;
};

} // namespace

void ProgramDeleter::operator()(Program *program) const { delete program; }

ProgramPtr loom::frontend::loadProgram(
    llvm::StringRef path, const std::vector<std::string> &includeDirs,
    llvm::SourceMgr &sourceMgr, DiagnosticEngine &diags) {
  auto buffer = llvm::MemoryBuffer::getFileOrSTDIN(path, /*IsText=*/true);
  if (!buffer) {
    llvm::errs() << "loomc: error: cannot open '" << path
                 << "': " << buffer.getError().message() << "\n";
    return nullptr;
  }
  return loadProgramFromBuffer(std::move(*buffer), includeDirs, sourceMgr,
                               diags);
}

ProgramPtr loom::frontend::loadProgramFromBuffer(
    std::unique_ptr<llvm::MemoryBuffer> buffer,
    const std::vector<std::string> &includeDirs, llvm::SourceMgr &sourceMgr,
    DiagnosticEngine &diags) {
  std::string moduleName =
      llvm::sys::path::stem(buffer->getBufferIdentifier()).str();
  ProgramPtr program(new Program());
  Loader loader(*program, includeDirs, sourceMgr, diags);
  program->root = loader.load(std::move(buffer), moduleName);
  if (diags.hadError())
    return nullptr;
  return program;
}

const SourceFile &loom::frontend::rootFile(const Program &program) {
  return *program.root;
}

std::vector<std::string> loom::frontend::modelNames(const Program &program) {
  std::vector<std::string> names;
  for (const auto &block : program.root->blocks)
    if (block->isModel)
      names.push_back(block->name);
  return names;
}

void loom::frontend::loadFrontendDialects(mlir::MLIRContext &context) {
  context.getOrLoadDialect<loom::LoomDialect>();
  context.getOrLoadDialect<mlir::func::FuncDialect>();
}

mlir::OwningOpRef<mlir::ModuleOp> loom::frontend::generateModule(
    const Program &program, mlir::MLIRContext &context,
    llvm::SourceMgr &sourceMgr, DiagnosticEngine &diags,
    const GenerateOptions &options) {
  loadFrontendDialects(context);
  const BlockDecl *model = nullptr;
  for (const auto &block : program.root->blocks) {
    if (!block->isModel)
      continue;
    if (options.model.empty() || block->name == options.model) {
      model = block.get();
      break;
    }
  }
  if (!model) {
    llvm::errs() << program.root->path << ": error: "
                 << (options.model.empty()
                         ? std::string("no model in this file")
                         : "no model named '" + options.model + "'")
                 << "\n";
    return nullptr;
  }
  std::map<std::string, Dim> bindings;
  for (const auto &[name, value] : options.bindings)
    bindings[name] = Dim(value);

  MLIRGen gen(context, sourceMgr);
  Sema sema(program, gen, diags, bindings);
  sema.setTraining(options.training);
  if (!sema.run(*model, options.function, options.config))
    return nullptr;
  mlir::OwningOpRef<mlir::ModuleOp> module = gen.takeModule();
  // The frontend checked every shape; a verifier failure here is a bug, but
  // it is reported, not hidden.
  mlir::SourceMgrDiagnosticHandler handler(sourceMgr, &context);
  if (failed(mlir::verify(*module))) {
    llvm::errs() << "loomc: internal error: the generated IR does not "
                    "verify\n";
    return nullptr;
  }
  return module;
}
