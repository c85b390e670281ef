// safetensors: u64 header length, a JSON header, then tensor bytes that the
// header's entries must tile exactly. Only the header is read.
#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "scanner/context.h"

namespace sigil::scanner {
namespace {

// Bits per element of each safetensors dtype.
int DtypeBits(const std::string& dtype) {
  static const std::map<std::string, int> kBits = {
      {"BOOL", 8},     {"U8", 8},        {"I8", 8},        {"F8_E5M2", 8}, {"F8_E4M3", 8},
      {"F8_E8M0", 8},  {"I16", 16},      {"U16", 16},      {"F16", 16},    {"BF16", 16},
      {"I32", 32},     {"U32", 32},      {"F32", 32},      {"F64", 64},    {"I64", 64},
      {"U64", 64},     {"C64", 64},      {"F4", 4},        {"F6_E2M3", 6}, {"F6_E3M2", 6},
  };
  auto it = kBits.find(dtype);
  return it == kBits.end() ? 0 : it->second;
}

// Nesting depth outside strings, so a hostile header of a million '[' is
// refused before any parser sees it.
int MaxDepth(const std::string& text) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      deepest = std::max(deepest, ++depth);
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return deepest;
}

bool AsU64(const nlohmann::json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(v.get<int64_t>());
    return true;
  }
  return false;
}

struct Span {
  uint64_t begin;
  uint64_t end;
  std::string name;
  std::string dtype;
  std::vector<uint64_t> shape;
};

}  // namespace

void AnalyzeSafetensors(const ByteSource& src, const Context& ctx) {
  const ScanOptions& opts = ctx.options();
  Cursor c(src);
  uint64_t n = 0;
  if (!c.ReadU64(&n)) {
    ctx.Malformed("safetensors.truncated", "file shorter than the 8-byte header length", 0);
    return;
  }
  if (n > opts.max_safetensors_header) {
    ctx.Malformed("safetensors.header_too_large",
                  "header length " + std::to_string(n) + " exceeds the limit", 0);
    return;
  }
  if (n > src.size() - 8) {
    ctx.Malformed("safetensors.truncated",
                  "header length " + std::to_string(n) + " runs past the end of the file", 0);
    return;
  }
  std::string header;
  if (!c.ReadBytes(n, &header)) return;
  if (header.empty() || header[0] != '{') {
    ctx.Malformed("safetensors.bad_header", "header does not start with '{'", 8);
    return;
  }
  if (MaxDepth(header) > 3) {
    ctx.Malformed("safetensors.bad_header", "header nested deeper than a safetensors header is",
                  8);
    return;
  }
  // Duplicate keys: nlohmann keeps the last, the Rust reader refuses.
  std::vector<std::set<std::string>> keys;
  std::string duplicate;
  auto callback = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) keys.emplace_back();
    if (event == E::object_end && !keys.empty()) keys.pop_back();
    if (event == E::key && !keys.empty() && parsed.is_string()) {
      if (!keys.back().insert(parsed.get<std::string>()).second && duplicate.empty()) {
        duplicate = parsed.get<std::string>();
      }
    }
    return true;
  };
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(header, callback, true);
  } catch (const nlohmann::json::exception& e) {
    ctx.Malformed("safetensors.bad_header", std::string("header is not valid JSON: ") + e.what(), 8);
    return;
  }
  if (!duplicate.empty()) {
    ctx.Malformed("safetensors.duplicate_key", "header repeats the key '" + duplicate + "'", 8);
    return;
  }
  if (!root.is_object()) {
    ctx.Malformed("safetensors.bad_header", "header is not a JSON object", 8);
    return;
  }
  uint64_t data_size = src.size() - 8 - n;
  std::vector<Span> spans;
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& v = it.value();
    if (name == "__metadata__") {
      bool ok = v.is_object();
      if (ok) {
        for (const auto& m : v) ok = ok && m.is_string();
      }
      if (!ok) {
        ctx.Malformed("safetensors.bad_metadata", "__metadata__ must map strings to strings", 8);
        return;
      }
      continue;
    }
    auto bad = [&](const std::string& why) {
      ctx.Malformed("safetensors.bad_entry", "tensor '" + name + "': " + why, 8);
    };
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets")) {
      bad("needs dtype, shape and data_offsets");
      return;
    }
    for (auto f = v.begin(); f != v.end(); ++f) {
      if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets") {
        bad("unknown field '" + f.key() + "'");
        return;
      }
    }
    const auto& dtype = v["dtype"];
    int bits = dtype.is_string() ? DtypeBits(dtype.get<std::string>()) : 0;
    if (bits == 0) {
      ctx.Malformed("safetensors.bad_dtype",
                    "tensor '" + name + "' has unknown dtype " + dtype.dump(), 8);
      return;
    }
    const auto& shape = v["shape"];
    if (!shape.is_array()) {
      bad("shape is not an array");
      return;
    }
    uint64_t elements = 1;
    std::vector<uint64_t> dims;
    for (const auto& d : shape) {
      uint64_t dim = 0;
      if (!AsU64(d, &dim)) {
        bad("shape holds something other than a non-negative integer");
        return;
      }
      dims.push_back(dim);
      if (__builtin_mul_overflow(elements, dim, &elements)) {
        ctx.Malformed("safetensors.shape_overflow",
                      "tensor '" + name + "': shape product overflows 64 bits", 8);
        return;
      }
    }
    uint64_t bit_count = 0;
    if (__builtin_mul_overflow(elements, static_cast<uint64_t>(bits), &bit_count)) {
      ctx.Malformed("safetensors.shape_overflow",
                    "tensor '" + name + "': byte size overflows 64 bits", 8);
      return;
    }
    if (bit_count % 8 != 0) {
      bad("sub-byte dtype with an element count that does not fill whole bytes");
      return;
    }
    const auto& offsets = v["data_offsets"];
    uint64_t b = 0;
    uint64_t e = 0;
    if (!offsets.is_array() || offsets.size() != 2 || !AsU64(offsets[0], &b) ||
        !AsU64(offsets[1], &e)) {
      bad("data_offsets is not two non-negative integers");
      return;
    }
    if (b > e) {
      ctx.Malformed("safetensors.bad_offsets", "tensor '" + name + "' ends before it begins", 8);
      return;
    }
    if (e - b != bit_count / 8) {
      ctx.Malformed("safetensors.size_mismatch",
                    "tensor '" + name + "' spans " + std::to_string(e - b) +
                        " bytes but its dtype and shape need " + std::to_string(bit_count / 8),
                    8);
      return;
    }
    spans.push_back({b, e, name, dtype.get<std::string>(), std::move(dims)});
  }
  std::sort(spans.begin(), spans.end(), [](const Span& x, const Span& y) {
    return x.begin != y.begin ? x.begin < y.begin : x.end < y.end;
  });
  uint64_t expected = 0;
  for (const Span& s : spans) {
    if (s.begin != expected) {
      ctx.Malformed("safetensors.not_tiled",
                    std::string("tensor '") + s.name + "' starts at " + std::to_string(s.begin) +
                        " but the previous tensor ends at " + std::to_string(expected) +
                        (s.begin < expected ? " (overlap)" : " (gap)"),
                    8 + n + s.begin);
      return;
    }
    expected = s.end;
  }
  if (expected != data_size) {
    ctx.Malformed("safetensors.not_tiled",
                  "tensors cover " + std::to_string(expected) + " bytes but the data section has " +
                      std::to_string(data_size),
                  8 + n);
    return;
  }
  if (!ctx.ListsTensors()) return;
  for (Span& s : spans) {
    TensorLayout t;
    t.name = std::move(s.name);
    t.dtype = std::move(s.dtype);
    t.shape = std::move(s.shape);
    t.offset = 8 + n + s.begin;
    t.length = s.end - s.begin;
    ctx.AddTensor(std::move(t));
  }
}

}  // namespace sigil::scanner
