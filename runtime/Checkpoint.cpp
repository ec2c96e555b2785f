//===- Checkpoint.cpp - safetensors checkpoints ---------------------------===//
//
// Writing: header JSON built by hand, data streamed from the flat buffer,
// temp file + fsync + rename. Reading: pread of the length and header, a
// strict JSON parse, structural checks (readHeader), checks against the model
// (loadCheckpoint), and only then the data, straight into the store.
//
//===----------------------------------------------------------------------===//

#include "loom/Checkpoint.h"

#include "Json.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; so is every supported host");

namespace loom {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;

/// One tensor of a checkpoint, as its header describes it.
struct Entry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0; // relative to the data section
};

struct Header {
  std::vector<Entry> entries; // in header order
  std::map<std::string, std::string> metadata;
  uint64_t dataStart = 0; // 8 + header length
};

/// Closes the descriptor when it goes out of scope.
class FileDescriptor {
public:
  explicit FileDescriptor(int fd) : fd(fd) {}
  FileDescriptor(const FileDescriptor &) = delete;
  FileDescriptor &operator=(const FileDescriptor &) = delete;
  ~FileDescriptor() {
    if (fd >= 0)
      ::close(fd);
  }
  int get() const { return fd; }
  /// Closes now, reporting the error close() gives.
  bool close() {
    int result = ::close(fd);
    fd = -1;
    return result == 0;
  }

private:
  int fd;
};

std::string errnoText() { return std::strerror(errno); }

std::string rangeString(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

/// Reads exactly `size` bytes at `offset`.
Status readAt(int fd, void *out, uint64_t size, uint64_t offset) {
  char *cursor = static_cast<char *>(out);
  while (size > 0) {
    ssize_t got = ::pread(fd, cursor, std::min<uint64_t>(size, 1u << 30),
                          static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      return Status::error("read failed at byte " + std::to_string(offset) +
                           ": " + errnoText());
    if (got == 0)
      return Status::error("unexpected end of file at byte " +
                           std::to_string(offset));
    cursor += got;
    size -= static_cast<uint64_t>(got);
    offset += static_cast<uint64_t>(got);
  }
  return Status::success();
}

/// Writes all `size` bytes of `data`.
Status writeAll(int fd, const void *data, size_t size) {
  const char *cursor = static_cast<const char *>(data);
  while (size > 0) {
    ssize_t put = ::write(fd, cursor, std::min<size_t>(size, 1u << 30));
    if (put < 0 && errno == EINTR)
      continue;
    if (put <= 0)
      return Status::error(put < 0 ? errnoText() : "write wrote nothing");
    cursor += put;
    size -= static_cast<size_t>(put);
  }
  return Status::success();
}

/// A JSON value that must be a non-negative integer.
bool isCount(const json::Value &value) {
  return value.kind == json::Value::Kind::Integer && value.integer >= 0;
}

/// Fills `entry` from the header object of tensor `entry.name`, checking
/// everything that does not need the data section's size.
Status parseEntry(const json::Value &value, Entry &entry) {
  if (value.kind != json::Value::Kind::Object)
    return Status::error("entry is not a JSON object");
  for (const std::string &key : value.keys)
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      return Status::error("unexpected key '" + key +
                           "' (expected dtype, shape and data_offsets)");
  const json::Value *dtype = value.find("dtype");
  const json::Value *shape = value.find("shape");
  const json::Value *offsets = value.find("data_offsets");
  if (!dtype || !shape || !offsets)
    return Status::error(std::string("missing '") +
                         (!dtype   ? "dtype"
                          : !shape ? "shape"
                                   : "data_offsets") +
                         "'");

  if (dtype->kind != json::Value::Kind::String)
    return Status::error("'dtype' is not a string");
  std::optional<DType> parsed = dtypeFromSafetensorsName(dtype->string);
  if (!parsed)
    return Status::error("unknown or unsupported dtype " +
                         json::quote(dtype->string) +
                         " (expected F32, BF16, F16, F64, I32, I64 or BOOL)");
  entry.dtype = *parsed;

  if (shape->kind != json::Value::Kind::Array ||
      !std::all_of(shape->items.begin(), shape->items.end(), isCount))
    return Status::error("'shape' is not an array of non-negative integers");
  for (const json::Value &dim : shape->items)
    entry.shape.push_back(dim.integer);

  if (offsets->kind != json::Value::Kind::Array || offsets->items.size() != 2 ||
      !isCount(offsets->items[0]) || !isCount(offsets->items[1]))
    return Status::error(
        "'data_offsets' is not an array of two non-negative integers");
  entry.begin = static_cast<uint64_t>(offsets->items[0].integer);
  entry.end = static_cast<uint64_t>(offsets->items[1].integer);
  if (entry.begin > entry.end)
    return Status::error("data_offsets " + rangeString(entry.begin, entry.end) +
                         " begin after they end");
  return Status::success();
}

/// Reads and validates the length, the header and the layout of the data
/// section of the open file `fd` of `fileSize` bytes.
Result<Header> readHeader(int fd, uint64_t fileSize) {
  if (fileSize < 8)
    return Status::error("file is " + std::to_string(fileSize) +
                         " bytes, too short for the 8-byte header length");
  unsigned char lengthBytes[8];
  LOOM_RETURN_IF_ERROR(readAt(fd, lengthBytes, 8, 0));
  uint64_t length = 0;
  for (int i = 7; i >= 0; --i)
    length = length << 8 | lengthBytes[i];
  if (length > kMaxHeaderBytes)
    return Status::error("header length " + std::to_string(length) +
                         " is larger than the limit of " +
                         std::to_string(kMaxHeaderBytes) + " bytes");
  if (length > fileSize - 8)
    return Status::error("header length " + std::to_string(length) +
                         " runs past the end of the file (only " +
                         std::to_string(fileSize - 8) +
                         " bytes follow the length field)");
  std::string text(length, '\0');
  LOOM_RETURN_IF_ERROR(readAt(fd, text.data(), length, 8));

  Result<json::Value> root = json::parse(text);
  if (!root.ok())
    return root.status().withContext("header is not valid JSON");
  if (root->kind != json::Value::Kind::Object)
    return Status::error("header is not a JSON object");

  Header header;
  header.dataStart = 8 + length;
  uint64_t dataSize = fileSize - header.dataStart;
  for (size_t i = 0; i < root->keys.size(); ++i) {
    const std::string &name = root->keys[i];
    const json::Value &value = root->items[i];
    if (name == "__metadata__") {
      if (value.kind != json::Value::Kind::Object)
        return Status::error("'__metadata__' is not a JSON object");
      for (size_t j = 0; j < value.keys.size(); ++j) {
        if (value.items[j].kind != json::Value::Kind::String)
          return Status::error("'__metadata__' value of key '" + value.keys[j] +
                               "' is not a string");
        header.metadata[value.keys[j]] = value.items[j].string;
      }
      continue;
    }
    Entry entry;
    entry.name = name;
    Status status = parseEntry(value, entry);
    std::optional<int64_t> numel = checkedNumel(entry.shape);
    uint64_t needed = 0;
    if (status.ok() &&
        (!numel || __builtin_mul_overflow(static_cast<uint64_t>(*numel),
                                          dtypeSize(entry.dtype), &needed)))
      status = Status::error("shape " + shapeString(entry.shape) +
                             " has too many elements");
    if (status.ok() && entry.end > dataSize)
      status =
          Status::error("data_offsets " + rangeString(entry.begin, entry.end) +
                        " run past the end of the data section (" +
                        std::to_string(dataSize) + " bytes)");
    if (status.ok() && entry.end - entry.begin != needed)
      status =
          Status::error("data_offsets " + rangeString(entry.begin, entry.end) +
                        " span " + std::to_string(entry.end - entry.begin) +
                        " bytes, but shape " + shapeString(entry.shape) +
                        " of " + std::string(safetensorsName(entry.dtype)) +
                        " needs " + std::to_string(needed));
    LOOM_RETURN_IF_ERROR(status.withContext("tensor '" + name + "'"));
    header.entries.push_back(std::move(entry));
  }

  // The tensors must tile the data section: no overlaps, no gaps.
  std::vector<const Entry *> sorted;
  for (const Entry &entry : header.entries)
    sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(), [](const Entry *a, const Entry *b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t covered = 0;
  const Entry *last = nullptr; // the entry that reaches `covered`
  for (const Entry *entry : sorted) {
    if (entry->begin < covered)
      return Status::error("tensors '" + last->name + "' (data_offsets " +
                           rangeString(last->begin, last->end) + ") and '" +
                           entry->name + "' (data_offsets " +
                           rangeString(entry->begin, entry->end) + ") overlap");
    if (entry->begin > covered)
      return Status::error("data bytes [" + std::to_string(covered) + ", " +
                           std::to_string(entry->begin) +
                           ") are not covered by any tensor");
    if (entry->end > covered || !last) {
      covered = entry->end;
      last = entry;
    }
  }
  if (covered < dataSize)
    return Status::error("data bytes [" + std::to_string(covered) + ", " +
                         std::to_string(dataSize) +
                         ") at the end of the file are not covered by any "
                         "tensor");
  return header;
}

/// Opens `path` for reading and checks it is a regular file.
Status openForReading(const std::string &path, int &fd, uint64_t &size) {
  fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return Status::error("cannot open: " + errnoText());
  struct stat info;
  if (::fstat(fd, &info) != 0)
    return Status::error("cannot stat: " + errnoText());
  if (!S_ISREG(info.st_mode))
    return Status::error("not a regular file");
  size = static_cast<uint64_t>(info.st_size);
  return Status::success();
}

Status loadInto(const std::string &path, ParamStore &store) {
  int raw = -1;
  uint64_t size = 0;
  Status opened = openForReading(path, raw, size);
  FileDescriptor fd(raw);
  LOOM_RETURN_IF_ERROR(opened);
  Result<Header> header = readHeader(fd.get(), size);
  if (!header.ok())
    return header.status();

  // Against the model: same names, dtypes and shapes.
  // A training checkpoint (loom.optimizer in its metadata) also holds the
  // optimizer state, `optimizer.*`: into a store without it (a model for
  // inference) the parameters alone load.
  bool training = header->metadata.count("loom.optimizer") > 0;
  std::vector<bool> found(store.size(), false);
  std::vector<std::pair<const Entry *, size_t>> reads;
  for (const Entry &entry : header->entries) {
    std::optional<size_t> index = store.indexOf(entry.name);
    if (!index && training && entry.name.rfind("optimizer.", 0) == 0)
      continue;
    if (!index)
      return Status::error("tensor '" + entry.name +
                           "' is in the checkpoint but not in the model");
    const ParamInfo &info = store.param(*index);
    if (entry.dtype != info.dtype)
      return Status::error("tensor '" + entry.name + "': dtype " +
                           std::string(safetensorsName(entry.dtype)) +
                           " does not match the model's " +
                           std::string(safetensorsName(info.dtype)));
    if (entry.shape != info.shape)
      return Status::error(
          "tensor '" + entry.name + "': shape " + shapeString(entry.shape) +
          " does not match the model's " + shapeString(info.shape));
    found[*index] = true;
    reads.push_back({&entry, *index});
  }
  size_t missing = std::count(found.begin(), found.end(), false);
  if (missing > 0) {
    size_t first = std::find(found.begin(), found.end(), false) - found.begin();
    return Status::error(
        "tensor '" + store.param(first).name +
        "' of the model is missing from the checkpoint" +
        (missing > 1 ? " (and " + std::to_string(missing - 1) + " more)" : ""));
  }

  for (auto [entryPtr, index] : reads) {
    const Entry &entry = *entryPtr;
    LOOM_RETURN_IF_ERROR(
        readAt(fd.get(), store.data() + store.param(index).offset,
               entry.end - entry.begin, header->dataStart + entry.begin)
            .withContext("tensor '" + entry.name + "'"));
  }
  return Status::success();
}

/// The JSON header of `store` with `metadata`, padded with spaces to a
/// multiple of 8 bytes.
std::string buildHeader(const ParamStore &store,
                        const std::map<std::string, std::string> &metadata) {
  std::string out = "{";
  if (!metadata.empty()) {
    out += "\"__metadata__\":{";
    bool first = true;
    for (const auto &[key, value] : metadata) {
      out += (first ? "" : ",") + json::quote(key) + ":" + json::quote(value);
      first = false;
    }
    out += "}";
  }
  uint64_t cursor = 0;
  for (const ParamInfo &info : store.params()) {
    std::string shape;
    for (int64_t dim : info.shape)
      shape += (shape.empty() ? "" : ",") + std::to_string(dim);
    uint64_t end = cursor + info.nbytes();
    out += (out.size() > 1 ? "," : "") + json::quote(info.name) +
           ":{\"dtype\":\"" + std::string(safetensorsName(info.dtype)) +
           "\",\"shape\":[" + shape + "],\"data_offsets\":[" +
           std::to_string(cursor) + "," + std::to_string(end) + "]}";
    cursor = end;
  }
  out += "}";
  out.append((8 - out.size() % 8) % 8, ' ');
  return out;
}

/// Writes the whole checkpoint to the new file `fd`.
Status writeFile(int fd, const ParamStore &store, const std::string &header) {
  unsigned char length[8];
  for (int i = 0; i < 8; ++i)
    length[i] = static_cast<unsigned char>(uint64_t(header.size()) >> (8 * i));
  LOOM_RETURN_IF_ERROR(writeAll(fd, length, 8));
  LOOM_RETURN_IF_ERROR(writeAll(fd, header.data(), header.size()));
  for (const ParamInfo &info : store.params())
    LOOM_RETURN_IF_ERROR(
        writeAll(fd, store.data() + info.offset, info.nbytes()));
  return Status::success();
}

/// fsyncs the directory holding `path` so the rename survives a crash;
/// best effort.
void syncDirectoryOf(const std::string &path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "."
                    : slash == 0               ? "/"
                                               : path.substr(0, slash);
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
}

} // namespace

Status saveCheckpoint(const std::string &path, const ParamStore &store,
                      const std::map<std::string, std::string> &metadata) {
  std::string context = "checkpoint '" + path + "'";
  std::string temp = path + ".tmp." + std::to_string(::getpid());
  FileDescriptor fd(
      ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0)
    return Status::error(context + ": cannot create '" + temp +
                         "': " + errnoText());
  auto fail = [&](const std::string &message) {
    ::unlink(temp.c_str());
    return Status::error(context + ": " + message);
  };
  Status written = writeFile(fd.get(), store, buildHeader(store, metadata));
  if (!written.ok())
    return fail("writing '" + temp + "' failed: " + written.message());
  if (::fsync(fd.get()) != 0)
    return fail("fsync of '" + temp + "' failed: " + errnoText());
  if (!fd.close())
    return fail("closing '" + temp + "' failed: " + errnoText());
  if (::rename(temp.c_str(), path.c_str()) != 0)
    return fail("cannot rename '" + temp + "' to '" + path +
                "': " + errnoText());
  syncDirectoryOf(path);
  return Status::success();
}

Status loadCheckpoint(const std::string &path, ParamStore &store) {
  return loadInto(path, store).withContext("checkpoint '" + path + "'");
}

/// The open file `path` and its validated header; errors say `context`.
static Result<Header> openWithHeader(const std::string &path,
                                     const std::string &context, int &fd) {
  uint64_t size = 0;
  Status opened = openForReading(path, fd, size);
  if (!opened.ok())
    return opened.withContext(context);
  Result<Header> header = readHeader(fd, size);
  if (!header.ok())
    return header.status().withContext(context);
  return header;
}

Result<std::map<std::string, std::string>>
readCheckpointMetadata(const std::string &path) {
  int raw = -1;
  Result<Header> header =
      openWithHeader(path, "checkpoint '" + path + "'", raw);
  FileDescriptor fd(raw);
  if (!header.ok())
    return header.status();
  return std::move(header->metadata);
}

Result<SafetensorsFile> readSafetensors(const std::string &path) {
  std::string context = "safetensors file '" + path + "'";
  int raw = -1;
  Result<Header> header = openWithHeader(path, context, raw);
  FileDescriptor fd(raw);
  if (!header.ok())
    return header.status();
  SafetensorsFile file;
  file.metadata = std::move(header->metadata);
  for (const Entry &entry : header->entries) {
    Tensor tensor = Tensor::empty(entry.dtype, entry.shape);
    Status read = readAt(fd.get(), tensor.rawData(), entry.end - entry.begin,
                         header->dataStart + entry.begin);
    if (!read.ok())
      return read.withContext("tensor '" + entry.name + "'")
          .withContext(context);
    file.tensors.emplace_back(entry.name, std::move(tensor));
  }
  return file;
}

} // namespace loom
