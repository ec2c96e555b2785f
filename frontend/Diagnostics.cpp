//===- Diagnostics.cpp - Source diagnostics of the Loom language ----------===//

#include "frontend/Diagnostics.h"

#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

using namespace loom::frontend;

void DiagnosticEngine::error(llvm::SMLoc loc, const llvm::Twine &message,
                             llvm::SMRange range) {
  ++errors;
  if (errors > kMaxErrors)
    return;
  llvm::SmallVector<llvm::SMRange, 1> ranges;
  if (range.isValid())
    ranges.push_back(range);
  sourceMgr.PrintMessage(os, loc, llvm::SourceMgr::DK_Error, message, ranges);
  if (errors == kMaxErrors)
    os << "error: too many errors; stopping here\n";
}

void DiagnosticEngine::note(llvm::SMLoc loc, const llvm::Twine &message) {
  if (errors > kMaxErrors)
    return;
  sourceMgr.PrintMessage(os, loc, llvm::SourceMgr::DK_Note, message);
}

void DiagnosticEngine::warning(llvm::SMLoc loc, const llvm::Twine &message) {
  sourceMgr.PrintMessage(os, loc, llvm::SourceMgr::DK_Warning, message);
}

std::string DiagnosticEngine::describe(llvm::SMLoc loc) const {
  unsigned buffer = sourceMgr.FindBufferContainingLoc(loc);
  if (!buffer)
    return "<unknown>";
  auto [line, col] = sourceMgr.getLineAndColumn(loc, buffer);
  return (sourceMgr.getMemoryBuffer(buffer)->getBufferIdentifier() + ":" +
          llvm::Twine(line) + ":" + llvm::Twine(col))
      .str();
}
