#include "core/digest.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include <openssl/evp.h>

namespace sigil::core {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

std::string HexEncode(const void* data, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto* p = static_cast<const uint8_t*>(data);
  std::string out(n * 2, '\0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kHex[p[i] >> 4];
    out[2 * i + 1] = kHex[p[i] & 0xf];
  }
  return out;
}

Result<std::string> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) return InvalidArgument("hex string has odd length");
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = HexValue(hex[2 * i]);
    int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return InvalidArgument("not lowercase hex");
    out[i] = static_cast<char>((hi << 4) | lo);
  }
  return out;
}

Result<Digest> Digest::FromHex(std::string_view hex) {
  if (hex.size() != 2 * kSize) {
    return InvalidArgument("digest must have 64 hex digits", "DIGEST_INVALID");
  }
  std::array<uint8_t, kSize> bytes{};
  for (size_t i = 0; i < kSize; ++i) {
    int hi = HexValue(hex[2 * i]);
    int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return InvalidArgument("digest must be lowercase hex", "DIGEST_INVALID");
    }
    bytes[i] = static_cast<uint8_t>((hi << 4) | lo);
  }
  return Digest(bytes);
}

Result<Digest> Digest::Parse(std::string_view text) {
  constexpr std::string_view kPrefix = "sha256:";
  if (text.substr(0, kPrefix.size()) != kPrefix) {
    return InvalidArgument("digest must be sha256:<64 hex>", "DIGEST_INVALID");
  }
  return FromHex(text.substr(kPrefix.size()));
}

std::string Digest::Hex() const { return HexEncode(bytes_.data(), bytes_.size()); }
std::string Digest::ToString() const { return "sha256:" + Hex(); }

struct Sha256::Ctx {
  EVP_MD_CTX* md = nullptr;
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  Reset();
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::Reset() { EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr); }

void Sha256::Update(const void* data, size_t n) {
  if (n > 0) EVP_DigestUpdate(ctx_->md, data, n);
}

Digest Sha256::Finish() {
  std::array<uint8_t, Digest::kSize> out{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_->md, out.data(), &len);
  return Digest(out);
}

Digest Sha256::Of(std::string_view data) {
  std::array<uint8_t, Digest::kSize> out{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr);
  return Digest(out);
}

std::string Sha512Raw(std::string_view data) {
  std::string out(64, '\0');
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), reinterpret_cast<unsigned char*>(out.data()), &len,
             EVP_sha512(), nullptr);
  return out;
}

Result<Digest> HashFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open " + path);
  Sha256 hash;
  std::vector<char> buf(1 << 20);
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return ErrnoStatus(err, "read " + path);
    }
    if (n == 0) break;
    hash.Update(buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  return hash.Finish();
}

}  // namespace sigil::core
