//===- Shapes.h - Symbolic dims and tensor types of Loom --------*- C++ -*-===//
//
// A `Dim` is an integer polynomial over symbolic dim names: `256`, `T`,
// `B*T`, `T-1`. Two dims are equal when their canonical forms are, which is
// how shape checking with symbolic dims works before anything is bound.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_FRONTEND_SHAPES_H
#define LOOM_FRONTEND_SHAPES_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace loom::frontend {

class Dim {
public:
  Dim() = default;
  /*implicit*/ Dim(int64_t value) {
    if (value)
      terms[{}] = value;
  }
  static Dim symbol(llvm::StringRef name) {
    Dim d;
    d.terms[{name.str()}] = 1;
    return d;
  }

  bool isConstant() const {
    return terms.empty() || (terms.size() == 1 && terms.begin()->first.empty());
  }
  std::optional<int64_t> getConstant() const {
    if (!isConstant())
      return std::nullopt;
    return terms.empty() ? 0 : terms.begin()->second;
  }
  /// Names of every symbol that occurs in the dim.
  std::vector<std::string> symbols() const;

  /// Arithmetic; nullopt on 64-bit overflow or (for div) when the result is
  /// not an exact polynomial.
  static std::optional<Dim> add(const Dim &a, const Dim &b);
  static std::optional<Dim> sub(const Dim &a, const Dim &b);
  static std::optional<Dim> mul(const Dim &a, const Dim &b);
  static std::optional<Dim> div(const Dim &a, const Dim &b);

  /// Replaces symbols by their values where `values` knows them.
  std::optional<Dim> substitute(const std::map<std::string, Dim> &values) const;

  bool operator==(const Dim &other) const { return terms == other.terms; }
  bool operator!=(const Dim &other) const { return !(*this == other); }

  /// `256`, `T`, `B*T`, `2*T - 1`.
  std::string str() const;

private:
  /// Monomial (sorted symbol names, with repetition) -> coefficient.
  std::map<std::vector<std::string>, int64_t> terms;
};

enum class DType { F32, BF16, F16, F64, I32, Bool };
llvm::StringRef spell(DType t);
std::optional<DType> parseDType(llvm::StringRef name);
inline bool isFloat(DType t) {
  return t == DType::F32 || t == DType::BF16 || t == DType::F16 ||
         t == DType::F64;
}

struct TensorType {
  DType dtype = DType::F32;
  llvm::SmallVector<Dim> dims;

  int64_t rank() const { return dims.size(); }
  bool operator==(const TensorType &o) const {
    return dtype == o.dtype && dims == o.dims;
  }
  bool operator!=(const TensorType &o) const { return !(*this == o); }
  /// `f32[B, T, 256]`
  std::string str() const;
  /// `[B, T, 256]`
  std::string shapeStr() const;
};

std::string shapeStr(llvm::ArrayRef<Dim> dims);

} // namespace loom::frontend

#endif // LOOM_FRONTEND_SHAPES_H
