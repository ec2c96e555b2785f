//===- RuntimeTest.cpp - Runtime core unit tests --------------------------===//
//
// Status/Result, tensors and dtype conversions, the flat parameter store and
// its deterministic initializers, the JSON subset parser, and safetensors
// checkpoints: a bit-exact round trip, one test per kind of corruption, and a
// small fuzz loop (random buffers, single-byte mutations).
//
//===----------------------------------------------------------------------===//

#include "loom/Checkpoint.h"
#include "loom/Params.h"
#include "loom/Status.h"
#include "loom/Tensor.h"
#include "runtime/Json.h"
#include "tests/TempDir.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdlib.h>

using namespace loom;

namespace {

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

/// Scratch directories of this file's tests.
class TempDir : public loom::testing::TempDir {
public:
  TempDir() : loom::testing::TempDir("loom-runtime-test") {}
};

std::string readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void writeBytes(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// A safetensors file: the length of `header`, `header`, then `dataBytes`
/// bytes of data (0, 1, 2, ...).
std::string makeFile(const std::string &header, size_t dataBytes) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<char>(uint64_t(header.size()) >> (8 * i));
  out += header;
  for (size_t i = 0; i < dataBytes; ++i)
    out += static_cast<char>(i);
  return out;
}

/// One header entry.
std::string entry(const std::string &name, const std::string &dtype,
                  const std::string &shape, uint64_t begin, uint64_t end) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":[" + std::to_string(begin) + "," +
         std::to_string(end) + "]}";
}

/// The small model of the corruption tests: wte.weight f32 [4, 8] (128
/// bytes) and ln.bias f32 [8] (32 bytes).
ParamStore smallModel() {
  Result<ParamStore> store =
      ParamStore::create({{"wte.weight", DType::F32, {4, 8}, {"zeros", {}}},
                          {"ln.bias", DType::F32, {8}, {"zeros", {}}}});
  EXPECT_TRUE(store.ok()) << store.status().message();
  return std::move(store).value();
}

/// The valid header for smallModel(), with 160 data bytes.
std::string goodHeader() {
  return "{" + entry("wte.weight", "F32", "[4,8]", 0, 128) + "," +
         entry("ln.bias", "F32", "[8]", 128, 160) + "}";
}

/// Writes `bytes` to a file in `dir`, loads it into smallModel() and returns
/// the status; also checks a failed load leaves the store untouched.
Status loadBytes(const TempDir &dir, const std::string &bytes) {
  std::string path = dir.file("model.safetensors");
  writeBytes(path, bytes);
  ParamStore store = smallModel();
  std::memset(store.data(), 0x5a, store.totalBytes());
  Status status = loadCheckpoint(path, store);
  if (!status.ok())
    for (size_t i = 0; i < store.totalBytes(); ++i)
      if (store.data()[i] != std::byte{0x5a}) {
        ADD_FAILURE() << "a failed load changed byte " << i;
        break;
      }
  return status;
}

/// Expects an error whose message holds every one of `parts`.
void expectError(const Status &status,
                 std::initializer_list<std::string> parts) {
  ASSERT_FALSE(status.ok())
      << "expected an error mentioning " << *parts.begin();
  for (const std::string &part : parts)
    EXPECT_NE(status.message().find(part), std::string::npos)
        << "message: " << status.message() << "\nmissing: " << part;
}

std::vector<float> floats(const ParamStore &store, size_t index) {
  Tensor t = store.tensor(index);
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

double meanOf(const std::vector<float> &v) {
  double sum = 0;
  for (float x : v)
    sum += x;
  return sum / v.size();
}

double stdOf(const std::vector<float> &v) {
  double mean = meanOf(v), sum = 0;
  for (float x : v)
    sum += (x - mean) * (x - mean);
  return std::sqrt(sum / v.size());
}

/// A store with one parameter `name` of `shape`, initialized with `init`.
ParamStore initialized(const InitSpec &init, std::vector<int64_t> shape,
                       DType dtype = DType::F32, uint64_t seed = 1,
                       const std::string &name = "w") {
  Result<ParamStore> store =
      ParamStore::create({{name, dtype, std::move(shape), init}});
  EXPECT_TRUE(store.ok()) << store.status().message();
  Status status = store->initialize(seed);
  EXPECT_TRUE(status.ok()) << status.message();
  return std::move(store).value();
}

//===----------------------------------------------------------------------===//
// Status
//===----------------------------------------------------------------------===//

TEST(RuntimeStatusTest, OkErrorAndContext) {
  Status ok;
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.message(), "");
  EXPECT_TRUE(ok.withContext("ctx").ok());
  Status error = Status::error("bad thing");
  EXPECT_FALSE(error.ok());
  EXPECT_EQ(error.withContext("file 'x'").message(), "file 'x': bad thing");
  EXPECT_EQ(Status::error("").message(), "unknown error");

  Result<int> value = 3;
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(*value, 3);
  Result<int> failed = Status::error("nope");
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().message(), "nope");
  Result<int> fromOk = Status::success();
  EXPECT_FALSE(fromOk.ok());
  Result<std::unique_ptr<int>> moveOnly = std::make_unique<int>(7);
  std::unique_ptr<int> taken = std::move(moveOnly).value();
  EXPECT_EQ(*taken, 7);
}

//===----------------------------------------------------------------------===//
// Tensor
//===----------------------------------------------------------------------===//

TEST(TensorTest, DTypes) {
  struct Row {
    DType dtype;
    size_t size;
    const char *name, *safetensors;
  };
  for (Row row :
       {Row{DType::F32, 4, "f32", "F32"}, Row{DType::BF16, 2, "bf16", "BF16"},
        Row{DType::F16, 2, "f16", "F16"}, Row{DType::F64, 8, "f64", "F64"},
        Row{DType::I32, 4, "i32", "I32"}, Row{DType::I64, 8, "i64", "I64"},
        Row{DType::Bool, 1, "bool", "BOOL"}}) {
    EXPECT_EQ(dtypeSize(row.dtype), row.size);
    EXPECT_EQ(dtypeName(row.dtype), row.name);
    EXPECT_EQ(safetensorsName(row.dtype), row.safetensors);
    EXPECT_EQ(dtypeFromSafetensorsName(row.safetensors), row.dtype);
  }
  EXPECT_FALSE(dtypeFromSafetensorsName("f32"));
  EXPECT_FALSE(dtypeFromSafetensorsName("U8"));
  EXPECT_TRUE(isFloatingPoint(DType::BF16));
  EXPECT_FALSE(isFloatingPoint(DType::I64));
}

TEST(TensorTest, ShapeHelpers) {
  EXPECT_EQ(shapeString({2, 16, 256}), "[2, 16, 256]");
  EXPECT_EQ(shapeString({}), "[]");
  EXPECT_EQ(rowMajorStrides({2, 3, 4}), (std::vector<int64_t>{12, 4, 1}));
  EXPECT_EQ(rowMajorStrides({}), std::vector<int64_t>{});
  EXPECT_EQ(checkedNumel({2, 3, 4}), 24);
  EXPECT_EQ(checkedNumel({}), 1);
  EXPECT_EQ(checkedNumel({5, 0}), 0);
  EXPECT_FALSE(checkedNumel({2, -1}));
  EXPECT_FALSE(checkedNumel({int64_t(1) << 40, int64_t(1) << 40}));
}

TEST(TensorTest, EmptyOwnsAlignedZeroedStorage) {
  Tensor t = Tensor::empty(DType::F32, {2, 16, 3});
  EXPECT_EQ(t.dtype(), DType::F32);
  EXPECT_EQ(t.rank(), 3);
  EXPECT_EQ(t.dim(1), 16);
  EXPECT_EQ(t.numel(), 96);
  EXPECT_EQ(t.nbytes(), 384u);
  EXPECT_EQ(t.strides(), (std::vector<int64_t>{48, 3, 1}));
  EXPECT_TRUE(t.isContiguous());
  EXPECT_TRUE(t.ownsStorage());
  EXPECT_EQ(t.shapeString(), "[2, 16, 3]");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.rawData()) % 64, 0u);
  for (int64_t i = 0; i < t.numel(); ++i)
    EXPECT_EQ(t.data<float>()[i], 0.0f);
  // Copies are handles on the same storage.
  Tensor copy = t;
  copy.data<float>()[5] = 2.5f;
  EXPECT_EQ(t.data<float>()[5], 2.5f);

  Tensor scalar = Tensor::empty(DType::F64, {});
  EXPECT_EQ(scalar.numel(), 1);
  EXPECT_EQ(scalar.nbytes(), 8u);
  Tensor none = Tensor::empty(DType::BF16, {0, 7});
  EXPECT_EQ(none.numel(), 0);
  EXPECT_NE(none.rawData(), nullptr);
  Tensor defaulted;
  EXPECT_EQ(defaulted.numel(), 0);
  EXPECT_EQ(defaulted.rawData(), nullptr);
}

TEST(TensorTest, BorrowedViews) {
  std::vector<int32_t> memory(12);
  for (int i = 0; i < 12; ++i)
    memory[i] = i;
  Tensor view = Tensor::borrow(DType::I32, {3, 4}, memory.data());
  EXPECT_FALSE(view.ownsStorage());
  EXPECT_TRUE(view.isContiguous());
  EXPECT_EQ(view.data<int32_t>()[7], 7);
  view.data<int32_t>()[0] = 42;
  EXPECT_EQ(memory[0], 42);
  // The transpose [4, 3] with strides [1, 4] is not contiguous.
  Tensor transposed = Tensor::borrow(DType::I32, {4, 3}, {1, 4}, memory.data());
  EXPECT_FALSE(transposed.isContiguous());
  EXPECT_EQ(transposed.numel(), 12);
  // Dims of size 1 may carry any stride.
  EXPECT_TRUE(Tensor::borrow(DType::I32, {1, 12}, {99, 1}, memory.data())
                  .isContiguous());
}

TEST(TensorTest, HalfConversions) {
  EXPECT_EQ(doubleToBF16(1.0), 0x3f80);
  EXPECT_EQ(doubleToBF16(-2.0), 0xc000);
  EXPECT_EQ(doubleToF16(1.0), 0x3c00);
  EXPECT_EQ(doubleToF16(65504.0), 0x7bff);
  EXPECT_EQ(doubleToF16(65519.0), 0x7bff); // below the halfway point
  EXPECT_EQ(doubleToF16(65520.0), 0x7c00); // tie to even: rounds to infinity
  EXPECT_EQ(doubleToF16(0x1p-24), 0x0001); // smallest subnormal
  EXPECT_EQ(doubleToF16(0x1p-25), 0x0000); // tie to even: zero
  EXPECT_EQ(doubleToF16(0x1.8p-25), 0x0001);
  EXPECT_EQ(doubleToF16(0x1.ffcp-15), 0x0400); // rounds up to the min normal
  EXPECT_EQ(doubleToF16(-0.0), 0x8000);
  EXPECT_EQ(doubleToF16(1e300), 0x7c00);
  EXPECT_EQ(doubleToF16(-INFINITY), 0xfc00);
  EXPECT_EQ(doubleToBF16(1e-320), 0x0000); // a double subnormal
  // Ties go to even, and there is no double rounding through f32:
  // 1 + 2^-8 + 2^-40 is above the tie, while float(x) would sit on it.
  EXPECT_EQ(doubleToBF16(1.0 + 0x1p-8), 0x3f80);
  EXPECT_EQ(doubleToBF16(1.0 + 3 * 0x1p-8), 0x3f82);
  EXPECT_EQ(doubleToBF16(1.0 + 0x1p-8 + 0x1p-40), 0x3f81);
  EXPECT_EQ(doubleToBF16(3.39e38), 0x7f7f); // the largest finite bf16
  EXPECT_EQ(doubleToBF16(3.4e38), 0x7f80);  // past the halfway point: inf
  uint16_t nan = doubleToBF16(std::nan(""));
  EXPECT_TRUE(std::isnan(bf16ToDouble(nan)));
  EXPECT_TRUE(std::isnan(f16ToDouble(doubleToF16(std::nan("")))));
  // Every non-NaN pattern survives the round trip through double.
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    uint16_t b = static_cast<uint16_t>(bits);
    if (!std::isnan(bf16ToDouble(b)))
      ASSERT_EQ(doubleToBF16(bf16ToDouble(b)), b) << bits;
    if (!std::isnan(f16ToDouble(b)))
      ASSERT_EQ(doubleToF16(f16ToDouble(b)), b) << bits;
  }
}

//===----------------------------------------------------------------------===//
// ParamStore
//===----------------------------------------------------------------------===//

TEST(ParamStoreTest, LayoutAlignsEveryParameterTo64Bytes) {
  Result<ParamStore> store = ParamStore::create({
      {"a", DType::F32, {3}, {"zeros", {}}},     // 12 bytes at 0
      {"b", DType::F16, {5, 5}, {"ones", {}}},   // 50 bytes at 64
      {"c", DType::F64, {}, {"zeros", {}}},      // 8 bytes at 128
      {"d", DType::BF16, {0, 4}, {"zeros", {}}}, // 0 bytes at 192
      {"e", DType::F32, {2, 32}, {"zeros", {}}}, // 256 bytes at 192
  });
  ASSERT_TRUE(store.ok()) << store.status().message();
  EXPECT_EQ(store->size(), 5u);
  std::vector<size_t> offsets;
  for (const ParamInfo &info : store->params())
    offsets.push_back(info.offset);
  EXPECT_EQ(offsets, (std::vector<size_t>{0, 64, 128, 192, 192}));
  EXPECT_EQ(store->totalBytes(), 448u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(store->data()) % 64, 0u);
  EXPECT_EQ(store->param(1).nbytes(), 50u);

  Tensor b = store->tensor(1);
  EXPECT_EQ(b.dtype(), DType::F16);
  EXPECT_EQ(b.shape(), (std::vector<int64_t>{5, 5}));
  EXPECT_EQ(static_cast<std::byte *>(b.rawData()), store->data() + 64);
  EXPECT_FALSE(b.ownsStorage());
  Result<Tensor> e = store->tensor("e");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(static_cast<std::byte *>(e->rawData()), store->data() + 192);
  EXPECT_EQ(store->indexOf("c"), 2u);
  EXPECT_FALSE(store->indexOf("zz"));
  expectError(store->tensor("zz").status(), {"no parameter named 'zz'"});

  // The same rule, without allocating.
  std::vector<ParamInfo> infos = {{"x", DType::F32, {17}, {}},
                                  {"y", DType::F32, {1}, {}}};
  Result<size_t> total = ParamStore::layout(infos);
  ASSERT_TRUE(total.ok());
  EXPECT_EQ(infos[1].offset, 128u); // after 68 bytes
  EXPECT_EQ(*total, 192u);

  Result<ParamStore> empty = ParamStore::create({});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->totalBytes(), 0u);
  EXPECT_TRUE(empty->initialize(1).ok());
}

TEST(ParamStoreTest, LayoutErrors) {
  auto create = [](std::vector<ParamInfo> params) {
    return ParamStore::create(std::move(params)).status();
  };
  expectError(create({{"a", DType::F32, {2}, {}}, {"a", DType::F32, {3}, {}}}),
              {"parameter 'a' is declared twice"});
  expectError(create({{"", DType::F32, {2}, {}}}),
              {"parameter #0 has an empty name"});
  expectError(create({{"a", DType::F32, {2, -3}, {}}}),
              {"parameter 'a'", "[2, -3]", "negative"});
  expectError(create({{"__metadata__", DType::F32, {2}, {}}}),
              {"'__metadata__' is reserved"});
  expectError(
      create({{"huge", DType::F64, {int64_t(1) << 31, int64_t(1) << 31}, {}}}),
      {"parameter 'huge'", "too large"});
}

TEST(ParamStoreTest, InitializeIsDeterministic) {
  auto make = [](std::vector<ParamInfo> extra) {
    std::vector<ParamInfo> params = std::move(extra);
    params.push_back({"w", DType::F32, {64, 32}, {"normal", {{"std", 0.02}}}});
    params.push_back(
        {"u", DType::F32, {100}, {"uniform", {{"low", -1}, {"high", 1}}}});
    params.push_back({"k", DType::F32, {8, 8}, {"kaiming_normal", {}}});
    Result<ParamStore> store = ParamStore::create(std::move(params));
    EXPECT_TRUE(store.ok());
    return std::move(store).value();
  };
  auto bytesOf = [](const ParamStore &store, const std::string &name) {
    Tensor t = *store.tensor(name);
    return std::string(static_cast<const char *>(t.rawData()), t.nbytes());
  };
  ParamStore a = make({}), b = make({}), c = make({});
  ASSERT_TRUE(a.initialize(42).ok());
  ASSERT_TRUE(b.initialize(42).ok());
  ASSERT_TRUE(c.initialize(43).ok());
  for (const char *name : {"w", "u", "k"}) {
    EXPECT_EQ(bytesOf(a, name), bytesOf(b, name)) << name;
    EXPECT_NE(bytesOf(a, name), bytesOf(c, name)) << name;
  }
  // Different names draw different numbers.
  EXPECT_NE(bytesOf(a, "w").substr(0, 256), bytesOf(a, "k").substr(0, 256));
  // A parameter's values do not depend on the others.
  ParamStore d = make({{"first", DType::F32, {5}, {"normal", {{"std", 1}}}}});
  ASSERT_TRUE(d.initialize(42).ok());
  for (const char *name : {"w", "u", "k"})
    EXPECT_EQ(bytesOf(a, name), bytesOf(d, name)) << name;
}

// Pins the generator: these bits must never change, or old seeds stop
// reproducing old models.
TEST(ParamStoreTest, GoldenBits) {
  ParamStore normal =
      initialized({"normal", {{"std", 1}}}, {4}, DType::F64, 42);
  ParamStore uniform =
      initialized({"uniform", {{"low", 0}, {"high", 1}}}, {4}, DType::F64, 42);
  const double normals[] = {0x1.15356b8a4e508p-4, -0x1.b867f80476466p+0,
                            0x1.80efe628f8d09p-3, 0x1.a93b0083dbedfp-4};
  const double uniforms[] = {0x1.95a980c7602d8p-3, 0x1.f3bd06a1ec28cp-3,
                             0x1.1fe5f868a3c6p-3, 0x1.ab764ef1a485cp-2};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(normal.tensor(0).data<double>()[i], normals[i]) << i;
    EXPECT_EQ(uniform.tensor(0).data<double>()[i], uniforms[i]) << i;
  }
}

// f32 parameters are filled in vector lanes on several threads (the host's
// widest ISA), f64 ones element by element: the same draws, rounded to
// f32, bit for bit (an odd size leaves a scalar tail after the vectors).
TEST(ParamStoreTest, VectorFillMatchesScalarDraws) {
  const int64_t n = (int64_t(3) << 20) + 7;
  for (const InitSpec &init :
       {InitSpec{"normal", {{"std", 0.02}, {"mean", 0.1}}},
        InitSpec{"uniform", {{"low", -0.5}, {"high", 2}}}}) {
    ParamStore f32 = initialized(init, {n}, DType::F32, 7);
    ParamStore f64 = initialized(init, {n}, DType::F64, 7);
    const float *lanes = f32.tensor(0).data<float>();
    const double *scalar = f64.tensor(0).data<double>();
    int64_t differ = 0, first = -1;
    for (int64_t i = 0; i < n; ++i)
      if (std::bit_cast<uint32_t>(lanes[i]) !=
          std::bit_cast<uint32_t>(static_cast<float>(scalar[i]))) {
        first = first < 0 ? i : first;
        ++differ;
      }
    EXPECT_EQ(differ, 0) << init.kind << ": first at " << first;
  }
}

TEST(ParamStoreTest, NormalStatistics) {
  ParamStore store = initialized({"normal", {{"std", 0.02}}}, {100000});
  std::vector<float> v = floats(store, 0);
  // Standard error of the mean: 0.02 / sqrt(1e5) = 6.3e-5.
  EXPECT_NEAR(meanOf(v), 0.0, 4e-4);
  EXPECT_NEAR(stdOf(v), 0.02, 0.02 * 0.02);
  for (float x : v)
    ASSERT_LE(std::fabs(x), 0.02 * 8.6);
  // About 68.3% within one std, 95.4% within two.
  size_t one = 0, two = 0;
  for (float x : v) {
    one += std::fabs(x) < 0.02;
    two += std::fabs(x) < 0.04;
  }
  EXPECT_NEAR(one / 1e5, 0.6827, 0.01);
  EXPECT_NEAR(two / 1e5, 0.9545, 0.01);

  ParamStore shifted =
      initialized({"normal", {{"std", 0.5}, {"mean", 3}}}, {100000});
  std::vector<float> s = floats(shifted, 0);
  EXPECT_NEAR(meanOf(s), 3.0, 0.01);
  EXPECT_NEAR(stdOf(s), 0.5, 0.01);
}

TEST(ParamStoreTest, UniformBounds) {
  ParamStore store =
      initialized({"uniform", {{"low", -0.3}, {"high", 0.7}}}, {100000});
  std::vector<float> v = floats(store, 0);
  float lo = *std::min_element(v.begin(), v.end());
  float hi = *std::max_element(v.begin(), v.end());
  EXPECT_GE(lo, -0.3f);
  EXPECT_LE(hi, 0.7f);
  EXPECT_LT(lo, -0.299f);
  EXPECT_GT(hi, 0.699f);
  EXPECT_NEAR(meanOf(v), 0.2, 0.01);
  EXPECT_NEAR(stdOf(v), 1 / std::sqrt(12.0), 0.01);
}

TEST(ParamStoreTest, XavierAndKaimingUseFans) {
  // [64, 3, 32]: fan_in = 192, fan_out = 32.
  std::vector<int64_t> shape = {64, 3, 32};
  EXPECT_EQ(computeFans(shape), (std::pair<int64_t, int64_t>{192, 32}));
  struct Case {
    InitSpec init;
    double bound; // uniform: the half width; normal: 0
    double std;
  };
  double xavierA = std::sqrt(6.0 / 224), kaimingA = std::sqrt(2.0 * 3 / 192);
  std::vector<Case> cases = {
      {{"xavier_uniform", {}}, xavierA, xavierA / std::sqrt(3.0)},
      {{"xavier_uniform", {{"gain", 2}}},
       2 * xavierA,
       2 * xavierA / std::sqrt(3.0)},
      {{"kaiming_uniform", {}}, kaimingA, kaimingA / std::sqrt(3.0)},
      {{"kaiming_uniform", {{"gain", 1}}},
       std::sqrt(3.0 / 192),
       1 / std::sqrt(192.0)},
      {{"xavier_normal", {}}, 0, std::sqrt(2.0 / 224)},
      {{"xavier_normal", {{"gain", 3}}}, 0, 3 * std::sqrt(2.0 / 224)},
      {{"kaiming_normal", {}}, 0, std::sqrt(2.0) / std::sqrt(192.0)},
      {{"kaiming_normal", {{"gain", 1}}}, 0, 1 / std::sqrt(192.0)},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.init.kind);
    std::vector<float> v = floats(initialized(c.init, shape), 0);
    EXPECT_NEAR(meanOf(v), 0, c.std * 0.05);
    EXPECT_NEAR(stdOf(v), c.std, c.std * 0.04);
    if (c.bound > 0) {
      float lo = *std::min_element(v.begin(), v.end());
      float hi = *std::max_element(v.begin(), v.end());
      EXPECT_GE(lo, -static_cast<float>(c.bound));
      EXPECT_LE(hi, static_cast<float>(c.bound));
      EXPECT_GT(hi, 0.99 * c.bound);
      EXPECT_LT(lo, -0.99 * c.bound);
    }
  }
}

TEST(ParamStoreTest, ConstantsAreExact) {
  for (DType dtype : {DType::F32, DType::F64, DType::BF16, DType::F16}) {
    SCOPED_TRACE(std::string(dtypeName(dtype)));
    ParamStore zeros = initialized({"zeros", {}}, {3, 5}, dtype);
    ParamStore ones = initialized({"ones", {}}, {3, 5}, dtype);
    ParamStore half =
        initialized({"constant", {{"value", -0.5}}}, {3, 5}, dtype);
    for (int64_t i = 0; i < 15; ++i) {
      auto at = [&](const ParamStore &s) -> double {
        Tensor t = s.tensor(0);
        switch (dtype) {
        case DType::F32:
          return t.data<float>()[i];
        case DType::F64:
          return t.data<double>()[i];
        case DType::BF16:
          return bf16ToDouble(t.data<uint16_t>()[i]);
        default:
          return f16ToDouble(t.data<uint16_t>()[i]);
        }
      };
      EXPECT_EQ(at(zeros), 0.0);
      EXPECT_FALSE(std::signbit(at(zeros)));
      EXPECT_EQ(at(ones), 1.0);
      EXPECT_EQ(at(half), -0.5);
    }
  }
  ParamStore ints = initialized({"constant", {{"value", 7}}}, {4}, DType::I32);
  EXPECT_EQ(ints.tensor(0).data<int32_t>()[3], 7);
  ParamStore flags = initialized({"ones", {}}, {4}, DType::Bool);
  EXPECT_EQ(flags.tensor(0).data<uint8_t>()[0], 1);
}

TEST(ParamStoreTest, LowPrecisionMatchesRoundedDoubles) {
  // The same name, seed and init draw the same doubles for every dtype;
  // bf16 and f16 hold them rounded to nearest even.
  InitSpec init{"normal", {{"std", 3}}};
  ParamStore f64 = initialized(init, {1000}, DType::F64, 9);
  ParamStore f32 = initialized(init, {1000}, DType::F32, 9);
  ParamStore bf16 = initialized(init, {1000}, DType::BF16, 9);
  ParamStore f16 = initialized(init, {1000}, DType::F16, 9);
  for (int i = 0; i < 1000; ++i) {
    double d = f64.tensor(0).data<double>()[i];
    ASSERT_EQ(f32.tensor(0).data<float>()[i], static_cast<float>(d));
    ASSERT_EQ(bf16.tensor(0).data<uint16_t>()[i], doubleToBF16(d));
    ASSERT_EQ(f16.tensor(0).data<uint16_t>()[i], doubleToF16(d));
  }
}

TEST(ParamStoreTest, InitErrors) {
  auto check = [](InitSpec init, std::vector<int64_t> shape,
                  std::initializer_list<std::string> parts,
                  DType dtype = DType::F32) {
    Result<ParamStore> store = ParamStore::create(
        {{"ok", DType::F32, {4}, {"ones", {}}}, {"w", dtype, shape, init}});
    ASSERT_TRUE(store.ok());
    Status status = store->initialize(1);
    expectError(status, parts);
    EXPECT_NE(status.message().find("parameter 'w'"), std::string::npos);
    // Nothing was written, not even the valid parameter.
    EXPECT_EQ(store->tensor(0).data<float>()[0], 0.0f);
  };
  check({"gaussian", {}}, {4},
        {"unknown init kind 'gaussian'", "expected one of zeros, ones"});
  check({"normal", {}}, {4}, {"init kind 'normal' needs field 'std'"});
  check({"uniform", {{"low", 0}}}, {4}, {"needs field 'high'"});
  check({"constant", {}}, {4}, {"needs field 'value'"});
  check({"normal", {{"std", 1}, {"stdd", 1}}}, {4},
        {"init kind 'normal' has unknown field 'stdd'"});
  check({"zeros", {{"value", 1}}}, {4}, {"unknown field 'value'"});
  check({"normal", {{"std", -1}}}, {4}, {"'std' must be >= 0, got -1"});
  check({"uniform", {{"low", 2}, {"high", 1}}}, {4},
        {"'low' (2) must be <= 'high' (1)"});
  check({"normal", {{"std", NAN}}}, {4}, {"'std' must be finite"});
  check({"xavier_uniform", {}}, {4},
        {"'xavier_uniform' needs a tensor of rank >= 2", "[4]"});
  check({"kaiming_normal", {}}, {}, {"rank >= 2"});
  check({"normal", {{"std", 1}}}, {4},
        {"needs a floating-point dtype, got i32"}, DType::I32);
  check({"constant", {{"value", 1}, {"value", 2}}}, {4}, {"given twice"});
}

//===----------------------------------------------------------------------===//
// JSON
//===----------------------------------------------------------------------===//

TEST(RuntimeJsonTest, ParsesTheSubset) {
  Result<json::Value> v = json::parse(
      " {\"a\": [1, -2, 0, 9223372036854775807, -9223372036854775808],"
      " \"b\\n\\u00e9\\ud83d\\ude00\": {\"c\": \"x\\\"y\\\\z\\/\"}, \"d\": []} "
      " ");
  ASSERT_TRUE(v.ok()) << v.status().message();
  ASSERT_EQ(v->kind, json::Value::Kind::Object);
  ASSERT_EQ(v->keys.size(), 3u);
  const json::Value *a = v->find("a");
  ASSERT_TRUE(a);
  ASSERT_EQ(a->items.size(), 5u);
  EXPECT_EQ(a->items[1].integer, -2);
  EXPECT_EQ(a->items[3].integer, INT64_MAX);
  EXPECT_EQ(a->items[4].integer, INT64_MIN);
  EXPECT_EQ(v->keys[1], "b\n\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(v->items[1].find("c")->string, "x\"y\\z/");
  EXPECT_EQ(json::quote("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\u000a\\u0001\"");
  Result<json::Value> round = json::parse(json::quote("q\"\t\x1f"));
  ASSERT_TRUE(round.ok());
  EXPECT_EQ(round->string, "q\"\t\x1f");
}

TEST(RuntimeJsonTest, RejectsEverythingElse) {
  struct Case {
    const char *text, *error;
  };
  for (Case c : {
           Case{"", "unexpected end of input"},
           Case{"{", "expected a string key"},
           Case{"{\"a\" 1}", "expected ':'"},
           Case{"{\"a\": 1,}", "expected a string key"},
           Case{"[1,]", "unexpected character ']'"},
           Case{"[1 2]", "expected ',' or ']'"},
           Case{"{} x", "trailing characters"},
           Case{"1.5", "numbers must be integers"},
           Case{"1e3", "numbers must be integers"},
           Case{"01", "leading zeros"},
           Case{"-", "expected a digit"},
           Case{"9223372036854775808", "out of the 64-bit range"},
           Case{"-9223372036854775809", "out of the 64-bit range"},
           Case{"true", "true, false and null"},
           Case{"\"abc", "unterminated string"},
           Case{"\"a\\qb\"", "invalid escape \\q"},
           Case{"\"\\u12g4\"", "4 hex digits"},
           Case{"\"\\ud800\"", "high surrogate"},
           Case{"\"\\udc00\"", "unpaired low surrogate"},
           Case{"\"a\tb\"", "raw control character 0x09"},
           Case{"{\"k\": 1, \"k\": 2}", "duplicate key \"k\""},
           Case{"'a'", "unexpected character '''"},
       }) {
    Result<json::Value> v = json::parse(c.text);
    SCOPED_TRACE(c.text);
    expectError(v.status(), {c.error, "at byte "});
  }
  std::string deep(65, '['), deeper(66, '[');
  deep += std::string(65, ']');
  deeper += std::string(66, ']');
  EXPECT_FALSE(json::parse(deep).ok()); // 65 levels: one too many
  expectError(json::parse(deeper).status(), {"nesting deeper than 64"});
  std::string ok(64, '[');
  ok += std::string(64, ']');
  EXPECT_TRUE(json::parse(ok).ok());
  expectError(json::parse("[1,2,3,4]", {64, 3}).status(),
              {"more than 3 JSON values"});
}

TEST(RuntimeJsonTest, FullJsonAddsNumbersAndLiterals) {
  json::Limits full;
  full.fullJson = true;
  Result<json::Value> v =
      json::parse(R"({"eps": 1e-12, "p": -0.25, "big": 1E+3, "n": 7, "huge": )"
                  R"(9223372036854775808, "t": true, "f": false, "z": null})",
                  full);
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ(v->find("eps")->kind, json::Value::Kind::Number);
  EXPECT_DOUBLE_EQ(v->find("eps")->number, 1e-12);
  EXPECT_DOUBLE_EQ(v->find("p")->number, -0.25);
  EXPECT_DOUBLE_EQ(v->find("big")->number, 1000.0);
  EXPECT_EQ(v->find("n")->kind, json::Value::Kind::Integer);
  EXPECT_EQ(v->find("n")->integer, 7);
  EXPECT_DOUBLE_EQ(v->find("n")->number, 7.0);
  EXPECT_EQ(v->find("huge")->kind, json::Value::Kind::Number);
  EXPECT_DOUBLE_EQ(v->find("huge")->number, 9223372036854775808.0);
  EXPECT_EQ(v->find("t")->kind, json::Value::Kind::Bool);
  EXPECT_TRUE(v->find("t")->boolean);
  EXPECT_FALSE(v->find("f")->boolean);
  EXPECT_EQ(v->find("z")->kind, json::Value::Kind::Null);
  struct Case {
    const char *text, *error;
  };
  for (Case c : {Case{"1.", "digit after '.'"}, Case{"1e", "exponent"},
                 Case{"01.5", "leading zeros"}, Case{"tru", "true, false"},
                 Case{"-.5", "expected a digit"}, Case{"nul", "or null"}}) {
    SCOPED_TRACE(c.text);
    expectError(json::parse(c.text, full).status(), {c.error, "at byte "});
  }
}

//===----------------------------------------------------------------------===//
// Checkpoints
//===----------------------------------------------------------------------===//

TEST(CheckpointTest, RoundTripIsBitExact) {
  TempDir dir;
  ASSERT_FALSE(dir.path.empty());
  std::vector<ParamInfo> params = {
      {"wte.weight", DType::F32, {37, 16}, {"normal", {{"std", 0.02}}}},
      {"blocks.0.ln.bias", DType::F32, {16}, {"zeros", {}}},
      {"half", DType::F16, {3, 7}, {"zeros", {}}},
      {"brain", DType::BF16, {5, 2, 3}, {"zeros", {}}},
      {"double", DType::F64, {9}, {"zeros", {}}},
      {"steps", DType::I64, {2}, {"zeros", {}}},
      {"ids", DType::I32, {3}, {"zeros", {}}},
      {"mask", DType::Bool, {5}, {"zeros", {}}},
      {"empty", DType::F32, {0, 8}, {"zeros", {}}},
      {"scalar", DType::F32, {}, {"zeros", {}}},
      {"we\"ird\\name\n", DType::F32, {2}, {"zeros", {}}},
  };
  Result<ParamStore> source = ParamStore::create(params);
  ASSERT_TRUE(source.ok());
  // Random bytes everywhere, NaN payloads and all.
  std::mt19937_64 rng(7);
  for (size_t i = 0; i < source->totalBytes(); ++i)
    source->data()[i] = static_cast<std::byte>(rng());
  std::map<std::string, std::string> metadata = {
      {"format", "pt"},
      {"loom.step", "1234"},
      {"quote\"back\\slash", "line\nbreak \xc3\xa9 \x01"},
  };
  std::string path = dir.file("model.safetensors");
  Status saved = saveCheckpoint(path, *source, metadata);
  ASSERT_TRUE(saved.ok()) << saved.message();
  EXPECT_EQ(dir.list(), std::vector<std::string>{"model.safetensors"});

  // The file is standard safetensors: the header is a multiple of 8 bytes.
  std::string bytes = readBytes(path);
  uint64_t length = 0;
  std::memcpy(&length, bytes.data(), 8);
  EXPECT_EQ(length % 8, 0u);
  std::string header = bytes.substr(8, length);
  EXPECT_NE(header.find("\"wte.weight\":{\"dtype\":\"F32\",\"shape\":[37,16],"
                        "\"data_offsets\":[0,2368]}"),
            std::string::npos)
      << header;
  EXPECT_NE(header.find("\"__metadata__\":{"), std::string::npos);

  Result<ParamStore> target = ParamStore::create(params);
  ASSERT_TRUE(target.ok());
  Status loaded = loadCheckpoint(path, *target);
  ASSERT_TRUE(loaded.ok()) << loaded.message();
  for (size_t i = 0; i < params.size(); ++i) {
    const ParamInfo &info = source->param(i);
    EXPECT_EQ(std::memcmp(source->data() + info.offset,
                          target->data() + info.offset, info.nbytes()),
              0)
        << info.name;
  }
  Result<std::map<std::string, std::string>> read =
      readCheckpointMetadata(path);
  ASSERT_TRUE(read.ok()) << read.status().message();
  EXPECT_EQ(*read, metadata);

  // A model declared in another order loads the same bytes.
  std::vector<ParamInfo> reversed(params.rbegin(), params.rend());
  Result<ParamStore> other = ParamStore::create(reversed);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(loadCheckpoint(path, *other).ok());
  Tensor a = *source->tensor("brain"), b = *other->tensor("brain");
  EXPECT_EQ(std::memcmp(a.rawData(), b.rawData(), a.nbytes()), 0);
}

TEST(CheckpointTest, SaveReplacesAtomicallyAndCleansUp) {
  TempDir dir;
  ParamStore store = smallModel();
  std::string path = dir.file("ckpt.safetensors");
  ASSERT_TRUE(saveCheckpoint(path, store, {{"step", "1"}}).ok());
  ASSERT_TRUE(saveCheckpoint(path, store, {{"step", "2"}}).ok());
  EXPECT_EQ(dir.list(), std::vector<std::string>{"ckpt.safetensors"});
  EXPECT_EQ(readCheckpointMetadata(path)->at("step"), "2");
  // No metadata: no __metadata__ key.
  ASSERT_TRUE(saveCheckpoint(path, store).ok());
  EXPECT_EQ(readBytes(path).find("__metadata__"), std::string::npos);
  EXPECT_TRUE(readCheckpointMetadata(path)->empty());

  expectError(saveCheckpoint(dir.file("missing/dir/x.safetensors"), store),
              {"checkpoint '", "missing/dir/x.safetensors", "cannot create",
               "No such file or directory"});
  // Renaming over a directory fails after the temp file was written; the
  // temp file is removed.
  std::filesystem::create_directory(dir.file("adir"));
  std::filesystem::create_directory(dir.file("adir/sub"));
  expectError(saveCheckpoint(dir.file("adir"), store),
              {"cannot rename", "adir"});
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"adir", "ckpt.safetensors"}));
}

TEST(CheckpointTest, OpenErrors) {
  TempDir dir;
  ParamStore store = smallModel();
  expectError(
      loadCheckpoint(dir.file("nope.safetensors"), store),
      {"checkpoint '", "nope.safetensors': cannot open", "No such file"});
  expectError(loadCheckpoint(dir.path, store), {"not a regular file"});
  expectError(readCheckpointMetadata(dir.file("nope")).status(),
              {"cannot open"});
}

TEST(CheckpointTest, GoodHandWrittenFileLoads) {
  TempDir dir;
  EXPECT_TRUE(loadBytes(dir, makeFile(goodHeader(), 160)).ok());
  // Tensors in any order, whitespace around tokens, no padding.
  std::string shuffled = " { " + entry("ln.bias", "F32", "[ 8 ]", 128, 160) +
                         " ,\n" + entry("wte.weight", "F32", "[4, 8]", 0, 128) +
                         "}\t";
  Status status = loadBytes(dir, makeFile(shuffled, 160));
  EXPECT_TRUE(status.ok()) << status.message();
}

TEST(CheckpointCorruptionTest, TruncatedFile) {
  TempDir dir;
  std::string good = makeFile(goodHeader(), 160);
  size_t headerEnd = 8 + goodHeader().size();
  struct Case {
    size_t size;
    const char *error;
  };
  for (Case c : {Case{0, "file is 0 bytes, too short for the 8-byte header"},
                 Case{5, "file is 5 bytes"}, Case{7, "file is 7 bytes"},
                 Case{8, "runs past the end of the file (only 0 bytes"},
                 Case{20, "runs past the end of the file"},
                 Case{headerEnd - 1, "runs past the end of the file"},
                 Case{headerEnd, "run past the end of the data section (0 "},
                 Case{headerEnd + 100,
                      "run past the end of the data section (100 bytes)"},
                 Case{good.size() - 1, "tensor 'ln.bias': data_offsets "
                                       "[128, 160] run past the end"}}) {
    SCOPED_TRACE(c.size);
    expectError(loadBytes(dir, good.substr(0, c.size)),
                {"checkpoint '", c.error});
  }
}

TEST(CheckpointCorruptionTest, HeaderLengthBeyondFile) {
  TempDir dir;
  std::string file = makeFile(goodHeader(), 160);
  uint64_t length = file.size(); // 8 more than what follows the field
  std::memcpy(file.data(), &length, 8);
  expectError(loadBytes(dir, file),
              {"header length " + std::to_string(length) +
               " runs past the end of the file (only " +
               std::to_string(file.size() - 8) + " bytes follow"});
  length = uint64_t(1) << 40;
  std::memcpy(file.data(), &length, 8);
  expectError(loadBytes(dir, file),
              {"header length 1099511627776 is larger than the limit of "
               "100000000 bytes"});
  length = ~uint64_t(0);
  std::memcpy(file.data(), &length, 8);
  expectError(loadBytes(dir, file), {"is larger than the limit"});
}

TEST(CheckpointCorruptionTest, CorruptedJson) {
  TempDir dir;
  std::string good = goodHeader();
  for (std::string header :
       {good.substr(0, good.size() - 1), good + "}", good + "x",
        std::string(
            "{\"wte.weight\": {\"dtype\": \"F32\", \"shape\": [4, 8.0]"),
        good.substr(0, 10) + "\x01" + good.substr(11), std::string(""),
        std::string("   "), "{" + std::string(100, '[')}) {
    SCOPED_TRACE(header);
    expectError(loadBytes(dir, makeFile(header, 160)),
                {"checkpoint '", "header is not valid JSON: at byte"});
  }
  expectError(loadBytes(dir, makeFile("[]", 0)),
              {"header is not a JSON object"});
  expectError(loadBytes(dir, makeFile("{\"wte.weight\": [1]}", 0)),
              {"tensor 'wte.weight': entry is not a JSON object"});
  expectError(loadBytes(dir, makeFile("{\"__metadata__\": {\"a\": 1}}", 0)),
              {"'__metadata__' value of key 'a' is not a string"});
  expectError(loadBytes(dir, makeFile("{\"__metadata__\": []}", 0)),
              {"'__metadata__' is not a JSON object"});
  // Duplicate tensor names.
  std::string twice = "{" + entry("ln.bias", "F32", "[8]", 0, 32) + "," +
                      entry("ln.bias", "F32", "[8]", 32, 64) + "}";
  expectError(loadBytes(dir, makeFile(twice, 64)),
              {"duplicate key \"ln.bias\""});
}

TEST(CheckpointCorruptionTest, MalformedEntries) {
  TempDir dir;
  auto withLn = [&](const std::string &lnEntry) {
    return loadBytes(
        dir, makeFile("{" + entry("wte.weight", "F32", "[4,8]", 0, 128) +
                          ",\"ln.bias\":" + lnEntry + "}",
                      160));
  };
  expectError(withLn("{\"dtype\":\"F32\",\"shape\":[8]}"),
              {"tensor 'ln.bias': missing 'data_offsets'"});
  expectError(withLn("{\"dtype\":\"F32\",\"data_offsets\":[128,160]}"),
              {"tensor 'ln.bias': missing 'shape'"});
  expectError(withLn("{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":"
                     "[128,160],\"extra\":1}"),
              {"tensor 'ln.bias': unexpected key 'extra'"});
  expectError(withLn("{\"dtype\":32,\"shape\":[8],\"data_offsets\":[128,160]}"),
              {"'dtype' is not a string"});
  for (const char *shape : {"8", "[-8]", "[\"8\"]", "[[8]]"})
    expectError(withLn(std::string("{\"dtype\":\"F32\",\"shape\":") + shape +
                       ",\"data_offsets\":[128,160]}"),
                {"tensor 'ln.bias': 'shape' is not an array of non-negative "
                 "integers"});
  for (const char *offsets :
       {"[128]", "[128,160,192]", "[\"128\",160]", "[-1,160]", "{}"})
    expectError(withLn(std::string("{\"dtype\":\"F32\",\"shape\":[8],"
                                   "\"data_offsets\":") +
                       offsets + "}"),
                {"tensor 'ln.bias': 'data_offsets' is not an array of two "
                 "non-negative integers"});
  expectError(withLn("{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
                     "\"data_offsets\":[128,160]}"),
              {"shape [4294967296, 4294967296] has too many elements"});
}

TEST(CheckpointCorruptionTest, WrongDtypeString) {
  TempDir dir;
  std::string header = goodHeader();
  header.replace(header.find("F32"), 3, "F33");
  expectError(loadBytes(dir, makeFile(header, 160)),
              {"tensor 'wte.weight': unknown or unsupported dtype \"F33\"",
               "expected F32, BF16"});
  header = goodHeader();
  header.replace(header.find("F32"), 3, "f32");
  expectError(loadBytes(dir, makeFile(header, 160)), {"dtype \"f32\""});
}

TEST(CheckpointCorruptionTest, DtypeMismatch) {
  TempDir dir;
  // F16 [4, 8] is 64 bytes: a consistent file, a different model.
  std::string header = "{" + entry("wte.weight", "F16", "[4,8]", 0, 64) + "," +
                       entry("ln.bias", "F32", "[8]", 64, 96) + "}";
  expectError(loadBytes(dir, makeFile(header, 96)),
              {"checkpoint '", "model.safetensors': tensor 'wte.weight': "
                               "dtype F16 does not match the model's F32"});
}

TEST(CheckpointCorruptionTest, ShapeMismatch) {
  TempDir dir;
  std::string header = "{" + entry("wte.weight", "F32", "[8,4]", 0, 128) + "," +
                       entry("ln.bias", "F32", "[8]", 128, 160) + "}";
  expectError(loadBytes(dir, makeFile(header, 160)),
              {"model.safetensors': tensor 'wte.weight': shape [8, 4] does "
               "not match the model's [4, 8]"});
  header = "{" + entry("wte.weight", "F32", "[4,8]", 0, 128) + "," +
           entry("ln.bias", "F32", "[16]", 128, 192) + "}";
  expectError(loadBytes(dir, makeFile(header, 192)),
              {"tensor 'ln.bias': shape [16] does not match the model's [8]"});
}

TEST(CheckpointCorruptionTest, OffsetsBeyondFile) {
  TempDir dir;
  std::string header = "{" + entry("wte.weight", "F32", "[4,8]", 0, 128) + "," +
                       entry("ln.bias", "F32", "[8]", 4096, 4128) + "}";
  expectError(loadBytes(dir, makeFile(header, 160)),
              {"tensor 'ln.bias': data_offsets [4096, 4128] run past the end "
               "of the data section (160 bytes)"});
  header = "{" + entry("wte.weight", "F32", "[4,8]", 0, 128) + "," +
           entry("ln.bias", "F32", "[8]", 128, 9223372036854775807ull) + "}";
  expectError(loadBytes(dir, makeFile(header, 160)),
              {"tensor 'ln.bias'", "run past the end of the data section"});
}

TEST(CheckpointCorruptionTest, BeginAfterEnd) {
  TempDir dir;
  std::string header = "{" + entry("wte.weight", "F32", "[4,8]", 0, 128) + "," +
                       entry("ln.bias", "F32", "[8]", 160, 128) + "}";
  expectError(loadBytes(dir, makeFile(header, 160)),
              {"tensor 'ln.bias': data_offsets [160, 128] begin after they "
               "end"});
}

TEST(CheckpointCorruptionTest, SizeMismatch) {
  TempDir dir;
  std::string header = "{" + entry("wte.weight", "F32", "[4,8]", 0, 100) + "," +
                       entry("ln.bias", "F32", "[8]", 100, 132) + "}";
  expectError(loadBytes(dir, makeFile(header, 132)),
              {"tensor 'wte.weight': data_offsets [0, 100] span 100 bytes, "
               "but shape [4, 8] of F32 needs 128"});
}

TEST(CheckpointCorruptionTest, OverlappingRanges) {
  TempDir dir;
  std::string header = "{" + entry("wte.weight", "F32", "[4,8]", 0, 128) + "," +
                       entry("ln.bias", "F32", "[8]", 96, 128) + "}";
  expectError(loadBytes(dir, makeFile(header, 128)),
              {"tensors 'wte.weight' (data_offsets [0, 128]) and 'ln.bias' "
               "(data_offsets [96, 128]) overlap"});
  // The same range twice.
  header = "{" + entry("ln.bias", "F32", "[8]", 0, 32) + "," +
           entry("wte.weight", "F32", "[8]", 0, 32) + "}";
  expectError(loadBytes(dir, makeFile(header, 32)), {"overlap"});
}

TEST(CheckpointCorruptionTest, UncoveredBytes) {
  TempDir dir;
  std::string header = "{" + entry("wte.weight", "F32", "[4,8]", 0, 128) + "," +
                       entry("ln.bias", "F32", "[8]", 136, 168) + "}";
  expectError(loadBytes(dir, makeFile(header, 168)),
              {"data bytes [128, 136) are not covered by any tensor"});
  expectError(loadBytes(dir, makeFile(goodHeader(), 170)),
              {"data bytes [160, 170) at the end of the file are not covered"});
}

TEST(CheckpointCorruptionTest, MissingTensor) {
  TempDir dir;
  std::string header = "{" + entry("wte.weight", "F32", "[4,8]", 0, 128) + "}";
  expectError(loadBytes(dir, makeFile(header, 128)),
              {"checkpoint '", "tensor 'ln.bias' of the model is missing "
                               "from the checkpoint"});
  expectError(loadBytes(dir, makeFile("{}", 0)),
              {"tensor 'wte.weight' of the model is missing from the "
               "checkpoint (and 1 more)"});
}

TEST(CheckpointCorruptionTest, ExtraTensor) {
  TempDir dir;
  std::string header = "{" + entry("wte.weight", "F32", "[4,8]", 0, 128) + "," +
                       entry("ln.bias", "F32", "[8]", 128, 160) + "," +
                       entry("lm_head.weight", "F32", "[2]", 160, 168) + "}";
  expectError(loadBytes(dir, makeFile(header, 168)),
              {"tensor 'lm_head.weight' is in the checkpoint but not in the "
               "model"});
}

TEST(CheckpointFuzzTest, RandomBuffersNeverCrash) {
  TempDir dir;
  std::mt19937_64 rng(2024);
  const std::string alphabet = "{}[]\":, 0123456789-abdefhnpst_FS\\u.";
  for (int i = 0; i < 1000; ++i) {
    size_t size = rng() % 400;
    std::string bytes(size, '\0');
    if (i % 2 == 0) {
      for (char &c : bytes)
        c = static_cast<char>(rng());
    } else {
      // A plausible length and JSON-looking noise.
      for (char &c : bytes)
        c = alphabet[rng() % alphabet.size()];
      if (size >= 8) {
        uint64_t length = rng() % (size - 7);
        std::memcpy(bytes.data(), &length, 8);
      }
    }
    Status status = loadBytes(dir, bytes);
    ASSERT_FALSE(status.ok()) << "random buffer " << i << " loaded";
    EXPECT_EQ(status.message().rfind("checkpoint '", 0), 0u);
    Result<std::map<std::string, std::string>> metadata =
        readCheckpointMetadata(dir.file("model.safetensors"));
    (void)metadata;
  }
}

TEST(CheckpointFuzzTest, SingleByteMutationsNeverCrash) {
  TempDir dir;
  ParamStore store = smallModel();
  ASSERT_TRUE(store.initialize(3).ok());
  std::string path = dir.file("good.safetensors");
  ASSERT_TRUE(saveCheckpoint(path, store, {{"note", "hello"}}).ok());
  std::string good = readBytes(path);
  uint64_t length = 0;
  std::memcpy(&length, good.data(), 8);
  size_t dataStart = 8 + length;
  std::mt19937_64 rng(99);
  int loaded = 0, rejected = 0;
  for (int i = 0; i < 1000; ++i) {
    std::string bytes = good;
    // Half the mutations land in the header, where they matter.
    size_t at = i % 2 ? rng() % dataStart : rng() % bytes.size();
    char old = bytes[at];
    do
      bytes[at] = static_cast<char>(rng());
    while (bytes[at] == old);
    Status status = loadBytes(dir, bytes);
    if (at >= dataStart)
      EXPECT_TRUE(status.ok())
          << "data byte " << at << ": " << status.message();
    status.ok() ? ++loaded : ++rejected;
  }
  EXPECT_GT(loaded, 0);
  EXPECT_GT(rejected, 0);
}

} // namespace
