//===- TempDir.h - A scratch directory for tests ----------------*- C++ -*-===//

#ifndef LOOM_TESTS_TEMPDIR_H
#define LOOM_TESTS_TEMPDIR_H

#include <algorithm>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <stdlib.h>

namespace loom::testing {

/// A fresh directory under /tmp (named after `prefix`), removed with its
/// contents at the end of the scope.
class TempDir {
public:
  explicit TempDir(const std::string &prefix = "loom-test") {
    std::string pattern = "/tmp/" + prefix + "-XXXXXX";
    const char *made = ::mkdtemp(pattern.data());
    path = made ? made : "";
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path.empty())
      std::filesystem::remove_all(path, ignored);
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;

  std::string file(const std::string &name) const { return path + "/" + name; }
  /// The names in the directory, sorted.
  std::vector<std::string> list() const {
    std::vector<std::string> names;
    std::error_code ignored;
    for (const auto &entry : std::filesystem::directory_iterator(path, ignored))
      names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string path;
};

} // namespace loom::testing

#endif // LOOM_TESTS_TEMPDIR_H
