#include "registry/names.h"

#include <string>

#include <catch2/catch.hpp>

namespace sigil::registry {
namespace {

struct Case {
  std::string input;
  bool ok;
};

void Check(core::Status (*validate)(std::string_view), const std::vector<Case>& cases,
           const std::string& reason) {
  for (const auto& c : cases) {
    INFO("input: '" << c.input << "'");
    core::Status s = validate(c.input);
    CHECK(s.ok() == c.ok);
    if (!c.ok) {
      CHECK(s.code() == core::Code::kInvalidArgument);
      CHECK(s.reason() == reason);
    }
  }
}

TEST_CASE("repository names follow the OCI grammar", "[registry]") {
  Check(ValidateRepoName,
        {
            {"triage", true},
            {"health/triage-llm", true},
            {"a/b/c/d", true},
            {"a.b_c__d---e", true},
            {"0abc9", true},
            {"versions2/x", true},
            {"my-versions", true},
            {std::string(255, 'a'), true},
            {std::string(127, 'a') + "/" + std::string(127, 'b'), true},
            {"", false},
            {std::string(256, 'a'), false},
            {"Health/triage", false},
            {"health/Triage", false},
            {"health//triage", false},
            {"/health", false},
            {"health/", false},
            {"-health", false},
            {"health-", false},
            {"a..b", false},
            {"a___b", false},
            {"a._b", false},
            {"a/../b", false},
            {"a b", false},
            {"a:b", false},
            {"a\nb", false},
            {std::string("a\0b", 3), false},
            {"versions", false},
            {"health/versions", false},
            {"health/aliases/x", false},
            {"labels", false},
            {"files/a", false},
            {"blobs", false},
            {"uploads", false},
            {"a/manifest", false},
            {"a/attestations", false},
            {"a/scan", false},
            {"a/evaluations", false},
            {"a/promotions", false},
            {"a/referrers", false},
            {"a/sign", false},
            {"x/access", false},
            {"a/stats", false},
            {"a/evidence/b", false},
        },
        "NAME_INVALID");
}

TEST_CASE("tags follow the OCI tag grammar", "[registry]") {
  Check(ValidateTag,
        {
            {"1.4.0", true},
            {"v1", true},
            {"_x", true},
            {"Production", true},
            {"1.0-rc.1_b", true},
            {std::string(128, 'a'), true},
            {"", false},
            {std::string(129, 'a'), false},
            {".hidden", false},
            {"-x", false},
            {"a/b", false},
            {"a:b", false},
            {"sha256:abc", false},
            {"a b", false},
            {"a\tb", false},
            {"é", false},
        },
        "TAG_INVALID");
}

TEST_CASE("file paths are relative and stay inside the model", "[registry]") {
  Check(ValidateFilePath,
        {
            {"model.safetensors", true},
            {"weights/shard-00001.bin", true},
            {"a/b/c/d.txt", true},
            {".config", true},
            {"..x/y", true},
            {"x../y", true},
            {"dir with space/f", true},
            {"unicodé/ファイル", true},
            {std::string(4096, 'a'), true},
            {"", false},
            {std::string(4097, 'a'), false},
            {"/etc/passwd", false},
            {"..", false},
            {"../x", false},
            {"a/../../x", false},
            {"a/..", false},
            {".", false},
            {"./a", false},
            {"a/./b", false},
            {"a//b", false},
            {"a/", false},
            {"a\\b", false},
            {"..\\x", false},
            {"a\nb", false},
            {"a\rb", false},
            {std::string("a\0b", 3), false},
            {"a\x7f", false},
            {"a\x1b[31m", false},
        },
        "PATH_INVALID");
}

TEST_CASE("labels have bounded keys and printable values", "[registry]") {
  struct LabelCase {
    std::string key, value;
    bool ok;
  };
  std::vector<LabelCase> cases = {
      {"team", "radiology", true},
      {"org.example/owner", "Dr. Ada — ward 7", true},
      {"a", "", true},
      {"0k_e.y-z", "x", true},
      {std::string(128, 'k'), std::string(1024, 'v'), true},
      {"", "x", false},
      {std::string(129, 'k'), "x", false},
      {"Team", "x", false},
      {"-team", "x", false},
      {"te am", "x", false},
      {"team", std::string(1025, 'v'), false},
      {"team", "line\nbreak", false},
      {"team", "tab\there", false},
      {"team", "del\x7f", false},
      {"team", "\xc2\x85", false},      // NEL, a C1 control
      {"team", "\xff", false},          // not UTF-8
      {"team", "\xc0\xaf", false},      // overlong '/'
      {"team", "\xed\xa0\x80", false},  // a surrogate
  };
  for (const auto& c : cases) {
    INFO("key '" << c.key << "' value '" << c.value << "'");
    core::Status s = ValidateLabel(c.key, c.value);
    CHECK(s.ok() == c.ok);
    if (!c.ok) {
      CHECK(s.code() == core::Code::kInvalidArgument);
      CHECK(s.reason() == "LABEL_INVALID");
    }
  }
}

}  // namespace
}  // namespace sigil::registry
