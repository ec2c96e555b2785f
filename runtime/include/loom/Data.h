//===- Data.h - Tokenizer, corpora and training batches ---------*- C++ -*-===//
//
// Deterministic data pipelines for the example models. Every random choice
// comes from `Rng` (xoshiro256** seeded through SplitMix64, and only integer
// arithmetic or exact comparisons on top), so a seed gives the same batches
// on every machine and standard library.
//
//   causal LM  (examples/gpt.loom loss)          sampleLmBatch
//   MLM + NSP  (examples/bert.loom loss)         sampleBertBatch
//   classify   (examples/bert.loom finetune_loss) sampleCountTask
//   seq2seq    (examples/transformer.loom and examples/seq2seq_lstm.loom
//               loss)                            sampleSeq2SeqBatch
//
// Each batch's inputs() lists its tensors in the order of the loss
// function's parameters, ready for Model::call. All tensors are i32.
// docs/training.md describes the layouts.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_DATA_H
#define LOOM_DATA_H

#include "loom/Status.h"
#include "loom/Tensor.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace loom {

//===----------------------------------------------------------------------===//
// Random numbers
//===----------------------------------------------------------------------===//

/// xoshiro256** (Blackman and Vigna 2018); the state is four SplitMix64
/// outputs of the seed.
class Rng {
public:
  explicit Rng(uint64_t seed = 0);
  /// 64 random bits.
  uint64_t next();
  /// Uniform in [0, n) without bias (Lemire's multiply-and-reject); n > 0.
  uint64_t below(uint64_t n);
  /// Uniform in [lo, hi], both included; lo <= hi.
  int64_t between(int64_t lo, int64_t hi);
  /// Uniform in [0, 1): the top 53 bits times 2^-53.
  double uniform();

private:
  uint64_t state[4];
};

//===----------------------------------------------------------------------===//
// Bytes and tokens
//===----------------------------------------------------------------------===//

/// Byte-level tokens: id = byte value, vocabulary 256.
class ByteTokenizer {
public:
  static constexpr int32_t kVocabSize = 256;
  int32_t vocabSize() const { return kVocabSize; }

  /// One id per byte of `text`.
  std::vector<int32_t> encode(std::string_view text) const;
  /// The bytes of the ids; an id outside [0, 256) becomes '?'.
  std::string decode(const std::vector<int32_t> &ids) const;
  /// A readable rendering: printable ASCII as is (backslash doubled), \n,
  /// \t and \r escaped, any other byte as \xHH, an id outside [0, 256) as
  /// <id>.
  std::string printable(const std::vector<int32_t> &ids) const;
};

/// The whole file as bytes; errors if it is missing, unreadable, not a
/// regular file, or empty.
Result<std::vector<uint8_t>> readCorpus(const std::string &path);

struct CorpusSplit {
  std::vector<uint8_t> train;
  std::vector<uint8_t> validation;
};

/// A contiguous split: the first bytes train, the last
/// floor(size * validationFraction) bytes validation. Errors unless
/// 0 <= validationFraction < 1, and unless both parts are non-empty when
/// the fraction is above 0.
Result<CorpusSplit> splitCorpus(const std::vector<uint8_t> &bytes,
                                double validationFraction);

/// The values of an i32 tensor (any shape, contiguous), e.g. a row of a
/// batch for ByteTokenizer::printable. Empty for any other dtype.
std::vector<int32_t> tensorValues(const Tensor &tensor);

//===----------------------------------------------------------------------===//
// Causal language modelling (gpt.loom: loss(tokens, targets))
//===----------------------------------------------------------------------===//

struct LmBatch {
  Tensor tokens;  // i32[B, T]: window bytes 0 .. T-1
  Tensor targets; // i32[B, T]: window bytes 1 .. T (tokens shifted by one)
  std::vector<Tensor> inputs() const { return {tokens, targets}; }
};

/// B windows of T + 1 consecutive bytes of `data`, each starting at a
/// uniform random offset in [0, size - T - 1]. Errors unless B >= 1,
/// T >= 1 and data holds at least T + 1 bytes.
Result<LmBatch> sampleLmBatch(const std::vector<uint8_t> &data, int64_t batch,
                              int64_t seqLen, Rng &rng);
/// The same over token ids (a tokenized corpus).
Result<LmBatch> sampleLmBatch(const std::vector<int32_t> &ids, int64_t batch,
                              int64_t seqLen, Rng &rng);

//===----------------------------------------------------------------------===//
// BERT pre-training (bert.loom: loss(tokens, segments, mlm_targets,
// nsp_labels))
//===----------------------------------------------------------------------===//

/// Token ids and rates of the BERT pipeline. bert.loom has a byte vocabulary
/// (vocab = 256) with pad = 0 and no other special tokens, so the specials
/// take the next control bytes, which do not occur in text: [CLS] = 1 (SOH),
/// [SEP] = 2 (STX), [MASK] = 3 (ETX). A corpus byte equal to a special id is
/// read as a space. ignoreIndex = -100 is cross_entropy's default, which
/// bert.loom's loss uses for mlm_targets.
struct BertDataConfig {
  int32_t vocab = 256;
  int32_t pad = 0;
  int32_t cls = 1;
  int32_t sep = 2;
  int32_t mask = 3;
  int32_t ignoreIndex = -100;
  /// The share of the non-special positions selected for prediction
  /// (round(fraction * count), at least 1, per sequence).
  double selectFraction = 0.15;
  /// Of the selected: the share replaced by [MASK], and the share replaced
  /// by a random non-special token; the rest keep their token.
  double maskShare = 0.8;
  double randomShare = 0.1;
  /// BERT's next-sentence pairs; false (RoBERTa): B always continues A (one
  /// run of text), segment ids and NSP labels all 0.
  bool nextSentence = true;
};

/// NSP labels follow BERT: 0 = B is the true continuation of A, 1 = B is a
/// random segment.
struct BertBatch {
  Tensor tokens;     // i32[B, T]: [CLS] A [SEP] B [SEP], masked
  Tensor segments;   // i32[B, T]: 0 over [CLS] A [SEP], 1 over B [SEP]
  Tensor mlmTargets; // i32[B, T]: the original token where selected, else
                     // ignoreIndex
  Tensor nspLabels;  // i32[B]
  std::vector<Tensor> inputs() const {
    return {tokens, segments, mlmTargets, nspLabels};
  }
};

/// Each row: A is a run of len_A bytes at a uniform random offset of the
/// corpus, len_A uniform in [1, T - 4], len_B = T - 3 - len_A (no padding).
/// With probability 1/2, B is the len_B bytes right after A (label 0),
/// otherwise len_B bytes at another uniform random offset (label 1). Then
/// the MLM selection and replacement of BertDataConfig. Errors unless
/// B >= 1, T >= 5, the corpus holds at least T - 3 bytes and the config is
/// consistent (distinct specials inside the vocabulary, shares in [0, 1]
/// summing to at most 1).
Result<BertBatch> sampleBertBatch(const std::vector<uint8_t> &corpus,
                                  int64_t batch, int64_t seqLen, Rng &rng,
                                  const BertDataConfig &config = {});

//===----------------------------------------------------------------------===//
// Sequence classification (bert.loom: finetune_loss(tokens, segments,
// labels))
//===----------------------------------------------------------------------===//

/// A synthetic task: a sequence of letters drawn uniformly from `alphabet`
/// letters starting at 'a'; label 1 when tokenA occurs more often than
/// tokenB, else 0. Sequences with equal counts are drawn again, so by
/// symmetry both labels have probability 1/2.
struct CountTaskConfig {
  int32_t cls = 1; // the first token, read by bert.loom's heads
  int32_t firstLetter = 'a';
  int32_t alphabet = 4; // letters firstLetter .. firstLetter + alphabet - 1
  int32_t tokenA = 'a';
  int32_t tokenB = 'b';
};

struct ClassificationBatch {
  Tensor tokens;   // i32[B, T]: [CLS] then T - 1 letters
  Tensor segments; // i32[B, T]: all 0
  Tensor labels;   // i32[B]
  std::vector<Tensor> inputs() const { return {tokens, segments, labels}; }
};

/// The count label of one letter sequence (without [CLS]).
int32_t countTaskLabel(const std::vector<int32_t> &letters,
                       const CountTaskConfig &config = {});

/// Errors unless B >= 1, T >= 2, alphabet >= 2 and tokenA, tokenB are
/// distinct letters of the alphabet.
Result<ClassificationBatch> sampleCountTask(int64_t batch, int64_t seqLen,
                                            Rng &rng,
                                            const CountTaskConfig &config = {});

//===----------------------------------------------------------------------===//
// Text classification from labeled lines (a tokenizer makes the batches:
// loom/Tokenizer.h)
//===----------------------------------------------------------------------===//

/// Examples of a labeled text file: one per line, "label<TAB>text".
struct LabeledTexts {
  /// The distinct labels, sorted: a label's class is its index here.
  std::vector<std::string> labels;
  std::vector<int32_t> classes; // per example
  std::vector<std::string> texts;
  size_t size() const { return texts.size(); }
};

/// Reads `path`; empty lines are skipped. Errors name the line of a line
/// without a tab, an empty label or text, invalid UTF-8, or a file with
/// fewer than two labels.
Result<LabeledTexts> readLabeledTexts(const std::string &path);

/// A fixed held-out split: of each label's examples in file order, every
/// k-th (k = round(1 / fraction), starting with the k-th) is held out, so
/// every label is in both parts when it has at least k examples. Labels
/// (and so classes) are kept in both parts. Errors unless the fraction is
/// in (0, 0.5].
struct LabeledSplit {
  LabeledTexts train, heldOut;
};
Result<LabeledSplit> splitLabeledTexts(const LabeledTexts &data,
                                       double heldOutFraction);

//===----------------------------------------------------------------------===//
// Sequence to sequence (transformer.loom and seq2seq_lstm.loom:
// loss(src, tgt_in, tgt_out))
//===----------------------------------------------------------------------===//

enum class Seq2SeqTask { Copy, Reverse };

/// "copy" or "reverse".
Result<Seq2SeqTask> parseSeq2SeqTask(std::string_view name);

/// Both models default to src_vocab = tgt_vocab = 32 and pad = 0, which
/// their loss ignores in tgt_out. Content tokens are uniform in
/// [firstToken, vocab); bos starts tgt_in, eos ends the target.
struct Seq2SeqConfig {
  int32_t vocab = 32;
  int32_t pad = 0;
  int32_t bos = 1;
  int32_t eos = 2;
  int32_t firstToken = 3;
  /// Content lengths are uniform in [minLength, S]; 0 means S (no padding).
  int64_t minLength = 1;
};

/// With content c of length L (copy: y = c; reverse: y = c reversed) and
/// T = S + 1:
///   src     = c, then pad                      i32[B, S]
///   tgt_out = y, eos, then pad                 i32[B, T]
///   tgt_in  = bos, then tgt_out[0 .. T-2]      i32[B, T]
/// so tgt_in is bos, y, eos, pad... (the eos is cut when L = S): the target
/// shifted right for teacher forcing. Positions past the eos are pad in
/// tgt_out and so ignored by the loss.
struct Seq2SeqBatch {
  Tensor src;
  Tensor tgtIn;
  Tensor tgtOut;
  std::vector<Tensor> inputs() const { return {src, tgtIn, tgtOut}; }
};

/// Errors unless B >= 1, S >= 1, 1 <= minLength <= S (or 0), and pad, bos,
/// eos are distinct ids below firstToken < vocab.
Result<Seq2SeqBatch> sampleSeq2SeqBatch(Seq2SeqTask task, int64_t batch,
                                        int64_t srcLen, Rng &rng,
                                        const Seq2SeqConfig &config = {});

} // namespace loom

#endif // LOOM_DATA_H
