// Digest: a SHA-256 content address, written "sha256:<64 lowercase hex>".
// Sha256: streaming hashing over OpenSSL EVP.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sigil::core {

class Digest {
 public:
  static constexpr size_t kSize = 32;

  Digest() = default;  // all zero; only for containers
  explicit Digest(const std::array<uint8_t, kSize>& bytes) : bytes_(bytes) {}

  // Accepts exactly "sha256:" followed by 64 lowercase hex digits.
  static Result<Digest> Parse(std::string_view text);
  // Accepts exactly 64 lowercase hex digits.
  static Result<Digest> FromHex(std::string_view hex);

  std::string ToString() const;  // "sha256:<hex>"
  std::string Hex() const;
  const std::array<uint8_t, kSize>& bytes() const { return bytes_; }

  auto operator<=>(const Digest&) const = default;

 private:
  std::array<uint8_t, kSize> bytes_{};
};

// Incremental SHA-256. Not thread-safe; cheap to move.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void Update(const void* data, size_t n);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  // Finishes the hash. The object may be reused after Reset().
  Digest Finish();
  void Reset();

  static Digest Of(std::string_view data);

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// SHA-512 of data as 64 raw bytes (SSH signatures may hash with it).
std::string Sha512Raw(std::string_view data);

// Hashes a whole file, streaming.
Result<Digest> HashFile(const std::string& path);

// Lowercase hex of bytes, and back (rejects odd length or non-hex).
std::string HexEncode(const void* data, size_t n);
Result<std::string> HexDecode(std::string_view hex);

}  // namespace sigil::core
