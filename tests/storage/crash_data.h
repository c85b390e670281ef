// The bytes the crash test's child uploads, chunk by chunk: deterministic,
// so the parent knows what every acknowledged offset must hold.
#pragma once

#include <cstdint>
#include <string>

namespace sigil::storage::crash {

inline constexpr int kChunks = 200;

// Chunk k: between 1000 and ~61000 bytes of xorshift output seeded by k.
inline std::string Chunk(int k) {
  const size_t size = 1000 + (static_cast<size_t>(k) * 7919) % 60000;
  uint64_t x = 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(k + 1);
  std::string out(size, '\0');
  for (auto& c : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x >> 32);
  }
  return out;
}

}  // namespace sigil::storage::crash
