#include "cli/pull.h"

#include <catch2/catch.hpp>

namespace sigil::cli {
namespace {

std::vector<PullFile> Files(const std::vector<std::string>& titles) {
  std::vector<PullFile> out;
  for (const auto& t : titles) out.push_back(PullFile{t, core::Sha256::Of(t), t.size()});
  return out;
}

TEST_CASE("safe titles pass", "[cli]") {
  CHECK(CheckTitles(Files({"config.json", "weights/a.safetensors", "weights/b.safetensors",
                           "a.b/c", ".hidden", "x..y"}))
            .ok());
  CHECK(CheckTitles({}).ok());
}

TEST_CASE("titles that could escape or clash are refused", "[cli]") {
  const std::vector<std::vector<std::string>> cases = {
      {"../evil"},
      {"a/../../evil"},
      {"a/.."},
      {"/etc/passwd"},
      {"a//b"},
      {"./a"},
      {"a/./b"},
      {""},
      {"a\\..\\b"},
      {std::string("a\nb")},
      {std::string("a\x01")},
      {"a/"},
      {".sigil-partial/x"},
      {".sigil-partial"},
      {"same", "same"},
      {"a", "a/b"},
      {"w/x/y", "w/x", "w/a"},
  };
  for (const auto& titles : cases) {
    INFO(titles[0]);
    core::Status s = CheckTitles(Files(titles));
    CHECK(s.code() == core::Code::kInvalidArgument);
    CHECK(s.reason() == "PATH_INVALID");
  }
}

}  // namespace
}  // namespace sigil::cli
