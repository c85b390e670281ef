#include "cli/scan_command.h"

#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "tests/support/temp_dir.h"

namespace sigil::cli {
namespace {

std::string EvilPickle() {
  std::string arg = "echo pwned";
  return std::string("\x80\x02", 2) + "cos\nsystem\n" + "X" + std::string(1, static_cast<char>(arg.size())) +
         std::string(3, '\0') + arg + "\x85" + "R.";
}

void Write(const std::string& path, const std::string& data) {
  REQUIRE(core::WriteFileAtomic(path, data).ok());
}

TEST_CASE("sigil scan names a directory's files by their relative paths", "[cli][scan]") {
  testing::TempDir tmp;
  REQUIRE(core::MakeDirs(tmp.Sub("model/sub"), 0700).ok());
  Write(tmp.Sub("model/notes.txt"), "plain text");
  Write(tmp.Sub("model/sub/evil.pkl"), EvilPickle());
  Write(tmp.Sub("single.txt"), "also plain");

  auto outcome = ScanPaths({tmp.Sub("model"), tmp.Sub("single.txt")});
  REQUIRE(outcome.ok());
  CHECK_FALSE(outcome->clean);
  REQUIRE(outcome->targets.size() == 2);
  const ScanTarget& dir = outcome->targets[0];
  CHECK(dir.directory);
  CHECK(dir.report.verdict == scanner::Verdict::kBlocked);
  REQUIRE(dir.report.files.size() == 2);
  CHECK(dir.report.files[0].path == "notes.txt");
  CHECK(dir.report.files[1].path == "sub/evil.pkl");
  CHECK(dir.report.files[1].verdict == scanner::Verdict::kBlocked);
  CHECK_FALSE(outcome->targets[1].directory);
  CHECK(outcome->targets[1].report.verdict == scanner::Verdict::kClean);

  std::string table = FormatScanTable(*outcome);
  CHECK(table.find(tmp.Sub("model") + "/sub/evil.pkl\n") != std::string::npos);
  CHECK(table.find("critical pickle.global os.system") != std::string::npos);
  CHECK(table.find(tmp.Sub("single.txt") + "\n") != std::string::npos);
  CHECK(table.find("3 file(s): 2 clean, 1 blocked, 0 invalid\n") != std::string::npos);

  auto json = nlohmann::json::parse(FormatScanJson(*outcome));
  CHECK(json["verdict"] == "blocked");
  CHECK(json["targets"][0]["path"] == tmp.Sub("model"));
  CHECK(json["targets"][0]["report"]["files"][1]["globals"][0] == "os.system");
  CHECK(json["targets"][1]["report"]["verdict"] == "clean");
}

TEST_CASE("sigil scan of clean files is clean; a missing path is an error", "[cli][scan]") {
  testing::TempDir tmp;
  Write(tmp.Sub("a.txt"), "hello");
  auto clean = ScanPaths({tmp.Sub("a.txt")});
  REQUIRE(clean.ok());
  CHECK(clean->clean);
  CHECK(nlohmann::json::parse(FormatScanJson(*clean))["verdict"] == "clean");
  CHECK(ScanPaths({tmp.Sub("missing")}).status().code() == core::Code::kNotFound);
}

}  // namespace
}  // namespace sigil::cli
