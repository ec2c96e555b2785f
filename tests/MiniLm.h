//===- MiniLm.h - Where the tests find all-MiniLM-L6-v2 ---------*- C++ -*-===//

#ifndef LOOM_TESTS_MINILM_H
#define LOOM_TESTS_MINILM_H

#include <cstdlib>
#include <string>

namespace loom::testing {

/// The directory scripts/fetch-minilm.sh unpacks all-MiniLM-L6-v2 into:
/// LOOM_MINILM_DIR, else $XDG_CACHE_HOME (or ~/.cache)/loom/hf/...
inline std::string miniLmDir() {
  if (const char *dir = std::getenv("LOOM_MINILM_DIR"))
    return dir;
  const char *home = std::getenv("HOME");
  const char *cache = std::getenv("XDG_CACHE_HOME");
  std::string base = cache ? cache : std::string(home ? home : "") + "/.cache";
  return base + "/loom/hf/all-MiniLM-L6-v2";
}

} // namespace loom::testing

#endif // LOOM_TESTS_MINILM_H
