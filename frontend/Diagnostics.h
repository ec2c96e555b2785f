//===- Diagnostics.h - Source diagnostics of the Loom language --*- C++ -*-===//
//
// Every frontend error goes through `DiagnosticEngine`: `file:line:col:
// error: message`, the source line, a caret under the culprit, then notes.
// Sources live in one llvm::SourceMgr so MLIR locations can point back.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_FRONTEND_DIAGNOSTICS_H
#define LOOM_FRONTEND_DIAGNOSTICS_H

#include "llvm/ADT/StringRef.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/SMLoc.h"

namespace llvm {
class SourceMgr;
class raw_ostream;
} // namespace llvm

namespace loom::frontend {

class DiagnosticEngine {
public:
  DiagnosticEngine(llvm::SourceMgr &sourceMgr, llvm::raw_ostream &os)
      : sourceMgr(sourceMgr), os(os) {}

  /// Reports an error at `loc`, with `range` underlined (empty: a caret).
  void error(llvm::SMLoc loc, const llvm::Twine &message,
             llvm::SMRange range = {});
  void note(llvm::SMLoc loc, const llvm::Twine &message);
  void warning(llvm::SMLoc loc, const llvm::Twine &message);

  unsigned errorCount() const { return errors; }
  bool hadError() const { return errors != 0; }
  /// Once this many errors are reported, later ones are dropped.
  static constexpr unsigned kMaxErrors = 50;

  llvm::SourceMgr &getSourceMgr() { return sourceMgr; }

  /// `file:line:col` of a location, for messages that mention another place.
  std::string describe(llvm::SMLoc loc) const;

private:
  llvm::SourceMgr &sourceMgr;
  llvm::raw_ostream &os;
  unsigned errors = 0;
};

} // namespace loom::frontend

#endif // LOOM_FRONTEND_DIAGNOSTICS_H
