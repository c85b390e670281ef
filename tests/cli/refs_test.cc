#include "cli/refs.h"

#include <catch2/catch.hpp>

namespace sigil::cli {
namespace {

const std::string kHex(64, 'a');

TEST_CASE("references with a tag or a digest parse", "[cli]") {
  struct Case {
    std::string text, repo, tag, digest;
  };
  const Case cases[] = {
      {"model:1.0", "model", "1.0", ""},
      {"health/triage-llm:1.4.0", "health/triage-llm", "1.4.0", ""},
      {"health/triage-llm:production", "health/triage-llm", "production", ""},
      {"reg.example/org/m.v2:v_2-rc.1", "reg.example/org/m.v2", "v_2-rc.1", ""},
      {"a/b/c@sha256:" + kHex, "a/b/c", "", "sha256:" + kHex},
      {"m__x:Latest", "m__x", "Latest", ""},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    auto r = ParseReference(c.text);
    REQUIRE(r.ok());
    CHECK(r->repository == c.repo);
    CHECK(r->tag == c.tag);
    CHECK(r->digest == c.digest);
    CHECK(r->ToString() == c.text);
    CHECK(r->ref() == (c.digest.empty() ? c.tag : c.digest));
  }
}

TEST_CASE("malformed references are refused with REFERENCE_INVALID", "[cli]") {
  const std::string cases[] = {
      "",
      "model",                       // no tag
      "a/b",                         // no tag after the last '/'
      "host:5000/model",             // ':' before the last '/' is not a tag
      ":1.0",                        // empty repository
      "model:",                      // empty tag
      "Model:1.0",                   // upper case repository
      "a//b:1",                      // empty component
      "/abs:1",                      // leading '/'
      "a/../b:1",                    // '..' component
      "model:-x",                    // tag may not start with '-'
      "model:1.0:2",                 // ':' inside the tag
      "model:" + std::string(129, 'a'),  // tag too long
      "model@sha256:abc",            // short digest
      "model@sha256:" + std::string(64, 'A'),  // upper-case hex
      "model@md5:" + kHex,
      "model:1@sha256:" + kHex,      // both tag and digest
      "a/versions:1",                // route word as a component
      "mo del:1",
      "model:1\n",
  };
  for (const std::string& text : cases) {
    INFO(text);
    auto r = ParseReference(text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == core::Code::kInvalidArgument);
    CHECK(r.status().reason() == "REFERENCE_INVALID");
  }
}

TEST_CASE("tag references refuse digests", "[cli]") {
  auto r = ParseTagReference("model@sha256:" + kHex);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().reason() == "REFERENCE_INVALID");
  REQUIRE(ParseTagReference("a/b:v1").ok());
}

TEST_CASE("bare repository names are validated", "[cli]") {
  CHECK(ValidateRepository("health/triage-llm").ok());
  CHECK(ValidateRepository("Health").reason() == "REFERENCE_INVALID");
  CHECK(ValidateRepository("a:1").reason() == "REFERENCE_INVALID");
}

}  // namespace
}  // namespace sigil::cli
