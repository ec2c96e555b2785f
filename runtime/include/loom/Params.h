//===- Params.h - The flat parameter buffer ---------------------*- C++ -*-===//
//
// A model's parameters live in ONE flat buffer: parameter i starts at a
// 64-byte aligned offset, in declaration order, so the compiled code addresses
// each at a static offset and the optimizer, checkpoints and all-reduces see
// one block of memory. Layout rule (shared with the compiler, see layout()):
//
//   offset[0] = 0
//   offset[i] = alignTo(offset[i-1] + nbytes[i-1], 64)
//   totalBytes = alignTo(offset[n-1] + nbytes[n-1], 64)
//
// Initialization follows `loom.parameter`'s init kinds (ir/LoomOps.td) and is
// bit-for-bit reproducible on any machine: a counter-based RNG keyed by
// (seed, parameter name, element index) and a normal sampler built only from
// correctly rounded IEEE operations.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_PARAMS_H
#define LOOM_PARAMS_H

#include "loom/Status.h"
#include "loom/Tensor.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace loom {

/// How to initialize a parameter: `kind` and f64 fields, as on
/// `loom.parameter`:
///   zeros, ones                        no fields
///   constant                           value
///   normal                             std (>= 0), mean (default 0)
///   uniform                            low, high (low <= high)
///   xavier_uniform, xavier_normal      gain (default 1)
///   kaiming_uniform, kaiming_normal    gain (default sqrt(2))
/// Xavier and kaiming read a weight of rank >= 2 as [fan_in..., fan_out]:
/// fan_out is the last dim, fan_in the product of the others.
struct InitSpec {
  std::string kind;
  std::vector<std::pair<std::string, double>> fields;

  /// The value of field `name`, if present.
  std::optional<double> field(std::string_view name) const;
};

/// Checks kind, required and unknown fields, their ranges (all finite, std
/// >= 0, low <= high) and rank >= 2 for the fan-based kinds. Random kinds
/// need a floating-point dtype; zeros, ones and constant take any.
Status validateInit(const InitSpec &init, DType dtype,
                    const std::vector<int64_t> &shape);

/// {fan_in, fan_out} of a shape of rank >= 2: the product of all dims but
/// the last, and the last.
std::pair<int64_t, int64_t> computeFans(const std::vector<int64_t> &shape);

struct ParamInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  InitSpec init;
  size_t offset = 0; // bytes into the flat buffer, 64-byte aligned

  size_t nbytes() const; // numel * element size
};

class ParamStore {
public:
  static constexpr size_t kAlignment = 64;

  /// Assigns `offset` to each parameter by the rule above (offsets passed in
  /// are overwritten) and returns totalBytes. Fails on an empty, duplicate or
  /// reserved ("__metadata__") name, a negative dim or a size overflow.
  static Result<size_t> layout(std::vector<ParamInfo> &params);

  /// Lays out `params` (name, dtype, shape, init; in this order) and
  /// allocates the buffer, zero-filled.
  static Result<ParamStore> create(std::vector<ParamInfo> params);

  ParamStore() = default;
  ParamStore(ParamStore &&) = default;
  ParamStore &operator=(ParamStore &&) = default;

  /// The number of parameters.
  size_t size() const { return infos.size(); }
  const std::vector<ParamInfo> &params() const { return infos; }
  const ParamInfo &param(size_t index) const { return infos[index]; }
  std::optional<size_t> indexOf(std::string_view name) const;

  /// The size of the flat buffer: a multiple of 64.
  size_t totalBytes() const { return total; }
  /// The flat buffer, 64-byte aligned; null when totalBytes() is 0.
  std::byte *data() { return buffer.get(); }
  const std::byte *data() const { return buffer.get(); }

  /// A contiguous view of parameter `index` (index < size()); valid while
  /// the store lives.
  Tensor tensor(size_t index) const;
  /// A view of the parameter called `name`, or an error naming it.
  Result<Tensor> tensor(std::string_view name) const;

  /// Fills every parameter from its InitSpec. The same seed gives the same
  /// bits on any machine; each parameter's values depend only on the seed,
  /// its name, dtype, shape and init, not on the other parameters. Validates
  /// every InitSpec first and changes nothing on error.
  Status initialize(uint64_t seed);

private:
  struct FreeDeleter {
    void operator()(std::byte *p) const;
  };
  std::vector<ParamInfo> infos;
  std::map<std::string, size_t, std::less<>> byName;
  std::unique_ptr<std::byte, FreeDeleter> buffer;
  size_t total = 0;
};

} // namespace loom

#endif // LOOM_PARAMS_H
