//===- Tensor.cpp - Element types and strided tensors ---------------------===//
//
// DType tables, shape helpers, exact f16/bf16 conversions and Tensor's
// factories.
//
//===----------------------------------------------------------------------===//

#include "loom/Tensor.h"
#include "runtime/Memory.h"

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace loom {

size_t dtypeSize(DType dtype) {
  switch (dtype) {
  case DType::F32:
  case DType::I32:
    return 4;
  case DType::BF16:
  case DType::F16:
    return 2;
  case DType::F64:
  case DType::I64:
    return 8;
  case DType::Bool:
    return 1;
  }
  return 0;
}

std::string_view dtypeName(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return "f32";
  case DType::BF16:
    return "bf16";
  case DType::F16:
    return "f16";
  case DType::F64:
    return "f64";
  case DType::I32:
    return "i32";
  case DType::I64:
    return "i64";
  case DType::Bool:
    return "bool";
  }
  return "?";
}

std::string_view safetensorsName(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return "F32";
  case DType::BF16:
    return "BF16";
  case DType::F16:
    return "F16";
  case DType::F64:
    return "F64";
  case DType::I32:
    return "I32";
  case DType::I64:
    return "I64";
  case DType::Bool:
    return "BOOL";
  }
  return "?";
}

std::optional<DType> dtypeFromSafetensorsName(std::string_view name) {
  for (DType dtype : {DType::F32, DType::BF16, DType::F16, DType::F64,
                      DType::I32, DType::I64, DType::Bool})
    if (safetensorsName(dtype) == name)
      return dtype;
  return std::nullopt;
}

bool isFloatingPoint(DType dtype) {
  return dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::F16 ||
         dtype == DType::F64;
}

std::string shapeString(const std::vector<int64_t> &shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

std::optional<int64_t> checkedNumel(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(n, d, &n))
      return std::nullopt;
  return n;
}

std::vector<int64_t> rowMajorStrides(const std::vector<int64_t> &shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;)
    strides[i - 1] = strides[i] * shape[i];
  return strides;
}

//===----------------------------------------------------------------------===//
// f16 / bf16
//===----------------------------------------------------------------------===//

/// Rounds `value` to a binary format with `expBits` exponent and `mantBits`
/// stored mantissa bits (IEEE layout, 1 + expBits + mantBits <= 16), to
/// nearest, ties to even, working on the exact double mantissa.
static uint16_t roundToSmallFloat(double value, int expBits, int mantBits) {
  uint64_t bits = std::bit_cast<uint64_t>(value);
  uint16_t sign = static_cast<uint16_t>((bits >> 63) << (expBits + mantBits));
  uint16_t infinity = static_cast<uint16_t>(((1u << expBits) - 1) << mantBits);
  if (std::isnan(value))
    return sign | infinity | static_cast<uint16_t>(1u << (mantBits - 1));
  if (std::isinf(value))
    return sign | infinity;
  int biasedExp = static_cast<int>((bits >> 52) & 0x7ff);
  if (biasedExp == 0) // zero or a double subnormal: far below any result
    return sign;
  // value = mant * 2^(exp - 52), mant in [2^52, 2^53).
  uint64_t mant = (bits & ((uint64_t(1) << 52) - 1)) | (uint64_t(1) << 52);
  int exp = biasedExp - 1023;
  int bias = (1 << (expBits - 1)) - 1, minExp = 1 - bias;
  // Count quanta of the target: 2^(exp - mantBits) for normals,
  // 2^(minExp - mantBits) for subnormals.
  int shift = 52 - mantBits + (exp < minExp ? minExp - exp : 0);
  if (shift >= 54) // below half the smallest subnormal
    return sign;
  uint64_t quanta = mant >> shift, rest = mant & ((uint64_t(1) << shift) - 1);
  uint64_t half = uint64_t(1) << (shift - 1);
  if (rest > half || (rest == half && (quanta & 1)))
    ++quanta;
  if (exp < minExp) // subnormal; 2^mantBits quanta is the smallest normal
    return sign | static_cast<uint16_t>(quanta);
  if (quanta == (uint64_t(2) << mantBits)) { // rounded up to the next binade
    quanta >>= 1;
    ++exp;
  }
  int field = exp + bias;
  if (field >= (1 << expBits) - 1)
    return sign | infinity;
  return sign | static_cast<uint16_t>(field << mantBits) |
         static_cast<uint16_t>(quanta - (uint64_t(1) << mantBits));
}

/// The inverse for any bit pattern: exact, since double holds every value.
static double smallFloatToDouble(uint16_t bits, int expBits, int mantBits) {
  int field = (bits >> mantBits) & ((1 << expBits) - 1);
  int mant = bits & ((1 << mantBits) - 1);
  int bias = (1 << (expBits - 1)) - 1;
  double sign = (bits >> (expBits + mantBits)) & 1 ? -1.0 : 1.0;
  if (field == (1 << expBits) - 1)
    return mant ? std::nan("") : sign * INFINITY;
  if (field == 0)
    return sign * std::ldexp(mant, 1 - bias - mantBits);
  return sign * std::ldexp(mant + (1 << mantBits), field - bias - mantBits);
}

uint16_t doubleToBF16(double value) { return roundToSmallFloat(value, 8, 7); }
uint16_t doubleToF16(double value) { return roundToSmallFloat(value, 5, 10); }
double bf16ToDouble(uint16_t bits) { return smallFloatToDouble(bits, 8, 7); }
double f16ToDouble(uint16_t bits) { return smallFloatToDouble(bits, 5, 10); }

//===----------------------------------------------------------------------===//
// Tensor
//===----------------------------------------------------------------------===//

Tensor Tensor::empty(DType dtype, std::vector<int64_t> shape) {
  std::optional<int64_t> numel = checkedNumel(shape);
  size_t bytes = 0;
  if (!numel || __builtin_mul_overflow(static_cast<size_t>(*numel),
                                       dtypeSize(dtype), &bytes)) {
    std::fprintf(stderr, "loom: Tensor::empty: invalid shape %s\n",
                 loom::shapeString(shape).c_str());
    std::abort();
  }
  void *memory = detail::allocateZeroed(kAlignment, bytes);
  if (!memory) {
    std::fprintf(stderr, "loom: out of memory allocating %zu bytes\n", bytes);
    std::abort();
  }
  Tensor tensor = borrow(dtype, std::move(shape), memory);
  tensor.storage = std::shared_ptr<void>(memory, std::free);
  return tensor;
}

Tensor Tensor::borrow(DType dtype, std::vector<int64_t> shape, void *data) {
  std::vector<int64_t> strides = rowMajorStrides(shape);
  return borrow(dtype, std::move(shape), std::move(strides), data);
}

Tensor Tensor::borrow(DType dtype, std::vector<int64_t> shape,
                      std::vector<int64_t> strides, void *data) {
  assert(shape.size() == strides.size() && "one stride per dim");
  Tensor tensor;
  tensor.type = dtype;
  tensor.dims = std::move(shape);
  tensor.steps = std::move(strides);
  tensor.ptr = data;
  return tensor;
}

int64_t Tensor::numel() const { return checkedNumel(dims).value_or(0); }

size_t Tensor::nbytes() const {
  return static_cast<size_t>(numel()) * dtypeSize(type);
}

bool Tensor::isContiguous() const {
  if (numel() == 0)
    return true;
  int64_t expected = 1;
  for (size_t i = dims.size(); i-- > 0;) {
    if (dims[i] != 1 && steps[i] != expected)
      return false;
    expected *= dims[i];
  }
  return true;
}

} // namespace loom
