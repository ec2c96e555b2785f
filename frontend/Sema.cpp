//===- Sema.cpp - Elaboration and checking of Loom programs ---------------===//
//
// Instances, names, statements, calls and signature unification. The rules
// of each primitive live in Primitives.cpp.
//
//===----------------------------------------------------------------------===//

#include "frontend/Sema.h"
#include "frontend/Diagnostics.h"
#include "frontend/MLIRGen.h"

#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/SourceMgr.h"

#include <cmath>

using namespace loom::frontend;
using llvm::SMLoc;
using llvm::SMRange;
using llvm::StringRef;

namespace {
constexpr unsigned kMaxInstantiationDepth = 64;
constexpr unsigned kMaxCallDepth = 64;
constexpr int64_t kMaxRepeat = 4096;
constexpr int64_t kMaxParamElements = int64_t(1) << 36;
/// Bounds on elaboration work, so nested repeats cannot blow up exponentially.
constexpr unsigned kMaxInstances = 1 << 16;
} // namespace

/// The function being elaborated: its locals and where it was called from.
struct Sema::Frame {
  Instance *self = nullptr;
  const FnStmt *fn = nullptr;
  llvm::StringMap<Value> locals;
  SMRange site;
  Frame *caller = nullptr;
};

std::string Value::describe() const {
  switch (kind) {
  case Kind::Error:
    return "an erroneous value";
  case Kind::None:
    return "nothing";
  case Kind::Int:
    return "the integer " + dim.str();
  case Kind::Float: {
    std::string s;
    llvm::raw_string_ostream(s) << llvm::format("%g", number);
    return "the number " + s;
  }
  case Kind::Bool:
    return flag ? "the boolean true" : "the boolean false";
  case Kind::String:
    return "the string \"" + text + "\"";
  case Kind::DType:
    return "the type " + spell(dtype).str();
  case Kind::List:
    return "a list of " + std::to_string(elems.size()) + " values";
  case Kind::Tensor:
    return "a tensor " + type.str();
  case Kind::Tuple:
    return "a tuple of " + std::to_string(elems.size()) + " values";
  case Kind::Instance:
    return "the block instance '" + instance->display + "'";
  case Kind::Repeat:
    return "a repeat of " + std::to_string(layers.size()) + " layers";
  case Kind::Function:
    return "the function '" + fn->name + "'";
  case Kind::Block:
    return "the block '" + block->name + "'";
  case Kind::Module:
    return "the library '" + text + "'";
  case Kind::Builtin:
    return "the primitive '" + text + "'";
  case Kind::Param:
    return "a parameter";
  }
  return "a value";
}

const SourceFile *Program::findModule(StringRef name) const {
  for (const auto &file : files)
    if (file->moduleName == name)
      return file.get();
  return nullptr;
}

Sema::Sema(const Program &program, MLIRGen &gen, DiagnosticEngine &diags,
           std::map<std::string, Dim> bindings)
    : program(program), gen(gen), diags(diags), bindings(std::move(bindings)) {}

Sema::~Sema() = default;

std::string Sema::currentPath() const {
  Instance *inst = frame ? frame->self : current;
  return inst ? inst->display : "";
}

SMRange Sema::currentCallRange() const {
  return frame ? frame->site : SMRange();
}

void Sema::error(SMRange range, const llvm::Twine &message) {
  std::string path = currentPath();
  std::string text = path.empty() ? message.str() : path + ": " + message.str();
  diags.error(range.Start, text, range);
  // Show the chain of calls that led here, innermost first.
  unsigned shown = 0;
  SMLoc lastSite;
  for (Frame *f = frame; f && shown < 4; f = f->caller) {
    // A recursive call repeats its site; show it once.
    if (!f->site.Start.isValid() || f->site.Start == lastSite)
      continue;
    lastSite = f->site.Start;
    diags.note(f->site.Start, "in '" + f->fn->name + "'" +
                                  (f->self && !f->self->display.empty()
                                       ? " of '" + f->self->display + "'"
                                       : std::string()) +
                                  " called from here");
    ++shown;
  }
}

//===----------------------------------------------------------------------===//
// Entry point
//===----------------------------------------------------------------------===//

bool Sema::run(const BlockDecl &model, StringRef onlyFn,
               const std::map<std::string, std::string> &config) {
  unsigned errorsBefore = diags.errorCount();
  const SourceFile *file = program.root;
  for (const auto &f : program.files)
    for (const auto &b : f->blocks)
      if (b.get() == &model)
        file = f.get();
  SMRange site(model.loc, model.loc);
  std::vector<ArgValue> overrides;
  for (const auto &[name, text] : config) {
    ArgValue arg{name, Value::error(), site};
    int64_t integer = 0;
    double number = 0;
    if (!StringRef(text).getAsInteger(10, integer))
      arg.value = Value::integer(Dim(integer));
    else if (text == "true" || text == "false")
      arg.value = Value::boolean(text == "true");
    else if (!StringRef(text).getAsDouble(number))
      arg.value = Value::floating(number);
    else {
      // Anything else is a string ("activation=gelu_exact"); quotes are
      // optional.
      StringRef unquoted = text;
      if (unquoted.size() >= 2 && unquoted.front() == '"' &&
          unquoted.back() == '"')
        unquoted = unquoted.drop_front().drop_back();
      arg.value = Value::make(Value::Kind::String);
      arg.value.text = unquoted.str();
    }
    overrides.push_back(std::move(arg));
  }
  Instance *root =
      instantiate(model, *file, nullptr, "", "", std::move(overrides), site);
  if (!root)
    return false;
  for (const ParamEntry &p : params)
    gen.emitParameter(p);

  bool found = onlyFn.empty();
  std::function<void(const std::vector<StmtPtr> &)> visit =
      [&](const std::vector<StmtPtr> &body) {
        for (const StmtPtr &stmt : body) {
          auto *fn = llvm::dyn_cast<FnStmt>(stmt.get());
          if (!fn || (!onlyFn.empty() && fn->name != onlyFn))
            continue;
          // Only functions that were elaborated (their `if` branch taken).
          auto it = root->members.find(fn->name);
          if (it == root->members.end() || it->second.fn != fn)
            continue;
          found = true;
          emitEntry(*root, *fn);
        }
      };
  visit(model.body);
  std::function<void(const std::vector<StmtPtr> &)> visitIfs =
      [&](const std::vector<StmtPtr> &body) {
        for (const StmtPtr &stmt : body)
          if (auto *ifs = llvm::dyn_cast<IfStmt>(stmt.get())) {
            visit(ifs->thenBody);
            visit(ifs->elseBody);
            visitIfs(ifs->thenBody);
            visitIfs(ifs->elseBody);
          }
      };
  visitIfs(model.body);
  if (!found) {
    std::vector<std::string> names;
    for (auto &m : root->members)
      if (m.second.kind == Value::Kind::Function)
        names.push_back(m.first().str());
    std::sort(names.begin(), names.end());
    diags.error(model.loc, "model '" + model.name + "' has no function '" +
                               onlyFn +
                               "'; it has: " + llvm::join(names, ", "));
  }
  return diags.errorCount() == errorsBefore;
}

//===----------------------------------------------------------------------===//
// Instances
//===----------------------------------------------------------------------===//

Instance *Sema::instantiate(const BlockDecl &decl, const SourceFile &file,
                            Instance *parent, StringRef path, StringRef display,
                            std::vector<ArgValue> args, SMRange site) {
  if (instantiationDepth >= kMaxInstantiationDepth) {
    // The model path would repeat the runaway block 64 times; leave it out.
    Instance *savedCurrent = current;
    current = nullptr;
    error(site, "blocks nest deeper than " +
                    llvm::Twine(kMaxInstantiationDepth) + " levels; is '" +
                    decl.name + "' instantiating itself?");
    current = savedCurrent;
    return nullptr;
  }
  if (++instanceCount > kMaxInstances) {
    if (instanceCount == kMaxInstances + 1)
      error(site, "the model instantiates more than " +
                      llvm::Twine(kMaxInstances) +
                      " blocks; reduce the repeat counts");
    return nullptr;
  }
  ++instantiationDepth;
  llvm::scope_exit restoreDepth([&] { --instantiationDepth; });

  instances.push_back(std::make_unique<Instance>());
  Instance *inst = instances.back().get();
  inst->decl = &decl;
  inst->file = &file;
  inst->parent = parent;
  inst->path = path.str();
  inst->display = display.str();

  Instance *savedCurrent = current;
  Frame *savedFrame = frame;
  llvm::scope_exit restore([&] {
    current = savedCurrent;
    frame = savedFrame;
  });

  // Bind configuration values: positional, then named, then defaults
  // (evaluated in the new instance, so they may use earlier values).
  std::vector<std::optional<Value>> slots(decl.config.size());
  size_t positional = 0;
  size_t positionalGiven =
      llvm::count_if(args, [](const ArgValue &a) { return a.name.empty(); });
  bool ok = true;
  for (ArgValue &arg : args) {
    size_t index = decl.config.size();
    if (arg.name.empty()) {
      index = positional++;
      if (index >= decl.config.size()) {
        if (index == decl.config.size()) { // once, at the first extra value
          error(arg.range, "'" + decl.name + "' takes " +
                               llvm::Twine(decl.config.size()) +
                               " configuration values, got " +
                               llvm::Twine(positionalGiven));
          diags.note(decl.loc, "'" + decl.name + "' is declared here");
        }
        ok = false;
        continue;
      }
    } else {
      for (size_t i = 0; i < decl.config.size(); ++i)
        if (decl.config[i].name == arg.name)
          index = i;
      if (index == decl.config.size()) {
        error(arg.range, "'" + decl.name + "' has no configuration value '" +
                             arg.name + "'");
        diags.note(decl.loc, "'" + decl.name + "' is declared here");
        ok = false;
        continue;
      }
    }
    if (slots[index]) {
      error(arg.range, "configuration value '" + decl.config[index].name +
                           "' of '" + decl.name + "' is given twice");
      ok = false;
      continue;
    }
    // A bad value still fills its slot, so it is not reported missing too.
    slots[index] = Value::error();
    switch (arg.value.kind) {
    case Value::Kind::Error: // reported where it arose
      ok = false;
      continue;
    case Value::Kind::Int:
    case Value::Kind::Float:
    case Value::Kind::Bool:
    case Value::Kind::String:
    case Value::Kind::DType:
    case Value::Kind::List:
      break;
    default:
      error(arg.range, "configuration value '" + decl.config[index].name +
                           "' of '" + decl.name +
                           "' must be known at compile time, got " +
                           arg.value.describe());
      ok = false;
      continue;
    }
    slots[index] = arg.value;
  }
  current = inst;
  frame = nullptr;
  for (size_t i = 0; i < decl.config.size(); ++i) {
    const ConfigParam &param = decl.config[i];
    Value value;
    if (slots[i]) {
      value = *slots[i];
    } else if (param.defaultValue) {
      value = eval(*param.defaultValue);
    } else {
      current = savedCurrent;
      error(site, "missing configuration value '" + param.name + "' of '" +
                      decl.name + "'");
      diags.note(param.loc, "'" + param.name + "' is declared here");
      current = inst;
      ok = false;
      continue;
    }
    inst->members[param.name] = value;
    inst->memberLocs[param.name] = param.loc;
  }
  if (!ok)
    return nullptr;
  elaborateMembers(*inst, decl.body);
  return inst;
}

bool Sema::addMember(Instance &inst, StringRef name, SMLoc loc, Value value) {
  auto it = inst.memberLocs.find(name);
  if (it != inst.memberLocs.end()) {
    error(SMRange(loc, loc),
          "'" + name + "' is already defined in '" + inst.decl->name + "'");
    diags.note(it->second, "first defined here");
    return false;
  }
  inst.members[name] = std::move(value);
  inst.memberLocs[name] = loc;
  return true;
}

void Sema::elaborateMembers(Instance &inst, const std::vector<StmtPtr> &body) {
  for (const StmtPtr &stmt : body) {
    switch (stmt->getKind()) {
    case Stmt::Kind::Let: {
      auto &let = llvm::cast<LetStmt>(*stmt);
      Value value = eval(*let.value);
      if (let.names.size() != 1) {
        error(let.getRange(), "only functions can destructure tuples");
        continue;
      }
      if (value.kind == Value::Kind::Tensor) {
        error(let.value->getRange(),
              "a block-level 'let' must be known at compile time, got " +
                  value.describe());
        value = Value::error();
      }
      addMember(inst, let.names[0], let.nameLocs[0], value);
      break;
    }
    case Stmt::Kind::Param:
      declareParam(inst, llvm::cast<ParamStmt>(*stmt));
      break;
    case Stmt::Kind::Sub:
      declareSub(inst, llvm::cast<SubStmt>(*stmt));
      break;
    case Stmt::Kind::Fn: {
      auto &fn = llvm::cast<FnStmt>(*stmt);
      Value value = Value::make(Value::Kind::Function);
      value.fn = &fn;
      value.instance = &inst;
      addMember(inst, fn.name, fn.getLoc(), value);
      break;
    }
    case Stmt::Kind::If: {
      auto &ifs = llvm::cast<IfStmt>(*stmt);
      Value cond = eval(*ifs.cond);
      if (cond.isError())
        continue;
      if (cond.kind != Value::Kind::Bool) {
        error(ifs.cond->getRange(),
              "condition of 'if' must be a compile-time boolean, got " +
                  cond.describe());
        continue;
      }
      elaborateMembers(inst, cond.flag ? ifs.thenBody : ifs.elseBody);
      break;
    }
    case Stmt::Kind::Return:
      error(stmt->getRange(), "'return' outside a function");
      break;
    }
  }
}

void Sema::declareParam(Instance &inst, const ParamStmt &param) {
  // A parameter that fails is still declared, as an error value, so that its
  // uses do not report a second, misleading "unknown name".
  auto fail = [&] {
    addMember(inst, param.name, param.getLoc(), Value::error());
  };
  std::optional<DType> dtype = parseDType(param.type.dtype);
  if (!dtype) {
    error(SMRange(param.type.dtypeLoc, param.type.dtypeLoc),
          "unknown element type '" + param.type.dtype +
              "'; expected f32, bf16, f16, f64, i32 or bool");
    return fail();
  }
  if (!isFloat(*dtype)) {
    error(param.type.range, "parameter '" + param.name +
                                "' must have a floating-point type, got " +
                                spell(*dtype));
    return fail();
  }
  TensorType type;
  type.dtype = *dtype;
  int64_t elements = 1;
  bool ok = true;
  for (const ExprPtr &dimExpr : param.type.dims) {
    if (!dimExpr) {
      error(param.type.range, "parameter shapes cannot use '...'");
      return fail();
    }
    // A name that is not defined would be a symbolic dim in a signature.
    if (auto *name = llvm::dyn_cast<NameExpr>(dimExpr.get());
        name && !lookup(name->name) && !isPrimitive(name->name)) {
      error(dimExpr->getRange(),
            "parameter dims must be known at compile time, but '" + name->name +
                "' is not a configuration value of '" + inst.decl->name +
                "' (symbolic dims are for functions)");
      ok = false;
      continue;
    }
    std::optional<Dim> dim = expectDim(*dimExpr, "a parameter dim");
    if (!dim) {
      ok = false;
      continue;
    }
    std::optional<int64_t> size = dim->getConstant();
    if (!size) {
      error(dimExpr->getRange(), "parameter dims must be known at compile "
                                 "time, got the symbolic dim " +
                                     dim->str());
      ok = false;
      continue;
    }
    if (*size <= 0) {
      error(dimExpr->getRange(),
            "parameter dim must be positive, got " + llvm::Twine(*size));
      ok = false;
      continue;
    }
    if (llvm::MulOverflow(elements, *size, elements) ||
        elements > kMaxParamElements) {
      error(param.type.range, "parameter '" + param.name + "' is too large");
      ok = false;
      elements = 1;
      continue;
    }
    type.dims.push_back(*dim);
  }
  std::optional<InitSpec> init = evalInit(param.init.get(), param);
  if (!ok || !init)
    return fail();
  ParamEntry entry;
  entry.name = inst.path.empty() ? param.name : inst.path + "." + param.name;
  entry.type = type;
  entry.init = *init;
  entry.loc = param.getLoc();
  entry.display = inst.display;
  Value value = Value::make(Value::Kind::Param);
  value.param = params.size();
  value.type = type;
  if (addMember(inst, param.name, param.getLoc(), value))
    params.push_back(std::move(entry));
}

/// init := zeros() | ones() | constant(v) | normal(std, mean=0)
///       | uniform(low, high) | xavier(gain=1) | glorot(gain=1)
///       | xavier_normal(gain=1) | kaiming(gain=1) | kaiming_normal(gain=1)
std::optional<InitSpec> Sema::evalInit(const Expr *init,
                                       const ParamStmt &param) {
  if (!init) {
    error(param.getRange(), "parameter '" + param.name +
                                "' needs an initializer, such as "
                                "'= normal(0.02)' or '= zeros()'");
    return std::nullopt;
  }
  auto *call = llvm::dyn_cast<CallExpr>(init);
  auto *callee = call ? llvm::dyn_cast<NameExpr>(call->callee.get()) : nullptr;
  if (!callee) {
    error(init->getRange(), "expected an initializer call such as "
                            "'normal(0.02)'");
    return std::nullopt;
  }
  struct Spec {
    const char *name;
    const char *kind;
    std::vector<std::pair<const char *, std::optional<double>>> fields;
  };
  static const Spec specs[] = {
      {"zeros", "zeros", {}},
      {"ones", "ones", {}},
      {"constant", "constant", {{"value", std::nullopt}}},
      {"normal", "normal", {{"std", std::nullopt}, {"mean", 0.0}}},
      {"uniform", "uniform", {{"low", std::nullopt}, {"high", std::nullopt}}},
      {"xavier", "xavier_uniform", {{"gain", 1.0}}},
      {"glorot", "xavier_uniform", {{"gain", 1.0}}},
      {"xavier_normal", "xavier_normal", {{"gain", 1.0}}},
      {"kaiming", "kaiming_uniform", {{"gain", std::sqrt(2.0)}}},
      {"kaiming_normal", "kaiming_normal", {{"gain", std::sqrt(2.0)}}},
  };
  const Spec *spec = nullptr;
  for (const Spec &s : specs)
    if (callee->name == s.name)
      spec = &s;
  if (!spec) {
    error(callee->getRange(),
          "unknown initializer '" + callee->name +
              "'; expected zeros, ones, constant, normal, uniform, xavier, "
              "glorot, xavier_normal, kaiming or kaiming_normal");
    return std::nullopt;
  }
  std::vector<std::optional<double>> values(spec->fields.size());
  size_t positional = 0;
  for (const Arg &arg : call->args) {
    size_t index = spec->fields.size();
    if (arg.name.empty()) {
      index = positional++;
    } else {
      for (size_t i = 0; i < spec->fields.size(); ++i)
        if (arg.name == spec->fields[i].first)
          index = i;
    }
    if (index >= spec->fields.size()) {
      error(arg.value->getRange(),
            arg.name.empty()
                ? "too many arguments to initializer '" + callee->name + "'"
                : "initializer '" + callee->name + "' has no argument '" +
                      arg.name + "'");
      return std::nullopt;
    }
    Value v = eval(*arg.value);
    if (v.isError())
      return std::nullopt;
    if (v.kind == Value::Kind::Float)
      values[index] = v.number;
    else if (v.kind == Value::Kind::Int && v.dim.getConstant())
      values[index] = static_cast<double>(*v.dim.getConstant());
    else {
      error(arg.value->getRange(), "initializer argument must be a number, "
                                   "got " +
                                       v.describe());
      return std::nullopt;
    }
  }
  InitSpec result;
  result.kind = spec->kind;
  for (size_t i = 0; i < spec->fields.size(); ++i) {
    std::optional<double> value =
        values[i] ? values[i] : spec->fields[i].second;
    if (!value) {
      error(call->getRange(), "initializer '" + callee->name + "' needs its '" +
                                  spec->fields[i].first + "' argument");
      return std::nullopt;
    }
    if (!std::isfinite(*value)) {
      error(call->getRange(), "initializer argument must be finite");
      return std::nullopt;
    }
    result.fields.emplace_back(spec->fields[i].first, *value);
  }
  if (result.kind == "normal" && result.fields[0].second < 0) {
    error(call->getRange(), "normal() needs std >= 0");
    return std::nullopt;
  }
  if (result.kind == "uniform" &&
      result.fields[0].second > result.fields[1].second) {
    error(call->getRange(), "uniform(low, high) needs low <= high");
    return std::nullopt;
  }
  return result;
}

void Sema::declareSub(Instance &inst, const SubStmt &sub) {
  // A sub-block that fails is still declared, as an error value, so that
  // its uses do not report a second, misleading "unknown name".
  auto fail = [&] { addMember(inst, sub.name, sub.getLoc(), Value::error()); };
  // The constructor: a block of this file or `lib.Block` of an import.
  Value ctor = eval(*sub.ctor->callee);
  if (ctor.isError())
    return fail();
  if (ctor.kind != Value::Kind::Block) {
    error(sub.ctor->callee->getRange(),
          "expected a block to instantiate for '" + sub.name + "', got " +
              ctor.describe());
    return fail();
  }
  std::vector<ArgValue> args = evalArgs(*sub.ctor);
  const SourceFile *file = nullptr;
  for (const auto &f : program.files)
    for (const auto &b : f->blocks)
      if (b.get() == ctor.block)
        file = f.get();
  if (ctor.block->isModel) {
    error(sub.ctor->callee->getRange(), "'" + ctor.block->name +
                                            "' is a model; only blocks can be "
                                            "sub-blocks");
    return fail();
  }
  std::string path = inst.path.empty() ? sub.name : inst.path + "." + sub.name;
  std::string display =
      inst.display.empty() ? sub.name : inst.display + "." + sub.name;
  if (!sub.repeat) {
    Instance *child = instantiate(*ctor.block, *file, &inst, path, display,
                                  args, sub.ctor->getRange());
    if (!child)
      return fail();
    Value value = Value::make(Value::Kind::Instance);
    value.instance = child;
    addMember(inst, sub.name, sub.getLoc(), value);
    return;
  }
  std::optional<Dim> count = expectDim(*sub.repeat, "the repeat count");
  if (!count)
    return fail();
  std::optional<int64_t> n = count->getConstant();
  if (!n || *n < 1 || *n > kMaxRepeat) {
    error(sub.repeat->getRange(), "repeat count must be between 1 and " +
                                      llvm::Twine(kMaxRepeat) + ", got " +
                                      count->str());
    return fail();
  }
  bool shared = false;
  if (sub.shared) {
    Value flag = eval(*sub.shared);
    if (flag.isError())
      return fail();
    if (flag.kind != Value::Kind::Bool) {
      error(sub.shared->getRange(),
            "'shared' of a repeat must be a compile-time boolean, got " +
                flag.describe());
      return fail();
    }
    shared = flag.flag;
  }
  Value value = Value::make(Value::Kind::Repeat);
  if (shared) {
    // One layer whose parameters every repetition uses (ALBERT's
    // cross-layer sharing): their gradients add up.
    Instance *layer = instantiate(*ctor.block, *file, &inst, path, display,
                                  args, sub.ctor->getRange());
    if (!layer)
      return fail();
    value.layers.assign(size_t(*n), layer);
    addMember(inst, sub.name, sub.getLoc(), value);
    return;
  }
  for (int64_t i = 0; i < *n; ++i) {
    Instance *layer = instantiate(
        *ctor.block, *file, &inst, path + "." + std::to_string(i),
        display + "[" + std::to_string(i) + "]", args, sub.ctor->getRange());
    if (!layer)
      return fail();
    value.layers.push_back(layer);
  }
  addMember(inst, sub.name, sub.getLoc(), value);
}

//===----------------------------------------------------------------------===//
// Functions
//===----------------------------------------------------------------------===//

std::vector<ArgValue> Sema::evalArgs(const CallExpr &call) {
  std::vector<ArgValue> args;
  for (const Arg &arg : call.args) {
    // A named argument is shown from its name: `dim = 1`.
    SMRange range = arg.value->getRange();
    if (!arg.name.empty() && arg.nameLoc.isValid())
      range.Start = arg.nameLoc;
    args.push_back({arg.name, eval(*arg.value), range});
  }
  return args;
}

std::optional<TensorType> Sema::entryArgType(const TypeAnnot &annot,
                                             llvm::StringMap<Dim> &dimVars,
                                             StringRef what) {
  std::optional<DType> dtype = parseDType(annot.dtype);
  if (!dtype) {
    error(SMRange(annot.dtypeLoc, annot.dtypeLoc),
          "unknown element type '" + annot.dtype +
              "'; expected f32, bf16, f16, f64, i32 or bool");
    return std::nullopt;
  }
  TensorType type;
  type.dtype = *dtype;
  for (const ExprPtr &dimExpr : annot.dims) {
    if (!dimExpr) {
      error(annot.range, "an entry function's " + what +
                             " cannot use '...'; name every dim");
      return std::nullopt;
    }
    if (auto *name = llvm::dyn_cast<NameExpr>(dimExpr.get())) {
      auto bound = dimVars.find(name->name);
      if (bound != dimVars.end()) {
        type.dims.push_back(bound->second);
        continue;
      }
      if (!lookup(name->name)) {
        // A symbolic dim: bound by --bind, or left symbolic.
        Dim dim = Dim::symbol(name->name);
        auto it = bindings.find(name->name);
        if (it != bindings.end())
          dim = it->second;
        dimVars[name->name] = dim;
        type.dims.push_back(dim);
        continue;
      }
    }
    std::optional<Dim> dim = expectDim(*dimExpr, "a dim");
    if (!dim)
      return std::nullopt;
    if (!dim->getConstant() || *dim->getConstant() < 0) {
      error(dimExpr->getRange(),
            "an entry function's dims must be non-negative numbers, "
            "configuration values or symbolic names, got " +
                dim->str());
      return std::nullopt;
    }
    type.dims.push_back(*dim);
  }
  return type;
}

void Sema::emitEntry(Instance &model, const FnStmt &fn) {
  Frame entry;
  entry.self = &model;
  entry.fn = &fn;
  Frame *savedFrame = frame;
  Instance *savedCurrent = current;
  frame = &entry;
  current = &model;
  llvm::scope_exit restore([&] {
    frame = savedFrame;
    current = savedCurrent;
  });

  dropoutSites = 0;
  llvm::StringMap<Dim> dimVars;
  std::vector<TensorType> argTypes;
  std::vector<std::string> argNames;
  bool ok = true;
  for (const FnParam &param : fn.params) {
    if (!param.type) {
      error(SMRange(param.loc, param.loc),
            "argument '" + param.name + "' of entry function '" + fn.name +
                "' needs a type such as 'f32[B, T]'");
      ok = false;
      continue;
    }
    std::optional<TensorType> type =
        entryArgType(*param.type, dimVars, "arguments");
    if (!type) {
      ok = false;
      continue;
    }
    argTypes.push_back(*type);
    argNames.push_back(param.name);
  }
  if (!ok)
    return;

  llvm::SmallVector<mlir::Value> args =
      gen.beginFunction(fn.name, argTypes, argNames, gen.loc(fn.getLoc()));
  for (size_t i = 0; i < argTypes.size(); ++i) {
    if (entry.locals.count(fn.params[i].name)) {
      error(SMRange(fn.params[i].loc, fn.params[i].loc),
            "argument '" + fn.params[i].name + "' is declared twice");
      ok = false;
    }
    entry.locals[fn.params[i].name] = Value::tensor(argTypes[i], args[i]);
  }
  for (auto &var : dimVars)
    if (!entry.locals.count(var.first()))
      entry.locals[var.first()] = Value::integer(var.second);

  std::optional<Value> result;
  unsigned errorsBefore = diags.errorCount();
  execBody(fn.body, result);
  if (!ok || diags.errorCount() != errorsBefore) {
    gen.abandonFunction();
    return;
  }
  if (!result) {
    error(fn.getRange(), "function '" + fn.name + "' ends without 'return'");
    gen.abandonFunction();
    return;
  }
  std::vector<Value> values = result->kind == Value::Kind::Tuple
                                  ? result->elems
                                  : std::vector<Value>{*result};
  if (!fn.results.empty() && fn.results.size() != values.size()) {
    error(fn.getRange(), "function '" + fn.name + "' declares " +
                             llvm::Twine(fn.results.size()) +
                             " results but returns " +
                             llvm::Twine(values.size()));
    gen.abandonFunction();
    return;
  }
  llvm::SmallVector<mlir::Value> results;
  for (size_t i = 0; i < values.size(); ++i) {
    Value v = values[i];
    if (v.isError()) { // reported where it arose
      gen.abandonFunction();
      return;
    }
    if (v.kind != Value::Kind::Tensor) {
      error(fn.getRange(), "entry function '" + fn.name +
                               "' must return tensors, but result " +
                               llvm::Twine(i) + " is " + v.describe());
      gen.abandonFunction();
      return;
    }
    if (!fn.results.empty() &&
        !matchAnnotation(*fn.results[i], v, "result of '" + fn.name + "'",
                         fn.results[i]->range, dimVars, /*bindNew=*/false)) {
      gen.abandonFunction();
      return;
    }
    results.push_back(v.ir);
  }
  gen.finishFunction(results, gen.loc(fn.getLoc()));
}

bool Sema::matchAnnotation(const TypeAnnot &annot, const Value &arg,
                           StringRef what, SMRange argRange,
                           llvm::StringMap<Dim> &dimVars, bool bindNew) {
  if (arg.isError()) // reported where it arose
    return false;
  std::optional<DType> dtype = parseDType(annot.dtype);
  if (!dtype) {
    error(SMRange(annot.dtypeLoc, annot.dtypeLoc),
          "unknown element type '" + annot.dtype +
              "'; expected f32, bf16, f16, f64, i32 or bool");
    return false;
  }
  if (arg.kind != Value::Kind::Tensor) {
    error(argRange, what + " must be a tensor of type " + annot.dtype +
                        ", got " + arg.describe());
    return false;
  }
  const TensorType &type = arg.type;
  if (type.dtype != *dtype) {
    error(argRange, what + " has element type " + spell(type.dtype) +
                        " but the signature wants " + spell(*dtype));
    return false;
  }
  // Align annotation dims with actual dims, expanding one `...`.
  size_t ellipses =
      llvm::count_if(annot.dims, [](const ExprPtr &d) { return d == nullptr; });
  if (ellipses > 1) {
    error(annot.range, "a type can use '...' at most once");
    return false;
  }
  size_t fixed = annot.dims.size() - ellipses;
  if (ellipses ? type.dims.size() < fixed : type.dims.size() != fixed) {
    error(argRange, what + " has rank " + llvm::Twine(type.dims.size()) + " (" +
                        type.str() + ") but the signature wants " +
                        (ellipses ? "at least " : "") + llvm::Twine(fixed) +
                        " dims");
    return false;
  }
  size_t actual = 0;
  for (const ExprPtr &dimExpr : annot.dims) {
    if (!dimExpr) {
      actual += type.dims.size() - fixed;
      continue;
    }
    const Dim &have = type.dims[actual];
    std::string label = "dim " + std::to_string(actual);
    ++actual;
    if (auto *name = llvm::dyn_cast<NameExpr>(dimExpr.get())) {
      auto bound = dimVars.find(name->name);
      if (bound == dimVars.end() && !lookup(name->name)) {
        if (!bindNew) {
          error(dimExpr->getRange(), "dim '" + name->name + "' in the " + what +
                                         " is not bound by any argument");
          return false;
        }
        dimVars[name->name] = have;
        continue;
      }
      if (bound != dimVars.end()) {
        if (bound->second != have) {
          error(argRange, what + ": " + label + " is " + have.str() + " but '" +
                              name->name + "' is already bound to " +
                              bound->second.str() + " (" + type.str() + ")");
          return false;
        }
        continue;
      }
    }
    std::optional<Dim> want = expectDim(*dimExpr, "a dim");
    if (!want)
      return false;
    if (*want != have) {
      error(argRange, what + ": " + label + " is " + have.str() +
                          " but the signature wants " + want->str() + " (" +
                          type.str() + ")");
      return false;
    }
  }
  return true;
}

Value Sema::callFunction(Instance *self, const FnStmt &fn,
                         std::vector<ArgValue> args, SMRange site) {
  if (callDepth >= kMaxCallDepth) {
    error(site, "calls nest deeper than " + llvm::Twine(kMaxCallDepth) +
                    " levels; is '" + fn.name + "' recursive?");
    return Value::error();
  }
  for (const ArgValue &a : args)
    if (a.value.isError())
      return Value::error();
  ++callDepth;
  llvm::scope_exit restoreDepth([&] { --callDepth; });

  // Bind arguments: positional, then by name.
  std::vector<std::optional<ArgValue>> slots(fn.params.size());
  size_t positional = 0;
  std::string owner = self && !self->display.empty()
                          ? " of '" + self->display + "'"
                          : std::string();
  for (ArgValue &arg : args) {
    size_t index = fn.params.size();
    if (arg.name.empty()) {
      index = positional++;
    } else {
      for (size_t i = 0; i < fn.params.size(); ++i)
        if (fn.params[i].name == arg.name)
          index = i;
      if (index == fn.params.size()) {
        error(arg.range, "'" + fn.name + "'" + owner + " has no argument '" +
                             arg.name + "'");
        diags.note(fn.getLoc(), "'" + fn.name + "' is declared here");
        return Value::error();
      }
    }
    if (index >= fn.params.size()) {
      error(site, "'" + fn.name + "'" + owner + " takes " +
                      llvm::Twine(fn.params.size()) + " argument" +
                      (fn.params.size() == 1 ? "" : "s") + ", got " +
                      llvm::Twine(args.size()));
      diags.note(fn.getLoc(), "'" + fn.name + "' is declared here");
      return Value::error();
    }
    if (slots[index]) {
      error(arg.range, "argument '" + fn.params[index].name + "' of '" +
                           fn.name + "' is given twice");
      return Value::error();
    }
    slots[index] = std::move(arg);
  }
  for (size_t i = 0; i < fn.params.size(); ++i) {
    if (!slots[i] && fn.params[i].defaultValue) {
      // Defaults are evaluated in the callee's instance.
      Frame *savedFrame = frame;
      Instance *savedCurrent = current;
      Frame scope;
      scope.self = self;
      scope.fn = &fn;
      scope.caller = frame;
      frame = &scope;
      current = self;
      Value v = eval(*fn.params[i].defaultValue);
      frame = savedFrame;
      current = savedCurrent;
      if (v.isError())
        return v;
      slots[i] = ArgValue{"", v, fn.params[i].defaultValue->getRange()};
    }
    if (!slots[i]) {
      error(site, "'" + fn.name + "'" + owner + " takes " +
                      llvm::Twine(fn.params.size()) + " argument" +
                      (fn.params.size() == 1 ? "" : "s") + "; missing '" +
                      fn.params[i].name + "'");
      diags.note(fn.getLoc(), "'" + fn.name + "' is declared here");
      return Value::error();
    }
  }

  Frame callee;
  callee.self = self;
  callee.fn = &fn;
  callee.site = site;
  callee.caller = frame;
  Frame *savedFrame = frame;
  Instance *savedCurrent = current;
  llvm::scope_exit restore([&] {
    frame = savedFrame;
    current = savedCurrent;
  });

  // Check annotated parameters in the callee's scope, binding dim names.
  frame = &callee;
  current = self;
  llvm::StringMap<Dim> dimVars;
  for (size_t i = 0; i < fn.params.size(); ++i) {
    const FnParam &param = fn.params[i];
    const ArgValue &arg = *slots[i];
    if (param.type &&
        !matchAnnotation(*param.type, arg.value,
                         "argument '" + param.name + "' of '" + fn.name + "'",
                         arg.range, dimVars, /*bindNew=*/true))
      return Value::error();
    callee.locals[param.name] = arg.value;
  }
  for (auto &var : dimVars)
    if (!callee.locals.count(var.first()))
      callee.locals[var.first()] = Value::integer(var.second);

  std::optional<Value> result;
  unsigned errorsBefore = diags.errorCount();
  execBody(fn.body, result);
  if (diags.errorCount() != errorsBefore)
    return Value::error();
  if (!result) {
    error(fn.getRange(), "function '" + fn.name + "' ends without 'return'");
    return Value::error();
  }
  if (!fn.results.empty()) {
    std::vector<Value> values = result->kind == Value::Kind::Tuple
                                    ? result->elems
                                    : std::vector<Value>{*result};
    if (values.size() != fn.results.size()) {
      error(fn.getRange(), "function '" + fn.name + "' declares " +
                               llvm::Twine(fn.results.size()) +
                               " results but returns " +
                               llvm::Twine(values.size()));
      return Value::error();
    }
    for (size_t i = 0; i < values.size(); ++i)
      if (!matchAnnotation(*fn.results[i], values[i],
                           "result of '" + fn.name + "'", fn.results[i]->range,
                           dimVars, /*bindNew=*/false))
        return Value::error();
  }
  return *result;
}

void Sema::execBody(const std::vector<StmtPtr> &body,
                    std::optional<Value> &result) {
  for (const StmtPtr &stmt : body) {
    if (result) {
      // A `return` in a taken branch ends the function; one written before
      // more statements of the same body hides them.
      if (stmt != body.front() && llvm::isa<ReturnStmt>(*(&stmt - 1)->get()))
        error(stmt->getRange(), "statement after 'return' is never reached");
      return;
    }
    switch (stmt->getKind()) {
    case Stmt::Kind::Let: {
      auto &let = llvm::cast<LetStmt>(*stmt);
      Value value = eval(*let.value);
      if (let.names.size() == 1) {
        frame->locals[let.names[0]] = value;
        break;
      }
      if (value.isError()) {
        for (const std::string &name : let.names)
          frame->locals[name] = Value::error();
        break;
      }
      if (value.kind != Value::Kind::Tuple ||
          value.elems.size() != let.names.size()) {
        error(let.value->getRange(),
              "cannot destructure " + value.describe() + " into " +
                  llvm::Twine(let.names.size()) + " names");
        for (const std::string &name : let.names)
          frame->locals[name] = Value::error();
        break;
      }
      for (size_t i = 0; i < let.names.size(); ++i)
        frame->locals[let.names[i]] = value.elems[i];
      break;
    }
    case Stmt::Kind::Return: {
      auto &ret = llvm::cast<ReturnStmt>(*stmt);
      if (ret.values.size() == 1) {
        result = eval(*ret.values[0]);
        break;
      }
      Value tuple = Value::make(Value::Kind::Tuple);
      for (const ExprPtr &e : ret.values)
        tuple.elems.push_back(eval(*e));
      result = tuple;
      break;
    }
    case Stmt::Kind::If: {
      auto &ifs = llvm::cast<IfStmt>(*stmt);
      Value cond = eval(*ifs.cond);
      if (cond.isError())
        break;
      if (cond.kind != Value::Kind::Bool) {
        error(ifs.cond->getRange(),
              "condition of 'if' must be a compile-time boolean, got " +
                  cond.describe());
        break;
      }
      execBody(cond.flag ? ifs.thenBody : ifs.elseBody, result);
      break;
    }
    default:
      error(stmt->getRange(), "this declaration belongs in a block body, "
                              "not in a function");
      break;
    }
  }
}

Value Sema::callRepeat(const Value &repeat, std::vector<ArgValue> args,
                       SMRange site) {
  if (args.empty()) {
    error(site, "a repeat is called with the input of its first layer");
    return Value::error();
  }
  Value carried = args[0].value;
  for (Instance *layer : repeat.layers) {
    auto it = layer->members.find("forward");
    if (it == layer->members.end() ||
        it->second.kind != Value::Kind::Function) {
      error(site, "'" + layer->display + "' has no 'forward' function");
      return Value::error();
    }
    std::vector<ArgValue> layerArgs = args;
    layerArgs[0].value = carried;
    carried = callFunction(layer, *it->second.fn, layerArgs, site);
    if (carried.isError())
      return carried;
  }
  return carried;
}

/// "a Linear", "an Embedding".
static std::string withArticle(StringRef name) {
  bool vowel = !name.empty() && StringRef("AEIOUaeiou").contains(name[0]);
  return (vowel ? "an " : "a ") + name.str();
}

Value Sema::callValue(const Value &callee, const CallExpr &call) {
  SMRange site = call.getRange();
  switch (callee.kind) {
  case Value::Kind::Error:
    evalArgs(call);
    return Value::error();
  case Value::Kind::Builtin:
    return callPrimitive(callee.text, evalArgs(call), site);
  case Value::Kind::Function:
    return callFunction(callee.instance, *callee.fn, evalArgs(call), site);
  case Value::Kind::Instance: {
    auto it = callee.instance->members.find("forward");
    if (it == callee.instance->members.end() ||
        it->second.kind != Value::Kind::Function) {
      error(call.callee->getRange(),
            "'" + callee.instance->display + "' (" +
                withArticle(callee.instance->decl->name) +
                ") has no 'forward' function to call");
      return Value::error();
    }
    return callFunction(callee.instance, *it->second.fn, evalArgs(call), site);
  }
  case Value::Kind::Repeat:
    return callRepeat(callee, evalArgs(call), site);
  case Value::Kind::Block:
    error(call.callee->getRange(),
          "blocks are instantiated in a block body ('name = " +
              callee.block->name + "(...)'), not called");
    return Value::error();
  default:
    error(call.callee->getRange(), callee.describe() + " is not callable");
    return Value::error();
  }
}

//===----------------------------------------------------------------------===//
// Expressions
//===----------------------------------------------------------------------===//

std::optional<Value> Sema::lookup(StringRef name) {
  if (frame) {
    auto it = frame->locals.find(name);
    if (it != frame->locals.end())
      return it->second;
  }
  Instance *inst = frame ? frame->self : current;
  if (inst) {
    auto it = inst->members.find(name);
    if (it != inst->members.end())
      return it->second;
    const SourceFile *file = inst->file;
    for (const auto &b : file->blocks)
      if (b->name == name) {
        Value v = Value::make(Value::Kind::Block);
        v.block = b.get();
        return v;
      }
    for (const ImportDecl &imp : file->imports)
      if (imp.name == name && program.findModule(name)) {
        Value v = Value::make(Value::Kind::Module);
        v.text = name.str();
        return v;
      }
  }
  if (name == "none")
    return Value::none();
  if (std::optional<DType> dtype = parseDType(name)) {
    Value v = Value::make(Value::Kind::DType);
    v.dtype = *dtype;
    return v;
  }
  return std::nullopt;
}

void Sema::reportUnknown(StringRef name, SMRange range) {
  // Suggest the closest visible name.
  std::vector<std::string> candidates;
  if (frame)
    for (auto &l : frame->locals)
      candidates.push_back(l.first().str());
  Instance *inst = frame ? frame->self : current;
  if (inst)
    for (auto &m : inst->members)
      candidates.push_back(m.first().str());
  // Primitives last: a local or member at the same distance wins.
  for (const std::string &p : primitiveNames())
    candidates.push_back(p);
  std::string best;
  // At most 2 edits, and fewer than the name has characters: 'xx' suggests
  // 'x', but 'w' does not suggest 'x'.
  unsigned bestDistance =
      std::min<unsigned>(3, std::max<size_t>(name.size(), 1));
  for (const std::string &c : candidates) {
    unsigned d = StringRef(c).edit_distance(name, true, bestDistance);
    if (d < bestDistance) {
      bestDistance = d;
      best = c;
    }
  }
  error(range,
        "unknown name '" + name + "'" +
            (best.empty() ? std::string() : "; did you mean '" + best + "'?"));
}

Value Sema::loadParam(const Value &param, SMRange range) {
  if (!frame || !gen.inFunction()) {
    error(range, "parameters can only be used inside functions");
    return Value::error();
  }
  const ParamEntry &entry = params[param.param];
  mlir::Value ir =
      gen.getParameter(entry, param.param, gen.loc(range.Start, currentPath()));
  return Value::tensor(entry.type, ir);
}

Value Sema::evalName(const NameExpr &name) {
  std::optional<Value> value = lookup(name.name);
  if (!value) {
    if (isPrimitive(name.name)) {
      Value v = Value::make(Value::Kind::Builtin);
      v.text = name.name;
      return v;
    }
    reportUnknown(name.name, name.getRange());
    return Value::error();
  }
  if (value->kind == Value::Kind::Param)
    return loadParam(*value, name.getRange());
  return *value;
}

Value Sema::evalMember(const MemberExpr &member) {
  Value base = eval(*member.base);
  SMRange nameRange(member.nameLoc, member.getRange().End);
  switch (base.kind) {
  case Value::Kind::Error:
    return base;
  case Value::Kind::Module: {
    const SourceFile *file = program.findModule(base.text);
    for (const auto &b : file->blocks)
      if (b->name == member.name) {
        Value v = Value::make(Value::Kind::Block);
        v.block = b.get();
        return v;
      }
    error(nameRange,
          "library '" + base.text + "' has no block '" + member.name + "'");
    return Value::error();
  }
  case Value::Kind::Instance: {
    auto it = base.instance->members.find(member.name);
    if (it == base.instance->members.end()) {
      error(nameRange, "'" + base.instance->display + "' (" +
                           withArticle(base.instance->decl->name) +
                           ") has no member '" + member.name + "'");
      return Value::error();
    }
    if (it->second.kind == Value::Kind::Param)
      return loadParam(it->second, member.getRange());
    return it->second;
  }
  case Value::Kind::Tensor:
    if (member.name == "T")
      return callPrimitive("swap_last", {{"", base, member.base->getRange()}},
                           member.getRange());
    error(nameRange,
          "tensors have no member '" + member.name + "' (did you mean '.T'?)");
    return Value::error();
  default:
    error(nameRange, base.describe() + " has no member '" + member.name + "'");
    return Value::error();
  }
}

Value Sema::evalIndex(const IndexExpr &index) {
  Value base = eval(*index.base);
  if (base.isError())
    return base;
  std::optional<Dim> i = expectDim(*index.index, "an index");
  if (!i)
    return Value::error();
  std::optional<int64_t> n = i->getConstant();
  if (base.kind == Value::Kind::Repeat || base.kind == Value::Kind::List ||
      base.kind == Value::Kind::Tuple) {
    int64_t size = base.kind == Value::Kind::Repeat ? base.layers.size()
                                                    : base.elems.size();
    if (!n || *n < -size || *n >= size) {
      error(index.index->getRange(),
            "index " + i->str() + " is out of range for " + base.describe());
      return Value::error();
    }
    int64_t at = *n < 0 ? *n + size : *n;
    if (base.kind == Value::Kind::Repeat) {
      Value v = Value::make(Value::Kind::Instance);
      v.instance = base.layers[at];
      return v;
    }
    return base.elems[at];
  }
  error(index.base->getRange(), base.describe() + " cannot be indexed");
  return Value::error();
}

std::optional<Dim> Sema::expectDim(const Expr &expr, StringRef what) {
  Value v = eval(expr);
  if (v.isError())
    return std::nullopt;
  if (v.kind == Value::Kind::Int)
    return v.dim;
  if (v.kind == Value::Kind::Float && std::floor(v.number) == v.number &&
      std::fabs(v.number) < 9.0e15)
    return Dim(static_cast<int64_t>(v.number));
  error(expr.getRange(),
        "expected an integer for " + what + ", got " + v.describe());
  return std::nullopt;
}

Value Sema::evalUnary(const UnaryExpr &unary) {
  Value v = eval(*unary.operand);
  if (v.isError())
    return v;
  if (unary.op == UnaryOp::Not) {
    if (v.kind == Value::Kind::Bool)
      return Value::boolean(!v.flag);
    error(unary.getRange(),
          "'!' needs a compile-time boolean, got " + v.describe());
    return Value::error();
  }
  switch (v.kind) {
  case Value::Kind::Int:
    if (auto d = Dim::mul(v.dim, Dim(-1)))
      return Value::integer(*d);
    error(unary.getRange(), "integer overflow");
    return Value::error();
  case Value::Kind::Float:
    return Value::floating(-v.number);
  case Value::Kind::Tensor:
    return callPrimitive("neg", {{"", v, unary.operand->getRange()}},
                         unary.getRange());
  default:
    error(unary.getRange(), "cannot negate " + v.describe());
    return Value::error();
  }
}

static double toDouble(const Value &v) {
  if (v.kind == Value::Kind::Float)
    return v.number;
  return static_cast<double>(v.dim.getConstant().value_or(0));
}

Value Sema::evalBinary(const BinaryExpr &binary) {
  Value lhs = eval(*binary.lhs);
  Value rhs = eval(*binary.rhs);
  if (lhs.isError() || rhs.isError())
    return Value::error();
  BinaryOp op = binary.op;
  SMRange range = binary.getRange();
  std::string opText = "'" + spell(op).str() + "'";

  if (lhs.kind == Value::Kind::Tensor || rhs.kind == Value::Kind::Tensor)
    return tensorBinary(op, lhs, rhs, range);

  if (op == BinaryOp::And || op == BinaryOp::Or) {
    if (lhs.kind != Value::Kind::Bool || rhs.kind != Value::Kind::Bool) {
      error(range, opText + " needs compile-time booleans, got " +
                       lhs.describe() + " and " + rhs.describe());
      return Value::error();
    }
    return Value::boolean(op == BinaryOp::And ? lhs.flag && rhs.flag
                                              : lhs.flag || rhs.flag);
  }
  if ((op == BinaryOp::Eq || op == BinaryOp::Ne) && lhs.kind == rhs.kind &&
      (lhs.kind == Value::Kind::Bool || lhs.kind == Value::Kind::String ||
       lhs.kind == Value::Kind::DType)) {
    bool equal = lhs.kind == Value::Kind::Bool     ? lhs.flag == rhs.flag
                 : lhs.kind == Value::Kind::String ? lhs.text == rhs.text
                                                   : lhs.dtype == rhs.dtype;
    return Value::boolean(op == BinaryOp::Eq ? equal : !equal);
  }
  if (!lhs.isNumber() || !rhs.isNumber()) {
    error(range, "cannot apply " + opText + " to " + lhs.describe() + " and " +
                     rhs.describe());
    return Value::error();
  }

  // Integers (possibly symbolic) stay integers under + - * and exact /.
  if (lhs.kind == Value::Kind::Int && rhs.kind == Value::Kind::Int) {
    std::optional<Dim> r;
    switch (op) {
    case BinaryOp::Add:
      r = Dim::add(lhs.dim, rhs.dim);
      break;
    case BinaryOp::Sub:
      r = Dim::sub(lhs.dim, rhs.dim);
      break;
    case BinaryOp::Mul:
      r = Dim::mul(lhs.dim, rhs.dim);
      break;
    case BinaryOp::Div:
      if (rhs.dim.getConstant() == 0) {
        error(range, "division by zero");
        return Value::error();
      }
      r = Dim::div(lhs.dim, rhs.dim);
      if (!r) {
        auto a = lhs.dim.getConstant(), b = rhs.dim.getConstant();
        if (a && b)
          return Value::floating(double(*a) / double(*b));
        error(range, "cannot divide " + lhs.dim.str() + " by " + rhs.dim.str() +
                         " exactly");
        return Value::error();
      }
      break;
    case BinaryOp::Mod: {
      auto a = lhs.dim.getConstant(), b = rhs.dim.getConstant();
      if (!a || !b) {
        error(range, "'%' needs numbers known at compile time");
        return Value::error();
      }
      if (*b == 0) {
        error(range, "division by zero");
        return Value::error();
      }
      // INT64_MIN % -1 traps; any integer % -1 is 0.
      return Value::integer(Dim(*b == -1 ? 0 : *a % *b));
    }
    case BinaryOp::MatMul:
      error(range, "'@' needs tensors");
      return Value::error();
    default: {
      auto a = lhs.dim.getConstant(), b = rhs.dim.getConstant();
      if (!a || !b) {
        if (op == BinaryOp::Eq || op == BinaryOp::Ne)
          return Value::boolean((lhs.dim == rhs.dim) == (op == BinaryOp::Eq));
        error(range, "cannot compare symbolic dims " + lhs.dim.str() + " and " +
                         rhs.dim.str() + " at compile time");
        return Value::error();
      }
      bool out = op == BinaryOp::Eq   ? *a == *b
                 : op == BinaryOp::Ne ? *a != *b
                 : op == BinaryOp::Lt ? *a < *b
                 : op == BinaryOp::Le ? *a <= *b
                 : op == BinaryOp::Gt ? *a > *b
                                      : *a >= *b;
      return Value::boolean(out);
    }
    }
    if (!r) {
      error(range, "integer overflow in " + opText);
      return Value::error();
    }
    return Value::integer(*r);
  }
  // Mixed or floating: symbolic dims have no value yet.
  if ((lhs.kind == Value::Kind::Int && !lhs.dim.getConstant()) ||
      (rhs.kind == Value::Kind::Int && !rhs.dim.getConstant())) {
    error(range, "cannot mix the symbolic dim " +
                     (lhs.kind == Value::Kind::Int ? lhs.dim : rhs.dim).str() +
                     " with a number");
    return Value::error();
  }
  double a = toDouble(lhs), b = toDouble(rhs);
  switch (op) {
  case BinaryOp::Add:
    return Value::floating(a + b);
  case BinaryOp::Sub:
    return Value::floating(a - b);
  case BinaryOp::Mul:
    return Value::floating(a * b);
  case BinaryOp::Div:
    if (b == 0) {
      error(range, "division by zero");
      return Value::error();
    }
    return Value::floating(a / b);
  case BinaryOp::Eq:
    return Value::boolean(a == b);
  case BinaryOp::Ne:
    return Value::boolean(a != b);
  case BinaryOp::Lt:
    return Value::boolean(a < b);
  case BinaryOp::Le:
    return Value::boolean(a <= b);
  case BinaryOp::Gt:
    return Value::boolean(a > b);
  case BinaryOp::Ge:
    return Value::boolean(a >= b);
  default:
    error(range, "cannot apply " + opText + " to numbers");
    return Value::error();
  }
}

Value Sema::evalList(const ListExpr &list) {
  Value v = Value::make(Value::Kind::List);
  for (const ExprPtr &e : list.elements) {
    Value element = eval(*e);
    if (element.isError())
      return element;
    v.elems.push_back(element);
  }
  return v;
}

Value Sema::eval(const Expr &expr) {
  switch (expr.getKind()) {
  case Expr::Kind::Int:
    return Value::integer(Dim(llvm::cast<IntExpr>(expr).value));
  case Expr::Kind::Float:
    return Value::floating(llvm::cast<FloatExpr>(expr).value);
  case Expr::Kind::Bool:
    return Value::boolean(llvm::cast<BoolExpr>(expr).value);
  case Expr::Kind::String: {
    Value v = Value::make(Value::Kind::String);
    v.text = llvm::cast<StringExpr>(expr).value;
    return v;
  }
  case Expr::Kind::Name:
    return evalName(llvm::cast<NameExpr>(expr));
  case Expr::Kind::Member:
    return evalMember(llvm::cast<MemberExpr>(expr));
  case Expr::Kind::Index:
    return evalIndex(llvm::cast<IndexExpr>(expr));
  case Expr::Kind::Call: {
    auto &call = llvm::cast<CallExpr>(expr);
    Value callee = eval(*call.callee);
    return callValue(callee, call);
  }
  case Expr::Kind::Unary:
    return evalUnary(llvm::cast<UnaryExpr>(expr));
  case Expr::Kind::Binary:
    return evalBinary(llvm::cast<BinaryExpr>(expr));
  case Expr::Kind::List:
    return evalList(llvm::cast<ListExpr>(expr));
  }
  return Value::error();
}
