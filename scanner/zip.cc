// Zip archives, read the way PyTorch's miniz reads them (central directory
// names and sizes, data located through the local header's lengths) and
// cross-checked against what other readers see (local headers, CRCs, entries
// only a sequential reader finds, offsets relative to the end record).
#include <zlib.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "scanner/context.h"
#include "scanner/pickle.h"

namespace sigil::scanner {
namespace {

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kEnd64Sig = 0x06064b50;
constexpr uint32_t kEnd64LocatorSig = 0x07064b50;
constexpr uint32_t kDescriptorSig = 0x08074b50;
constexpr uint64_t kEndSize = 22;
constexpr uint64_t kMaxComment = 0xffff;

struct Entry {
  std::string name;
  uint16_t made_by = 0;
  uint16_t flags = 0;
  uint16_t method = 0;
  uint32_t crc = 0;
  uint64_t comp_size = 0;
  uint64_t size = 0;
  uint64_t local_offset = 0;
  uint32_t external_attr = 0;
  uint64_t data_offset = 0;  // from the local header
  bool readable = false;     // local header sane, data in bounds, not encrypted
};

uint32_t Le32(const std::string& b, size_t at) {
  return static_cast<uint32_t>(static_cast<unsigned char>(b[at])) |
         (static_cast<uint32_t>(static_cast<unsigned char>(b[at + 1])) << 8) |
         (static_cast<uint32_t>(static_cast<unsigned char>(b[at + 2])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(b[at + 3])) << 24);
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

// Why a member name is unsafe to extract, or empty.
std::string UnsafeName(std::string_view name) {
  if (name.empty()) return "an empty name";
  for (char ch : name) {
    if (static_cast<unsigned char>(ch) < 0x20) return "a control character in the name";
  }
  if (name[0] == '/' || name[0] == '\\') return "an absolute path";
  if (name.size() >= 2 && name[1] == ':' &&
      ((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z'))) {
    return "a drive-letter path";
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find_first_of("/\\", start);
    if (end == std::string_view::npos) end = name.size();
    if (name.substr(start, end - start) == "..") return "a '..' path component";
    start = end + 1;
  }
  return {};
}

// Parses a zip64 extended-information extra field into the entry's fields
// that are 0xFFFFFFFF.
void ApplyZip64(const std::string& extra, bool size_ff, bool comp_ff, bool offset_ff, Entry* e) {
  size_t pos = 0;
  while (pos + 4 <= extra.size()) {
    uint16_t id = static_cast<uint16_t>(static_cast<unsigned char>(extra[pos]) |
                                        (static_cast<unsigned char>(extra[pos + 1]) << 8));
    uint16_t len = static_cast<uint16_t>(static_cast<unsigned char>(extra[pos + 2]) |
                                         (static_cast<unsigned char>(extra[pos + 3]) << 8));
    pos += 4;
    if (pos + len > extra.size()) return;
    if (id == 0x0001) {
      size_t p = pos;
      auto next = [&](uint64_t* v) {
        if (p + 8 > pos + len) return;
        *v = static_cast<uint64_t>(Le32(extra, p)) | (static_cast<uint64_t>(Le32(extra, p + 4)) << 32);
        p += 8;
      };
      if (size_ff) next(&e->size);
      if (comp_ff) next(&e->comp_size);
      if (offset_ff) next(&e->local_offset);
      return;
    }
    pos += len;
  }
}

// torch storage classes as safetensors dtypes, with their element sizes.
struct StorageType {
  std::string_view storage_class;
  const char* dtype;
  uint64_t element_size;
};
constexpr StorageType kStorageTypes[] = {
    {"torch.DoubleStorage", "F64", 8}, {"torch.FloatStorage", "F32", 4},
    {"torch.HalfStorage", "F16", 2},   {"torch.BFloat16Storage", "BF16", 2},
    {"torch.LongStorage", "I64", 8},   {"torch.IntStorage", "I32", 4},
    {"torch.ShortStorage", "I16", 2},  {"torch.CharStorage", "I8", 1},
    {"torch.ByteStorage", "U8", 1},    {"torch.BoolStorage", "BOOL", 1},
};

const StorageType* FindStorageType(std::string_view storage_class) {
  for (const StorageType& t : kStorageTypes) {
    if (t.storage_class == storage_class) return &t;
  }
  return nullptr;
}

// Elements of a shape; false when the count overflows.
bool ElementCount(const std::vector<uint64_t>& shape, uint64_t* n) {
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) {
    *n = 0;
    return true;
  }
  uint64_t count = 1;
  for (uint64_t d : shape) {
    if (__builtin_mul_overflow(count, d, &count)) return false;
  }
  *n = count;
  return true;
}

// Row-major contiguity as torch judges it: strides of size-1 dimensions do
// not matter, nor any stride of an empty tensor. REQUIRES: the element
// count does not overflow.
bool Contiguous(const std::vector<uint64_t>& shape, const std::vector<uint64_t>& stride) {
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return true;
  uint64_t expected = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    if (shape[i] == 1) continue;
    if (stride[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

enum class InflateStatus { kOk, kExceeded, kCorrupt };

// Raw-deflate decompression of [offset, offset + comp_size) into out, at
// most max_out bytes (kExceeded when there is more).
InflateStatus Inflate(const ByteSource& src, uint64_t offset, uint64_t comp_size, uint64_t max_out,
                      std::string* out) {
  out->clear();
  z_stream z{};
  if (inflateInit2(&z, -MAX_WBITS) != Z_OK) return InflateStatus::kCorrupt;
  std::string in(64 << 10, '\0');
  std::string chunk(64 << 10, '\0');
  uint64_t consumed = 0;
  InflateStatus status = InflateStatus::kCorrupt;
  int rc = Z_OK;
  while (true) {
    if (z.avail_in == 0) {
      uint64_t n = std::min<uint64_t>(in.size(), comp_size - consumed);
      if (n == 0) break;  // input exhausted before the stream ended
      if (!src.ReadAt(offset + consumed, n, in.data())) break;
      consumed += n;
      z.next_in = reinterpret_cast<Bytef*>(in.data());
      z.avail_in = static_cast<uInt>(n);
    }
    z.next_out = reinterpret_cast<Bytef*>(chunk.data());
    z.avail_out = static_cast<uInt>(chunk.size());
    rc = inflate(&z, Z_NO_FLUSH);
    size_t produced = chunk.size() - z.avail_out;
    if (out->size() + produced > max_out) {
      out->append(chunk.data(), max_out - out->size());
      status = InflateStatus::kExceeded;
      break;
    }
    out->append(chunk.data(), produced);
    if (rc == Z_STREAM_END) {
      status = InflateStatus::kOk;
      break;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) break;
    if (rc == Z_BUF_ERROR && z.avail_in != 0) break;
  }
  inflateEnd(&z);
  return status;
}

class ZipAnalyzer {
 public:
  ZipAnalyzer(const ByteSource& src, const Context& ctx)
      : src_(src), ctx_(ctx), opts_(ctx.options()) {}

  Format Run() {
    if (!ReadDirectory()) return Format::kZip;
    CheckEntries();
    WalkLocalHeaders();
    Format kind = Classify();
    for (size_t i = 0; i < entries_.size(); ++i) {
      if (ctx_.OutOfTime()) break;
      AnalyzeMember(entries_[i]);
    }
    if (kind == Format::kTorchScript) {
      ctx_.Add(Severity::kInfo, "torchscript.code",
               "TorchScript archive with " + std::to_string(code_files_.size()) +
                   " code files; the code runs when the model is loaded",
               0);
      for (const auto& name : code_files_) {
        ctx_.state().torchscript_code.push_back(
            ctx_.location().empty() ? name : ctx_.location() + "!" + name);
      }
    }
    return kind;
  }

 private:
  bool Read(uint64_t offset, uint64_t n, std::string* out) { return ReadRange(src_, offset, n, out); }

  bool ReadDirectory() {
    uint64_t size = src_.size();
    if (size < kEndSize) {
      ctx_.Malformed("zip.no_end_record", "zip archive shorter than its end record", 0);
      return false;
    }
    uint64_t window = std::min<uint64_t>(size, kEndSize + kMaxComment);
    std::string tail;
    if (!Read(size - window, window, &tail)) return false;
    // The last end-record signature, as miniz and Python's zipfile take it.
    uint64_t end_pos = UINT64_MAX;
    for (size_t i = tail.size() - kEndSize + 1; i-- > 0;) {
      if (Le32(tail, i) == kEndSig) {
        end_pos = size - window + i;
        break;
      }
    }
    if (end_pos == UINT64_MAX) {
      ctx_.Malformed("zip.no_end_record", "no end of central directory record", 0);
      return false;
    }
    Cursor c(src_, end_pos + 4, size);
    uint16_t disk = 0, cd_disk = 0, n_disk = 0, n_total = 0, comment_len = 0;
    uint32_t cd_size32 = 0, cd_offset32 = 0;
    if (!c.ReadU16(&disk) || !c.ReadU16(&cd_disk) || !c.ReadU16(&n_disk) || !c.ReadU16(&n_total) ||
        !c.ReadU32(&cd_size32) || !c.ReadU32(&cd_offset32) || !c.ReadU16(&comment_len)) {
      ctx_.Malformed("zip.no_end_record", "truncated end of central directory record", end_pos);
      return false;
    }
    if (end_pos + kEndSize + comment_len != size) {
      ctx_.Add(Severity::kLow, "zip.trailing_data",
               "the end record's comment length does not reach the end of the file", end_pos);
    }
    uint64_t entries = n_total;
    cd_size_ = cd_size32;
    cd_offset_ = cd_offset32;
    uint64_t directory_end = end_pos;  // where the central directory should end
    bool zip64 = false;
    if (end_pos >= 20) {
      std::string loc;
      if (Read(end_pos - 20, 20, &loc) && Le32(loc, 0) == kEnd64LocatorSig) {
        uint64_t rec = static_cast<uint64_t>(Le32(loc, 8)) | (static_cast<uint64_t>(Le32(loc, 12)) << 32);
        Cursor r(src_, rec, end_pos - 20);
        uint32_t sig = 0, disk64 = 0, cd_disk64 = 0;
        uint64_t rec_size = 0, n_disk64 = 0, n_total64 = 0, cd_size64 = 0, cd_offset64 = 0;
        uint16_t made = 0, needed = 0;
        if (!r.ReadU32(&sig) || sig != kEnd64Sig || !r.ReadU64(&rec_size) || !r.ReadU16(&made) ||
            !r.ReadU16(&needed) || !r.ReadU32(&disk64) || !r.ReadU32(&cd_disk64) ||
            !r.ReadU64(&n_disk64) || !r.ReadU64(&n_total64) || !r.ReadU64(&cd_size64) ||
            !r.ReadU64(&cd_offset64)) {
          ctx_.Malformed("zip.no_end_record", "bad zip64 end of central directory record", rec);
          return false;
        }
        zip64 = true;
        if (disk64 != 0 || cd_disk64 != 0 || n_disk64 != n_total64) {
          ctx_.Malformed("zip.multi_disk", "multi-disk archives are not supported", rec);
          return false;
        }
        entries = n_total64;
        cd_size_ = cd_size64;
        cd_offset_ = cd_offset64;
        directory_end = rec;
      }
    }
    if (disk != 0 || cd_disk != 0) {
      ctx_.Malformed("zip.multi_disk", "multi-disk archives are not supported", end_pos);
      return false;
    }
    if (!zip64 && n_disk != n_total) {
      ctx_.Malformed("zip.bad_end_record", "entry counts in the end record disagree", end_pos);
      return false;
    }
    if (cd_offset_ > directory_end || cd_size_ > directory_end - cd_offset_) {
      ctx_.Malformed("zip.bad_end_record", "central directory outside the file", end_pos);
      return false;
    }
    if (cd_offset_ + cd_size_ != directory_end) {
      // Python's zipfile shifts every offset by this gap; miniz does not.
      ctx_.Add(Severity::kHigh, "zip.layout",
               "bytes between the central directory and the end record: readers locate "
               "members differently",
               cd_offset_ + cd_size_);
      std::string sig;
      bool at_offset = Read(cd_offset_, 4, &sig) && Le32(sig, 0) == kCentralSig;
      if (!at_offset && Read(directory_end - cd_size_, 4, &sig) && Le32(sig, 0) == kCentralSig) {
        // Only the shifted view is an archive (data was prepended): read that.
        shift_ = directory_end - cd_size_ - cd_offset_;
        cd_offset_ += shift_;
      }
    }
    if (entries > opts_.max_zip_entries) {
      ctx_.Malformed("limit.zip_entries",
                     std::to_string(entries) + " entries, more than max_zip_entries", end_pos);
      return false;
    }
    if (entries * 46 > cd_size_) {
      ctx_.Malformed("zip.bad_end_record", "central directory too small for its entry count",
                     end_pos);
      return false;
    }
    return ReadCentral(entries);
  }

  bool ReadCentral(uint64_t count) {
    Cursor c(src_, cd_offset_, cd_offset_ + cd_size_);
    entries_.reserve(count);
    for (uint64_t i = 0; i < count; ++i) {
      uint64_t at = c.pos();
      uint32_t sig = 0, crc = 0, comp = 0, size = 0, ext = 0, local = 0;
      uint16_t made = 0, needed = 0, flags = 0, method = 0, time = 0, date = 0, name_len = 0,
               extra_len = 0, comment_len = 0, disk = 0, internal = 0;
      if (!c.ReadU32(&sig) || sig != kCentralSig || !c.ReadU16(&made) || !c.ReadU16(&needed) ||
          !c.ReadU16(&flags) || !c.ReadU16(&method) || !c.ReadU16(&time) || !c.ReadU16(&date) ||
          !c.ReadU32(&crc) || !c.ReadU32(&comp) || !c.ReadU32(&size) || !c.ReadU16(&name_len) ||
          !c.ReadU16(&extra_len) || !c.ReadU16(&comment_len) || !c.ReadU16(&disk) ||
          !c.ReadU16(&internal) || !c.ReadU32(&ext) || !c.ReadU32(&local)) {
        ctx_.Malformed("zip.bad_central_directory",
                       "central directory entry " + std::to_string(i) + " is malformed", at);
        return false;
      }
      Entry e;
      std::string extra;
      if (!c.ReadBytes(name_len, &e.name) || !c.ReadBytes(extra_len, &extra) ||
          !c.Skip(comment_len)) {
        ctx_.Malformed("zip.bad_central_directory",
                       "central directory entry " + std::to_string(i) + " is truncated", at);
        return false;
      }
      e.made_by = made;
      e.flags = flags;
      e.method = method;
      e.crc = crc;
      e.comp_size = comp;
      e.size = size;
      e.local_offset = local;
      e.external_attr = ext;
      ApplyZip64(extra, size == 0xffffffff, comp == 0xffffffff, local == 0xffffffff, &e);
      if (e.local_offset > UINT64_MAX - shift_) {
        ctx_.Malformed("zip.bad_central_directory", "entry offset overflows", at);
        return false;
      }
      e.local_offset += shift_;
      entries_.push_back(std::move(e));
    }
    if (!c.AtEnd()) {
      ctx_.Add(Severity::kMedium, "zip.layout",
               "central directory holds bytes after its last entry", c.pos());
    }
    return true;
  }

  void CheckEntries() {
    std::map<std::string, size_t> seen;
    for (Entry& e : entries_) {
      const std::string& n = e.name;
      if (!seen.emplace(n, 0).second) {
        ctx_.Add(Severity::kHigh, "zip.duplicate_name",
                 "two entries named '" + n + "': readers disagree on which one they load",
                 e.local_offset);
      }
      std::string why = UnsafeName(n);
      if (!why.empty()) {
        ctx_.Add(Severity::kHigh, "zip.path_traversal",
                 "entry '" + n + "' has " + why + " and would be extracted outside its folder",
                 e.local_offset);
      }
      if ((e.made_by >> 8) == 3 && ((e.external_attr >> 16) & 0170000) == 0120000) {
        ctx_.Add(Severity::kHigh, "zip.symlink", "entry '" + n + "' is a symbolic link",
                 e.local_offset);
      }
      if ((e.flags & 0x0041) != 0 || (e.flags & 0x2000) != 0) {
        ctx_.Add(Severity::kHigh, "zip.encrypted",
                 "entry '" + n + "' is marked encrypted; its content cannot be scanned",
                 e.local_offset);
        continue;
      }
      CheckLocalHeader(e);
    }
    // Overlapping members: the "overlapping files" bomb, and bytes that two
    // names share.
    std::vector<const Entry*> by_offset;
    for (const Entry& e : entries_) {
      if (e.readable) by_offset.push_back(&e);
    }
    std::sort(by_offset.begin(), by_offset.end(),
              [](const Entry* a, const Entry* b) { return a->local_offset < b->local_offset; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
      const Entry* prev = by_offset[i - 1];
      if (prev->data_offset + prev->comp_size > by_offset[i]->local_offset) {
        ctx_.Add(Severity::kHigh, "zip.overlap",
                 "entries '" + prev->name + "' and '" + by_offset[i]->name + "' overlap",
                 by_offset[i]->local_offset);
      }
    }
  }

  void CheckLocalHeader(Entry& e) {
    const std::string& n = e.name;
    Cursor c(src_, e.local_offset, src_.size());
    uint32_t sig = 0, crc = 0, comp = 0, size = 0;
    uint16_t needed = 0, flags = 0, method = 0, time = 0, date = 0, name_len = 0, extra_len = 0;
    std::string name;
    std::string extra;
    if (!c.ReadU32(&sig) || sig != kLocalSig || !c.ReadU16(&needed) || !c.ReadU16(&flags) ||
        !c.ReadU16(&method) || !c.ReadU16(&time) || !c.ReadU16(&date) || !c.ReadU32(&crc) ||
        !c.ReadU32(&comp) || !c.ReadU32(&size) || !c.ReadU16(&name_len) ||
        !c.ReadU16(&extra_len) || !c.ReadBytes(name_len, &name) || !c.ReadBytes(extra_len, &extra)) {
      ctx_.Malformed("zip.bad_local_header", "entry '" + n + "' has no valid local header",
                     e.local_offset);
      return;
    }
    if (name != n) {
      ctx_.Add(Severity::kHigh, "zip.name_mismatch",
               "central directory names '" + n + "' but the local header names '" + name +
                   "': PyTorch reads one name, other tools the other",
               e.local_offset);
    }
    if (method != e.method || (flags & 0x0041) != (e.flags & 0x0041)) {
      ctx_.Add(Severity::kHigh, "zip.header_mismatch",
               "entry '" + n + "': method or flags differ between local header and central directory",
               e.local_offset);
    }
    if ((flags & 0x0041) != 0) {
      ctx_.Add(Severity::kHigh, "zip.encrypted",
               "entry '" + n + "' is encrypted in its local header", e.local_offset);
      return;
    }
    if ((flags & 0x0008) == 0) {
      Entry local;
      local.crc = crc;
      local.comp_size = comp;
      local.size = size;
      ApplyZip64(extra, size == 0xffffffff, comp == 0xffffffff, false, &local);
      if (local.crc != e.crc || local.comp_size != e.comp_size || local.size != e.size) {
        ctx_.Add(Severity::kHigh, "zip.header_mismatch",
                 "entry '" + n + "': CRC or sizes differ between local header and central directory",
                 e.local_offset);
      }
    }
    e.data_offset = c.pos();
    if (e.comp_size > src_.size() - e.data_offset || e.data_offset + e.comp_size > cd_offset_) {
      ctx_.Malformed("zip.bounds", "entry '" + n + "' data runs past the archive's members",
                     e.local_offset);
      return;
    }
    if (e.method == 0 && e.comp_size != e.size) {
      ctx_.Malformed("zip.bad_size", "stored entry '" + n + "' has different sizes", e.local_offset);
      return;
    }
    if (e.method != 0 && e.method != 8) {
      ctx_.Malformed("zip.unsupported_method",
                     "entry '" + n + "' uses compression method " + std::to_string(e.method) +
                         ", which the scanner cannot read",
                     e.local_offset);
      return;
    }
    if (e.method == 8 && e.size > opts_.bomb_min_bytes &&
        e.size / std::max<uint64_t>(e.comp_size, 1) > opts_.bomb_ratio) {
      ctx_.Add(Severity::kHigh, "zip.bomb",
               "entry '" + n + "' expands " + std::to_string(e.comp_size) + " bytes to " +
                   std::to_string(e.size) + " (decompression bomb)",
               e.local_offset);
      return;
    }
    e.readable = true;
  }

  // A sequential reader (streaming unzip) finds members through local
  // headers; flag those the central directory does not list.
  void WalkLocalHeaders() {
    std::map<uint64_t, const Entry*> by_offset;
    for (const Entry& e : entries_) by_offset.emplace(e.local_offset, &e);
    uint64_t pos = 0;
    size_t steps = 0;
    std::string sig;
    if (!entries_.empty() && by_offset.begin()->first != 0) {
      ctx_.Add(Severity::kMedium, "zip.prefix_data",
               "bytes before the first member: the file is also something other than a zip", 0);
    }
    while (pos < cd_offset_ && steps++ <= entries_.size() + 16) {
      if (!Read(pos, 4, &sig) || Le32(sig, 0) != kLocalSig) return;
      auto it = by_offset.find(pos);
      if (it == by_offset.end()) {
        ctx_.Add(Severity::kHigh, "zip.hidden_entry",
                 "a local header that the central directory does not list: streaming readers "
                 "see a member PyTorch does not",
                 pos);
        std::string h;
        if (!Read(pos, 30, &h)) return;
        uint16_t flags = static_cast<uint16_t>(Le32(h, 6) & 0xffff);
        if ((flags & 0x0008) != 0) return;
        uint64_t comp = Le32(h, 18);
        uint64_t name_len = Le32(h, 26) & 0xffff;
        uint64_t extra_len = Le32(h, 26) >> 16;
        pos += 30 + name_len + extra_len + comp;
        continue;
      }
      const Entry& e = *it->second;
      if (!e.readable) return;
      uint64_t next = e.data_offset + e.comp_size;
      if ((e.flags & 0x0008) != 0) {
        // Data descriptor: optional signature, CRC, sizes of 4 or 8 bytes.
        bool found = false;
        for (uint64_t skip : {16, 24, 12, 20}) {
          std::string s;
          if (skip == 16 || skip == 24) {
            if (!Read(next, 4, &s) || Le32(s, 0) != kDescriptorSig) continue;
          }
          if (Read(next + skip, 4, &s) && (Le32(s, 0) == kLocalSig || Le32(s, 0) == kCentralSig)) {
            next += skip;
            found = true;
            break;
          }
        }
        if (!found) return;
      }
      pos = next;
    }
  }

  Format Classify() {
    std::set<std::string> names;
    for (const Entry& e : entries_) names.insert(e.name);
    std::string root;
    std::set<std::string> roots;
    for (const Entry& e : entries_) {
      size_t slash = e.name.find('/');
      if (slash != std::string::npos && e.name.substr(slash) == "/data.pkl") {
        if (root.empty()) root = e.name.substr(0, slash);
        roots.insert(e.name.substr(0, slash));
      }
    }
    if (!root.empty()) {
      root_ = root;
      for (const Entry& e : entries_) by_name_.emplace(e.name, &e);
      if (roots.size() > 1) {
        ctx_.Add(Severity::kLow, "torch.multiple_roots",
                 "archive holds several top-level folders with data.pkl; PyTorch loads the first",
                 0);
      }
      std::string code_prefix = root + "/code/";
      for (const Entry& e : entries_) {
        if (StartsWith(e.name, code_prefix) && EndsWith(e.name, ".py")) {
          code_files_.push_back(e.name);
          std::string module = e.name.substr(code_prefix.size());
          module.resize(module.size() - 3);
          std::replace(module.begin(), module.end(), '/', '.');
          CollectClasses(e, module);
        }
      }
      if (!code_files_.empty() || names.count(root + "/constants.pkl") > 0) {
        torchscript_ = true;
        return Format::kTorchScript;
      }
      return Format::kTorchZip;
    }
    bool all_npy = !entries_.empty();
    for (const Entry& e : entries_) all_npy = all_npy && EndsWith(e.name, ".npy");
    if (all_npy) return Format::kNumpyZip;
    if (names.count("config.json") > 0 &&
        (names.count("metadata.json") > 0 || names.count("model.weights.h5") > 0)) {
      keras_ = true;
      return Format::kKeras;
    }
    return Format::kZip;
  }

  // The classes a TorchScript code file defines ("class Name(" at the start
  // of a line), as module.Name.
  void CollectClasses(const Entry& e, const std::string& module) {
    std::string code;
    if (!e.readable || !ReadWhole(e, ctx_.Member(e.name), &code)) return;
    size_t pos = 0;
    while (pos < code.size()) {
      size_t end = code.find('\n', pos);
      if (end == std::string::npos) end = code.size();
      std::string_view line(code.data() + pos, end - pos);
      if (StartsWith(line, "class ")) {
        size_t stop = line.find_first_of("(:", 6);
        if (stop != std::string_view::npos) {
          torchscript_classes_.insert(module + "." + std::string(line.substr(6, stop - 6)));
        }
      }
      pos = end + 1;
    }
  }

  // Reads a member whole (bounded), checking sizes and CRC.
  bool ReadWhole(const Entry& e, const Context& mctx, std::string* out) {
    if (e.size > opts_.max_inflated_member) {
      mctx.Malformed("limit.zip_member",
                     "member of " + std::to_string(e.size) +
                         " bytes needs analysis but is larger than max_inflated_member",
                     0);
      return false;
    }
    ScanState& state = ctx_.state();
    if (state.inflated_total + e.size > opts_.max_inflated_total) {
      mctx.Malformed("limit.zip_total", "archive members to analyse exceed max_inflated_total", 0);
      return false;
    }
    if (e.method == 0) {
      if (!Read(e.data_offset, e.size, out)) return false;
    } else {
      InflateStatus st = Inflate(src_, e.data_offset, e.comp_size, e.size + 1, out);
      if (st == InflateStatus::kCorrupt) {
        mctx.Malformed("zip.bad_deflate", "member's deflate stream is corrupt or truncated", 0);
        return false;
      }
      if (st == InflateStatus::kExceeded || out->size() != e.size) {
        ctx_.Add(Severity::kHigh, "zip.size_mismatch",
                 "member '" + e.name + "' inflates to a size other than the one declared",
                 e.local_offset);
        return false;
      }
    }
    state.inflated_total += out->size();
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32_z(crc, reinterpret_cast<const Bytef*>(out->data()), out->size());
    if (static_cast<uint32_t>(crc) != e.crc) {
      ctx_.Add(Severity::kHigh, "zip.crc_mismatch",
               "member '" + e.name +
                   "' does not match its CRC: PyTorch loads it, CRC-checking tools refuse it",
               e.local_offset);
    }
    return true;
  }

  void AnalyzeMember(const Entry& e) {
    if (!e.readable || EndsWith(e.name, "/")) return;
    Context mctx = ctx_.Member(e.name);
    bool expected_pickle = EndsWith(e.name, ".pkl") || EndsWith(e.name, ".debug_pkl");
    PickleRun run;
    if (torchscript_) {
      run.kind = PickleKind::kTorchScript;
      run.torchscript_classes = &torchscript_classes_;
    }
    if (expected_pickle) {
      std::string data;
      if (!ReadWhole(e, mctx, &data)) return;
      OwnedSource member(std::move(data));
      std::string storage_dir = TensorStorageDir(e);
      // One more than there is room for, so that a full list is noted.
      if (!storage_dir.empty()) run.max_tensors = ctx_.TensorRoom() + 1;
      PickleOutcome outcome = RunPickles(member, 0, member.size(), run, mctx);
      std::vector<PickleTensor> tensors = std::move(outcome.tensors);
      std::vector<TensorName> names = std::move(outcome.tensor_names);
      bool truncated = outcome.tensors_truncated;
      RecordPickleOutcome(std::move(outcome), mctx);
      if (!storage_dir.empty()) ListTensors(storage_dir, tensors, names, truncated);
      return;
    }
    if (keras_ && e.name == "config.json") {
      std::string data;
      if (!ReadWhole(e, mctx, &data)) return;
      AnalyzeKerasConfig(OwnedSource(std::move(data)), mctx);
      return;
    }
    // Any other member: sniff its first bytes, whatever its name.
    std::string prefix;
    if (e.method == 0) {
      if (!Read(e.data_offset, std::min<uint64_t>(e.size, kSniffBytes), &prefix)) return;
    } else if (Inflate(src_, e.data_offset, e.comp_size, kSniffBytes, &prefix) ==
               InflateStatus::kCorrupt && prefix.empty()) {
      mctx.Malformed("zip.bad_deflate", "member's deflate stream is corrupt", 0);
      return;
    }
    Format f = SniffPrefix(prefix);
    bool maybe_pickle = f == Format::kPickle ||
                        (f == Format::kUnknown && LooksLikePickleStart(MemorySource(prefix), 0));
    if (f == Format::kUnknown && !maybe_pickle) return;
    if ((f == Format::kZip || f == Format::kTar) && mctx.depth() > opts_.max_nesting) {
      mctx.Add(Severity::kHigh, "zip.nesting",
               "archive nested deeper than max_nesting; not analysed", 0);
      return;
    }
    std::string data;
    std::unique_ptr<ByteSource> member;
    if (e.method == 0 && f != Format::kZip) {
      member = std::make_unique<SliceSource>(src_, e.data_offset, e.size);
    } else {
      if (!ReadWhole(e, mctx, &data)) return;
      member = std::make_unique<OwnedSource>(std::move(data));
    }
    if (maybe_pickle) {
      // Tensor bytes can look like a pickle's first opcode; only a stream
      // that really is a pickle (or imports something) counts.
      PickleOutcome outcome = RunPickles(*member, 0, member->size(), run, mctx);
      if (outcome.pickles == 0 && !outcome.suspicious) return;
      mctx.Add(Severity::kInfo, "zip.pickle_member",
               "member holds a pickle though its name does not say so", 0);
      // No loader unpickles this member by name: trailing bytes after a
      // harmless pickle are tensor data, not a malformed file.
      if (!outcome.suspicious) outcome.error = false;
      RecordPickleOutcome(std::move(outcome), mctx);
      return;
    }
    AnalyzeAny(*member, mctx);
  }

  // Where the storages of the tensors a member's pickle rebuilds live:
  // "<root>/data/" for data.pkl, "<root>/constants/" for a TorchScript
  // archive's constants.pkl; empty when its tensors are not listed (a
  // repeated name lists them once).
  std::string TensorStorageDir(const Entry& member) const {
    if (!ctx_.ListsTensors() || root_.empty()) return {};
    auto first = by_name_.find(member.name);
    if (first == by_name_.end() || first->second != &member) return {};
    if (member.name == root_ + "/data.pkl") return root_ + "/data/";
    if (torchscript_ && member.name == root_ + "/constants.pkl") return root_ + "/constants/";
    return {};
  }

  void ListTensors(const std::string& storage_dir, const std::vector<PickleTensor>& tensors,
                   const std::vector<TensorName>& names, bool truncated) {
    std::vector<TensorLayout> placed(tensors.size());
    std::vector<bool> ok(tensors.size());
    for (size_t i = 0; i < tensors.size(); ++i) ok[i] = Locate(storage_dir, tensors[i], &placed[i]);
    bool constants = EndsWith(storage_dir, "/constants/");
    for (const TensorName& n : names) {
      if (!ok[n.tensor]) continue;
      TensorLayout layout = placed[n.tensor];
      if (constants) {
        // constants.pkl holds a tuple; the code calls its items CONSTANTS.c<i>.
        if (n.name.empty() || n.name.find_first_not_of("0123456789") != std::string::npos) {
          continue;
        }
        layout.name = "CONSTANTS.c" + n.name;
      } else {
        layout.name = n.name;
      }
      ctx_.AddTensor(std::move(layout));
    }
    if (truncated) ctx_.TensorsTruncated();
  }

  // Places a tensor in the file: its storage must be a stored (not
  // compressed) member, the tensor contiguous and inside the storage.
  bool Locate(const std::string& storage_dir, const PickleTensor& t, TensorLayout* out) const {
    const StorageType* type = FindStorageType(t.storage_class);
    if (type == nullptr) return false;
    auto it = by_name_.find(storage_dir + t.key);
    if (it == by_name_.end()) return false;
    const Entry& e = *it->second;
    if (!e.readable || e.method != 0) return false;
    uint64_t count = 0;
    uint64_t end = 0;
    if (!ElementCount(t.shape, &count) || !Contiguous(t.shape, t.stride) ||
        __builtin_add_overflow(t.storage_offset, count, &end) ||
        end > e.size / type->element_size) {
      return false;
    }
    out->dtype = type->dtype;
    out->shape = t.shape;
    out->offset = e.data_offset + t.storage_offset * type->element_size;
    out->length = count * type->element_size;
    return true;
  }

  const ByteSource& src_;
  const Context& ctx_;
  const ScanOptions& opts_;
  std::string root_;  // the torch archive's folder ("archive"), if it is one
  std::map<std::string, const Entry*> by_name_;  // the first entry of each name
  uint64_t cd_offset_ = 0;
  uint64_t cd_size_ = 0;
  uint64_t shift_ = 0;  // bytes prepended to the archive (Python's zipfile view)
  std::vector<Entry> entries_;
  bool torchscript_ = false;
  bool keras_ = false;
  std::vector<std::string> code_files_;
  std::set<std::string> torchscript_classes_;
};

}  // namespace

bool HasZipDirectory(const ByteSource& src) {
  uint64_t size = src.size();
  if (size < kEndSize) return false;
  uint64_t window = std::min<uint64_t>(size, kEndSize + kMaxComment);
  std::string tail;
  if (!ReadRange(src, size - window, window, &tail)) return false;
  for (size_t i = tail.size() - kEndSize + 1; i-- > 0;) {
    if (Le32(tail, i) != kEndSig) continue;
    uint64_t end_pos = size - window + i;
    uint64_t cd_size = Le32(tail, i + 12);
    uint64_t cd_offset = Le32(tail, i + 16);
    std::string sig;
    if (cd_size == 0xffffffff || cd_offset == 0xffffffff) return true;  // zip64: trust it
    if (cd_size < 46 || cd_size > end_pos) return false;
    // Where miniz looks, or where Python's zipfile looks when data was prepended.
    for (uint64_t at : {cd_offset, end_pos - cd_size}) {
      if (ReadRange(src, at, 4, &sig) && Le32(sig, 0) == kCentralSig) return true;
    }
    return false;
  }
  return false;
}

Format AnalyzeZip(const ByteSource& src, const Context& ctx) {
  return ZipAnalyzer(src, ctx).Run();
}

}  // namespace sigil::scanner
