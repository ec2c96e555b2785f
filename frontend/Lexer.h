//===- Lexer.h - Tokens of the Loom language --------------------*- C++ -*-===//

#ifndef LOOM_FRONTEND_LEXER_H
#define LOOM_FRONTEND_LEXER_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/SMLoc.h"

namespace loom::frontend {

class DiagnosticEngine;

enum class Tok {
  Eof,
  Error,
  Ident,
  Int,
  Float,
  String,
  // Keywords.
  KwImport,
  KwModel,
  KwBlock,
  KwFn,
  KwLet,
  KwParam,
  KwReturn,
  KwIf,
  KwElse,
  KwRepeat,
  KwTrue,
  KwFalse,
  // Punctuation.
  LParen,
  RParen,
  LBracket,
  RBracket,
  LBrace,
  RBrace,
  Comma,
  Colon,
  Dot,
  Ellipsis,
  Assign,
  Arrow,
  Plus,
  Minus,
  Star,
  Slash,
  Percent,
  At,
  EqEq,
  NotEq,
  Less,
  LessEq,
  Greater,
  GreaterEq,
  AndAnd,
  OrOr,
  Bang,
};

/// A human-readable spelling of a token kind, for "expected X" messages.
llvm::StringRef spell(Tok kind);

struct Token {
  Tok kind = Tok::Eof;
  llvm::StringRef text;
  /// True when no other token precedes this one on its line; the parser uses
  /// it to resynchronize after an error.
  bool atLineStart = false;

  llvm::SMLoc loc() const { return llvm::SMLoc::getFromPointer(text.data()); }
  llvm::SMRange range() const {
    return {loc(), llvm::SMLoc::getFromPointer(text.data() + text.size())};
  }
  bool is(Tok k) const { return kind == k; }
};

/// Splits a buffer into tokens; `//` comments run to the end of the line.
/// Bad characters become `Tok::Error` tokens after a diagnostic.
class Lexer {
public:
  Lexer(llvm::StringRef buffer, DiagnosticEngine &diags)
      : buffer(buffer), cur(buffer.begin()), diags(diags) {}

  Token next();

private:
  Token make(Tok kind, const char *start);
  Token lexNumber(const char *start);
  Token lexIdentifier(const char *start);
  Token lexString(const char *start);

  llvm::StringRef buffer;
  const char *cur;
  bool sawNewline = true;
  DiagnosticEngine &diags;
};

} // namespace loom::frontend

#endif // LOOM_FRONTEND_LEXER_H
