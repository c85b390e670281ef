// Shared by the fuzz targets: an invariant that does not hold is a crash
// (__builtin_trap), which libFuzzer reports and the replay test fails on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sigil::fuzz {

inline void Check(bool ok) {
  if (!ok) __builtin_trap();
}

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace sigil::fuzz
