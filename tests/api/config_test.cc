#include "api/config.h"

#include <catch2/catch.hpp>

#include "core/fs.h"
#include "tests/support/temp_dir.h"

namespace sigil::api {
namespace {

TEST_CASE("defaults", "[api]") {
  auto c = LoadConfig({}, {});
  REQUIRE(c.ok());
  CHECK(c->data_dir == "./sigil-data");
  CHECK(c->host == "127.0.0.1");
  CHECK(c->port == 7070);
}

TEST_CASE("flags beat environment beat config file", "[api]") {
  testing::TempDir dir;
  REQUIRE(core::WriteFileAtomic(dir.Sub("c.json"),
                                R"({"data":"/from/file","listen":"0.0.0.0:1","gc_grace":"2h","max_connections":3})")
              .ok());
  auto c = LoadConfig({"--config", dir.Sub("c.json"), "--listen", "127.0.0.1:9000"},
                      {{"SIGIL_DATA", "/from/env"}, {"SIGIL_LISTEN", "127.0.0.1:8000"}});
  REQUIRE(c.ok());
  CHECK(c->data_dir == "/from/env");
  CHECK(c->port == 9000);
  CHECK(c->max_connections == 3);
  CHECK(c->gc_grace_micros == 2ll * 3600 * 1'000'000);

  auto e = LoadConfig({}, {{"SIGIL_CONFIG", dir.Sub("c.json")}});
  REQUIRE(e.ok());
  CHECK(e->data_dir == "/from/file");
}

TEST_CASE("bad configuration is refused with the reason", "[api]") {
  CHECK_FALSE(LoadConfig({"--listen", "nohost"}, {}).ok());
  CHECK_FALSE(LoadConfig({"--listen", "h:99999"}, {}).ok());
  CHECK_FALSE(LoadConfig({"--chunk-max", "10"}, {}).ok());
  CHECK_FALSE(LoadConfig({"--bogus", "1"}, {}).ok());
  CHECK_FALSE(LoadConfig({"--data"}, {}).ok());
  CHECK_FALSE(LoadConfig({"stray"}, {}).ok());
  CHECK_FALSE(LoadConfig({}, {{"SIGIL_MAX_CONNECTIONS", "0"}}).ok());
  CHECK_FALSE(LoadConfig({"--config", "/nonexistent/sigil.json"}, {}).ok());
  auto ipv6 = LoadConfig({"--listen=[::1]:7071"}, {});
  REQUIRE(ipv6.ok());
  CHECK(ipv6->host == "::1");
  CHECK(ipv6->port == 7071);
  CHECK(LoadConfig({"--help"}, {})->show_help);
}

TEST_CASE("the free-space reserve from a flag, the environment or the config file", "[api]") {
  CHECK(LoadConfig({}, {}).value().min_free_space == 64ull << 20);
  CHECK(LoadConfig({"--min-free-space", "0"}, {}).value().min_free_space == 0);
  CHECK(LoadConfig({}, {{"SIGIL_MIN_FREE_SPACE", "1048576"}}).value().min_free_space == 1048576);
  testing::TempDir dir;
  REQUIRE(core::WriteFileAtomic(dir.Sub("c.json"), R"({"min_free_space":4096})").ok());
  CHECK(LoadConfig({"--config", dir.Sub("c.json")}, {}).value().min_free_space == 4096);
  CHECK(LoadConfig({"--min-free-space", "64MiB"}, {}).status().code() == core::Code::kInvalidArgument);
}

TEST_CASE("log origin from the environment or a flag and refused with a space", "[api]") {
  auto c = LoadConfig({}, {{"SIGIL_LOG_ORIGIN", "sigil/registry.example"}});
  REQUIRE(c.ok());
  CHECK(c->log_origin == "sigil/registry.example");
  c = LoadConfig({"--log-origin", "sigil/flag"}, {{"SIGIL_LOG_ORIGIN", "sigil/env"}});
  REQUIRE(c.ok());
  CHECK(c->log_origin == "sigil/flag");
  CHECK(LoadConfig({}, {}).value().log_origin.empty());
  CHECK(LoadConfig({"--log-origin", "two words"}, {}).status().code() == core::Code::kInvalidArgument);
  CHECK(LoadConfig({"--log-origin", "a+b"}, {}).status().code() == core::Code::kInvalidArgument);
}

}  // namespace
}  // namespace sigil::api
