//===- CompileCacheTest.cpp - Compiled functions reused from disk ---------===//
//
// A small GPT (examples/gpt.loom, d 32, 2 layers) compiled through
// driver::Session with the disk cache in a scratch directory: a second
// session loads what the first compiled and computes bit-identical results;
// changing the source, a binding, a config value, an optimizer option or the
// target CPU misses; a damaged entry is reported, compiled again and
// replaced; two processes compiling the same function at once both succeed;
// beyond its size limit the cache drops the least recently used entries.
//
//===----------------------------------------------------------------------===//

#include "driver/CompileCache.h"
#include "driver/Session.h"
#include "tests/TempDir.h"
#include "tests/e2e/RandomCall.h"

#include "loom/Params.h"
#include "loom/Tensor.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace loom;
using loom::testing::TempDir;

namespace {

const std::map<std::string, std::string> kConfig = {{"d", "32"},
                                                    {"layers", "2"},
                                                    {"heads", "2"},
                                                    {"vocab", "64"},
                                                    {"ctx", "16"}};
const std::map<std::string, int64_t> kBind = {{"B", 2}, {"T", 8}};

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void writeFile(const std::string &path, const std::string &text) {
  std::ofstream(path, std::ios::binary) << text;
}

/// A scratch copy of examples/gpt.loom and a cache directory beside it.
struct Fixture {
  TempDir dir{"loom-cache-test"};
  std::string source = dir.file("gpt.loom");
  std::string cache = dir.file("cache");
  Fixture() {
    writeFile(source, readFile(LOOM_SOURCE_DIR "/examples/gpt.loom"));
  }

  std::unique_ptr<driver::Session>
  open(std::map<std::string, std::string> config = kConfig) {
    driver::SessionOptions options;
    options.config = std::move(config);
    options.cacheDir = cache;
    auto session = driver::Session::open(source, options);
    EXPECT_TRUE(bool(session)) << llvm::toString(session.takeError());
    return session ? std::move(*session) : nullptr;
  }

  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto &e : std::filesystem::directory_iterator(cache, ec))
      if (e.path().extension() == ".loomfn")
        names.push_back(e.path().string());
    return names;
  }
};

driver::Variant trainStep(std::string optimizer = "kind=adamw") {
  driver::Variant v;
  v.kind = driver::Variant::TrainStep;
  v.optimizer = std::move(optimizer);
  return v;
}

/// Calls `fn` on seeded parameters and inputs; returns every output.
std::vector<float> run(driver::Session &session, driver::CompiledFunction &fn) {
  auto store = ParamStore::create(session.params());
  EXPECT_TRUE(store.ok());
  EXPECT_TRUE(store->initialize(7).ok());
  return loom::testing::callOnSeededInputs(fn, store->data(), 11);
}

/// Compiles `function` in a fresh session; returns (loaded from disk?,
/// outputs).
std::pair<bool, std::vector<float>>
compileAndRun(Fixture &f, const driver::Variant &variant,
              std::map<std::string, int64_t> bind = kBind,
              std::map<std::string, std::string> config = kConfig) {
  auto session = f.open(std::move(config));
  if (!session)
    return {false, {}};
  auto fn = session->get("loss", bind, variant);
  EXPECT_TRUE(bool(fn)) << llvm::toString(fn.takeError());
  if (!fn)
    return {false, {}};
  EXPECT_EQ(session->diskHits(), (*fn)->fromDiskCache ? 1u : 0u);
  return {(*fn)->fromDiskCache, run(*session, **fn)};
}

TEST(CompileCache, SecondSessionLoadsBitIdenticalCode) {
  Fixture f;
  for (const driver::Variant &variant : {driver::Variant(), trainStep()}) {
    auto [hit1, out1] = compileAndRun(f, variant);
    auto [hit2, out2] = compileAndRun(f, variant);
    EXPECT_FALSE(hit1);
    EXPECT_TRUE(hit2);
    ASSERT_EQ(out1.size(), out2.size());
    ASSERT_FALSE(out1.empty());
    EXPECT_TRUE(std::isfinite(out1.front()));
    for (size_t i = 0; i < out1.size(); ++i)
      ASSERT_EQ(out1[i], out2[i]) << "output element " << i;
  }
  EXPECT_EQ(f.entries().size(), 2u);
}

TEST(CompileCache, MissesWhenWhatTheCodeDependsOnChanges) {
  Fixture f;
  EXPECT_FALSE(compileAndRun(f, trainStep()).first);
  EXPECT_TRUE(compileAndRun(f, trainStep()).first);
  // A binding.
  EXPECT_FALSE(compileAndRun(f, trainStep(), {{"B", 2}, {"T", 4}}).first);
  // A config value.
  auto config = kConfig;
  config["d"] = "16";
  EXPECT_FALSE(compileAndRun(f, trainStep(), kBind, config).first);
  // An optimizer option.
  EXPECT_FALSE(
      compileAndRun(f, trainStep("kind=adamw weight-decay=0.1")).first);
  // The target CPU's features.
  ASSERT_EQ(::setenv("LOOM_TARGET_CPU", "x86-64-v2", 1), 0);
  auto [hit, out] = compileAndRun(f, trainStep());
  ::unsetenv("LOOM_TARGET_CPU");
  EXPECT_FALSE(hit);
  EXPECT_FALSE(out.empty());
  // The source: every location moves a line down (locations name the
  // layers and appear in diagnostics), then the attention mask changes.
  std::string text = "\n" + readFile(f.source);
  writeFile(f.source, text);
  EXPECT_FALSE(compileAndRun(f, trainStep()).first) << "a location moved";
  size_t at = text.find("causal = true,");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 14, "causal = false,");
  writeFile(f.source, text);
  EXPECT_FALSE(compileAndRun(f, trainStep()).first) << "the mask changed";
  // Every earlier entry is still there.
  EXPECT_EQ(f.entries().size(), 7u);
}

TEST(CompileCache, DamagedEntryIsReportedCompiledAgainAndReplaced) {
  Fixture f;
  auto [hit, good] = compileAndRun(f, trainStep());
  ASSERT_FALSE(hit);
  std::vector<std::string> entries = f.entries();
  ASSERT_EQ(entries.size(), 1u);
  std::string bytes = readFile(entries[0]);
  for (int damage = 0; damage < 2; ++damage) {
    std::string broken = bytes;
    if (damage == 0)
      broken[broken.size() / 2] ^= 0x40; // a flipped bit in an object
    else
      broken.resize(broken.size() / 3); // a truncated write
    writeFile(entries[0], broken);
    ::testing::internal::CaptureStderr();
    auto [again, out] = compileAndRun(f, trainStep());
    std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_FALSE(again);
    EXPECT_NE(err.find("is damaged"), std::string::npos) << err;
    EXPECT_EQ(out, good);
    EXPECT_EQ(readFile(entries[0]), bytes) << "the entry was rewritten";
  }
  EXPECT_TRUE(compileAndRun(f, trainStep()).first);
}

TEST(CompileCache, TwoProcessesCompilingAtOnceBothSucceed) {
  Fixture f;
  pid_t children[2];
  for (pid_t &child : children) {
    child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      auto session = f.open();
      auto fn = session ? session->get("loss", kBind, trainStep())
                        : llvm::Expected<driver::CompiledFunction *>(
                              llvm::createStringError("no session"));
      bool ok = bool(fn) && std::isfinite(run(*session, **fn).front());
      if (!fn)
        llvm::consumeError(fn.takeError());
      std::_Exit(ok && !::testing::Test::HasFailure() ? 0 : 1);
    }
  }
  for (pid_t child : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  EXPECT_EQ(f.entries().size(), 1u);
  EXPECT_TRUE(compileAndRun(f, trainStep()).first);
}

TEST(CompileCache, EvictsTheLeastRecentlyUsedEntriesBeyondItsLimit) {
  TempDir dir("loom-cache-evict");
  driver::CachedFunction entry;
  entry.objects.objects = {std::string(1000, 'x')};
  entry.objects.entries = {"f"};
  // Room for two entries of ~1 KB.
  driver::CompileCache cache(dir.path, 2500);
  cache.store("a", entry);
  cache.store("b", entry);
  ASSERT_TRUE(cache.lookup("a")); // a is now more recent than b
  cache.store("c", entry);
  EXPECT_TRUE(cache.lookup("a"));
  EXPECT_FALSE(cache.lookup("b"));
  EXPECT_TRUE(cache.lookup("c"));
  std::optional<driver::CachedFunction> back = cache.lookup("c");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->objects.objects, entry.objects.objects);
  EXPECT_EQ(back->objects.entries, entry.objects.entries);
}

} // namespace
