//===- Utf8.h - UTF-8 encoding and decoding (internal) ----------*- C++ -*-===//
//
// One implementation for the JSON parser, the labeled-text reader and the
// tokenizers. Valid means well-formed UTF-8: no overlong forms, surrogates
// or values past U+10FFFF.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_RUNTIME_UTF8_H
#define LOOM_RUNTIME_UTF8_H

#include <string>
#include <string_view>

namespace loom::utf8 {

/// Appends code point `cp` (at most U+10FFFF) to `out`.
void append(std::string &out, char32_t cp);
std::string encode(std::u32string_view text);

/// The length of the well-formed sequence at byte `i` of `text` and its
/// code point in `cp`; 0 when the bytes there are not one.
size_t sequenceAt(std::string_view text, size_t i, char32_t &cp);

/// The code points of `text`; each byte that starts no well-formed sequence
/// becomes U+FFFD.
std::u32string decode(std::string_view text);

bool valid(std::string_view text);

} // namespace loom::utf8

#endif // LOOM_RUNTIME_UTF8_H
