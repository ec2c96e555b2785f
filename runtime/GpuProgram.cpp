//===- GpuProgram.cpp - The GPU program's JSON manifest -------------------===//

#include "loom/GpuProgram.h"

#include "Json.h"

#include <algorithm>
#include <sstream>

using namespace loom;
using namespace loom::gpu;

const Function *Program::find(const std::string &name) const {
  for (const Function &f : functions)
    if (f.name == name)
      return &f;
  return nullptr;
}

namespace {

/// `[a, b]`, or `[a,` newline `b]` when each item starts its own line.
template <class T, class Fn>
void writeList(std::ostringstream &os, const std::vector<T> &items, Fn each,
               const char *separator = ", ") {
  os << "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i)
      os << separator;
    each(items[i]);
  }
  os << "]";
}

void writeInts(std::ostringstream &os, const int64_t *values, size_t n) {
  os << "[";
  for (size_t i = 0; i < n; ++i)
    os << (i ? ", " : "") << values[i];
  os << "]";
}

} // namespace

std::string loom::gpu::toManifest(const Program &program) {
  std::ostringstream os;
  os << "{\n  \"format\": \"loom-gpu-manifest\",\n  \"version\": 1,\n"
     << "  \"arch\": " << json::quote(program.arch) << ",\n"
     << "  \"ptx\": \"kernels.ptx\",\n"
     << "  \"bindings\": " << json::quote(program.bindings) << ",\n"
     << "  \"functions\": [";
  for (size_t f = 0; f < program.functions.size(); ++f) {
    const Function &fn = program.functions[f];
    os << (f ? "," : "") << "\n    {\"name\": " << json::quote(fn.name)
       << ", \"workspace_bytes\": " << fn.workspaceBytes
       << ",\n     \"args\": ";
    writeList(
        os, fn.args,
        [&](const Argument &a) {
          os << "\n       {\"name\": " << json::quote(a.name)
             << ", \"dtype\": " << json::quote(a.dtype) << ", \"shape\": ";
          writeInts(os, a.shape.data(), a.shape.size());
          os << ", \"bytes\": " << a.bytes << ", \"output\": " << int(a.output);
          if (a.updated)
            os << ", \"updated\": 1";
          os << "}";
        },
        ",");
    os << ",\n     \"launches\": ";
    writeList(
        os, fn.launches,
        [&](const Launch &l) {
          os << "\n       {\"kernel\": " << json::quote(l.kernel)
             << ", \"grid\": ";
          writeInts(os, l.grid, 3);
          os << ", \"block\": ";
          writeInts(os, l.block, 3);
          os << ", \"shared_bytes\": " << l.sharedBytes << ", \"args\": ";
          writeList(os, l.args, [&](const BufferRef &r) {
            if (r.kind == BufferRef::Kind::Argument)
              os << "{\"arg\": " << r.index << ", \"offset\": " << r.offset
                 << "}";
            else
              os << "{\"workspace\": " << r.offset << "}";
          });
          os << "}";
        },
        ",");
    os << "}";
  }
  os << "\n  ]\n}\n";
  return os.str();
}

namespace {

/// Reads manifest values, remembering the first error with its path.
struct Reader {
  std::string error;

  const json::Value *field(const json::Value &object, const char *key,
                           json::Value::Kind kind, const std::string &where) {
    const json::Value *v =
        object.kind == json::Value::Kind::Object ? object.find(key) : nullptr;
    if (!v || v->kind != kind) {
      if (error.empty())
        error = where + ": expected field '" + key + "' of kind " +
                (kind == json::Value::Kind::Object   ? "object"
                 : kind == json::Value::Kind::Array  ? "array"
                 : kind == json::Value::Kind::String ? "string"
                                                     : "integer");
      return nullptr;
    }
    return v;
  }
  int64_t integer(const json::Value &o, const char *key,
                  const std::string &where) {
    const json::Value *v = field(o, key, json::Value::Kind::Integer, where);
    return v ? v->integer : 0;
  }
  std::string string(const json::Value &o, const char *key,
                     const std::string &where) {
    const json::Value *v = field(o, key, json::Value::Kind::String, where);
    return v ? v->string : std::string();
  }
  std::vector<int64_t> ints(const json::Value &o, const char *key,
                            const std::string &where) {
    std::vector<int64_t> out;
    if (const json::Value *v = field(o, key, json::Value::Kind::Array, where))
      for (const json::Value &item : v->items) {
        if (item.kind != json::Value::Kind::Integer) {
          if (error.empty())
            error = where + ": '" + key + "' must hold integers";
          return out;
        }
        out.push_back(item.integer);
      }
    return out;
  }
};

} // namespace

Result<Program> loom::gpu::fromManifest(const std::string &text) {
  auto parsed = json::parse(text);
  if (!parsed.ok())
    return Status::error("GPU manifest: " + parsed.status().message());
  const json::Value &root = parsed.value();
  Reader r;
  Program program;
  if (r.string(root, "format", "manifest") != "loom-gpu-manifest" &&
      r.error.empty())
    r.error = "manifest: 'format' is not \"loom-gpu-manifest\"";
  program.arch = r.string(root, "arch", "manifest");
  program.bindings = r.string(root, "bindings", "manifest");
  const json::Value *functions =
      r.field(root, "functions", json::Value::Kind::Array, "manifest");
  for (size_t f = 0; functions && f < functions->items.size(); ++f) {
    const json::Value &fv = functions->items[f];
    std::string where = "manifest: functions[" + std::to_string(f) + "]";
    Function fn;
    fn.name = r.string(fv, "name", where);
    fn.workspaceBytes = r.integer(fv, "workspace_bytes", where);
    if (auto *args = r.field(fv, "args", json::Value::Kind::Array, where))
      for (const json::Value &av : args->items) {
        Argument a;
        a.name = r.string(av, "name", where + ".args");
        a.dtype = r.string(av, "dtype", where + ".args");
        a.shape = r.ints(av, "shape", where + ".args");
        a.bytes = r.integer(av, "bytes", where + ".args");
        a.output = r.integer(av, "output", where + ".args") != 0;
        // Optional: present (1) on arguments updated in place.
        if (av.find("updated"))
          a.updated = r.integer(av, "updated", where + ".args") != 0;
        if (a.updated && !a.output && r.error.empty())
          r.error = where + ".args: '" + a.name +
                    "' is updated in place but not an output";
        fn.args.push_back(std::move(a));
      }
    if (auto *launches =
            r.field(fv, "launches", json::Value::Kind::Array, where))
      for (const json::Value &lv : launches->items) {
        std::string lwhere = where + ".launches";
        Launch l;
        l.kernel = r.string(lv, "kernel", lwhere);
        std::vector<int64_t> grid = r.ints(lv, "grid", lwhere);
        std::vector<int64_t> block = r.ints(lv, "block", lwhere);
        if (grid.size() != 3 || block.size() != 3) {
          if (r.error.empty())
            r.error = lwhere + ": grid and block need 3 integers";
          break;
        }
        for (int d = 0; d < 3; ++d) {
          l.grid[d] = grid[d];
          l.block[d] = block[d];
        }
        l.sharedBytes = r.integer(lv, "shared_bytes", lwhere);
        for (int d = 0; d < 3; ++d)
          if (r.error.empty() && (l.grid[d] < 1 || l.grid[d] > 0x7fffffff ||
                                  l.block[d] < 1 || l.block[d] > 1024))
            r.error = lwhere + ": grid sizes must be in [1, 2^31 - 1] and "
                               "block sizes in [1, 1024]";
        if (r.error.empty() && (l.sharedBytes < 0 || l.sharedBytes > (1 << 30)))
          r.error = lwhere + ": shared_bytes out of range";
        if (auto *args = r.field(lv, "args", json::Value::Kind::Array, lwhere))
          for (const json::Value &ref : args->items) {
            BufferRef b;
            if (const json::Value *arg = ref.find("arg");
                arg && arg->kind == json::Value::Kind::Integer) {
              b.kind = BufferRef::Kind::Argument;
              b.index = arg->integer;
              b.offset = r.integer(ref, "offset", lwhere);
              bool inRange = b.index >= 0 && b.index < int64_t(fn.args.size());
              if (r.error.empty() && !inRange)
                r.error = lwhere + ": argument index " +
                          std::to_string(b.index) + " out of range";
              else if (r.error.empty() &&
                       (b.offset < 0 ||
                        b.offset >=
                            std::max<int64_t>(fn.args[b.index].bytes, 1)))
                r.error = lwhere + ": offset " + std::to_string(b.offset) +
                          " outside argument " + std::to_string(b.index);
            } else if (const json::Value *ws = ref.find("workspace");
                       ws && ws->kind == json::Value::Kind::Integer) {
              b.kind = BufferRef::Kind::Workspace;
              b.offset = ws->integer;
              if (r.error.empty() &&
                  (b.offset < 0 || b.offset >= fn.workspaceBytes))
                r.error = lwhere + ": workspace offset " +
                          std::to_string(b.offset) + " out of range";
            } else if (r.error.empty()) {
              r.error = lwhere + ": an argument is {\"arg\": i} or "
                                 "{\"workspace\": offset}";
            }
            l.args.push_back(b);
          }
        fn.launches.push_back(std::move(l));
      }
    program.functions.push_back(std::move(fn));
  }
  if (!r.error.empty())
    return Status::error(r.error);
  return program;
}
