//===- Schedule.cpp - Learning-rate schedules and the LR finder -----------===//
//
// The schedule formulas, the spec parser (kind[:key=value,...]) and the LR
// range test. Numbers are parsed and printed with <charconv>, so neither
// depends on the C locale.
//
//===----------------------------------------------------------------------===//

#include "loom/Schedule.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <numbers>

namespace loom {

namespace {

/// The shortest decimal that reads back to `value`.
std::string formatDouble(double value) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  if (ec != std::errc())
    return "?";
  return std::string(buffer, end);
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
    text.remove_suffix(1);
  return text;
}

std::string kindName(LrSchedule::Kind kind) {
  switch (kind) {
  case LrSchedule::Kind::Constant:
    return "constant";
  case LrSchedule::Kind::Step:
    return "step";
  case LrSchedule::Kind::Exponential:
    return "exp";
  case LrSchedule::Kind::Cyclic:
    return "cyclic";
  case LrSchedule::Kind::WarmupLinear:
    return "warmup-linear";
  case LrSchedule::Kind::WarmupCosine:
    return "warmup-cosine";
  }
  return "?";
}

/// The key=value fields of one spec, read with checks. Each getter names the
/// field in its error.
class Fields {
public:
  std::map<std::string, std::string, std::less<>> values;

  bool has(std::string_view key) const { return values.count(key) != 0; }

  Result<double> number(std::string_view key) const {
    const std::string &text = values.find(key)->second;
    double value = 0;
    auto [end, ec] =
        std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() ||
        !std::isfinite(value))
      return fieldError(key, "'" + text + "' is not a finite number");
    return value;
  }

  Result<int64_t> integer(std::string_view key) const {
    const std::string &text = values.find(key)->second;
    int64_t value = 0;
    auto [end, ec] =
        std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec == std::errc::result_out_of_range)
      return fieldError(key, "'" + text + "' is out of range");
    if (ec != std::errc() || end != text.data() + text.size())
      return fieldError(key, "'" + text + "' is not an integer");
    return value;
  }

  static Status fieldError(std::string_view key, const std::string &what) {
    return Status::error("field '" + std::string(key) + "': " + what);
  }
};

/// Splits "a=1,b=2" into fields, rejecting empty, valueless, duplicate and
/// unknown keys.
Result<Fields> splitFields(std::string_view text, std::string_view kind,
                           const std::vector<std::string_view> &allowed) {
  Fields fields;
  if (trim(text).empty())
    return fields;
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t comma = text.find(',', begin);
    if (comma == std::string_view::npos)
      comma = text.size();
    std::string_view item = trim(text.substr(begin, comma - begin));
    begin = comma + 1;
    if (item.empty())
      return Status::error("empty field (fields are key=value separated by "
                           "commas)");
    size_t equals = item.find('=');
    std::string_view key =
        trim(equals == std::string_view::npos ? item : item.substr(0, equals));
    if (equals == std::string_view::npos ||
        trim(item.substr(equals + 1)).empty())
      return Fields::fieldError(key, "no value (expected " + std::string(key) +
                                         "=VALUE)");
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string list;
      for (size_t i = 0; i < allowed.size(); ++i)
        list += (i ? ", " : "") + std::string(allowed[i]);
      return Fields::fieldError(key, "unknown for '" + std::string(kind) + "'" +
                                         (allowed.empty()
                                              ? " (it takes no fields)"
                                              : " (it takes " + list + ")"));
    }
    if (fields.has(key))
      return Fields::fieldError(key, "given twice");
    fields.values.emplace(std::string(key),
                          std::string(trim(item.substr(equals + 1))));
  }
  return fields;
}

Status missing(std::string_view key) {
  return Fields::fieldError(key, "missing (required)");
}

// Field readers with a range check; `fallback` is used when the field is
// absent, or the field is required when there is none.
Status readNumber(const Fields &fields, std::string_view key, double &out,
                  std::optional<double> fallback, bool (*valid)(double),
                  const char *rule) {
  if (!fields.has(key)) {
    if (!fallback)
      return missing(key);
    out = *fallback;
    return Status();
  }
  Result<double> value = fields.number(key);
  if (!value.ok())
    return value.status();
  if (!valid(*value))
    return Fields::fieldError(key,
                              fields.values.find(key)->second + " " + rule);
  out = *value;
  return Status();
}

Status readInteger(const Fields &fields, std::string_view key, int64_t &out,
                   int64_t minimum) {
  if (!fields.has(key))
    return missing(key);
  Result<int64_t> value = fields.integer(key);
  if (!value.ok())
    return value.status();
  if (*value < minimum)
    return Fields::fieldError(
        key, std::to_string(*value) + " must be >= " + std::to_string(minimum));
  out = *value;
  return Status();
}

bool positive(double v) { return v > 0; }
bool nonNegative(double v) { return v >= 0; }

Result<LrSchedule> parseFields(std::string_view kind, std::string_view rest,
                               double baseLr) {
  if (kind == "constant") {
    Result<Fields> fields = splitFields(rest, kind, {});
    if (!fields.ok())
      return fields.status();
    return LrSchedule::constant(baseLr);
  }
  if (kind == "step") {
    Result<Fields> fields = splitFields(rest, kind, {"size", "gamma"});
    if (!fields.ok())
      return fields.status();
    int64_t size = 0;
    double gamma = 0;
    LOOM_RETURN_IF_ERROR(readInteger(*fields, "size", size, 1));
    LOOM_RETURN_IF_ERROR(
        readNumber(*fields, "gamma", gamma, 0.1, positive, "must be > 0"));
    return LrSchedule::step(baseLr, size, gamma);
  }
  if (kind == "exp") {
    Result<Fields> fields = splitFields(rest, kind, {"gamma"});
    if (!fields.ok())
      return fields.status();
    double gamma = 0;
    LOOM_RETURN_IF_ERROR(readNumber(*fields, "gamma", gamma, std::nullopt,
                                    positive, "must be > 0"));
    return LrSchedule::exponential(baseLr, gamma);
  }
  if (kind == "cyclic") {
    Result<Fields> fields = splitFields(rest, kind, {"min", "max", "size"});
    if (!fields.ok())
      return fields.status();
    double low = 0, high = 0;
    int64_t size = 0;
    LOOM_RETURN_IF_ERROR(readNumber(*fields, "min", low, std::nullopt,
                                    nonNegative, "must be >= 0"));
    LOOM_RETURN_IF_ERROR(readNumber(*fields, "max", high, std::nullopt,
                                    positive, "must be > 0"));
    if (high < low)
      return Fields::fieldError("max", formatDouble(high) + " is below min " +
                                           formatDouble(low));
    LOOM_RETURN_IF_ERROR(readInteger(*fields, "size", size, 1));
    return LrSchedule::cyclic(low, high, size);
  }
  if (kind == "warmup-linear" || kind == "warmup-cosine") {
    Result<Fields> fields = splitFields(rest, kind, {"warmup", "total", "min"});
    if (!fields.ok())
      return fields.status();
    int64_t warmup = 0, total = 0;
    double low = 0;
    LOOM_RETURN_IF_ERROR(readInteger(*fields, "warmup", warmup, 0));
    LOOM_RETURN_IF_ERROR(readInteger(*fields, "total", total, 1));
    if (total < warmup)
      return Fields::fieldError("total", std::to_string(total) +
                                             " is below warmup " +
                                             std::to_string(warmup));
    LOOM_RETURN_IF_ERROR(
        readNumber(*fields, "min", low, 0.0, nonNegative, "must be >= 0"));
    if (low > baseLr)
      return Fields::fieldError("min", formatDouble(low) +
                                           " is above the base learning "
                                           "rate " +
                                           formatDouble(baseLr));
    return kind == "warmup-linear"
               ? LrSchedule::warmupLinear(baseLr, warmup, total, low)
               : LrSchedule::warmupCosine(baseLr, warmup, total, low);
  }
  return Status::error("unknown kind '" + std::string(kind) +
                       "' (expected constant, step, exp, cyclic, "
                       "warmup-linear or warmup-cosine)");
}

} // namespace

//===----------------------------------------------------------------------===//
// LrSchedule
//===----------------------------------------------------------------------===//

LrSchedule LrSchedule::constant(double baseLr) {
  LrSchedule s;
  s.base = baseLr;
  return s;
}

LrSchedule LrSchedule::step(double baseLr, int64_t stepSize, double gamma) {
  LrSchedule s;
  s.type = Kind::Step;
  s.base = baseLr;
  s.size = stepSize;
  s.decay = gamma;
  return s;
}

LrSchedule LrSchedule::exponential(double baseLr, double gamma) {
  LrSchedule s;
  s.type = Kind::Exponential;
  s.base = baseLr;
  s.decay = gamma;
  return s;
}

LrSchedule LrSchedule::cyclic(double minLr, double maxLr, int64_t stepSize) {
  LrSchedule s;
  s.type = Kind::Cyclic;
  s.base = maxLr;
  s.low = minLr;
  s.high = maxLr;
  s.size = stepSize;
  return s;
}

LrSchedule LrSchedule::warmupLinear(double baseLr, int64_t warmupSteps,
                                    int64_t totalSteps, double minLr) {
  LrSchedule s;
  s.type = Kind::WarmupLinear;
  s.base = baseLr;
  s.warmup = warmupSteps;
  s.total = totalSteps;
  s.low = minLr;
  return s;
}

LrSchedule LrSchedule::warmupCosine(double baseLr, int64_t warmupSteps,
                                    int64_t totalSteps, double minLr) {
  LrSchedule s = warmupLinear(baseLr, warmupSteps, totalSteps, minLr);
  s.type = Kind::WarmupCosine;
  return s;
}

double LrSchedule::lr(int64_t step) const {
  step = std::max<int64_t>(step, 0);
  switch (type) {
  case Kind::Constant:
    return base;
  case Kind::Step:
    return base * std::pow(decay, static_cast<double>(
                                      step / std::max<int64_t>(size, 1)));
  case Kind::Exponential:
    return base * std::pow(decay, static_cast<double>(step));
  case Kind::Cyclic: {
    double half = static_cast<double>(std::max<int64_t>(size, 1));
    double t = static_cast<double>(step);
    double cycle = std::floor(1 + t / (2 * half));
    double x = std::fabs(t / half - 2 * cycle + 1);
    return low + (high - low) * std::max(0.0, 1 - x);
  }
  case Kind::WarmupLinear:
  case Kind::WarmupCosine: {
    if (step < warmup)
      return base * static_cast<double>(step + 1) / static_cast<double>(warmup);
    if (step >= total)
      return low;
    double p = static_cast<double>(step - warmup) /
               static_cast<double>(total - warmup);
    double fraction = type == Kind::WarmupLinear
                          ? 1 - p
                          : (1 + std::cos(std::numbers::pi * p)) / 2;
    return low + (base - low) * fraction;
  }
  }
  return base;
}

std::string LrSchedule::spec() const {
  std::string name = kindName(type);
  switch (type) {
  case Kind::Constant:
    return name;
  case Kind::Step:
    return name + ":size=" + std::to_string(size) +
           ",gamma=" + formatDouble(decay);
  case Kind::Exponential:
    return name + ":gamma=" + formatDouble(decay);
  case Kind::Cyclic:
    return name + ":min=" + formatDouble(low) + ",max=" + formatDouble(high) +
           ",size=" + std::to_string(size);
  case Kind::WarmupLinear:
  case Kind::WarmupCosine:
    return name + ":warmup=" + std::to_string(warmup) +
           ",total=" + std::to_string(total) + ",min=" + formatDouble(low);
  }
  return name;
}

Result<LrSchedule> parseLrSchedule(std::string_view spec, double baseLr) {
  std::string context = "lr schedule '" + std::string(spec) + "'";
  if (!(baseLr > 0) || !std::isfinite(baseLr))
    return Status::error(context + ": the base learning rate " +
                         formatDouble(baseLr) +
                         " must be a positive finite number");
  std::string_view text = trim(spec);
  size_t colon = text.find(':');
  std::string_view kind =
      trim(colon == std::string_view::npos ? text : text.substr(0, colon));
  std::string_view rest = colon == std::string_view::npos
                              ? std::string_view()
                              : text.substr(colon + 1);
  if (kind.empty())
    return Status::error(context + ": no schedule kind (expected constant, "
                                   "step, exp, cyclic, warmup-linear or "
                                   "warmup-cosine)");
  Result<LrSchedule> schedule = parseFields(kind, rest, baseLr);
  if (!schedule.ok())
    return schedule.status().withContext(context);
  return schedule;
}

//===----------------------------------------------------------------------===//
// LrFinder
//===----------------------------------------------------------------------===//

Result<LrFinder> LrFinder::create(double startLr, double endLr, int64_t steps,
                                  double beta, double divergeFactor) {
  if (!(startLr > 0) || !std::isfinite(endLr) || !(endLr > startLr))
    return Status::error("lr finder: the sweep needs 0 < start (" +
                         formatDouble(startLr) + ") < end (" +
                         formatDouble(endLr) + ")");
  if (steps < 2)
    return Status::error("lr finder: " + std::to_string(steps) +
                         " steps; the sweep needs at least 2");
  if (!(beta >= 0 && beta < 1))
    return Status::error("lr finder: smoothing beta " + formatDouble(beta) +
                         " must be in [0, 1)");
  if (!(divergeFactor > 1) || !std::isfinite(divergeFactor))
    return Status::error("lr finder: divergence factor " +
                         formatDouble(divergeFactor) + " must be above 1");
  LrFinder finder;
  finder.start = startLr;
  finder.end = endLr;
  finder.steps = steps;
  finder.beta = beta;
  finder.divergeFactor = divergeFactor;
  finder.history.reserve(
      static_cast<size_t>(std::min<int64_t>(steps, 1 << 20)));
  return finder;
}

double LrFinder::lrAt(int64_t i) const {
  if (i <= 0)
    return start;
  if (i >= steps - 1)
    return end;
  double t = static_cast<double>(i) / static_cast<double>(steps - 1);
  return start * std::pow(end / start, t);
}

double LrFinder::currentLr() const {
  return lrAt(
      std::min<int64_t>(static_cast<int64_t>(history.size()), steps - 1));
}

bool LrFinder::record(double loss) {
  if (finished)
    return false;
  if (!std::isfinite(loss)) {
    finished = blewUp = true;
    return false;
  }
  int64_t i = static_cast<int64_t>(history.size());
  average = beta * average + (1 - beta) * loss;
  betaPower *= beta;
  double smoothed = average / (1 - betaPower);
  history.push_back({lrAt(i), loss, smoothed});
  if (i == 0 || smoothed < best)
    best = smoothed;
  if (i > 0 && smoothed > divergeFactor * best)
    finished = blewUp = true;
  if (static_cast<int64_t>(history.size()) >= steps)
    finished = true;
  return !finished;
}

Result<double> LrFinder::suggestion() const {
  int64_t n = static_cast<int64_t>(history.size());
  if (n < 3)
    return Status::error("lr finder: " + std::to_string(n) +
                         " recorded steps; a suggestion needs at least 3");
  auto slope = [&](int64_t i) {
    int64_t lo = std::max<int64_t>(i - 1, 0), hi = std::min(i + 1, n - 1);
    return (history[hi].smoothedLoss - history[lo].smoothedLoss) /
           (std::log(history[hi].lr) - std::log(history[lo].lr));
  };
  int64_t skipStart = std::min<int64_t>(10, n / 10);
  int64_t skipEnd = std::min<int64_t>(5, n / 10);
  int64_t bestIndex = -1;
  double bestSlope = 0;
  for (int64_t i = skipStart; i < n - skipEnd; ++i) {
    double s = slope(i);
    if (s < bestSlope) {
      bestSlope = s;
      bestIndex = i;
    }
  }
  if (bestIndex < 0)
    return Status::error("lr finder: the smoothed loss never decreased "
                         "between " +
                         formatDouble(history[skipStart].lr) + " and " +
                         formatDouble(history[n - 1 - skipEnd].lr) +
                         "; try a smaller start LR");
  return history[bestIndex].lr;
}

Status LrFinder::writeCsv(const std::string &path) const {
  std::FILE *file = std::fopen(path.c_str(), "w");
  if (!file)
    return Status::error("cannot write '" + path +
                         "': " + std::strerror(errno));
  std::string text = "lr,loss,smoothed_loss\n";
  for (const LrFinderPoint &point : history)
    text += formatDouble(point.lr) + "," + formatDouble(point.loss) + "," +
            formatDouble(point.smoothedLoss) + "\n";
  size_t written = std::fwrite(text.data(), 1, text.size(), file);
  bool failed = written != text.size() || std::ferror(file);
  if (std::fclose(file) != 0)
    failed = true;
  if (failed)
    return Status::error("cannot write '" + path +
                         "': " + std::strerror(errno));
  return Status();
}

} // namespace loom
