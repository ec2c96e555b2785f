//===- Tensor.h - Element types and strided tensors -------------*- C++ -*-===//
//
// `DType` names the element types the runtime stores; `Tensor` is a dtype, a
// shape, strides (in elements) and a data pointer. Storage is either owned
// (64-byte aligned, shared between copies: a Tensor is a handle) or borrowed
// (a view of memory someone else keeps alive, e.g. a ParamStore's buffer).
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_TENSOR_H
#define LOOM_TENSOR_H

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loom {

enum class DType { F32, BF16, F16, F64, I32, I64, Bool };

/// Bytes per element: 4, 2, 2, 8, 4, 8, 1.
size_t dtypeSize(DType dtype);
/// "f32", "bf16", "f16", "f64", "i32", "i64", "bool".
std::string_view dtypeName(DType dtype);
/// The safetensors spelling: "F32", "BF16", "F16", "F64", "I32", "I64",
/// "BOOL".
std::string_view safetensorsName(DType dtype);
/// The inverse of safetensorsName; nullopt for anything else.
std::optional<DType> dtypeFromSafetensorsName(std::string_view name);
bool isFloatingPoint(DType dtype);

/// "[2, 16, 256]"; "[]" for a scalar.
std::string shapeString(const std::vector<int64_t> &shape);
/// The product of the dims; nullopt if a dim is negative or it overflows.
std::optional<int64_t> checkedNumel(const std::vector<int64_t> &shape);
/// Row-major strides in elements: [2, 3, 4] -> [12, 4, 1].
std::vector<int64_t> rowMajorStrides(const std::vector<int64_t> &shape);

/// Rounds to nearest, ties to even, straight from double (no double rounding
/// through f32); overflow gives infinity, NaN stays NaN.
uint16_t doubleToBF16(double value);
uint16_t doubleToF16(double value);
/// Exact.
double bf16ToDouble(uint16_t bits);
double f16ToDouble(uint16_t bits);

class Tensor {
public:
  static constexpr size_t kAlignment = 64;

  /// A tensor of shape [0] with no data.
  Tensor() = default;

  /// Owned, zero-filled, 64-byte aligned, row-major. Dims must be >= 0;
  /// aborts with a message if memory runs out.
  static Tensor empty(DType dtype, std::vector<int64_t> shape);
  /// A row-major view of `data`, which must outlive every copy of the view.
  static Tensor borrow(DType dtype, std::vector<int64_t> shape, void *data);
  /// A strided view of `data` (strides in elements).
  static Tensor borrow(DType dtype, std::vector<int64_t> shape,
                       std::vector<int64_t> strides, void *data);

  DType dtype() const { return type; }
  const std::vector<int64_t> &shape() const { return dims; }
  const std::vector<int64_t> &strides() const { return steps; }
  int64_t rank() const { return static_cast<int64_t>(dims.size()); }
  int64_t dim(int64_t i) const { return dims[i]; }
  /// The number of elements (1 for a scalar).
  int64_t numel() const;
  /// numel() * dtypeSize(dtype()): the logical size, which is the size of
  /// the memory only when isContiguous().
  size_t nbytes() const;
  /// Row-major with no gaps (dims of size 1 may have any stride).
  bool isContiguous() const;
  bool ownsStorage() const { return storage != nullptr; }
  std::string shapeString() const { return loom::shapeString(dims); }

  void *rawData() const { return ptr; }
  /// The data as T, whose size must match the dtype (uint16_t for bf16/f16).
  template <class T> T *data() const {
    assert(sizeof(T) == dtypeSize(type) && "data<T>() with the wrong size");
    return static_cast<T *>(ptr);
  }

private:
  DType type = DType::F32;
  std::vector<int64_t> dims{0};
  std::vector<int64_t> steps{1};
  void *ptr = nullptr;
  std::shared_ptr<void> storage; // null when borrowed
};

} // namespace loom

#endif // LOOM_TENSOR_H
