#include "scanner/pickle.h"

#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace sigil::scanner {
namespace {

// What the simulated stack holds: enough to resolve globals and describe
// calls, never the objects themselves.
enum class VKind : uint8_t {
  kNone, kBool, kInt, kFloat, kStr, kBytes, kGlobal, kResult,
  kTuple, kList, kDict, kSet, kPersistent, kOpaque,
};

struct Value;
using ValuePtr = std::shared_ptr<const Value>;

struct Value {
  VKind kind = VKind::kOpaque;
  // str/bytes content (a prefix when truncated), number text, global name,
  // or for a call result the callable's name.
  std::string text;
  // Tuples; when tensors are named, a persistent load's id as its one item.
  std::vector<ValuePtr> items;
  bool truncated = false;
  bool allowed = true;  // globals and call results: allow-listed or structural
  Severity severity = Severity::kInfo;
  uint8_t depth = 0;
  // Only when tensors are named (PickleRun::max_tensors):
  uint32_t tensor = 0;     // a rebuilt tensor: 1 + its index in PickleOutcome::tensors
  uint32_t container = 0;  // a dict or object whose keys or attributes can name tensors
};

// Strings longer than this are kept as a prefix: enough for any module or
// attribute name, bounded whatever the pickle says.
constexpr size_t kKeepText = 4096;
// Deeper tuples become opaque, so values (and their destruction) stay shallow.
constexpr uint8_t kMaxTupleDepth = 32;
constexpr uint64_t kLongBytesLimit = 1 << 20;
// Distinct globals listed in a report.
constexpr size_t kMaxGlobals = 10000;
// Naming tensors: (key, value) links kept, dimensions of a tensor, depth and
// steps of the walk from the result, bytes of one name and of all names.
constexpr size_t kMaxLinks = 1 << 22;
constexpr size_t kMaxTensorDims = 64;
constexpr int kMaxNameDepth = 64;
constexpr uint64_t kMaxWalkSteps = 1 << 22;
constexpr size_t kMaxTensorName = 1024;
constexpr uint64_t kMaxTensorNameBytes = 64ull << 20;

const char* const kLegacyMagicDecimal = "119547037146038801333356";

ValuePtr Make(VKind kind, std::string text = {}) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  if (text.size() > kKeepText) {
    text.resize(kKeepText);
    v->truncated = true;
  }
  v->text = std::move(text);
  return v;
}

ValuePtr MakeTuple(std::vector<ValuePtr> items) {
  uint8_t depth = 0;
  for (const auto& i : items) depth = std::max<uint8_t>(depth, i->depth);
  if (depth + 1 > kMaxTupleDepth) return Make(VKind::kOpaque, "deeply nested tuple");
  auto v = std::make_shared<Value>();
  v->kind = VKind::kTuple;
  v->depth = static_cast<uint8_t>(depth + 1);
  v->items = std::move(items);
  return v;
}

void AppendEscaped(std::string_view s, size_t limit, std::string* out) {
  static const char kHex[] = "0123456789abcdef";
  for (char ch : s) {
    if (out->size() >= limit) {
      out->append("...");
      return;
    }
    auto c = static_cast<unsigned char>(ch);
    if (c == '\\' || c == '\'') {
      out->push_back('\\');
      out->push_back(ch);
    } else if (c >= 0x20 && c < 0x7f) {
      out->push_back(ch);
    } else {
      out->append("\\x");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    }
  }
}

void Describe(const Value& v, size_t limit, std::string* out) {
  if (out->size() >= limit) return;
  switch (v.kind) {
    case VKind::kNone: out->append("None"); break;
    case VKind::kBool:
    case VKind::kInt:
    case VKind::kFloat: out->append(v.text); break;
    case VKind::kStr:
    case VKind::kBytes:
      if (v.kind == VKind::kBytes) out->push_back('b');
      out->push_back('\'');
      AppendEscaped(v.text, limit, out);
      out->append(v.truncated ? "...'" : "'");
      break;
    case VKind::kGlobal: out->append(v.text); break;
    case VKind::kResult: out->append(v.text + "(...)"); break;
    case VKind::kTuple:
      out->push_back('(');
      for (size_t i = 0; i < v.items.size(); ++i) {
        if (i > 0) out->append(", ");
        if (out->size() >= limit) {
          out->append("...");
          break;
        }
        Describe(*v.items[i], limit, out);
      }
      if (v.items.size() == 1) out->push_back(',');
      out->push_back(')');
      break;
    case VKind::kList: out->append("[...]"); break;
    case VKind::kDict: out->append("{...}"); break;
    case VKind::kSet: out->append("set(...)"); break;
    case VKind::kPersistent: out->append("persistent_load(...)"); break;
    case VKind::kOpaque: out->append("<" + v.text + ">"); break;
  }
}

std::string Describe(const Value& v) {
  std::string out;
  Describe(v, 200, &out);
  return out;
}

// Little-endian two's complement (LONG1/LONG4) to decimal, for up to 16 bytes.
std::string LongToDecimal(const std::string& bytes) {
  if (bytes.empty()) return "0";
  if (bytes.size() > 16) return "<" + std::to_string(bytes.size()) + "-byte integer>";
  unsigned __int128 u = 0;
  for (size_t i = bytes.size(); i-- > 0;) u = (u << 8) | static_cast<unsigned char>(bytes[i]);
  bool negative = (static_cast<unsigned char>(bytes.back()) & 0x80) != 0;
  if (negative) {
    if (bytes.size() < 16) u |= ~static_cast<unsigned __int128>(0) << (8 * bytes.size());
    u = ~u + 1;
  }
  std::string digits;
  do {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(u % 10)));
    u /= 10;
  } while (u != 0);
  return negative ? "-" + digits : digits;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// UNICODE's raw-unicode-escape: only \uXXXX and \UXXXXXXXX are escapes;
// other bytes are Latin-1 code points.
bool DecodeRawUnicodeEscape(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\\' && i + 1 < in.size() && (in[i + 1] == 'u' || in[i + 1] == 'U')) {
      size_t n = in[i + 1] == 'u' ? 4 : 8;
      if (i + 2 + n > in.size()) return false;
      uint32_t cp = 0;
      for (size_t k = 0; k < n; ++k) {
        int d = HexDigit(in[i + 2 + k]);
        if (d < 0) return false;
        cp = cp * 16 + static_cast<uint32_t>(d);
      }
      if (cp > 0x10ffff) return false;
      AppendUtf8(cp, out);
      i += 1 + n;
    } else {
      AppendUtf8(static_cast<unsigned char>(in[i]), out);
    }
  }
  return true;
}

// STRING's argument: a quoted Python 2 str literal, escapes decoded.
bool DecodeQuoted(std::string_view in, std::string* out) {
  if (in.size() < 2 || in.front() != in.back() || (in.front() != '\'' && in.front() != '"')) {
    return false;
  }
  in = in.substr(1, in.size() - 2);
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c != '\\' || i + 1 >= in.size()) {
      out->push_back(c);
      continue;
    }
    char e = in[++i];
    switch (e) {
      case 'n': out->push_back('\n'); break;
      case 't': out->push_back('\t'); break;
      case 'r': out->push_back('\r'); break;
      case 'a': out->push_back('\a'); break;
      case 'b': out->push_back('\b'); break;
      case 'f': out->push_back('\f'); break;
      case 'v': out->push_back('\v'); break;
      case '\\': case '\'': case '"': out->push_back(e); break;
      case '\n': break;
      case 'x': {
        if (i + 2 >= in.size()) return false;
        int h = HexDigit(in[i + 1]);
        int l = HexDigit(in[i + 2]);
        if (h < 0 || l < 0) return false;
        out->push_back(static_cast<char>(h * 16 + l));
        i += 2;
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          int v = e - '0';
          for (int k = 0; k < 2 && i + 1 < in.size() && in[i + 1] >= '0' && in[i + 1] <= '7'; ++k) {
            v = v * 8 + (in[++i] - '0');
          }
          out->push_back(static_cast<char>(v & 0xff));
        } else {
          out->push_back('\\');
          out->push_back(e);
        }
    }
  }
  return true;
}

bool ParseDecimal(std::string_view s, uint64_t* v) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t r = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    r = r * 10 + static_cast<uint64_t>(c - '0');
  }
  *v = r;
  return true;
}

bool LooksNumeric(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '_' || c == ' ' || c == '.' ||
          c == 'e' || c == 'E' || c == 'L' || c == 'n' || c == 'a' || c == 'i' || c == 'f')) {
      return false;
    }
  }
  return true;
}

// A decimal integer's text (an int value's) as a uint64_t.
bool AsU64(const Value& v, uint64_t* out) {
  return v.kind == VKind::kInt && ParseDecimal(v.text, out);
}

// A dict key that can be part of a tensor's name: a str, or an int as
// decimal text.
bool IsNameKey(const Value& v) {
  if (v.kind == VKind::kStr) return !v.truncated;
  if (v.kind != VKind::kInt) return false;
  std::string_view t = v.text;
  if (!t.empty() && t[0] == '-') t.remove_prefix(1);
  uint64_t ignored = 0;
  return ParseDecimal(t, &ignored);
}

bool AsDims(const Value& v, std::vector<uint64_t>* out) {
  if (v.kind != VKind::kTuple || v.items.size() > kMaxTensorDims) return false;
  out->clear();
  for (const ValuePtr& item : v.items) {
    uint64_t d = 0;
    if (!AsU64(*item, &d)) return false;
    out->push_back(d);
  }
  return true;
}

class Machine {
 public:
  Machine(Cursor& in, const PickleRun& run, const Context& ctx, PickleOutcome& out)
      : in_(in), run_(run), ctx_(ctx), opts_(ctx.options()), out_(out),
        naming_(run.max_tensors > 0) {}

  enum class Step { kStop, kError, kEnd };

  // Runs one pickle from the cursor's position to its STOP.
  Step RunOne() {
    stack_.clear();
    marks_.clear();
    frame_end_ = 0;
    bool first = true;
    while (true) {
      if ((++ops_ & 0xffff) == 0 && ctx_.OutOfTime()) return Limit("time limit");
      if (ops_ > opts_.max_pickle_ops) return Limit("more than max_pickle_ops opcodes");
      op_offset_ = in_.pos();
      if (frame_end_ != 0 && op_offset_ >= frame_end_) {
        frame_end_ = 0;
      }
      uint8_t op = 0;
      if (!in_.ReadU8(&op)) {
        if (first) return Step::kEnd;
        return Fail("pickle truncated: no STOP before the end of the data");
      }
      first = false;
      bool stop = false;
      if (!Dispatch(op, &stop)) return Step::kError;
      if (frame_end_ != 0 && in_.pos() > frame_end_) {
        FrameFinding("an opcode runs past the end of its FRAME");
        frame_end_ = 0;
      }
      if (stop) {
        if (frame_end_ != 0 && in_.pos() < frame_end_) {
          FrameFinding("STOP comes before the end of its FRAME");
          frame_end_ = 0;
        }
        return Step::kStop;
      }
    }
  }

  const ValuePtr& result() const { return result_; }

  // Names the tensors the last pickle's result reaches (TensorName).
  void NameTensors() {
    if (!naming_ || !result_) return;
    const Value& root = *result_;
    if (root.tensor != 0) {
      Emit(std::string(), root.tensor);
    } else if (root.container != 0) {
      Walk(root.container, std::string(), 0);
    } else if (root.kind == VKind::kTuple) {
      for (size_t i = 0; i < root.items.size() && !naming_stopped_; ++i) {
        const Value& item = *root.items[i];
        if (item.tensor != 0) {
          Emit(std::to_string(i), item.tensor);
        } else if (item.container != 0) {
          Walk(item.container, std::to_string(i) + ".", 1);
        }
      }
    }
  }

 private:
  // One key (null: the attributes of a BUILD state) of a dict or object
  // whose value is a tensor or another container.
  struct Link {
    ValuePtr key;
    uint32_t tensor = 0;
    uint32_t container = 0;
  };

  uint32_t NewContainer() {
    if (!naming_ || next_container_ == UINT32_MAX) return 0;
    return ++next_container_;
  }

  ValuePtr MakeDict() {
    ValuePtr d = Make(VKind::kDict);
    std::const_pointer_cast<Value>(d)->container = NewContainer();
    return d;
  }

  // Records target[key] = value when it can name a tensor.
  void AddLink(const Value& target, const ValuePtr& key, const Value& value) {
    if (!naming_ || target.container == 0) return;
    if (value.tensor == 0 && value.container == 0) return;
    if (key && !IsNameKey(*key)) return;
    if (links_ >= kMaxLinks) {
      out_.tensors_truncated = true;
      return;
    }
    ++links_;
    links_by_container_[target.container].push_back({key, value.tensor, value.container});
  }

  // torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
  // ...) where storage is persistent_load(("storage", class, key, ...)).
  void RebuildTensor(const Value& args, Value* result) {
    if (args.kind != VKind::kTuple || args.items.size() < 4) return;
    const Value& storage = *args.items[0];
    if (storage.kind != VKind::kPersistent || storage.items.size() != 1) return;
    const Value& pid = *storage.items[0];
    if (pid.kind != VKind::kTuple || pid.items.size() < 3) return;
    const Value& tag = *pid.items[0];
    const Value& cls = *pid.items[1];
    const Value& key = *pid.items[2];
    if (tag.kind != VKind::kStr || tag.text != "storage" || cls.kind != VKind::kGlobal ||
        key.kind != VKind::kStr || key.truncated) {
      return;
    }
    PickleTensor t;
    if (!AsU64(*args.items[1], &t.storage_offset) || !AsDims(*args.items[2], &t.shape) ||
        !AsDims(*args.items[3], &t.stride) || t.shape.size() != t.stride.size()) {
      return;
    }
    if (out_.tensors.size() >= run_.max_tensors || out_.tensors.size() >= UINT32_MAX) {
      out_.tensors_truncated = true;
      return;
    }
    t.storage_class = cls.text;
    t.key = key.text;
    out_.tensors.push_back(std::move(t));
    result->tensor = static_cast<uint32_t>(out_.tensors.size());
  }

  // What a call result is for naming: a tensor, or a container (an
  // OrderedDict, a module object) whose keys or attributes may name some.
  void TrackResult(const Value& callable, const Value& args, Value* result) {
    if (callable.kind == VKind::kGlobal && callable.text == "torch._utils._rebuild_tensor_v2") {
      RebuildTensor(args, result);
      return;
    }
    if (callable.kind == VKind::kGlobal && callable.text == "torch._utils._rebuild_parameter" &&
        args.kind == VKind::kTuple && !args.items.empty() && args.items[0]->tensor != 0) {
      result->tensor = args.items[0]->tensor;
      return;
    }
    result->container = NewContainer();
  }

  void Emit(std::string name, uint32_t tensor) {
    if (naming_stopped_) return;
    if (out_.tensor_names.size() >= run_.max_tensors ||
        name_bytes_ + name.size() > kMaxTensorNameBytes) {
      out_.tensors_truncated = true;
      naming_stopped_ = true;
      return;
    }
    name_bytes_ += name.size();
    out_.tensor_names.push_back({std::move(name), tensor - 1});
  }

  // Depth first, in insertion order; a container already on the path (a
  // cycle) is not entered again, and the steps are bounded, since shared
  // containers can make the paths exponentially many.
  void Walk(uint32_t id, const std::string& prefix, int depth) {
    auto it = links_by_container_.find(id);
    if (it == links_by_container_.end() || depth > kMaxNameDepth || naming_stopped_) return;
    const std::vector<Link>& links = it->second;
    walk_steps_ += links.size() + 1;
    if (walk_steps_ > kMaxWalkSteps || ctx_.OutOfTime()) {
      out_.tensors_truncated = true;
      naming_stopped_ = true;
      return;
    }
    if (!on_path_.insert(id).second) return;
    // A key set twice names its last value.
    std::unordered_map<std::string_view, size_t> last;
    for (size_t i = 0; i < links.size(); ++i) {
      if (links[i].key) last[links[i].key->text] = i;
    }
    for (size_t i = 0; i < links.size() && !naming_stopped_; ++i) {
      const Link& l = links[i];
      if (!l.key) {
        Walk(l.container, prefix, depth + 1);
        continue;
      }
      if (last[l.key->text] != i || prefix.size() + l.key->text.size() > kMaxTensorName) continue;
      std::string name = prefix + l.key->text;
      if (l.tensor != 0) {
        Emit(std::move(name), l.tensor);
      } else {
        Walk(l.container, name + ".", depth + 1);
      }
    }
    on_path_.erase(id);
  }

  Step Fail(std::string message) {
    out_.error = true;
    out_.error_message = std::move(message);
    out_.error_offset = op_offset_;
    return Step::kError;
  }
  Step Limit(std::string message) {
    out_.limit = true;
    return Fail(std::move(message));
  }
  bool Bad(std::string message) {
    Fail(std::move(message));
    return false;
  }
  bool Truncated() { return Bad("pickle truncated inside an opcode argument"); }

  void AddFinding(Severity s, std::string rule, std::string message, std::string global = {}) {
    Finding f;
    f.severity = s;
    f.rule = std::move(rule);
    f.message = std::move(message);
    f.location = ctx_.location();
    f.offset = op_offset_;
    f.global = std::move(global);
    if (s > Severity::kInfo) out_.suspicious = true;
    if (out_.findings.size() < opts_.max_findings) {
      out_.findings.push_back(std::move(f));
    } else {
      ++out_.dropped;
      out_.dropped_max = std::max(out_.dropped_max, s);
    }
  }

  void FrameFinding(const std::string& what) {
    if (frame_reported_) return;
    frame_reported_ = true;
    AddFinding(Severity::kHigh, "pickle.frame_mismatch",
               what + "; the Python and C unpicklers read such a stream differently");
  }

  bool Push(ValuePtr v) {
    if (stack_.size() >= opts_.max_pickle_stack) {
      out_.limit = true;
      return Bad("pickle stack deeper than max_pickle_stack");
    }
    stack_.push_back(std::move(v));
    return true;
  }

  size_t Floor() const { return marks_.empty() ? 0 : marks_.back(); }

  bool Pop(ValuePtr* v) {
    if (stack_.size() <= Floor()) return Bad("pickle stack underflow");
    *v = std::move(stack_.back());
    stack_.pop_back();
    return true;
  }

  bool PopMark(std::vector<ValuePtr>* items) {
    if (marks_.empty()) return Bad("pickle opcode needs a MARK and there is none");
    size_t m = marks_.back();
    marks_.pop_back();
    items->assign(std::make_move_iterator(stack_.begin() + static_cast<ptrdiff_t>(m)),
                  std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return true;
  }

  bool Top(ValuePtr* v) {
    if (stack_.size() <= Floor()) return Bad("pickle stack underflow");
    *v = stack_.back();
    return true;
  }

  bool Line(std::string* s) {
    if (!in_.ReadLine(opts_.max_pickle_line, s)) {
      return Bad("pickle text argument without a newline within max_pickle_line bytes");
    }
    return true;
  }

  // Reads n bytes of a string argument, keeping a bounded prefix.
  bool Payload(uint64_t n, VKind kind) {
    std::string s;
    bool truncated = false;
    uint64_t keep = n;
    if (keep > kKeepText) {
      keep = kKeepText;
      truncated = true;
    }
    if (n > in_.remaining()) return Truncated();
    if (!in_.ReadBytes(keep, &s) || !in_.Skip(n - keep)) return Truncated();
    ValuePtr v = Make(kind, std::move(s));
    if (truncated) std::const_pointer_cast<Value>(v)->truncated = true;
    return Push(std::move(v));
  }

  bool Memo(uint64_t index, ValuePtr v) {
    if (memo_.size() >= opts_.max_pickle_memo && memo_.find(index) == memo_.end()) {
      out_.limit = true;
      return Bad("pickle memo larger than max_pickle_memo");
    }
    memo_[index] = std::move(v);
    return true;
  }

  bool Get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) return Bad("memo key " + std::to_string(index) + " was never stored");
    return Push(it->second);
  }

  bool Put(uint64_t index) {
    ValuePtr v;
    if (!Top(&v)) return false;
    return Memo(index, std::move(v));
  }

  // Resolves an imported global; returns it as a stack value.
  ValuePtr Resolve(const std::string& module, const std::string& name, const char* how) {
    std::string full = CanonicalModule(module) + "." + name;
    ValuePtr g = Make(VKind::kGlobal, full);
    auto* gv = std::const_pointer_cast<Value>(g).get();
    if (module == "__torch__" || module.rfind("__torch__.", 0) == 0) {
      if (run_.kind == PickleKind::kTorchScript && run_.torchscript_classes != nullptr &&
          run_.torchscript_classes->count(module + "." + name) > 0) {
        gv->allowed = true;
        return g;
      }
      if (out_.globals.size() < kMaxGlobals) out_.globals.insert(full);
      gv->allowed = false;
      gv->severity = Severity::kMedium;
      if (reported_.insert(full).second) {
        AddFinding(Severity::kMedium, "pickle.torchscript_class",
                   std::string(how) + " imports " + full +
                       ", a TorchScript class that no code/ file of this archive defines",
                   full);
      }
      return g;
    }
    Judgement j = JudgeGlobal(module, name, run_.kind);
    if (out_.globals.size() < kMaxGlobals) out_.globals.insert(full);
    gv->allowed = j.allowed;
    gv->severity = j.allowed ? Severity::kInfo : j.severity;
    if (!j.allowed && reported_.insert(full).second) {
      AddFinding(j.severity, "pickle.global", std::string(how) + " imports " + full + ": " + j.reason,
                 full);
    }
    return g;
  }

  bool Global(const char* how) {
    std::string module;
    std::string name;
    if (!Line(&module) || !Line(&name)) return false;
    if (!IsDottedIdentifier(module) || !IsDottedIdentifier(name)) {
      return Bad(std::string(how) + " names something Python cannot import");
    }
    pending_global_ = Resolve(module, name, how);
    return true;
  }

  // Applies callable to args (REDUCE, NEWOBJ, OBJ, INST) and pushes the result.
  bool Call(const ValuePtr& callable, const ValuePtr& args, const char* how) {
    auto result = std::make_shared<Value>();
    result->kind = VKind::kResult;
    if (callable->kind == VKind::kGlobal) {
      result->text = callable->text;
      result->allowed = callable->allowed;
      result->severity = callable->severity;
      // getattr(<global>, 'name') resolves to another global: judge it too.
      if ((callable->text == "builtins.getattr") && args->kind == VKind::kTuple &&
          args->items.size() >= 2 && args->items[0]->kind == VKind::kGlobal &&
          args->items[1]->kind == VKind::kStr) {
        const std::string& base = args->items[0]->text;
        size_t dot = base.find('.');
        std::string mod = base.substr(0, dot);
        std::string attr = base.substr(dot + 1) + "." + args->items[1]->text;
        if (IsDottedIdentifier(args->items[1]->text)) {
          ValuePtr g = Resolve(mod, attr, "getattr");
          AddCallFinding(*callable, *args, how);
          return Push(g);
        }
      }
      if (!callable->allowed) AddCallFinding(*callable, *args, how);
      if (naming_) TrackResult(*callable, *args, result.get());
    } else {
      result->text = "?";
      result->allowed = false;
      result->severity = Severity::kHigh;
      std::string what;
      Describe(*callable, 120, &what);
      AddFinding(Severity::kHigh, "pickle.call_unresolved",
                 std::string(how) + " calls " + what +
                     ", a value that is not an imported global; the callable cannot be judged");
    }
    return Push(std::move(result));
  }

  void AddCallFinding(const Value& callable, const Value& args, const char* how) {
    std::string key = std::string(how) + callable.text;
    if (!called_.insert(key).second) return;
    AddFinding(callable.severity, "pickle.call",
               std::string(how) + " calls " + callable.text + " with " + Describe(args),
               callable.text);
  }

  bool Dispatch(uint8_t op, bool* stop) {
    std::string s;
    ValuePtr a;
    ValuePtr b;
    ValuePtr c;
    std::vector<ValuePtr> items;
    uint8_t u8 = 0;
    uint16_t u16 = 0;
    uint32_t u32 = 0;
    uint64_t u64 = 0;
    switch (op) {
      case '(':  // MARK
        if (marks_.size() >= opts_.max_pickle_stack) {
          out_.limit = true;
          return Bad("more MARKs than max_pickle_stack");
        }
        marks_.push_back(stack_.size());
        return true;
      case '.':  // STOP
        if (!Pop(&result_)) return false;
        *stop = true;
        return true;
      case '0':  // POP: an empty frame above a mark pops the mark
        if (stack_.size() > Floor()) {
          stack_.pop_back();
        } else if (!marks_.empty()) {
          marks_.pop_back();
        } else {
          return Bad("pickle stack underflow");
        }
        return true;
      case '1':  // POP_MARK
        return PopMark(&items);
      case '2':  // DUP
        return Top(&a) && Push(a);
      case 'F':  // FLOAT
        if (!Line(&s)) return false;
        if (!LooksNumeric(s)) return Bad("FLOAT argument is not a number");
        return Push(Make(VKind::kFloat, s));
      case 'I':  // INT
        if (!Line(&s)) return false;
        if (s == "00" || s == "01") return Push(Make(VKind::kBool, s == "01" ? "True" : "False"));
        if (!LooksNumeric(s)) return Bad("INT argument is not a number");
        return Push(Make(VKind::kInt, s));
      case 'J':  // BININT
        if (!in_.ReadU32(&u32)) return Truncated();
        return Push(Make(VKind::kInt, std::to_string(static_cast<int32_t>(u32))));
      case 'K':  // BININT1
        if (!in_.ReadU8(&u8)) return Truncated();
        return Push(Make(VKind::kInt, std::to_string(u8)));
      case 'M':  // BININT2
        if (!in_.ReadU16(&u16)) return Truncated();
        return Push(Make(VKind::kInt, std::to_string(u16)));
      case 'L':  // LONG
        if (!Line(&s)) return false;
        if (!s.empty() && s.back() == 'L') s.pop_back();
        if (!LooksNumeric(s)) return Bad("LONG argument is not a number");
        return Push(Make(VKind::kInt, s));
      case 0x8a:  // LONG1
        if (!in_.ReadU8(&u8) || !in_.ReadBytes(u8, &s)) return Truncated();
        return Push(Make(VKind::kInt, LongToDecimal(s)));
      case 0x8b:  // LONG4
        if (!in_.ReadU32(&u32)) return Truncated();
        if (static_cast<int32_t>(u32) < 0) return Bad("LONG4 with a negative length");
        if (u32 > kLongBytesLimit) {
          if (!in_.Skip(u32)) return Truncated();
          return Push(Make(VKind::kInt, "<huge integer>"));
        }
        if (!in_.ReadBytes(u32, &s)) return Truncated();
        return Push(Make(VKind::kInt, LongToDecimal(s)));
      case 'G':  // BINFLOAT
        if (!in_.ReadU64(&u64)) return Truncated();
        return Push(Make(VKind::kFloat, "float"));
      case 'N':
        return Push(Make(VKind::kNone));
      case 0x88:
        return Push(Make(VKind::kBool, "True"));
      case 0x89:
        return Push(Make(VKind::kBool, "False"));
      case 'S': {  // STRING
        if (!Line(&s)) return false;
        std::string decoded;
        if (!DecodeQuoted(s, &decoded)) return Bad("STRING argument is not a quoted literal");
        return Push(Make(VKind::kStr, std::move(decoded)));
      }
      case 'T':  // BINSTRING
        if (!in_.ReadU32(&u32)) return Truncated();
        if (static_cast<int32_t>(u32) < 0) return Bad("BINSTRING with a negative length");
        return Payload(u32, VKind::kStr);
      case 'U':  // SHORT_BINSTRING
        if (!in_.ReadU8(&u8)) return Truncated();
        return Payload(u8, VKind::kStr);
      case 'V': {  // UNICODE
        if (!Line(&s)) return false;
        std::string decoded;
        if (!DecodeRawUnicodeEscape(s, &decoded)) return Bad("UNICODE argument has a bad escape");
        return Push(Make(VKind::kStr, std::move(decoded)));
      }
      case 'X':  // BINUNICODE
        if (!in_.ReadU32(&u32)) return Truncated();
        return Payload(u32, VKind::kStr);
      case 0x8c:  // SHORT_BINUNICODE
        if (!in_.ReadU8(&u8)) return Truncated();
        return Payload(u8, VKind::kStr);
      case 0x8d:  // BINUNICODE8
        if (!in_.ReadU64(&u64)) return Truncated();
        return Payload(u64, VKind::kStr);
      case 'B':  // BINBYTES
        if (!in_.ReadU32(&u32)) return Truncated();
        return Payload(u32, VKind::kBytes);
      case 'C':  // SHORT_BINBYTES
        if (!in_.ReadU8(&u8)) return Truncated();
        return Payload(u8, VKind::kBytes);
      case 0x8e:  // BINBYTES8
      case 0x96:  // BYTEARRAY8
        if (!in_.ReadU64(&u64)) return Truncated();
        return Payload(u64, VKind::kBytes);
      case 0x97:  // NEXT_BUFFER: out-of-band data the loader supplies
        return Push(Make(VKind::kOpaque, "out-of-band buffer"));
      case 0x98:  // READONLY_BUFFER
        return Top(&a);
      case ')':
        return Push(MakeTuple({}));
      case 't':  // TUPLE
        return PopMark(&items) && Push(MakeTuple(std::move(items)));
      case 0x85:  // TUPLE1
        if (!Pop(&a)) return false;
        return Push(MakeTuple({a}));
      case 0x86:  // TUPLE2
        if (!Pop(&b) || !Pop(&a)) return false;
        return Push(MakeTuple({a, b}));
      case 0x87:  // TUPLE3
        if (!Pop(&c) || !Pop(&b) || !Pop(&a)) return false;
        return Push(MakeTuple({a, b, c}));
      case ']':
        return Push(Make(VKind::kList));
      case 'l':  // LIST
        return PopMark(&items) && Push(Make(VKind::kList));
      case 'a':  // APPEND
        return Pop(&a) && Top(&b);
      case 'e':  // APPENDS
        return PopMark(&items) && Top(&b);
      case '}':
        return Push(MakeDict());
      case 'd': {  // DICT
        if (!PopMark(&items)) return false;
        if (items.size() % 2 != 0) return Bad("DICT with an odd number of items");
        ValuePtr d = MakeDict();
        for (size_t i = 0; i < items.size(); i += 2) AddLink(*d, items[i], *items[i + 1]);
        return Push(std::move(d));
      }
      case 's':  // SETITEM
        if (!Pop(&a) || !Pop(&b) || !Top(&c)) return false;
        AddLink(*c, b, *a);
        return true;
      case 'u':  // SETITEMS
        if (!PopMark(&items)) return false;
        if (items.size() % 2 != 0) return Bad("SETITEMS with an odd number of items");
        if (!Top(&c)) return false;
        for (size_t i = 0; i < items.size(); i += 2) AddLink(*c, items[i], *items[i + 1]);
        return true;
      case 0x8f:  // EMPTY_SET
        return Push(Make(VKind::kSet));
      case 0x90:  // ADDITEMS
        return PopMark(&items) && Top(&c);
      case 0x91:  // FROZENSET
        return PopMark(&items) && Push(Make(VKind::kSet));
      case 'c':  // GLOBAL
        if (!Global("GLOBAL")) return false;
        return Push(std::move(pending_global_));
      case 0x93: {  // STACK_GLOBAL
        if (!Pop(&b) || !Pop(&a)) return false;
        if (a->kind != VKind::kStr || b->kind != VKind::kStr || a->truncated || b->truncated) {
          std::string what = Describe(*a) + ", " + Describe(*b);
          AddFinding(Severity::kHigh, "pickle.dynamic_global",
                     "STACK_GLOBAL on values that are not literal strings (" + what +
                         "); the import cannot be resolved statically");
          ValuePtr g = Make(VKind::kGlobal, "?");
          std::const_pointer_cast<Value>(g)->allowed = false;
          std::const_pointer_cast<Value>(g)->severity = Severity::kHigh;
          return Push(std::move(g));
        }
        if (!IsDottedIdentifier(a->text) || !IsDottedIdentifier(b->text)) {
          return Bad("STACK_GLOBAL names something Python cannot import");
        }
        return Push(Resolve(a->text, b->text, "STACK_GLOBAL"));
      }
      case 'i': {  // INST: GLOBAL, then call with the items above the mark
        if (!Global("INST")) return false;
        ValuePtr cls = std::move(pending_global_);
        if (!PopMark(&items)) return false;
        return Call(cls, MakeTuple(std::move(items)), "INST");
      }
      case 'o': {  // OBJ
        if (!PopMark(&items)) return false;
        if (items.empty()) return Bad("OBJ without a class");
        ValuePtr cls = items.front();
        items.erase(items.begin());
        return Call(cls, MakeTuple(std::move(items)), "OBJ");
      }
      case 'R':  // REDUCE
        if (!Pop(&b) || !Pop(&a)) return false;
        return Call(a, b, "REDUCE");
      case 0x81:  // NEWOBJ
        if (!Pop(&b) || !Pop(&a)) return false;
        return Call(a, b, "NEWOBJ");
      case 0x92:  // NEWOBJ_EX
        if (!Pop(&c) || !Pop(&b) || !Pop(&a)) return false;
        return Call(a, b, "NEWOBJ_EX");
      case 'b':  // BUILD
        if (!Pop(&b) || !Top(&a)) return false;
        if (a->kind == VKind::kGlobal) {
          AddFinding(Severity::kHigh, "pickle.build_global",
                     "BUILD sets state on " + a->text +
                         " itself, changing attributes of a class or module",
                     a->text);
        }
        // The state's keys are the object's attributes (a module's
        // parameters); a (state, slots) pair counts its first dict.
        if (b->kind == VKind::kTuple && b->items.size() == 2) b = b->items[0];
        if (b->container != 0 && b->container != a->container) AddLink(*a, nullptr, *b);
        return true;
      case 'P':  // PERSID
        if (!Line(&s)) return false;
        return Push(Make(VKind::kPersistent));
      case 'Q': {  // BINPERSID
        if (!Pop(&a)) return false;
        ValuePtr p = Make(VKind::kPersistent);
        if (naming_) std::const_pointer_cast<Value>(p)->items.push_back(std::move(a));
        return Push(std::move(p));
      }
      case 'g':  // GET
        if (!Line(&s)) return false;
        if (!ParseDecimal(s, &u64)) return Bad("GET argument is not a number");
        return Get(u64);
      case 'h':  // BINGET
        if (!in_.ReadU8(&u8)) return Truncated();
        return Get(u8);
      case 'j':  // LONG_BINGET
        if (!in_.ReadU32(&u32)) return Truncated();
        return Get(u32);
      case 'p':  // PUT
        if (!Line(&s)) return false;
        if (!ParseDecimal(s, &u64)) return Bad("PUT argument is not a number");
        return Put(u64);
      case 'q':  // BINPUT
        if (!in_.ReadU8(&u8)) return Truncated();
        return Put(u8);
      case 'r':  // LONG_BINPUT
        if (!in_.ReadU32(&u32)) return Truncated();
        return Put(u32);
      case 0x94:  // MEMOIZE
        return Put(memo_.size());
      case 0x80:  // PROTO
        if (!in_.ReadU8(&u8)) return Truncated();
        if (u8 > 5) return Bad("unsupported pickle protocol " + std::to_string(u8));
        return true;
      case 0x95:  // FRAME
        if (!in_.ReadU64(&u64)) return Truncated();
        if (frame_end_ != 0 && op_offset_ < frame_end_) {
          FrameFinding("a FRAME starts before the previous frame's bytes are consumed");
        }
        if (u64 > in_.remaining()) return Bad("FRAME longer than the data left");
        frame_end_ = in_.pos() + u64;
        return true;
      case 0x82:  // EXT1
      case 0x83:  // EXT2
      case 0x84: {  // EXT4
        uint32_t code = 0;
        if (op == 0x82) {
          if (!in_.ReadU8(&u8)) return Truncated();
          code = u8;
        } else if (op == 0x83) {
          if (!in_.ReadU16(&u16)) return Truncated();
          code = u16;
        } else if (!in_.ReadU32(&code)) {
          return Truncated();
        }
        AddFinding(Severity::kHigh, "pickle.extension",
                   "EXT opcode imports copyreg extension code " + std::to_string(code) +
                       ", a callable chosen by the loading process's registry");
        ValuePtr g = Make(VKind::kGlobal, "copyreg.extension:" + std::to_string(code));
        std::const_pointer_cast<Value>(g)->allowed = false;
        std::const_pointer_cast<Value>(g)->severity = Severity::kHigh;
        return Push(std::move(g));
      }
      default: {
        static const char kHex[] = "0123456789abcdef";
        std::string hex = {kHex[op >> 4], kHex[op & 15]};
        return Bad("unknown pickle opcode 0x" + hex);
      }
    }
  }

  Cursor& in_;
  const PickleRun& run_;
  const Context& ctx_;
  const ScanOptions& opts_;
  PickleOutcome& out_;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  // Kept across concatenated pickles: a loader reusing one Unpickler sees
  // earlier memo entries, so the analysis must too.
  std::unordered_map<uint64_t, ValuePtr> memo_;
  ValuePtr result_;
  ValuePtr pending_global_;
  uint64_t ops_ = 0;
  uint64_t op_offset_ = 0;
  uint64_t frame_end_ = 0;
  bool frame_reported_ = false;
  std::set<std::string> reported_;
  std::set<std::string> called_;
  // Naming tensors.
  const bool naming_;
  std::unordered_map<uint32_t, std::vector<Link>> links_by_container_;
  size_t links_ = 0;
  uint32_t next_container_ = 0;
  std::set<uint32_t> on_path_;
  uint64_t walk_steps_ = 0;
  uint64_t name_bytes_ = 0;
  bool naming_stopped_ = false;
};

}  // namespace

PickleOutcome RunPickles(const ByteSource& src, uint64_t begin, uint64_t end, const PickleRun& run,
                         const Context& ctx) {
  PickleOutcome out;
  Cursor in(src, begin, end);
  Machine machine(in, run, ctx, out);
  size_t limit = run.max_pickles != 0 ? run.max_pickles : ctx.options().max_pickles_per_stream;
  while (out.pickles < limit) {
    Machine::Step step = machine.RunOne();
    if (step == Machine::Step::kEnd) break;
    if (step == Machine::Step::kError) break;
    if (out.pickles == 0) {
      const ValuePtr& r = machine.result();
      out.legacy_torch_magic = r && r->kind == VKind::kInt && r->text == kLegacyMagicDecimal;
      machine.NameTensors();
    }
    ++out.pickles;
    if (out.pickles == limit && run.max_pickles == 0 && !in.AtEnd()) {
      out.error = true;
      out.limit = true;
      out.error_offset = in.pos();
      out.error_message = "more concatenated pickles than max_pickles_per_stream";
    }
  }
  out.end = in.pos();
  if (!out.error && out.pickles == 0) {
    out.error = true;
    out.error_offset = begin;
    out.error_message = "empty pickle stream";
  }
  return out;
}

void RecordPickleOutcome(PickleOutcome outcome, const Context& ctx) {
  ScanState& state = ctx.state();
  for (auto& f : outcome.findings) {
    if (state.findings.size() >= ctx.options().max_findings) {
      state.Drop(f.severity, f.malformed);
      continue;
    }
    state.findings.push_back(std::move(f));
  }
  for (size_t i = 0; i < outcome.dropped; ++i) state.Drop(outcome.dropped_max, false);
  for (const std::string& g : outcome.globals) {
    if (state.globals.size() >= kMaxGlobals) break;
    state.globals.insert(g);
  }
  if (outcome.error && !state.timed_out) {
    if (outcome.limit) {
      ctx.Malformed("limit.pickle", "pickle analysis stopped: " + outcome.error_message,
                    outcome.error_offset);
    } else {
      ctx.Malformed("pickle.malformed",
                    "pickle " + std::to_string(outcome.pickles + 1) + ": " + outcome.error_message,
                    outcome.error_offset);
    }
  }
}

bool LooksLikePickleStart(const ByteSource& src, uint64_t offset) {
  char b[2] = {0, 0};
  if (offset >= src.size() || !src.ReadAt(offset, 1, b)) return false;
  auto c = static_cast<unsigned char>(b[0]);
  if (c == 0x80) {
    return offset + 2 <= src.size() && src.ReadAt(offset + 1, 1, b + 1) &&
           static_cast<unsigned char>(b[1]) <= 5;
  }
  return std::strchr("(]})cINLFSVXTUKJMGP", b[0]) != nullptr && b[0] != '\0';
}

}  // namespace sigil::scanner
