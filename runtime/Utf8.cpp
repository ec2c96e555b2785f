//===- Utf8.cpp - UTF-8 encoding and decoding -----------------------------===//

#include "Utf8.h"

namespace loom::utf8 {

void append(std::string &out, char32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xc0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += char(0xe0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  } else {
    out += char(0xf0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3f));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  }
}

std::string encode(std::u32string_view text) {
  std::string out;
  for (char32_t cp : text)
    append(out, cp);
  return out;
}

size_t sequenceAt(std::string_view text, size_t i, char32_t &cp) {
  unsigned char b = text[i];
  size_t length = b < 0x80           ? 1
                  : (b >> 5) == 0x6  ? 2
                  : (b >> 4) == 0xe  ? 3
                  : (b >> 3) == 0x1e ? 4
                                     : 0;
  if (length == 0 || i + length > text.size())
    return 0;
  cp = length == 1   ? b
       : length == 2 ? b & 0x1f
       : length == 3 ? b & 0x0f
                     : b & 0x07;
  for (size_t k = 1; k < length; ++k) {
    unsigned char c = text[i + k];
    if ((c & 0xc0) != 0x80)
      return 0;
    cp = cp << 6 | (c & 0x3f);
  }
  static const char32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < smallest[length] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return length;
}

std::u32string decode(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    char32_t cp = 0;
    size_t length = sequenceAt(text, i, cp);
    out.push_back(length ? cp : char32_t(0xfffd));
    i += length ? length : 1;
  }
  return out;
}

bool valid(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    char32_t cp = 0;
    size_t length = sequenceAt(text, i, cp);
    if (!length)
      return false;
    i += length;
  }
  return true;
}

} // namespace loom::utf8
