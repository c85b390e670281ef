#include "cli/commands.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace sigil::cli {
namespace {

TEST_CASE("tables pad columns to the widest cell", "[cli]") {
  CHECK(FormatTable({{"A", "BB", "C"}, {"long", "x", ""}}) == "A     BB  C\nlong  x\n");
  CHECK(FormatTable({}).empty());
}

TEST_CASE("digests are shortened to 12 hex digits", "[cli]") {
  CHECK(ShortDigest("sha256:0123456789abcdef0123") == "0123456789ab");
  CHECK(ShortDigest("") == "");
}

TEST_CASE("versions are listed with digest, size, state and aliases", "[cli]") {
  auto versions = nlohmann::json::parse(R"([
    {"version":"1.1","digest":"sha256:aaaaaaaaaaaabbbb","size":500,"total_size":3145728,
     "created":"2026-11-23T18:00:00Z","state":"available","aliases":["production","staging"]},
    {"version":"1.0","digest":"sha256:ccccccccccccdddd","size":400,
     "created":"2026-11-22T18:00:00Z","state":"quarantined","aliases":[]}
  ])");
  CHECK(FormatVersions(versions) ==
        "VERSION  DIGEST        SIZE     CREATED               STATE        ALIASES\n"
        "1.1      aaaaaaaaaaaa  3.0 MiB  2026-11-23T18:00:00Z  available    production,staging\n"
        "1.0      cccccccccccc  400 B    2026-11-22T18:00:00Z  quarantined\n");
}

TEST_CASE("repositories are listed with their version count", "[cli]") {
  auto repos = nlohmann::json::parse(R"([
    {"name":"health/triage","created":"2026-11-23T18:00:00Z","labels":{"team":"h"},
     "versions":["1.0","1.1"]}
  ])");
  CHECK(FormatRepositories(repos) ==
        "REPOSITORY     VERSIONS  CREATED               LABELS\n"
        "health/triage  2         2026-11-23T18:00:00Z  team=h\n");
}

}  // namespace
}  // namespace sigil::cli
