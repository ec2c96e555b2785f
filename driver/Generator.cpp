//===- Generator.cpp - Incremental decoding with a key/value cache --------===//
//
// The implementation of runtime/include/loom/Generator.h: the decode steps
// come from the Session (Variant::Decode), the caches live here, one tensor
// per cache argument, shared by the prefill and the step specializations.
//
//===----------------------------------------------------------------------===//

#include "loom/Generator.h"

#include "driver/ModelImpl.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>

using namespace loom;

//===----------------------------------------------------------------------===//
// Sampler
//===----------------------------------------------------------------------===//

Sampler::Sampler(const SamplingOptions &options)
    : options(options), state(options.seed ^ 0x9E3779B97F4A7C15ull) {}

double Sampler::uniform() {
  // splitmix64: the same stream on every platform.
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return double(z >> 11) * 0x1.0p-53;
}

int32_t Sampler::sample(const float *logits, int64_t vocab) {
  if (options.temperature <= 0)
    return int32_t(std::max_element(logits, logits + vocab) - logits);
  // Candidates by descending logit (ties: lower id first), cut by top-k.
  scratch.resize(vocab);
  for (int64_t v = 0; v < vocab; ++v)
    scratch[v] = {logits[v], int32_t(v)};
  int64_t keep = options.topK > 0 ? std::min(options.topK, vocab) : vocab;
  auto better = [](const auto &a, const auto &b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  std::partial_sort(scratch.begin(), scratch.begin() + keep, scratch.end(),
                    better);
  scratch.resize(keep);
  double top = scratch.front().first, total = 0;
  std::vector<double> p(keep);
  for (int64_t i = 0; i < keep; ++i)
    total += p[i] = std::exp((scratch[i].first - top) / options.temperature);
  // Top-p: the smallest prefix whose probability reaches p.
  if (options.topP < 1) {
    double mass = 0;
    int64_t cut = keep;
    for (int64_t i = 0; i < keep; ++i) {
      mass += p[i] / total;
      if (mass >= options.topP) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
    total = std::accumulate(p.begin(), p.begin() + keep, 0.0);
  }
  double u = uniform() * total;
  for (int64_t i = 0; i < keep; ++i)
    if ((u -= p[i]) < 0)
      return scratch[i].second;
  return scratch[keep - 1].second;
}

//===----------------------------------------------------------------------===//
// Generator
//===----------------------------------------------------------------------===//

struct Generator::Impl {
  Model::Impl *model = nullptr;
  GeneratorOptions options;
  std::vector<Tensor> caches;
  /// The results of the step's context function (computed once).
  std::vector<Tensor> contextWork;
  std::vector<int64_t> lengths;
  int64_t vocab = 0;
  /// The step carries a recurrent state (an LSTM's): the prefill cannot pad.
  bool recurrent = false;
  /// The compiled steps by T, so a decode step does not look them up in the
  /// session (binding dims, building the cache key) every token.
  std::map<int64_t, driver::CompiledFunction *> steps;
};

Generator::Generator(std::unique_ptr<Impl> impl) : impl(std::move(impl)) {}
Generator::~Generator() = default;
Generator::Generator(Generator &&) noexcept = default;
Generator &Generator::operator=(Generator &&) noexcept = default;

const std::vector<int64_t> &Generator::lengths() const { return impl->lengths; }
int64_t Generator::vocabSize() const { return impl->vocab; }
const GeneratorOptions &Generator::options() const { return impl->options; }
int64_t Generator::cacheBytes() const {
  int64_t bytes = 0;
  for (const Tensor &cache : impl->caches)
    bytes += cache.numel() * int64_t(sizeof(float));
  return bytes;
}

namespace {

/// The decode step for `tokens` [batch, T].
Result<driver::CompiledFunction *> decodeStep(Model::Impl &model,
                                              const GeneratorOptions &options,
                                              const Tensor &tokens) {
  std::vector<std::vector<int64_t>> shapes = {tokens.shape()};
  std::vector<DType> dtypes = {tokens.dtype()};
  for (const Tensor &input : options.context) {
    shapes.push_back(input.shape());
    dtypes.push_back(input.dtype());
  }
  auto bindings =
      model.session->bindFromShapes(options.function, shapes, dtypes);
  if (!bindings)
    return Status::error(llvm::toString(bindings.takeError()));
  driver::Variant variant;
  variant.kind = driver::Variant::Decode;
  variant.capacity = options.capacity;
  unsigned before = model.session->compileCount();
  auto compiled = model.session->get(options.function, *bindings, variant);
  if (!compiled)
    return Status::error(llvm::toString(compiled.takeError()));
  if (model.session->compileCount() != before)
    model.compileSeconds += (*compiled)->compileSeconds;
  return *compiled;
}

} // namespace

Result<Generator> Generator::create(Model &model,
                                    const GeneratorOptions &options) {
  const driver::Signature *sig =
      model.impl->session->findFunction(options.function);

  if (!sig)
    return Status::error("no function '" + options.function + "' to decode");
  if (sig->inputs.size() != 1 + options.context.size() ||
      sig->inputs[0].dtype != DType::I32 || sig->inputs[0].dims.size() != 2 ||
      sig->outputs.size() != 1 || sig->outputs[0].dims.size() != 3)
    return Status::error(
        "decoding needs '" + options.function +
        "(tokens: i32[B, T], context...) -> f32[B, T, vocab]' with " +
        std::to_string(options.context.size()) + " context inputs");
  for (const Tensor &input : options.context)
    if (!input.isContiguous() || input.rank() == 0 ||
        input.dim(0) != options.batch)
      return Status::error("context inputs must be contiguous with batch " +
                           std::to_string(options.batch) + " first");
  if (options.batch <= 0 || options.capacity <= 0)
    return Status::error("a generator needs batch > 0 and capacity > 0");
  auto impl = std::make_unique<Impl>();
  impl->model = model.impl.get();
  impl->options = options;
  impl->lengths.assign(options.batch, 0);
  // The step specialization (T = 1) fixes the caches' shapes.
  Tensor probe = Tensor::empty(DType::I32, {options.batch, 1});
  auto step = decodeStep(*impl->model, options, probe);

  if (!step.ok())
    return step.status();
  driver::CompiledFunction &fn = *step.value();
  const driver::Signature &decode = fn.signature;
  // The context's work, once: cross-attention keys and values, masks.
  if (fn.contextSignature) {
    for (size_t i = 0; i < options.context.size(); ++i)
      if (llvm::Error err =
              driver::checkRange(fn.contextSignature->inputs[i],
                                 fn.contextEntry, options.context[i]))
        return Status::error(llvm::toString(std::move(err)));
    std::vector<void *> pointers = {impl->model->params.data()};
    for (const Tensor &input : options.context)
      pointers.push_back(input.rawData());
    for (const driver::ArgSpec &out : fn.contextSignature->outputs) {
      impl->contextWork.push_back(Tensor::empty(out.dtype, out.shape));
      pointers.push_back(impl->contextWork.back().rawData());
    }
    if (llvm::Error err = fn.jit->call(fn.contextEntry, pointers))
      return Status::error(llvm::toString(std::move(err)));
  }
  size_t firstCache = 2 + options.context.size() + impl->contextWork.size();
  for (size_t i = firstCache; i < decode.inputs.size(); ++i) {
    impl->caches.push_back(Tensor::empty(DType::F32, decode.inputs[i].shape));
    impl->recurrent |=
        llvm::StringRef(decode.inputs[i].name).starts_with("lstm_");
  }
  impl->vocab = decode.outputs[0].shape.back();
  return Generator(std::move(impl));
}

Result<Tensor> Generator::decode(const Tensor &tokens,
                                 const std::vector<int32_t> &start) {
  Impl &g = *impl;
  if (tokens.dtype() != DType::I32 || tokens.rank() != 2 ||
      tokens.dim(0) != g.options.batch || !tokens.isContiguous())
    return Status::error("decode: expected contiguous tokens i32[" +
                         std::to_string(g.options.batch) + ", T]");
  if (int64_t(start.size()) != g.options.batch)
    return Status::error("decode: expected " + std::to_string(g.options.batch) +
                         " start positions, got " +
                         std::to_string(start.size()));
  // A gap would let attention read cache entries never written.
  for (int64_t b = 0; b < g.options.batch; ++b)
    if (start[b] > g.lengths[b])
      return Status::error(
          "decode: sequence " + std::to_string(b) + " starts at " +
          std::to_string(start[b]) + " but its cache holds " +
          std::to_string(g.lengths[b]) + " positions (no gaps)");
  driver::CompiledFunction *&cached = g.steps[tokens.dim(1)];
  if (!cached) {
    auto compiled = decodeStep(*g.model, g.options, tokens);
    if (!compiled.ok()) {
      g.steps.erase(tokens.dim(1));
      return compiled.status();
    }
    cached = compiled.value();
  }
  driver::CompiledFunction &fn = *cached;
  Tensor starts = Tensor::borrow(DType::I32, {g.options.batch},
                                 const_cast<int32_t *>(start.data()));
  std::string name = g.options.function + "_decode";
  std::vector<const Tensor *> given = {&tokens, &starts};
  for (const Tensor &input : g.options.context)
    given.push_back(&input);
  for (const Tensor &input : g.contextWork)
    given.push_back(&input);
  std::vector<void *> inputs;
  for (size_t i = 0; i < given.size(); ++i) {
    if (llvm::Error err =
            driver::checkRange(fn.signature.inputs[i], name, *given[i]))
      return Status::error(llvm::toString(std::move(err)));
    inputs.push_back(given[i]->rawData());
  }
  for (Tensor &cache : g.caches)
    inputs.push_back(cache.rawData());
  auto outputs = driver::invoke(fn, g.model->params.data(), inputs);
  if (!outputs.ok())
    return outputs.status();
  int64_t steps = tokens.dim(1);
  for (int64_t b = 0; b < g.options.batch; ++b)
    g.lengths[b] = start[b] + steps;
  return outputs.value()[0];
}

Result<Tensor>
Generator::prefill(const std::vector<std::vector<int32_t>> &prompts) {
  Impl &g = *impl;
  int64_t batch = g.options.batch;
  if (int64_t(prompts.size()) != batch)
    return Status::error("prefill: expected " + std::to_string(batch) +
                         " prompts, got " + std::to_string(prompts.size()));
  int64_t longest = 0;
  for (size_t b = 0; b < prompts.size(); ++b) {
    if (prompts[b].empty())
      return Status::error("prefill: prompt " + std::to_string(b) +
                           " is empty (give at least one token)");
    longest = std::max<int64_t>(longest, prompts[b].size());
  }
  if (longest > g.options.capacity)
    return Status::error("prefill: a prompt of " + std::to_string(longest) +
                         " tokens does not fit the cache of " +
                         std::to_string(g.options.capacity) + " positions");
  // Prompts right-padded to a power of two (at least 8): few prefill
  // specializations. The padding sits after each prompt, so causal
  // attention never lets a real token see it, and the decode steps
  // overwrite its cache entries before any query can reach them. A
  // recurrent state would run through the padding: no padding then.
  int64_t steps = 8;
  while (steps < longest)
    steps *= 2;
  steps = std::min(steps, g.options.capacity);
  if (g.recurrent) {
    for (const auto &prompt : prompts)
      if (int64_t(prompt.size()) != longest)
        return Status::error("prefill: the prompts of a decoder with a "
                             "recurrent state (an LSTM) must have one length");
    steps = longest;
  }
  Tensor tokens = Tensor::empty(DType::I32, {batch, steps});
  int32_t *t = tokens.data<int32_t>();
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < steps; ++i)
      t[b * steps + i] = i < int64_t(prompts[b].size()) ? prompts[b][i] : 0;
  std::vector<int32_t> start(batch, 0);
  auto logits = decode(tokens, start);
  if (!logits.ok())
    return logits.status();
  Tensor last = Tensor::empty(DType::F32, {batch, g.vocab});
  for (int64_t b = 0; b < batch; ++b) {
    int64_t len = prompts[b].size();
    std::copy_n(logits.value().data<float>() + (b * steps + len - 1) * g.vocab,
                g.vocab, last.data<float>() + b * g.vocab);
    g.lengths[b] = len;
  }
  return last;
}

Result<Tensor> Generator::step(const std::vector<int32_t> &tokens) {
  Impl &g = *impl;
  if (int64_t(tokens.size()) != g.options.batch)
    return Status::error("step: expected " + std::to_string(g.options.batch) +
                         " tokens, got " + std::to_string(tokens.size()));
  std::vector<int32_t> start(g.options.batch);
  for (int64_t b = 0; b < g.options.batch; ++b) {
    if (g.lengths[b] == 0)
      return Status::error("step: sequence " + std::to_string(b) +
                           " has no prompt; call prefill first");
    if (g.lengths[b] >= g.options.capacity)
      return Status::error("step: sequence " + std::to_string(b) +
                           " fills its cache of " +
                           std::to_string(g.options.capacity) + " positions");
    start[b] = int32_t(g.lengths[b]);
  }
  Tensor input = Tensor::borrow(DType::I32, {g.options.batch, 1},
                                const_cast<int32_t *>(tokens.data()));
  auto logits = decode(input, start);
  if (!logits.ok())
    return logits.status();
  Tensor rows = Tensor::empty(DType::F32, {g.options.batch, g.vocab});
  std::copy_n(logits.value().data<float>(), rows.numel(), rows.data<float>());
  return rows;
}

//===----------------------------------------------------------------------===//
// Beam search
//===----------------------------------------------------------------------===//

namespace {

/// log_softmax of `row[0, n)` into `out`.
void logSoftmax(const float *row, int64_t n, std::vector<double> &out) {
  double top = *std::max_element(row, row + n), sum = 0;
  for (int64_t v = 0; v < n; ++v)
    sum += std::exp(double(row[v]) - top);
  double shift = top + std::log(sum);
  out.resize(n);
  for (int64_t v = 0; v < n; ++v)
    out[v] = double(row[v]) - shift;
}

} // namespace

Result<BeamResult> Generator::beamSearch(const std::vector<int32_t> &prompt,
                                         const BeamSearchOptions &options) {
  Impl &g = *impl;
  const int64_t beams = options.beams;
  if (beams != g.options.batch)
    return Status::error("beamSearch: " + std::to_string(beams) +
                         " beams need a generator of batch " +
                         std::to_string(beams) + ", this one has " +
                         std::to_string(g.options.batch));
  auto logits = prefill(std::vector<std::vector<int32_t>>(beams, prompt));
  if (!logits.ok())
    return logits.status();
  // As many tokens as the caches hold after the prompt.
  const int64_t maxTokens = std::min<int64_t>(
      options.maxTokens, g.options.capacity - int64_t(prompt.size()) + 1);
  struct Hypothesis {
    std::vector<int32_t> tokens;
    double logProb;
  };
  // One live hypothesis at first (the others would repeat it).
  std::vector<Hypothesis> live(beams, {{}, -INFINITY});
  live[0].logProb = 0;
  std::vector<BeamResult> finished;
  auto rank = [&](const BeamResult &r) {
    return r.logProb / std::pow(double(std::max<size_t>(r.tokens.size(), 1)),
                                options.lengthPenalty);
  };
  std::vector<double> lp;
  std::vector<std::vector<std::byte>> scratch(g.caches.size());
  for (int64_t n = 0; n < maxTokens; ++n) {
    // Every extension of every live hypothesis, best first.
    struct Candidate {
      double logProb;
      int64_t parent;
      int32_t token;
    };
    std::vector<Candidate> candidates;
    for (int64_t b = 0; b < beams; ++b) {
      if (live[b].logProb == -INFINITY)
        continue;
      logSoftmax(logits.value().data<float>() + b * g.vocab, g.vocab, lp);
      for (int64_t v = 0; v < g.vocab; ++v)
        candidates.push_back({live[b].logProb + lp[v], b, int32_t(v)});
    }
    if (candidates.empty())
      break;
    std::sort(candidates.begin(), candidates.end(),
              [](const Candidate &a, const Candidate &b) {
                return a.logProb > b.logProb ||
                       (a.logProb == b.logProb &&
                        (a.parent < b.parent ||
                         (a.parent == b.parent && a.token < b.token)));
              });
    // The best `beams` that continue; those that end are finished.
    std::vector<Hypothesis> next;
    std::vector<int64_t> parents;
    std::vector<int32_t> tokens;
    for (const Candidate &c : candidates) {
      if (int64_t(next.size()) == beams)
        break;
      Hypothesis h{live[c.parent].tokens, c.logProb};
      h.tokens.push_back(c.token);
      if (c.token == options.endToken) {
        finished.push_back({h.tokens, h.logProb, true});
        continue;
      }
      next.push_back(std::move(h));
      parents.push_back(c.parent);
      tokens.push_back(c.token);
    }
    if (next.empty() || n + 1 == maxTokens ||
        int64_t(finished.size()) >= beams) {
      live = std::move(next);
      break;
    }
    while (int64_t(next.size()) < beams) { // fewer survivors: pad, dead
      next.push_back({next.front().tokens, -INFINITY});
      parents.push_back(parents.front());
      tokens.push_back(tokens.front());
    }
    // The caches follow their hypotheses: row b takes row parents[b].
    for (size_t i = 0; i < g.caches.size(); ++i) {
      Tensor &cache = g.caches[i];
      size_t row = cache.nbytes() / size_t(beams);
      auto *data = static_cast<std::byte *>(cache.rawData());
      scratch[i].assign(data, data + cache.nbytes());
      for (int64_t b = 0; b < beams; ++b)
        std::memcpy(data + b * row, scratch[i].data() + parents[b] * row, row);
    }
    live = std::move(next);
    logits = step(tokens);
    if (!logits.ok())
      return logits.status();
  }
  for (const Hypothesis &h : live)
    if (h.logProb != -INFINITY)
      finished.push_back({h.tokens, h.logProb, false});
  if (finished.empty())
    return Status::error("beamSearch: no hypothesis");
  // Finished hypotheses first, then by length-normalized log-probability.
  auto best = std::max_element(finished.begin(), finished.end(),
                               [&](const BeamResult &a, const BeamResult &b) {
                                 if (a.finished != b.finished)
                                   return !a.finished;
                                 return rank(a) < rank(b);
                               });
  return *best;
}
