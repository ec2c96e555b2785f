//===- CompileCache.cpp - Compiled functions kept on disk -----------------===//

#include "driver/CompileCache.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/BLAKE3.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Support/xxhash.h"

#include <algorithm>
#include <cstring>
#include <sys/time.h>

using namespace loom;
using namespace loom::driver;

namespace {

constexpr llvm::StringLiteral kMagic = "LOOMCACHE\x02";
constexpr llvm::StringLiteral kSuffix = ".loomfn";

void putU64(std::string &out, uint64_t v) {
  char bytes[8];
  std::memcpy(bytes, &v, 8);
  out.append(bytes, 8);
}

void putString(std::string &out, llvm::StringRef s) {
  putU64(out, s.size());
  out.append(s.data(), s.size());
}

/// Reads the payload back; every read is bounds-checked.
struct Reader {
  llvm::StringRef data;
  bool ok = true;
  uint64_t u64() {
    if (data.size() < 8) {
      ok = false;
      return 0;
    }
    uint64_t v;
    std::memcpy(&v, data.data(), 8);
    data = data.drop_front(8);
    return v;
  }
  std::string string() {
    uint64_t n = u64();
    if (!ok || n > data.size()) {
      ok = false;
      return {};
    }
    std::string s = data.take_front(n).str();
    data = data.drop_front(n);
    return s;
  }
};

std::string serialize(const CachedFunction &entry) {
  std::string payload;
  putU64(payload, uint64_t(entry.flops));
  putU64(payload, uint64_t(entry.paramBytes));
  putU64(payload, uint64_t(entry.optimizerStates));
  putU64(payload,
         (entry.objects.openmp ? 1 : 0) | (entry.objects.runnerUtils ? 2 : 0));
  putU64(payload, entry.objects.entries.size());
  for (const std::string &name : entry.objects.entries)
    putString(payload, name);
  putU64(payload, entry.objects.objects.size());
  for (const std::string &object : entry.objects.objects)
    putString(payload, object);
  putU64(payload, entry.objects.workspaces.size());
  for (const auto &[name, bytes] : entry.objects.workspaces) {
    putString(payload, name);
    putU64(payload, bytes);
  }
  std::string file = kMagic.str();
  putU64(file, payload.size());
  putU64(file, llvm::xxh3_64bits(llvm::StringRef(payload)));
  return file + payload;
}

/// The entry in `file`, or why it is damaged.
std::optional<CachedFunction> deserialize(llvm::StringRef file,
                                          std::string &why) {
  if (!file.consume_front(kMagic)) {
    why = "not a Loom cache entry";
    return std::nullopt;
  }
  Reader header{file};
  uint64_t size = header.u64(), checksum = header.u64();
  if (!header.ok || header.data.size() != size) {
    why = "truncated";
    return std::nullopt;
  }
  if (llvm::xxh3_64bits(header.data) != checksum) {
    why = "checksum mismatch";
    return std::nullopt;
  }
  Reader r{header.data};
  CachedFunction entry;
  entry.flops = int64_t(r.u64());
  entry.paramBytes = int64_t(r.u64());
  entry.optimizerStates = int64_t(r.u64());
  uint64_t flags = r.u64();
  entry.objects.openmp = flags & 1;
  entry.objects.runnerUtils = flags & 2;
  for (uint64_t i = 0, n = r.u64(); r.ok && i < n; ++i)
    entry.objects.entries.push_back(r.string());
  for (uint64_t i = 0, n = r.u64(); r.ok && i < n; ++i)
    entry.objects.objects.push_back(r.string());
  for (uint64_t i = 0, n = r.u64(); r.ok && i < n; ++i) {
    std::string name = r.string();
    entry.objects.workspaces.emplace_back(std::move(name), r.u64());
  }
  if (!r.ok || !r.data.empty()) {
    why = "malformed";
    return std::nullopt;
  }
  return entry;
}

} // namespace

std::string CompileCache::defaultDirectory() {
  if (auto dir = llvm::sys::Process::GetEnv("LOOM_CACHE_DIR"))
    return *dir;
  llvm::SmallString<256> path;
  if (auto xdg = llvm::sys::Process::GetEnv("XDG_CACHE_HOME");
      xdg && !xdg->empty())
    path = *xdg;
  else if (auto home = llvm::sys::Process::GetEnv("HOME");
           home && !home->empty())
    llvm::sys::path::append(path, *home, ".cache");
  else
    return {};
  llvm::sys::path::append(path, "loom");
  return std::string(path);
}

uint64_t CompileCache::defaultLimit() {
  uint64_t mb = 1024;
  if (auto text = llvm::sys::Process::GetEnv("LOOM_CACHE_MAX_MB"))
    (void)llvm::StringRef(*text).getAsInteger(10, mb);
  return mb << 20;
}

CompileCache::CompileCache(std::string directory, uint64_t limitBytes)
    : dir(std::move(directory)), limit(limitBytes) {}

std::string CompileCache::key(llvm::ArrayRef<llvm::StringRef> parts) {
  llvm::BLAKE3 hasher;
  for (llvm::StringRef part : parts) {
    uint64_t size = part.size();
    hasher.update(llvm::ArrayRef<uint8_t>(
        reinterpret_cast<const uint8_t *>(&size), sizeof(size)));
    hasher.update(part);
  }
  llvm::BLAKE3Result<32> digest = hasher.final();
  return llvm::toHex(digest, /*LowerCase=*/true);
}

std::string CompileCache::pathOf(llvm::StringRef key) const {
  llvm::SmallString<256> path(dir);
  llvm::sys::path::append(path, key + kSuffix);
  return std::string(path);
}

std::optional<CachedFunction> CompileCache::lookup(llvm::StringRef key) {
  std::string path = pathOf(key);
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  if (!buffer)
    return std::nullopt;
  std::string why;
  std::optional<CachedFunction> entry =
      deserialize((*buffer)->getBuffer(), why);
  if (!entry) {
    llvm::errs() << "loom: warning: compile cache entry '" << path
                 << "' is damaged (" << why << "); compiling again\n";
    (void)llvm::sys::fs::remove(path);
    return std::nullopt;
  }
  // Recently used: eviction goes by modification time.
  (void)::utimes(path.c_str(), nullptr);
  return entry;
}

void CompileCache::store(llvm::StringRef key, const CachedFunction &entry) {
  auto fail = [&](const llvm::Twine &what) {
    if (!warned)
      llvm::errs() << "loom: warning: cannot write the compile cache in '"
                   << dir << "': " << what << " (compiling without it)\n";
    warned = true;
  };
  if (std::error_code ec = llvm::sys::fs::create_directories(dir))
    return fail(ec.message());
  llvm::SmallString<256> model(dir);
  llvm::sys::path::append(model, "tmp-%%%%%%%%%%%%.part");
  int fd;
  llvm::SmallString<256> temp;
  if (std::error_code ec = llvm::sys::fs::createUniqueFile(model, fd, temp))
    return fail(ec.message());
  {
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
    os << serialize(entry);
    os.close();
    if (os.has_error()) {
      std::string message = os.error().message();
      os.clear_error(); // else the stream's destructor aborts
      (void)llvm::sys::fs::remove(temp);
      return fail(message);
    }
  }
  // Readers see the old entry or the whole new one, never a part.
  if (std::error_code ec = llvm::sys::fs::rename(temp, pathOf(key))) {
    (void)llvm::sys::fs::remove(temp);
    return fail(ec.message());
  }
  evict();
}

void CompileCache::evict() {
  struct File {
    std::string path;
    uint64_t size;
    llvm::sys::TimePoint<> used;
  };
  std::vector<File> files;
  uint64_t total = 0;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(dir, ec), end; it != end && !ec;
       it.increment(ec)) {
    if (!llvm::StringRef(it->path()).ends_with(kSuffix))
      continue;
    llvm::sys::fs::file_status status;
    if (llvm::sys::fs::status(it->path(), status))
      continue;
    files.push_back(
        {it->path(), status.getSize(), status.getLastModificationTime()});
    total += status.getSize();
  }
  if (total <= limit)
    return;
  std::sort(files.begin(), files.end(),
            [](const File &a, const File &b) { return a.used < b.used; });
  for (const File &file : files) {
    if (total <= limit)
      break;
    if (!llvm::sys::fs::remove(file.path))
      total -= file.size;
  }
}
