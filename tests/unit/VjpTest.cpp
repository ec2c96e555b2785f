//===- VjpTest.cpp - gradients of loom-autodiff against finite differences ===//
//
// For every op that implements VjpOpInterface: a module whose loss is
// `reduce_sum(op(params...) * W)` (W a fixed random constant), run through
// loom-autodiff; `loss_grad` is evaluated with the reference evaluator and
// each parameter gradient compared with central finite differences of
// `loss` (also evaluated in double). Plus the structure of the gradient
// function (frozen parameters, repeated reads) and the pass's diagnostics.
//
//===----------------------------------------------------------------------===//

#include "reference/Evaluator.h"

#include "ir/LoomDialect.h"
#include "ir/LoomOps.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <string>
#include <vector>

using namespace mlir;
using loom::reference::Array;

namespace {

/// The largest relative error any gradient may have.
constexpr double kMaxTolerance = 1e-4;

/// Where a parameter's random values lie.
struct Domain {
  double lo = -2.0, hi = 2.0;
  /// Keep |x| >= minAbs (with lo = -hi): away from a kink at 0.
  double minAbs = 0.0;
  /// Values at least (hi - lo) / (2n) apart: no ties for max.
  bool distinct = false;
};

Domain positive(double lo = 0.5, double hi = 2.0) { return {lo, hi}; }
Domain awayFromZero(double minAbs = 0.1) { return {-2.0, 2.0, minAbs}; }
Domain distinct() { return {-2.0, 2.0, 0.0, true}; }

struct Param {
  std::string name;
  std::vector<int64_t> shape;
  Domain domain = {};
  std::string element = "f32";
};

/// A function argument that is not differentiated (ids, masks, seeds).
struct Input {
  std::string name;
  std::vector<int64_t> shape;
  std::string element;
  std::vector<double> values;
};

/// A value of the body that the loss weighs with its own random W.
struct Output {
  std::string value;
  std::vector<int64_t> shape;
  std::string element = "f32";
};

struct Case {
  std::string name;
  std::vector<Param> params;
  std::vector<Input> inputs;
  /// Loom ops; each parameter is `%<name>`, each input `%<name>`.
  std::string body;
  std::vector<Output> outputs;
  /// The `trainable` option of loom-autodiff (empty: all).
  std::vector<std::string> trainable = {};
  double tolerance = 1e-6;
  /// Whether every gradient is legitimately 0 (else one must not be).
  bool zeroGradient = false;
};

std::string typeString(const std::vector<int64_t> &shape,
                       const std::string &element) {
  std::string s = "tensor<";
  for (int64_t d : shape)
    s += std::to_string(d) + "x";
  return s + element + ">";
}

std::string number(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.9e", v);
  return buffer;
}

/// The nested literal of a dense attribute of `shape` holding `values`.
std::string denseLiteral(const std::vector<int64_t> &shape,
                         const std::vector<double> &values, size_t dim = 0,
                         size_t offset = 0) {
  if (dim == shape.size())
    return number(values[offset]);
  size_t stride = 1;
  for (size_t i = dim + 1; i < shape.size(); ++i)
    stride *= shape[i];
  std::string s = "[";
  for (int64_t i = 0; i < shape[dim]; ++i) {
    if (i)
      s += ", ";
    s += denseLiteral(shape, values, dim + 1, offset + i * stride);
  }
  return s + "]";
}

int64_t numElements(const std::vector<int64_t> &shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t(1),
                         std::multiplies<int64_t>());
}

Array array(std::vector<int64_t> shape, std::vector<double> data) {
  return Array{std::move(shape), std::move(data), {}};
}

bool contains(const std::string &haystack, const std::string &needle) {
  return haystack.find(needle) != std::string::npos;
}

class VjpTest : public ::testing::Test {
public:
  VjpTest() {
    static std::once_flag registered;
    std::call_once(registered, [] { loom::registerAllPassesAndPipelines(); });
    context.getOrLoadDialect<loom::LoomDialect>();
    context.getOrLoadDialect<func::FuncDialect>();
  }

  /// `n` values of `domain`.
  std::vector<double> sample(int64_t n, const Domain &domain) {
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    std::vector<double> values;
    if (domain.distinct) {
      // A shuffled grid with jitter: neighbours stay >= spacing/2 apart.
      std::vector<int64_t> slots(n);
      std::iota(slots.begin(), slots.end(), 0);
      std::shuffle(slots.begin(), slots.end(), rng);
      double spacing = (domain.hi - domain.lo) / double(n);
      for (int64_t slot : slots)
        values.push_back(domain.lo +
                         spacing * (double(slot) + 0.25 + 0.5 * unit(rng)));
      return values;
    }
    for (int64_t i = 0; i < n; ++i) {
      if (domain.minAbs > 0) {
        double magnitude =
            domain.minAbs + (domain.hi - domain.minAbs) * unit(rng);
        values.push_back(unit(rng) < 0.5 ? -magnitude : magnitude);
      } else {
        values.push_back(domain.lo + (domain.hi - domain.lo) * unit(rng));
      }
    }
    return values;
  }

  /// The module of `c`: its parameters and `@loss`.
  std::string moduleText(const Case &c) {
    std::string s;
    for (const Param &p : c.params)
      s += "loom.parameter @" + p.name + " : " +
           typeString(p.shape, p.element) + " init = {kind = \"zeros\"}\n";
    std::string lossType = "tensor<" + c.outputs.front().element + ">";
    s += "func.func @loss(";
    for (size_t i = 0; i < c.inputs.size(); ++i)
      s += (i ? ", %" : "%") + c.inputs[i].name + ": " +
           typeString(c.inputs[i].shape, c.inputs[i].element);
    s += ") -> " + lossType + " {\n";
    for (const Param &p : c.params)
      s += "  %" + p.name + " = loom.get_parameter @" + p.name + " : " +
           typeString(p.shape, p.element) + "\n";
    s += c.body + "\n";
    std::string total;
    for (size_t k = 0; k < c.outputs.size(); ++k) {
      const Output &o = c.outputs[k];
      std::string type = typeString(o.shape, o.element);
      std::string id = std::to_string(k);
      std::uniform_real_distribution<double> dist(-1.0, 1.0);
      std::vector<double> w;
      for (int64_t i = 0; i < numElements(o.shape); ++i)
        w.push_back(dist(rng));
      s += "  %w_" + id + " = loom.constant dense<" + denseLiteral(o.shape, w) +
           "> : " + type + "\n";
      s += "  %m_" + id + " = loom.mul " + o.value + ", %w_" + id + " : " +
           type + ", " + type + "\n";
      std::string term = "%m_" + id;
      if (!o.shape.empty()) {
        std::string axes;
        for (size_t i = 0; i < o.shape.size(); ++i)
          axes += (i ? ", " : "") + std::to_string(i);
        s += "  %s_" + id + " = loom.reduce_sum %m_" + id + ", axes = [" +
             axes + "], keepdim = false : " + type + "\n";
        term = "%s_" + id;
      }
      if (total.empty()) {
        total = term;
      } else {
        s += "  %l_" + id + " = loom.add " + total + ", " + term + " : " +
             lossType + ", " + lossType + "\n";
        total = "%l_" + id;
      }
    }
    s += "  return " + total + " : " + lossType + "\n}\n";
    return s;
  }

  OwningOpRef<ModuleOp> parse(StringRef source) {
    return parseSourceString<ModuleOp>(source, &context, "test.mlir");
  }

  /// Runs loom-autodiff on `module`, keeping the forward function.
  LogicalResult autodiff(ModuleOp module,
                         const std::vector<std::string> &trainable,
                         bool keepForward = true) {
    PassManager pm(&context);
    loom::LoomAutodiffOptions options;
    options.trainable.assign(trainable.begin(), trainable.end());
    options.keepForward = keepForward;
    pm.addPass(loom::createLoomAutodiff(options));
    return pm.run(module);
  }

  /// Checks every gradient of `c` against finite differences and returns
  /// the worst relative error.
  double check(const Case &c) {
    SCOPED_TRACE(c.name);
    std::string text = moduleText(c);
    OwningOpRef<ModuleOp> module = parse(text);
    if (!module) {
      ADD_FAILURE() << "does not parse:\n" << text;
      return INFINITY;
    }
    if (failed(autodiff(*module, c.trainable))) {
      ADD_FAILURE() << "loom-autodiff failed on:\n" << text;
      return INFINITY;
    }

    std::map<std::string, Array> params;
    for (const Param &p : c.params)
      params[p.name] = array(p.shape, sample(numElements(p.shape), p.domain));
    std::vector<Array> args;
    for (const Input &in : c.inputs)
      args.push_back(array(in.shape, in.values));
    auto lookup = [&](StringRef name) -> const Array * {
      auto it = params.find(name.str());
      return it == params.end() ? nullptr : &it->second;
    };
    auto lossAt = [&]() -> double {
      auto r = loom::reference::evaluate(*module, "loss", args, lookup);
      if (!r) {
        ADD_FAILURE() << "loss: " << llvm::toString(r.takeError());
        return NAN;
      }
      return (*r)[0].data.at(0);
    };

    auto r = loom::reference::evaluate(*module, "loss_grad", args, lookup);
    if (!r) {
      std::string message = llvm::toString(r.takeError());
      ADD_FAILURE() << "loss_grad: " << message << "\n" << text;
      return INFINITY;
    }
    std::vector<Array> results = std::move(*r);
    auto grad = module->lookupSymbol<func::FuncOp>("loss_grad");
    double loss = lossAt();
    EXPECT_NEAR(results[0].data.at(0), loss,
                1e-12 * std::max(1.0, std::abs(loss)));

    // The gradients: one per trainable parameter, in declaration order.
    std::vector<std::string> expected;
    for (const Param &p : c.params) {
      bool selected = c.trainable.empty() ||
                      std::find(c.trainable.begin(), c.trainable.end(),
                                p.name) != c.trainable.end();
      if (selected)
        expected.push_back(p.name);
    }
    EXPECT_EQ(results.size(), expected.size() + 1);

    double worst = 0.0;
    for (size_t i = 1; i < results.size() && i <= expected.size(); ++i) {
      auto of = grad.getResultAttrOfType<StringAttr>(i, "loom.grad_of");
      EXPECT_TRUE(of && of.getValue() == expected[i - 1])
          << "result #" << i << " should be the gradient of "
          << expected[i - 1];
      const Array &ad = results[i];
      Array &x = params[expected[i - 1]];
      EXPECT_EQ(ad.shape, x.shape);
      if (ad.data.size() != x.data.size())
        return INFINITY;
      double maxAd = 0.0, maxDiff = 0.0;
      for (size_t e = 0; e < x.data.size(); ++e) {
        double x0 = x.data[e];
        double h = 1e-3 * std::max(1.0, std::abs(x0));
        auto at = [&](double v) {
          x.data[e] = v;
          return lossAt();
        };
        // Five-point central difference: error O(h^4).
        double fd = (8.0 * (at(x0 + h) - at(x0 - h)) -
                     (at(x0 + 2 * h) - at(x0 - 2 * h))) /
                    (12.0 * h);
        x.data[e] = x0;
        EXPECT_TRUE(std::isfinite(ad.data[e]))
            << expected[i - 1] << "[" << e << "] = " << ad.data[e];
        maxAd = std::max(maxAd, std::abs(ad.data[e]));
        maxDiff = std::max(maxDiff, std::abs(fd - ad.data[e]));
      }
      if (!c.zeroGradient)
        EXPECT_GT(maxAd, 0.0) << "the gradient of " << expected[i - 1]
                              << " is 0: the case tests nothing";
      double error = maxDiff / std::max(maxAd, 1e-12);
      if (!std::isfinite(error))
        error = INFINITY;
      EXPECT_LT(error, std::min(c.tolerance, kMaxTolerance))
          << "gradient of " << expected[i - 1] << " (max |ad| " << maxAd
          << ")\n"
          << text;
      worst = std::max(worst, error);
    }
    std::printf("[ VJP      ] %-34s worst relative error %.2e\n",
                c.name.c_str(), worst);
    return worst;
  }

  MLIRContext context;
  std::mt19937_64 rng{20240611};
};

//===----------------------------------------------------------------------===//
// Elementwise binary ops, with broadcasting both ways
//===----------------------------------------------------------------------===//

/// `op` on [2,1,4] x [3,1] (each operand broadcast along some dim), on
/// [4] x [2,3,4] (the lhs broadcast to the rhs), and on [2,3] x [] (a
/// scalar rhs).
void checkBinary(VjpTest &t, const std::string &op, Domain rhsDomain) {
  struct Shapes {
    std::vector<int64_t> a, b, r;
  };
  for (const Shapes &s :
       {Shapes{{2, 1, 4}, {3, 1}, {2, 3, 4}}, Shapes{{4}, {2, 3, 4}, {2, 3, 4}},
        Shapes{{2, 3}, {}, {2, 3}}}) {
    Case c;
    c.name = op + " " + typeString(s.a, "f32") + " " + typeString(s.b, "f32");
    c.params = {{"a", s.a}, {"b", s.b, rhsDomain}};
    c.body = "  %y = loom." + op + " %a, %b : " + typeString(s.a, "f32") +
             ", " + typeString(s.b, "f32");
    c.outputs = {{"%y", s.r}};
    t.check(c);
  }
}

TEST_F(VjpTest, Add) { checkBinary(*this, "add", {}); }
TEST_F(VjpTest, Sub) { checkBinary(*this, "sub", {}); }
TEST_F(VjpTest, Mul) { checkBinary(*this, "mul", {}); }
TEST_F(VjpTest, Div) {
  checkBinary(*this, "div", positive());
  // A negative divisor too.
  checkBinary(*this, "div", {-2.0, -0.5});
}

TEST_F(VjpTest, SameOperandTwice) {
  // mul %a, %a: both operand gradients accumulate into one.
  check({"mul a a",
         {{"a", {2, 3}}},
         {},
         "  %y = loom.mul %a, %a : tensor<2x3xf32>, tensor<2x3xf32>",
         {{"%y", {2, 3}}}});
}

//===----------------------------------------------------------------------===//
// Elementwise unary ops
//===----------------------------------------------------------------------===//

void checkUnary(VjpTest &t, const std::string &name, const std::string &op,
                Domain domain, bool zeroGradient = false) {
  Case c;
  c.zeroGradient = zeroGradient;
  c.name = name;
  c.params = {{"a", {3, 4}, domain}};
  c.body = "  %y = " + op + " : tensor<3x4xf32>";
  c.outputs = {{"%y", {3, 4}}};
  t.check(c);
}

TEST_F(VjpTest, Unary) {
  checkUnary(*this, "neg", "loom.neg %a", {});
  checkUnary(*this, "exp", "loom.exp %a", {});
  checkUnary(*this, "log", "loom.log %a", positive(0.3));
  checkUnary(*this, "tanh", "loom.tanh %a", {});
  checkUnary(*this, "sigmoid", "loom.sigmoid %a", {});
  checkUnary(*this, "relu", "loom.relu %a", awayFromZero());
  checkUnary(*this, "sqrt", "loom.sqrt %a", positive(0.3));
  checkUnary(*this, "rsqrt", "loom.rsqrt %a", positive(0.3));
}

TEST_F(VjpTest, Gelu) {
  checkUnary(*this, "gelu erf", "loom.gelu %a, approximate = false",
             {-3.0, 3.0});
  checkUnary(*this, "gelu tanh", "loom.gelu %a, approximate = true",
             {-3.0, 3.0});
}

TEST_F(VjpTest, Pow) {
  for (const char *e : {"3.0", "2.5", "0.5", "-1.5", "1.0", "0.0"})
    checkUnary(*this, std::string("pow ") + e,
               std::string("loom.pow %a, exponent = ") + e, positive(0.3),
               std::string(e) == "0.0");
  // An integer exponent on negative inputs too.
  checkUnary(*this, "pow 2.0 signed", "loom.pow %a, exponent = 2.0", {});
  checkUnary(*this, "pow 3.0 signed", "loom.pow %a, exponent = 3.0", {});
}

//===----------------------------------------------------------------------===//
// where, cast
//===----------------------------------------------------------------------===//

TEST_F(VjpTest, Where) {
  // cond [2,1], lhs [2,3], rhs a scalar: both branches broadcast.
  check({"where cond[2,1] lhs[2,3] rhs[]",
         {{"a", {2, 3}}, {"b", {}}},
         {{"c", {2, 1}, "i1", {1, 0}}},
         "  %y = loom.where %c, %a, %b : tensor<2x1xi1>, tensor<2x3xf32>, "
         "tensor<f32>",
         {{"%y", {2, 3}}}});
  // cond [2,3], lhs [3] broadcast, rhs [2,3].
  check({"where cond[2,3] lhs[3] rhs[2,3]",
         {{"a", {3}}, {"b", {2, 3}}},
         {{"c", {2, 3}, "i1", {1, 0, 1, 0, 0, 1}}},
         "  %y = loom.where %c, %a, %b : tensor<2x3xi1>, tensor<3xf32>, "
         "tensor<2x3xf32>",
         {{"%y", {2, 3}}}});
  // The condition computed from a parameter: no gradient through compare.
  check({"where on compare(a, 0)",
         {{"a", {2, 3}, awayFromZero()}},
         {},
         "  %z = loom.fill value = 0.0 : tensor<f32>\n"
         "  %c = loom.compare %a, %z, predicate = \"gt\" : tensor<2x3xf32>, "
         "tensor<f32>\n"
         "  %n = loom.neg %a : tensor<2x3xf32>\n"
         "  %y = loom.where %c, %a, %n : tensor<2x3xi1>, tensor<2x3xf32>, "
         "tensor<2x3xf32>",
         {{"%y", {2, 3}}}});
}

TEST_F(VjpTest, Cast) {
  Case up{"cast f32 -> f64",
          {{"a", {2, 3}}},
          {},
          "  %y = loom.cast %a, to = f64 : tensor<2x3xf32>\n"
          "  %e = loom.exp %y : tensor<2x3xf64>",
          {{"%e", {2, 3}, "f64"}}};
  check(up);
  Case down{"cast f64 -> f32",
            {{"a", {2, 3}, {}, "f64"}},
            {},
            "  %y = loom.cast %a, to = f32 : tensor<2x3xf64>\n"
            "  %e = loom.tanh %y : tensor<2x3xf32>",
            {{"%e", {2, 3}}}};
  check(down);
  Case roundTrip{"cast f32 -> f64 -> f32",
                 {{"a", {2, 3}}},
                 {},
                 "  %y = loom.cast %a, to = f64 : tensor<2x3xf32>\n"
                 "  %s = loom.sigmoid %y : tensor<2x3xf64>\n"
                 "  %z = loom.cast %s, to = f32 : tensor<2x3xf64>",
                 {{"%z", {2, 3}}}};
  check(roundTrip);
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

void checkReduce(VjpTest &t, const std::string &op, Domain domain) {
  struct Form {
    std::string axes;
    bool keepdim;
    std::vector<int64_t> result;
  };
  for (const Form &f :
       {Form{"[1]", false, {2, 4}}, Form{"[1]", true, {2, 1, 4}},
        Form{"[0, 2]", false, {3}}, Form{"[0, 2]", true, {1, 3, 1}},
        Form{"[0, 1, 2]", false, {}}}) {
    std::string keep = f.keepdim ? "true" : "false";
    Case c;
    c.name = op + " axes=" + f.axes + " keepdim=" + keep;
    c.params = {{"a", {2, 3, 4}, domain}};
    c.body = "  %y = loom." + op + " %a, axes = " + f.axes +
             ", keepdim = " + keep + " : tensor<2x3x4xf32>";
    c.outputs = {{"%y", f.result}};
    t.check(c);
  }
}

TEST_F(VjpTest, ReduceSum) { checkReduce(*this, "reduce_sum", {}); }
TEST_F(VjpTest, ReduceMean) { checkReduce(*this, "reduce_mean", {}); }
TEST_F(VjpTest, ReduceMax) { checkReduce(*this, "reduce_max", distinct()); }

//===----------------------------------------------------------------------===//
// matmul, transpose, softmax, shape ops
//===----------------------------------------------------------------------===//

TEST_F(VjpTest, Matmul) {
  struct Shapes {
    std::string name;
    std::vector<int64_t> a, b, r;
  };
  for (const Shapes &s : {
           Shapes{"2-D", {3, 4}, {4, 5}, {3, 5}},
           Shapes{"batched", {2, 3, 4}, {2, 4, 5}, {2, 3, 5}},
           Shapes{"batched lhs, 2-D rhs", {2, 3, 4}, {4, 5}, {2, 3, 5}},
           Shapes{"rank-4 lhs, 2-D rhs", {2, 2, 3, 4}, {4, 5}, {2, 2, 3, 5}},
           Shapes{"2-D lhs, batched rhs", {3, 4}, {2, 4, 5}, {2, 3, 5}},
           Shapes{"broadcast batch", {2, 1, 3, 4}, {3, 4, 5}, {2, 3, 3, 5}},
           Shapes{"size-1 batch", {1, 3, 4}, {2, 4, 5}, {2, 3, 5}},
       }) {
    Case c;
    c.name = "matmul " + s.name;
    c.params = {{"a", s.a}, {"b", s.b}};
    c.body = "  %y = loom.matmul %a, %b : " + typeString(s.a, "f32") + ", " +
             typeString(s.b, "f32");
    c.outputs = {{"%y", s.r}};
    check(c);
  }
}

TEST_F(VjpTest, Transpose) {
  check({"transpose [2,0,1]",
         {{"a", {2, 3, 4}}},
         {},
         "  %y = loom.transpose %a, perm = [2, 0, 1] : tensor<2x3x4xf32>",
         {{"%y", {4, 2, 3}}}});
  check({"transpose [1,0]",
         {{"a", {3, 5}}},
         {},
         "  %y = loom.transpose %a, perm = [1, 0] : tensor<3x5xf32>",
         {{"%y", {5, 3}}}});
}

TEST_F(VjpTest, Softmax) {
  for (int axis : {0, 1, 2})
    check({"softmax axis=" + std::to_string(axis),
           {{"a", {2, 3, 4}}},
           {},
           "  %y = loom.softmax %a, axis = " + std::to_string(axis) +
               " : tensor<2x3x4xf32>",
           {{"%y", {2, 3, 4}}}});
}

TEST_F(VjpTest, Reshape) {
  check({"reshape [2,3,4] -> [3,8]",
         {{"a", {2, 3, 4}}},
         {},
         "  %y = loom.reshape %a, shape = [3, 8] : tensor<2x3x4xf32>",
         {{"%y", {3, 8}}}});
  check({"reshape [2,3,4] -> [-1] then tanh",
         {{"a", {2, 3, 4}}},
         {},
         "  %r = loom.reshape %a, shape = [-1] : tensor<2x3x4xf32>\n"
         "  %y = loom.tanh %r : tensor<24xf32>",
         {{"%y", {24}}}});
}

TEST_F(VjpTest, SplitMergeHeads) {
  check({"split_heads",
         {{"a", {2, 3, 8}}},
         {},
         "  %y = loom.split_heads %a, heads = 2 : tensor<2x3x8xf32>",
         {{"%y", {2, 2, 3, 4}}}});
  check({"merge_heads",
         {{"a", {2, 2, 3, 4}}},
         {},
         "  %y = loom.merge_heads %a : tensor<2x2x3x4xf32>",
         {{"%y", {2, 3, 8}}}});
}

TEST_F(VjpTest, Concat) {
  check({"concat 3 inputs axis=1",
         {{"a", {2, 1}}, {"b", {2, 3}}, {"c", {2, 2}}},
         {},
         "  %y = loom.concat %a, %b, %c, axis = 1 : tensor<2x1xf32>, "
         "tensor<2x3xf32>, tensor<2x2xf32>",
         {{"%y", {2, 6}}}});
  check({"concat 3 inputs axis=0",
         {{"a", {1, 3}}, {"b", {2, 3}}, {"c", {3, 3}}},
         {},
         "  %y = loom.concat %a, %b, %c, axis = 0 : tensor<1x3xf32>, "
         "tensor<2x3xf32>, tensor<3x3xf32>",
         {{"%y", {6, 3}}}});
  // The same value twice, and one input frozen.
  check({"concat a, b, a with b frozen",
         {{"a", {2, 2}}, {"b", {2, 1}}},
         {},
         "  %y = loom.concat %a, %b, %a, axis = 1 : tensor<2x2xf32>, "
         "tensor<2x1xf32>, tensor<2x2xf32>",
         {{"%y", {2, 5}}},
         {"a"}});
}

TEST_F(VjpTest, Slice) {
  check({"slice start=-5 end=-1",
         {{"a", {2, 8}}},
         {},
         "  %y = loom.slice %a, axis = 1, start = -5, end = -1 : "
         "tensor<2x8xf32>",
         {{"%y", {2, 4}}}});
  check({"slice start=0 end=2 axis=0",
         {{"a", {5, 3}}},
         {},
         "  %y = loom.slice %a, axis = 0, start = 0, end = 2 : tensor<5x3xf32>",
         {{"%y", {2, 3}}}});
  check({"slice start=2 end=5 (to the end)",
         {{"a", {2, 5}}},
         {},
         "  %y = loom.slice %a, axis = 1, start = 2, end = 5 : tensor<2x5xf32>",
         {{"%y", {2, 3}}}});
}

//===----------------------------------------------------------------------===//
// Model ops
//===----------------------------------------------------------------------===//

TEST_F(VjpTest, Embedding) {
  // Repeated ids accumulate; id 3 never occurs (zero row).
  check({"embedding",
         {{"t", {5, 3}}},
         {{"ids", {2, 3}, "i32", {0, 2, 4, 2, 1, 2}}},
         "  %y = loom.embedding %t, %ids : tensor<5x3xf32>, tensor<2x3xi32>",
         {{"%y", {2, 3, 3}}}});
}

TEST_F(VjpTest, LayerNorm) {
  check({"layer_norm",
         {{"x", {2, 3, 5}}, {"g", {5}}, {"b", {5}}},
         {},
         "  %y = loom.layer_norm %x, %g, %b, eps = 1.0e-05 : "
         "tensor<2x3x5xf32>, tensor<5xf32>, tensor<5xf32>",
         {{"%y", {2, 3, 5}}}});
  check({"layer_norm gamma frozen",
         {{"x", {4, 6}}, {"g", {6}}, {"b", {6}}},
         {},
         "  %y = loom.layer_norm %x, %g, %b, eps = 1.0e-01 : "
         "tensor<4x6xf32>, tensor<6xf32>, tensor<6xf32>",
         {{"%y", {4, 6}}},
         {"x", "b"}});
}

TEST_F(VjpTest, Attention) {
  std::string t = "tensor<2x2x4x3xf32>";
  check({"attention",
         {{"q", {2, 2, 4, 3}}, {"k", {2, 2, 4, 3}}, {"v", {2, 2, 4, 3}}},
         {},
         "  %y = loom.attention %q, %k, %v, causal = false, scale = 0.5 : " +
             t + ", " + t + ", " + t,
         {{"%y", {2, 2, 4, 3}}}});
  check({"attention causal",
         {{"q", {2, 2, 4, 3}}, {"k", {2, 2, 4, 3}}, {"v", {2, 2, 4, 3}}},
         {},
         "  %y = loom.attention %q, %k, %v, causal = true, scale = 0.5 : " + t +
             ", " + t + ", " + t,
         {{"%y", {2, 2, 4, 3}}}});
  // Key 0 of batch 0 is padding: with causal, query 0 of batch 0 attends
  // nothing (its output is 0).
  check({"attention causal + key mask",
         {{"q", {2, 2, 4, 3}}, {"k", {2, 2, 4, 3}}, {"v", {2, 2, 4, 3}}},
         {{"m", {2, 4}, "i1", {0, 1, 1, 1, 1, 1, 0, 1}}},
         "  %y = loom.attention %q, %k, %v, mask %m, causal = true, scale = "
         "0.5 : " +
             t + ", " + t + ", " + t + ", tensor<2x4xi1>",
         {{"%y", {2, 2, 4, 3}}}});
  // Cross attention: Tq = 3, Tk = 5, Dv = 2, masked and causal (query i
  // attends keys j <= i + 2).
  check({"attention cross Tq=3 Tk=5",
         {{"q", {2, 1, 3, 4}}, {"k", {2, 1, 5, 4}}, {"v", {2, 1, 5, 2}}},
         {{"m", {2, 5}, "i1", {1, 1, 0, 1, 1, 1, 1, 1, 1, 0}}},
         "  %y = loom.attention %q, %k, %v, mask %m, causal = false, scale "
         "= 0.7 : tensor<2x1x3x4xf32>, tensor<2x1x5x4xf32>, "
         "tensor<2x1x5x2xf32>, tensor<2x5xi1>",
         {{"%y", {2, 1, 3, 2}}}});
  check({"attention cross causal Tq=3 Tk=5",
         {{"q", {2, 1, 3, 4}}, {"k", {2, 1, 5, 4}}, {"v", {2, 1, 5, 2}}},
         {},
         "  %y = loom.attention %q, %k, %v, causal = true, scale = 0.7 : "
         "tensor<2x1x3x4xf32>, tensor<2x1x5x4xf32>, tensor<2x1x5x2xf32>",
         {{"%y", {2, 1, 3, 2}}}});
  // Only k trainable.
  check({"attention only k",
         {{"q", {2, 2, 4, 3}}, {"k", {2, 2, 4, 3}}, {"v", {2, 2, 4, 3}}},
         {},
         "  %y = loom.attention %q, %k, %v, causal = true, scale = 0.5 : " + t +
             ", " + t + ", " + t,
         {{"%y", {2, 2, 4, 3}}},
         {"k"}});
}

TEST_F(VjpTest, CrossEntropy) {
  // Two of the six positions are ignored.
  check({"cross_entropy ignore_index=-100",
         {{"z", {2, 3, 5}}},
         {{"t", {2, 3}, "i32", {1, -100, 4, 0, 2, -100}}},
         "  %y = loom.cross_entropy %z, %t, ignore_index = -100 : "
         "tensor<2x3x5xf32>, tensor<2x3xi32>",
         {{"%y", {}}}});
  // An ignore index that is a class id.
  check({"cross_entropy ignore_index=0",
         {{"z", {4, 3}}},
         {{"t", {4}, "i32", {0, 2, 1, 0}}},
         "  %y = loom.cross_entropy %z, %t, ignore_index = 0 : "
         "tensor<4x3xf32>, tensor<4xi32>",
         {{"%y", {}}}});
  // The loss scaled inside the function: d_loss != 1.
  check({"cross_entropy then exp",
         {{"z", {3, 4}}},
         {{"t", {3}, "i32", {3, 0, 1}}},
         "  %c = loom.cross_entropy %z, %t, ignore_index = -100 : "
         "tensor<3x4xf32>, tensor<3xi32>\n"
         "  %y = loom.exp %c : tensor<f32>",
         {{"%y", {}}}});
}

TEST_F(VjpTest, Dropout) {
  Case c{"dropout rate=0.3",
         {{"a", {4, 5}}},
         {{"seed", {}, "i64", {1234}}},
         "  %y = loom.dropout %a, %seed, rate = 0.3, site = 1 : "
         "tensor<4x5xf32>",
         {{"%y", {4, 5}}}};
  check(c);
  // The mask drops some elements and keeps others.
  int dropped = 0;
  for (uint64_t i = 0; i < 20; ++i)
    dropped += !loom::reference::dropoutKeeps(1234, 1, i, 0.3);
  EXPECT_GT(dropped, 0);
  EXPECT_LT(dropped, 20);
}

TEST_F(VjpTest, Lstm) {
  // B = 2, T = 3, I = 3, H = 2; all six operands trainable, all three
  // results in the loss.
  check({"lstm",
         {{"x", {2, 3, 3}},
          {"h0", {2, 2}},
          {"c0", {2, 2}},
          {"wih", {3, 8}, {-1.0, 1.0}},
          {"whh", {2, 8}, {-1.0, 1.0}},
          {"bias", {8}, {-1.0, 1.0}}},
         {},
         "  %out, %h, %c = loom.lstm %x, %h0, %c0, %wih, %whh, %bias : "
         "tensor<2x3x3xf32>, tensor<2x2xf32>, tensor<2x2xf32>, "
         "tensor<3x8xf32>, tensor<2x8xf32>, tensor<8xf32>",
         {{"%out", {2, 3, 2}}, {"%h", {2, 2}}, {"%c", {2, 2}}}});
  // Only the outputs used (h_n, c_n get zero gradients), weights only.
  check({"lstm outputs only, weights trainable",
         {{"x", {1, 4, 2}},
          {"h0", {1, 3}},
          {"c0", {1, 3}},
          {"wih", {2, 12}, {-1.0, 1.0}},
          {"whh", {3, 12}, {-1.0, 1.0}},
          {"bias", {12}, {-1.0, 1.0}}},
         {},
         "  %out, %h, %c = loom.lstm %x, %h0, %c0, %wih, %whh, %bias : "
         "tensor<1x4x2xf32>, tensor<1x3xf32>, tensor<1x3xf32>, "
         "tensor<2x12xf32>, tensor<3x12xf32>, tensor<12xf32>",
         {{"%out", {1, 4, 3}}},
         {"wih", "whh", "bias"}});
}

TEST_F(VjpTest, SmallMlp) {
  // matmul + bias + tanh + cross-entropy: the chain the optimizer trains.
  check({"mlp matmul+add+tanh+cross_entropy",
         {{"w", {4, 3}}, {"b", {3}}},
         {{"t", {2, 3}, "i32", {0, 2, 1, 1, 0, 2}}},
         "  %x = loom.constant dense<[[[0.5, -1.0, 0.25, 2.0], [1.5, 0.0, "
         "-0.5, 1.0], [0.1, 0.2, 0.3, 0.4]], [[-1.0, 1.0, -1.0, 1.0], [2.0, "
         "-2.0, 0.5, 0.5], [0.0, 1.0, 0.0, -1.0]]]> : tensor<2x3x4xf32>\n"
         "  %0 = loom.matmul %x, %w : tensor<2x3x4xf32>, tensor<4x3xf32>\n"
         "  %1 = loom.add %0, %b : tensor<2x3x3xf32>, tensor<3xf32>\n"
         "  %2 = loom.tanh %1 : tensor<2x3x3xf32>\n"
         "  %y = loom.cross_entropy %2, %t, ignore_index = -100 : "
         "tensor<2x3x3xf32>, tensor<2x3xi32>",
         {{"%y", {}}}});
}

//===----------------------------------------------------------------------===//
// Structure of the gradient function
//===----------------------------------------------------------------------===//

TEST_F(VjpTest, FrozenParameterCostsNothing) {
  Case c{"matmul with w frozen",
         {{"x", {3, 4}}, {"w", {4, 5}}},
         {},
         "  %y = loom.matmul %x, %w : tensor<3x4xf32>, tensor<4x5xf32>",
         {{"%y", {3, 5}}},
         {"x"}};
  check(c);

  OwningOpRef<ModuleOp> module = parse(moduleText(c));
  ASSERT_TRUE(module);
  ASSERT_TRUE(succeeded(autodiff(*module, {"x"}, /*keepForward=*/false)));
  EXPECT_FALSE(module->lookupSymbol<func::FuncOp>("loss"));
  auto grad = module->lookupSymbol<func::FuncOp>("loss_grad");
  ASSERT_TRUE(grad);
  // The forward matmul and dx = g @ w^T: no x^T @ g.
  int matmuls = 0;
  grad.walk([&](loom::MatmulOp) { ++matmuls; });
  EXPECT_EQ(matmuls, 2);
  grad.walk([&](loom::TransposeOp t) {
    auto load = t.getInput().getDefiningOp<loom::GetParameterOp>();
    ASSERT_TRUE(load) << "transpose of a non-parameter";
    EXPECT_EQ(load.getName(), "w") << "x is transposed: a dw computation";
  });
  // Only x's gradient is returned, and only x is marked trainable.
  ASSERT_EQ(grad.getNumResults(), 2u);
  EXPECT_EQ(grad.getResultAttrOfType<StringAttr>(1, "loom.grad_of").getValue(),
            "x");
  for (auto param : module->getOps<loom::ParameterOp>())
    EXPECT_EQ(param->hasAttr("loom.trainable"), param.getSymName() == "x");
}

TEST_F(VjpTest, FrozenChainHasNoBackward) {
  // w2 is frozen and only feeds a branch that no trainable value enters: no
  // backward op may touch that branch.
  Case c{"frozen branch",
         {{"a", {2, 3}}, {"w2", {2, 3}}},
         {},
         "  %e = loom.exp %w2 : tensor<2x3xf32>\n"
         "  %t = loom.tanh %a : tensor<2x3xf32>\n"
         "  %y = loom.add %t, %e : tensor<2x3xf32>, tensor<2x3xf32>",
         {{"%y", {2, 3}}},
         {"a"}};
  check(c);
  OwningOpRef<ModuleOp> module = parse(moduleText(c));
  ASSERT_TRUE(module);
  ASSERT_TRUE(succeeded(autodiff(*module, {"a"}, /*keepForward=*/false)));
  auto grad = module->lookupSymbol<func::FuncOp>("loss_grad");
  // Forward: one exp; backward of exp would add a mul by it.
  int exps = 0, muls = 0;
  grad.walk([&](loom::ExpOp) { ++exps; });
  grad.walk([&](loom::MulOp m) {
    ++muls;
    for (Value operand : m->getOperands())
      EXPECT_FALSE(operand.getDefiningOp<loom::ExpOp>())
          << "backward work for the frozen branch";
  });
  EXPECT_EQ(exps, 1);
}

TEST_F(VjpTest, ParameterReadTwiceGetsTheSum) {
  Case c{"parameter read twice",
         {{"a", {2, 3}}},
         {},
         "  %a2 = loom.get_parameter @a : tensor<2x3xf32>\n"
         "  %e = loom.exp %a : tensor<2x3xf32>\n"
         "  %y = loom.mul %e, %a2 : tensor<2x3xf32>, tensor<2x3xf32>",
         {{"%y", {2, 3}}}};
  check(c);

  // d/da sum(exp(a) * a * W) = (exp(a) * a + exp(a)) * W, checked in closed
  // form with W = 1.
  OwningOpRef<ModuleOp> module = parse(R"mlir(
    loom.parameter @a : tensor<3xf32> init = {kind = "zeros"}
    func.func @loss() -> tensor<f32> {
      %a1 = loom.get_parameter @a : tensor<3xf32>
      %a2 = loom.get_parameter @a : tensor<3xf32>
      %e = loom.exp %a1 : tensor<3xf32>
      %y = loom.mul %e, %a2 : tensor<3xf32>, tensor<3xf32>
      %l = loom.reduce_sum %y, axes = [0], keepdim = false : tensor<3xf32>
      return %l : tensor<f32>
    })mlir");
  ASSERT_TRUE(module);
  ASSERT_TRUE(succeeded(autodiff(*module, {})));
  Array a = array({3}, {0.5, -1.0, 2.0});
  auto r =
      loom::reference::evaluate(*module, "loss_grad", {}, [&](StringRef name) {
        return name == "a" ? &a : nullptr;
      });
  ASSERT_TRUE(bool(r)) << llvm::toString(r.takeError());
  ASSERT_EQ(r->size(), 2u);
  for (int i = 0; i < 3; ++i) {
    double x = a.data[i];
    EXPECT_NEAR((*r)[1].data[i], std::exp(x) * (x + 1), 1e-12);
  }
}

//===----------------------------------------------------------------------===//
// Diagnostics
//===----------------------------------------------------------------------===//

class VjpDiagnosticsTest : public VjpTest {
protected:
  /// Runs loom-autodiff on `source`; returns whether it succeeded and
  /// collects every diagnostic as "severity: message".
  bool run(StringRef source, std::vector<std::string> trainable,
           std::string &diagnostics) {
    OwningOpRef<ModuleOp> parsed = parse(source);
    EXPECT_TRUE(parsed) << source.str();
    if (!parsed)
      return false;
    module = std::move(parsed);
    ScopedDiagnosticHandler handler(&context, [&](Diagnostic &d) {
      diagnostics += d.getSeverity() == DiagnosticSeverity::Error ? "error: "
                     : d.getSeverity() == DiagnosticSeverity::Warning
                         ? "warning: "
                         : "note: ";
      diagnostics += d.str() + "\n";
      return success();
    });
    return succeeded(autodiff(*module, trainable, /*keepForward=*/false));
  }
  OwningOpRef<ModuleOp> module;
};

TEST_F(VjpDiagnosticsTest, NonScalarLoss) {
  std::string d;
  EXPECT_FALSE(run(R"mlir(
    loom.parameter @a : tensor<3xf32> init = {kind = "zeros"}
    func.func @loss() -> tensor<3xf32> {
      %a = loom.get_parameter @a : tensor<3xf32>
      return %a : tensor<3xf32>
    })mlir",
                   {}, d));
  EXPECT_TRUE(contains(d, "error: loom-autodiff: 'loss' must return one "
                          "rank-0 float tensor (a loss), got "
                          "'tensor<3xf32>'"))
      << d;
}

TEST_F(VjpDiagnosticsTest, UnknownTrainable) {
  std::string d;
  EXPECT_FALSE(run(R"mlir(
    loom.parameter @a : tensor<3xf32> init = {kind = "zeros"}
    func.func @loss() -> tensor<f32> {
      %a = loom.get_parameter @a : tensor<3xf32>
      %l = loom.reduce_sum %a, axes = [0], keepdim = false : tensor<3xf32>
      return %l : tensor<f32>
    })mlir",
                   {"a", "nope"}, d));
  EXPECT_TRUE(
      contains(d, "error: loom-autodiff: trainable 'nope' names no parameter"))
      << d;
}

TEST_F(VjpDiagnosticsTest, MissingFunction) {
  std::string d;
  EXPECT_FALSE(run(R"mlir(
    func.func @other() -> tensor<f32> {
      %z = loom.fill value = 0.0 : tensor<f32>
      return %z : tensor<f32>
    })mlir",
                   {}, d));
  EXPECT_TRUE(contains(d, "no function 'loss' to differentiate")) << d;
}

TEST_F(VjpDiagnosticsTest, OpWithoutVjp) {
  // attention_lse is a backward helper with no VJP of its own.
  std::string d;
  EXPECT_FALSE(run(R"mlir(
    loom.parameter @q : tensor<1x2x3xf32> init = {kind = "zeros"}
    func.func @loss() -> tensor<f32> {
      %q = loom.get_parameter @q : tensor<1x2x3xf32>
      %s = loom.attention_lse %q, %q, causal = false, scale = 1.0
          : tensor<1x2x3xf32>, tensor<1x2x3xf32> -> tensor<1x2xf32>
      %l = loom.reduce_sum %s, axes = [0, 1], keepdim = false : tensor<1x2xf32>
      return %l : tensor<f32>
    })mlir",
                   {}, d));
  EXPECT_TRUE(contains(d, "error: 'loom.attention_lse' op has no "
                          "vector-Jacobian product"))
      << d;
}

TEST_F(VjpDiagnosticsTest, NonDifferentiablePathGivesZero) {
  // The loss depends on @a only through a comparison: its gradient is 0,
  // with a warning; @b still gets its gradient.
  std::string d;
  const char *source = R"mlir(
    loom.parameter @a : tensor<3xf32> init = {kind = "zeros"}
    loom.parameter @b : tensor<3xf32> init = {kind = "zeros"}
    func.func @loss() -> tensor<f32> {
      %a = loom.get_parameter @a : tensor<3xf32>
      %b = loom.get_parameter @b : tensor<3xf32>
      %z = loom.fill value = 0.0 : tensor<f32>
      %c = loom.compare %a, %z, predicate = "gt" : tensor<3xf32>, tensor<f32>
      %y = loom.where %c, %b, %z : tensor<3xi1>, tensor<3xf32>, tensor<f32>
      %l = loom.reduce_sum %y, axes = [0], keepdim = false : tensor<3xf32>
      return %l : tensor<f32>
    })mlir";
  ASSERT_TRUE(run(source, {}, d)) << d;
  EXPECT_TRUE(contains(d, "warning: loom-autodiff: the loss does not depend "
                          "differentiably on parameter 'a'"))
      << d;
  EXPECT_FALSE(contains(d, "parameter 'b'")) << d;

  Array a = array({3}, {1.0, -1.0, 2.0}), b = array({3}, {3.0, 4.0, 5.0});
  auto r = loom::reference::evaluate(
      *module, "loss_grad", {}, [&](StringRef name) -> const Array * {
        return name == "a" ? &a : name == "b" ? &b : nullptr;
      });
  ASSERT_TRUE(bool(r)) << llvm::toString(r.takeError());
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].data, (std::vector<double>{8.0}));
  EXPECT_EQ((*r)[1].data, (std::vector<double>{0.0, 0.0, 0.0}));
  EXPECT_EQ((*r)[2].data, (std::vector<double>{1.0, 0.0, 1.0}));
}

TEST_F(VjpDiagnosticsTest, RegionsAndCallsAreRejected) {
  std::string d;
  EXPECT_FALSE(run(R"mlir(
    loom.parameter @a : tensor<3xf32> init = {kind = "zeros"}
    func.func @inner(%x: tensor<3xf32>) -> tensor<f32> {
      %l = loom.reduce_sum %x, axes = [0], keepdim = false : tensor<3xf32>
      return %l : tensor<f32>
    }
    func.func @loss() -> tensor<f32> {
      %a = loom.get_parameter @a : tensor<3xf32>
      %l = func.call @inner(%a) : (tensor<3xf32>) -> tensor<f32>
      return %l : tensor<f32>
    })mlir",
                   {}, d));
  EXPECT_TRUE(contains(d, "is a call; inline it before loom-autodiff")) << d;
}

} // namespace
