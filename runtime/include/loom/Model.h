//===- Model.h - Compiling and calling Loom models from C++ -----*- C++ -*-===//
//
//   auto model = loom::compile("examples/gpt.loom");
//   model->params().initialize(42);              // or model->loadCheckpoint
//   auto out = model->call("logits", {tokens});  // dims bound from shapes
//
// Each entry function is compiled per shape specialization on first use and
// cached; a second call with the same shapes does not recompile. Plain C++:
// no LLVM or MLIR types appear here.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_MODEL_H
#define LOOM_MODEL_H

#include "loom/Params.h"
#include "loom/Status.h"
#include "loom/Tensor.h"

#include <memory>
#include <string>
#include <vector>

namespace loom {

struct CompileOptions {
  /// Library search directories for `import`.
  std::vector<std::string> includeDirs;
  /// The model to compile; empty for the first model of the file.
  std::string model;
  /// Compile for training (dropout active); inference otherwise.
  bool training = false;
  /// Seed of the initial parameters.
  uint64_t seed = 0;
};

/// One argument or result of an entry function: dims are numbers or
/// symbolic names such as "B".
struct ArgInfo {
  std::string name;
  DType dtype;
  std::vector<std::string> dims;
};

struct FunctionInfo {
  std::string name;
  std::vector<ArgInfo> inputs;
  std::vector<ArgInfo> outputs;
};

class Model {
public:
  ~Model();
  Model(Model &&) noexcept;
  Model &operator=(Model &&) noexcept;

  /// The parameters, in one flat buffer.
  ParamStore &params();
  const std::vector<FunctionInfo> &functions() const;

  /// Runs entry function `name`. Inputs are checked against the signature
  /// (count, dtypes, shapes, consistent symbolic dims); errors name the
  /// argument and the expected shape.
  Result<std::vector<Tensor>> call(const std::string &name,
                                   const std::vector<Tensor> &inputs);

  /// Seconds spent compiling, and the number of specializations compiled.
  double compileSeconds() const;
  unsigned compileCount() const;

  Status saveCheckpoint(const std::string &path) const;
  Status loadCheckpoint(const std::string &path);

  struct Impl;

private:
  explicit Model(std::unique_ptr<Impl> impl);
  friend Result<Model> compile(const std::string &, const CompileOptions &);
  std::unique_ptr<Impl> impl;
};

/// Parses and checks `path`, lays out and initializes its parameters.
Result<Model> compile(const std::string &path,
                      const CompileOptions &options = {});

} // namespace loom

#endif // LOOM_MODEL_H
