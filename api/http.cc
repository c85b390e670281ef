#include "api/http.h"

namespace sigil::api {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int hi = HexDigit(in[i + 1]);
    int lo = HexDigit(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>((hi << 4) | lo));
    i += 2;
  }
  return true;
}

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    parts.emplace_back(path.substr(i, j - i));
    i = j + 1;
  }
  return parts;
}

std::map<std::string, std::string> ParseQuery(std::string_view raw) {
  std::map<std::string, std::string> out;
  size_t i = 0;
  while (i < raw.size()) {
    size_t j = raw.find('&', i);
    if (j == std::string_view::npos) j = raw.size();
    std::string_view item = raw.substr(i, j - i);
    size_t eq = item.find('=');
    std::string key, value;
    if (PercentDecode(item.substr(0, eq), &key) &&
        (eq == std::string_view::npos || PercentDecode(item.substr(eq + 1), &value)) &&
        !key.empty()) {
      out[key] = value;
    }
    i = j + 1;
  }
  return out;
}

}  // namespace sigil::api
