#include "core/json.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace sigil::core {
namespace {

TEST_CASE("json parsing reports errors as values", "[core]") {
  CHECK(ParseJson(R"({"a":1})").value()["a"] == 1);
  for (const char* bad : {"", "{", "{\"a\":}", "[1,2", "nul", "{\"a\":1}x"}) {
    INFO(bad);
    auto r = ParseJson(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().reason() == "JSON_INVALID");
  }
  CHECK_FALSE(ParseJson("\"\xff\"").ok());  // invalid UTF-8
}

TEST_CASE("json limits on size and depth", "[core]") {
  JsonLimits limits;
  limits.max_bytes = 10;
  CHECK(ParseJson(R"({"a":"0123456789"})", limits).status().reason() == "JSON_INVALID");
  std::string deep(100000, '[');
  auto r = ParseJson(deep);
  REQUIRE_FALSE(r.ok());
  std::string ok_depth = std::string(10, '[') + std::string(10, ']');
  CHECK(ParseJson(ok_depth).ok());
}

TEST_CASE("typed getters name the field", "[core]") {
  Json v = ParseJson(R"({"s":"x","i":-3,"u":7})").value();
  CHECK(GetString(v, "s").value() == "x");
  CHECK(GetInt(v, "i").value() == -3);
  CHECK(GetUint(v, "u").value() == 7);
  CHECK(GetUint(v, "i").status().message() == "field 'i' must be a non-negative integer");
  CHECK(GetString(v, "missing").status().message() == "missing field 'missing'");
  CHECK(GetString(v, "i").status().code() == Code::kInvalidArgument);
}

TEST_CASE("error body shape", "[core]") {
  Status s = InvalidArgument("digest mismatch", "DIGEST_MISMATCH").WithDetail(R"({"a":1})");
  Json body = ParseJson(ErrorJson(s)).value();
  CHECK(body["error"]["code"] == "DIGEST_MISMATCH");
  CHECK(body["error"]["message"] == "digest mismatch");
  CHECK(body["error"]["detail"]["a"] == 1);
  Json plain = ParseJson(ErrorJson(NotFound("x"))).value();
  CHECK(plain["error"]["detail"].is_object());
}

}  // namespace
}  // namespace sigil::core
