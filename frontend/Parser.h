//===- Parser.h - Recursive-descent parser of the Loom language -*- C++ -*-===//

#ifndef LOOM_FRONTEND_PARSER_H
#define LOOM_FRONTEND_PARSER_H

#include "frontend/AST.h"
#include "frontend/Lexer.h"

namespace loom::frontend {

class DiagnosticEngine;

/// Parses one buffer into a SourceFile. Reports every syntax error it can
/// (resynchronizing at the next line) and returns the partial tree; the
/// caller checks `diags.hadError()`.
class Parser {
public:
  Parser(llvm::StringRef buffer, DiagnosticEngine &diags)
      : lexer(buffer, diags), diags(diags) {
    tok = lexer.next();
  }

  std::unique_ptr<SourceFile> parseFile(llvm::StringRef path,
                                        llvm::StringRef moduleName);

private:
  // Declarations.
  bool parseImport(SourceFile &file);
  std::unique_ptr<BlockDecl> parseBlock();
  bool parseConfigParam(BlockDecl &block);
  // Members and statements.
  void parseBody(std::vector<StmtPtr> &body, bool inBlock);
  StmtPtr parseMember();
  StmtPtr parseStatement();
  StmtPtr parseLet();
  StmtPtr parseReturn();
  StmtPtr parseIf(bool inBlock);
  StmtPtr parseParam();
  StmtPtr parseSub();
  StmtPtr parseFn();
  std::unique_ptr<TypeAnnot> parseType();
  // Expressions.
  ExprPtr parseExpr();
  ExprPtr parseBinary(int minPrecedence);
  ExprPtr parseUnary();
  ExprPtr parsePostfix();
  ExprPtr parsePrimary();
  bool parseArgs(std::vector<Arg> &args);

  // Token helpers.
  void consume() {
    prevEnd = tok.range().End;
    if (hasPeeked) {
      tok = peeked;
      hasPeeked = false;
    } else {
      tok = lexer.next();
    }
  }
  /// The token after `tok`, without consuming anything.
  const Token &peek() {
    if (!hasPeeked) {
      peeked = lexer.next();
      hasPeeked = true;
    }
    return peeked;
  }
  bool consumeIf(Tok kind) {
    if (!tok.is(kind))
      return false;
    consume();
    return true;
  }
  bool expect(Tok kind, llvm::StringRef context);
  void errorExpected(llvm::StringRef what, llvm::StringRef context);
  /// Skips to the next token that starts a line (or a closing brace).
  void synchronize();
  /// Skips to the next `model`, `block` or `import` that starts a line.
  void skipToDeclaration();
  llvm::SMRange rangeFrom(llvm::SMLoc start) const { return {start, prevEnd}; }

  Lexer lexer;
  DiagnosticEngine &diags;
  Token tok;
  Token peeked;
  bool hasPeeked = false;
  llvm::SMLoc prevEnd;
  unsigned depth = 0;
  static constexpr unsigned kMaxDepth = 200;
};

} // namespace loom::frontend

#endif // LOOM_FRONTEND_PARSER_H
