#include "signing/base64.h"

#include <catch2/catch.hpp>

namespace sigil::signing {
namespace {

// RFC 4648 section 10 test vectors.
TEST_CASE("base64 encodes the RFC 4648 vectors", "[signing]") {
  const std::pair<const char*, const char*> cases[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : cases) {
    INFO(plain);
    CHECK(Base64Encode(plain) == encoded);
    auto back = Base64Decode(encoded);
    REQUIRE(back.ok());
    CHECK(*back == plain);
  }
}

TEST_CASE("base64 decode accepts URL-safe and unpadded forms", "[signing]") {
  std::string bytes = "\xfb\xff\xbf\x3e";  // exercises '+' '/' and '-' '_'
  std::string std_form = Base64Encode(bytes);
  CHECK(std_form == "+/+/Pg==");
  for (const char* form : {"+/+/Pg==", "+/+/Pg", "-_-_Pg==", "-_-_Pg"}) {
    INFO(form);
    auto r = Base64Decode(form);
    REQUIRE(r.ok());
    CHECK(*r == bytes);
  }
}

TEST_CASE("base64 decode rejects malformed input", "[signing]") {
  for (const char* bad : {"Zg=", "Z", "Zm9v\n", "Zm 9v", "Zm9v!", "Zh==", "Zm9vYg===", "=Zm9",
                          "Zm=v", "Zg==Zg=="}) {
    INFO(bad);
    auto r = Base64Decode(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == core::Code::kInvalidArgument);
    CHECK(r.status().reason() == "BASE64_INVALID");
  }
}

}  // namespace
}  // namespace sigil::signing
