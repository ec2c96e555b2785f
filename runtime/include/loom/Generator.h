//===- Generator.h - Incremental decoding with a key/value cache -*- C++
//-*-===//
//
//   loom::GeneratorOptions options;
//   options.capacity = 256;                   // positions per sequence
//   auto gen = loom::Generator::create(model, options);
//   auto next = gen->prefill({prompt});       // [B, vocab]: last positions
//   auto more = gen->step({token});           // [B, vocab]
//
// From a decoder's forward function (`logits(tokens: i32[B, T])`), the
// compiler derives a decode step (`loom-derive-decode`): T new tokens per
// sequence at given positions, each causal attention appending its keys and
// values to a cache and attending over the filled part. The prefill is that
// step with the whole prompt (T rounded up to a power of two, so few prompt
// lengths compile); decode steps have T = 1. Sequences of one batch may
// have different lengths.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_GENERATOR_H
#define LOOM_GENERATOR_H

#include "loom/Model.h"
#include "loom/Status.h"
#include "loom/Tensor.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace loom {

struct GeneratorOptions {
  /// The forward function: token ids i32[B, T] first (then the context);
  /// one output [B, T, vocab].
  std::string function = "logits";
  /// Sequences decoded together.
  int64_t batch = 1;
  /// Positions each sequence's cache holds (prompt plus generated tokens);
  /// at most the model's position table.
  int64_t capacity = 256;
  /// The function's inputs after the token ids, the same at every step (an
  /// encoder-decoder's memory and source ids), batch dim first.
  std::vector<Tensor> context;
};

/// How the next token is drawn from a row of logits.
struct SamplingOptions {
  /// 0: greedy (argmax); otherwise logits are divided by it.
  double temperature = 1.0;
  /// Keep only the k most likely tokens (0: all).
  int64_t topK = 0;
  /// Keep the smallest set of most likely tokens whose probability reaches
  /// p (1: all).
  double topP = 1.0;
  uint64_t seed = 0;
};

/// Draws tokens from logits; the same seed and logits give the same tokens.
class Sampler {
public:
  explicit Sampler(const SamplingOptions &options);
  /// A token id in [0, vocab) drawn from `logits[0, vocab)`.
  int32_t sample(const float *logits, int64_t vocab);

private:
  double uniform();
  SamplingOptions options;
  uint64_t state;
  std::vector<std::pair<float, int32_t>> scratch;
};

/// Beam search (`Generator::beamSearch`).
struct BeamSearchOptions {
  /// Hypotheses kept; the generator's batch must be this large.
  int64_t beams = 4;
  /// Tokens generated at most per hypothesis.
  int64_t maxTokens = 32;
  /// A hypothesis ending with this token is finished; -1: none.
  int32_t endToken = -1;
  /// Finished hypotheses rank by log-probability / length^lengthPenalty.
  double lengthPenalty = 1.0;
};

struct BeamResult {
  std::vector<int32_t> tokens; // generated after the prompt
  double logProb = 0;          // sum of the tokens' log-probabilities
  bool finished = false;       // ended with endToken
};

class Generator {
public:
  static Result<Generator> create(Model &model,
                                  const GeneratorOptions &options = {});
  ~Generator();
  Generator(Generator &&) noexcept;
  Generator &operator=(Generator &&) noexcept;

  /// Empties the caches and runs one prompt per sequence (`batch` of them,
  /// each non-empty and at most `capacity` tokens) in one call. Returns the
  /// logits of each prompt's last token, [batch, vocab].
  Result<Tensor> prefill(const std::vector<std::vector<int32_t>> &prompts);

  /// Appends one token per sequence. Returns the logits that follow,
  /// [batch, vocab].
  Result<Tensor> step(const std::vector<int32_t> &tokens);

  /// The low-level step: `tokens` [batch, T] at positions `start[b]`
  /// onwards; returns the logits [batch, T, vocab]. Caches are written at
  /// start[b] .. start[b] + T - 1 (start[b] + T <= capacity, checked).
  Result<Tensor> decode(const Tensor &tokens,
                        const std::vector<int32_t> &start);

  /// Beam search from one prompt: every sequence of the batch is a
  /// hypothesis (so the context holds one source repeated `beams` times);
  /// after each step the caches are reordered to follow the surviving
  /// hypotheses. Returns the best, finished ones first.
  Result<BeamResult> beamSearch(const std::vector<int32_t> &prompt,
                                const BeamSearchOptions &options);

  /// Tokens in each sequence's cache.
  const std::vector<int64_t> &lengths() const;
  int64_t vocabSize() const;
  const GeneratorOptions &options() const;
  /// Bytes of the key/value caches.
  int64_t cacheBytes() const;

  struct Impl;

private:
  explicit Generator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl;
};

} // namespace loom

#endif // LOOM_GENERATOR_H
