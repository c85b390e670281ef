// Pickle analysis by simulating the pickle machine (stack, memo, marks,
// frames) without constructing any object. Internal.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "scanner/context.h"
#include "scanner/globals.h"
#include "scanner/source.h"

namespace sigil::scanner {

struct PickleRun {
  PickleKind kind = PickleKind::kGeneric;
  // Stop after this many complete pickles (0: read to the end).
  size_t max_pickles = 0;
  // TorchScript archives: the classes the archive's code/ folder defines
  // ("__torch__.Tiny", "__torch__.torch.nn.modules.linear.Linear"); they are
  // structural, not imports.
  const std::set<std::string>* torchscript_classes = nullptr;
};

struct PickleOutcome {
  size_t pickles = 0;          // complete pickles (STOP reached)
  bool error = false;          // stopped at a parse error or a limit
  bool limit = false;          // the error was a limit, not malformed data
  std::string error_message;
  uint64_t error_offset = 0;
  uint64_t end = 0;            // offset where analysis stopped
  bool legacy_torch_magic = false;  // first pickle is torch's legacy magic number
  bool suspicious = false;     // a finding above info was produced
  std::vector<Finding> findings;
  size_t dropped = 0;  // findings beyond max_findings
  Severity dropped_max = Severity::kInfo;
  std::set<std::string> globals;
};

// Simulates the pickles in [begin, end) of src. Findings are returned, not
// added to ctx, so that a caller trying whether unknown bytes are a pickle
// can drop them; their location is ctx's.
PickleOutcome RunPickles(const ByteSource& src, uint64_t begin, uint64_t end,
                         const PickleRun& run, const Context& ctx);

// Adds an outcome's findings and globals to ctx; a parse error becomes a
// malformed finding, a limit a limit finding.
void RecordPickleOutcome(PickleOutcome outcome, const Context& ctx);

// True when the bytes could open a pickle: PROTO with protocol 0..5, or a
// protocol 0/1 opcode that can start one.
bool LooksLikePickleStart(const ByteSource& src, uint64_t offset);

}  // namespace sigil::scanner
