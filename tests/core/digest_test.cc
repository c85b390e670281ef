#include "core/digest.h"

#include <catch2/catch.hpp>

#include "core/fs.h"
#include "tests/support/temp_dir.h"

namespace sigil::core {
namespace {

// FIPS 180-2 known answers.
TEST_CASE("sha256 known answers", "[core]") {
  CHECK(Sha256::Of("").Hex() ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Sha256::Of("abc").Hex() ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(Sha256::Of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").Hex() ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

  // A million 'a', fed in uneven pieces.
  Sha256 h;
  std::string chunk(977, 'a');
  size_t left = 1'000'000;
  while (left > 0) {
    size_t n = std::min(left, chunk.size());
    h.Update(chunk.data(), n);
    left -= n;
  }
  CHECK(h.Finish().Hex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha512 known answers (FIPS 180-2)", "[core]") {
  auto hex = [](const std::string& raw) { return HexEncode(raw.data(), raw.size()); };
  CHECK(hex(Sha512Raw("abc")) ==
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
  CHECK(hex(Sha512Raw("")) ==
        "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
        "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e");
}

TEST_CASE("digest parsing accepts only sha256 with 64 lowercase hex", "[core]") {
  std::string hex(64, 'a');
  auto d = Digest::Parse("sha256:" + hex);
  REQUIRE(d.ok());
  CHECK(d->ToString() == "sha256:" + hex);
  CHECK(d->Hex() == hex);

  const char* bad[] = {
      "",
      "sha256:",
      "sha256:abc",
      "SHA256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      "sha512:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      "sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      "sha256:gaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      "sha256:../aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      " sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  };
  for (const char* text : bad) {
    INFO(text);
    auto r = Digest::Parse(text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK(r.status().reason() == "DIGEST_INVALID");
  }
  std::string nul = "sha256:" + std::string(63, 'a') + std::string(1, '\0');
  CHECK_FALSE(Digest::Parse(nul).ok());
}

TEST_CASE("hex round trip", "[core]") {
  std::string bytes("\x00\x01\xfe\xff", 4);
  CHECK(HexEncode(bytes.data(), bytes.size()) == "0001feff");
  CHECK(HexDecode("0001feff").value() == bytes);
  CHECK_FALSE(HexDecode("abc").ok());
  CHECK_FALSE(HexDecode("zz").ok());
}

TEST_CASE("hashing a file streams the same digest", "[core]") {
  testing::TempDir dir;
  std::string data(3 << 20, 'x');
  REQUIRE(WriteFileAtomic(dir.Sub("f"), data).ok());
  CHECK(HashFile(dir.Sub("f")).value() == Sha256::Of(data));
  CHECK(HashFile(dir.Sub("missing")).status().code() == Code::kNotFound);
}

}  // namespace
}  // namespace sigil::core
