//===- Params.cpp - The flat parameter buffer -----------------------------===//
//
// Layout, views and deterministic initialization of a ParamStore.
//
// Reproducibility: the random bits of element i of a parameter are
// SplitMix64 output i of a stream keyed by (seed, FNV-1a hash of the name).
// Uniforms take the top 53 bits; normals use Box-Muller on outputs 2i and
// 2i+1 with our own log and cos made only of +, -, *, /, sqrt and the
// exponent's bits, all correctly rounded in IEEE double. With FP contraction
// off (below, and -ffp-contract=off in CMake) no FMA changes a rounding, so
// every machine produces the same bits.
//
//===----------------------------------------------------------------------===//

#include "loom/Params.h"
#include "runtime/Memory.h"
#include "runtime/Parallel.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <set>
#include <thread>

#pragma STDC FP_CONTRACT OFF

namespace loom {

//===----------------------------------------------------------------------===//
// Deterministic random numbers
//===----------------------------------------------------------------------===//

namespace {

constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ull;

/// SplitMix64's output function (Steele, Lea, Flood 2014).
[[gnu::always_inline]] inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t fnv1a(std::string_view text) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : text)
    hash = (hash ^ c) * 0x100000001b3ull;
  return hash;
}

/// ln(x) for a positive normal x: x = m * 2^e with m in [sqrt(1/2),
/// sqrt(2)), and ln(m) = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...) with
/// s = (m-1)/(m+1), |s| < 0.172; 13 terms reach double precision. No calls
/// and no branches (m and e from the bits; the selects below), so that a
/// loop over elements vectorizes; the results are those of frexp.
[[gnu::always_inline]] inline double detLog(double x) {
  uint64_t bits = std::bit_cast<uint64_t>(x);
  int e = static_cast<int>(bits >> 52) - 1022; // exact: m in [0.5, 1)
  double m = std::bit_cast<double>((bits & 0x000fffffffffffffull) |
                                   0x3fe0000000000000ull);
  bool low = m < 0.70710678118654752440;
  m = low ? m * 2 : m;
  e = low ? e - 1 : e;
  double s = (m - 1) / (m + 1), s2 = s * s, sum = 0;
#pragma clang loop unroll(full)
  for (int k = 12; k >= 0; --k)
    sum = sum * s2 + 1.0 / (2 * k + 1);
  return e * 0.69314718055994530942 + 2 * s * sum;
}

/// cos(2 pi t) for t in [0, 1): the quadrant from 4t (exact), then Taylor
/// series of sin and cos on [0, pi/2) (no branches, as detLog).
[[gnu::always_inline]] inline double detCos2Pi(double t) {
  double quarter = 4 * t;
  int quadrant = static_cast<int>(quarter);
  double theta = (quarter - quadrant) * 1.57079632679489661923;
  double theta2 = theta * theta, cosine = 0, sine = 0, cosTerm = 1,
         sinTerm = theta;
#pragma clang loop unroll(full)
  for (int k = 1; k <= 12; ++k) {
    cosine += cosTerm;
    sine += sinTerm;
    cosTerm *= -theta2 / ((2 * k - 1) * (2 * k));
    sinTerm *= -theta2 / ((2 * k) * (2 * k + 1));
  }
  int q = quadrant & 3;
  double odd = q == 1 ? -sine : sine;      // quadrants 1 and 3
  double even = q == 0 ? cosine : -cosine; // quadrants 0 and 2
  return q & 1 ? odd : even;
}

/// One parameter's random stream.
struct Stream {
  uint64_t key;

  Stream(uint64_t seed, std::string_view name)
      : key(mix64(seed + kGamma) ^ mix64(fnv1a(name))) {}

  [[gnu::always_inline]] uint64_t bits(uint64_t i) const {
    return mix64(key + (i + 1) * kGamma);
  }
  /// In [0, 1), a multiple of 2^-53.
  [[gnu::always_inline]] double uniform(uint64_t i) const {
    return (bits(i) >> 11) * 0x1p-53;
  }
  /// Standard normal (Box-Muller, cosine branch); |z| <= 8.58.
  [[gnu::always_inline]] double normal(uint64_t i) const {
    double u1 = ((bits(2 * i) >> 11) + 1) * 0x1p-53; // (0, 1]
    double u2 = (bits(2 * i + 1) >> 11) * 0x1p-53;   // [0, 1)
    // (The correctly rounded square root without std::sqrt's errno path,
    // which kept the loop from vectorizing; the argument is >= 0.)
    return __builtin_elementwise_sqrt(-2 * detLog(u1)) * detCos2Pi(u2);
  }
};

/// out[i] = value(i) as f32 for i in [begin, end); inlined into the
/// wrappers below, which compile the loop for the host's vector ISA.
template <class Fn>
[[gnu::always_inline]] inline void fillF32(float *out, int64_t begin,
                                           int64_t end, Fn value) {
  for (int64_t i = begin; i < end; ++i)
    out[i] = static_cast<float>(value(i));
}
template <class Fn>
__attribute__((target("avx512f,avx512dq,avx512vl"))) void
fillF32Avx512(float *out, int64_t begin, int64_t end, Fn value) {
  fillF32(out, begin, end, value);
}
template <class Fn>
__attribute__((target("avx2"))) void fillF32Avx2(float *out, int64_t begin,
                                                 int64_t end, Fn value) {
  fillF32(out, begin, end, value);
}

/// Writes value(i) for i in [0, n) to `out` as `dtype`.
template <class Fn>
void fill(DType dtype, std::byte *out, int64_t n, Fn value) {
  auto toInt = [](double v, double lo, double hi) -> double {
    if (std::isnan(v))
      return 0;
    return std::clamp(std::round(v), lo, hi);
  };
  switch (dtype) {
  case DType::F32: {
    // Every value is a function of its index alone (Stream is counter
    // based), so chunks on several threads, and vector lanes, give the
    // same bits (IEEE +, -, *, /, sqrt round the same in every lane; no
    // contraction). 124 M normals (GPT-2-small) take 4.6 s on one core
    // element by element, 1.7 s in AVX-512 lanes (the divisions bound it).
    float *f = reinterpret_cast<float *>(out);
    __builtin_cpu_init();
    bool avx512 = __builtin_cpu_supports("avx512f") &&
                  __builtin_cpu_supports("avx512dq") &&
                  __builtin_cpu_supports("avx512vl"),
         avx2 = __builtin_cpu_supports("avx2");
    auto chunk = [&](int64_t begin, int64_t end) {
      if (avx512)
        return fillF32Avx512(f, begin, end, value);
      if (avx2)
        return fillF32Avx2(f, begin, end, value);
      fillF32(f, begin, end, value);
    };
    int64_t threads = std::min<int64_t>(
        {int64_t(std::max(1u, std::thread::hardware_concurrency())), 8,
         n >> 20});
    return detail::splitOverThreads(n, threads, chunk);
  }
  case DType::F64:
    for (int64_t i = 0; i < n; ++i)
      reinterpret_cast<double *>(out)[i] = value(i);
    return;
  case DType::BF16:
    for (int64_t i = 0; i < n; ++i)
      reinterpret_cast<uint16_t *>(out)[i] = doubleToBF16(value(i));
    return;
  case DType::F16:
    for (int64_t i = 0; i < n; ++i)
      reinterpret_cast<uint16_t *>(out)[i] = doubleToF16(value(i));
    return;
  case DType::I32:
    for (int64_t i = 0; i < n; ++i)
      reinterpret_cast<int32_t *>(out)[i] =
          static_cast<int32_t>(toInt(value(i), -2147483648.0, 2147483647.0));
    return;
  case DType::I64:
    // The largest double below 2^63 keeps the cast defined.
    for (int64_t i = 0; i < n; ++i)
      reinterpret_cast<int64_t *>(out)[i] =
          static_cast<int64_t>(toInt(value(i), -0x1p63, 9223372036854774784.0));
    return;
  case DType::Bool:
    for (int64_t i = 0; i < n; ++i)
      reinterpret_cast<uint8_t *>(out)[i] = value(i) != 0;
    return;
  }
}

//===----------------------------------------------------------------------===//
// Init kinds
//===----------------------------------------------------------------------===//

struct InitKind {
  std::string_view kind;
  std::vector<std::string_view> required, optional;
  bool needsFans;
};

const std::vector<InitKind> &initKinds() {
  static const std::vector<InitKind> kinds = {
      {"zeros", {}, {}, false},
      {"ones", {}, {}, false},
      {"constant", {"value"}, {}, false},
      {"normal", {"std"}, {"mean"}, false},
      {"uniform", {"low", "high"}, {}, false},
      {"xavier_uniform", {}, {"gain"}, true},
      {"xavier_normal", {}, {"gain"}, true},
      {"kaiming_uniform", {}, {"gain"}, true},
      {"kaiming_normal", {}, {"gain"}, true},
  };
  return kinds;
}

bool contains(const std::vector<std::string_view> &list, std::string_view s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

std::string formatDouble(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

} // namespace

std::optional<double> InitSpec::field(std::string_view name) const {
  for (const auto &[key, value] : fields)
    if (key == name)
      return value;
  return std::nullopt;
}

Status validateInit(const InitSpec &init, DType dtype,
                    const std::vector<int64_t> &shape) {
  const InitKind *spec = nullptr;
  for (const InitKind &k : initKinds())
    if (k.kind == init.kind)
      spec = &k;
  if (!spec) {
    std::string known;
    for (const InitKind &k : initKinds())
      known += (known.empty() ? "" : ", ") + std::string(k.kind);
    return Status::error("unknown init kind '" + init.kind +
                         "'; expected one of " + known);
  }
  for (std::string_view field : spec->required)
    if (!init.field(field))
      return Status::error("init kind '" + init.kind + "' needs field '" +
                           std::string(field) + "'");
  std::set<std::string_view> seen;
  for (const auto &[field, value] : init.fields) {
    if (!contains(spec->required, field) && !contains(spec->optional, field))
      return Status::error("init kind '" + init.kind + "' has unknown field '" +
                           field + "'");
    if (!seen.insert(field).second)
      return Status::error("init field '" + field + "' is given twice");
    if (!std::isfinite(value))
      return Status::error("init field '" + field + "' must be finite, got " +
                           formatDouble(value));
  }
  if (init.kind == "normal" && !(*init.field("std") >= 0))
    return Status::error("init field 'std' must be >= 0, got " +
                         formatDouble(*init.field("std")));
  if (init.kind == "uniform" && !(*init.field("low") <= *init.field("high")))
    return Status::error(
        "init field 'low' (" + formatDouble(*init.field("low")) +
        ") must be <= 'high' (" + formatDouble(*init.field("high")) + ")");
  if (spec->needsFans && shape.size() < 2)
    return Status::error("init kind '" + init.kind +
                         "' needs a tensor of rank >= 2 to compute fan_in and "
                         "fan_out, got shape " +
                         shapeString(shape));
  bool random =
      init.kind != "zeros" && init.kind != "ones" && init.kind != "constant";
  if (random && !isFloatingPoint(dtype))
    return Status::error("init kind '" + init.kind +
                         "' needs a floating-point dtype, got " +
                         std::string(dtypeName(dtype)));
  return Status::success();
}

std::pair<int64_t, int64_t> computeFans(const std::vector<int64_t> &shape) {
  int64_t fanIn = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i)
    fanIn *= shape[i];
  return {fanIn, shape.empty() ? 1 : shape.back()};
}

/// Fills one parameter; `info.init` is valid.
static void initializeParam(const ParamInfo &info, std::byte *out,
                            uint64_t seed) {
  int64_t n = checkedNumel(info.shape).value_or(0);
  if (n == 0)
    return; // also keeps the fans below non-zero
  const std::string &kind = info.init.kind;
  auto field = [&](std::string_view name, double fallback) {
    return info.init.field(name).value_or(fallback);
  };
  Stream stream(seed, info.name);
  auto uniformIn = [&](double low, double high) {
    fill(
        info.dtype, out, n, [&](int64_t i) __attribute__((always_inline)) {
          return low + (high - low) * stream.uniform(i);
        });
  };
  auto normalWith = [&](double mean, double std) {
    fill(
        info.dtype, out, n, [&](int64_t i) __attribute__((always_inline)) {
          return mean + std * stream.normal(i);
        });
  };
  auto [fanIn, fanOut] = computeFans(info.shape);
  double fanSum = static_cast<double>(fanIn) + static_cast<double>(fanOut);
  if (kind == "zeros" || kind == "ones" || kind == "constant") {
    double value = kind == "zeros"  ? 0.0
                   : kind == "ones" ? 1.0
                                    : field("value", 0);
    fill(info.dtype, out, n, [&](int64_t) { return value; });
  } else if (kind == "normal") {
    normalWith(field("mean", 0), field("std", 0));
  } else if (kind == "uniform") {
    uniformIn(field("low", 0), field("high", 0));
  } else if (kind == "xavier_uniform") {
    double a = field("gain", 1) * std::sqrt(6 / fanSum);
    uniformIn(-a, a);
  } else if (kind == "xavier_normal") {
    normalWith(0, field("gain", 1) * std::sqrt(2 / fanSum));
  } else if (kind == "kaiming_uniform") {
    double a = field("gain", std::sqrt(2.0)) *
               std::sqrt(3 / static_cast<double>(fanIn));
    uniformIn(-a, a);
  } else if (kind == "kaiming_normal") {
    normalWith(0, field("gain", std::sqrt(2.0)) /
                      std::sqrt(static_cast<double>(fanIn)));
  }
}

//===----------------------------------------------------------------------===//
// ParamStore
//===----------------------------------------------------------------------===//

size_t ParamInfo::nbytes() const {
  return static_cast<size_t>(checkedNumel(shape).value_or(0)) *
         dtypeSize(dtype);
}

void ParamStore::FreeDeleter::operator()(std::byte *p) const { std::free(p); }

Result<size_t> ParamStore::layout(std::vector<ParamInfo> &params) {
  std::set<std::string_view> names;
  size_t cursor = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    ParamInfo &info = params[i];
    if (info.name.empty())
      return Status::error("parameter #" + std::to_string(i) +
                           " has an empty name");
    if (info.name == "__metadata__")
      return Status::error("parameter name '__metadata__' is reserved for "
                           "safetensors metadata");
    if (!names.insert(info.name).second)
      return Status::error("parameter '" + info.name + "' is declared twice");
    std::optional<int64_t> numel = checkedNumel(info.shape);
    size_t bytes = 0, offset = 0;
    if (std::any_of(info.shape.begin(), info.shape.end(),
                    [](int64_t d) { return d < 0; }))
      return Status::error("parameter '" + info.name + "': shape " +
                           shapeString(info.shape) + " has a negative dim");
    if (!numel ||
        __builtin_mul_overflow(static_cast<uint64_t>(*numel),
                               dtypeSize(info.dtype), &bytes) ||
        __builtin_add_overflow(cursor, kAlignment - 1, &offset) ||
        __builtin_add_overflow(offset / kAlignment * kAlignment, bytes,
                               &cursor))
      return Status::error("parameter '" + info.name + "': shape " +
                           shapeString(info.shape) + " is too large");
    info.offset = offset / kAlignment * kAlignment;
  }
  size_t total = 0;
  if (__builtin_add_overflow(cursor, kAlignment - 1, &total))
    return Status::error("parameters are too large");
  return total / kAlignment * kAlignment;
}

Result<ParamStore> ParamStore::create(std::vector<ParamInfo> params) {
  Result<size_t> total = layout(params);
  if (!total.ok())
    return total.status();
  ParamStore store;
  if (*total > 0) {
    void *memory = detail::allocateZeroed(kAlignment, *total);
    if (!memory)
      return Status::error("cannot allocate " + std::to_string(*total) +
                           " bytes for parameters");
    store.buffer.reset(static_cast<std::byte *>(memory));
  }
  store.total = *total;
  store.infos = std::move(params);
  for (size_t i = 0; i < store.infos.size(); ++i)
    store.byName.emplace(store.infos[i].name, i);
  return store;
}

std::optional<size_t> ParamStore::indexOf(std::string_view name) const {
  auto it = byName.find(name);
  if (it == byName.end())
    return std::nullopt;
  return it->second;
}

Tensor ParamStore::tensor(size_t index) const {
  const ParamInfo &info = infos[index];
  return Tensor::borrow(info.dtype, info.shape,
                        const_cast<std::byte *>(buffer.get()) + info.offset);
}

Result<Tensor> ParamStore::tensor(std::string_view name) const {
  std::optional<size_t> index = indexOf(name);
  if (!index)
    return Status::error("no parameter named '" + std::string(name) + "'");
  return tensor(*index);
}

Status ParamStore::initialize(uint64_t seed) {
  for (const ParamInfo &info : infos)
    LOOM_RETURN_IF_ERROR(validateInit(info.init, info.dtype, info.shape)
                             .withContext("parameter '" + info.name + "'"));
  for (const ParamInfo &info : infos)
    initializeParam(info, buffer.get() + info.offset, seed);
  return Status::success();
}

} // namespace loom
