//===- Status.h - Errors without exceptions ---------------------*- C++ -*-===//
//
// `Status` is ok or an error message; `Result<T>` is a value or an error
// Status. The runtime is built without exceptions, so every fallible call
// hands its error back through one of these, and both are [[nodiscard]].
// Messages are complete sentences a user can act on, e.g.
//   checkpoint 'x.safetensors': tensor 'wte.weight': shape [256, 64] does not
//   match the model's [256, 128]
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_STATUS_H
#define LOOM_STATUS_H

#include <optional>
#include <string>
#include <utility>

namespace loom {

class [[nodiscard]] Status {
public:
  /// Ok.
  Status() = default;
  static Status success() { return Status(); }
  /// An error; an empty message becomes "unknown error".
  static Status error(std::string message) {
    Status status;
    status.failed = true;
    status.text = message.empty() ? "unknown error" : std::move(message);
    return status;
  }

  bool ok() const { return !failed; }
  /// The error message; empty when ok.
  const std::string &message() const { return text; }

  /// The same error with `context + ": "` in front; ok stays ok.
  Status withContext(const std::string &context) const {
    return ok() ? Status() : error(context + ": " + text);
  }

private:
  bool failed = false;
  std::string text;
};

template <class T> class [[nodiscard]] Result {
public:
  Result(T value) : val(std::move(value)) {}
  /// An error. An ok Status carries no value, so it becomes an error too.
  Result(Status status)
      : stat(status.ok() ? Status::error("Result built from an ok Status "
                                         "without a value")
                         : std::move(status)) {}

  bool ok() const { return val.has_value(); }
  /// Ok when there is a value, else the error.
  const Status &status() const { return stat; }

  // Only valid when ok().
  T &value() & { return *val; }
  const T &value() const & { return *val; }
  T &&value() && { return std::move(*val); }
  T &operator*() & { return *val; }
  const T &operator*() const & { return *val; }
  T *operator->() { return &*val; }
  const T *operator->() const { return &*val; }

private:
  std::optional<T> val;
  Status stat;
};

} // namespace loom

/// Returns the Status of `expr` from the enclosing function if it is an error.
#define LOOM_RETURN_IF_ERROR(expr)                                             \
  do {                                                                         \
    ::loom::Status loomStatus_ = (expr);                                       \
    if (!loomStatus_.ok())                                                     \
      return loomStatus_;                                                      \
  } while (false)

#endif // LOOM_STATUS_H
