//===- Harness.h - JIT vs reference numerical checks ------------*- C++ -*-===//
//
// The end-to-end numerical harness: compile one entry function of a Loom
// program with the driver's Session, run it through the CPU JIT on random
// inputs and random parameters, evaluate the same specialized loom IR with
// the double-precision reference interpreter, and compare every output.
//
// Tolerances are per output. A float element passes when
//
//   |jit - ref| <= rel * |ref| + scaled * scale
//
// where `scale` is the largest finite |ref| of that output (at least `floor`,
// default 1: the inputs are O(1)): `rel` covers the
// rounding of the element's own last operations (f32 unit roundoff is
// u = 2^-24 ~ 6e-8), `scaled` the rounding that accumulated in sums of many
// terms whose magnitude is that of the output, not of the element (a matmul
// entry that cancels to ~0 still carries the error of its K products). Integer
// and bool outputs must match exactly. Every comparison prints its max
// absolute error, its max relative error (|jit - ref| / max(|ref|, 1e-3)) and
// the worst error as a fraction of the allowed one, and feeds a per-family
// summary that is printed when the test program ends.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_TESTS_E2E_HARNESS_H
#define LOOM_TESTS_E2E_HARNESS_H

#include "driver/Session.h"
#include "reference/Evaluator.h"

#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace loom::e2e {

using reference::Array;
using Rng = std::mt19937_64;
using Bindings = std::map<std::string, int64_t>;

/// Fills `data` (already sized to the element count of `arg.shape`) with
/// values for input `arg`. The harness rounds floats to the input's dtype
/// afterwards, so generators produce plain doubles.
using Generator = std::function<void(const driver::ArgSpec &arg,
                                     std::vector<double> &data, Rng &rng)>;

/// N(mean, std^2).
Generator normal(double mean = 0.0, double std = 1.0);
/// Uniform on [lo, hi).
Generator uniform(double lo, double hi);
/// A random sign times uniform on [lo, hi): values away from zero.
Generator awayFromZero(double lo, double hi);
/// Integers uniform on [lo, hi).
Generator integers(int64_t lo, int64_t hi);
/// Integers uniform on [lo, hi), each replaced by `special` with probability
/// `p` (e.g. -100 for ignored cross-entropy targets).
Generator integersWith(int64_t lo, int64_t hi, int64_t special, double p);
/// true with probability `p`.
Generator bools(double p = 0.5);
/// Exactly these values (the size must match).
Generator values(std::vector<double> values);

/// The error allowed for one float output (see the file comment).
struct Tolerance {
  double rel = 4e-6;
  double scaled = 4e-7;
  /// The least `scale`: inputs are O(1), so an output that is tiny only
  /// because it cancelled (gelu of -5, tanh(x) - 1) still carries absolute
  /// errors of O(u).
  double floor = 1.0;

  /// An elementwise op or a short chain of them: ~64 ulp of the element
  /// (libm-grade transcendental approximations are within a few ulp) plus
  /// ~7 u of the output's scale for results that cancel to ~0.
  static Tolerance elementwise() { return {4e-6, 4e-7}; }
  /// An output that accumulates sums of `k` terms (matmul over K, a
  /// reduction, a softmax denominator): the typical rounding error of a sum
  /// of k f32 terms grows like u * sqrt(k) times the size of the terms, so
  /// allow 4e-6 of the element plus 4e-6 * sqrt(k) (~64 u * sqrt(k)) of the
  /// output's scale.
  static Tolerance accumulating(int64_t k);
  /// Bit-exact (data movement: reshape, transpose, slice, ...).
  static Tolerance exact() { return {0.0, 0.0, 0.0}; }
};

/// One check: a program, the function, its specialization and its inputs.
struct Case {
  /// The program: either its text (written to a temp file) or a file path.
  std::string source;
  std::string path;
  /// SessionOptions.
  std::string model;
  bool training = false;
  /// Where the compiled code runs (the GPU tests set Cuda).
  driver::Target target = driver::Target::Cpu;

  std::string function;
  /// Dim bindings; names that the function's signature does not use are
  /// dropped, so one map can serve every function of a model.
  Bindings bindings;
  /// Generators by input name; a missing float input gets normal(0, 1), a
  /// bool bools(0.5), an i64 (the dropout seed) integers(0, 2^53]. An i32
  /// input needs a generator (its valid range depends on the test).
  std::map<std::string, Generator> inputs;
  /// Seeds the parameters (ParamStore::initialize) and the inputs.
  uint64_t seed = 1;

  /// For every float output unless `outputTolerances[i]` is set.
  Tolerance tolerance = Tolerance::elementwise();
  std::map<int, Tolerance> outputTolerances;

  /// For the printed lines and the summary: the op family ("matmul") and a
  /// label for this case ("[3, 7] @ [7, 5]"); default the function name and
  /// the bindings.
  std::string family;
  std::string label;

  /// Known compiler bugs this case may hit: when compiling fails with an
  /// error containing `signature`, the case is skipped (GTEST_SKIP with
  /// `description`) instead of failing.
  struct KnownBug {
    std::string signature;
    std::string description;
  };
  std::vector<KnownBug> knownBugs;
};

/// The error of one output.
struct OutputReport {
  std::string name;
  double maxAbs = 0; // max |jit - ref|
  double maxRel = 0; // max |jit - ref| / max(|ref|, 1e-3)
  double ratio = 0;  // max |jit - ref| / allowed (<= 1 passes)
  double scale = 0;  // max finite |ref|
  int64_t mismatches = 0;
  int64_t worst = -1; // row-major index of the largest ratio
};

/// What one check did; `jit` and `ref` hold every output as doubles.
struct Outcome {
  bool ran = false;
  bool passed = false;
  std::vector<Array> inputs;
  std::vector<Array> jit;
  std::vector<Array> ref;
  std::vector<OutputReport> reports;
  const driver::CompiledFunction *compiled = nullptr;
  double compileSeconds = 0;
  bool freshCompile = false;
};

/// Compiles (or reuses a cached Session and specialization), runs the JIT and
/// the reference, compares, prints one line per output and records gtest
/// failures (with the worst element) for any output outside its tolerance.
Outcome run(const Case &c);

/// The Session of a program (cached by source or path, model and training),
/// for tests that want the function list; null with a gtest failure on
/// error.
driver::Session *session(const Case &c);

/// Like run(), but silent: no gtest failures, nothing printed or summarized;
/// `passed` tells whether the JIT matched the reference. For probing a known
/// bug before running the checks it breaks.
Outcome probe(const Case &c);

/// Compiles `c.function` without running it: "" on success, else the error
/// (for probing a known compiler bug before running the checks it breaks).
std::string compileError(const Case &c);

/// Runs the (normally DISABLED_) gtest `testName` of this binary in a child
/// process, for checks that may crash the compiler: the child's wait status
/// as std::system returns it. `crashed` tells whether a signal ended it.
int runInChild(const std::string &testName, bool *crashed);

/// The directory of the Loom source tree (for examples/*.loom).
std::string sourceDir();

/// A double rounded to the element type `dtype` stores (what a JIT input of
/// that dtype holds).
double roundTo(DType dtype, double value);

} // namespace loom::e2e

#endif // LOOM_TESTS_E2E_HARNESS_H
