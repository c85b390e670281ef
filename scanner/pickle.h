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
  // Rebuild and name at most this many tensors of the first pickle (0:
  // none); see PickleOutcome::tensors.
  size_t max_tensors = 0;
};

// A tensor that torch._utils._rebuild_tensor_v2 rebuilds:
// _rebuild_tensor_v2(persistent_load(("storage", <storage class>, key,
// location, numel)), storage_offset, shape, stride, ...).
struct PickleTensor {
  std::string storage_class;  // the global, "torch.FloatStorage"
  std::string key;            // the storage's key in the archive
  uint64_t storage_offset = 0;  // in elements
  std::vector<uint64_t> shape;
  std::vector<uint64_t> stride;
};

// A name of a rebuilt tensor: the path from the first pickle's result to
// it. Dict keys (str or int) and object attributes (BUILD state dicts)
// joined with '.'; a result that is a tuple names its items by index; a
// result that is the tensor itself names it "". Tied tensors have several.
struct TensorName {
  std::string name;
  size_t tensor = 0;  // index in PickleOutcome::tensors
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
  // With PickleRun::max_tensors: the tensors rebuilt (at most max_tensors)
  // and their names (at most max_tensors, in dict order); truncated when
  // there were more, or the naming limits were reached.
  std::vector<PickleTensor> tensors;
  std::vector<TensorName> tensor_names;
  bool tensors_truncated = false;
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
