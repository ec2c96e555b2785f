//===- Parser.cpp - Recursive-descent parser of the Loom language ---------===//

#include "frontend/Parser.h"
#include "frontend/Diagnostics.h"

#include "llvm/ADT/ScopeExit.h"

using namespace loom::frontend;
using llvm::SMLoc;

void Parser::errorExpected(llvm::StringRef what, llvm::StringRef context) {
  std::string found = tok.is(Tok::Eof) ? std::string("end of file")
                                       : "'" + tok.text.str() + "'";
  if (tok.is(Tok::Error))
    return; // the lexer has reported it
  std::string message = "expected " + what.str();
  if (!context.empty())
    message += " " + context.str();
  diags.error(tok.loc(), message + ", found " + found);
}

bool Parser::expect(Tok kind, llvm::StringRef context) {
  if (consumeIf(kind))
    return true;
  errorExpected(spell(kind), context);
  return false;
}

void Parser::skipToDeclaration() {
  while (!tok.is(Tok::Eof) &&
         !(tok.atLineStart && (tok.is(Tok::KwModel) || tok.is(Tok::KwBlock) ||
                               tok.is(Tok::KwImport))))
    consume();
}

void Parser::synchronize() {
  while (!tok.is(Tok::Eof) && !tok.atLineStart && !tok.is(Tok::RBrace))
    consume();
}

/// file := (import | block)*
std::unique_ptr<SourceFile> Parser::parseFile(llvm::StringRef path,
                                              llvm::StringRef moduleName) {
  auto file = std::make_unique<SourceFile>();
  file->path = path.str();
  file->moduleName = moduleName.str();
  while (!tok.is(Tok::Eof)) {
    if (diags.errorCount() >= DiagnosticEngine::kMaxErrors)
      break;
    if (tok.is(Tok::KwImport)) {
      if (!parseImport(*file))
        skipToDeclaration();
      continue;
    }
    if (tok.is(Tok::KwModel) || tok.is(Tok::KwBlock)) {
      if (auto block = parseBlock()) {
        block->moduleName = file->moduleName;
        file->blocks.push_back(std::move(block));
      } else {
        skipToDeclaration();
      }
      continue;
    }
    errorExpected("'import', 'model' or 'block'", "at top level");
    consume();
    skipToDeclaration();
  }
  return file;
}

/// import := 'import' IDENT
bool Parser::parseImport(SourceFile &file) {
  consume();
  if (!tok.is(Tok::Ident)) {
    errorExpected("a library name", "after 'import'");
    return false;
  }
  file.imports.push_back({tok.text.str(), tok.loc()});
  consume();
  return true;
}

/// block := ('model' | 'block') IDENT ('(' config (',' config)* ')')?
///          '{' member* '}'
std::unique_ptr<BlockDecl> Parser::parseBlock() {
  auto block = std::make_unique<BlockDecl>();
  block->isModel = tok.is(Tok::KwModel);
  const char *what = block->isModel ? "after 'model'" : "after 'block'";
  consume();
  if (!tok.is(Tok::Ident)) {
    errorExpected("a name", what);
    return nullptr;
  }
  block->name = tok.text.str();
  block->loc = tok.loc();
  consume();
  if (consumeIf(Tok::LParen) && !consumeIf(Tok::RParen)) {
    do {
      if (!parseConfigParam(*block))
        return nullptr;
    } while (consumeIf(Tok::Comma));
    if (!expect(Tok::RParen, "to close the configuration list"))
      return nullptr;
  }
  if (!expect(Tok::LBrace, "to open the body of '" + block->name + "'")) {
    return nullptr;
  }
  parseBody(block->body, /*inBlock=*/true);
  return block;
}

/// config := IDENT ('=' expr)?
bool Parser::parseConfigParam(BlockDecl &block) {
  if (!tok.is(Tok::Ident)) {
    errorExpected("a configuration name", "in '" + block.name + "(...)'");
    return false;
  }
  ConfigParam param;
  param.name = tok.text.str();
  param.loc = tok.loc();
  consume();
  if (consumeIf(Tok::Assign)) {
    param.defaultValue = parseExpr();
    if (!param.defaultValue)
      return false;
  }
  block.config.push_back(std::move(param));
  return true;
}

/// body := (member | stmt)* '}'
void Parser::parseBody(std::vector<StmtPtr> &body, bool inBlock) {
  // Bodies nest (fn, if); `depth` counts them with the expressions.
  ++depth;
  llvm::scope_exit restore([&] { --depth; });
  while (!tok.is(Tok::RBrace)) {
    // A declaration at the start of a line means the body was not closed.
    if (tok.is(Tok::Eof) ||
        (tok.atLineStart && (tok.is(Tok::KwModel) || tok.is(Tok::KwBlock) ||
                             tok.is(Tok::KwImport)))) {
      // Every enclosing body ends here too; only the outermost (the block's)
      // reports it, once.
      if (depth == 1)
        errorExpected("'}'", "to close the body");
      return;
    }
    if (diags.errorCount() >= DiagnosticEngine::kMaxErrors)
      return;
    const char *start = tok.text.data();
    StmtPtr stmt = inBlock ? parseMember() : parseStatement();
    if (stmt) {
      body.push_back(std::move(stmt));
      continue;
    }
    // Skip at least one token, then to the next line or closing brace.
    if (tok.text.data() == start && !tok.is(Tok::Eof))
      consume();
    synchronize();
  }
  consume();
}

/// member := 'let' ... | 'param' ... | 'fn' ... | 'if' ... | IDENT '=' sub
StmtPtr Parser::parseMember() {
  switch (tok.kind) {
  case Tok::KwLet:
    return parseLet();
  case Tok::KwParam:
    return parseParam();
  case Tok::KwFn:
    return parseFn();
  case Tok::KwIf:
    return parseIf(/*inBlock=*/true);
  case Tok::Ident:
    return parseSub();
  default:
    errorExpected("'param', 'let', 'fn', 'if' or a sub-block", "in a block");
    return nullptr;
  }
}

/// stmt := 'let' ... | 'return' ... | 'if' ...
StmtPtr Parser::parseStatement() {
  switch (tok.kind) {
  case Tok::KwLet:
    return parseLet();
  case Tok::KwReturn:
    return parseReturn();
  case Tok::KwIf:
    return parseIf(/*inBlock=*/false);
  default:
    errorExpected("'let', 'return' or 'if'", "in a function body");
    return nullptr;
  }
}

/// let := 'let' IDENT (',' IDENT)* '=' expr
StmtPtr Parser::parseLet() {
  SMLoc start = tok.loc();
  consume();
  std::vector<std::string> names;
  std::vector<SMLoc> locs;
  do {
    if (!tok.is(Tok::Ident)) {
      errorExpected("a name", "after 'let'");
      return nullptr;
    }
    names.push_back(tok.text.str());
    locs.push_back(tok.loc());
    consume();
  } while (consumeIf(Tok::Comma));
  if (!expect(Tok::Assign, "after the name in 'let'"))
    return nullptr;
  ExprPtr value = parseExpr();
  if (!value)
    return nullptr;
  return std::make_unique<LetStmt>(rangeFrom(start), std::move(names),
                                   std::move(locs), std::move(value));
}

/// return := 'return' expr (',' expr)*
StmtPtr Parser::parseReturn() {
  SMLoc start = tok.loc();
  consume();
  std::vector<ExprPtr> values;
  do {
    ExprPtr value = parseExpr();
    if (!value)
      return nullptr;
    values.push_back(std::move(value));
  } while (consumeIf(Tok::Comma));
  return std::make_unique<ReturnStmt>(rangeFrom(start), std::move(values));
}

/// if := 'if' expr '{' body '}' ('else' (if | '{' body '}'))?
StmtPtr Parser::parseIf(bool inBlock) {
  SMLoc start = tok.loc();
  if (depth >= kMaxDepth) {
    diags.error(start, "'if' nested too deeply");
    // Skip the whole statement, else branches included, without recursing.
    do {
      int open = 0;
      while (!tok.is(Tok::Eof)) {
        bool closes = tok.is(Tok::RBrace) && --open <= 0;
        open += tok.is(Tok::LBrace);
        consume();
        if (closes)
          break;
      }
    } while (consumeIf(Tok::KwElse));
    return nullptr;
  }
  consume();
  ExprPtr cond = parseExpr();
  if (!cond)
    return nullptr;
  if (!expect(Tok::LBrace, "after the condition of 'if'"))
    return nullptr;
  std::vector<StmtPtr> thenBody, elseBody;
  parseBody(thenBody, inBlock);
  if (consumeIf(Tok::KwElse)) {
    if (tok.is(Tok::KwIf)) {
      if (StmtPtr nested = parseIf(inBlock))
        elseBody.push_back(std::move(nested));
      else
        return nullptr;
    } else {
      if (!expect(Tok::LBrace, "after 'else'"))
        return nullptr;
      parseBody(elseBody, inBlock);
    }
  }
  return std::make_unique<IfStmt>(rangeFrom(start), std::move(cond),
                                  std::move(thenBody), std::move(elseBody));
}

/// param := 'param' IDENT ':' type ('=' expr)?
StmtPtr Parser::parseParam() {
  SMLoc start = tok.loc();
  consume();
  if (!tok.is(Tok::Ident)) {
    errorExpected("a parameter name", "after 'param'");
    return nullptr;
  }
  std::string name = tok.text.str();
  consume();
  if (!expect(Tok::Colon, "after the parameter name"))
    return nullptr;
  std::unique_ptr<TypeAnnot> type = parseType();
  if (!type)
    return nullptr;
  ExprPtr init;
  if (consumeIf(Tok::Assign)) {
    init = parseExpr();
    if (!init)
      return nullptr;
  }
  return std::make_unique<ParamStmt>(rangeFrom(start), name, std::move(*type),
                                     std::move(init));
}

/// sub := IDENT '=' ('repeat' '(' expr (',' 'shared' '=' expr)? ')')?
///        callee '(' args ')'
StmtPtr Parser::parseSub() {
  SMLoc start = tok.loc();
  std::string name = tok.text.str();
  consume();
  if (!expect(Tok::Assign,
              "after '" + name + "' (a sub-block: name = Block(...))"))
    return nullptr;
  ExprPtr repeat, shared;
  if (consumeIf(Tok::KwRepeat)) {
    if (!expect(Tok::LParen, "after 'repeat'"))
      return nullptr;
    repeat = parseExpr();
    if (!repeat)
      return nullptr;
    if (consumeIf(Tok::Comma)) {
      if (!tok.is(Tok::Ident) || tok.text != "shared") {
        diags.error(tok.loc(), "expected 'shared = ...' after the repeat "
                               "count");
        return nullptr;
      }
      consume();
      if (!expect(Tok::Assign, "after 'shared'"))
        return nullptr;
      shared = parseExpr();
      if (!shared)
        return nullptr;
    }
    if (!expect(Tok::RParen, "after the repeat count"))
      return nullptr;
  }
  SMLoc ctorStart = tok.loc();
  ExprPtr ctor = parsePostfix();
  if (!ctor)
    return nullptr;
  if (!llvm::isa<CallExpr>(ctor.get())) {
    diags.error(ctorStart,
                "expected a block constructor such as "
                "'nn.Linear(d, d)' for '" +
                    name + "'",
                ctor->getRange());
    return nullptr;
  }
  std::unique_ptr<CallExpr> call(llvm::cast<CallExpr>(ctor.release()));
  return std::make_unique<SubStmt>(rangeFrom(start), name, std::move(repeat),
                                   std::move(shared), std::move(call));
}

/// fn := 'fn' IDENT '(' (IDENT (':' type)? ('=' expr)?) % ',' ')'
///       ('->' (type | '(' type % ',' ')'))? '{' stmt* '}'
StmtPtr Parser::parseFn() {
  SMLoc start = tok.loc();
  consume();
  if (!tok.is(Tok::Ident)) {
    errorExpected("a function name", "after 'fn'");
    return nullptr;
  }
  std::string name = tok.text.str();
  consume();
  if (!expect(Tok::LParen, "after the function name"))
    return nullptr;
  std::vector<FnParam> params;
  if (!consumeIf(Tok::RParen)) {
    do {
      if (!tok.is(Tok::Ident)) {
        errorExpected("a parameter name",
                      "in the parameter list of '" + name + "'");
        return nullptr;
      }
      FnParam param;
      param.name = tok.text.str();
      param.loc = tok.loc();
      consume();
      if (consumeIf(Tok::Colon)) {
        param.type = parseType();
        if (!param.type)
          return nullptr;
      }
      if (consumeIf(Tok::Assign)) {
        param.defaultValue = parseExpr();
        if (!param.defaultValue)
          return nullptr;
      }
      params.push_back(std::move(param));
    } while (consumeIf(Tok::Comma));
    if (!expect(Tok::RParen, "to close the parameter list"))
      return nullptr;
  }
  std::vector<std::unique_ptr<TypeAnnot>> results;
  if (consumeIf(Tok::Arrow)) {
    if (consumeIf(Tok::LParen)) {
      do {
        auto type = parseType();
        if (!type)
          return nullptr;
        results.push_back(std::move(type));
      } while (consumeIf(Tok::Comma));
      if (!expect(Tok::RParen, "to close the result types"))
        return nullptr;
    } else {
      auto type = parseType();
      if (!type)
        return nullptr;
      results.push_back(std::move(type));
    }
  }
  if (!expect(Tok::LBrace, "to open the body of '" + name + "'"))
    return nullptr;
  std::vector<StmtPtr> body;
  parseBody(body, /*inBlock=*/false);
  return std::make_unique<FnStmt>(rangeFrom(start), name, std::move(params),
                                  std::move(results), std::move(body));
}

/// type := IDENT ('[' (dim (',' dim)*)? ']')?    dim := '...' | expr
std::unique_ptr<TypeAnnot> Parser::parseType() {
  if (!tok.is(Tok::Ident)) {
    errorExpected("a type such as 'f32[B, T]'", "");
    return nullptr;
  }
  auto type = std::make_unique<TypeAnnot>();
  SMLoc start = tok.loc();
  type->dtype = tok.text.str();
  type->dtypeLoc = tok.loc();
  consume();
  if (consumeIf(Tok::LBracket)) {
    type->hasShape = true;
    if (!consumeIf(Tok::RBracket)) {
      do {
        if (consumeIf(Tok::Ellipsis)) {
          type->dims.push_back(nullptr);
          continue;
        }
        ExprPtr dim = parseExpr();
        if (!dim)
          return nullptr;
        type->dims.push_back(std::move(dim));
      } while (consumeIf(Tok::Comma));
      if (!expect(Tok::RBracket, "to close the shape"))
        return nullptr;
    }
  }
  type->range = rangeFrom(start);
  return type;
}

//===----------------------------------------------------------------------===//
// Expressions
//===----------------------------------------------------------------------===//

namespace {
struct BinaryInfo {
  int precedence; // 0: not a binary operator
  BinaryOp op;
};
} // namespace

static BinaryInfo binaryInfo(Tok kind) {
  switch (kind) {
  case Tok::OrOr:
    return {1, BinaryOp::Or};
  case Tok::AndAnd:
    return {2, BinaryOp::And};
  case Tok::EqEq:
    return {3, BinaryOp::Eq};
  case Tok::NotEq:
    return {3, BinaryOp::Ne};
  case Tok::Less:
    return {3, BinaryOp::Lt};
  case Tok::LessEq:
    return {3, BinaryOp::Le};
  case Tok::Greater:
    return {3, BinaryOp::Gt};
  case Tok::GreaterEq:
    return {3, BinaryOp::Ge};
  case Tok::Plus:
    return {4, BinaryOp::Add};
  case Tok::Minus:
    return {4, BinaryOp::Sub};
  case Tok::Star:
    return {5, BinaryOp::Mul};
  case Tok::Slash:
    return {5, BinaryOp::Div};
  case Tok::Percent:
    return {5, BinaryOp::Mod};
  case Tok::At:
    return {5, BinaryOp::MatMul};
  default:
    return {0, BinaryOp::Add};
  }
}

/// expr := unary (binop unary)*   (precedence climbing, left associative)
ExprPtr Parser::parseExpr() {
  if (++depth > kMaxDepth) {
    diags.error(tok.loc(), "expression nested too deeply");
    --depth;
    return nullptr;
  }
  llvm::scope_exit restore([&] { --depth; });
  return parseBinary(1);
}

ExprPtr Parser::parseBinary(int minPrecedence) {
  SMLoc start = tok.loc();
  ExprPtr lhs = parseUnary();
  if (!lhs)
    return nullptr;
  // Each operator nests the tree one level deeper on the left; count it so
  // that `x + x + ... + x` cannot overflow the stack later.
  unsigned chained = 0;
  llvm::scope_exit restore([&] { depth -= chained; });
  while (true) {
    BinaryInfo info = binaryInfo(tok.kind);
    if (info.precedence == 0 || info.precedence < minPrecedence)
      return lhs;
    SMLoc opLoc = tok.loc();
    if (depth >= kMaxDepth) {
      diags.error(opLoc, "expression nested too deeply");
      return nullptr;
    }
    ++depth;
    ++chained;
    consume();
    ExprPtr rhs = parseBinary(info.precedence + 1);
    if (!rhs)
      return nullptr;
    lhs = std::make_unique<BinaryExpr>(rangeFrom(start), info.op, opLoc,
                                       std::move(lhs), std::move(rhs));
  }
}

/// unary := ('-' | '!') unary | postfix
ExprPtr Parser::parseUnary() {
  SMLoc start = tok.loc();
  if (tok.is(Tok::Minus) || tok.is(Tok::Bang)) {
    UnaryOp op = tok.is(Tok::Minus) ? UnaryOp::Neg : UnaryOp::Not;
    consume();
    if (++depth > kMaxDepth) {
      diags.error(tok.loc(), "expression nested too deeply");
      --depth;
      return nullptr;
    }
    ExprPtr operand = parseUnary();
    --depth;
    if (!operand)
      return nullptr;
    return std::make_unique<UnaryExpr>(rangeFrom(start), op,
                                       std::move(operand));
  }
  return parsePostfix();
}

/// postfix := primary ('(' args ')' | '.' IDENT | '[' expr ']')*
ExprPtr Parser::parsePostfix() {
  SMLoc start = tok.loc();
  ExprPtr expr = parsePrimary();
  if (!expr)
    return nullptr;
  // Like binary operators, each call, member or index nests one level.
  unsigned chained = 0;
  llvm::scope_exit restore([&] { depth -= chained; });
  while (true) {
    if (tok.is(Tok::LParen) || tok.is(Tok::Dot) || tok.is(Tok::LBracket)) {
      if (depth >= kMaxDepth) {
        diags.error(tok.loc(), "expression nested too deeply");
        return nullptr;
      }
      ++depth;
      ++chained;
    }
    if (consumeIf(Tok::LParen)) {
      std::vector<Arg> args;
      if (!parseArgs(args))
        return nullptr;
      expr = std::make_unique<CallExpr>(rangeFrom(start), std::move(expr),
                                        std::move(args));
    } else if (consumeIf(Tok::Dot)) {
      if (!tok.is(Tok::Ident)) {
        errorExpected("a member name", "after '.'");
        return nullptr;
      }
      std::string name = tok.text.str();
      SMLoc nameLoc = tok.loc();
      consume();
      expr = std::make_unique<MemberExpr>(rangeFrom(start), std::move(expr),
                                          name, nameLoc);
    } else if (consumeIf(Tok::LBracket)) {
      ExprPtr index = parseExpr();
      if (!index || !expect(Tok::RBracket, "after the index"))
        return nullptr;
      expr = std::make_unique<IndexExpr>(rangeFrom(start), std::move(expr),
                                         std::move(index));
    } else {
      return expr;
    }
  }
}

/// args := (arg (',' arg)*)? ')'     arg := (IDENT '=')? expr
bool Parser::parseArgs(std::vector<Arg> &args) {
  if (consumeIf(Tok::RParen))
    return true;
  do {
    Arg arg;
    if (tok.is(Tok::Ident) && peek().is(Tok::Assign)) {
      arg.name = tok.text.str();
      arg.nameLoc = tok.loc();
      consume();
      consume();
    }
    arg.value = parseExpr();
    if (!arg.value)
      return false;
    args.push_back(std::move(arg));
  } while (consumeIf(Tok::Comma));
  return expect(Tok::RParen, "to close the argument list");
}

/// primary := INT | FLOAT | STRING | 'true' | 'false' | IDENT | '(' expr ')'
///          | '[' (expr (',' expr)*)? ']'
ExprPtr Parser::parsePrimary() {
  Token t = tok;
  switch (t.kind) {
  case Tok::Int: {
    consume();
    int64_t value = 0;
    if (t.text.getAsInteger(10, value)) {
      diags.error(t.loc(),
                  "integer literal '" + t.text + "' does not fit in 64 bits",
                  t.range());
      return nullptr;
    }
    return std::make_unique<IntExpr>(t.range(), value);
  }
  case Tok::Float: {
    consume();
    double value = 0;
    if (t.text.getAsDouble(value)) {
      diags.error(t.loc(), "malformed number '" + t.text + "'", t.range());
      return nullptr;
    }
    return std::make_unique<FloatExpr>(t.range(), value);
  }
  case Tok::String:
    consume();
    return std::make_unique<StringExpr>(t.range(),
                                        t.text.drop_front().drop_back());
  case Tok::KwTrue:
  case Tok::KwFalse:
    consume();
    return std::make_unique<BoolExpr>(t.range(), t.is(Tok::KwTrue));
  case Tok::Ident:
    consume();
    return std::make_unique<NameExpr>(t.range(), t.text);
  case Tok::LBracket: {
    consume();
    std::vector<ExprPtr> elements;
    if (!consumeIf(Tok::RBracket)) {
      do {
        ExprPtr element = parseExpr();
        if (!element)
          return nullptr;
        elements.push_back(std::move(element));
      } while (consumeIf(Tok::Comma));
      if (!expect(Tok::RBracket, "to close the list"))
        return nullptr;
    }
    return std::make_unique<ListExpr>(rangeFrom(t.loc()), std::move(elements));
  }
  case Tok::LParen: {
    consume();
    ExprPtr inner = parseExpr();
    if (!inner || !expect(Tok::RParen, "to close the parenthesis"))
      return nullptr;
    return inner;
  }
  default:
    errorExpected("an expression", "");
    return nullptr;
  }
}
