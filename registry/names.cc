#include "registry/names.h"

#include <cstdint>
#include <string>

namespace sigil::registry {
namespace {

constexpr size_t kMaxRepoName = 255;
constexpr size_t kMaxTag = 128;
constexpr size_t kMaxPath = 4096;
constexpr size_t kMaxLabelKey = 128;
constexpr size_t kMaxLabelValue = 1024;

// Route words of docs/api.md: a repository component with one of these names
// would make /api/v1/models/{repo}/... ambiguous.
constexpr std::string_view kReservedComponents[] = {
    "versions",     "aliases",     "labels",     "files",     "blobs", "uploads", "manifest",
    "attestations", "evaluations", "promotions", "referrers", "scan",  "sign",
    "access",       "stats",       "evidence",
};

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z'); }

// Shows a name in an error message without echoing control bytes or
// unbounded input back to the client.
std::string Quote(std::string_view s) {
  std::string out = "'";
  size_t n = 0;
  for (unsigned char c : s) {
    if (++n > 80) {
      out += "...";
      break;
    }
    if (c < 0x20 || c == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "'";
}

// One component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
bool ValidRepoComponent(std::string_view c) {
  size_t i = 0;
  auto alnum_run = [&] {
    size_t start = i;
    while (i < c.size() && IsLowerAlnum(c[i])) ++i;
    return i > start;
  };
  if (!alnum_run()) return false;
  while (i < c.size()) {
    if (c[i] == '.') {
      ++i;
    } else if (c[i] == '_') {
      ++i;
      if (i < c.size() && c[i] == '_') ++i;
    } else if (c[i] == '-') {
      while (i < c.size() && c[i] == '-') ++i;
    } else {
      return false;
    }
    if (!alnum_run()) return false;
  }
  return true;
}

// Decodes one UTF-8 sequence at s[i]; returns its length, 0 when malformed
// (overlong forms, surrogates and values past U+10FFFF included).
size_t Utf8Length(std::string_view s, size_t i, uint32_t* cp) {
  auto b0 = static_cast<unsigned char>(s[i]);
  size_t len;
  uint32_t v;
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  } else if ((b0 & 0xe0) == 0xc0) {
    len = 2;
    v = b0 & 0x1f;
  } else if ((b0 & 0xf0) == 0xe0) {
    len = 3;
    v = b0 & 0x0f;
  } else if ((b0 & 0xf8) == 0xf0) {
    len = 4;
    v = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xc0) != 0x80) return 0;
    v = (v << 6) | (b & 0x3f);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < kMin[len] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
  *cp = v;
  return len;
}

}  // namespace

core::Status ValidateRepoName(std::string_view name) {
  auto bad = [&](std::string why) {
    return core::InvalidArgument("repository name " + Quote(name) + " " + why, "NAME_INVALID");
  };
  if (name.empty()) return bad("is empty");
  if (name.size() > kMaxRepoName) {
    return bad("is longer than " + std::to_string(kMaxRepoName) + " characters");
  }
  size_t start = 0;
  while (true) {
    size_t slash = name.find('/', start);
    std::string_view component =
        name.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!ValidRepoComponent(component)) {
      return bad("does not match [a-z0-9]+((.|_|__|-+)[a-z0-9]+)*(/...)*");
    }
    for (std::string_view word : kReservedComponents) {
      if (component == word) return bad("uses the reserved word " + Quote(word) + " as a component");
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return core::OkStatus();
}

core::Status ValidateTag(std::string_view tag) {
  bool ok = !tag.empty() && tag.size() <= kMaxTag && (IsAlnum(tag[0]) || tag[0] == '_');
  for (size_t i = 1; ok && i < tag.size(); ++i) {
    char c = tag[i];
    ok = IsAlnum(c) || c == '_' || c == '.' || c == '-';
  }
  if (!ok) {
    return core::InvalidArgument("tag " + Quote(tag) + " does not match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}",
                                 "TAG_INVALID");
  }
  return core::OkStatus();
}

core::Status ValidateFilePath(std::string_view path) {
  auto bad = [&](std::string why) {
    return core::InvalidArgument("file path " + Quote(path) + " " + why, "PATH_INVALID");
  };
  if (path.empty()) return bad("is empty");
  if (path.size() > kMaxPath) return bad("is longer than " + std::to_string(kMaxPath) + " bytes");
  if (path.front() == '/') return bad("is absolute");
  for (unsigned char c : path) {
    if (c < 0x20 || c == 0x7f) return bad("contains a control character");
    if (c == '\\') return bad("contains a backslash");
  }
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    std::string_view component =
        path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (component.empty()) return bad("has an empty component");
    if (component == "." || component == "..") return bad("has a '" + std::string(component) + "' component");
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return core::OkStatus();
}

core::Status ValidateLabel(std::string_view key, std::string_view value) {
  bool key_ok = !key.empty() && key.size() <= kMaxLabelKey && IsLowerAlnum(key[0]);
  for (size_t i = 1; key_ok && i < key.size(); ++i) {
    char c = key[i];
    key_ok = IsLowerAlnum(c) || c == '.' || c == '_' || c == '/' || c == '-';
  }
  if (!key_ok) {
    return core::InvalidArgument("label key " + Quote(key) + " does not match [a-z0-9][a-z0-9._/-]{0,127}",
                                 "LABEL_INVALID");
  }
  if (value.size() > kMaxLabelValue) {
    return core::InvalidArgument(
        "label " + Quote(key) + " has a value longer than " + std::to_string(kMaxLabelValue) + " bytes",
        "LABEL_INVALID");
  }
  for (size_t i = 0; i < value.size();) {
    uint32_t cp = 0;
    size_t len = Utf8Length(value, i, &cp);
    // C0, DEL and C1 controls are not printable.
    if (len == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
      return core::InvalidArgument("label " + Quote(key) + " has a value that is not printable UTF-8",
                                   "LABEL_INVALID");
    }
    i += len;
  }
  return core::OkStatus();
}

}  // namespace sigil::registry
