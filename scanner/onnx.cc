// ONNX: a minimal protobuf walk over ModelProto that visits every
// TensorProto (graph initializers, node attributes, subgraphs, functions,
// training graphs) to find external_data references. Raw tensor bytes are
// skipped, never read.
#include <string>

#include "scanner/context.h"

namespace sigil::scanner {
namespace {

enum class Msg { kModel, kGraph, kNode, kAttribute, kTensor, kSparse, kFunction, kTraining, kEntry };

// Which fields of which message hold which submessages (onnx.proto3).
bool Child(Msg parent, uint64_t field, Msg* child) {
  switch (parent) {
    case Msg::kModel:
      if (field == 7) return *child = Msg::kGraph, true;
      if (field == 20) return *child = Msg::kTraining, true;
      if (field == 25) return *child = Msg::kFunction, true;
      return false;
    case Msg::kTraining:
      if (field == 1 || field == 2) return *child = Msg::kGraph, true;
      return false;
    case Msg::kGraph:
      if (field == 1) return *child = Msg::kNode, true;
      if (field == 5) return *child = Msg::kTensor, true;
      if (field == 15) return *child = Msg::kSparse, true;
      return false;
    case Msg::kFunction:
      if (field == 7) return *child = Msg::kNode, true;
      return false;
    case Msg::kNode:
      if (field == 5) return *child = Msg::kAttribute, true;
      return false;
    case Msg::kAttribute:
      if (field == 5 || field == 10) return *child = Msg::kTensor, true;
      if (field == 6 || field == 11) return *child = Msg::kGraph, true;
      if (field == 22 || field == 23) return *child = Msg::kSparse, true;
      return false;
    case Msg::kSparse:
      if (field == 1 || field == 2) return *child = Msg::kTensor, true;
      return false;
    case Msg::kTensor:
      if (field == 13) return *child = Msg::kEntry, true;
      return false;
    case Msg::kEntry:
      return false;
  }
  return false;
}

bool ReadVarint(Cursor& c, uint64_t* v) {
  uint64_t r = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    uint8_t b = 0;
    if (!c.ReadU8(&b)) return false;
    r |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *v = r;
      return true;
    }
  }
  return false;
}

// Skips a field's value; false on a bad wire type or truncation.
bool SkipValue(Cursor& c, uint64_t wire, uint64_t* length = nullptr) {
  uint64_t v = 0;
  switch (wire) {
    case 0: return ReadVarint(c, &v);
    case 1: return c.Skip(8);
    case 5: return c.Skip(4);
    case 2:
      if (!ReadVarint(c, &v) || v > c.remaining()) return false;
      if (length != nullptr) *length = v;
      return c.Skip(v);
    default: return false;
  }
}

std::string UnsafeLocation(const std::string& loc) {
  if (loc.empty()) return "is empty";
  for (char ch : loc) {
    if (static_cast<unsigned char>(ch) < 0x20) return "holds a control character";
  }
  if (loc[0] == '/' || loc[0] == '\\') return "is an absolute path";
  if (loc.size() >= 2 && loc[1] == ':') return "is a drive-letter path";
  if (loc.find("://") != std::string::npos) return "is a URL";
  size_t start = 0;
  while (start <= loc.size()) {
    size_t end = loc.find_first_of("/\\", start);
    if (end == std::string::npos) end = loc.size();
    if (loc.compare(start, end - start, "..") == 0 && end - start == 2) {
      return "climbs out of the model directory with '..'";
    }
    start = end + 1;
  }
  return {};
}

bool ParseU64(const std::string& s, uint64_t* v) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t r = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    if (__builtin_mul_overflow(r, 10u, &r) || __builtin_add_overflow(r, static_cast<uint64_t>(c - '0'), &r)) {
      return false;
    }
  }
  *v = r;
  return true;
}

class OnnxWalker {
 public:
  OnnxWalker(const ByteSource& src, const Context& ctx) : c_(src), ctx_(ctx) {}

  void Run() {
    if (!Message(c_.end(), Msg::kModel, 0) && !failed_) {
      ctx_.Malformed("onnx.malformed", "protobuf structure is broken", c_.pos());
    }
  }

 private:
  struct Entry {
    std::string key;
    std::string value;
  };

  bool Fail(const std::string& rule, const std::string& message) {
    if (!failed_) ctx_.Malformed(rule, message, c_.pos());
    failed_ = true;
    return false;
  }

  bool Message(uint64_t end, Msg type, int depth, Entry* entry = nullptr) {
    if (depth > ctx_.options().max_onnx_depth) return Fail("limit.onnx_depth", "model nested too deeply");
    ExternalData ext;
    bool has_location = false;
    bool bad_field = false;
    while (c_.pos() < end) {
      if ((++fields_ & 0xfff) == 0 && ctx_.OutOfTime()) return Fail("limit.time", "time limit");
      uint64_t tag = 0;
      if (!ReadVarint(c_, &tag)) return false;
      uint64_t field = tag >> 3;
      uint64_t wire = tag & 7;
      Msg child;
      if (wire == 2 && Child(type, field, &child)) {
        uint64_t len = 0;
        if (!ReadVarint(c_, &len) || len > end - c_.pos()) return false;
        Entry e;
        if (!Message(c_.pos() + len, child, depth + 1, child == Msg::kEntry ? &e : nullptr)) return false;
        if (child == Msg::kEntry) {
          if (e.key == "location") {
            ext.location = e.value;
            has_location = true;
          } else if (e.key == "offset") {
            bad_field = bad_field || !ParseU64(e.value, &ext.offset);
          } else if (e.key == "length") {
            bad_field = bad_field || !ParseU64(e.value, &ext.length);
            ext.has_length = true;
          }
        }
        continue;
      }
      if (type == Msg::kEntry && wire == 2 && (field == 1 || field == 2)) {
        uint64_t len = 0;
        if (!ReadVarint(c_, &len) || len > end - c_.pos() || len > 1 << 16) return false;
        std::string s;
        if (!c_.ReadBytes(len, &s)) return false;
        (field == 1 ? entry->key : entry->value) = std::move(s);
        continue;
      }
      if (!SkipValue(c_, wire) || c_.pos() > end) return false;
    }
    if (c_.pos() != end) return false;
    if (type == Msg::kTensor && has_location) {
      if (bad_field) return Fail("onnx.malformed", "external data offset or length is not a number");
      std::string why = UnsafeLocation(ext.location);
      if (!why.empty()) {
        ctx_.Add(Severity::kHigh, "onnx.external_path",
                 "external data location '" + ext.location + "' " + why, c_.pos());
      } else {
        auto& list = ctx_.state().external_data;
        if (list.size() < 100000) list.push_back(ext);
      }
    }
    return true;
  }

  Cursor c_;
  const Context& ctx_;
  uint64_t fields_ = 0;
  bool failed_ = false;
};

}  // namespace

bool LooksLikeOnnx(const ByteSource& src) {
  Cursor c(src);
  uint64_t tag = 0;
  uint64_t ir_version = 0;
  if (!ReadVarint(c, &tag) || tag != 0x08 || !ReadVarint(c, &ir_version) || ir_version == 0 ||
      ir_version > 100) {
    return false;
  }
  bool graph = false;
  for (int fields = 0; !c.AtEnd(); ++fields) {
    if (fields > 100000 || !ReadVarint(c, &tag)) return false;
    uint64_t wire = tag & 7;
    if ((tag >> 3) == 0 || !SkipValue(c, wire)) return false;
    if ((tag >> 3) == 7 && wire == 2) graph = true;
  }
  return graph;
}

void AnalyzeOnnx(const ByteSource& src, const Context& ctx) { OnnxWalker(src, ctx).Run(); }

}  // namespace sigil::scanner
