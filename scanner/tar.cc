// Tar archives. torch.load tries tarfile before anything else on a non-zip
// file: the oldest torch.save format is a tar of `sys_info`, `pickle`,
// `storages` and `tensors`, and the `pickle` member is unpickled. Members
// are windows into the file; only pickles are read.
#include <algorithm>
#include <set>
#include <string>

#include "scanner/context.h"
#include "scanner/pickle.h"

namespace sigil::scanner {
namespace {

constexpr uint64_t kBlock = 512;

// Tar numbers: octal text, or base-256 when the first byte's high bit is set.
bool ParseNumber(const std::string& h, size_t at, size_t len, uint64_t* out) {
  auto first = static_cast<unsigned char>(h[at]);
  uint64_t v = 0;
  if ((first & 0x80) != 0) {
    if (first != 0x80) return false;  // negative or too large
    for (size_t i = at + 1; i < at + len; ++i) {
      if (v >> 56 != 0) return false;
      v = (v << 8) | static_cast<unsigned char>(h[i]);
    }
    *out = v;
    return true;
  }
  size_t i = at;
  while (i < at + len && h[i] == ' ') ++i;
  bool digits = false;
  for (; i < at + len && h[i] >= '0' && h[i] <= '7'; ++i) {
    if (v >> 60 != 0) return false;
    v = v * 8 + static_cast<uint64_t>(h[i] - '0');
    digits = true;
  }
  for (; i < at + len; ++i) {
    if (h[i] != ' ' && h[i] != '\0') return false;
  }
  *out = v;
  return digits;
}

// The header checksum Python's tarfile verifies (unsigned and signed sums).
bool ChecksumOk(const std::string& h) {
  uint64_t stored = 0;
  if (!ParseNumber(h, 148, 8, &stored)) return false;
  int64_t unsigned_sum = 0;
  int64_t signed_sum = 0;
  for (size_t i = 0; i < kBlock; ++i) {
    bool field = i >= 148 && i < 156;
    unsigned_sum += field ? ' ' : static_cast<unsigned char>(h[i]);
    signed_sum += field ? ' ' : static_cast<signed char>(h[i]);
  }
  return stored == static_cast<uint64_t>(unsigned_sum) || stored == static_cast<uint64_t>(signed_sum);
}

std::string CString(const std::string& h, size_t at, size_t len) {
  std::string s = h.substr(at, len);
  size_t nul = s.find('\0');
  if (nul != std::string::npos) s.resize(nul);
  return s;
}

bool UnsafeName(const std::string& name) {
  if (name.empty() || name[0] == '/') return true;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    if (name.compare(start, end - start, "..") == 0 && end - start == 2) return true;
    start = end + 1;
  }
  return false;
}

}  // namespace

bool LooksLikeTar(const ByteSource& src) {
  std::string h;
  return ReadRange(src, 0, kBlock, &h) && h[0] != '\0' && ChecksumOk(h);
}

Format AnalyzeTar(const ByteSource& src, const Context& ctx) {
  std::set<std::string> names;
  std::string long_name;
  uint64_t pos = 0;
  size_t count = 0;
  bool torch_pickle = false;
  bool torch_storages = false;
  while (true) {
    if (ctx.OutOfTime()) break;
    std::string h;
    if (pos == src.size()) break;  // no end-of-archive blocks: tarfile accepts that too
    if (!ReadRange(src, pos, kBlock, &h)) {
      ctx.Malformed("tar.truncated", "archive ends inside a header", pos);
      break;
    }
    if (h.find_first_not_of('\0') == std::string::npos) break;  // end of archive
    if (!ChecksumOk(h)) {
      ctx.Malformed("tar.bad_header", "header checksum does not match", pos);
      break;
    }
    if (++count > ctx.options().max_zip_entries) {
      ctx.Malformed("limit.tar_entries", "more entries than max_zip_entries", pos);
      break;
    }
    uint64_t size = 0;
    if (!ParseNumber(h, 124, 12, &size)) {
      ctx.Malformed("tar.bad_header", "member size is not a number", pos);
      break;
    }
    uint64_t data = pos + kBlock;
    if (size > src.size() - std::min(data, src.size())) {
      ctx.Malformed("tar.truncated", "member data runs past the end of the file", pos);
      break;
    }
    char type = h[156];
    std::string name = CString(h, 0, 100);
    if (h.compare(257, 5, "ustar") == 0) {
      std::string prefix = CString(h, 345, 155);
      if (!prefix.empty()) name = prefix + "/" + name;
    }
    if (!long_name.empty()) {
      name = long_name;
      long_name.clear();
    }
    uint64_t next = data + (size + kBlock - 1) / kBlock * kBlock;
    if (type == 'L') {  // GNU long name for the next member
      if (size > 4096 || !ReadRange(src, data, size, &long_name)) {
        ctx.Malformed("tar.bad_header", "bad GNU long name", pos);
        break;
      }
      long_name = CString(long_name, 0, long_name.size());
      pos = next;
      continue;
    }
    if (UnsafeName(name)) {
      ctx.Add(Severity::kHigh, "tar.path_traversal",
              "member '" + name + "' would be extracted outside its folder", pos);
    }
    if (type == '1' || type == '2') {
      ctx.Add(Severity::kHigh, "tar.link",
              "member '" + name + "' is a link; extracting it reads or writes another path", pos);
    }
    if ((type == '0' || type == '\0' || type == '7') && !names.insert(name).second) {
      ctx.Add(Severity::kHigh, "tar.duplicate_name",
              "two members named '" + name + "': readers disagree on which one they load", pos);
    }
    if (type == '0' || type == '\0' || type == '7') {
      Context mctx = ctx.Member(name);
      SliceSource member(src, data, size);
      std::string base = name.substr(name.find_last_of('/') + 1);
      torch_pickle = torch_pickle || base == "pickle";
      torch_storages = torch_storages || base == "storages";
      std::string prefix;
      ReadRange(member, 0, std::min<uint64_t>(size, kSniffBytes), &prefix);
      Format f = SniffPrefix(prefix);
      if (base == "pickle" || base == "sys_info") {
        // torch.load unpickles these whole.
        RecordPickleOutcome(RunPickles(member, 0, size, PickleRun{}, mctx), mctx);
      } else if (f == Format::kPickle || (f == Format::kUnknown && LooksLikePickleStart(member, 0))) {
        // `storages` and `tensors` interleave pickles with raw bytes, and
        // other members may hold anything: only pickles that import
        // something, or parse cleanly, count.
        PickleOutcome outcome = RunPickles(member, 0, size, PickleRun{}, mctx);
        if (outcome.pickles > 0 || outcome.suspicious) {
          if (!outcome.suspicious) outcome.error = false;
          RecordPickleOutcome(std::move(outcome), mctx);
        }
      } else if (f != Format::kUnknown) {
        if (mctx.depth() > ctx.options().max_nesting) {
          mctx.Add(Severity::kHigh, "zip.nesting", "archive nested deeper than max_nesting", 0);
        } else {
          AnalyzeAny(member, mctx);
        }
      }
    }
    pos = next;
    if (pos > src.size()) {
      ctx.Malformed("tar.truncated", "member padding runs past the end of the file", data);
      break;
    }
  }
  return torch_pickle && torch_storages ? Format::kTorchLegacy : Format::kTar;
}

}  // namespace sigil::scanner
