//===- Data.cpp - Tokenizer, corpora and training batches -----------------===//
//
// The PRNG, the byte tokenizer, corpus files, and the batch samplers of
// Data.h. Each sampler draws its random numbers in a fixed order (row by
// row, left to right), so a seed fixes the batch.
//
//===----------------------------------------------------------------------===//

#include "loom/Data.h"

#include "Utf8.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sys/stat.h>

namespace loom {

//===----------------------------------------------------------------------===//
// Rng
//===----------------------------------------------------------------------===//

namespace {

uint64_t splitMix64(uint64_t &x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

} // namespace

Rng::Rng(uint64_t seed) {
  uint64_t x = seed;
  for (uint64_t &word : state)
    word = splitMix64(x);
}

uint64_t Rng::next() {
  uint64_t result = rotl(state[1] * 5, 7) * 9;
  uint64_t t = state[1] << 17;
  state[2] ^= state[0];
  state[3] ^= state[1];
  state[1] ^= state[2];
  state[0] ^= state[3];
  state[2] ^= t;
  state[3] = rotl(state[3], 45);
  return result;
}

uint64_t Rng::below(uint64_t n) {
  if (n <= 1)
    return 0;
  unsigned __int128 product = static_cast<unsigned __int128>(next()) * n;
  uint64_t low = static_cast<uint64_t>(product);
  if (low < n) {
    uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      product = static_cast<unsigned __int128>(next()) * n;
      low = static_cast<uint64_t>(product);
    }
  }
  return static_cast<uint64_t>(product >> 64);
}

int64_t Rng::between(int64_t lo, int64_t hi) {
  uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo) + 1;
  uint64_t offset = span == 0 ? next() : below(span);
  return static_cast<int64_t>(static_cast<uint64_t>(lo) + offset);
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

//===----------------------------------------------------------------------===//
// Bytes and tokens
//===----------------------------------------------------------------------===//

std::vector<int32_t> ByteTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size());
  for (unsigned char c : text)
    ids.push_back(c);
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int32_t> &ids) const {
  std::string text;
  text.reserve(ids.size());
  for (int32_t id : ids)
    text.push_back(id >= 0 && id < kVocabSize ? static_cast<char>(id) : '?');
  return text;
}

std::string ByteTokenizer::printable(const std::vector<int32_t> &ids) const {
  static const char hex[] = "0123456789abcdef";
  std::string text;
  for (int32_t id : ids) {
    if (id < 0 || id >= kVocabSize)
      text += "<" + std::to_string(id) + ">";
    else if (id == '\\')
      text += "\\\\";
    else if (id == '\n')
      text += "\\n";
    else if (id == '\t')
      text += "\\t";
    else if (id == '\r')
      text += "\\r";
    else if (id >= 0x20 && id < 0x7f)
      text.push_back(static_cast<char>(id));
    else {
      text += "\\x";
      text.push_back(hex[id >> 4]);
      text.push_back(hex[id & 15]);
    }
  }
  return text;
}

Result<std::vector<uint8_t>> readCorpus(const std::string &path) {
  std::string context = "corpus '" + path + "'";
  struct stat info;
  if (::stat(path.c_str(), &info) != 0)
    return Status::error(context + ": cannot open: " + std::strerror(errno));
  if (!S_ISREG(info.st_mode))
    return Status::error(context + ": not a regular file");
  std::FILE *file = std::fopen(path.c_str(), "rb");
  if (!file)
    return Status::error(context + ": cannot open: " + std::strerror(errno));
  std::vector<uint8_t> bytes;
  bytes.reserve(static_cast<size_t>(info.st_size));
  uint8_t buffer[1 << 16];
  size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof(buffer), file)) > 0)
    bytes.insert(bytes.end(), buffer, buffer + got);
  bool failed = std::ferror(file) != 0;
  int readErrno = errno;
  std::fclose(file);
  if (failed)
    return Status::error(context +
                         ": read failed: " + std::strerror(readErrno));
  if (bytes.empty())
    return Status::error(context + ": the file is empty");
  return bytes;
}

Result<CorpusSplit> splitCorpus(const std::vector<uint8_t> &bytes,
                                double validationFraction) {
  if (!(validationFraction >= 0 && validationFraction < 1))
    return Status::error("corpus split: validation fraction " +
                         std::to_string(validationFraction) +
                         " must be in [0, 1)");
  size_t validation = static_cast<size_t>(
      std::floor(static_cast<double>(bytes.size()) * validationFraction));
  if (validationFraction > 0 && (validation == 0 || validation == bytes.size()))
    return Status::error("corpus split: " + std::to_string(bytes.size()) +
                         " bytes are too few for a validation fraction of " +
                         std::to_string(validationFraction));
  CorpusSplit split;
  split.train.assign(bytes.begin(), bytes.end() - validation);
  split.validation.assign(bytes.end() - validation, bytes.end());
  return split;
}

std::vector<int32_t> tensorValues(const Tensor &tensor) {
  if (tensor.dtype() != DType::I32 || !tensor.isContiguous() ||
      !tensor.rawData())
    return {};
  const int32_t *data = tensor.data<int32_t>();
  return std::vector<int32_t>(data, data + tensor.numel());
}

//===----------------------------------------------------------------------===//
// Samplers
//===----------------------------------------------------------------------===//

namespace {

Status checkBatchShape(const char *what, int64_t batch, int64_t seqLen,
                       int64_t minSeqLen) {
  if (batch < 1)
    return Status::error(std::string(what) + ": batch size " +
                         std::to_string(batch) + " must be at least 1");
  if (seqLen < minSeqLen)
    return Status::error(std::string(what) + ": sequence length " +
                         std::to_string(seqLen) + " must be at least " +
                         std::to_string(minSeqLen));
  return Status();
}

} // namespace

namespace {
template <typename T>
Result<LmBatch> sampleWindows(const std::vector<T> &data, int64_t batch,
                              int64_t seqLen, Rng &rng, const char *unit) {
  LOOM_RETURN_IF_ERROR(checkBatchShape("lm batch", batch, seqLen, 1));
  int64_t size = static_cast<int64_t>(data.size());
  if (size < seqLen + 1)
    return Status::error("lm batch: " + std::to_string(size) + " " + unit +
                         " of data are fewer than a window of T + 1 = " +
                         std::to_string(seqLen + 1));
  LmBatch out;
  out.tokens = Tensor::empty(DType::I32, {batch, seqLen});
  out.targets = Tensor::empty(DType::I32, {batch, seqLen});
  int32_t *tokens = out.tokens.data<int32_t>();
  int32_t *targets = out.targets.data<int32_t>();
  for (int64_t b = 0; b < batch; ++b) {
    int64_t start = rng.between(0, size - seqLen - 1);
    for (int64_t t = 0; t < seqLen; ++t) {
      tokens[b * seqLen + t] = int32_t(data[start + t]);
      targets[b * seqLen + t] = int32_t(data[start + t + 1]);
    }
  }
  return out;
}
} // namespace

Result<LmBatch> sampleLmBatch(const std::vector<uint8_t> &data, int64_t batch,
                              int64_t seqLen, Rng &rng) {
  return sampleWindows(data, batch, seqLen, rng, "bytes");
}

Result<LmBatch> sampleLmBatch(const std::vector<int32_t> &ids, int64_t batch,
                              int64_t seqLen, Rng &rng) {
  return sampleWindows(ids, batch, seqLen, rng, "tokens");
}

Result<BertBatch> sampleBertBatch(const std::vector<uint8_t> &corpus,
                                  int64_t batch, int64_t seqLen, Rng &rng,
                                  const BertDataConfig &config) {
  LOOM_RETURN_IF_ERROR(checkBatchShape("bert batch", batch, seqLen, 5));
  const int32_t specials[] = {config.pad, config.cls, config.sep, config.mask};
  for (int i = 0; i < 4; ++i) {
    if (specials[i] < 0 || specials[i] >= config.vocab)
      return Status::error(
          "bert batch: special token id " + std::to_string(specials[i]) +
          " is outside the vocabulary of " + std::to_string(config.vocab));
    for (int j = 0; j < i; ++j)
      if (specials[i] == specials[j])
        return Status::error("bert batch: special token id " +
                             std::to_string(specials[i]) + " is used twice");
  }
  auto isShare = [](double v) { return v >= 0 && v <= 1; };
  if (!isShare(config.selectFraction) || !isShare(config.maskShare) ||
      !isShare(config.randomShare) || config.maskShare + config.randomShare > 1)
    return Status::error("bert batch: selectFraction, maskShare and "
                         "randomShare must be in [0, 1], and maskShare + "
                         "randomShare at most 1");
  auto isSpecial = [&](int32_t id) {
    return std::find(std::begin(specials), std::end(specials), id) !=
           std::end(specials);
  };
  std::vector<int32_t> ordinary;
  for (int32_t id = 0; id < config.vocab; ++id)
    if (!isSpecial(id))
      ordinary.push_back(id);
  if (ordinary.empty())
    return Status::error("bert batch: the vocabulary has no ordinary tokens");
  int64_t size = static_cast<int64_t>(corpus.size());
  int64_t content = seqLen - 3;
  if (size < content)
    return Status::error(
        "bert batch: " + std::to_string(size) +
        " bytes of corpus are fewer than the " + std::to_string(content) +
        " a sequence of T = " + std::to_string(seqLen) + " holds");
  auto token = [&](int64_t offset) {
    int32_t byte = corpus[offset];
    return byte < config.vocab && !isSpecial(byte) ? byte : int32_t(' ');
  };

  BertBatch out;
  out.tokens = Tensor::empty(DType::I32, {batch, seqLen});
  out.segments = Tensor::empty(DType::I32, {batch, seqLen});
  out.mlmTargets = Tensor::empty(DType::I32, {batch, seqLen});
  out.nspLabels = Tensor::empty(DType::I32, {batch});
  int64_t select =
      std::llround(config.selectFraction * static_cast<double>(content));
  if (select == 0 && config.selectFraction > 0)
    select = 1;
  select = std::min(select, content);
  std::vector<int64_t> candidates;
  for (int64_t b = 0; b < batch; ++b) {
    int32_t *tokens = out.tokens.data<int32_t>() + b * seqLen;
    int32_t *segments = out.segments.data<int32_t>() + b * seqLen;
    int32_t *targets = out.mlmTargets.data<int32_t>() + b * seqLen;

    int64_t lenA = rng.between(1, seqLen - 4);
    int64_t lenB = content - lenA;
    bool isNext = !config.nextSentence || rng.below(2) == 0;
    int64_t startA, startB;
    if (isNext) {
      startA = rng.between(0, size - content);
      startB = startA + lenA;
    } else {
      startA = rng.between(0, size - lenA);
      int64_t range = size - lenB + 1;
      startB = rng.between(0, range - 1);
      if (startB == startA + lenA && range > 1)
        startB = (startB + 1) % range;
    }
    out.nspLabels.data<int32_t>()[b] = isNext ? 0 : 1;

    int64_t t = 0;
    tokens[t++] = config.cls;
    for (int64_t i = 0; i < lenA; ++i)
      tokens[t++] = token(startA + i);
    tokens[t++] = config.sep;
    for (int64_t i = 0; i < lenB; ++i)
      tokens[t++] = token(startB + i);
    tokens[t++] = config.sep;
    for (int64_t i = 0; i < seqLen; ++i) {
      segments[i] = i < lenA + 2 || !config.nextSentence ? 0 : 1;
      targets[i] = config.ignoreIndex;
    }

    // Positions other than [CLS] and the two [SEP]s; a partial
    // Fisher-Yates shuffle picks `select` of them.
    candidates.clear();
    for (int64_t i = 1; i < seqLen - 1; ++i)
      if (i != lenA + 1)
        candidates.push_back(i);
    for (int64_t j = 0; j < select; ++j) {
      int64_t k = j + static_cast<int64_t>(
                          rng.below(static_cast<uint64_t>(content - j)));
      std::swap(candidates[j], candidates[k]);
      int64_t pos = candidates[j];
      targets[pos] = tokens[pos];
      double u = rng.uniform();
      if (u < config.maskShare)
        tokens[pos] = config.mask;
      else if (u < config.maskShare + config.randomShare)
        tokens[pos] = ordinary[rng.below(ordinary.size())];
    }
  }
  return out;
}

int32_t countTaskLabel(const std::vector<int32_t> &letters,
                       const CountTaskConfig &config) {
  int64_t a = std::count(letters.begin(), letters.end(), config.tokenA);
  int64_t b = std::count(letters.begin(), letters.end(), config.tokenB);
  return a > b ? 1 : 0;
}

Result<ClassificationBatch> sampleCountTask(int64_t batch, int64_t seqLen,
                                            Rng &rng,
                                            const CountTaskConfig &config) {
  LOOM_RETURN_IF_ERROR(checkBatchShape("count task", batch, seqLen, 2));
  int32_t first = config.firstLetter, last = first + config.alphabet - 1;
  auto isLetter = [&](int32_t id) { return id >= first && id <= last; };
  if (config.alphabet < 2 || first < 0 || last > 255)
    return Status::error("count task: the alphabet of " +
                         std::to_string(config.alphabet) + " letters from " +
                         std::to_string(first) +
                         " must have at least 2 letters, all bytes");
  if (!isLetter(config.tokenA) || !isLetter(config.tokenB) ||
      config.tokenA == config.tokenB)
    return Status::error("count task: tokenA and tokenB must be two "
                         "different letters of the alphabet");
  if (isLetter(config.cls))
    return Status::error("count task: the [CLS] id " +
                         std::to_string(config.cls) + " is a letter");

  ClassificationBatch out;
  out.tokens = Tensor::empty(DType::I32, {batch, seqLen});
  out.segments = Tensor::empty(DType::I32, {batch, seqLen});
  out.labels = Tensor::empty(DType::I32, {batch});
  std::vector<int32_t> letters(static_cast<size_t>(seqLen - 1));
  for (int64_t b = 0; b < batch; ++b) {
    int64_t countA = 0, countB = 0;
    do {
      countA = countB = 0;
      for (int32_t &letter : letters) {
        letter = first + static_cast<int32_t>(
                             rng.below(static_cast<uint64_t>(config.alphabet)));
        countA += letter == config.tokenA;
        countB += letter == config.tokenB;
      }
    } while (countA == countB);
    int32_t *tokens = out.tokens.data<int32_t>() + b * seqLen;
    tokens[0] = config.cls;
    std::copy(letters.begin(), letters.end(), tokens + 1);
    out.labels.data<int32_t>()[b] = countA > countB ? 1 : 0;
  }
  return out;
}

Result<Seq2SeqTask> parseSeq2SeqTask(std::string_view name) {
  if (name == "copy")
    return Seq2SeqTask::Copy;
  if (name == "reverse")
    return Seq2SeqTask::Reverse;
  return Status::error("unknown seq2seq task '" + std::string(name) +
                       "' (expected copy or reverse)");
}

Result<Seq2SeqBatch> sampleSeq2SeqBatch(Seq2SeqTask task, int64_t batch,
                                        int64_t srcLen, Rng &rng,
                                        const Seq2SeqConfig &config) {
  LOOM_RETURN_IF_ERROR(checkBatchShape("seq2seq batch", batch, srcLen, 1));
  if (config.minLength < 0 || config.minLength > srcLen)
    return Status::error("seq2seq batch: minimum length " +
                         std::to_string(config.minLength) +
                         " must be in [0, S = " + std::to_string(srcLen) + "]");
  const int32_t specials[] = {config.pad, config.bos, config.eos};
  for (int i = 0; i < 3; ++i) {
    if (specials[i] < 0 || specials[i] >= config.firstToken)
      return Status::error(
          "seq2seq batch: special id " + std::to_string(specials[i]) +
          " must be in [0, firstToken = " + std::to_string(config.firstToken) +
          ")");
    for (int j = 0; j < i; ++j)
      if (specials[i] == specials[j])
        return Status::error("seq2seq batch: special id " +
                             std::to_string(specials[i]) + " is used twice");
  }
  if (config.firstToken >= config.vocab)
    return Status::error("seq2seq batch: no content tokens in [" +
                         std::to_string(config.firstToken) + ", " +
                         std::to_string(config.vocab) + ")");

  int64_t tgtLen = srcLen + 1;
  int64_t minLength = config.minLength == 0 ? srcLen : config.minLength;
  Seq2SeqBatch out;
  out.src = Tensor::empty(DType::I32, {batch, srcLen});
  out.tgtIn = Tensor::empty(DType::I32, {batch, tgtLen});
  out.tgtOut = Tensor::empty(DType::I32, {batch, tgtLen});
  for (int64_t b = 0; b < batch; ++b) {
    int32_t *src = out.src.data<int32_t>() + b * srcLen;
    int32_t *tgtIn = out.tgtIn.data<int32_t>() + b * tgtLen;
    int32_t *tgtOut = out.tgtOut.data<int32_t>() + b * tgtLen;
    int64_t length = rng.between(minLength, srcLen);
    std::fill(src, src + srcLen, config.pad);
    std::fill(tgtOut, tgtOut + tgtLen, config.pad);
    for (int64_t i = 0; i < length; ++i)
      src[i] = static_cast<int32_t>(
          rng.between(config.firstToken, config.vocab - 1));
    for (int64_t i = 0; i < length; ++i)
      tgtOut[i] = task == Seq2SeqTask::Copy ? src[i] : src[length - 1 - i];
    tgtOut[length] = config.eos;
    tgtIn[0] = config.bos;
    std::copy(tgtOut, tgtOut + tgtLen - 1, tgtIn + 1);
  }
  return out;
}

//===----------------------------------------------------------------------===//
// Text classification
//===----------------------------------------------------------------------===//

Result<LabeledTexts> readLabeledTexts(const std::string &path) {
  auto bytes = readCorpus(path);
  if (!bytes.ok())
    return bytes.status();
  std::string text(bytes->begin(), bytes->end());
  std::vector<std::pair<std::string, std::string>> rows;
  size_t start = 0;
  int64_t number = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos)
      end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    ++number;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.empty())
      continue;
    std::string where = "'" + path + "' line " + std::to_string(number);
    size_t tab = line.find('\t');
    if (tab == std::string::npos)
      return Status::error(where + ": expected LABEL<TAB>TEXT");
    if (tab == 0 || tab + 1 == line.size())
      return Status::error(where + ": empty " +
                           std::string(tab == 0 ? "label" : "text"));
    if (!utf8::valid(line))
      return Status::error(where + ": not valid UTF-8");
    rows.emplace_back(line.substr(0, tab), line.substr(tab + 1));
  }
  LabeledTexts data;
  for (const auto &row : rows)
    data.labels.push_back(row.first);
  std::sort(data.labels.begin(), data.labels.end());
  data.labels.erase(std::unique(data.labels.begin(), data.labels.end()),
                    data.labels.end());
  if (data.labels.size() < 2)
    return Status::error("'" + path +
                         "': " + std::to_string(data.labels.size()) +
                         " distinct label(s); classification needs two");
  for (auto &row : rows) {
    data.classes.push_back(int32_t(
        std::lower_bound(data.labels.begin(), data.labels.end(), row.first) -
        data.labels.begin()));
    data.texts.push_back(std::move(row.second));
  }
  return data;
}

Result<LabeledSplit> splitLabeledTexts(const LabeledTexts &data,
                                       double heldOutFraction) {
  if (!(heldOutFraction > 0 && heldOutFraction <= 0.5))
    return Status::error("held-out fraction " +
                         std::to_string(heldOutFraction) +
                         " is not in (0, 0.5]");
  int64_t every = std::max<int64_t>(2, std::llround(1 / heldOutFraction));
  LabeledSplit split;
  split.train.labels = split.heldOut.labels = data.labels;
  std::vector<int64_t> seen(data.labels.size(), 0);
  for (size_t i = 0; i < data.size(); ++i) {
    int32_t c = data.classes[i];
    LabeledTexts &part =
        ++seen[size_t(c)] % every == 0 ? split.heldOut : split.train;
    part.classes.push_back(c);
    part.texts.push_back(data.texts[i]);
  }
  return split;
}

} // namespace loom
