//===- Json.cpp - A small strict JSON parser ------------------------------===//
//
// Recursive descent over a string_view; see Json.h for the subset.
//
//===----------------------------------------------------------------------===//

#include "Json.h"
#include "Utf8.h"

#include <cstdio>
#include <cstdlib>
#include <unordered_set>

namespace loom::json {

const Value *Value::find(std::string_view key) const {
  for (size_t i = 0; i < keys.size(); ++i)
    if (keys[i] == key)
      return &items[i];
  return nullptr;
}

namespace {

class Parser {
public:
  Parser(std::string_view text, Limits limits) : text(text), limits(limits) {}

  Result<Value> parseDocument() {
    Value value;
    skipSpace();
    if (!parseValue(value, 0))
      return Status::error(error);
    skipSpace();
    if (pos != text.size()) {
      fail("unexpected trailing characters after the JSON value");
      return Status::error(error);
    }
    return value;
  }

private:
  std::string_view text;
  Limits limits;
  size_t pos = 0, values = 0;
  std::string error;

  // Records the first error; false, so callers can `return fail(...)`.
  bool fail(const std::string &message) {
    if (error.empty())
      error = "at byte " + std::to_string(pos) + ": " + message;
    return false;
  }

  bool atEnd() const { return pos >= text.size(); }
  char peek() const { return atEnd() ? '\0' : text[pos]; }
  void skipSpace() {
    while (!atEnd() && (peek() == ' ' || peek() == '\t' || peek() == '\n' ||
                        peek() == '\r'))
      ++pos;
  }
  bool expect(char c, const char *what) {
    skipSpace();
    if (peek() != c || atEnd())
      return fail(std::string("expected ") + what);
    ++pos;
    return true;
  }

  bool parseValue(Value &out, int depth) {
    if (++values > limits.maxValues)
      return fail("more than " + std::to_string(limits.maxValues) +
                  " JSON values");
    skipSpace();
    if (atEnd())
      return fail("unexpected end of input, expected a value");
    char c = peek();
    if (c == '{' || c == '[') {
      if (depth >= limits.maxDepth)
        return fail("nesting deeper than " + std::to_string(limits.maxDepth) +
                    " levels");
      return c == '{' ? parseObject(out, depth + 1)
                      : parseArray(out, depth + 1);
    }
    if (c == '"') {
      out.kind = Value::Kind::String;
      return parseString(out.string);
    }
    if (c == '-' || (c >= '0' && c <= '9'))
      return parseNumber(out);
    if (c == 't' || c == 'f' || c == 'n') {
      if (!limits.fullJson)
        return fail("true, false and null are not allowed here");
      for (std::string_view word : {"true", "false", "null"})
        if (text.substr(pos, word.size()) == word) {
          pos += word.size();
          out.kind = word == "null" ? Value::Kind::Null : Value::Kind::Bool;
          out.boolean = word == "true";
          return true;
        }
      return fail("expected true, false or null");
    }
    return fail(std::string("unexpected character ") + describe(c));
  }

  bool parseObject(Value &out, int depth) {
    out.kind = Value::Kind::Object;
    ++pos; // '{'
    skipSpace();
    if (peek() == '}' && !atEnd()) {
      ++pos;
      return true;
    }
    std::unordered_set<std::string> seen;
    while (true) {
      skipSpace();
      if (peek() != '"' || atEnd())
        return fail("expected a string key in an object");
      size_t keyPos = pos;
      std::string key;
      if (!parseString(key))
        return false;
      if (!seen.insert(key).second) {
        pos = keyPos;
        return fail("duplicate key " + quote(key));
      }
      if (!expect(':', "':' after an object key"))
        return false;
      out.keys.push_back(std::move(key));
      out.items.emplace_back();
      if (!parseValue(out.items.back(), depth))
        return false;
      skipSpace();
      if (peek() == ',' && !atEnd()) {
        ++pos;
        continue;
      }
      return expect('}', "',' or '}' in an object");
    }
  }

  bool parseArray(Value &out, int depth) {
    out.kind = Value::Kind::Array;
    ++pos; // '['
    skipSpace();
    if (peek() == ']' && !atEnd()) {
      ++pos;
      return true;
    }
    while (true) {
      out.items.emplace_back();
      if (!parseValue(out.items.back(), depth))
        return false;
      skipSpace();
      if (peek() == ',' && !atEnd()) {
        ++pos;
        continue;
      }
      return expect(']', "',' or ']' in an array");
    }
  }

  /// An integer, or with Limits::fullJson a number with a fraction or an
  /// exponent (checked against JSON's grammar, converted with strtod).
  bool parseNumber(Value &out) {
    size_t start = pos;
    out.kind = Value::Kind::Integer;
    if (parseInteger(out.integer)) {
      out.number = double(out.integer);
      return true;
    }
    if (!limits.fullJson || !notInt64)
      return false;
    error.clear();
    pos = start;
    if (peek() == '-')
      ++pos;
    auto digits = [&] {
      size_t first = pos;
      while (!atEnd() && peek() >= '0' && peek() <= '9')
        ++pos;
      return pos > first;
    };
    digits();
    if (peek() == '.' && !atEnd()) {
      ++pos;
      if (!digits())
        return fail("expected a digit after '.'");
    }
    if (!atEnd() && (peek() == 'e' || peek() == 'E')) {
      ++pos;
      if (!atEnd() && (peek() == '+' || peek() == '-'))
        ++pos;
      if (!digits())
        return fail("expected a digit in the exponent");
    }
    std::string literal(text.substr(start, pos - start));
    out.kind = Value::Kind::Number;
    out.number = std::strtod(literal.c_str(), nullptr);
    return true;
  }

  // Set when the last parseInteger failed on a literal that is a valid
  // JSON number but not an int64 (a fraction, an exponent, out of range).
  bool notInt64 = false;

  bool parseInteger(int64_t &out) {
    notInt64 = false;
    bool negative = peek() == '-';
    if (negative)
      ++pos;
    if (atEnd() || peek() < '0' || peek() > '9')
      return fail("expected a digit");
    if (peek() == '0' && pos + 1 < text.size() && text[pos + 1] >= '0' &&
        text[pos + 1] <= '9')
      return fail("numbers may not have leading zeros");
    // Accumulate negatively so INT64_MIN fits.
    int64_t value = 0;
    while (!atEnd() && peek() >= '0' && peek() <= '9') {
      if (__builtin_mul_overflow(value, 10, &value) ||
          __builtin_sub_overflow(value, peek() - '0', &value)) {
        notInt64 = true;
        return fail("integer out of the 64-bit range");
      }
      ++pos;
    }
    if (!atEnd() && (peek() == '.' || peek() == 'e' || peek() == 'E')) {
      notInt64 = true;
      return fail("numbers must be integers");
    }
    if (!negative && value == INT64_MIN) {
      notInt64 = true;
      return fail("integer out of the 64-bit range");
    }
    out = negative ? value : -value;
    return true;
  }

  bool parseHex4(uint32_t &out) {
    out = 0;
    for (int i = 0; i < 4; ++i, ++pos) {
      char c = peek();
      int digit = c >= '0' && c <= '9'   ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                         : -1;
      if (atEnd() || digit < 0)
        return fail("expected 4 hex digits after \\u");
      out = out * 16 + static_cast<uint32_t>(digit);
    }
    return true;
  }

  bool parseString(std::string &out) {
    ++pos; // '"'
    while (true) {
      if (atEnd())
        return fail("unterminated string");
      char c = text[pos];
      if (c == '"') {
        ++pos;
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20)
        return fail("raw control character " + describe(c) + " in a string");
      ++pos;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (atEnd())
        return fail("unterminated escape");
      char e = text[pos++];
      switch (e) {
      case '"':
      case '\\':
      case '/':
        out += e;
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        uint32_t cp = 0;
        if (!parseHex4(cp))
          return false;
        if (cp >= 0xdc00 && cp <= 0xdfff)
          return fail("unpaired low surrogate in \\u escape");
        if (cp >= 0xd800 && cp <= 0xdbff) {
          uint32_t low = 0;
          if (text.substr(pos, 2) != "\\u")
            return fail("high surrogate not followed by a \\u escape");
          pos += 2;
          if (!parseHex4(low))
            return false;
          if (low < 0xdc00 || low > 0xdfff)
            return fail("high surrogate not followed by a low surrogate");
          cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        }
        utf8::append(out, cp);
        break;
      }
      default:
        --pos;
        return fail("invalid escape \\" + std::string(1, e));
      }
    }
  }

  static std::string describe(char c) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f)
      return std::string("'") + c + "'";
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", u);
    return hex;
  }
};

} // namespace

Result<Value> parse(std::string_view text, Limits limits) {
  return Parser(text, limits).parseDocument();
}

std::string quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\u%04x", u);
      out += escape;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

} // namespace loom::json
