//===- Aot.h - `loomc compile --emit=obj|header` ----------------*- C++ -*-===//
//
// Ahead-of-time output: an object file with one entry function and the C
// header a host needs to call it (signature, parameter layout, workspace,
// what to link), so that a C or C++ program runs the model with no LLVM or
// MLIR at run time.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_TOOLS_LOOMC_AOT_H
#define LOOM_TOOLS_LOOMC_AOT_H

#include "codegen/cpu/Jit.h"
#include "driver/Session.h"

#include "loom/Params.h"

#include "llvm/Support/raw_ostream.h"

#include <string>
#include <vector>

namespace loom::tools {

struct AotDescription {
  std::string source, model, entry;
  /// The entry's inputs and outputs (after the parameter buffer).
  driver::Signature signature;
  std::vector<ParamInfo> params; // laid out: offsets set
  size_t paramBytes = 0;
  JitObjects objects;
};

/// Writes the C header of `aot` (C99 and C++; include guard from the entry).
void writeAotHeader(llvm::raw_ostream &os, const AotDescription &aot);

} // namespace loom::tools

#endif // LOOM_TOOLS_LOOMC_AOT_H
