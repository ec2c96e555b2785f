//===- Sema.h - Elaboration and checking of Loom programs -------*- C++ -*-===//
//
// Sema instantiates a model (its configuration, parameters and sub-blocks,
// recursively), then elaborates each entry function: names are resolved,
// compile-time values evaluated, block functions instantiated per call with
// their argument types, and every primitive's shapes and dtypes checked with
// symbolic dims. Each checked primitive is handed to MLIRGen, which emits the
// loom op; errors are reported with the model path and elaboration goes on,
// so one run reports many errors.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_FRONTEND_SEMA_H
#define LOOM_FRONTEND_SEMA_H

#include "frontend/AST.h"
#include "frontend/Shapes.h"

#include "mlir/IR/Value.h"

#include "llvm/ADT/StringMap.h"

#include <functional>
#include <map>
#include <memory>
#include <optional>

namespace loom::frontend {

class DiagnosticEngine;
class MLIRGen;
struct Instance;
struct Program;

/// How a parameter is initialized: `normal(0.02)` is {"normal", {std: 0.02}}.
struct InitSpec {
  std::string kind;
  std::vector<std::pair<std::string, double>> fields;
};

/// One entry of the model's parameter table.
struct ParamEntry {
  std::string name; // dot path: blocks.3.attn.wq.weight
  TensorType type;  // static
  InitSpec init;
  llvm::SMLoc loc;
  std::string display; // the owning instance, for messages
};

/// What an expression evaluates to during elaboration.
struct Value {
  enum class Kind {
    Error,    // an error was reported; stay silent downstream
    None,     // an absent optional argument
    Int,      // compile-time integer, possibly symbolic (a Dim)
    Float,    // compile-time number
    Bool,     // compile-time boolean
    String,   // compile-time string
    DType,    // f32, bf16, ...
    List,     // [a, b, c] of compile-time values
    Tensor,   // a run-time tensor (an SSA value of the function being built)
    Tuple,    // several results
    Instance, // a block instance
    Repeat,   // the layers of `repeat(n) Block(...)`
    Function, // a function of an instance
    Block,    // a block declaration (a constructor)
    Module,   // an imported library (`nn`)
    Builtin,  // a primitive
    Param,    // a parameter, before it is loaded into a function
  };
  Kind kind = Kind::Error;
  Dim dim;
  double number = 0;
  bool flag = false;
  std::string text;
  DType dtype = DType::F32;
  TensorType type;
  mlir::Value ir;
  std::vector<Value> elems;
  Instance *instance = nullptr;
  std::vector<Instance *> layers;
  const FnStmt *fn = nullptr;
  const BlockDecl *block = nullptr;
  unsigned param = 0;

  static Value error() { return Value(); }
  static Value none() { return make(Kind::None); }
  static Value integer(Dim d) {
    Value v = make(Kind::Int);
    v.dim = std::move(d);
    return v;
  }
  static Value floating(double x) {
    Value v = make(Kind::Float);
    v.number = x;
    return v;
  }
  static Value boolean(bool b) {
    Value v = make(Kind::Bool);
    v.flag = b;
    return v;
  }
  static Value tensor(TensorType t, mlir::Value ir) {
    Value v = make(Kind::Tensor);
    v.type = std::move(t);
    v.ir = ir;
    return v;
  }
  static Value make(Kind k) {
    Value v;
    v.kind = k;
    return v;
  }
  bool isError() const { return kind == Kind::Error; }
  bool isNumber() const { return kind == Kind::Int || kind == Kind::Float; }
  /// For messages: "a tensor f32[B, T]", "the integer 3", ...
  std::string describe() const;
};

/// An instantiated block: its configuration, parameters, sub-blocks and
/// functions by name.
struct Instance {
  const BlockDecl *decl = nullptr;
  const SourceFile *file = nullptr;
  Instance *parent = nullptr;
  std::string path;    // blocks.3.attn (parameter names)
  std::string display; // blocks[3].attn (messages)
  llvm::StringMap<Value> members;
  llvm::StringMap<llvm::SMLoc> memberLocs;
};

/// All parsed files of a program: the root file and its imports.
struct Program {
  std::vector<std::unique_ptr<SourceFile>> files;
  const SourceFile *root = nullptr;
  const SourceFile *findModule(llvm::StringRef name) const;
};

/// A call argument after evaluation.
struct ArgValue {
  std::string name; // empty: positional
  Value value;
  llvm::SMRange range;
};

/// Bound on the operations one model may expand to, so nested repeats
/// cannot blow up exponentially.
constexpr unsigned kMaxPrimitiveCalls = 1u << 20;

/// True when `name` is a primitive (exp, matmul, attention, ...).
bool isPrimitive(llvm::StringRef name);
/// Every primitive's name, sorted.
std::vector<std::string> primitiveNames();

class Sema {
public:
  Sema(const Program &program, MLIRGen &gen, DiagnosticEngine &diags,
       std::map<std::string, Dim> bindings);
  ~Sema();

  /// Instantiates `model`, emits its parameter table and its entry functions
  /// (only `onlyFn` when non-empty), with `config` overriding configuration
  /// values by name (integers, numbers, true/false). Returns false when any
  /// error was reported.
  bool run(const BlockDecl &model, llvm::StringRef onlyFn,
           const std::map<std::string, std::string> &config = {});

  /// The parameter table, in declaration order.
  llvm::ArrayRef<ParamEntry> getParams() const { return params; }

  // Used by the primitive rules (Primitives.cpp).
  void error(llvm::SMRange range, const llvm::Twine &message);
  MLIRGen &getGen() { return gen; }
  /// A rank-0 tensor constant of `dtype` holding `value`.
  Value scalarTensor(double value, DType dtype, llvm::SMRange range);
  /// Converts numbers to tensors (of `like`'s dtype when given).
  Value asTensor(const Value &v, llvm::SMRange range, llvm::StringRef what,
                 const TensorType *like = nullptr);
  /// The display path of the instance being elaborated ("" at the root).
  std::string currentPath() const;
  llvm::SMRange currentCallRange() const;
  void setTraining(bool on) { training = on; }
  bool isTraining() const { return training; }
  /// Numbers the dropout sites of the entry function being built.
  unsigned nextDropoutSite() { return dropoutSites++; }

private:
  struct Frame;

  // Instances.
  Instance *instantiate(const BlockDecl &decl, const SourceFile &file,
                        Instance *parent, llvm::StringRef path,
                        llvm::StringRef display, std::vector<ArgValue> args,
                        llvm::SMRange site);
  void elaborateMembers(Instance &inst, const std::vector<StmtPtr> &body);
  bool addMember(Instance &inst, llvm::StringRef name, llvm::SMLoc loc,
                 Value value);
  void declareParam(Instance &inst, const ParamStmt &param);
  void declareSub(Instance &inst, const SubStmt &sub);
  std::optional<InitSpec> evalInit(const Expr *init, const ParamStmt &param);

  // Functions.
  void emitEntry(Instance &model, const FnStmt &fn);
  Value callFunction(Instance *self, const FnStmt &fn,
                     std::vector<ArgValue> args, llvm::SMRange site);
  Value callValue(const Value &callee, const CallExpr &call);
  Value callRepeat(const Value &repeat, std::vector<ArgValue> args,
                   llvm::SMRange site);
  /// Executes statements; sets `result` on `return`. False after an error
  /// that makes the rest meaningless.
  void execBody(const std::vector<StmtPtr> &body, std::optional<Value> &result);
  bool matchAnnotation(const TypeAnnot &annot, const Value &arg,
                       llvm::StringRef what, llvm::SMRange argRange,
                       llvm::StringMap<Dim> &dimVars, bool bindNew);
  std::optional<TensorType> entryArgType(const TypeAnnot &annot,
                                         llvm::StringMap<Dim> &dimVars,
                                         llvm::StringRef what);
  std::vector<ArgValue> evalArgs(const CallExpr &call);

  // Expressions.
  Value eval(const Expr &expr);
  Value evalName(const NameExpr &name);
  Value evalMember(const MemberExpr &member);
  Value evalIndex(const IndexExpr &index);
  Value evalUnary(const UnaryExpr &unary);
  Value evalBinary(const BinaryExpr &binary);
  Value evalList(const ListExpr &list);
  Value loadParam(const Value &param, llvm::SMRange range);
  std::optional<Value> lookup(llvm::StringRef name);
  void reportUnknown(llvm::StringRef name, llvm::SMRange range);
  /// A compile-time integer (Dim) from a value, or an error.
  std::optional<Dim> expectDim(const Expr &expr, llvm::StringRef what);

  // Primitives (Primitives.cpp).
  Value callPrimitive(llvm::StringRef name, std::vector<ArgValue> args,
                      llvm::SMRange site);
  Value tensorBinary(BinaryOp op, Value lhs, Value rhs, llvm::SMRange range);

  friend struct PrimitiveCall;

  const Program &program;
  MLIRGen &gen;
  DiagnosticEngine &diags;
  std::map<std::string, Dim> bindings;
  std::vector<std::unique_ptr<Instance>> instances;
  std::vector<ParamEntry> params;
  /// The instance whose members or function is being elaborated.
  Instance *current = nullptr;
  Frame *frame = nullptr;
  unsigned instantiationDepth = 0;
  unsigned callDepth = 0;
  unsigned dropoutSites = 0;
  unsigned instanceCount = 0;
  unsigned primitiveCalls = 0;
  bool training = true;
};

} // namespace loom::frontend

#endif // LOOM_FRONTEND_SEMA_H
