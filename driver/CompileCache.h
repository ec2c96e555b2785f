//===- CompileCache.h - Compiled functions kept on disk ---------*- C++ -*-===//
//
// A directory of compiled functions, one file per key: the objects the JIT
// links and what the session needs besides (the entry's FLOP count, the
// parameter buffer size, the optimizer's state count). The key hashes
// everything the code depends on; see Session::get. Entries are written to
// a temporary file and renamed, so a reader never sees half an entry; each
// carries a checksum, so a damaged one is reported, removed and compiled
// again, never loaded. Beyond its size limit the least recently used
// entries go.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_DRIVER_COMPILECACHE_H
#define LOOM_DRIVER_COMPILECACHE_H

#include "codegen/cpu/Jit.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>
#include <string>

namespace loom::driver {

/// What a cache entry holds.
struct CachedFunction {
  JitObjects objects;
  int64_t flops = -1;
  int64_t paramBytes = 0;
  int64_t optimizerStates = 0;
};

class CompileCache {
public:
  /// `LOOM_CACHE_DIR`, else `$XDG_CACHE_HOME/loom`, else `~/.cache/loom`;
  /// empty when none is set (no home).
  static std::string defaultDirectory();
  /// `LOOM_CACHE_MAX_MB` megabytes, else 1 GiB.
  static uint64_t defaultLimit();

  /// A cache in `directory` (created on the first store) holding at most
  /// `limitBytes`.
  CompileCache(std::string directory, uint64_t limitBytes);

  /// A key: the hex digest (BLAKE3) of `parts`, each length-prefixed.
  static std::string key(llvm::ArrayRef<llvm::StringRef> parts);

  /// The entry for `key`; none when absent or damaged (a damaged entry is
  /// reported on stderr once and removed).
  std::optional<CachedFunction> lookup(llvm::StringRef key);

  /// Stores `entry` under `key` (atomically), then evicts the least
  /// recently used entries above the limit. Failures (a read-only
  /// directory, a full disk) are reported once and otherwise ignored: the
  /// cache only ever saves time.
  void store(llvm::StringRef key, const CachedFunction &entry);

  const std::string &directory() const { return dir; }

private:
  std::string pathOf(llvm::StringRef key) const;
  void evict();

  std::string dir;
  uint64_t limit;
  bool warned = false;
};

} // namespace loom::driver

#endif // LOOM_DRIVER_COMPILECACHE_H
