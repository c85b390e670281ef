// Judging the Python globals a pickle imports. Internal.
//
// The allow-list (REFERENCE.md, "Model file formats") is what model data
// needs; everything else is at least medium. The deny-list only raises the
// severity: critical for code execution and file or network access.
#pragma once

#include <string>
#include <string_view>

#include "scanner/scanner.h"

namespace sigil::scanner {

enum class PickleKind {
  kGeneric,      // plain pickle, torch.save data, NumPy object arrays
  kTorchScript,  // pickles inside a TorchScript archive
};

struct Judgement {
  bool allowed = false;
  Severity severity = Severity::kMedium;
  std::string reason;
};

// Python 2 names that Python 3's unpickler maps (fix_imports), so that
// "__builtin__" is judged as "builtins". Returns the module unchanged
// otherwise.
std::string CanonicalModule(std::string_view module);

// Judges module + "." + name, where name may be dotted (attribute lookup).
Judgement JudgeGlobal(std::string_view module, std::string_view name, PickleKind kind);

// True for a dotted identifier Python could import: [A-Za-z_][A-Za-z0-9_]*
// segments (non-ASCII letters allowed), no empty segment.
bool IsDottedIdentifier(std::string_view s);

}  // namespace sigil::scanner
