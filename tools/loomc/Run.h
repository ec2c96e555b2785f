//===- Run.h - `loomc run` --------------------------------------*- C++ -*-===//

#ifndef LOOM_TOOLS_LOOMC_RUN_H
#define LOOM_TOOLS_LOOMC_RUN_H

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace loom::tools {

struct RunOptions {
  std::string file;
  std::string function;
  std::string model;
  std::vector<std::string> includeDirs;
  std::map<std::string, int64_t> bindings;
  std::string checkpoint;
  /// Configuration overrides (an imported checkpoint's, --config's).
  std::map<std::string, std::string> config;
  uint64_t seed = 0;
  bool diskCache = true;
  /// "cpu" or "cuda"; tensorCores as in loom::CompileOptions.
  std::string target = "cpu";
  std::string tensorCores = "3xtf32";
};

/// Runs one entry function on random inputs; returns the exit status.
int runFunction(const RunOptions &options);

} // namespace loom::tools

#endif // LOOM_TOOLS_LOOMC_RUN_H
