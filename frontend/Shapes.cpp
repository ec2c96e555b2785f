//===- Shapes.cpp - Symbolic dims and tensor types of Loom ----------------===//

#include "frontend/Shapes.h"

#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/MathExtras.h"

#include <algorithm>
#include <limits>
#include <set>

using namespace loom::frontend;

std::vector<std::string> Dim::symbols() const {
  std::set<std::string> names;
  for (const auto &[mono, coef] : terms)
    names.insert(mono.begin(), mono.end());
  return {names.begin(), names.end()};
}

std::optional<Dim> Dim::add(const Dim &a, const Dim &b) {
  Dim r = a;
  for (const auto &[mono, coef] : b.terms) {
    int64_t sum;
    if (llvm::AddOverflow(r.terms[mono], coef, sum))
      return std::nullopt;
    if (sum == 0)
      r.terms.erase(mono);
    else
      r.terms[mono] = sum;
  }
  return r;
}

std::optional<Dim> Dim::sub(const Dim &a, const Dim &b) {
  std::optional<Dim> neg = mul(b, Dim(-1));
  if (!neg)
    return std::nullopt;
  return add(a, *neg);
}

std::optional<Dim> Dim::mul(const Dim &a, const Dim &b) {
  Dim r;
  for (const auto &[ma, ca] : a.terms) {
    for (const auto &[mb, cb] : b.terms) {
      std::vector<std::string> mono = ma;
      mono.insert(mono.end(), mb.begin(), mb.end());
      std::sort(mono.begin(), mono.end());
      int64_t prod, sum;
      if (llvm::MulOverflow(ca, cb, prod) ||
          llvm::AddOverflow(r.terms[mono], prod, sum))
        return std::nullopt;
      if (sum == 0)
        r.terms.erase(mono);
      else
        r.terms[mono] = sum;
    }
  }
  return r;
}

std::optional<Dim> Dim::div(const Dim &a, const Dim &b) {
  std::optional<int64_t> divisor = b.getConstant();
  if (!divisor || *divisor == 0)
    return std::nullopt;
  Dim r;
  for (const auto &[mono, coef] : a.terms) {
    // INT64_MIN / -1 overflows (and traps).
    if ((*divisor == -1 && coef == std::numeric_limits<int64_t>::min()) ||
        coef % *divisor != 0)
      return std::nullopt;
    r.terms[mono] = coef / *divisor;
  }
  return r;
}

std::optional<Dim>
Dim::substitute(const std::map<std::string, Dim> &values) const {
  Dim result;
  for (const auto &[mono, coef] : terms) {
    Dim term(coef);
    for (const std::string &name : mono) {
      auto it = values.find(name);
      std::optional<Dim> next =
          mul(term, it == values.end() ? Dim::symbol(name) : it->second);
      if (!next)
        return std::nullopt;
      term = *next;
    }
    std::optional<Dim> sum = add(result, term);
    if (!sum)
      return std::nullopt;
    result = *sum;
  }
  return result;
}

std::string Dim::str() const {
  if (terms.empty())
    return "0";
  std::string s;
  bool first = true;
  // Symbolic terms first (in map order), the constant last: `T - 1`.
  auto emit = [&](const std::vector<std::string> &mono, int64_t coef) {
    // Unsigned: -INT64_MIN does not fit in an int64_t.
    uint64_t mag = coef < 0 ? 0 - uint64_t(coef) : uint64_t(coef);
    if (first)
      s += coef < 0 ? "-" : "";
    else
      s += coef < 0 ? " - " : " + ";
    first = false;
    std::string body;
    if (mag != 1 || mono.empty())
      body = std::to_string(mag);
    for (const std::string &name : mono)
      body += (body.empty() ? "" : "*") + name;
    s += body;
  };
  for (const auto &[mono, coef] : terms)
    if (!mono.empty())
      emit(mono, coef);
  auto constant = terms.find({});
  if (constant != terms.end())
    emit({}, constant->second);
  return s;
}

llvm::StringRef loom::frontend::spell(DType t) {
  switch (t) {
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
  case DType::Bool:
    return "bool";
  }
  return "?";
}

std::optional<DType> loom::frontend::parseDType(llvm::StringRef name) {
  return llvm::StringSwitch<std::optional<DType>>(name)
      .Case("f32", DType::F32)
      .Case("bf16", DType::BF16)
      .Case("f16", DType::F16)
      .Case("f64", DType::F64)
      .Case("i32", DType::I32)
      .Case("bool", DType::Bool)
      .Default(std::nullopt);
}

std::string loom::frontend::shapeStr(llvm::ArrayRef<Dim> dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i)
    s += (i ? ", " : "") + dims[i].str();
  return s + "]";
}

std::string TensorType::shapeStr() const {
  return loom::frontend::shapeStr(dims);
}

std::string TensorType::str() const { return spell(dtype).str() + shapeStr(); }
