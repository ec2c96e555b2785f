//===- Tokenizer.h - WordPiece and byte-level BPE tokenizers ----*- C++ -*-===//
//
// The two tokenizers of the pretrained models Loom imports, in C++, giving
// the ids Hugging Face's `tokenizers` gives:
//
//   auto bert = loom::Tokenizer::fromDirectory("all-MiniLM-L6-v2/").value();
//   loom::Encoding e = bert->encodePair("A question?", "An answer.", 128);
//   // e.ids: [CLS] a question ? [SEP] an answer . [SEP]; e.segments: 0.. 1..
//
// - WordPiece (BERT, DistilBERT): BERT's normalizer (control characters
//   removed, whitespace made ' ', spaces around CJK ideographs, optional
//   lower-casing and accent stripping via NFD), split on whitespace and
//   punctuation (ASCII punctuation and Unicode P*), then greedy longest-match
//   word pieces with the "##" prefix; a word with no split, or longer than
//   100 characters, is [UNK].
// - Byte-level BPE (GPT-2, RoBERTa): GPT-2's pre-tokenization pattern
//   ('s 't 're 've 'm 'll 'd, ?\p{L}+, ?\p{N}+, ?[^\s\p{L}\p{N}]+, \s+(?!\S),
//   \s+), each piece's UTF-8 bytes as GPT-2's printable byte alphabet, merges
//   applied by rank.
//
// Files: a tokenizer.json (model type WordPiece or BPE), else vocab.txt
// (WordPiece, lower-cased), else vocab.json + merges.txt (BPE). Unicode
// properties and normalization come from ICU.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_TOKENIZER_H
#define LOOM_TOKENIZER_H

#include "loom/Status.h"
#include "loom/Tensor.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loom {

/// One encoded text (or text pair) with the model's special tokens.
struct Encoding {
  std::vector<int32_t> ids;
  /// Token type of each id: 0 for the first text (and its special tokens),
  /// 1 for the second.
  std::vector<int32_t> segments;
};

/// Texts padded (with padId()) or truncated to one length, without pairs.
struct BatchEncoding {
  Tensor tokens;   // i32[B, T]
  Tensor segments; // i32[B, T]: zeros
};

/// A tokenizer's files by name ("tokenizer.json", "vocab.txt",
/// "vocab.json", "merges.txt") and their text: what a directory holds, and
/// what `loomc import` keeps in a checkpoint's metadata.
using TokenizerFiles = std::map<std::string, std::string>;

class Tokenizer {
public:
  virtual ~Tokenizer();

  /// The tokenizer a checkpoint written by `loomc import` carries in its
  /// metadata (keys "loom.tokenizer/<file name>").
  static Result<std::unique_ptr<Tokenizer>>
  fromCheckpoint(const std::string &path);
  static constexpr const char *kMetadataPrefix = "loom.tokenizer/";
  /// The tokenizer files a checkpoint's metadata holds (empty: none).
  static TokenizerFiles
  filesInMetadata(const std::map<std::string, std::string> &metadata);

  /// The tokenizer files of directory `dir`.
  static Result<TokenizerFiles> readFiles(const std::string &dir);
  /// A tokenizer from files (tokenizer.json first, then vocab.txt, then
  /// vocab.json + merges.txt); `where` names them in errors.
  static Result<std::unique_ptr<Tokenizer>>
  fromFiles(const TokenizerFiles &files, const std::string &where);

  /// The tokenizer of a model directory (tokenizer.json, vocab.txt, or
  /// vocab.json + merges.txt).
  static Result<std::unique_ptr<Tokenizer>>
  fromDirectory(const std::string &dir);
  /// A WordPiece tokenizer from a vocab.txt (one token per line).
  static Result<std::unique_ptr<Tokenizer>>
  wordPieceFromVocab(const std::string &vocabTxt, bool lowercase = true);
  /// A byte-level BPE tokenizer from GPT-2's vocab.json and merges.txt.
  static Result<std::unique_ptr<Tokenizer>>
  bpeFromFiles(const std::string &vocabJson, const std::string &mergesTxt);

  /// "wordpiece" or "bpe".
  virtual std::string_view kind() const = 0;
  virtual int32_t vocabSize() const = 0;
  /// The id of token `token`, if it is in the vocabulary.
  virtual std::optional<int32_t> tokenId(std::string_view token) const = 0;
  /// The token of `id` ("" outside the vocabulary).
  virtual std::string token(int32_t id) const = 0;

  /// The tokens of `text`, without special tokens.
  virtual std::vector<std::string> tokenize(std::string_view text) const = 0;
  /// Their ids.
  std::vector<int32_t> encode(std::string_view text) const;
  /// Text from ids (special tokens skipped; WordPiece joins "##" pieces).
  virtual std::string decode(const std::vector<int32_t> &ids) const = 0;

  /// `text` (and `pair`) as the model reads them: BERT's
  /// [CLS] text [SEP] (pair [SEP]); RoBERTa's <s> text </s> (</s> pair
  /// </s>) when tokenizer.json's post-processor says so; nothing added for
  /// GPT-2; truncated to `maxLength` ids (0: no limit) by dropping tokens
  /// from the end of the longer text first.
  virtual Encoding encodePair(std::string_view text,
                              std::optional<std::string_view> pair = {},
                              int64_t maxLength = 0) const = 0;

  /// Each text as encodePair(text) padded or truncated to `length`.
  BatchEncoding encodeBatch(const std::vector<std::string> &texts,
                            int64_t length) const;

  /// The id that pads a batch ([PAD] for WordPiece; for BPE, tokenizer.json's
  /// padding id if any, else a <pad> token (RoBERTa's), else 0).
  virtual int32_t padId() const = 0;
};

} // namespace loom

#endif // LOOM_TOKENIZER_H
