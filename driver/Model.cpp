//===- Model.cpp - Compiling and calling Loom models from C++ -------------===//
//
// The implementation of runtime/include/loom/Model.h on top of a Session.
//
//===----------------------------------------------------------------------===//

#include "loom/Model.h"

#include "driver/Session.h"

#include "loom/Checkpoint.h"

using namespace loom;

struct Model::Impl {
  std::unique_ptr<driver::Session> session;
  ParamStore params;
  std::vector<FunctionInfo> functions;
  double compileSeconds = 0;
};

Model::Model(std::unique_ptr<Impl> impl) : impl(std::move(impl)) {}
Model::~Model() = default;
Model::Model(Model &&) noexcept = default;
Model &Model::operator=(Model &&) noexcept = default;

ParamStore &Model::params() { return impl->params; }
const std::vector<FunctionInfo> &Model::functions() const {
  return impl->functions;
}
double Model::compileSeconds() const { return impl->compileSeconds; }
unsigned Model::compileCount() const { return impl->session->compileCount(); }

static ArgInfo argInfo(const driver::ArgSpec &spec) {
  return {spec.name, spec.dtype, spec.dims};
}

Result<Model> loom::compile(const std::string &path,
                            const CompileOptions &options) {
  driver::SessionOptions sessionOptions;
  sessionOptions.includeDirs = options.includeDirs;
  sessionOptions.model = options.model;
  sessionOptions.training = options.training;
  auto session = driver::Session::open(path, sessionOptions);
  if (!session)
    return Status::error(llvm::toString(session.takeError()));
  auto impl = std::make_unique<Model::Impl>();
  impl->session = std::move(*session);
  auto store = ParamStore::create(impl->session->params());
  if (!store.ok())
    return store.status();
  impl->params = std::move(store.value());
  LOOM_RETURN_IF_ERROR(impl->params.initialize(options.seed));
  for (const driver::Signature &sig : impl->session->functions()) {
    FunctionInfo info{sig.name, {}, {}};
    for (const auto &a : sig.inputs)
      info.inputs.push_back(argInfo(a));
    for (const auto &a : sig.outputs)
      info.outputs.push_back(argInfo(a));
    impl->functions.push_back(std::move(info));
  }
  return Model(std::move(impl));
}

Result<std::vector<Tensor>> Model::call(const std::string &name,
                                        const std::vector<Tensor> &inputs) {
  std::vector<std::vector<int64_t>> shapes;
  std::vector<DType> dtypes;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].isContiguous())
      return Status::error("input " + std::to_string(i) + " of '" + name +
                           "' is not contiguous");
    shapes.push_back(inputs[i].shape());
    dtypes.push_back(inputs[i].dtype());
  }
  auto bindings = impl->session->bindFromShapes(name, shapes, dtypes);
  if (!bindings)
    return Status::error(llvm::toString(bindings.takeError()));
  unsigned before = impl->session->compileCount();
  auto compiled = impl->session->get(name, *bindings);
  if (!compiled)
    return Status::error(llvm::toString(compiled.takeError()));
  driver::CompiledFunction &fn = **compiled;
  if (impl->session->compileCount() != before)
    impl->compileSeconds += fn.compileSeconds;
  if (fn.paramBytes != static_cast<int64_t>(impl->params.totalBytes()))
    return Status::error("internal error: compiled code expects a parameter "
                         "buffer of " +
                         std::to_string(fn.paramBytes) +
                         " bytes, the store "
                         "has " +
                         std::to_string(impl->params.totalBytes()));

  std::vector<Tensor> outputs;
  std::vector<void *> pointers = {impl->params.data()};
  for (const Tensor &t : inputs)
    pointers.push_back(t.rawData());
  for (const driver::ArgSpec &out : fn.signature.outputs) {
    outputs.push_back(Tensor::empty(out.dtype, out.shape));
    pointers.push_back(outputs.back().rawData());
  }
  if (llvm::Error err = fn.jit->call(name, pointers))
    return Status::error(llvm::toString(std::move(err)));
  return outputs;
}

Status Model::saveCheckpoint(const std::string &path) const {
  return loom::saveCheckpoint(path, impl->params);
}

Status Model::loadCheckpoint(const std::string &path) {
  return loom::loadCheckpoint(path, impl->params);
}
