//===- ReferenceTest.cpp - reference evaluator unit tests -----------------===//
//
// Small cases with answers worked out by hand (or from closed forms), for
// the double-precision interpreter that numerical tests use as the oracle.
//
//===----------------------------------------------------------------------===//

#include "reference/Evaluator.h"

#include "ir/LoomDialect.h"
#include "ir/LoomOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <random>
#include <string>

using namespace mlir;
using loom::reference::Array;

namespace {

class ReferenceTest : public ::testing::Test {
protected:
  ReferenceTest() {
    context.getOrLoadDialect<loom::LoomDialect>();
    context.getOrLoadDialect<func::FuncDialect>();
  }

  /// Parses `source`; its locations read `test.mlir:line:col`.
  OwningOpRef<ModuleOp> parse(StringRef source) {
    return parseSourceString<ModuleOp>(source, &context, "test.mlir");
  }

  /// Evaluates @f of `source` (which must parse) on `args`.
  llvm::Expected<std::vector<Array>>
  run(StringRef source, std::vector<Array> args,
      const std::map<std::string, Array> &params = {}) {
    module = parse(source);
    EXPECT_TRUE(module) << source.str();
    if (!module)
      return llvm::createStringError("parse error");
    return loom::reference::evaluate(
        *module, "f", args, [&](StringRef name) -> const Array * {
          auto it = params.find(name.str());
          return it == params.end() ? nullptr : &it->second;
        });
  }

  /// Like run(), but expects success.
  std::vector<Array> eval(StringRef source, std::vector<Array> args,
                          const std::map<std::string, Array> &params = {}) {
    llvm::Expected<std::vector<Array>> results = run(source, args, params);
    if (!results) {
      ADD_FAILURE() << llvm::toString(results.takeError());
      return {};
    }
    return std::move(*results);
  }

  /// Like run(), but expects an error and returns its message.
  std::string error(StringRef source, std::vector<Array> args,
                    const std::map<std::string, Array> &params = {}) {
    llvm::Expected<std::vector<Array>> results = run(source, args, params);
    if (results) {
      ADD_FAILURE() << "expected an error";
      return "";
    }
    return llvm::toString(results.takeError());
  }

  /// `shape` filled with uniform values in [lo, hi) from a fixed seed.
  Array random(std::vector<int64_t> shape, double lo = -2.0, double hi = 2.0) {
    Array a{shape, {}, {}};
    std::uniform_real_distribution<double> dist(lo, hi);
    for (int64_t i = 0; i < a.numElements(); ++i)
      a.data.push_back(dist(rng));
    return a;
  }

  MLIRContext context;
  OwningOpRef<ModuleOp> module;
  std::mt19937_64 rng{12345};
};

Array array(std::vector<int64_t> shape, std::vector<double> data) {
  return Array{std::move(shape), std::move(data), {}};
}

bool contains(const std::string &haystack, const std::string &needle) {
  return haystack.find(needle) != std::string::npos;
}

constexpr double kTol = 1e-12;
constexpr double kInfinity = std::numeric_limits<double>::infinity();

//===----------------------------------------------------------------------===//
// Elementwise and broadcasting
//===----------------------------------------------------------------------===//

TEST_F(ReferenceTest, BroadcastAddKnownValues) {
  auto r = eval(R"mlir(
    func.func @f(%a: tensor<2x3xf32>, %b: tensor<3xf32>) -> tensor<2x3xf32> {
      %0 = loom.add %a, %b : tensor<2x3xf32>, tensor<3xf32>
      return %0 : tensor<2x3xf32>
    })mlir",
                {array({2, 3}, {1, 2, 3, 4, 5, 6}), array({3}, {10, 20, 30})});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(r[0].data, (std::vector<double>{11, 22, 33, 14, 25, 36}));
  EXPECT_TRUE(r[0].elementType.isF32());
}

TEST_F(ReferenceTest, BroadcastOuterSubRandom) {
  // [2, 1] - [1, 3] -> [2, 3]: out[i, j] = a[i] - b[j].
  Array a = random({2, 1}), b = random({1, 3});
  auto r = eval(R"mlir(
    func.func @f(%a: tensor<2x1xf64>, %b: tensor<1x3xf64>) -> tensor<2x3xf64> {
      %0 = loom.sub %a, %b : tensor<2x1xf64>, tensor<1x3xf64>
      return %0 : tensor<2x3xf64>
    })mlir",
                {a, b});
  ASSERT_EQ(r.size(), 1u);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      EXPECT_DOUBLE_EQ(r[0].data[i * 3 + j], a.data[i] - b.data[j]);
}

TEST_F(ReferenceTest, ScalarBroadcastMulDivAndUnaryOps) {
  Array x = random({2, 2}, 0.5, 2.0);
  auto r = eval(R"mlir(
    func.func @f(%x: tensor<2x2xf32>) -> (tensor<2x2xf32>, tensor<2x2xf32>,
        tensor<2x2xf32>, tensor<2x2xf32>, tensor<2x2xf32>) {
      %c = loom.constant dense<4.0> : tensor<f32>
      %0 = loom.mul %x, %c : tensor<2x2xf32>, tensor<f32>
      %1 = loom.div %c, %x : tensor<f32>, tensor<2x2xf32>
      %2 = loom.rsqrt %x : tensor<2x2xf32>
      %3 = loom.pow %x, exponent = 3.000000e+00 : tensor<2x2xf32>
      %n = loom.neg %x : tensor<2x2xf32>
      %4 = loom.relu %n : tensor<2x2xf32>
      return %0, %1, %2, %3, %4 : tensor<2x2xf32>, tensor<2x2xf32>,
          tensor<2x2xf32>, tensor<2x2xf32>, tensor<2x2xf32>
    })mlir",
                {x});
  ASSERT_EQ(r.size(), 5u);
  for (int i = 0; i < 4; ++i) {
    double v = x.data[i];
    EXPECT_DOUBLE_EQ(r[0].data[i], 4 * v);
    EXPECT_DOUBLE_EQ(r[1].data[i], 4 / v);
    EXPECT_DOUBLE_EQ(r[2].data[i], 1 / std::sqrt(v));
    EXPECT_NEAR(r[3].data[i], v * v * v, kTol);
    EXPECT_EQ(r[4].data[i], 0.0); // relu of a negative number
  }
}

TEST_F(ReferenceTest, CompareWhereCast) {
  auto r = eval(R"mlir(
    func.func @f(%a: tensor<4xf32>, %b: tensor<f32>)
        -> (tensor<4xf32>, tensor<4xi32>, tensor<4xi1>) {
      %m = loom.compare %a, %b, predicate = "gt" : tensor<4xf32>, tensor<f32>
      %z = loom.constant dense<0.0> : tensor<f32>
      %0 = loom.where %m, %a, %z : tensor<4xi1>, tensor<4xf32>, tensor<f32>
      %1 = loom.cast %a, to = i32 : tensor<4xf32>
      %2 = loom.cast %a, to = i1 : tensor<4xf32>
      return %0, %1, %2 : tensor<4xf32>, tensor<4xi32>, tensor<4xi1>
    })mlir",
                {array({4}, {-2.7, 0.0, 1.5, 3.9}), array({}, {1.0})});
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].data, (std::vector<double>{0, 0, 1.5, 3.9}));
  EXPECT_EQ(r[1].data, (std::vector<double>{-2, 0, 1, 3})); // toward zero
  EXPECT_TRUE(r[1].elementType.isSignlessInteger(32));
  EXPECT_EQ(r[2].data, (std::vector<double>{1, 0, 1, 1}));
}

TEST_F(ReferenceTest, IntegerArithmeticWrapsAndTruncates) {
  auto r = eval(R"mlir(
    func.func @f(%a: tensor<3xi32>, %b: tensor<3xi32>)
        -> (tensor<3xi32>, tensor<3xi32>) {
      %0 = loom.add %a, %b : tensor<3xi32>, tensor<3xi32>
      %1 = loom.div %a, %b : tensor<3xi32>, tensor<3xi32>
      return %0, %1 : tensor<3xi32>, tensor<3xi32>
    })mlir",
                {array({3}, {2147483647, -7, 7}), array({3}, {1, 2, -2})});
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].data, (std::vector<double>{-2147483648.0, -5, 5}));
  EXPECT_EQ(r[1].data, (std::vector<double>{2147483647, -3, -3}));

  std::string message = error(R"mlir(
    func.func @f(%a: tensor<2xi32>, %b: tensor<2xi32>) -> tensor<2xi32> {
      %0 = loom.div %a, %b : tensor<2xi32>, tensor<2xi32>
      return %0 : tensor<2xi32>
    })mlir",
                              {array({2}, {1, 2}), array({2}, {1, 0})});
  EXPECT_TRUE(contains(message, "loom.div")) << message;
  EXPECT_TRUE(contains(message, "division by zero")) << message;
}

TEST_F(ReferenceTest, GeluBothFormsMatchClosedForms) {
  std::vector<double> xs = {-2.0, -0.5, 1.0, 0.7, 3.0};
  auto r = eval(R"mlir(
    func.func @f(%x: tensor<5xf32>) -> (tensor<5xf32>, tensor<5xf32>) {
      %0 = loom.gelu %x, approximate = false : tensor<5xf32>
      %1 = loom.gelu %x, approximate = true : tensor<5xf32>
      return %0, %1 : tensor<5xf32>, tensor<5xf32>
    })mlir",
                {array({5}, xs)});
  ASSERT_EQ(r.size(), 2u);
  // x * Phi(x), Phi(1) = 0.8413447460685429.
  std::vector<double> exact = {-0.04550026389635842, -0.15426876936299344,
                               0.8413447460685429, 0.5306254434438489,
                               2.99595030590511};
  std::vector<double> tanhForm = {-0.04540230591222494, -0.15428599017485606,
                                  0.8411919906082768, 0.5305701347051167,
                                  2.996362607918227};
  for (size_t i = 0; i < xs.size(); ++i) {
    EXPECT_NEAR(r[0].data[i], exact[i], kTol) << xs[i];
    EXPECT_NEAR(r[1].data[i], tanhForm[i], kTol) << xs[i];
    double x = xs[i];
    EXPECT_NEAR(r[0].data[i], 0.5 * x * std::erfc(-x / std::sqrt(2.0)), kTol);
  }
}

//===----------------------------------------------------------------------===//
// Reductions, matmul, softmax, layer_norm
//===----------------------------------------------------------------------===//

TEST_F(ReferenceTest, Reductions) {
  Array x = random({2, 3, 4});
  auto r = eval(R"mlir(
    func.func @f(%x: tensor<2x3x4xf32>)
        -> (tensor<3xf32>, tensor<2x1x1xf32>, tensor<2x3x1xf32>) {
      %0 = loom.reduce_sum %x, axes = [0, 2], keepdim = false : tensor<2x3x4xf32>
      %1 = loom.reduce_mean %x, axes = [1, 2], keepdim = true : tensor<2x3x4xf32>
      %2 = loom.reduce_max %x, axes = [2], keepdim = true : tensor<2x3x4xf32>
      return %0, %1, %2 : tensor<3xf32>, tensor<2x1x1xf32>, tensor<2x3x1xf32>
    })mlir",
                {x});
  ASSERT_EQ(r.size(), 3u);
  auto at = [&](int i, int j, int k) { return x.data[(i * 3 + j) * 4 + k]; };
  for (int j = 0; j < 3; ++j) {
    double sum = 0;
    for (int i = 0; i < 2; ++i)
      for (int k = 0; k < 4; ++k)
        sum += at(i, j, k);
    EXPECT_NEAR(r[0].data[j], sum, kTol);
  }
  for (int i = 0; i < 2; ++i) {
    double sum = 0;
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k)
        sum += at(i, j, k);
    EXPECT_NEAR(r[1].data[i], sum / 12, kTol);
    for (int j = 0; j < 3; ++j) {
      double max = at(i, j, 0);
      for (int k = 1; k < 4; ++k)
        max = std::max(max, at(i, j, k));
      EXPECT_EQ(r[2].data[i * 3 + j], max);
    }
  }
  EXPECT_EQ(r[1].shape, (std::vector<int64_t>{2, 1, 1}));
}

TEST_F(ReferenceTest, MatmulKnownValues) {
  auto r = eval(R"mlir(
    func.func @f(%a: tensor<2x3xf32>, %b: tensor<3x2xf32>) -> tensor<2x2xf32> {
      %0 = loom.matmul %a, %b : tensor<2x3xf32>, tensor<3x2xf32>
      return %0 : tensor<2x2xf32>
    })mlir",
                {array({2, 3}, {1, 2, 3, 4, 5, 6}),
                 array({3, 2}, {7, 8, 9, 10, 11, 12})});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].data, (std::vector<double>{58, 64, 139, 154}));
}

TEST_F(ReferenceTest, MatmulBroadcastsBatchAndRank2Weight) {
  Array a = random({2, 1, 2, 3}), b = random({3, 3, 4}), w = random({3, 4});
  auto r = eval(R"mlir(
    func.func @f(%a: tensor<2x1x2x3xf32>, %b: tensor<3x3x4xf32>,
                 %w: tensor<3x4xf32>) -> (tensor<2x3x2x4xf32>, tensor<2x1x2x4xf32>) {
      %0 = loom.matmul %a, %b : tensor<2x1x2x3xf32>, tensor<3x3x4xf32>
      %1 = loom.matmul %a, %w : tensor<2x1x2x3xf32>, tensor<3x4xf32>
      return %0, %1 : tensor<2x3x2x4xf32>, tensor<2x1x2x4xf32>
    })mlir",
                {a, b, w});
  ASSERT_EQ(r.size(), 2u);
  for (int p = 0; p < 2; ++p)
    for (int q = 0; q < 3; ++q)
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 4; ++j) {
          double s0 = 0, s1 = 0;
          for (int k = 0; k < 3; ++k) {
            double x = a.data[(p * 2 + i) * 3 + k];
            s0 += x * b.data[(q * 3 + k) * 4 + j];
            s1 += x * w.data[k * 4 + j];
          }
          EXPECT_NEAR(r[0].data[((p * 3 + q) * 2 + i) * 4 + j], s0, kTol);
          if (q == 0)
            EXPECT_NEAR(r[1].data[(p * 2 + i) * 4 + j], s1, kTol);
        }
}

TEST_F(ReferenceTest, SoftmaxKnownValuesAndRowSums) {
  auto r = eval(R"mlir(
    func.func @f(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>) {
      %0 = loom.softmax %x, axis = 1 : tensor<2x3xf32>
      %1 = loom.softmax %x, axis = 0 : tensor<2x3xf32>
      return %0, %1 : tensor<2x3xf32>, tensor<2x3xf32>
    })mlir",
                {array({2, 3}, {1, 2, 3, 1001, 1002, 1003})});
  ASSERT_EQ(r.size(), 2u);
  // softmax([1, 2, 3]); shifting by 1000 changes nothing.
  std::vector<double> known = {0.09003057317038046, 0.24472847105479767,
                               0.6652409557748219};
  for (int row = 0; row < 2; ++row) {
    double sum = 0;
    for (int j = 0; j < 3; ++j) {
      EXPECT_NEAR(r[0].data[row * 3 + j], known[j], kTol);
      sum += r[0].data[row * 3 + j];
    }
    EXPECT_NEAR(sum, 1.0, kTol);
  }
  // Along axis 0 each column is softmax([v, v + 1000]): [e^-1000, 1].
  for (int j = 0; j < 3; ++j) {
    EXPECT_NEAR(r[1].data[j], 0.0, kTol);
    EXPECT_NEAR(r[1].data[3 + j], 1.0, kTol);
  }
}

TEST_F(ReferenceTest, SoftmaxRandomRowsSumToOne) {
  Array x = random({3, 5}, -5, 5);
  auto r = eval(R"mlir(
    func.func @f(%x: tensor<3x5xf32>) -> tensor<3x5xf32> {
      %0 = loom.softmax %x, axis = 1 : tensor<3x5xf32>
      return %0 : tensor<3x5xf32>
    })mlir",
                {x});
  ASSERT_EQ(r.size(), 1u);
  for (int i = 0; i < 3; ++i) {
    double sum = 0, denominator = 0;
    for (int j = 0; j < 5; ++j) {
      sum += r[0].data[i * 5 + j];
      denominator += std::exp(x.data[i * 5 + j]);
    }
    EXPECT_NEAR(sum, 1.0, kTol);
    EXPECT_NEAR(r[0].data[i * 5 + 2], std::exp(x.data[i * 5 + 2]) / denominator,
                kTol);
  }
}

TEST_F(ReferenceTest, LayerNormByHand) {
  // Row [1, 2, 3, 4]: mean 2.5, biased variance 1.25, eps inside the sqrt.
  auto r = eval(R"mlir(
    func.func @f(%x: tensor<2x4xf32>, %g: tensor<4xf32>, %b: tensor<4xf32>)
        -> tensor<2x4xf32> {
      %0 = loom.layer_norm %x, %g, %b, eps = 1.000000e-01
          : tensor<2x4xf32>, tensor<4xf32>, tensor<4xf32>
      return %0 : tensor<2x4xf32>
    })mlir",
                {array({2, 4}, {1, 2, 3, 4, -3, -1, 1, 3}),
                 array({4}, {1, 2, 0.5, -1}), array({4}, {0, 0.25, -1, 2})});
  ASSERT_EQ(r.size(), 1u);
  double s0 = std::sqrt(1.25 + 0.1);
  std::vector<double> row0 = {-1.5 / s0 * 1 + 0, -0.5 / s0 * 2 + 0.25,
                              0.5 / s0 * 0.5 - 1, 1.5 / s0 * -1 + 2};
  // Row [-3, -1, 1, 3]: mean 0, variance 5.
  double s1 = std::sqrt(5 + 0.1);
  std::vector<double> row1 = {-3 / s1 * 1 + 0, -1 / s1 * 2 + 0.25,
                              1 / s1 * 0.5 - 1, 3 / s1 * -1 + 2};
  for (int j = 0; j < 4; ++j) {
    EXPECT_NEAR(r[0].data[j], row0[j], kTol);
    EXPECT_NEAR(r[0].data[4 + j], row1[j], kTol);
  }
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

constexpr const char *kAttention = R"mlir(
    func.func @f(%q: tensor<1x2x2xf32>, %k: tensor<1x2x2xf32>,
                 %v: tensor<1x2x2xf32>) -> tensor<1x2x2xf32> {
      %0 = loom.attention %q, %k, %v, causal = true, scale = 5.000000e-01
          : tensor<1x2x2xf32>, tensor<1x2x2xf32>, tensor<1x2x2xf32>
      return %0 : tensor<1x2x2xf32>
    })mlir";

TEST_F(ReferenceTest, CausalAttentionTwoByTwo) {
  // q1 . k0 = 2 and q1 . k1 = 1, scaled by 0.5: scores 1 and 0.5. Query 0
  // sees key 0 only, so it returns v0.
  auto r = eval(kAttention,
                {array({1, 2, 2}, {1, 0, 1, 1}), array({1, 2, 2}, {2, 0, 0, 1}),
                 array({1, 2, 2}, {1, 2, 3, 4})});
  ASSERT_EQ(r.size(), 1u);
  double p0 = std::exp(1.0) / (std::exp(1.0) + std::exp(0.5));
  std::vector<double> expected = {1, 2, p0 * 1 + (1 - p0) * 3,
                                  p0 * 2 + (1 - p0) * 4};
  for (int i = 0; i < 4; ++i)
    EXPECT_NEAR(r[0].data[i], expected[i], kTol);
}

TEST_F(ReferenceTest, CausalAttentionAlignsShortQueriesToTheEnd) {
  // Tq = 1, Tk = 2: query 0 may see keys j <= 0 + (2 - 1), i.e. both.
  Array q = random({1, 1, 2}), k = random({1, 2, 2}), v = random({1, 2, 3});
  auto r = eval(R"mlir(
    func.func @f(%q: tensor<1x1x2xf32>, %k: tensor<1x2x2xf32>,
                 %v: tensor<1x2x3xf32>) -> tensor<1x1x3xf32> {
      %0 = loom.attention %q, %k, %v, causal = true, scale = 1.000000e+00
          : tensor<1x1x2xf32>, tensor<1x2x2xf32>, tensor<1x2x3xf32>
      return %0 : tensor<1x1x3xf32>
    })mlir",
                {q, k, v});
  ASSERT_EQ(r.size(), 1u);
  double s0 = q.data[0] * k.data[0] + q.data[1] * k.data[1];
  double s1 = q.data[0] * k.data[2] + q.data[1] * k.data[3];
  double p0 = 1 / (1 + std::exp(s1 - s0));
  for (int d = 0; d < 3; ++d)
    EXPECT_NEAR(r[0].data[d], p0 * v.data[d] + (1 - p0) * v.data[3 + d], kTol);
}

TEST_F(ReferenceTest, AttentionKeyMaskAndFullyMaskedRows) {
  // Two batch entries, two heads each. Entry 0 masks key 1 (every query
  // returns v[key 0]); entry 1 masks every key (zeros).
  Array q = random({2, 2, 3, 2}), k = random({2, 2, 2, 2}),
        v = random({2, 2, 2, 2});
  auto r = eval(R"mlir(
    func.func @f(%q: tensor<2x2x3x2xf32>, %k: tensor<2x2x2x2xf32>,
                 %v: tensor<2x2x2x2xf32>, %m: tensor<2x2xi1>) -> tensor<2x2x3x2xf32> {
      %0 = loom.attention %q, %k, %v, mask %m, causal = false, scale = 1.000000e+00
          : tensor<2x2x3x2xf32>, tensor<2x2x2x2xf32>, tensor<2x2x2x2xf32>,
            tensor<2x2xi1>
      return %0 : tensor<2x2x3x2xf32>
    })mlir",
                {q, k, v, array({2, 2}, {1, 0, 0, 0})});
  ASSERT_EQ(r.size(), 1u);
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < 3; ++i)
      for (int d = 0; d < 2; ++d) {
        // batch 0, head h: v[0, h, 0, d]
        EXPECT_NEAR(r[0].data[((0 * 2 + h) * 3 + i) * 2 + d],
                    v.data[((0 * 2 + h) * 2 + 0) * 2 + d], kTol);
        EXPECT_EQ(r[0].data[((1 * 2 + h) * 3 + i) * 2 + d], 0.0);
      }
}

//===----------------------------------------------------------------------===//
// cross_entropy, embedding, sinusoidal
//===----------------------------------------------------------------------===//

constexpr const char *kCrossEntropy = R"mlir(
    func.func @f(%l: tensor<3x4xf32>, %t: tensor<3xi32>) -> tensor<f32> {
      %0 = loom.cross_entropy %l, %t, ignore_index = -100
          : tensor<3x4xf32>, tensor<3xi32>
      return %0 : tensor<f32>
    })mlir";

TEST_F(ReferenceTest, CrossEntropySkipsIgnoredTargets) {
  Array logits = random({3, 4});
  auto r = eval(kCrossEntropy, {logits, array({3}, {1, -100, 3})});
  ASSERT_EQ(r.size(), 1u);
  auto term = [&](int p, int t) {
    double sum = 0;
    for (int c = 0; c < 4; ++c)
      sum += std::exp(logits.data[p * 4 + c]);
    return std::log(sum) - logits.data[p * 4 + t];
  };
  EXPECT_TRUE(r[0].shape.empty());
  EXPECT_NEAR(r[0].data[0], (term(0, 1) + term(2, 3)) / 2, kTol);
}

TEST_F(ReferenceTest, CrossEntropyAllIgnoredIsNaN) {
  auto r =
      eval(kCrossEntropy, {random({3, 4}), array({3}, {-100, -100, -100})});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_TRUE(std::isnan(r[0].data[0]));
}

TEST_F(ReferenceTest, CrossEntropyTargetOutOfRangeIsAnError) {
  std::string message =
      error(kCrossEntropy, {random({3, 4}), array({3}, {0, 4, 1})});
  EXPECT_TRUE(contains(message, "loom.cross_entropy")) << message;
  EXPECT_TRUE(contains(message, "target 4")) << message;
}

constexpr const char *kEmbedding = R"mlir(
    func.func @f(%w: tensor<5x3xf32>, %ids: tensor<2x2xi32>) -> tensor<2x2x3xf32> {
      %0 = loom.embedding %w, %ids : tensor<5x3xf32>, tensor<2x2xi32>
      return %0 : tensor<2x2x3xf32>
    })mlir";

TEST_F(ReferenceTest, EmbeddingGathersRows) {
  Array table = random({5, 3});
  std::vector<double> ids = {0, 4, 2, 2};
  auto r = eval(kEmbedding, {table, array({2, 2}, ids)});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].shape, (std::vector<int64_t>{2, 2, 3}));
  for (int p = 0; p < 4; ++p)
    for (int d = 0; d < 3; ++d)
      EXPECT_EQ(r[0].data[p * 3 + d], table.data[int(ids[p]) * 3 + d]);
}

TEST_F(ReferenceTest, EmbeddingIdOutOfRangeIsAnError) {
  std::string message =
      error(kEmbedding, {random({5, 3}), array({2, 2}, {0, 1, 7, 2})});
  EXPECT_TRUE(contains(message, "loom.embedding")) << message;
  EXPECT_TRUE(contains(message, "\"test.mlir\":3:")) << message;
  EXPECT_TRUE(contains(message, "id 7")) << message;
  EXPECT_TRUE(contains(message, "[1, 0]")) << message;
  // An i32 argument must hold integers.
  message = error(kEmbedding, {random({5, 3}), array({2, 2}, {0, 1.5, 2, 2})});
  EXPECT_TRUE(contains(message, "argument #1 holds 1.5 at [0, 1]")) << message;
}

TEST_F(ReferenceTest, SinusoidalArangeFill) {
  auto r = eval(R"mlir(
    func.func @f() -> (tensor<3x4xf32>, tensor<2xi32>) {
      %p = loom.arange size = 3 : tensor<3xi32>
      %0 = loom.sinusoidal %p, dim = 4 : tensor<3xi32>
      %1 = loom.fill value = -2.700000e+00 : tensor<2xi32>
      return %0, %1 : tensor<3x4xf32>, tensor<2xi32>
    })mlir",
                {});
  ASSERT_EQ(r.size(), 2u);
  for (int p = 0; p < 3; ++p) {
    // i = 0: p / 10000^0 = p; i = 1: p / 10000^(2/4) = p / 100.
    EXPECT_NEAR(r[0].data[p * 4 + 0], std::sin(p), kTol);
    EXPECT_NEAR(r[0].data[p * 4 + 1], std::cos(p), kTol);
    EXPECT_NEAR(r[0].data[p * 4 + 2], std::sin(p / 100.0), kTol);
    EXPECT_NEAR(r[0].data[p * 4 + 3], std::cos(p / 100.0), kTol);
  }
  EXPECT_EQ(r[1].data, (std::vector<double>{-2, -2}));
}

//===----------------------------------------------------------------------===//
// Shape ops
//===----------------------------------------------------------------------===//

TEST_F(ReferenceTest, SliceNegativeIndices) {
  Array x = random({2, 8});
  auto r = eval(R"mlir(
    func.func @f(%x: tensor<2x8xf32>) -> (tensor<2x6xf32>, tensor<2x3xf32>,
                                          tensor<1x8xf32>) {
      %0 = loom.slice %x, axis = 1, start = 1, end = -1 : tensor<2x8xf32>
      %1 = loom.slice %x, axis = 1, start = -3, end = 8 : tensor<2x8xf32>
      %2 = loom.slice %x, axis = 0, start = -1, end = 2 : tensor<2x8xf32>
      return %0, %1, %2 : tensor<2x6xf32>, tensor<2x3xf32>, tensor<1x8xf32>
    })mlir",
                {x});
  ASSERT_EQ(r.size(), 3u);
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 6; ++j)
      EXPECT_EQ(r[0].data[i * 6 + j], x.data[i * 8 + 1 + j]);
    for (int j = 0; j < 3; ++j)
      EXPECT_EQ(r[1].data[i * 3 + j], x.data[i * 8 + 5 + j]);
  }
  for (int j = 0; j < 8; ++j)
    EXPECT_EQ(r[2].data[j], x.data[8 + j]);
}

TEST_F(ReferenceTest, TransposeReshapeConcat) {
  Array x = random({2, 3}), y = random({2, 1});
  auto r = eval(R"mlir(
    func.func @f(%x: tensor<2x3xf32>, %y: tensor<2x1xf32>)
        -> (tensor<3x2xf32>, tensor<3x2xf32>, tensor<2x4xf32>) {
      %0 = loom.transpose %x, perm = [1, 0] : tensor<2x3xf32>
      %1 = loom.reshape %x, shape = [-1, 2] : tensor<2x3xf32>
      %2 = loom.concat %x, %y, axis = 1 : tensor<2x3xf32>, tensor<2x1xf32>
      return %0, %1, %2 : tensor<3x2xf32>, tensor<3x2xf32>, tensor<2x4xf32>
    })mlir",
                {x, y});
  ASSERT_EQ(r.size(), 3u);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) {
      EXPECT_EQ(r[0].data[j * 2 + i], x.data[i * 3 + j]);
      EXPECT_EQ(r[2].data[i * 4 + j], x.data[i * 3 + j]);
    }
  EXPECT_EQ(r[1].data, x.data);
  EXPECT_EQ(r[1].shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(r[2].data[3], y.data[0]);
  EXPECT_EQ(r[2].data[7], y.data[1]);
}

TEST_F(ReferenceTest, SplitAndMergeHeads) {
  Array x = random({2, 3, 4});
  auto r = eval(R"mlir(
    func.func @f(%x: tensor<2x3x4xf32>) -> (tensor<2x2x3x2xf32>, tensor<2x3x4xf32>) {
      %0 = loom.split_heads %x, heads = 2 : tensor<2x3x4xf32>
      %1 = loom.merge_heads %0 : tensor<2x2x3x2xf32>
      return %0, %1 : tensor<2x2x3x2xf32>, tensor<2x3x4xf32>
    })mlir",
                {x});
  ASSERT_EQ(r.size(), 2u);
  // out[b, h, t, d] = x[b, t, h * 2 + d]
  for (int b = 0; b < 2; ++b)
    for (int h = 0; h < 2; ++h)
      for (int t = 0; t < 3; ++t)
        for (int d = 0; d < 2; ++d)
          EXPECT_EQ(r[0].data[((b * 2 + h) * 3 + t) * 2 + d],
                    x.data[(b * 3 + t) * 4 + h * 2 + d]);
  EXPECT_EQ(r[1].data, x.data);
}

//===----------------------------------------------------------------------===//
// LSTM
//===----------------------------------------------------------------------===//

TEST_F(ReferenceTest, LstmOneStepByHand) {
  // B = 1, T = 1, I = 1, H = 1: z_k = x * w_ih[k] + h0 * w_hh[k] + b[k].
  auto r = eval(R"mlir(
    func.func @f(%x: tensor<1x1x1xf32>, %h0: tensor<1x1xf32>, %c0: tensor<1x1xf32>,
                 %wih: tensor<1x4xf32>, %whh: tensor<1x4xf32>, %b: tensor<4xf32>)
        -> (tensor<1x1x1xf32>, tensor<1x1xf32>, tensor<1x1xf32>) {
      %out, %h, %c = loom.lstm %x, %h0, %c0, %wih, %whh, %b
          : tensor<1x1x1xf32>, tensor<1x1xf32>, tensor<1x1xf32>,
            tensor<1x4xf32>, tensor<1x4xf32>, tensor<4xf32>
      return %out, %h, %c : tensor<1x1x1xf32>, tensor<1x1xf32>, tensor<1x1xf32>
    })mlir",
                {array({1, 1, 1}, {0.5}), array({1, 1}, {0.1}),
                 array({1, 1}, {0.2}), array({1, 4}, {0.1, -0.2, 0.3, 0.4}),
                 array({1, 4}, {0.5, 0.6, -0.7, 0.8}),
                 array({4}, {0.01, 0.02, 0.03, -0.04})});
  ASSERT_EQ(r.size(), 3u);
  auto sigmoid = [](double z) { return 1 / (1 + std::exp(-z)); };
  double i = sigmoid(0.5 * 0.1 + 0.1 * 0.5 + 0.01);    // z = 0.11
  double f = sigmoid(0.5 * -0.2 + 0.1 * 0.6 + 0.02);   // z = -0.02
  double g = std::tanh(0.5 * 0.3 + 0.1 * -0.7 + 0.03); // z = 0.11
  double o = sigmoid(0.5 * 0.4 + 0.1 * 0.8 + -0.04);   // z = 0.24
  double c = f * 0.2 + i * g;
  double h = o * std::tanh(c);
  EXPECT_NEAR(r[0].data[0], h, kTol);
  EXPECT_NEAR(r[1].data[0], h, kTol);
  EXPECT_NEAR(r[2].data[0], c, kTol);
}

TEST_F(ReferenceTest, LstmTwoStepsCarryState) {
  // B = 2, T = 2, I = 3, H = 2, random weights: the last output is h_n, and
  // running the two steps as two calls of T = 1 gives the same.
  Array x = random({2, 2, 3}), h0 = random({2, 2}), c0 = random({2, 2}),
        wih = random({3, 8}), whh = random({2, 8}), b = random({8});
  const char *source = R"mlir(
    func.func @f(%x: tensor<2x2x3xf32>, %h0: tensor<2x2xf32>, %c0: tensor<2x2xf32>,
                 %wih: tensor<3x8xf32>, %whh: tensor<2x8xf32>, %b: tensor<8xf32>)
        -> (tensor<2x2x2xf32>, tensor<2x2xf32>, tensor<2x2xf32>,
            tensor<2x1x2xf32>, tensor<2x2xf32>) {
      %out, %h, %c = loom.lstm %x, %h0, %c0, %wih, %whh, %b
          : tensor<2x2x3xf32>, tensor<2x2xf32>, tensor<2x2xf32>,
            tensor<3x8xf32>, tensor<2x8xf32>, tensor<8xf32>
      %x0 = loom.slice %x, axis = 1, start = 0, end = 1 : tensor<2x2x3xf32>
      %x1 = loom.slice %x, axis = 1, start = 1, end = 2 : tensor<2x2x3xf32>
      %o0, %h1, %c1 = loom.lstm %x0, %h0, %c0, %wih, %whh, %b
          : tensor<2x1x3xf32>, tensor<2x2xf32>, tensor<2x2xf32>,
            tensor<3x8xf32>, tensor<2x8xf32>, tensor<8xf32>
      %o1, %h2, %c2 = loom.lstm %x1, %h1, %c1, %wih, %whh, %b
          : tensor<2x1x3xf32>, tensor<2x2xf32>, tensor<2x2xf32>,
            tensor<3x8xf32>, tensor<2x8xf32>, tensor<8xf32>
      return %out, %h, %c, %o1, %c2 : tensor<2x2x2xf32>, tensor<2x2xf32>,
          tensor<2x2xf32>, tensor<2x1x2xf32>, tensor<2x2xf32>
    })mlir";
  auto r = eval(source, {x, h0, c0, wih, whh, b});
  ASSERT_EQ(r.size(), 5u);
  for (int bi = 0; bi < 2; ++bi)
    for (int j = 0; j < 2; ++j) {
      EXPECT_EQ(r[0].data[(bi * 2 + 1) * 2 + j], r[1].data[bi * 2 + j]);
      EXPECT_NEAR(r[3].data[bi * 2 + j], r[1].data[bi * 2 + j], kTol);
      EXPECT_NEAR(r[4].data[bi * 2 + j], r[2].data[bi * 2 + j], kTol);
    }
}

//===----------------------------------------------------------------------===//
// Dropout
//===----------------------------------------------------------------------===//

/// The mask of loom.dropout, written again from its description.
bool keepsBySpec(uint64_t seed, uint64_t site, uint64_t i, double rate) {
  uint64_t x = seed + site * 0x9E3779B97F4A7C15ull + i * 0xD1B54A32D192ED03ull;
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return std::ldexp(double(x >> 40), -24) >= rate;
}

constexpr const char *kDropout = R"mlir(
    func.func @f(%x: tensor<100x100xf32>, %s: tensor<i64>)
        -> (tensor<100x100xf32>, tensor<100x100xf32>) {
      %0 = loom.dropout %x, %s, rate = 2.500000e-01, site = 0 : tensor<100x100xf32>
      %1 = loom.dropout %x, %s, rate = 2.500000e-01, site = 1 : tensor<100x100xf32>
      return %0, %1 : tensor<100x100xf32>, tensor<100x100xf32>
    })mlir";

TEST_F(ReferenceTest, DropoutIsDeterministicPerSeedAndSite) {
  // Inputs in [1, 2), never zero, so a zero output is a dropped element.
  Array x = random({100, 100}, 1.0, 2.0);
  Array seed = array({}, {42});
  seed.elementType = IntegerType::get(&context, 64);
  auto first = eval(kDropout, {x, seed});
  auto again = eval(kDropout, {x, seed});
  auto other = eval(kDropout, {x, array({}, {43})});
  ASSERT_EQ(first.size(), 2u);
  ASSERT_EQ(again.size(), 2u);
  ASSERT_EQ(other.size(), 2u);
  EXPECT_EQ(first[0].data, again[0].data);
  EXPECT_EQ(first[1].data, again[1].data);
  EXPECT_NE(first[0].data, first[1].data); // sites draw their own masks
  EXPECT_NE(first[0].data, other[0].data); // so do seeds

  int64_t kept = 0, sameAcrossSites = 0;
  for (int64_t i = 0; i < 10000; ++i) {
    bool keep = first[0].data[i] != 0;
    EXPECT_EQ(keep, keepsBySpec(42, 0, i, 0.25)) << i;
    EXPECT_EQ(keep, loom::reference::dropoutKeeps(42, 0, i, 0.25)) << i;
    EXPECT_EQ(first[1].data[i] != 0, keepsBySpec(42, 1, i, 0.25)) << i;
    if (keep) {
      ++kept;
      EXPECT_NEAR(first[0].data[i], x.data[i] / 0.75, kTol);
    }
    sameAcrossSites += keep == (first[1].data[i] != 0);
  }
  // 7500 expected; the binomial standard deviation is about 43.
  EXPECT_NEAR(double(kept), 7500.0, 250.0);
  // Independent masks agree on about 0.75^2 + 0.25^2 = 62.5%.
  EXPECT_NEAR(double(sameAcrossSites), 6250.0, 300.0);
}

TEST_F(ReferenceTest, DropoutSeedsAreReinterpretedAsUnsigned) {
  // -5 as uint64 is 2^64 - 5.
  Array x = random({64}, 1.0, 2.0);
  const char *source = R"mlir(
    func.func @f(%x: tensor<64xf32>, %s: tensor<i64>) -> tensor<64xf32> {
      %0 = loom.dropout %x, %s, rate = 5.000000e-01, site = 3 : tensor<64xf32>
      return %0 : tensor<64xf32>
    })mlir";
  auto r = eval(source, {x, array({}, {-5})});
  ASSERT_EQ(r.size(), 1u);
  for (uint64_t i = 0; i < 64; ++i)
    EXPECT_EQ(r[0].data[i] != 0, keepsBySpec(~uint64_t(4), 3, i, 0.5)) << i;
  // A seed a double may have rounded is refused rather than used.
  std::string message = error(source, {x, array({}, {0x1p60})});
  EXPECT_TRUE(contains(message, "loom.dropout")) << message;
  EXPECT_TRUE(contains(message, "2^53")) << message;
}

//===----------------------------------------------------------------------===//
// Parameters, calls, constants
//===----------------------------------------------------------------------===//

TEST_F(ReferenceTest, ParametersCallsAndSplatConstants) {
  Array w = random({3, 2}), x = random({2, 3});
  auto r = eval(R"mlir(
    loom.parameter @"lin.weight" : tensor<3x2xf32> init = {kind = "zeros"}
    func.func @lin(%x: tensor<2x3xf32>) -> tensor<2x2xf32> {
      %w = loom.get_parameter @"lin.weight" : tensor<3x2xf32>
      %0 = loom.matmul %x, %w : tensor<2x3xf32>, tensor<3x2xf32>
      return %0 : tensor<2x2xf32>
    }
    func.func @f(%x: tensor<2x3xf32>) -> tensor<2x2xf32> {
      %0 = func.call @lin(%x) : (tensor<2x3xf32>) -> tensor<2x2xf32>
      %one = loom.constant dense<[[1.0, 2.0]]> : tensor<1x2xf32>
      %1 = loom.add %0, %one : tensor<2x2xf32>, tensor<1x2xf32>
      return %1 : tensor<2x2xf32>
    })mlir",
                {x}, {{"lin.weight", w}});
  ASSERT_EQ(r.size(), 1u);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      double sum = j + 1.0;
      for (int k = 0; k < 3; ++k)
        sum += x.data[i * 3 + k] * w.data[k * 2 + j];
      EXPECT_NEAR(r[0].data[i * 2 + j], sum, kTol);
    }
}

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//

TEST_F(ReferenceTest, UnknownOpIsAnError) {
  context.allowUnregisteredDialects();
  std::string message = error(R"mlir(
    func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
      %0 = "mystery.op"(%x) : (tensor<2xf32>) -> tensor<2xf32>
      return %0 : tensor<2xf32>
    })mlir",
                              {random({2})});
  EXPECT_TRUE(contains(message, "mystery.op")) << message;
  EXPECT_TRUE(contains(message, "\"test.mlir\":3:")) << message;
}

TEST_F(ReferenceTest, DynamicShapesAreAnError) {
  std::string message = error(R"mlir(
    func.func @f() -> tensor<?xi32> {
      %0 = loom.arange size = -1 : tensor<?xi32>
      return %0 : tensor<?xi32>
    })mlir",
                              {});
  EXPECT_TRUE(contains(message, "loom.arange")) << message;
  EXPECT_TRUE(contains(message, "static")) << message;

  message = error(R"mlir(
    func.func @f(%x: tensor<?xf32>) -> tensor<?xf32> {
      %0 = loom.exp %x : tensor<?xf32>
      return %0 : tensor<?xf32>
    })mlir",
                  {random({2})});
  EXPECT_TRUE(contains(message, "argument #0")) << message;
}

TEST_F(ReferenceTest, BoolAndBf16ConstantsAndHugeResults) {
  auto r = eval(R"mlir(
    func.func @f() -> (tensor<3xi1>, tensor<2xbf16>, tensor<2x2xi32>) {
      %0 = loom.constant dense<[true, false, true]> : tensor<3xi1>
      %1 = loom.constant dense<[1.5, -0.25]> : tensor<2xbf16>
      %2 = loom.constant dense<-7> : tensor<2x2xi32>
      return %0, %1, %2 : tensor<3xi1>, tensor<2xbf16>, tensor<2x2xi32>
    })mlir",
                {});
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].data, (std::vector<double>{1, 0, 1}));
  EXPECT_EQ(r[1].data, (std::vector<double>{1.5, -0.25}));
  EXPECT_TRUE(r[1].elementType.isBF16());
  EXPECT_EQ(r[2].data, (std::vector<double>{-7, -7, -7, -7}));

  std::string message = error(R"mlir(
    func.func @f() -> tensor<100000x100000x100000xf32> {
      %0 = loom.fill value = 1.0 : tensor<100000x100000x100000xf32>
      return %0 : tensor<100000x100000x100000xf32>
    })mlir",
                              {});
  EXPECT_TRUE(contains(message, "loom.fill")) << message;
  EXPECT_TRUE(contains(message, "too large")) << message;
}

TEST_F(ReferenceTest, BadArgumentsAndMissingParametersAreErrors) {
  const char *source = R"mlir(
    loom.parameter @w : tensor<2xf32> init = {kind = "ones"}
    func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
      %w = loom.get_parameter @w : tensor<2xf32>
      %0 = loom.mul %x, %w : tensor<2xf32>, tensor<2xf32>
      return %0 : tensor<2xf32>
    })mlir";
  std::string message = error(source, {});
  EXPECT_TRUE(contains(message, "takes 1 arguments, got 0")) << message;
  message = error(source, {random({3})});
  EXPECT_TRUE(contains(message, "argument #0 has shape [3]")) << message;
  message = error(source, {random({2})});
  EXPECT_TRUE(contains(message, "loom.get_parameter")) << message;
  EXPECT_TRUE(contains(message, "missing parameter 'w'")) << message;
  message = error(source, {random({2})}, {{"w", random({2, 1})}});
  EXPECT_TRUE(contains(message, "parameter 'w' has shape [2, 1]")) << message;
  EXPECT_EQ(eval(source, {array({2}, {1, 2})}, {{"w", array({2}, {3, 4})}})
                .at(0)
                .data,
            (std::vector<double>{3, 8}));
  // No function of that name.
  module = parse(source);
  ASSERT_TRUE(module);
  llvm::Expected<std::vector<Array>> missing =
      loom::reference::evaluate(*module, "g", {}, {});
  ASSERT_FALSE(missing);
  EXPECT_TRUE(contains(llvm::toString(missing.takeError()), "'g'"));
}

//===----------------------------------------------------------------------===//
// Gradient checks of the fused backward ops (LoomGradOps.td)
//===----------------------------------------------------------------------===//
//
// Each module has a @loss that runs the forward op and contracts its
// result(s) with random tensors W to a scalar, sum(result * W), and a @grad
// that runs the backward op with d_result = W. The backward op's answer is
// compared with central differences of @loss, all in double precision: each
// element x moves by h = 1e-6 * max(1, |x|), and the error is
// max |analytic - numeric| / max(max |analytic|, max |numeric|, 1e-8), which
// must stay below kGradTol.

constexpr double kGradStep = 1e-6;
constexpr double kGradTol = 1e-6;

double maxAbs(const std::vector<double> &v) {
  double m = 0.0;
  for (double x : v)
    m = std::max(m, std::fabs(x));
  return m;
}

/// max |a - b| / max(max |a|, max |b|, 1e-8)
double relativeError(const std::vector<double> &a,
                     const std::vector<double> &b) {
  if (a.size() != b.size())
    return kInfinity;
  double diff = 0.0;
  for (size_t i = 0; i < a.size(); ++i)
    diff = std::max(diff, std::fabs(a[i] - b[i]));
  if (std::isnan(diff))
    return kInfinity;
  return diff / std::max({maxAbs(a), maxAbs(b), 1e-8});
}

class ReferenceGradTest : public ReferenceTest {
protected:
  /// Parses `source` into `module`.
  bool load(StringRef source) {
    module = parse(source);
    EXPECT_TRUE(module) << source.str();
    return bool(module);
  }

  /// Evaluates the function `name` of `module` on `args`.
  std::vector<Array> call(StringRef name, const std::vector<Array> &args) {
    llvm::Expected<std::vector<Array>> results =
        loom::reference::evaluate(*module, name, args, {});
    if (!results) {
      ADD_FAILURE() << llvm::toString(results.takeError());
      return {};
    }
    return std::move(*results);
  }

  /// @loss of `module` at `args`.
  double loss(const std::vector<Array> &args) {
    std::vector<Array> r = call("loss", args);
    if (r.size() != 1 || r[0].data.size() != 1)
      return std::nan("");
    return r[0].data[0];
  }

  /// Central differences of @loss with respect to argument `which`.
  std::vector<double> numericGradient(std::vector<Array> args, size_t which) {
    std::vector<double> grad(args[which].data.size());
    for (size_t i = 0; i < grad.size(); ++i) {
      double x = args[which].data[i];
      double h = kGradStep * std::max(1.0, std::fabs(x));
      args[which].data[i] = x + h;
      double up = loss(args);
      args[which].data[i] = x - h;
      double down = loss(args);
      args[which].data[i] = x;
      grad[i] = (up - down) / (2 * h);
    }
    return grad;
  }

  /// Checks `analytic`, the gradient of @loss with respect to argument
  /// `which`, against central differences; records the error as a test
  /// property named `what` and returns it.
  double expectGradient(const std::vector<Array> &args, size_t which,
                        const Array &analytic, const std::string &what) {
    EXPECT_EQ(analytic.shape, args[which].shape) << what;
    std::vector<double> numeric = numericGradient(args, which);
    double error = relativeError(analytic.data, numeric);
    char text[32];
    std::snprintf(text, sizeof text, "%.3g", error);
    RecordProperty(what, text);
    EXPECT_LT(error, kGradTol) << what;
    // A gradient that is zero everywhere would check nothing.
    EXPECT_GT(maxAbs(numeric), 1e-3) << what;
    return error;
  }
};

/// The attention modules: q [2, 2, 3, 4], k [2, 2, 4, 4], v [2, 2, 4, 3]
/// (Tq = 3 < Tk = 4, Dv = 3 != D = 4), scale 0.5, an optional key mask
/// [2, 4]; @grad returns d_q, d_k, d_v and lse.
std::string attentionSource(bool causal, bool mask) {
  std::string c = causal ? "true" : "false";
  std::string maskArg = mask ? " %m: tensor<2x4xi1>," : "";
  std::string maskOperand = mask ? " mask %m," : "";
  std::string maskType = mask ? ", tensor<2x4xi1>" : "";
  std::string args = "(%q: tensor<2x2x3x4xf64>, %k: tensor<2x2x4x4xf64>, "
                     "%v: tensor<2x2x4x3xf64>," +
                     maskArg + " %w: tensor<2x2x3x3xf64>)";
  std::string attention =
      "%o = loom.attention %q, %k, %v," + maskOperand + " causal = " + c +
      ", scale = 5.000000e-01 : tensor<2x2x3x4xf64>, tensor<2x2x4x4xf64>, "
      "tensor<2x2x4x3xf64>" +
      maskType + "\n";
  return "func.func @loss" + args + " -> tensor<f64> {\n" + attention +
         "%p = loom.mul %o, %w : tensor<2x2x3x3xf64>, tensor<2x2x3x3xf64>\n"
         "%s = loom.reduce_sum %p, axes = [0, 1, 2, 3], keepdim = false "
         ": tensor<2x2x3x3xf64>\n"
         "return %s : tensor<f64>\n}\n"
         "func.func @grad" +
         args +
         " -> (tensor<2x2x3x4xf64>, tensor<2x2x4x4xf64>, "
         "tensor<2x2x4x3xf64>, tensor<2x2x3xf64>) {\n" +
         attention + "%lse = loom.attention_lse %q, %k," + maskOperand +
         " causal = " + c +
         ", scale = 5.000000e-01 : tensor<2x2x3x4xf64>, "
         "tensor<2x2x4x4xf64>" +
         maskType +
         " -> tensor<2x2x3xf64>\n"
         "%dq, %dk, %dv = loom.attention_grad %q, %k, %v, %o, %lse, %w," +
         maskOperand + " causal = " + c +
         ", scale = 5.000000e-01 : tensor<2x2x3x4xf64>, tensor<2x2x4x4xf64>, "
         "tensor<2x2x4x3xf64>, tensor<2x2x3x3xf64>, tensor<2x2x3xf64>" +
         maskType +
         "\n"
         "return %dq, %dk, %dv, %lse : tensor<2x2x3x4xf64>, "
         "tensor<2x2x4x4xf64>, tensor<2x2x4x3xf64>, tensor<2x2x3xf64>\n}\n";
}

TEST_F(ReferenceGradTest, AttentionGradMatchesFiniteDifferences) {
  // Batch entry 0 masks key 1, entry 1 keys 0 and 1: with causal = true
  // (query i sees keys j <= i + 1), query 0 of entry 1 attends no key.
  Array maskValues = array({2, 4}, {1, 0, 1, 1, 0, 0, 1, 1});
  for (bool causal : {false, true})
    for (bool mask : {false, true}) {
      std::string name = std::string("attention") + (causal ? "_causal" : "") +
                         (mask ? "_mask" : "");
      SCOPED_TRACE(name);
      ASSERT_TRUE(load(attentionSource(causal, mask)));
      std::vector<Array> args = {random({2, 2, 3, 4}), random({2, 2, 4, 4}),
                                 random({2, 2, 4, 3})};
      if (mask)
        args.push_back(maskValues);
      args.push_back(random({2, 2, 3, 3}));
      std::vector<Array> r = call("grad", args);
      ASSERT_EQ(r.size(), 4u);
      for (size_t which = 0; which < 3; ++which)
        expectGradient(args, which, r[which],
                       name + "_d" + std::string(1, "qkv"[which]));

      // lse by its definition: the log of the plain sum of exp over the
      // attended keys, 0 where none is attended.
      const Array &q = args[0], &k = args[1], &lse = r[3];
      for (int n = 0; n < 4; ++n)
        for (int i = 0; i < 3; ++i) {
          double sum = 0.0;
          bool any = false;
          for (int j = 0; j < 4; ++j) {
            if ((causal && j > i + 1) ||
                (mask && maskValues.data[(n / 2) * 4 + j] == 0))
              continue;
            double dot = 0.0;
            for (int d = 0; d < 4; ++d)
              dot += q.data[(n * 3 + i) * 4 + d] * k.data[(n * 4 + j) * 4 + d];
            sum += std::exp(0.5 * dot);
            any = true;
          }
          EXPECT_NEAR(lse.data[n * 3 + i], any ? std::log(sum) : 0.0, 1e-12)
              << "n " << n << ", i " << i;
        }
      if (causal && mask) {
        // Query 0 of batch entry 1 (both heads) attends nothing.
        for (int n = 2; n < 4; ++n) {
          EXPECT_EQ(lse.data[n * 3], 0.0);
          for (int d = 0; d < 4; ++d)
            EXPECT_EQ(r[0].data[(n * 3) * 4 + d], 0.0);
        }
      }
    }
}

TEST_F(ReferenceGradTest, CrossEntropyGradMatchesFiniteDifferences) {
  ASSERT_TRUE(load(R"mlir(
    func.func @loss(%l: tensor<2x3x5xf64>, %t: tensor<2x3xi32>, %w: tensor<f64>)
        -> tensor<f64> {
      %0 = loom.cross_entropy %l, %t, ignore_index = -100
          : tensor<2x3x5xf64>, tensor<2x3xi32>
      %1 = loom.mul %0, %w : tensor<f64>, tensor<f64>
      return %1 : tensor<f64>
    }
    func.func @grad(%l: tensor<2x3x5xf64>, %t: tensor<2x3xi32>, %w: tensor<f64>)
        -> tensor<2x3x5xf64> {
      %0 = loom.cross_entropy_grad %l, %t, %w, ignore_index = -100
          : tensor<2x3x5xf64>, tensor<2x3xi32>, tensor<f64>
      return %0 : tensor<2x3x5xf64>
    })mlir"));
  std::vector<Array> args = {random({2, 3, 5}),
                             array({2, 3}, {1, -100, 4, 0, 3, -100}),
                             random({}, 0.5, 2.0)};
  std::vector<Array> r = call("grad", args);
  ASSERT_EQ(r.size(), 1u);
  expectGradient(args, 0, r[0], "cross_entropy_d_logits");
  for (int p : {1, 5}) // ignored positions
    for (int c = 0; c < 5; ++c)
      EXPECT_EQ(r[0].data[p * 5 + c], 0.0);

  // Every position ignored: the loss is NaN, the gradient all zeros.
  args[1] = array({2, 3}, {-100, -100, -100, -100, -100, -100});
  r = call("grad", args);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(maxAbs(r[0].data), 0.0);
}

TEST_F(ReferenceGradTest, LayerNormGradMatchesFiniteDifferences) {
  ASSERT_TRUE(load(R"mlir(
    func.func @loss(%x: tensor<3x5xf64>, %g: tensor<5xf64>, %b: tensor<5xf64>,
                    %w: tensor<3x5xf64>) -> tensor<f64> {
      %0 = loom.layer_norm %x, %g, %b, eps = 1.000000e-05
          : tensor<3x5xf64>, tensor<5xf64>, tensor<5xf64>
      %1 = loom.mul %0, %w : tensor<3x5xf64>, tensor<3x5xf64>
      %2 = loom.reduce_sum %1, axes = [0, 1], keepdim = false : tensor<3x5xf64>
      return %2 : tensor<f64>
    }
    func.func @grad(%x: tensor<3x5xf64>, %g: tensor<5xf64>, %b: tensor<5xf64>,
                    %w: tensor<3x5xf64>)
        -> (tensor<3x5xf64>, tensor<5xf64>, tensor<5xf64>) {
      %dx, %dg, %db = loom.layer_norm_grad %x, %g, %w, eps = 1.000000e-05
          : tensor<3x5xf64>, tensor<5xf64>
      return %dx, %dg, %db : tensor<3x5xf64>, tensor<5xf64>, tensor<5xf64>
    })mlir"));
  std::vector<Array> args = {random({3, 5}), random({5}), random({5}),
                             random({3, 5})};
  std::vector<Array> r = call("grad", args);
  ASSERT_EQ(r.size(), 3u);
  expectGradient(args, 0, r[0], "layer_norm_d_input");
  expectGradient(args, 1, r[1], "layer_norm_d_gamma");
  expectGradient(args, 2, r[2], "layer_norm_d_beta");
}

TEST_F(ReferenceGradTest, GeluGradMatchesFiniteDifferences) {
  for (bool approximate : {false, true}) {
    std::string a = approximate ? "true" : "false";
    SCOPED_TRACE("approximate = " + a);
    ASSERT_TRUE(load(R"mlir(
      func.func @loss(%x: tensor<3x4xf64>, %w: tensor<3x4xf64>) -> tensor<f64> {
        %0 = loom.gelu %x, approximate = )mlir" +
                     a + R"mlir( : tensor<3x4xf64>
        %1 = loom.mul %0, %w : tensor<3x4xf64>, tensor<3x4xf64>
        %2 = loom.reduce_sum %1, axes = [0, 1], keepdim = false : tensor<3x4xf64>
        return %2 : tensor<f64>
      }
      func.func @grad(%x: tensor<3x4xf64>, %w: tensor<3x4xf64>) -> tensor<3x4xf64> {
        %0 = loom.gelu_grad %x, %w, approximate = )mlir" +
                     a + R"mlir( : tensor<3x4xf64>
        return %0 : tensor<3x4xf64>
      })mlir"));
    std::vector<Array> args = {random({3, 4}, -3.0, 3.0), random({3, 4})};
    std::vector<Array> r = call("grad", args);
    ASSERT_EQ(r.size(), 1u);
    expectGradient(args, 0, r[0], "gelu_" + a + "_d_input");
  }
}

TEST_F(ReferenceGradTest, EmbeddingGradMatchesFiniteDifferences) {
  ASSERT_TRUE(load(R"mlir(
    func.func @loss(%t: tensor<5x3xf64>, %ids: tensor<2x3xi32>,
                    %w: tensor<2x3x3xf64>) -> tensor<f64> {
      %0 = loom.embedding %t, %ids : tensor<5x3xf64>, tensor<2x3xi32>
      %1 = loom.mul %0, %w : tensor<2x3x3xf64>, tensor<2x3x3xf64>
      %2 = loom.reduce_sum %1, axes = [0, 1, 2], keepdim = false
          : tensor<2x3x3xf64>
      return %2 : tensor<f64>
    }
    func.func @grad(%t: tensor<5x3xf64>, %ids: tensor<2x3xi32>,
                    %w: tensor<2x3x3xf64>) -> tensor<5x3xf64> {
      %0 = loom.embedding_grad %ids, %w, vocab = 5
          : tensor<2x3xi32>, tensor<2x3x3xf64> -> tensor<5x3xf64>
      return %0 : tensor<5x3xf64>
    })mlir"));
  // Id 1 three times, 4 twice, 0 once; 2 and 3 never.
  std::vector<Array> args = {random({5, 3}), array({2, 3}, {1, 4, 1, 0, 1, 4}),
                             random({2, 3, 3})};
  std::vector<Array> r = call("grad", args);
  ASSERT_EQ(r.size(), 1u);
  expectGradient(args, 0, r[0], "embedding_d_table");
  for (int row : {2, 3})
    for (int d = 0; d < 3; ++d)
      EXPECT_EQ(r[0].data[row * 3 + d], 0.0);
  for (int d = 0; d < 3; ++d) // row 1 = the sum of positions 0, 2 and 4
    EXPECT_NEAR(r[0].data[1 * 3 + d],
                args[2].data[0 * 3 + d] + args[2].data[2 * 3 + d] +
                    args[2].data[4 * 3 + d],
                kTol);
}

TEST_F(ReferenceGradTest, LstmGradMatchesFiniteDifferences) {
  // B = 2, T = 3, I = 3, H = 2; every result is contracted with its own W.
  ASSERT_TRUE(load(R"mlir(
    func.func @loss(%x: tensor<2x3x3xf64>, %h0: tensor<2x2xf64>,
                    %c0: tensor<2x2xf64>, %wih: tensor<3x8xf64>,
                    %whh: tensor<2x8xf64>, %b: tensor<8xf64>,
                    %w1: tensor<2x3x2xf64>, %w2: tensor<2x2xf64>,
                    %w3: tensor<2x2xf64>) -> tensor<f64> {
      %out, %h, %c = loom.lstm %x, %h0, %c0, %wih, %whh, %b
          : tensor<2x3x3xf64>, tensor<2x2xf64>, tensor<2x2xf64>,
            tensor<3x8xf64>, tensor<2x8xf64>, tensor<8xf64>
      %0 = loom.mul %out, %w1 : tensor<2x3x2xf64>, tensor<2x3x2xf64>
      %1 = loom.reduce_sum %0, axes = [0, 1, 2], keepdim = false
          : tensor<2x3x2xf64>
      %2 = loom.mul %h, %w2 : tensor<2x2xf64>, tensor<2x2xf64>
      %3 = loom.reduce_sum %2, axes = [0, 1], keepdim = false : tensor<2x2xf64>
      %4 = loom.mul %c, %w3 : tensor<2x2xf64>, tensor<2x2xf64>
      %5 = loom.reduce_sum %4, axes = [0, 1], keepdim = false : tensor<2x2xf64>
      %6 = loom.add %1, %3 : tensor<f64>, tensor<f64>
      %7 = loom.add %6, %5 : tensor<f64>, tensor<f64>
      return %7 : tensor<f64>
    }
    func.func @grad(%x: tensor<2x3x3xf64>, %h0: tensor<2x2xf64>,
                    %c0: tensor<2x2xf64>, %wih: tensor<3x8xf64>,
                    %whh: tensor<2x8xf64>, %b: tensor<8xf64>,
                    %w1: tensor<2x3x2xf64>, %w2: tensor<2x2xf64>,
                    %w3: tensor<2x2xf64>)
        -> (tensor<2x3x3xf64>, tensor<2x2xf64>, tensor<2x2xf64>,
            tensor<3x8xf64>, tensor<2x8xf64>, tensor<8xf64>) {
      %dx, %dh0, %dc0, %dwih, %dwhh, %db = loom.lstm_grad %x, %h0, %c0, %wih,
          %whh, %b, %w1, %w2, %w3
          : tensor<2x3x3xf64>, tensor<2x2xf64>, tensor<2x2xf64>,
            tensor<3x8xf64>, tensor<2x8xf64>, tensor<8xf64>, tensor<2x3x2xf64>
      return %dx, %dh0, %dc0, %dwih, %dwhh, %db
          : tensor<2x3x3xf64>, tensor<2x2xf64>, tensor<2x2xf64>,
            tensor<3x8xf64>, tensor<2x8xf64>, tensor<8xf64>
    })mlir"));
  std::vector<Array> args = {random({2, 3, 3}), random({2, 2}), random({2, 2}),
                             random({3, 8}),    random({2, 8}), random({8}),
                             random({2, 3, 2}), random({2, 2}), random({2, 2})};
  std::vector<Array> r = call("grad", args);
  ASSERT_EQ(r.size(), 6u);
  const char *names[] = {"d_input", "d_h0",   "d_c0",
                         "d_w_ih",  "d_w_hh", "d_bias"};
  for (size_t which = 0; which < 6; ++which)
    expectGradient(args, which, r[which], std::string("lstm_") + names[which]);
}

TEST_F(ReferenceGradTest, BadInputsOfBackwardOpsAreErrors) {
  // An embedding_grad id out of [0, vocab).
  std::string message = error(R"mlir(
    func.func @f(%ids: tensor<2x2xi32>, %dy: tensor<2x2x3xf32>) -> tensor<5x3xf32> {
      %0 = loom.embedding_grad %ids, %dy, vocab = 5
          : tensor<2x2xi32>, tensor<2x2x3xf32> -> tensor<5x3xf32>
      return %0 : tensor<5x3xf32>
    })mlir",
                              {array({2, 2}, {0, 1, 2, 5}), random({2, 2, 3})});
  EXPECT_TRUE(contains(message, "loom.embedding_grad")) << message;
  EXPECT_TRUE(contains(message, "\"test.mlir\":3:")) << message;
  EXPECT_TRUE(contains(message, "id 5 at ids[1, 1]")) << message;

  // A cross_entropy_grad target out of range that is not ignore_index.
  message = error(R"mlir(
    func.func @f(%l: tensor<3x4xf32>, %t: tensor<3xi32>, %d: tensor<f32>)
        -> tensor<3x4xf32> {
      %0 = loom.cross_entropy_grad %l, %t, %d, ignore_index = -100
          : tensor<3x4xf32>, tensor<3xi32>, tensor<f32>
      return %0 : tensor<3x4xf32>
    })mlir",
                  {random({3, 4}), array({3}, {0, -1, 1}), random({})});
  EXPECT_TRUE(contains(message, "loom.cross_entropy_grad")) << message;
  EXPECT_TRUE(contains(message, "target -1")) << message;

  // lstm_grad weights that do not fit h0 (w_ih [3, 6] with H = 2) never
  // reach the evaluator: the verifier rejects them (see
  // tests/lit/ir/grad-ops.mlir).
  EXPECT_FALSE(parse(R"mlir(
    func.func @f(%x: tensor<1x2x3xf32>, %h: tensor<1x2xf32>,
                 %wih: tensor<3x6xf32>, %whh: tensor<2x8xf32>,
                 %b: tensor<8xf32>, %dout: tensor<1x2x2xf32>)
        -> tensor<1x2x3xf32> {
      %0:6 = loom.lstm_grad %x, %h, %h, %wih, %whh, %b, %dout, %h, %h
          : tensor<1x2x3xf32>, tensor<1x2xf32>, tensor<1x2xf32>,
            tensor<3x6xf32>, tensor<2x8xf32>, tensor<8xf32>, tensor<1x2x2xf32>
      return %0#0 : tensor<1x2x3xf32>
    })mlir"));
}

} // namespace
