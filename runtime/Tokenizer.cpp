//===- Tokenizer.cpp - WordPiece and byte-level BPE tokenizers ------------===//
//
// Text is decoded from UTF-8 into code points (an invalid byte becomes
// U+FFFD), normalized and split with ICU's character properties, and encoded
// back to UTF-8 for vocabulary lookups. The rules follow Hugging Face's
// `tokenizers` (BertNormalizer, BertPreTokenizer, WordPiece; ByteLevel, BPE);
// tests/unit/TokenizerTest.cpp checks the ids against it.
//
//===----------------------------------------------------------------------===//

#include "loom/Tokenizer.h"

#include "Json.h"
#include "Utf8.h"

#include "loom/Checkpoint.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <map>
#include <mutex>
#include <queue>
#include <sstream>
#include <tuple>
#include <unordered_map>

namespace loom {

Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  for (const std::string &piece : tokenize(text))
    if (std::optional<int32_t> id = tokenId(piece))
      ids.push_back(*id);
  return ids;
}

namespace {

//===----------------------------------------------------------------------===//
// UTF-8 and Unicode properties
//===----------------------------------------------------------------------===//

int8_t category(char32_t c) { return u_charType(UChar32(c)); }

bool isWhitespace(char32_t c) {
  return u_hasBinaryProperty(UChar32(c), UCHAR_WHITE_SPACE);
}
bool isLetter(char32_t c) {
  int8_t t = category(c);
  return t == U_UPPERCASE_LETTER || t == U_LOWERCASE_LETTER ||
         t == U_TITLECASE_LETTER || t == U_MODIFIER_LETTER ||
         t == U_OTHER_LETTER;
}
bool isNumber(char32_t c) {
  int8_t t = category(c);
  return t == U_DECIMAL_DIGIT_NUMBER || t == U_LETTER_NUMBER ||
         t == U_OTHER_NUMBER;
}
/// Unicode's P* categories.
bool isPunctuation(char32_t c) {
  int8_t t = category(c);
  return t == U_CONNECTOR_PUNCTUATION || t == U_DASH_PUNCTUATION ||
         t == U_START_PUNCTUATION || t == U_END_PUNCTUATION ||
         t == U_INITIAL_PUNCTUATION || t == U_FINAL_PUNCTUATION ||
         t == U_OTHER_PUNCTUATION;
}
/// Unicode's C* categories (control, format, unassigned, private, surrogate).
bool isOther(char32_t c) {
  int8_t t = category(c);
  return t == U_CONTROL_CHAR || t == U_FORMAT_CHAR || t == U_UNASSIGNED ||
         t == U_PRIVATE_USE_CHAR || t == U_SURROGATE;
}
bool isChineseChar(char32_t c) {
  return (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) ||
         (c >= 0x20000 && c <= 0x2a6df) || (c >= 0x2a700 && c <= 0x2b73f) ||
         (c >= 0x2b740 && c <= 0x2b81f) || (c >= 0x2b920 && c <= 0x2ceaf) ||
         (c >= 0xf900 && c <= 0xfaff) || (c >= 0x2f800 && c <= 0x2fa1f);
}

std::u16string toUtf16(std::u32string_view text) {
  std::u16string out;
  for (char32_t cp : text) {
    if (cp < 0x10000) {
      out.push_back(char16_t(cp));
    } else {
      cp -= 0x10000;
      out.push_back(char16_t(0xd800 + (cp >> 10)));
      out.push_back(char16_t(0xdc00 + (cp & 0x3ff)));
    }
  }
  return out;
}

std::u32string fromUtf16(const std::u16string &text) {
  std::u32string out;
  for (size_t i = 0; i < text.size(); ++i) {
    char32_t c = text[i];
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.size()) {
      char32_t low = text[i + 1];
      if (low >= 0xdc00 && low <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
        ++i;
      }
    }
    out.push_back(c);
  }
  return out;
}

/// Canonical decomposition (NFD).
std::u32string nfd(std::u32string_view text) {
  UErrorCode status = U_ZERO_ERROR;
  const UNormalizer2 *normalizer = unorm2_getNFDInstance(&status);
  std::u16string in = toUtf16(text);
  std::u16string out(in.size() * 4 + 16, u'\0');
  int32_t length = unorm2_normalize(
      normalizer, reinterpret_cast<const UChar *>(in.data()),
      int32_t(in.size()), reinterpret_cast<UChar *>(out.data()),
      int32_t(out.size()), &status);
  if (U_FAILURE(status))
    return std::u32string(text);
  out.resize(size_t(length));
  return fromUtf16(out);
}

/// Each character's full lower-case mapping (İ -> i + U+0307), without the
/// context-dependent final sigma: what `tokenizers` does.
std::u32string lowercase(std::u32string_view text) {
  std::u32string out;
  for (char32_t c : text) {
    if (c < 0x80) {
      out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
      continue;
    }
    std::u16string one = toUtf16(std::u32string_view(&c, 1));
    UChar lower[8];
    UErrorCode status = U_ZERO_ERROR;
    int32_t length =
        u_strToLower(lower, 8, reinterpret_cast<const UChar *>(one.data()),
                     int32_t(one.size()), "", &status);
    if (U_FAILURE(status) || length > 8) {
      out.push_back(c);
      continue;
    }
    std::u32string mapped = fromUtf16(
        std::u16string(reinterpret_cast<char16_t *>(lower), size_t(length)));
    out += mapped;
  }
  return out;
}

//===----------------------------------------------------------------------===//
// Files
//===----------------------------------------------------------------------===//

Result<std::string> readText(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::error("cannot read '" + path + "'");
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

bool fileExists(const std::string &path) {
  std::ifstream in(path);
  return bool(in);
}

/// The vocabulary (token -> id) of a JSON object.
Status vocabFromJson(const json::Value &object, const std::string &where,
                     std::unordered_map<std::string, int32_t> &vocab,
                     std::vector<std::string> &tokens) {
  if (object.kind != json::Value::Kind::Object)
    return Status::error(where + ": the vocabulary is not a JSON object");
  for (size_t i = 0; i < object.keys.size(); ++i) {
    const json::Value &id = object.items[i];
    if (id.kind != json::Value::Kind::Integer || id.integer < 0 ||
        id.integer > (1 << 24))
      return Status::error(where + ": the id of token " +
                           json::quote(object.keys[i]) +
                           " is not an integer in [0, 2^24]");
    vocab[object.keys[i]] = int32_t(id.integer);
    if (tokens.size() <= size_t(id.integer))
      tokens.resize(size_t(id.integer) + 1);
    tokens[size_t(id.integer)] = object.keys[i];
  }
  return Status::success();
}

/// Cuts `a` and `b` (b empty without a pair) to `budget` ids together, as
/// `tokenizers`' longest-first truncation splits it: a lone text keeps its
/// first `budget` ids; with a pair, when both exceed half the budget the
/// shorter keeps half (rounded down) and the longer the rest, else the
/// shorter is kept whole.
void truncateLongestFirst(std::vector<int32_t> &a, std::vector<int32_t> &b,
                          bool pair, int64_t budget) {
  budget = std::max<int64_t>(0, budget);
  if (!pair) {
    if (int64_t(a.size()) > budget)
      a.resize(size_t(budget));
    return;
  }
  if (int64_t(a.size() + b.size()) <= budget)
    return;
  bool swap = a.size() > b.size();
  int64_t shorter = int64_t(swap ? b.size() : a.size());
  shorter = std::min(shorter, budget / 2);
  (swap ? b : a).resize(size_t(shorter));
  (swap ? a : b).resize(size_t(budget - shorter));
}

//===----------------------------------------------------------------------===//
// A vocabulary of tokens by id
//===----------------------------------------------------------------------===//

class VocabTokenizer : public Tokenizer {
public:
  std::unordered_map<std::string, int32_t> vocab;
  std::vector<std::string> tokens;

  int32_t vocabSize() const override { return int32_t(tokens.size()); }
  std::optional<int32_t> tokenId(std::string_view token) const override {
    auto it = vocab.find(std::string(token));
    if (it == vocab.end())
      return std::nullopt;
    return it->second;
  }
  std::string token(int32_t id) const override {
    return id >= 0 && size_t(id) < tokens.size() ? tokens[size_t(id)] : "";
  }
};

//===----------------------------------------------------------------------===//
// WordPiece
//===----------------------------------------------------------------------===//

class WordPiece final : public VocabTokenizer {
public:
  bool lower = true;
  bool stripAccents = true;
  bool chineseChars = true;
  bool cleanText = true;
  bool cleanup = true;
  std::string prefix = "##";
  size_t maxChars = 100;
  std::string unk = "[UNK]", cls = "[CLS]", sep = "[SEP]", pad = "[PAD]";

  std::string_view kind() const override { return "wordpiece"; }
  int32_t padId() const override { return tokenId(pad).value_or(0); }

  Status check() const {
    for (const std::string *special : {&unk, &cls, &sep, &pad})
      if (!tokenId(*special))
        return Status::error("the vocabulary has no " + *special + " token");
    return Status::success();
  }

  /// BERT's normalizer.
  std::u32string normalize(std::u32string_view text) const {
    std::u32string out;
    for (char32_t c : text) {
      if (cleanText) {
        if (c == 0 || c == 0xfffd ||
            (c != '\t' && c != '\n' && c != '\r' && isOther(c)))
          continue;
        if (c == '\t' || c == '\n' || c == '\r' || isWhitespace(c)) {
          out.push_back(' ');
          continue;
        }
      }
      if (chineseChars && isChineseChar(c)) {
        out.push_back(' ');
        out.push_back(c);
        out.push_back(' ');
        continue;
      }
      out.push_back(c);
    }
    if (stripAccents) {
      std::u32string kept;
      for (char32_t c : nfd(out))
        if (category(c) != U_NON_SPACING_MARK)
          kept.push_back(c);
      out = std::move(kept);
    }
    if (lower)
      out = lowercase(out);
    return out;
  }

  /// Whitespace-separated words with each punctuation character alone.
  static std::vector<std::u32string> preTokenize(std::u32string_view text) {
    std::vector<std::u32string> words;
    std::u32string word;
    auto flush = [&] {
      if (!word.empty())
        words.push_back(std::move(word));
      word.clear();
    };
    for (char32_t c : text) {
      if (isWhitespace(c)) {
        flush();
      } else if ((c < 0x80 && std::ispunct(int(c))) || isPunctuation(c)) {
        flush();
        words.push_back(std::u32string(1, c));
      } else {
        word.push_back(c);
      }
    }
    flush();
    return words;
  }

  /// Greedy longest-match pieces of one word, or [UNK].
  void pieces(const std::u32string &word, std::vector<std::string> &out) const {
    if (word.size() > maxChars) {
      out.push_back(unk);
      return;
    }
    std::vector<std::string> found;
    size_t start = 0;
    while (start < word.size()) {
      size_t end = word.size();
      std::string match;
      for (; end > start; --end) {
        std::string piece = utf8::encode(word.substr(start, end - start));
        if (start > 0)
          piece = prefix + piece;
        if (vocab.count(piece)) {
          match = std::move(piece);
          break;
        }
      }
      if (match.empty()) {
        out.push_back(unk);
        return;
      }
      found.push_back(std::move(match));
      start = end;
    }
    out.insert(out.end(), found.begin(), found.end());
  }

  std::vector<std::string> tokenize(std::string_view text) const override {
    std::vector<std::string> out;
    for (const std::u32string &word :
         preTokenize(normalize(utf8::decode(text))))
      pieces(word, out);
    return out;
  }

  /// Tokens joined by spaces, "##" pieces glued to their word, special
  /// tokens skipped; with clean-up (the WordPiece decoder's default), each
  /// token loses the space before it when it is . , ? or ! (`tokenizers`
  /// cleans token by token).
  std::string decode(const std::vector<int32_t> &ids) const override {
    std::string text;
    for (int32_t id : ids) {
      std::string t = token(id);
      if (t.empty() || t == cls || t == sep || t == pad || t == unk ||
          t == "[MASK]")
        continue;
      if (t.rfind(prefix, 0) == 0 && !text.empty()) {
        text += t.substr(prefix.size());
        continue;
      }
      bool glued = cleanup && (t == "." || t == "," || t == "?" || t == "!");
      text += (text.empty() || glued ? "" : " ") + t;
    }
    return text;
  }

  Encoding encodePair(std::string_view text,
                      std::optional<std::string_view> pair,
                      int64_t maxLength) const override {
    std::vector<int32_t> a = encode(text), b;
    if (pair)
      b = encode(*pair);
    if (maxLength > 0)
      truncateLongestFirst(a, b, pair.has_value(), maxLength - (pair ? 3 : 2));
    Encoding e;
    e.ids.push_back(*tokenId(cls));
    e.ids.insert(e.ids.end(), a.begin(), a.end());
    e.ids.push_back(*tokenId(sep));
    e.segments.assign(e.ids.size(), 0);
    if (pair) {
      e.ids.insert(e.ids.end(), b.begin(), b.end());
      e.ids.push_back(*tokenId(sep));
      e.segments.resize(e.ids.size(), 1);
    }
    return e;
  }
};

//===----------------------------------------------------------------------===//
// Byte-level BPE
//===----------------------------------------------------------------------===//

/// GPT-2's printable alphabet for bytes: printable Latin-1 bytes stand for
/// themselves, the others for U+0100 upwards in byte order.
std::array<char32_t, 256> byteAlphabet() {
  std::array<char32_t, 256> map{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    bool printable =
        (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
    map[size_t(b)] = printable ? char32_t(b) : next++;
  }
  return map;
}

class ByteLevelBpe final : public VocabTokenizer {
public:
  std::map<std::pair<std::string, std::string>, int32_t> ranks;
  std::array<char32_t, 256> alphabet = byteAlphabet();
  std::unordered_map<char32_t, uint8_t> byteOf;
  bool addPrefixSpace = false;
  int32_t pad = 0;
  /// RoBERTa's <s> text </s> (</s></s> pair </s>); absent for GPT-2.
  std::optional<int32_t> bos, eos;
  mutable std::mutex cacheMutex; // encode may run on several threads
  mutable std::unordered_map<std::string, std::vector<std::string>> cache;

  ByteLevelBpe() {
    for (int b = 0; b < 256; ++b)
      byteOf[alphabet[size_t(b)]] = uint8_t(b);
  }

  std::string_view kind() const override { return "bpe"; }
  int32_t padId() const override { return pad; }

  /// GPT-2's pre-tokenization pattern, by hand over code points.
  static std::vector<std::u32string> preTokenize(const std::u32string &s) {
    std::vector<std::u32string> out;
    size_t i = 0, n = s.size();
    auto run = [&](size_t from, auto predicate) {
      size_t j = from;
      while (j < n && predicate(s[j]))
        ++j;
      return j;
    };
    auto isOtherChar = [](char32_t c) {
      return !isWhitespace(c) && !isLetter(c) && !isNumber(c);
    };
    while (i < n) {
      // 's 't 're 've 'm 'll 'd
      if (s[i] == '\'') {
        size_t matched = 0;
        for (std::u32string_view suffix :
             {U"s", U"t", U"re", U"ve", U"m", U"ll", U"d"})
          if (s.compare(i + 1, suffix.size(), suffix) == 0) {
            matched = 1 + suffix.size();
            break;
          }
        if (matched) {
          out.push_back(s.substr(i, matched));
          i += matched;
          continue;
        }
      }
      // An optional space, then letters, digits or other symbols.
      size_t start = i + (s[i] == ' ' && i + 1 < n ? 1 : 0);
      size_t end = start;
      if (start < n && isLetter(s[start]))
        end = run(start, isLetter);
      else if (start < n && isNumber(s[start]))
        end = run(start, isNumber);
      else if (start < n && isOtherChar(s[start]))
        end = run(start, isOtherChar);
      if (end > start) {
        out.push_back(s.substr(i, end - i));
        i = end;
        continue;
      }
      // Whitespace: all of it at the end or before more whitespace; before
      // a non-space, all but the last (which the next piece takes).
      end = run(i, isWhitespace);
      if (end < n && end - i > 1)
        --end;
      out.push_back(s.substr(i, end - i));
      i = end;
    }
    return out;
  }

  /// The BPE symbols of one pre-token (already in the byte alphabet).
  std::vector<std::string> merge(const std::string &word) const {
    {
      std::lock_guard<std::mutex> lock(cacheMutex);
      auto cached = cache.find(word);
      if (cached != cache.end())
        return cached->second;
    }
    // The symbols as a linked list, and a heap of adjacent pairs by (rank,
    // position): the lowest rank first, its occurrences left to right, as
    // merging every occurrence of the best pair per round does (a merge's
    // result always ranks after its parts), in O(n log n) for a word of n
    // symbols instead of O(n^2).
    std::vector<std::string> symbols;
    for (char32_t c : utf8::decode(word)) {
      std::string one;
      utf8::append(one, c);
      symbols.push_back(std::move(one));
    }
    size_t n = symbols.size();
    std::vector<int64_t> prev(n), next(n);
    std::vector<bool> alive(n, true);
    for (size_t k = 0; k < n; ++k) {
      prev[k] = int64_t(k) - 1;
      next[k] = k + 1 < n ? int64_t(k + 1) : -1;
    }
    using Candidate = std::tuple<int32_t, int64_t, int64_t>; // rank, left,
                                                             // right
    std::priority_queue<Candidate, std::vector<Candidate>,
                        std::greater<Candidate>>
        heap;
    auto consider = [&](int64_t left) {
      if (left < 0 || next[left] < 0)
        return;
      auto it = ranks.find({symbols[left], symbols[next[left]]});
      if (it != ranks.end())
        heap.emplace(it->second, left, next[left]);
    };
    for (size_t k = 0; k + 1 < n; ++k)
      consider(int64_t(k));
    while (!heap.empty()) {
      auto [rank, left, right] = heap.top();
      heap.pop();
      // Stale: a side was merged away or the pair changed since.
      if (!alive[left] || !alive[right] || next[left] != right)
        continue;
      auto it = ranks.find({symbols[left], symbols[right]});
      if (it == ranks.end() || it->second != rank)
        continue;
      symbols[left] += symbols[right];
      alive[right] = false;
      next[left] = next[right];
      if (next[right] >= 0)
        prev[next[right]] = left;
      consider(prev[left]);
      consider(left);
    }
    std::vector<std::string> merged;
    for (int64_t k = n ? 0 : -1; k >= 0; k = next[k])
      merged.push_back(std::move(symbols[k]));
    symbols = std::move(merged);
    std::lock_guard<std::mutex> lock(cacheMutex);
    if (cache.size() < 100000)
      cache[word] = symbols;
    return symbols;
  }

  std::vector<std::string> tokenize(std::string_view text) const override {
    std::u32string s = utf8::decode(text);
    if (addPrefixSpace && !s.empty() && s[0] != ' ')
      s.insert(s.begin(), U' ');
    std::vector<std::string> out;
    for (const std::u32string &piece : preTokenize(s)) {
      std::string mapped;
      for (unsigned char byte : utf8::encode(piece))
        utf8::append(mapped, alphabet[byte]);
      for (std::string &symbol : merge(mapped))
        out.push_back(std::move(symbol));
    }
    return out;
  }

  std::string decode(const std::vector<int32_t> &ids) const override {
    std::string bytes;
    for (int32_t id : ids)
      for (char32_t c : utf8::decode(token(id))) {
        auto it = byteOf.find(c);
        if (it != byteOf.end())
          bytes += char(it->second);
      }
    return bytes;
  }

  Encoding encodePair(std::string_view text,
                      std::optional<std::string_view> pair,
                      int64_t maxLength) const override {
    Encoding e;
    std::vector<int32_t> a = encode(text), b;
    if (pair)
      b = encode(*pair);
    bool wrap = bos && eos;
    int64_t special = wrap ? (pair ? 4 : 2) : 0;
    if (maxLength > 0)
      truncateLongestFirst(a, b, pair.has_value(), maxLength - special);
    if (wrap)
      e.ids.push_back(*bos);
    e.ids.insert(e.ids.end(), a.begin(), a.end());
    if (wrap)
      e.ids.push_back(*eos);
    if (pair) {
      if (wrap)
        e.ids.push_back(*eos);
      e.ids.insert(e.ids.end(), b.begin(), b.end());
      if (wrap)
        e.ids.push_back(*eos);
    }
    // RoBERTa's type ids are all 0; GPT-2 has none either.
    e.segments.assign(e.ids.size(), 0);
    return e;
  }

  Status addMerge(const std::string &left, const std::string &right,
                  const std::string &where) {
    if (left.empty() || right.empty())
      return Status::error(where + ": merge " +
                           json::quote(left + " " + right) +
                           " is not two symbols");
    ranks.emplace(std::make_pair(left, right), int32_t(ranks.size()));
    return Status::success();
  }
};

Result<std::unique_ptr<Tokenizer>> fromTokenizerJson(const std::string &text,
                                                     const std::string &path) {
  json::Limits limits;
  limits.fullJson = true;
  Result<json::Value> root = json::parse(text, limits);
  if (!root.ok())
    return root.status().withContext(path);
  const json::Value *model = root->find("model");
  const json::Value *type = model ? model->find("type") : nullptr;
  if (!type || type->kind != json::Value::Kind::String)
    return Status::error(path + ": no model.type");
  const json::Value *vocab = model->find("vocab");
  if (!vocab)
    return Status::error(path + ": no model.vocab");
  auto string = [](const json::Value *object, const char *key,
                   std::string fallback) {
    const json::Value *v = object ? object->find(key) : nullptr;
    return v && v->kind == json::Value::Kind::String ? v->string : fallback;
  };
  auto flag = [](const json::Value *object, const char *key,
                 std::optional<bool> fallback) -> std::optional<bool> {
    const json::Value *v = object ? object->find(key) : nullptr;
    return v && v->kind == json::Value::Kind::Bool ? std::optional(v->boolean)
                                                   : fallback;
  };
  if (type->string == "WordPiece") {
    auto t = std::make_unique<WordPiece>();
    LOOM_RETURN_IF_ERROR(vocabFromJson(*vocab, path, t->vocab, t->tokens));
    t->unk = string(model, "unk_token", "[UNK]");
    t->prefix = string(model, "continuing_subword_prefix", "##");
    if (const json::Value *m = model->find("max_input_chars_per_word"))
      if (m->kind == json::Value::Kind::Integer && m->integer > 0)
        t->maxChars = size_t(m->integer);
    const json::Value *normalizer = root->find("normalizer");
    if (normalizer && normalizer->kind == json::Value::Kind::Object) {
      if (string(normalizer, "type", "") != "BertNormalizer")
        return Status::error(path + ": normalizer " +
                             json::quote(string(normalizer, "type", "?")) +
                             " is not supported (BertNormalizer)");
      t->lower = *flag(normalizer, "lowercase", true);
      t->stripAccents =
          flag(normalizer, "strip_accents", std::nullopt).value_or(t->lower);
      t->chineseChars = *flag(normalizer, "handle_chinese_chars", true);
      t->cleanText = *flag(normalizer, "clean_text", true);
    }
    const json::Value *decoder = root->find("decoder");
    if (decoder && decoder->kind == json::Value::Kind::Object)
      t->cleanup = *flag(decoder, "cleanup", true);
    LOOM_RETURN_IF_ERROR(t->check().withContext(path));
    return std::unique_ptr<Tokenizer>(std::move(t));
  }
  if (type->string == "BPE") {
    auto t = std::make_unique<ByteLevelBpe>();
    LOOM_RETURN_IF_ERROR(vocabFromJson(*vocab, path, t->vocab, t->tokens));
    const json::Value *merges = model->find("merges");
    if (!merges || merges->kind != json::Value::Kind::Array)
      return Status::error(path + ": no model.merges array");
    for (const json::Value &m : merges->items) {
      if (m.kind == json::Value::Kind::String) {
        size_t space = m.string.find(' ');
        LOOM_RETURN_IF_ERROR(t->addMerge(
            m.string.substr(0, space),
            space == std::string::npos ? "" : m.string.substr(space + 1),
            path));
      } else if (m.kind == json::Value::Kind::Array && m.items.size() == 2 &&
                 m.items[0].kind == json::Value::Kind::String &&
                 m.items[1].kind == json::Value::Kind::String) {
        LOOM_RETURN_IF_ERROR(
            t->addMerge(m.items[0].string, m.items[1].string, path));
      } else {
        return Status::error(path + ": a merge is neither \"a b\" nor "
                                    "[\"a\", \"b\"]");
      }
    }
    const json::Value *pre = root->find("pre_tokenizer");
    if (pre && pre->kind == json::Value::Kind::Object) {
      if (string(pre, "type", "") != "ByteLevel")
        return Status::error(path + ": pre_tokenizer " +
                             json::quote(string(pre, "type", "?")) +
                             " is not supported (ByteLevel)");
      t->addPrefixSpace = *flag(pre, "add_prefix_space", false);
    }
    // The padding id: tokenizer.json's, else a <pad> token (RoBERTa's 1),
    // else 0.
    t->pad = t->tokenId("<pad>").value_or(0);
    if (const json::Value *padding = root->find("padding"))
      if (const json::Value *id = padding->find("pad_id"))
        if (id->kind == json::Value::Kind::Integer)
          t->pad = int32_t(id->integer);
    const json::Value *post = root->find("post_processor");
    if (post && string(post, "type", "") == "RobertaProcessing") {
      auto idOf = [&](const char *key) -> std::optional<int32_t> {
        const json::Value *v = post->find(key);
        if (v && v->kind == json::Value::Kind::Array && v->items.size() == 2 &&
            v->items[1].kind == json::Value::Kind::Integer)
          return int32_t(v->items[1].integer);
        return std::nullopt;
      };
      t->bos = idOf("cls");
      t->eos = idOf("sep");
    }
    return std::unique_ptr<Tokenizer>(std::move(t));
  }
  return Status::error(path + ": model type " + json::quote(type->string) +
                       " is not supported (WordPiece or BPE)");
}

Result<std::unique_ptr<Tokenizer>> wordPieceFromText(const std::string &text,
                                                     bool lowercase,
                                                     const std::string &path) {
  auto t = std::make_unique<WordPiece>();
  t->lower = t->stripAccents = lowercase;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    t->vocab.emplace(line, int32_t(t->tokens.size()));
    t->tokens.push_back(line);
  }
  LOOM_RETURN_IF_ERROR(t->check().withContext(path));
  return std::unique_ptr<Tokenizer>(std::move(t));
}

Result<std::unique_ptr<Tokenizer>> bpeFromText(const std::string &vocabText,
                                               const std::string &mergesText,
                                               const std::string &vocabPath,
                                               const std::string &mergesPath) {
  json::Limits limits;
  limits.fullJson = true;
  Result<json::Value> vocab = json::parse(vocabText, limits);
  if (!vocab.ok())
    return vocab.status().withContext(vocabPath);
  auto t = std::make_unique<ByteLevelBpe>();
  LOOM_RETURN_IF_ERROR(vocabFromJson(*vocab, vocabPath, t->vocab, t->tokens));
  t->pad = t->tokenId("<pad>").value_or(0);
  std::istringstream lines(mergesText);
  std::string line;
  int64_t number = 0;
  while (std::getline(lines, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.empty() || line.rfind("#version", 0) == 0)
      continue;
    size_t space = line.find(' ');
    LOOM_RETURN_IF_ERROR(
        t->addMerge(line.substr(0, space),
                    space == std::string::npos ? "" : line.substr(space + 1),
                    mergesPath + ":" + std::to_string(number)));
  }
  return std::unique_ptr<Tokenizer>(std::move(t));
}

} // namespace

Result<std::unique_ptr<Tokenizer>>
Tokenizer::wordPieceFromVocab(const std::string &vocabTxt, bool lowercase) {
  Result<std::string> text = readText(vocabTxt);
  if (!text.ok())
    return text.status();
  return wordPieceFromText(*text, lowercase, vocabTxt);
}

Result<std::unique_ptr<Tokenizer>>
Tokenizer::bpeFromFiles(const std::string &vocabJson,
                        const std::string &mergesTxt) {
  Result<std::string> vocabText = readText(vocabJson);
  if (!vocabText.ok())
    return vocabText.status();
  Result<std::string> merges = readText(mergesTxt);
  if (!merges.ok())
    return merges.status();
  return bpeFromText(*vocabText, *merges, vocabJson, mergesTxt);
}

Result<TokenizerFiles> Tokenizer::readFiles(const std::string &dir) {
  TokenizerFiles files;
  for (const char *name :
       {"tokenizer.json", "vocab.txt", "vocab.json", "merges.txt"}) {
    std::string path = dir + "/" + name;
    if (!fileExists(path))
      continue;
    Result<std::string> text = readText(path);
    if (!text.ok())
      return text.status();
    files[name] = std::move(*text);
  }
  if (!files.count("tokenizer.json") && !files.count("vocab.txt") &&
      !(files.count("vocab.json") && files.count("merges.txt")))
    return Status::error("'" + dir +
                         "' has no tokenizer.json, vocab.txt or vocab.json + "
                         "merges.txt");
  return files;
}

Result<std::unique_ptr<Tokenizer>>
Tokenizer::fromFiles(const TokenizerFiles &files, const std::string &where) {
  auto find = [&](const char *name) -> const std::string * {
    auto it = files.find(name);
    return it == files.end() ? nullptr : &it->second;
  };
  if (const std::string *json = find("tokenizer.json"))
    return fromTokenizerJson(*json, where + "/tokenizer.json");
  if (const std::string *vocab = find("vocab.txt"))
    return wordPieceFromText(*vocab, true, where + "/vocab.txt");
  const std::string *vocab = find("vocab.json"), *merges = find("merges.txt");
  if (vocab && merges)
    return bpeFromText(*vocab, *merges, where + "/vocab.json",
                       where + "/merges.txt");
  return Status::error(where + ": no tokenizer.json, vocab.txt or vocab.json + "
                               "merges.txt");
}

TokenizerFiles
Tokenizer::filesInMetadata(const std::map<std::string, std::string> &metadata) {
  TokenizerFiles files;
  std::string_view prefix = kMetadataPrefix;
  for (const auto &[key, value] : metadata)
    if (key.rfind(prefix, 0) == 0)
      files[key.substr(prefix.size())] = value;
  return files;
}

Result<std::unique_ptr<Tokenizer>>
Tokenizer::fromCheckpoint(const std::string &path) {
  auto metadata = readCheckpointMetadata(path);
  if (!metadata.ok())
    return metadata.status();
  TokenizerFiles files = filesInMetadata(*metadata);
  if (files.empty())
    return Status::error("checkpoint '" + path +
                         "' carries no tokenizer (import a model directory "
                         "that has one, or pass --tokenizer DIR)");
  return fromFiles(files, "checkpoint '" + path + "'");
}

Result<std::unique_ptr<Tokenizer>>
Tokenizer::fromDirectory(const std::string &dir) {
  Result<TokenizerFiles> files = readFiles(dir);
  if (!files.ok())
    return files.status();
  return fromFiles(*files, dir);
}

BatchEncoding Tokenizer::encodeBatch(const std::vector<std::string> &texts,
                                     int64_t length) const {
  BatchEncoding batch;
  int64_t rows = int64_t(texts.size());
  batch.tokens = Tensor::empty(DType::I32, {rows, length});
  batch.segments = Tensor::empty(DType::I32, {rows, length});
  for (int64_t r = 0; r < rows; ++r) {
    Encoding e = encodePair(texts[size_t(r)], std::nullopt, length);
    e.ids.resize(size_t(length), padId());
    e.segments.resize(size_t(length), 0);
    std::copy(e.ids.begin(), e.ids.end(),
              batch.tokens.data<int32_t>() + r * length);
    std::copy(e.segments.begin(), e.segments.end(),
              batch.segments.data<int32_t>() + r * length);
  }
  return batch;
}

} // namespace loom
