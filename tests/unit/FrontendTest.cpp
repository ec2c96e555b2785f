//===- FrontendTest.cpp - Loom language frontend unit tests ---------------===//

#include "frontend/Frontend.h"
#include "frontend/AST.h"
#include "frontend/Diagnostics.h"
#include "frontend/Lexer.h"
#include "frontend/Parser.h"
#include "frontend/Shapes.h"

#include "ir/LoomOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

using namespace loom::frontend;

namespace {

TEST(Dim, ArithmeticIsCanonical) {
  Dim b = Dim::symbol("B"), t = Dim::symbol("T");
  Dim bt = *Dim::mul(b, t);
  Dim tb = *Dim::mul(t, b);
  EXPECT_EQ(bt, tb);
  EXPECT_EQ(bt.str(), "B*T");
  Dim tMinus1 = *Dim::sub(t, Dim(1));
  EXPECT_EQ(tMinus1.str(), "T - 1");
  EXPECT_EQ(*Dim::add(tMinus1, Dim(1)), t);
  EXPECT_NE(t, b);
  Dim twoT = *Dim::mul(Dim(2), t);
  EXPECT_EQ(*Dim::div(twoT, Dim(2)), t);
  EXPECT_FALSE(Dim::div(t, Dim(2)).has_value());
  EXPECT_FALSE(Dim::div(t, b).has_value());
}

TEST(Dim, ConstantsFoldAndOverflowIsReported) {
  EXPECT_EQ(Dim::mul(Dim(16), Dim(4))->getConstant(), 64);
  EXPECT_EQ(Dim(0).getConstant(), 0);
  EXPECT_FALSE(Dim::mul(Dim(int64_t(1) << 40), Dim(int64_t(1) << 40)));
}

TEST(Dim, SubstituteBindsSymbols) {
  Dim e = *Dim::sub(*Dim::mul(Dim::symbol("B"), Dim::symbol("T")), Dim(1));
  std::map<std::string, Dim> values{{"B", Dim(2)}, {"T", Dim(16)}};
  EXPECT_EQ(e.substitute(values)->getConstant(), 31);
  std::map<std::string, Dim> partial{{"B", Dim(3)}};
  EXPECT_EQ(e.substitute(partial)->str(), "3*T - 1");
}

/// Lexes `source`, returning the kinds and the number of errors.
std::vector<Tok> lex(llvm::StringRef source, unsigned &errors) {
  llvm::SourceMgr sm;
  sm.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBuffer(source, "t.loom"),
                        llvm::SMLoc());
  std::string out;
  llvm::raw_string_ostream os(out);
  DiagnosticEngine diags(sm, os);
  Lexer lexer(sm.getMemoryBuffer(1)->getBuffer(), diags);
  std::vector<Tok> kinds;
  for (Token t = lexer.next(); !t.is(Tok::Eof); t = lexer.next())
    kinds.push_back(t.kind);
  errors = diags.errorCount();
  return kinds;
}

TEST(Lexer, TokensAndComments) {
  unsigned errors = 0;
  auto kinds =
      lex("fn f(x: f32[..., d]) -> f32 { return x @ w.T } // end", errors);
  std::vector<Tok> want = {Tok::KwFn,  Tok::Ident, Tok::LParen,   Tok::Ident,
                           Tok::Colon, Tok::Ident, Tok::LBracket, Tok::Ellipsis,
                           Tok::Comma, Tok::Ident, Tok::RBracket, Tok::RParen,
                           Tok::Arrow, Tok::Ident, Tok::LBrace,   Tok::KwReturn,
                           Tok::Ident, Tok::At,    Tok::Ident,    Tok::Dot,
                           Tok::Ident, Tok::RBrace};
  EXPECT_EQ(kinds, want);
  EXPECT_EQ(errors, 0u);
}

TEST(Lexer, NumbersAndBadCharacters) {
  unsigned errors = 0;
  auto kinds = lex("1 2.5 1e-5 .5 3e $", errors);
  std::vector<Tok> want = {Tok::Int, Tok::Float, Tok::Float, Tok::Float,
                           Tok::Int, Tok::Ident, Tok::Error};
  EXPECT_EQ(kinds, want);
  EXPECT_EQ(errors, 1u);
}

TEST(Parser, RecoversAndReportsSeveralErrors) {
  llvm::SourceMgr sm;
  llvm::StringRef source = "model M {\n"
                           "  param w f32[2]\n"         // missing ':'
                           "  fn f(x) { return x + }\n" // missing operand
                           "  fn g(x) { return x }\n"
                           "}\n";
  sm.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBuffer(source, "t.loom"),
                        llvm::SMLoc());
  std::string out;
  llvm::raw_string_ostream os(out);
  DiagnosticEngine diags(sm, os);
  Parser parser(sm.getMemoryBuffer(1)->getBuffer(), diags);
  auto file = parser.parseFile("t.loom", "t");
  EXPECT_EQ(diags.errorCount(), 2u) << out;
  ASSERT_EQ(file->blocks.size(), 1u);
  // `g` survived the recovery.
  bool sawG = false;
  for (const auto &stmt : file->blocks[0]->body)
    if (auto *fn = llvm::dyn_cast<FnStmt>(stmt.get()))
      sawG |= fn->name == "g";
  EXPECT_TRUE(sawG) << out;
  EXPECT_NE(out.find("t.loom:2:11: error: expected ':' after the parameter "
                     "name, found 'f32'"),
            std::string::npos)
      << out;
}

/// Compiles a program from a temporary file.
struct Compiled {
  mlir::OwningOpRef<mlir::ModuleOp> module;
  std::string diagnostics;
};

Compiled compile(mlir::MLIRContext &context, llvm::StringRef source,
                 std::map<std::string, int64_t> bindings = {}) {
  llvm::SmallString<128> path;
  EXPECT_FALSE(llvm::sys::fs::createTemporaryFile("frontend", "loom", path));
  {
    std::error_code ec;
    llvm::raw_fd_ostream file(path, ec);
    file << source;
  }
  Compiled result;
  llvm::SourceMgr sm;
  llvm::raw_string_ostream os(result.diagnostics);
  DiagnosticEngine diags(sm, os);
  auto program = loadProgram(path, {}, sm, diags);
  if (program) {
    GenerateOptions options;
    options.bindings = std::move(bindings);
    result.module = generateModule(*program, context, sm, diags, options);
  }
  llvm::sys::fs::remove(path);
  return result;
}

TEST(Sema, BindsSymbolicDimsAndTiesParameters) {
  mlir::MLIRContext context;
  Compiled c = compile(context, R"(
    import nn
    model M(d = 8) {
      lin = nn.Linear(d, 2 * d)
      fn f(x: f32[B, T, d]) -> f32[B, T, 2 * d] { return lin(x) }
    })",
                       {{"B", 3}, {"T", 5}});
  ASSERT_TRUE(c.module) << c.diagnostics;
  auto func = c.module->lookupSymbol<mlir::func::FuncOp>("f");
  ASSERT_TRUE(func);
  auto result =
      llvm::cast<mlir::RankedTensorType>(func.getFunctionType().getResult(0));
  EXPECT_EQ(result.getShape(), (llvm::ArrayRef<int64_t>{3, 5, 16}));
  auto weight = c.module->lookupSymbol<loom::ParameterOp>("lin.weight");
  ASSERT_TRUE(weight);
  EXPECT_EQ(llvm::cast<mlir::RankedTensorType>(weight.getType()).getShape(),
            (llvm::ArrayRef<int64_t>{8, 16}));
}

TEST(Sema, ReportsEveryIndependentError) {
  mlir::MLIRContext context;
  Compiled c = compile(context, R"(
    model M(d = 8) {
      param w: f32[d, d] = normal(0.02)
      fn f(x: f32[B, 4]) { return x @ w }
      fn g(x: f32[B, 8]) { return undefined_name }
    })");
  EXPECT_FALSE(c.module);
  EXPECT_NE(c.diagnostics.find("matmul contraction dims differ"),
            std::string::npos)
      << c.diagnostics;
  EXPECT_NE(c.diagnostics.find("unknown name 'undefined_name'"),
            std::string::npos)
      << c.diagnostics;
}

} // namespace
