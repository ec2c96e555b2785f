//===- AST.h - Syntax tree of the Loom language -----------------*- C++ -*-===//
//
// Nodes carry a kind enum with `classof` (LLVM-style casts), own their
// children through unique_ptr, and keep the source range they came from.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_FRONTEND_AST_H
#define LOOM_FRONTEND_AST_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Casting.h"
#include "llvm/Support/SMLoc.h"

#include <memory>
#include <string>
#include <vector>

namespace llvm {
class raw_ostream;
class SourceMgr;
} // namespace llvm

namespace loom::frontend {

//===----------------------------------------------------------------------===//
// Expressions
//===----------------------------------------------------------------------===//

class Expr {
public:
  enum class Kind {
    Int,
    Float,
    Bool,
    String,
    Name,
    Member,
    Index,
    Call,
    Unary,
    Binary,
    List
  };
  Expr(Kind kind, llvm::SMRange range) : kind(kind), range(range) {}
  virtual ~Expr() = default;

  Kind getKind() const { return kind; }
  llvm::SMRange getRange() const { return range; }
  llvm::SMLoc getLoc() const { return range.Start; }

private:
  Kind kind;
  llvm::SMRange range;
};
using ExprPtr = std::unique_ptr<Expr>;

class IntExpr : public Expr {
public:
  IntExpr(llvm::SMRange r, int64_t value) : Expr(Kind::Int, r), value(value) {}
  int64_t value;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Int; }
};

class FloatExpr : public Expr {
public:
  FloatExpr(llvm::SMRange r, double value)
      : Expr(Kind::Float, r), value(value) {}
  double value;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Float; }
};

class BoolExpr : public Expr {
public:
  BoolExpr(llvm::SMRange r, bool value) : Expr(Kind::Bool, r), value(value) {}
  bool value;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Bool; }
};

class StringExpr : public Expr {
public:
  StringExpr(llvm::SMRange r, llvm::StringRef value)
      : Expr(Kind::String, r), value(value.str()) {}
  std::string value;
  static bool classof(const Expr *e) { return e->getKind() == Kind::String; }
};

class NameExpr : public Expr {
public:
  NameExpr(llvm::SMRange r, llvm::StringRef name)
      : Expr(Kind::Name, r), name(name.str()) {}
  std::string name;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Name; }
};

/// `base.name`, including `x.T` (transpose of the last two dims).
class MemberExpr : public Expr {
public:
  MemberExpr(llvm::SMRange r, ExprPtr base, llvm::StringRef name,
             llvm::SMLoc nameLoc)
      : Expr(Kind::Member, r), base(std::move(base)), name(name.str()),
        nameLoc(nameLoc) {}
  ExprPtr base;
  std::string name;
  llvm::SMLoc nameLoc;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Member; }
};

/// `base[index]`: one layer of a `repeat`.
class IndexExpr : public Expr {
public:
  IndexExpr(llvm::SMRange r, ExprPtr base, ExprPtr index)
      : Expr(Kind::Index, r), base(std::move(base)), index(std::move(index)) {}
  ExprPtr base, index;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Index; }
};

struct Arg {
  std::string name; // empty for a positional argument
  llvm::SMLoc nameLoc;
  ExprPtr value;
};

class CallExpr : public Expr {
public:
  CallExpr(llvm::SMRange r, ExprPtr callee, std::vector<Arg> args)
      : Expr(Kind::Call, r), callee(std::move(callee)), args(std::move(args)) {}
  ExprPtr callee;
  std::vector<Arg> args;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Call; }
};

enum class UnaryOp { Neg, Not };
enum class BinaryOp {
  Add,
  Sub,
  Mul,
  Div,
  Mod,
  MatMul,
  Eq,
  Ne,
  Lt,
  Le,
  Gt,
  Ge,
  And,
  Or
};
llvm::StringRef spell(BinaryOp op);

class UnaryExpr : public Expr {
public:
  UnaryExpr(llvm::SMRange r, UnaryOp op, ExprPtr operand)
      : Expr(Kind::Unary, r), op(op), operand(std::move(operand)) {}
  UnaryOp op;
  ExprPtr operand;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Unary; }
};

class BinaryExpr : public Expr {
public:
  BinaryExpr(llvm::SMRange r, BinaryOp op, llvm::SMLoc opLoc, ExprPtr lhs,
             ExprPtr rhs)
      : Expr(Kind::Binary, r), op(op), opLoc(opLoc), lhs(std::move(lhs)),
        rhs(std::move(rhs)) {}
  BinaryOp op;
  llvm::SMLoc opLoc;
  ExprPtr lhs, rhs;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Binary; }
};

/// `[a, b, c]`: a compile-time list (axes, shapes, permutations).
class ListExpr : public Expr {
public:
  ListExpr(llvm::SMRange r, std::vector<ExprPtr> elements)
      : Expr(Kind::List, r), elements(std::move(elements)) {}
  std::vector<ExprPtr> elements;
  static bool classof(const Expr *e) { return e->getKind() == Kind::List; }
};

//===----------------------------------------------------------------------===//
// Types
//===----------------------------------------------------------------------===//

/// `f32[B, T, d]`, `i32`, `f32[..., d]`. A null dim expression is `...`.
struct TypeAnnot {
  llvm::SMRange range;
  std::string dtype;
  llvm::SMLoc dtypeLoc;
  bool hasShape = false;
  std::vector<ExprPtr> dims;
};

//===----------------------------------------------------------------------===//
// Statements (function bodies) and members (block bodies)
//===----------------------------------------------------------------------===//

class Stmt {
public:
  enum class Kind { Let, Return, If, Param, Sub, Fn };
  Stmt(Kind kind, llvm::SMRange range) : kind(kind), range(range) {}
  virtual ~Stmt() = default;
  Kind getKind() const { return kind; }
  llvm::SMRange getRange() const { return range; }
  llvm::SMLoc getLoc() const { return range.Start; }

private:
  Kind kind;
  llvm::SMRange range;
};
using StmtPtr = std::unique_ptr<Stmt>;

/// `let a = e` or `let a, b, c = e` (destructures a tuple).
class LetStmt : public Stmt {
public:
  LetStmt(llvm::SMRange r, std::vector<std::string> names,
          std::vector<llvm::SMLoc> nameLocs, ExprPtr value)
      : Stmt(Kind::Let, r), names(std::move(names)),
        nameLocs(std::move(nameLocs)), value(std::move(value)) {}
  std::vector<std::string> names;
  std::vector<llvm::SMLoc> nameLocs;
  ExprPtr value;
  static bool classof(const Stmt *s) { return s->getKind() == Kind::Let; }
};

class ReturnStmt : public Stmt {
public:
  ReturnStmt(llvm::SMRange r, std::vector<ExprPtr> values)
      : Stmt(Kind::Return, r), values(std::move(values)) {}
  std::vector<ExprPtr> values;
  static bool classof(const Stmt *s) { return s->getKind() == Kind::Return; }
};

/// A compile-time conditional: only the taken branch is elaborated.
class IfStmt : public Stmt {
public:
  IfStmt(llvm::SMRange r, ExprPtr cond, std::vector<StmtPtr> thenBody,
         std::vector<StmtPtr> elseBody)
      : Stmt(Kind::If, r), cond(std::move(cond)), thenBody(std::move(thenBody)),
        elseBody(std::move(elseBody)) {}
  ExprPtr cond;
  std::vector<StmtPtr> thenBody, elseBody;
  static bool classof(const Stmt *s) { return s->getKind() == Kind::If; }
};

/// `param weight: f32[in, out] = normal(0.02)`.
class ParamStmt : public Stmt {
public:
  ParamStmt(llvm::SMRange r, llvm::StringRef name, TypeAnnot type, ExprPtr init)
      : Stmt(Kind::Param, r), name(name.str()), type(std::move(type)),
        init(std::move(init)) {}
  std::string name;
  TypeAnnot type;
  ExprPtr init; // a call such as normal(0.02); null means zeros()
  static bool classof(const Stmt *s) { return s->getKind() == Kind::Param; }
};

/// `attn = nn.MultiHeadAttention(d, heads)` or
/// `blocks = repeat(layers) nn.DecoderLayer(d, heads)`.
class SubStmt : public Stmt {
public:
  SubStmt(llvm::SMRange r, llvm::StringRef name, ExprPtr repeat, ExprPtr shared,
          std::unique_ptr<CallExpr> ctor)
      : Stmt(Kind::Sub, r), name(name.str()), repeat(std::move(repeat)),
        shared(std::move(shared)), ctor(std::move(ctor)) {}
  std::string name;
  ExprPtr repeat; // null unless `repeat(n)`
  ExprPtr shared; // null unless `repeat(n, shared = ...)`
  std::unique_ptr<CallExpr> ctor;
  static bool classof(const Stmt *s) { return s->getKind() == Kind::Sub; }
};

struct FnParam {
  std::string name;
  llvm::SMLoc loc;
  std::unique_ptr<TypeAnnot> type; // optional in blocks, required in models
  ExprPtr defaultValue;            // `mask = none`; null: required
};

class FnStmt : public Stmt {
public:
  FnStmt(llvm::SMRange r, llvm::StringRef name, std::vector<FnParam> params,
         std::vector<std::unique_ptr<TypeAnnot>> results,
         std::vector<StmtPtr> body)
      : Stmt(Kind::Fn, r), name(name.str()), params(std::move(params)),
        results(std::move(results)), body(std::move(body)) {}
  std::string name;
  std::vector<FnParam> params;
  std::vector<std::unique_ptr<TypeAnnot>> results; // empty: not annotated
  std::vector<StmtPtr> body;
  static bool classof(const Stmt *s) { return s->getKind() == Kind::Fn; }
};

//===----------------------------------------------------------------------===//
// Declarations
//===----------------------------------------------------------------------===//

struct ConfigParam {
  std::string name;
  llvm::SMLoc loc;
  ExprPtr defaultValue; // null: required
};

/// `block Name(config...) { members }` or `model Name(...) { ... }`.
struct BlockDecl {
  bool isModel = false;
  std::string name;
  llvm::SMLoc loc;
  std::vector<ConfigParam> config;
  std::vector<StmtPtr> body;
  /// The file (module) that declares it, e.g. "nn".
  std::string moduleName;
};

struct ImportDecl {
  std::string name;
  llvm::SMLoc loc;
};

/// One parsed `.loom` file.
struct SourceFile {
  std::string path;
  std::string moduleName; // file stem
  std::vector<ImportDecl> imports;
  std::vector<std::unique_ptr<BlockDecl>> blocks;
};

/// Prints the tree as indented S-expressions with `line:col` locations.
void dumpAST(const SourceFile &file, const llvm::SourceMgr &sourceMgr,
             llvm::raw_ostream &os);

} // namespace loom::frontend

#endif // LOOM_FRONTEND_AST_H
