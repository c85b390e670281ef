#include "core/clock.h"

#include <catch2/catch.hpp>

namespace sigil::core {
namespace {

TEST_CASE("rfc3339 formatting and parsing", "[core]") {
  CHECK(FormatRfc3339(0) == "1970-01-01T00:00:00Z");
  CHECK(FormatRfc3339(1'700'000'000'000'000) == "2023-11-14T22:13:20Z");
  CHECK(ParseRfc3339("2023-11-14T22:13:20Z").value() == 1'700'000'000'000'000);
  CHECK(ParseRfc3339("2023-11-14T23:13:20+01:00").value() == 1'700'000'000'000'000);
  CHECK(ParseRfc3339("2023-11-14T22:13:20.5Z").value() == 1'700'000'000'500'000);
  for (const char* bad : {"", "2023-11-14", "2023-11-14T22:13:20", "2023-13-14T22:13:20Z",
                          "2023-11-14T22:13:20Zjunk"}) {
    INFO(bad);
    CHECK_FALSE(ParseRfc3339(bad).ok());
  }
}

TEST_CASE("durations", "[core]") {
  CHECK(ParseDuration("30s").value() == 30'000'000);
  CHECK(ParseDuration("2d").value() == 2LL * 86400 * 1'000'000);
  CHECK_FALSE(ParseDuration("5").ok());
  CHECK_FALSE(ParseDuration("5w").ok());
  CHECK_FALSE(ParseDuration("-5s").ok());
}

TEST_CASE("manual clock moves only when told", "[core]") {
  ManualClock clock(100);
  CHECK(clock.NowMicros() == 100);
  clock.Advance(5);
  CHECK(clock.NowMicros() == 105);
}

}  // namespace
}  // namespace sigil::core
