// State shared by the analyzers while one file is scanned: options, the
// findings collected so far, the deadline, and where inside the file (which
// archive member, how deeply nested) the current analyzer is. Internal.
#pragma once

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "scanner/scanner.h"
#include "scanner/source.h"

namespace sigil::scanner {

struct ScanState {
  explicit ScanState(const ScanOptions& o)
      : options(o),
        deadline(std::chrono::steady_clock::now() + std::chrono::milliseconds(o.time_limit_ms)) {}

  const ScanOptions& options;
  std::chrono::steady_clock::time_point deadline;
  std::vector<Finding> findings;
  size_t dropped_findings = 0;
  Severity dropped_max = Severity::kInfo;
  bool dropped_malformed = false;
  std::set<std::string> globals;
  std::vector<std::string> torchscript_code;
  std::vector<ExternalData> external_data;
  std::vector<TensorLayout> tensors;
  bool tensors_truncated = false;
  uint64_t inflated_total = 0;
  bool timed_out = false;

  void Drop(Severity s, bool malformed) {
    ++dropped_findings;
    if (s > dropped_max) dropped_max = s;
    dropped_malformed = dropped_malformed || malformed;
  }
};

// A view of ScanState for one place in the file: findings added through it
// carry its location.
class Context {
 public:
  Context(ScanState& state, std::string location, int depth)
      : state_(state), location_(std::move(location)), depth_(depth) {}

  // A context for a member of the current archive.
  Context Member(const std::string& name) const {
    return Context(state_, location_.empty() ? name : location_ + "!" + name, depth_ + 1);
  }

  const ScanOptions& options() const { return state_.options; }
  ScanState& state() const { return state_; }
  const std::string& location() const { return location_; }
  int depth() const { return depth_; }

  void Add(Severity severity, std::string rule, std::string message, uint64_t offset,
           std::string global = {}) const {
    Push(severity, std::move(rule), std::move(message), offset, std::move(global), false);
  }
  // A malformed-file finding (the verdict becomes invalid unless blocked).
  void Malformed(std::string rule, std::string message, uint64_t offset) const {
    Push(Severity::kMedium, std::move(rule), std::move(message), offset, {}, true);
  }

  // Tensor positions are absolute in the scanned file, so only the file
  // itself lists tensors, never a member of an archive (nor the zip view of
  // a polyglot).
  bool ListsTensors() const { return location_.empty(); }
  // Tensors that can still be listed before max_tensors.
  size_t TensorRoom() const {
    size_t max = state_.options.max_tensors;
    return state_.tensors.size() < max ? max - state_.tensors.size() : 0;
  }
  // Lists a tensor of the file; past max_tensors, notes once that the list
  // is incomplete. REQUIRES: ListsTensors().
  void AddTensor(TensorLayout t) const {
    if (TensorRoom() > 0) {
      state_.tensors.push_back(std::move(t));
    } else {
      TensorsTruncated();
    }
  }
  void TensorsTruncated() const {
    if (state_.tensors_truncated) return;
    state_.tensors_truncated = true;
    Add(Severity::kInfo, "tensors.truncated",
        "more tensors than max_tensors; the tensor list is incomplete", 0);
  }

  // True once the time budget is spent; records the finding once.
  bool OutOfTime() const {
    if (state_.timed_out) return true;
    if (std::chrono::steady_clock::now() < state_.deadline) return false;
    state_.timed_out = true;
    Malformed("limit.time", "scan time limit reached; the file was not fully analysed", 0);
    return true;
  }

 private:
  void Push(Severity severity, std::string rule, std::string message, uint64_t offset,
            std::string global, bool malformed) const {
    if (state_.findings.size() >= state_.options.max_findings) {
      state_.Drop(severity, malformed);
      return;
    }
    Finding f;
    f.severity = severity;
    f.rule = std::move(rule);
    f.message = std::move(message);
    f.location = location_;
    f.offset = offset;
    f.global = std::move(global);
    f.malformed = malformed;
    state_.findings.push_back(std::move(f));
  }

  ScanState& state_;
  std::string location_;
  int depth_;
};

// Analyzers (each in its own .cc). `src` is the whole file or member.
void AnalyzeSafetensors(const ByteSource& src, const Context& ctx);
void AnalyzeGguf(const ByteSource& src, const Context& ctx);
void AnalyzeNumpy(const ByteSource& src, const Context& ctx);
void AnalyzeOnnx(const ByteSource& src, const Context& ctx);
void AnalyzeKerasConfig(const ByteSource& src, const Context& ctx);
// Archives: returns kTorchZip, kTorchScript, kNumpyZip, kKeras or kZip.
Format AnalyzeZip(const ByteSource& src, const Context& ctx);
// True when the end of the data holds a zip end record pointing at a
// central directory: zip readers that search from the end (Python's
// zipfile, Keras) see an archive whatever the first bytes are.
bool HasZipDirectory(const ByteSource& src);
// Returns kTorchLegacy (tar layout) or kTar.
Format AnalyzeTar(const ByteSource& src, const Context& ctx);
// A first 512-byte block with a valid tar checksum.
bool LooksLikeTar(const ByteSource& src);
// Dispatches on the detected format; returns it. Used for files and for
// archive members alike.
Format AnalyzeAny(const ByteSource& src, const Context& ctx);

// Format detection by content only. SniffPrefix looks at the first bytes of
// data (magic numbers and header sanity only);
// Sniff reads what it needs from the source and also recognises ONNX and
// Keras configs, which need more than a prefix.
// ONNX has no magic number: true when the file parses as a protobuf
// ModelProto (ir_version, then a graph) to its last byte.
bool LooksLikeOnnx(const ByteSource& src);
Format SniffPrefix(std::string_view prefix);
Format Sniff(const ByteSource& src, const ScanOptions& options);
constexpr size_t kSniffBytes = 4096;

}  // namespace sigil::scanner
