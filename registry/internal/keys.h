// Metadata keys of the registry's column families: parts joined by '\0'.
// Names never contain '\0', so a "<repo>\0" prefix cannot match a nested
// repository ("a" vs "a/b") or a longer name.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace sigil::registry::internal {

inline std::string JoinKey(std::initializer_list<std::string_view> parts) {
  std::string out;
  bool first = true;
  for (std::string_view p : parts) {
    if (!first) out.push_back('\0');
    out.append(p);
    first = false;
  }
  return out;
}

}  // namespace sigil::registry::internal
