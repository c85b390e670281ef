#include "api/range.h"

#include <charconv>
#include <string>

namespace sigil::api {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Digits only (no sign, no spaces), at most 19 of them so it cannot overflow.
bool ParseU64(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

core::Status Malformed(std::string_view header) {
  return core::InvalidArgument("malformed range '" + std::string(header.substr(0, 100)) + "'",
                               "RANGE_INVALID");
}

}  // namespace

core::Result<ByteRange> ParseRange(std::string_view header, uint64_t size) {
  std::string_view h = Trim(header);
  constexpr std::string_view kUnit = "bytes=";
  if (h.substr(0, kUnit.size()) != kUnit) return Malformed(header);
  h = Trim(h.substr(kUnit.size()));
  if (h.find(',') != std::string_view::npos) {
    return core::InvalidArgument("only one byte range per request is supported", "RANGE_INVALID");
  }
  auto dash = h.find('-');
  if (dash == std::string_view::npos) return Malformed(header);
  std::string_view first = Trim(h.substr(0, dash));
  std::string_view last = Trim(h.substr(dash + 1));
  auto unsatisfiable = [&] {
    return core::OutOfRange("range " + std::string(h) + " is outside the " +
                                std::to_string(size) + " bytes",
                            "RANGE_NOT_SATISFIABLE");
  };
  if (first.empty()) {
    uint64_t suffix = 0;
    if (!ParseU64(last, &suffix)) return Malformed(header);
    if (suffix == 0 || size == 0) return unsatisfiable();
    if (suffix > size) suffix = size;
    return ByteRange{size - suffix, suffix};
  }
  uint64_t start = 0;
  if (!ParseU64(first, &start)) return Malformed(header);
  uint64_t end = 0;
  if (last.empty()) {
    if (start >= size) return unsatisfiable();
    return ByteRange{start, size - start};
  }
  if (!ParseU64(last, &end)) return Malformed(header);
  if (end < start) return Malformed(header);
  if (start >= size) return unsatisfiable();
  if (end >= size) end = size - 1;
  return ByteRange{start, end - start + 1};
}

core::Result<UploadRange> ParseContentRange(std::string_view header) {
  std::string_view h = Trim(header);
  if (h.substr(0, 6) == "bytes ") h = Trim(h.substr(6));
  auto slash = h.find('/');
  if (slash != std::string_view::npos) {
    std::string_view total = h.substr(slash + 1);
    uint64_t ignored = 0;
    if (total != "*" && !ParseU64(total, &ignored)) return Malformed(header);
    h = h.substr(0, slash);
  }
  auto dash = h.find('-');
  if (dash == std::string_view::npos) return Malformed(header);
  UploadRange r;
  if (!ParseU64(h.substr(0, dash), &r.start)) return Malformed(header);
  std::string_view last = h.substr(dash + 1);
  if (!last.empty()) {
    uint64_t end = 0;
    if (!ParseU64(last, &end) || end < r.start) return Malformed(header);
    r.end = end;
  }
  return r;
}

}  // namespace sigil::api
