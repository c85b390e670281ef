#include "api/range.h"

#include <catch2/catch.hpp>

#include "api/http.h"

namespace sigil::api {
namespace {

TEST_CASE("range header against a 100-byte resource", "[api]") {
  struct Case {
    const char* header;
    core::Code code;
    uint64_t offset, length;
  };
  const Case cases[] = {
      {"bytes=0-9", core::Code::kOk, 0, 10},
      {"bytes=10-", core::Code::kOk, 10, 90},
      {"bytes=-10", core::Code::kOk, 90, 10},
      {"bytes=-1000", core::Code::kOk, 0, 100},
      {"bytes=90-1000", core::Code::kOk, 90, 10},
      {"bytes=99-99", core::Code::kOk, 99, 1},
      {" bytes=0-0 ", core::Code::kOk, 0, 1},
      {"bytes=100-", core::Code::kOutOfRange, 0, 0},
      {"bytes=100-200", core::Code::kOutOfRange, 0, 0},
      {"bytes=-0", core::Code::kOutOfRange, 0, 0},
      {"bytes=5-4", core::Code::kInvalidArgument, 0, 0},
      {"bytes=0-1,5-6", core::Code::kInvalidArgument, 0, 0},
      {"bytes=a-b", core::Code::kInvalidArgument, 0, 0},
      {"bytes=-", core::Code::kInvalidArgument, 0, 0},
      {"bytes=+1-2", core::Code::kInvalidArgument, 0, 0},
      {"bytes=99999999999999999999-", core::Code::kInvalidArgument, 0, 0},
      {"items=0-1", core::Code::kInvalidArgument, 0, 0},
      {"", core::Code::kInvalidArgument, 0, 0},
      {"bytes=0x10-", core::Code::kInvalidArgument, 0, 0},
  };
  for (const auto& c : cases) {
    INFO(c.header);
    auto r = ParseRange(c.header, 100);
    if (c.code == core::Code::kOk) {
      REQUIRE(r.ok());
      CHECK(r->offset == c.offset);
      CHECK(r->length == c.length);
    } else {
      REQUIRE_FALSE(r.ok());
      CHECK(r.status().code() == c.code);
    }
  }
  CHECK(ParseRange("bytes=0-", 0).status().code() == core::Code::kOutOfRange);
}

TEST_CASE("upload content-range forms", "[api]") {
  auto a = ParseContentRange("0-99");
  REQUIRE(a.ok());
  CHECK(a->start == 0);
  CHECK(*a->end == 99);
  auto b = ParseContentRange("bytes 100-199/1000");
  REQUIRE(b.ok());
  CHECK(b->start == 100);
  CHECK(*b->end == 199);
  auto c = ParseContentRange("bytes 5-/*");
  REQUIRE(c.ok());
  CHECK_FALSE(c->end.has_value());
  for (const char* bad : {"", "-", "a-b", "5-4", "bytes 1-2/x", "1", "1-2-3", "-5"}) {
    INFO(bad);
    auto r = ParseContentRange(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().reason() == "RANGE_INVALID");
  }
}

TEST_CASE("query strings and percent decoding", "[api]") {
  auto q = ParseQuery("digest=sha256%3Aab&limit=5&flag&=x&bad=%zz");
  CHECK(q["digest"] == "sha256:ab");
  CHECK(q["limit"] == "5");
  CHECK(q.count("flag") == 1);
  CHECK(q.count("bad") == 0);
  CHECK(q.count("") == 0);
  std::string out;
  CHECK(PercentDecode("a%2Fb", &out));
  CHECK(out == "a/b");
  CHECK_FALSE(PercentDecode("a%2", &out));
  CHECK_FALSE(PercentDecode("%", &out));
}

}  // namespace
}  // namespace sigil::api
