//===- Lexer.cpp - Tokens of the Loom language ----------------------------===//

#include "frontend/Lexer.h"
#include "frontend/Diagnostics.h"

#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <cctype>

using namespace loom::frontend;

llvm::StringRef loom::frontend::spell(Tok kind) {
  switch (kind) {
  case Tok::Eof:
    return "end of file";
  case Tok::Error:
    return "invalid token";
  case Tok::Ident:
    return "identifier";
  case Tok::Int:
    return "integer";
  case Tok::Float:
    return "number";
  case Tok::String:
    return "string";
  case Tok::KwImport:
    return "'import'";
  case Tok::KwModel:
    return "'model'";
  case Tok::KwBlock:
    return "'block'";
  case Tok::KwFn:
    return "'fn'";
  case Tok::KwLet:
    return "'let'";
  case Tok::KwParam:
    return "'param'";
  case Tok::KwReturn:
    return "'return'";
  case Tok::KwIf:
    return "'if'";
  case Tok::KwElse:
    return "'else'";
  case Tok::KwRepeat:
    return "'repeat'";
  case Tok::KwTrue:
    return "'true'";
  case Tok::KwFalse:
    return "'false'";
  case Tok::LParen:
    return "'('";
  case Tok::RParen:
    return "')'";
  case Tok::LBracket:
    return "'['";
  case Tok::RBracket:
    return "']'";
  case Tok::LBrace:
    return "'{'";
  case Tok::RBrace:
    return "'}'";
  case Tok::Comma:
    return "','";
  case Tok::Colon:
    return "':'";
  case Tok::Dot:
    return "'.'";
  case Tok::Ellipsis:
    return "'...'";
  case Tok::Assign:
    return "'='";
  case Tok::Arrow:
    return "'->'";
  case Tok::Plus:
    return "'+'";
  case Tok::Minus:
    return "'-'";
  case Tok::Star:
    return "'*'";
  case Tok::Slash:
    return "'/'";
  case Tok::Percent:
    return "'%'";
  case Tok::At:
    return "'@'";
  case Tok::EqEq:
    return "'=='";
  case Tok::NotEq:
    return "'!='";
  case Tok::Less:
    return "'<'";
  case Tok::LessEq:
    return "'<='";
  case Tok::Greater:
    return "'>'";
  case Tok::GreaterEq:
    return "'>='";
  case Tok::AndAnd:
    return "'&&'";
  case Tok::OrOr:
    return "'||'";
  case Tok::Bang:
    return "'!'";
  }
  return "token";
}

Token Lexer::make(Tok kind, const char *start) {
  Token tok;
  tok.kind = kind;
  tok.text = llvm::StringRef(start, cur - start);
  tok.atLineStart = sawNewline;
  sawNewline = false;
  return tok;
}

Token Lexer::next() {
  const char *end = buffer.end();
  // Skip whitespace and comments, remembering line breaks.
  while (cur < end) {
    if (*cur == '\n') {
      sawNewline = true;
      ++cur;
    } else if (std::isspace(static_cast<unsigned char>(*cur))) {
      ++cur;
    } else if (*cur == '/' && cur + 1 < end && cur[1] == '/') {
      while (cur < end && *cur != '\n')
        ++cur;
    } else {
      break;
    }
  }
  const char *start = cur;
  if (cur >= end)
    return make(Tok::Eof, start);

  char c = *cur++;
  auto follows = [&](char want) {
    if (cur < end && *cur == want) {
      ++cur;
      return true;
    }
    return false;
  };
  if (std::isalpha(static_cast<unsigned char>(c)) || c == '_')
    return lexIdentifier(start);
  if (std::isdigit(static_cast<unsigned char>(c)))
    return lexNumber(start);
  switch (c) {
  case '"':
    return lexString(start);
  case '(':
    return make(Tok::LParen, start);
  case ')':
    return make(Tok::RParen, start);
  case '[':
    return make(Tok::LBracket, start);
  case ']':
    return make(Tok::RBracket, start);
  case '{':
    return make(Tok::LBrace, start);
  case '}':
    return make(Tok::RBrace, start);
  case ',':
    return make(Tok::Comma, start);
  case ':':
    return make(Tok::Colon, start);
  case '.':
    if (cur + 1 < end && cur[0] == '.' && cur[1] == '.') {
      cur += 2;
      return make(Tok::Ellipsis, start);
    }
    if (cur < end && std::isdigit(static_cast<unsigned char>(*cur)))
      return lexNumber(start);
    return make(Tok::Dot, start);
  case '=':
    return make(follows('=') ? Tok::EqEq : Tok::Assign, start);
  case '-':
    return make(follows('>') ? Tok::Arrow : Tok::Minus, start);
  case '+':
    return make(Tok::Plus, start);
  case '*':
    return make(Tok::Star, start);
  case '/':
    return make(Tok::Slash, start);
  case '%':
    return make(Tok::Percent, start);
  case '@':
    return make(Tok::At, start);
  case '!':
    return make(follows('=') ? Tok::NotEq : Tok::Bang, start);
  case '<':
    return make(follows('=') ? Tok::LessEq : Tok::Less, start);
  case '>':
    return make(follows('=') ? Tok::GreaterEq : Tok::Greater, start);
  case '&':
    if (follows('&'))
      return make(Tok::AndAnd, start);
    break;
  case '|':
    if (follows('|'))
      return make(Tok::OrOr, start);
    break;
  default:
    break;
  }
  // A UTF-8 sequence is one character: one error, not one per byte.
  auto lead = static_cast<unsigned char>(c);
  if (lead >= 0xC0)
    while (cur < end && (static_cast<unsigned char>(*cur) & 0xC0) == 0x80)
      ++cur;
  Token bad = make(Tok::Error, start);
  std::string message;
  if (std::isprint(lead)) {
    message = std::string("unexpected character '") + c + "'";
  } else if (lead >= 0xC0 && bad.text.size() > 1) {
    message = "unexpected non-ASCII character '" + bad.text.str() + "'";
  } else {
    llvm::raw_string_ostream os(message);
    os << "unexpected byte " << llvm::format_hex(lead, 4);
  }
  diags.error(bad.loc(), message);
  return bad;
}

Token Lexer::lexIdentifier(const char *start) {
  while (cur < buffer.end() &&
         (std::isalnum(static_cast<unsigned char>(*cur)) || *cur == '_'))
    ++cur;
  llvm::StringRef text(start, cur - start);
  Tok kind = llvm::StringSwitch<Tok>(text)
                 .Case("import", Tok::KwImport)
                 .Case("model", Tok::KwModel)
                 .Case("block", Tok::KwBlock)
                 .Case("fn", Tok::KwFn)
                 .Case("let", Tok::KwLet)
                 .Case("param", Tok::KwParam)
                 .Case("return", Tok::KwReturn)
                 .Case("if", Tok::KwIf)
                 .Case("else", Tok::KwElse)
                 .Case("repeat", Tok::KwRepeat)
                 .Case("true", Tok::KwTrue)
                 .Case("false", Tok::KwFalse)
                 .Default(Tok::Ident);
  return make(kind, start);
}

/// number := digits ('.' digits)? ([eE] [+-]? digits)?  |  '.' digits ...
Token Lexer::lexNumber(const char *start) {
  const char *end = buffer.end();
  auto digits = [&] {
    while (cur < end && std::isdigit(static_cast<unsigned char>(*cur)))
      ++cur;
  };
  bool isFloat = *start == '.';
  digits();
  if (cur < end && *cur == '.' && !(cur + 1 < end && cur[1] == '.')) {
    isFloat = true;
    ++cur;
    digits();
  }
  if (cur < end && (*cur == 'e' || *cur == 'E')) {
    const char *save = cur;
    ++cur;
    if (cur < end && (*cur == '+' || *cur == '-'))
      ++cur;
    if (cur < end && std::isdigit(static_cast<unsigned char>(*cur))) {
      isFloat = true;
      digits();
    } else {
      cur = save;
    }
  }
  return make(isFloat ? Tok::Float : Tok::Int, start);
}

Token Lexer::lexString(const char *start) {
  while (cur < buffer.end() && *cur != '"' && *cur != '\n')
    ++cur;
  if (cur >= buffer.end() || *cur != '"') {
    Token bad = make(Tok::Error, start);
    diags.error(bad.loc(), "unterminated string");
    return bad;
  }
  ++cur;
  return make(Tok::String, start);
}
