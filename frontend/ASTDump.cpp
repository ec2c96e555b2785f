//===- ASTDump.cpp - Print the Loom syntax tree ---------------------------===//
//
// `loomc compile FILE --emit=ast`: one node per line, indented, with its
// `line:col`, so lit tests can pin the parse of small programs.
//
//===----------------------------------------------------------------------===//

#include "frontend/AST.h"

#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

using namespace loom::frontend;

llvm::StringRef loom::frontend::spell(BinaryOp op) {
  switch (op) {
  case BinaryOp::Add:
    return "+";
  case BinaryOp::Sub:
    return "-";
  case BinaryOp::Mul:
    return "*";
  case BinaryOp::Div:
    return "/";
  case BinaryOp::Mod:
    return "%";
  case BinaryOp::MatMul:
    return "@";
  case BinaryOp::Eq:
    return "==";
  case BinaryOp::Ne:
    return "!=";
  case BinaryOp::Lt:
    return "<";
  case BinaryOp::Le:
    return "<=";
  case BinaryOp::Gt:
    return ">";
  case BinaryOp::Ge:
    return ">=";
  case BinaryOp::And:
    return "&&";
  case BinaryOp::Or:
    return "||";
  }
  return "?";
}

namespace {
class Dumper {
public:
  Dumper(const llvm::SourceMgr &sm, llvm::raw_ostream &os) : sm(sm), os(os) {}

  void file(const SourceFile &f) {
    os << "(file " << f.moduleName << "\n";
    for (const ImportDecl &imp : f.imports) {
      line(1) << "(import " << imp.name << " " << where(imp.loc) << ")\n";
    }
    for (const auto &b : f.blocks)
      block(*b, 1);
    os << ")\n";
  }

private:
  llvm::raw_ostream &line(unsigned indent) { return os.indent(2 * indent); }
  std::string where(llvm::SMLoc loc) {
    if (!loc.isValid())
      return "@?";
    auto [l, c] = sm.getLineAndColumn(loc);
    return "@" + std::to_string(l) + ":" + std::to_string(c);
  }

  void block(const BlockDecl &b, unsigned indent) {
    line(indent) << "(" << (b.isModel ? "model " : "block ") << b.name << " "
                 << where(b.loc) << "\n";
    for (const ConfigParam &c : b.config) {
      line(indent + 1) << "(config " << c.name << " " << where(c.loc);
      if (c.defaultValue) {
        os << "\n";
        expr(*c.defaultValue, indent + 2);
        line(indent + 1) << ")\n";
      } else {
        os << ")\n";
      }
    }
    for (const auto &s : b.body)
      stmt(*s, indent + 1);
    line(indent) << ")\n";
  }

  void type(const TypeAnnot &t, unsigned indent) {
    line(indent) << "(type " << t.dtype << " " << where(t.range.Start);
    if (!t.hasShape) {
      os << ")\n";
      return;
    }
    os << "\n";
    for (const auto &d : t.dims) {
      if (!d)
        line(indent + 1) << "(ellipsis)\n";
      else
        expr(*d, indent + 1);
    }
    line(indent) << ")\n";
  }

  void body(const std::vector<StmtPtr> &stmts, unsigned indent) {
    for (const auto &s : stmts)
      stmt(*s, indent);
  }

  void stmt(const Stmt &s, unsigned indent) {
    switch (s.getKind()) {
    case Stmt::Kind::Let: {
      auto &let = llvm::cast<LetStmt>(s);
      line(indent) << "(let";
      for (const std::string &n : let.names)
        os << " " << n;
      os << " " << where(s.getLoc()) << "\n";
      expr(*let.value, indent + 1);
      break;
    }
    case Stmt::Kind::Return: {
      line(indent) << "(return " << where(s.getLoc()) << "\n";
      for (const auto &v : llvm::cast<ReturnStmt>(s).values)
        expr(*v, indent + 1);
      break;
    }
    case Stmt::Kind::If: {
      auto &ifs = llvm::cast<IfStmt>(s);
      line(indent) << "(if " << where(s.getLoc()) << "\n";
      expr(*ifs.cond, indent + 1);
      line(indent + 1) << "(then\n";
      body(ifs.thenBody, indent + 2);
      line(indent + 1) << ")\n";
      if (!ifs.elseBody.empty()) {
        line(indent + 1) << "(else\n";
        body(ifs.elseBody, indent + 2);
        line(indent + 1) << ")\n";
      }
      break;
    }
    case Stmt::Kind::Param: {
      auto &p = llvm::cast<ParamStmt>(s);
      line(indent) << "(param " << p.name << " " << where(s.getLoc()) << "\n";
      type(p.type, indent + 1);
      if (p.init)
        expr(*p.init, indent + 1);
      break;
    }
    case Stmt::Kind::Sub: {
      auto &sub = llvm::cast<SubStmt>(s);
      line(indent) << "(sub " << sub.name << " " << where(s.getLoc()) << "\n";
      if (sub.repeat) {
        line(indent + 1) << "(repeat\n";
        expr(*sub.repeat, indent + 2);
        if (sub.shared) {
          line(indent + 2) << "(shared\n";
          expr(*sub.shared, indent + 3);
          line(indent + 2) << ")\n";
        }
        line(indent + 1) << ")\n";
      }
      expr(*sub.ctor, indent + 1);
      break;
    }
    case Stmt::Kind::Fn: {
      auto &fn = llvm::cast<FnStmt>(s);
      line(indent) << "(fn " << fn.name << " " << where(s.getLoc()) << "\n";
      for (const FnParam &p : fn.params) {
        line(indent + 1) << "(arg " << p.name << " " << where(p.loc);
        if (!p.type && !p.defaultValue) {
          os << ")\n";
          continue;
        }
        os << "\n";
        if (p.type)
          type(*p.type, indent + 2);
        if (p.defaultValue) {
          line(indent + 2) << "(default\n";
          expr(*p.defaultValue, indent + 3);
          line(indent + 2) << ")\n";
        }
        line(indent + 1) << ")\n";
      }
      for (const auto &r : fn.results) {
        line(indent + 1) << "(result\n";
        type(*r, indent + 2);
        line(indent + 1) << ")\n";
      }
      body(fn.body, indent + 1);
      break;
    }
    }
    line(indent) << ")\n";
  }

  void expr(const Expr &e, unsigned indent) {
    switch (e.getKind()) {
    case Expr::Kind::Int:
      line(indent) << "(int " << llvm::cast<IntExpr>(e).value << " "
                   << where(e.getLoc()) << ")\n";
      return;
    case Expr::Kind::Float:
      line(indent) << "(float " << llvm::cast<FloatExpr>(e).value << " "
                   << where(e.getLoc()) << ")\n";
      return;
    case Expr::Kind::Bool:
      line(indent) << "(bool "
                   << (llvm::cast<BoolExpr>(e).value ? "true" : "false") << " "
                   << where(e.getLoc()) << ")\n";
      return;
    case Expr::Kind::String:
      line(indent) << "(string \"" << llvm::cast<StringExpr>(e).value << "\" "
                   << where(e.getLoc()) << ")\n";
      return;
    case Expr::Kind::Name:
      line(indent) << "(name " << llvm::cast<NameExpr>(e).name << " "
                   << where(e.getLoc()) << ")\n";
      return;
    case Expr::Kind::Member: {
      auto &m = llvm::cast<MemberExpr>(e);
      line(indent) << "(member " << m.name << " " << where(e.getLoc()) << "\n";
      expr(*m.base, indent + 1);
      break;
    }
    case Expr::Kind::Index: {
      auto &i = llvm::cast<IndexExpr>(e);
      line(indent) << "(index " << where(e.getLoc()) << "\n";
      expr(*i.base, indent + 1);
      expr(*i.index, indent + 1);
      break;
    }
    case Expr::Kind::Call: {
      auto &c = llvm::cast<CallExpr>(e);
      line(indent) << "(call " << where(e.getLoc()) << "\n";
      expr(*c.callee, indent + 1);
      for (const Arg &a : c.args) {
        if (a.name.empty()) {
          expr(*a.value, indent + 1);
          continue;
        }
        line(indent + 1) << "(named " << a.name << "\n";
        expr(*a.value, indent + 2);
        line(indent + 1) << ")\n";
      }
      break;
    }
    case Expr::Kind::List: {
      line(indent) << "(list " << where(e.getLoc()) << "\n";
      for (const auto &el : llvm::cast<ListExpr>(e).elements)
        expr(*el, indent + 1);
      break;
    }
    case Expr::Kind::Unary: {
      auto &u = llvm::cast<UnaryExpr>(e);
      line(indent) << "(unary " << (u.op == UnaryOp::Neg ? "-" : "!") << " "
                   << where(e.getLoc()) << "\n";
      expr(*u.operand, indent + 1);
      break;
    }
    case Expr::Kind::Binary: {
      auto &b = llvm::cast<BinaryExpr>(e);
      line(indent) << "(binary " << spell(b.op) << " " << where(e.getLoc())
                   << "\n";
      expr(*b.lhs, indent + 1);
      expr(*b.rhs, indent + 1);
      break;
    }
    }
    line(indent) << ")\n";
  }

  const llvm::SourceMgr &sm;
  llvm::raw_ostream &os;
};
} // namespace

void loom::frontend::dumpAST(const SourceFile &file,
                             const llvm::SourceMgr &sourceMgr,
                             llvm::raw_ostream &os) {
  Dumper(sourceMgr, os).file(file);
}
