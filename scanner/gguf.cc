// GGUF: header, key-value metadata, tensor infos; tensor data is never read.
#include <map>
#include <set>
#include <string>

#include "scanner/context.h"

namespace sigil::scanner {
namespace {

enum GgufType : uint32_t {
  kU8 = 0, kI8, kU16, kI16, kU32, kI32, kF32, kBool, kString, kArray, kU64, kI64, kF64,
};

uint64_t FixedSize(uint32_t type) {
  switch (type) {
    case kU8: case kI8: case kBool: return 1;
    case kU16: case kI16: return 2;
    case kU32: case kI32: case kF32: return 4;
    case kU64: case kI64: case kF64: return 8;
    default: return 0;
  }
}

struct GgmlType {
  uint64_t block;
  uint64_t bytes;
};

// Block size (elements) and bytes per block of each ggml type (ggml.h).
bool LookupGgmlType(uint32_t t, GgmlType* out) {
  static const std::map<uint32_t, GgmlType> kTypes = {
      {0, {1, 4}},      {1, {1, 2}},      {2, {32, 18}},    {3, {32, 20}},    {6, {32, 22}},
      {7, {32, 24}},    {8, {32, 34}},    {9, {32, 36}},    {10, {256, 84}},  {11, {256, 110}},
      {12, {256, 144}}, {13, {256, 176}}, {14, {256, 210}}, {15, {256, 292}}, {16, {256, 66}},
      {17, {256, 74}},  {18, {256, 98}},  {19, {256, 50}},  {20, {32, 18}},   {21, {256, 110}},
      {22, {256, 82}},  {23, {256, 136}}, {24, {1, 1}},     {25, {1, 2}},     {26, {1, 4}},
      {27, {1, 8}},     {28, {1, 8}},     {29, {256, 56}},  {30, {1, 2}},     {34, {256, 54}},
      {35, {256, 66}},  {39, {32, 17}},
  };
  auto it = kTypes.find(t);
  if (it == kTypes.end()) return false;
  *out = it->second;
  return true;
}

// True when word occurs as a whole identifier, followed by `next` unless
// next is 0.
bool ContainsWord(const std::string& text, const std::string& word, char next) {
  auto ident = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  for (size_t pos = text.find(word); pos != std::string::npos; pos = text.find(word, pos + 1)) {
    size_t after = pos + word.size();
    bool left = pos == 0 || !ident(text[pos - 1]);
    bool right = after >= text.size() ? next == 0 : (next == 0 ? !ident(text[after]) : text[after] == next);
    if (left && right) return true;
  }
  return false;
}

class GgufReader {
 public:
  GgufReader(const ByteSource& src, const Context& ctx)
      : c_(src), ctx_(ctx), opts_(ctx.options()), size_(src.size()) {}

  void Run() {
    std::string magic;
    uint32_t version = 0;
    uint64_t n_tensors = 0;
    uint64_t n_kv = 0;
    if (!c_.ReadBytes(4, &magic) || !c_.ReadU32(&version)) return Truncated("header");
    if (version != 2 && version != 3) {
      return Bad("gguf.version", "unsupported GGUF version " + std::to_string(version));
    }
    if (!c_.ReadU64(&n_tensors) || !c_.ReadU64(&n_kv)) return Truncated("header");
    // Each key-value needs at least 8 + 4 + 1 bytes and each tensor info
    // 8 + 4 + 4 + 8: bound the counts by the bytes left before trusting them.
    if (n_kv > opts_.max_gguf_kv || n_kv > c_.remaining() / 13) {
      return Bad("gguf.bad_count", "key-value count " + std::to_string(n_kv) +
                                       " is impossible for the file's size or over the limit");
    }
    if (n_tensors > opts_.max_gguf_tensors || n_tensors > c_.remaining() / 24) {
      return Bad("gguf.bad_count", "tensor count " + std::to_string(n_tensors) +
                                       " is impossible for the file's size or over the limit");
    }
    std::set<std::string> keys;
    for (uint64_t i = 0; i < n_kv; ++i) {
      if ((i & 0xff) == 0 && ctx_.OutOfTime()) return;
      uint64_t at = c_.pos();
      std::string key;
      uint32_t type = 0;
      if (!String(&key, 1 << 16) || !c_.ReadU32(&type)) return Truncated("key-value");
      if (!keys.insert(key).second) return Bad("gguf.duplicate_key", "key '" + key + "' repeats", at);
      if (!Value(key, type, at)) return;
    }
    if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0) {
      return Bad("gguf.bad_alignment",
                 "general.alignment " + std::to_string(alignment_) + " is not a power of two");
    }
    std::set<std::string> names;
    uint64_t expected = 0;  // offset the next tensor must have
    for (uint64_t i = 0; i < n_tensors; ++i) {
      if ((i & 0xff) == 0 && ctx_.OutOfTime()) return;
      uint64_t at = c_.pos();
      std::string name;
      uint32_t n_dims = 0;
      if (!String(&name, 1 << 16) || !c_.ReadU32(&n_dims)) return Truncated("tensor info");
      if (!names.insert(name).second) {
        return Bad("gguf.duplicate_tensor", "tensor '" + name + "' repeats", at);
      }
      if (n_dims > 4) {
        return Bad("gguf.bad_dims", "tensor '" + name + "' has " + std::to_string(n_dims) +
                                        " dimensions (at most 4)", at);
      }
      uint64_t elements = 1;
      uint64_t first_dim = 1;
      for (uint32_t d = 0; d < n_dims; ++d) {
        uint64_t dim = 0;
        if (!c_.ReadU64(&dim)) return Truncated("tensor info");
        if (dim > static_cast<uint64_t>(INT64_MAX)) {
          return Bad("gguf.bad_dims", "tensor '" + name + "' has a negative dimension", at);
        }
        if (d == 0) first_dim = dim;
        if (__builtin_mul_overflow(elements, dim, &elements) || elements > INT64_MAX) {
          return Bad("gguf.shape_overflow", "tensor '" + name + "': element count overflows", at);
        }
      }
      uint32_t type = 0;
      uint64_t offset = 0;
      if (!c_.ReadU32(&type) || !c_.ReadU64(&offset)) return Truncated("tensor info");
      GgmlType gt{};
      if (!LookupGgmlType(type, &gt)) {
        return Bad("gguf.bad_type", "tensor '" + name + "' has unknown ggml type " +
                                        std::to_string(type), at);
      }
      if (first_dim % gt.block != 0) {
        return Bad("gguf.bad_dims", "tensor '" + name + "': first dimension is not a multiple of "
                                    "the type's block size", at);
      }
      uint64_t bytes = 0;
      if (__builtin_mul_overflow(elements / gt.block, gt.bytes, &bytes)) {
        return Bad("gguf.shape_overflow", "tensor '" + name + "': byte size overflows", at);
      }
      if (offset % alignment_ != 0) {
        return Bad("gguf.bad_alignment", "tensor '" + name + "' offset " + std::to_string(offset) +
                                             " is not a multiple of the alignment", at);
      }
      if (offset != expected) {
        return Bad("gguf.not_contiguous", "tensor '" + name + "' is at offset " +
                                              std::to_string(offset) + ", expected " +
                                              std::to_string(expected), at);
      }
      uint64_t padded = 0;
      if (__builtin_add_overflow(bytes, alignment_ - 1, &padded)) {
        return Bad("gguf.shape_overflow", "tensor '" + name + "': size overflows", at);
      }
      padded -= padded % alignment_;
      last_end_ = expected + bytes;
      if (__builtin_add_overflow(expected, padded, &expected) || last_end_ < bytes) {
        return Bad("gguf.shape_overflow", "tensor data size overflows", at);
      }
    }
    uint64_t data_start = c_.pos();
    if (data_start % alignment_ != 0) data_start += alignment_ - data_start % alignment_;
    if (n_tensors > 0 && (data_start > size_ || last_end_ > size_ - data_start)) {
      return Bad("gguf.truncated", "tensor data runs past the end of the file (needs " +
                                       std::to_string(last_end_) + " bytes after offset " +
                                       std::to_string(data_start) + ")", c_.pos());
    }
  }

 private:
  void Truncated(const std::string& where) {
    ctx_.Malformed("gguf.truncated", "file ends inside the " + where, c_.pos());
  }
  void Bad(const std::string& rule, const std::string& message, uint64_t at = UINT64_MAX) {
    ctx_.Malformed(rule, message, at == UINT64_MAX ? c_.pos() : at);
  }

  bool String(std::string* out, uint64_t max) {
    uint64_t n = 0;
    if (!c_.ReadU64(&n) || n > c_.remaining() || n > max) return false;
    return c_.ReadBytes(n, out);
  }

  bool SkipString() {
    uint64_t n = 0;
    return c_.ReadU64(&n) && c_.Skip(n);
  }

  bool Value(const std::string& key, uint32_t type, uint64_t at) {
    if (type == kString) {
      bool template_key = key == "tokenizer.chat_template" ||
                          key.rfind("tokenizer.chat_template.", 0) == 0;
      if (!template_key) {
        if (!SkipString()) {
          Truncated("value of '" + key + "'");
          return false;
        }
        return true;
      }
      std::string text;
      if (!String(&text, opts_.max_gguf_string)) {
        Truncated("value of '" + key + "'");
        return false;
      }
      CheckTemplate(key, text, at);
      return true;
    }
    if (type == kArray) {
      uint32_t elem = 0;
      uint64_t count = 0;
      if (!c_.ReadU32(&elem) || !c_.ReadU64(&count)) {
        Truncated("array '" + key + "'");
        return false;
      }
      if (elem == kArray) {
        Bad("gguf.bad_value", "array '" + key + "' nests arrays", at);
        return false;
      }
      if (elem == kString) {
        if (count > c_.remaining() / 8) {
          Bad("gguf.bad_count", "array '" + key + "' count exceeds the bytes left", at);
          return false;
        }
        for (uint64_t i = 0; i < count; ++i) {
          if ((i & 0xffff) == 0 && ctx_.OutOfTime()) return false;
          if (!SkipString()) {
            Truncated("array '" + key + "'");
            return false;
          }
        }
        return true;
      }
      uint64_t size = FixedSize(elem);
      if (size == 0) {
        Bad("gguf.bad_value", "array '" + key + "' has unknown element type " + std::to_string(elem),
            at);
        return false;
      }
      if (count > c_.remaining() / size) {
        Bad("gguf.bad_count", "array '" + key + "' count exceeds the bytes left", at);
        return false;
      }
      return c_.Skip(count * size);
    }
    uint64_t size = FixedSize(type);
    if (size == 0) {
      Bad("gguf.bad_value", "key '" + key + "' has unknown value type " + std::to_string(type), at);
      return false;
    }
    if (key == "general.alignment") {
      uint32_t a = 0;
      if (type != kU32) {
        Bad("gguf.bad_alignment", "general.alignment must be a uint32", at);
        return false;
      }
      if (!c_.ReadU32(&a)) {
        Truncated("general.alignment");
        return false;
      }
      alignment_ = a;
      return true;
    }
    if (!c_.Skip(size)) {
      Truncated("value of '" + key + "'");
      return false;
    }
    return true;
  }

  // Jinja chat templates run inside some runtimes: reaching Python's object
  // model from one is a sandbox escape.
  void CheckTemplate(const std::string& key, const std::string& text, uint64_t at) {
    static const char* const kDunders[] = {
        "__class__", "__mro__", "__subclasses__", "__globals__", "__builtins__", "__base__",
        "__bases__", "__init__", "__getattribute__", "__import__", "__dict__", "__code__",
    };
    for (const char* d : kDunders) {
      if (text.find(d) != std::string::npos) {
        ctx_.Add(Severity::kCritical, "gguf.template_injection",
                 "chat template '" + key + "' reaches Python internals through '" + d + "'", at);
        return;
      }
    }
    static const std::pair<const char*, char> kWords[] = {
        {"import", 0}, {"os", '.'}, {"subprocess", '.'}, {"popen", '('}, {"eval", '('},
        {"exec", '('},
    };
    for (const auto& [word, next] : kWords) {
      if (ContainsWord(text, word, next)) {
        ctx_.Add(Severity::kHigh, "gguf.template_injection",
                 "chat template '" + key + "' uses '" + word + "'", at);
        return;
      }
    }
  }

  Cursor c_;
  const Context& ctx_;
  const ScanOptions& opts_;
  uint64_t size_;
  uint64_t alignment_ = 32;
  uint64_t last_end_ = 0;
};

}  // namespace

void AnalyzeGguf(const ByteSource& src, const Context& ctx) { GgufReader(src, ctx).Run(); }

}  // namespace sigil::scanner
