// NumPy .npy: magic, version, a header that is a Python dict literal
// (parsed here, never evaluated), then the array bytes, or a pickle when
// the dtype holds Python objects.
#include <memory>
#include <string>
#include <vector>

#include "scanner/context.h"
#include "scanner/pickle.h"

namespace sigil::scanner {
namespace {

constexpr uint64_t kMaxHeader = 1 << 20;
constexpr int kMaxLiteralDepth = 16;

struct Literal {
  enum Kind { kStr, kInt, kBool, kNone, kTuple, kList, kDict } kind = kNone;
  std::string str;
  int64_t integer = 0;
  bool boolean = false;
  std::vector<Literal> items;  // tuple, list
  // A pair<Literal, Literal> here would need Literal complete (clang's
  // libstdc++ check); a struct declared now and defined below does not.
  struct Entry;
  std::vector<Entry> entries;  // dict
};

struct Literal::Entry {
  Literal key;
  Literal value;
};

// The subset of Python literal syntax numpy writes: dicts, tuples, lists,
// strings, integers, True/False/None.
class LiteralParser {
 public:
  explicit LiteralParser(std::string_view text) : t_(text) {}

  bool ParseAll(Literal* out) {
    if (!Parse(out, 0)) return false;
    Space();
    return pos_ == t_.size();
  }
  const std::string& error() const { return error_; }

 private:
  bool Fail(const std::string& why) {
    if (error_.empty()) error_ = why + " at header byte " + std::to_string(pos_);
    return false;
  }
  void Space() {
    while (pos_ < t_.size() && (t_[pos_] == ' ' || t_[pos_] == '\n' || t_[pos_] == '\t' ||
                                t_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool Eat(char c) {
    Space();
    if (pos_ < t_.size() && t_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  bool Parse(Literal* out, int depth) {
    if (depth > kMaxLiteralDepth) return Fail("header nested too deeply");
    Space();
    if (pos_ >= t_.size()) return Fail("header ends early");
    char c = t_[pos_];
    if (c == '\'' || c == '"') return String(out);
    if (c == '{') return Sequence(out, depth, '}', Literal::kDict);
    if (c == '(') return Sequence(out, depth, ')', Literal::kTuple);
    if (c == '[') return Sequence(out, depth, ']', Literal::kList);
    if (c == '-' || (c >= '0' && c <= '9')) return Integer(out);
    for (const auto& [word, kind, value] :
         {std::tuple{"True", Literal::kBool, true}, std::tuple{"False", Literal::kBool, false},
          std::tuple{"None", Literal::kNone, false}}) {
      std::string_view w(word);
      if (t_.substr(pos_, w.size()) == w) {
        pos_ += w.size();
        out->kind = kind;
        out->boolean = value;
        return true;
      }
    }
    return Fail("unexpected character in header");
  }

  bool String(Literal* out) {
    char quote = t_[pos_++];
    out->kind = Literal::kStr;
    while (pos_ < t_.size() && t_[pos_] != quote) {
      char c = t_[pos_++];
      if (c == '\\') {
        if (pos_ >= t_.size()) break;
        c = t_[pos_++];
      }
      out->str.push_back(c);
    }
    if (pos_ >= t_.size()) return Fail("unterminated string in header");
    ++pos_;
    return true;
  }

  bool Integer(Literal* out) {
    bool negative = t_[pos_] == '-';
    if (negative) ++pos_;
    size_t start = pos_;
    uint64_t v = 0;
    while (pos_ < t_.size() && t_[pos_] >= '0' && t_[pos_] <= '9') {
      if (__builtin_mul_overflow(v, 10u, &v) ||
          __builtin_add_overflow(v, static_cast<uint64_t>(t_[pos_] - '0'), &v) ||
          v > static_cast<uint64_t>(INT64_MAX)) {
        return Fail("integer in header overflows");
      }
      ++pos_;
    }
    if (pos_ == start) return Fail("bad integer in header");
    if (pos_ < t_.size() && t_[pos_] == 'L') ++pos_;  // Python 2 longs
    out->kind = Literal::kInt;
    out->integer = negative ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
    return true;
  }

  bool Sequence(Literal* out, int depth, char close, Literal::Kind kind) {
    ++pos_;
    out->kind = kind;
    bool saw_comma = false;
    while (true) {
      if (Eat(close)) break;
      if (!out->items.empty() || !out->entries.empty()) {
        if (!saw_comma) return Fail("missing ',' in header");
      }
      Literal item;
      if (!Parse(&item, depth + 1)) return false;
      if (kind == Literal::kDict) {
        if (!Eat(':')) return Fail("missing ':' in header dict");
        Literal value;
        if (!Parse(&value, depth + 1)) return false;
        out->entries.push_back({std::move(item), std::move(value)});
      } else {
        out->items.push_back(std::move(item));
      }
      saw_comma = Eat(',');
      if (out->items.size() + out->entries.size() > 4096) return Fail("header has too many items");
    }
    // (x) without a comma is x itself, not a tuple.
    if (kind == Literal::kTuple && out->items.size() == 1 && !saw_comma) {
      Literal inner = std::move(out->items[0]);
      *out = std::move(inner);
    }
    return true;
  }

  std::string_view t_;
  size_t pos_ = 0;
  std::string error_;
};

struct Dtype {
  uint64_t itemsize = 0;
  bool object = false;
};

bool ProductOf(const Literal& shape, uint64_t* out, std::string* why) {
  uint64_t p = 1;
  for (const Literal& d : shape.items) {
    if (d.kind != Literal::kInt || d.integer < 0) {
      *why = "shape holds something other than a non-negative integer";
      return false;
    }
    if (__builtin_mul_overflow(p, static_cast<uint64_t>(d.integer), &p)) {
      *why = "shape product overflows 64 bits";
      return false;
    }
  }
  *out = p;
  return true;
}

bool ParseTypestr(const std::string& s, Dtype* out, std::string* why) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '<' || s[i] == '>' || s[i] == '|' || s[i] == '=')) ++i;
  if (i >= s.size()) {
    *why = "empty dtype";
    return false;
  }
  char kind = s[i++];
  uint64_t n = 0;
  bool has_n = false;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    if (__builtin_mul_overflow(n, 10u, &n) ||
        __builtin_add_overflow(n, static_cast<uint64_t>(s[i] - '0'), &n)) {
      *why = "dtype size overflows";
      return false;
    }
    has_n = true;
    ++i;
  }
  std::string rest = s.substr(i);
  auto one_of = [&](std::initializer_list<uint64_t> sizes) {
    for (uint64_t v : sizes) {
      if (has_n && n == v && rest.empty()) return true;
    }
    return false;
  };
  bool ok = false;
  switch (kind) {
    case 'b': ok = one_of({1}); break;
    case 'i': case 'u': ok = one_of({1, 2, 4, 8}); break;
    case 'f': ok = one_of({2, 4, 8, 12, 16}); break;
    case 'c': ok = one_of({8, 16, 24, 32}); break;
    case 'S': case 'a': case 'V': ok = has_n && rest.empty(); break;
    case 'U':
      ok = has_n && rest.empty() && !__builtin_mul_overflow(n, 4u, &n);
      break;
    case 'M': case 'm':
      ok = has_n && n == 8 && (rest.empty() || (rest.front() == '[' && rest.back() == ']' &&
                                                 rest.size() <= 16));
      break;
    case 'O':
      ok = (!has_n || n == 8) && rest.empty();
      n = 8;
      out->object = true;
      break;
    default: break;
  }
  if (!ok) {
    *why = "unknown dtype '" + s + "'";
    return false;
  }
  out->itemsize = n;
  return true;
}

bool ParseDescr(const Literal& d, Dtype* out, std::string* why, int depth = 0) {
  if (depth > 8) {
    *why = "dtype nested too deeply";
    return false;
  }
  if (d.kind == Literal::kStr) return ParseTypestr(d.str, out, why);
  if (d.kind != Literal::kList || d.items.empty()) {
    *why = "descr is neither a type string nor a field list";
    return false;
  }
  Dtype total;
  for (const Literal& field : d.items) {
    if (field.kind != Literal::kTuple || field.items.size() < 2 || field.items.size() > 3) {
      *why = "structured dtype field is not (name, type[, shape])";
      return false;
    }
    Dtype f;
    if (!ParseDescr(field.items[1], &f, why, depth + 1)) return false;
    uint64_t count = 1;
    if (field.items.size() == 3) {
      const Literal& shape = field.items[2];
      if (shape.kind == Literal::kInt) {
        if (shape.integer < 0) {
          *why = "negative field shape";
          return false;
        }
        count = static_cast<uint64_t>(shape.integer);
      } else if (shape.kind != Literal::kTuple || !ProductOf(shape, &count, why)) {
        if (why->empty()) *why = "field shape is not a tuple";
        return false;
      }
    }
    uint64_t bytes = 0;
    if (__builtin_mul_overflow(f.itemsize, count, &bytes) ||
        __builtin_add_overflow(total.itemsize, bytes, &total.itemsize)) {
      *why = "structured dtype size overflows";
      return false;
    }
    total.object = total.object || f.object;
  }
  *out = total;
  return true;
}

}  // namespace

void AnalyzeNumpy(const ByteSource& src, const Context& ctx) {
  Cursor c(src);
  std::string magic;
  uint8_t major = 0;
  uint8_t minor = 0;
  if (!c.ReadBytes(6, &magic) || !c.ReadU8(&major) || !c.ReadU8(&minor)) {
    ctx.Malformed("npy.truncated", "file ends inside the header", 0);
    return;
  }
  uint64_t header_len = 0;
  if (major == 1) {
    uint16_t n = 0;
    if (!c.ReadU16(&n)) return ctx.Malformed("npy.truncated", "file ends inside the header", 8);
    header_len = n;
  } else if (major == 2 || major == 3) {
    uint32_t n = 0;
    if (!c.ReadU32(&n)) return ctx.Malformed("npy.truncated", "file ends inside the header", 8);
    header_len = n;
  } else {
    return ctx.Malformed("npy.version", "unsupported .npy version " + std::to_string(major), 6);
  }
  if (minor != 0) return ctx.Malformed("npy.version", "unsupported .npy minor version", 7);
  if (header_len > kMaxHeader) {
    return ctx.Malformed("npy.header_too_large", "header longer than the limit", 8);
  }
  std::string header;
  if (!c.ReadBytes(header_len, &header)) {
    return ctx.Malformed("npy.truncated", "header length runs past the end of the file", 8);
  }
  uint64_t data_start = c.pos();
  Literal dict;
  LiteralParser parser(header);
  if (!parser.ParseAll(&dict) || dict.kind != Literal::kDict) {
    return ctx.Malformed("npy.bad_header",
                         "header is not a dict literal: " +
                             (parser.error().empty() ? std::string("not a dict") : parser.error()),
                         data_start - header_len);
  }
  const Literal* descr = nullptr;
  const Literal* fortran = nullptr;
  const Literal* shape = nullptr;
  for (const auto& [k, v] : dict.entries) {
    if (k.kind != Literal::kStr) {
      return ctx.Malformed("npy.bad_header", "header key is not a string", data_start - header_len);
    }
    const Literal** slot = k.str == "descr" ? &descr
                           : k.str == "fortran_order" ? &fortran
                           : k.str == "shape" ? &shape
                                              : nullptr;
    if (slot == nullptr || *slot != nullptr) {
      return ctx.Malformed("npy.bad_header", "header key '" + k.str + "' unknown or repeated",
                           data_start - header_len);
    }
    *slot = &v;
  }
  if (descr == nullptr || fortran == nullptr || shape == nullptr ||
      fortran->kind != Literal::kBool || shape->kind != Literal::kTuple) {
    return ctx.Malformed("npy.bad_header", "header needs descr, fortran_order (bool) and shape",
                         data_start - header_len);
  }
  std::string why;
  uint64_t count = 0;
  Dtype dtype;
  if (!ProductOf(*shape, &count, &why) || !ParseDescr(*descr, &dtype, &why)) {
    return ctx.Malformed("npy.bad_header", why, data_start - header_len);
  }
  if (dtype.object) {
    ctx.Add(Severity::kInfo, "npy.object_dtype",
            "array of Python objects: its data is a pickle, analysed below", data_start);
    PickleRun run;
    run.max_pickles = 1;
    RecordPickleOutcome(RunPickles(src, data_start, src.size(), run, ctx), ctx);
    return;
  }
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(count, dtype.itemsize, &bytes)) {
    return ctx.Malformed("npy.shape_overflow", "array byte size overflows 64 bits",
                         data_start - header_len);
  }
  uint64_t have = src.size() - data_start;
  if (have < bytes) {
    ctx.Malformed("npy.truncated",
                  "array needs " + std::to_string(bytes) + " bytes, the file holds " +
                      std::to_string(have),
                  data_start);
  } else if (have > bytes) {
    ctx.Add(Severity::kLow, "npy.trailing_data",
            std::to_string(have - bytes) + " bytes after the array data", data_start + bytes);
  }
}

}  // namespace sigil::scanner
