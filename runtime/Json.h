//===- Json.h - A small strict JSON parser (internal) -----------*- C++ -*-===//
//
// By default just the subset safetensors headers use: objects, arrays,
// strings (with every JSON escape, \u surrogate pairs included) and
// integers; with Limits::fullJson also numbers with fractions or exponents,
// true, false and null (Hugging Face's config.json and tokenizer.json).
// Strict either way: no leading zeros, duplicate keys, raw control
// characters or trailing garbage; nesting deeper than 64 and more than 4M
// values are refused, so hostile input cannot exhaust the stack or memory.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_RUNTIME_JSON_H
#define LOOM_RUNTIME_JSON_H

#include "loom/Status.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace loom::json {

struct Value {
  enum class Kind { Object, Array, String, Integer, Number, Bool, Null };
  Kind kind = Kind::Integer;
  int64_t integer = 0;
  /// The value of an Integer or Number (integers beyond 2^53 rounded).
  double number = 0;
  bool boolean = false;
  std::string string;
  std::vector<std::string> keys; // object keys, in order
  std::vector<Value> items;      // array elements, or the object's values

  /// The value of object key `key`, or null.
  const Value *find(std::string_view key) const;
};

struct Limits {
  int maxDepth = 64;
  size_t maxValues = size_t(1) << 22;
  /// Accept numbers with fractions or exponents, true, false and null.
  bool fullJson = false;
};

/// Parses `text` (surrounding whitespace allowed). Errors read
/// "at byte 17: expected ':' after an object key".
Result<Value> parse(std::string_view text, Limits limits = {});

/// `text` as a JSON string literal, quotes included.
std::string quote(std::string_view text);

} // namespace loom::json

#endif // LOOM_RUNTIME_JSON_H
