//===- Harness.cpp - JIT vs reference numerical checks --------------------===//

#include "tests/e2e/Harness.h"

#include "loom/Params.h"
#include "loom/Tensor.h"

#include "mlir/IR/BuiltinOps.h"

#include "llvm/Support/Error.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>

#include <sys/wait.h>

#ifndef LOOM_SOURCE_DIR
#error "LOOM_SOURCE_DIR must be defined"
#endif

namespace loom::e2e {

namespace {

//===----------------------------------------------------------------------===//
// Sessions and parameters, cached per process
//===----------------------------------------------------------------------===//

struct Params {
  ParamStore store;
  std::map<std::string, Array> arrays; // the same values, as doubles
};

struct Program {
  std::string path;
  std::unique_ptr<driver::Session> session;
  std::map<uint64_t, std::unique_ptr<Params>> params; // by seed
};

/// Temp files live in one directory per process, removed at exit.
class TempDir {
public:
  ~TempDir() {
    if (!dir.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  }
  std::string write(const std::string &text) {
    if (dir.empty()) {
      std::string pattern =
          (std::filesystem::temp_directory_path() / "loom-e2e-XXXXXX").string();
      if (!mkdtemp(pattern.data()))
        return "";
      dir = pattern;
    }
    std::string path = dir + "/prog" + std::to_string(count++) + ".loom";
    std::ofstream out(path);
    out << text;
    return out ? path : "";
  }

private:
  std::string dir;
  int count = 0;
};

TempDir &tempDir() {
  static TempDir dir;
  return dir;
}

/// Deliberately leaked: destroying JIT engines from a static destructor, after
/// LLVM's own statics are gone, fails at exit.
std::map<std::string, std::unique_ptr<Program>> &programs() {
  static auto *cache = new std::map<std::string, std::unique_ptr<Program>>();
  return *cache;
}

std::string programKey(const Case &c) {
  return (c.source.empty() ? "path:" + c.path : "source:" + c.source) +
         "|model=" + c.model + "|training=" + (c.training ? "1" : "0") +
         "|target=" + (c.target == driver::Target::Cuda ? "cuda" : "cpu");
}

/// The cached program of `c`; on error null, with a gtest failure, or with
/// the message in `*error` when `error` is given.
Program *program(const Case &c, std::string *error = nullptr) {
  std::string key = programKey(c);
  auto &cache = programs();
  auto it = cache.find(key);
  if (it != cache.end())
    return it->second.get();
  auto prog = std::make_unique<Program>();
  prog->path = c.source.empty() ? c.path : tempDir().write(c.source);
  if (prog->path.empty()) {
    if (error)
      *error = "cannot write the program to a temp file";
    else
      ADD_FAILURE() << "cannot write the program to a temp file";
    return nullptr;
  }
  driver::SessionOptions options;
  options.model = c.model;
  options.training = c.training;
  options.target = c.target;
  auto session = driver::Session::open(prog->path, options);
  if (!session) {
    std::string message = llvm::toString(session.takeError());
    if (error)
      *error = "Session::open failed:\n" + message;
    else
      ADD_FAILURE() << "Session::open failed:\n"
                    << message
                    << (c.source.empty() ? "" : "\nsource:\n" + c.source);
    return nullptr;
  }
  prog->session = std::move(*session);
  Program *result = prog.get();
  cache[key] = std::move(prog);
  return result;
}

Params *params(Program &prog, uint64_t seed) {
  auto it = prog.params.find(seed);
  if (it != prog.params.end())
    return it->second.get();
  auto store = ParamStore::create(prog.session->params());
  if (!store.ok()) {
    ADD_FAILURE() << "ParamStore::create: " << store.status().message();
    return nullptr;
  }
  auto p = std::make_unique<Params>();
  p->store = std::move(store.value());
  Status init = p->store.initialize(seed);
  if (!init.ok()) {
    ADD_FAILURE() << "ParamStore::initialize: " << init.message();
    return nullptr;
  }
  for (size_t i = 0; i < p->store.size(); ++i) {
    const ParamInfo &info = p->store.param(i);
    Tensor t = p->store.tensor(i);
    if (info.dtype != DType::F32) {
      ADD_FAILURE() << "parameter '" << info.name << "' is not f32";
      return nullptr;
    }
    Array a;
    a.shape = info.shape;
    const float *data = t.data<float>();
    a.data.assign(data, data + t.numel());
    p->arrays[info.name] = std::move(a);
  }
  Params *result = p.get();
  prog.params[seed] = std::move(p);
  return result;
}

//===----------------------------------------------------------------------===//
// The per-family summary
//===----------------------------------------------------------------------===//

struct FamilyStats {
  int cases = 0;
  int outputs = 0;
  int failures = 0;
  double maxAbs = 0;
  double maxRel = 0;
  double maxRatio = 0;
  double compileSeconds = 0;
};

/// Set while probe() runs: nothing is printed or added to the summary.
bool quiet = false;

std::map<std::string, FamilyStats> &summary() {
  static std::map<std::string, FamilyStats> stats;
  return stats;
}

class SummaryPrinter : public ::testing::Environment {
public:
  void TearDown() override {
    if (summary().empty())
      return;
    std::printf("\n[e2e] summary: max errors per family (ratio = worst "
                "error / allowed error)\n");
    std::printf("[e2e] %-28s %5s %5s %10s %10s %8s %9s\n", "family", "cases",
                "outs", "max_abs", "max_rel", "ratio", "compile_s");
    for (const auto &[family, s] : summary())
      std::printf("[e2e] %-28s %5d %5d %10.2e %10.2e %8.4f %9.2f%s\n",
                  family.c_str(), s.cases, s.outputs, s.maxAbs, s.maxRel,
                  s.maxRatio, s.compileSeconds, s.failures ? "  FAILURES" : "");
    std::fflush(stdout);
  }
};

[[maybe_unused]] ::testing::Environment *const summaryPrinter =
    ::testing::AddGlobalTestEnvironment(new SummaryPrinter);

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

std::string shapeText(const std::vector<int64_t> &shape) {
  return loom::shapeString(shape);
}

std::string bindingsText(const Bindings &bindings) {
  std::string s;
  for (const auto &[name, value] : bindings)
    s += (s.empty() ? "" : ",") + name + "=" + std::to_string(value);
  return s.empty() ? "-" : s;
}

std::vector<int64_t> unravel(int64_t linear,
                             const std::vector<int64_t> &shape) {
  std::vector<int64_t> index(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    index[d] = shape[d] ? linear % shape[d] : 0;
    linear = shape[d] ? linear / shape[d] : 0;
  }
  return index;
}

int64_t numel(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

/// Writes `value` into element `i` of a JIT buffer of `dtype`.
void store(DType dtype, void *base, int64_t i, double value) {
  switch (dtype) {
  case DType::F32:
    static_cast<float *>(base)[i] = static_cast<float>(value);
    return;
  case DType::F64:
    static_cast<double *>(base)[i] = value;
    return;
  case DType::BF16:
    static_cast<uint16_t *>(base)[i] = doubleToBF16(value);
    return;
  case DType::F16:
    static_cast<uint16_t *>(base)[i] = doubleToF16(value);
    return;
  case DType::I32:
    static_cast<int32_t *>(base)[i] = static_cast<int32_t>(value);
    return;
  case DType::I64:
    static_cast<int64_t *>(base)[i] = static_cast<int64_t>(value);
    return;
  case DType::Bool:
    static_cast<uint8_t *>(base)[i] = value != 0 ? 1 : 0;
    return;
  }
}

/// Reads element `i` of a JIT buffer of `dtype`. A bool byte other than 0 or
/// 1 reads as its byte value, so that it cannot match the reference.
double load(DType dtype, const void *base, int64_t i) {
  switch (dtype) {
  case DType::F32:
    return static_cast<const float *>(base)[i];
  case DType::F64:
    return static_cast<const double *>(base)[i];
  case DType::BF16:
    return bf16ToDouble(static_cast<const uint16_t *>(base)[i]);
  case DType::F16:
    return f16ToDouble(static_cast<const uint16_t *>(base)[i]);
  case DType::I32:
    return static_cast<const int32_t *>(base)[i];
  case DType::I64:
    return double(static_cast<const int64_t *>(base)[i]);
  case DType::Bool:
    return static_cast<const uint8_t *>(base)[i];
  }
  return 0;
}

/// The default generator of an input.
Generator defaultGenerator(const driver::ArgSpec &arg) {
  switch (arg.dtype) {
  case DType::F32:
  case DType::F64:
  case DType::BF16:
  case DType::F16:
    return normal();
  case DType::Bool:
    return bools();
  case DType::I64:
    return integers(0, (int64_t(1) << 53) + 1);
  case DType::I32:
    return nullptr;
  }
  return nullptr;
}

uint64_t mix(uint64_t seed, const std::string &text) {
  uint64_t h = seed ^ 0x9E3779B97F4A7C15ull;
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 0x100000001B3ull;
  }
  return h;
}

/// Compares one output; returns the report and adds gtest failures.
OutputReport compare(const std::string &where, const driver::ArgSpec &spec,
                     const Array &jit, const Array &ref, Tolerance tol) {
  OutputReport r;
  r.name = spec.name;
  int64_t n = numel(spec.shape);
  bool isFloat = isFloatingPoint(spec.dtype);
  // The JIT rounds its result to bf16 / f16, the reference does not: allow
  // one ulp of the result's type (8 and 11 significant bits).
  if (spec.dtype == DType::BF16)
    tol.rel += 0x1p-7;
  if (spec.dtype == DType::F16)
    tol.rel += 0x1p-10;
  if (!isFloat)
    tol = Tolerance::exact();
  for (int64_t i = 0; i < n; ++i)
    if (std::isfinite(ref.data[i]))
      r.scale = std::max(r.scale, std::fabs(ref.data[i]));
  double scale = std::max(r.scale, tol.floor);
  int64_t worstMismatch = -1;
  for (int64_t i = 0; i < n; ++i) {
    double a = jit.data[i], b = ref.data[i];
    double err, ratio;
    if (std::isnan(a) || std::isnan(b) || std::isinf(a) || std::isinf(b)) {
      bool same = (std::isnan(a) && std::isnan(b)) || a == b;
      err = same ? 0.0 : std::numeric_limits<double>::infinity();
      ratio = same ? 0.0 : std::numeric_limits<double>::infinity();
    } else {
      err = std::fabs(a - b);
      double allowed = tol.rel * std::fabs(b) + tol.scaled * scale;
      ratio = err == 0      ? 0.0
              : allowed > 0 ? err / allowed
                            : std::numeric_limits<double>::infinity();
    }
    r.maxAbs = std::max(r.maxAbs, err);
    r.maxRel = std::max(r.maxRel, err / std::max(std::fabs(b), 1e-3));
    if (ratio > r.ratio || r.worst < 0) {
      r.ratio = ratio;
      r.worst = i;
    }
    if (ratio > 1) {
      ++r.mismatches;
      if (worstMismatch < 0)
        worstMismatch = i;
    }
  }
  if (r.mismatches) {
    auto index = unravel(r.worst, spec.shape);
    ADD_FAILURE() << where << ": output '" << spec.name << "' "
                  << dtypeName(spec.dtype) << shapeText(spec.shape) << ": "
                  << r.mismatches << " of " << n
                  << " elements outside the tolerance (rel " << tol.rel
                  << " + scaled " << tol.scaled << " * " << scale
                  << "); worst at " << shapeText(index) << ": jit "
                  << jit.data[r.worst] << ", reference " << ref.data[r.worst]
                  << " (max_abs " << r.maxAbs << ", max_rel " << r.maxRel
                  << ", ratio " << r.ratio << "); first at "
                  << shapeText(unravel(worstMismatch, spec.shape)) << ": jit "
                  << jit.data[worstMismatch] << ", reference "
                  << ref.data[worstMismatch];
  }
  return r;
}

} // namespace

//===----------------------------------------------------------------------===//
// Generators
//===----------------------------------------------------------------------===//

Generator normal(double mean, double std) {
  return [=](const driver::ArgSpec &, std::vector<double> &data, Rng &rng) {
    std::normal_distribution<double> dist(mean, std);
    for (double &v : data)
      v = dist(rng);
  };
}

Generator uniform(double lo, double hi) {
  return [=](const driver::ArgSpec &, std::vector<double> &data, Rng &rng) {
    std::uniform_real_distribution<double> dist(lo, hi);
    for (double &v : data)
      v = dist(rng);
  };
}

Generator awayFromZero(double lo, double hi) {
  return [=](const driver::ArgSpec &, std::vector<double> &data, Rng &rng) {
    std::uniform_real_distribution<double> dist(lo, hi);
    std::bernoulli_distribution sign(0.5);
    for (double &v : data)
      v = sign(rng) ? -dist(rng) : dist(rng);
  };
}

Generator integers(int64_t lo, int64_t hi) {
  return [=](const driver::ArgSpec &, std::vector<double> &data, Rng &rng) {
    std::uniform_int_distribution<int64_t> dist(lo, hi - 1);
    for (double &v : data)
      v = double(dist(rng));
  };
}

Generator integersWith(int64_t lo, int64_t hi, int64_t special, double p) {
  return [=](const driver::ArgSpec &, std::vector<double> &data, Rng &rng) {
    std::uniform_int_distribution<int64_t> dist(lo, hi - 1);
    std::bernoulli_distribution pick(p);
    for (double &v : data)
      v = pick(rng) ? double(special) : double(dist(rng));
  };
}

Generator bools(double p) {
  return [=](const driver::ArgSpec &, std::vector<double> &data, Rng &rng) {
    std::bernoulli_distribution dist(p);
    for (double &v : data)
      v = dist(rng) ? 1.0 : 0.0;
  };
}

Generator values(std::vector<double> vals) {
  return [vals = std::move(vals)](const driver::ArgSpec &arg,
                                  std::vector<double> &data, Rng &) {
    EXPECT_EQ(vals.size(), data.size())
        << "values() for input '" << arg.name << "'";
    for (size_t i = 0; i < data.size() && i < vals.size(); ++i)
      data[i] = vals[i];
  };
}

Tolerance Tolerance::accumulating(int64_t k) {
  double root = std::sqrt(double(std::max<int64_t>(k, 1)));
  return {4e-6, 4e-6 * root};
}

//===----------------------------------------------------------------------===//
// run
//===----------------------------------------------------------------------===//

std::string sourceDir() { return LOOM_SOURCE_DIR; }

double roundTo(DType dtype, double value) {
  switch (dtype) {
  case DType::F32:
    return double(float(value));
  case DType::BF16:
    return bf16ToDouble(doubleToBF16(value));
  case DType::F16:
    return f16ToDouble(doubleToF16(value));
  case DType::F64:
    return value;
  case DType::I32:
  case DType::I64:
    return std::trunc(value);
  case DType::Bool:
    return value != 0 ? 1.0 : 0.0;
  }
  return value;
}

std::string compileError(const Case &c) {
  std::string error;
  Program *prog = program(c, &error);
  if (!prog)
    return error;
  const driver::Signature *symbolic = prog->session->findFunction(c.function);
  if (!symbolic)
    return "no entry function '" + c.function + "'";
  Bindings bindings;
  for (const driver::ArgSpec &arg : symbolic->inputs)
    for (const std::string &dim : arg.dims)
      if (auto it = c.bindings.find(dim); it != c.bindings.end())
        bindings[dim] = it->second;
  auto compiled = prog->session->get(c.function, bindings);
  if (!compiled)
    return llvm::toString(compiled.takeError());
  return "";
}

int runInChild(const std::string &testName, bool *crashed) {
  std::error_code ec;
  std::string self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) {
    *crashed = false;
    return -1;
  }
  std::string command = "'" + self +
                        "' --gtest_also_run_disabled_tests --gtest_filter='" +
                        testName + "' > /dev/null 2>&1";
  std::fflush(stdout);
  int status = std::system(command.c_str());
  // The shell reports a child killed by signal N as exit status 128 + N.
  *crashed = status == -1 || WIFSIGNALED(status) ||
             (WIFEXITED(status) && WEXITSTATUS(status) > 128);
  return status;
}

Outcome probe(const Case &c) {
  ::testing::TestPartResultArray failures;
  Outcome outcome;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::
            INTERCEPT_ONLY_CURRENT_THREAD,
        &failures);
    quiet = true;
    outcome = run(c);
    quiet = false;
  }
  outcome.passed = outcome.ran && failures.size() == 0;
  return outcome;
}

driver::Session *session(const Case &c) {
  Program *prog = program(c);
  return prog ? prog->session.get() : nullptr;
}

Outcome run(const Case &c) {
  Outcome outcome;
  std::string family = c.family.empty() ? c.function : c.family;
  Program *prog = program(c);
  if (!prog)
    return outcome;
  driver::Session &session = *prog->session;
  const driver::Signature *symbolic = session.findFunction(c.function);
  if (!symbolic) {
    ADD_FAILURE() << "no entry function '" << c.function << "'";
    return outcome;
  }
  // Keep only the dims this function uses.
  Bindings bindings;
  for (const driver::ArgSpec &arg : symbolic->inputs)
    for (const std::string &dim : arg.dims)
      if (auto it = c.bindings.find(dim); it != c.bindings.end())
        bindings[dim] = it->second;
  std::string label =
      c.label.empty() ? c.function + " " + bindingsText(bindings) : c.label;
  std::string where = family + " | " + label;

  unsigned before = session.compileCount();
  auto compiled = session.get(c.function, bindings);
  if (!compiled) {
    std::string message = llvm::toString(compiled.takeError());
    for (const Case::KnownBug &bug : c.knownBugs)
      if (message.find(bug.signature) != std::string::npos) {
        std::printf("[e2e] %-22s %-44s SKIPPED: known bug: %s\n",
                    family.c_str(), label.c_str(), bug.description.c_str());
        [&] { GTEST_SKIP() << where << ": known bug: " << bug.description; }();
        return outcome;
      }
    ADD_FAILURE() << where << ": compiling failed:\n" << message;
    return outcome;
  }
  driver::CompiledFunction &fn = **compiled;
  outcome.compiled = &fn;
  outcome.compileSeconds = fn.compileSeconds;
  outcome.freshCompile = session.compileCount() != before;

  Params *p = params(*prog, c.seed);
  if (!p)
    return outcome;
  if (fn.paramBytes != int64_t(p->store.totalBytes())) {
    ADD_FAILURE() << where << ": the code expects " << fn.paramBytes
                  << " parameter bytes, the store has "
                  << p->store.totalBytes();
    return outcome;
  }

  // Inputs: generated as doubles, rounded to the dtype, stored for the JIT;
  // the reference gets exactly the rounded values.
  Rng rng(mix(c.seed, c.function + "|" + bindingsText(bindings)));
  std::vector<Tensor> buffers;
  std::vector<void *> pointers = {p->store.data()};
  for (const driver::ArgSpec &arg : fn.signature.inputs) {
    Generator gen;
    if (auto it = c.inputs.find(arg.name); it != c.inputs.end())
      gen = it->second;
    else
      gen = defaultGenerator(arg);
    if (!gen) {
      ADD_FAILURE() << where << ": input '" << arg.name << "' ("
                    << dtypeName(arg.dtype)
                    << ") needs a generator with its valid range";
      return outcome;
    }
    Array a;
    a.shape = arg.shape;
    a.data.assign(numel(arg.shape), 0.0);
    gen(arg, a.data, rng);
    Tensor t = Tensor::empty(arg.dtype, arg.shape);
    for (int64_t i = 0; i < a.numElements(); ++i) {
      a.data[i] = roundTo(arg.dtype, a.data[i]);
      store(arg.dtype, t.rawData(), i, a.data[i]);
    }
    pointers.push_back(t.rawData());
    buffers.push_back(std::move(t));
    outcome.inputs.push_back(std::move(a));
  }
  // Outputs start as 0xFF bytes (NaN, -1, 255) so that an element the code
  // never writes cannot pass for a zero.
  std::vector<Tensor> outputs;
  for (const driver::ArgSpec &out : fn.signature.outputs) {
    Tensor t = Tensor::empty(out.dtype, out.shape);
    std::memset(t.rawData(), 0xFF, t.nbytes());
    pointers.push_back(t.rawData());
    outputs.push_back(std::move(t));
  }
  if (fn.gpu) {
    if (Status s = fn.gpu->run(c.function, pointers); !s.ok()) {
      ADD_FAILURE() << where << ": GPU run failed: " << s.message();
      return outcome;
    }
  } else if (llvm::Error err = fn.jit->call(c.function, pointers)) {
    ADD_FAILURE() << where
                  << ": JIT call failed: " << llvm::toString(std::move(err));
    return outcome;
  }
  for (size_t k = 0; k < outputs.size(); ++k) {
    const driver::ArgSpec &spec = fn.signature.outputs[k];
    Array a;
    a.shape = spec.shape;
    a.data.resize(numel(spec.shape));
    for (int64_t i = 0; i < a.numElements(); ++i)
      a.data[i] = load(spec.dtype, outputs[k].rawData(), i);
    outcome.jit.push_back(std::move(a));
  }

  auto refStart = std::chrono::steady_clock::now();
  auto ref = reference::evaluate(*fn.loomModule, c.function, outcome.inputs,
                                 [&](llvm::StringRef name) -> const Array * {
                                   auto it = p->arrays.find(name.str());
                                   return it == p->arrays.end() ? nullptr
                                                                : &it->second;
                                 });
  double refSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - refStart)
          .count();
  if (!ref) {
    ADD_FAILURE() << where << ": the reference failed: "
                  << llvm::toString(ref.takeError());
    return outcome;
  }
  outcome.ref = std::move(*ref);
  if (outcome.ref.size() != outcome.jit.size()) {
    ADD_FAILURE() << where << ": the reference gave " << outcome.ref.size()
                  << " results, the signature has " << outcome.jit.size();
    return outcome;
  }
  outcome.ran = true;

  FamilyStats ignored;
  FamilyStats &stats = quiet ? ignored : summary()[family];
  ++stats.cases;
  if (outcome.freshCompile)
    stats.compileSeconds += fn.compileSeconds;
  bool passed = true;
  for (size_t k = 0; k < outcome.jit.size(); ++k) {
    const driver::ArgSpec &spec = fn.signature.outputs[k];
    if (outcome.ref[k].shape != spec.shape) {
      ADD_FAILURE() << where << ": reference output " << k << " has shape "
                    << shapeText(outcome.ref[k].shape) << ", the JIT "
                    << shapeText(spec.shape);
      passed = false;
      continue;
    }
    Tolerance tol = c.tolerance;
    if (auto it = c.outputTolerances.find(int(k));
        it != c.outputTolerances.end())
      tol = it->second;
    OutputReport r = compare(where, spec, outcome.jit[k], outcome.ref[k], tol);
    if (!quiet)
      std::printf("[e2e] %-22s %-44s %-8s %5s%-14s max_abs %9.2e max_rel "
                  "%9.2e scale %8.2e ratio %7.4f%s\n",
                  family.c_str(), label.c_str(), spec.name.c_str(),
                  std::string(dtypeName(spec.dtype)).c_str(),
                  shapeText(spec.shape).c_str(), r.maxAbs, r.maxRel, r.scale,
                  r.ratio, r.mismatches ? "  MISMATCH" : "");
    ++stats.outputs;
    stats.maxAbs = std::max(stats.maxAbs, r.maxAbs);
    stats.maxRel = std::max(stats.maxRel, r.maxRel);
    stats.maxRatio = std::max(stats.maxRatio, r.ratio);
    if (r.mismatches) {
      ++stats.failures;
      passed = false;
    }
    outcome.reports.push_back(r);
  }
  if (!quiet)
    std::printf("[e2e] %-22s %-44s compile %.3fs%s, reference %.3fs\n",
                family.c_str(), label.c_str(), fn.compileSeconds,
                outcome.freshCompile ? "" : " (cached)", refSeconds);
  std::fflush(stdout);
  outcome.passed = passed;
  return outcome;
}

} // namespace loom::e2e
