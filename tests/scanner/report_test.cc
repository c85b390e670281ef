#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "scanner/scanner.h"
#include "tests/scanner/corpus.h"
#include "tests/support/temp_dir.h"

namespace sigil::scanner {
namespace {

std::string Evil() {
  testing::Pickle p(2);
  p.Call("os", "system", "id").Stop();
  return p.bytes();
}

TEST_CASE("report: JSON form of a file report", "[scanner]") {
  FileReport r = ScanBytes(testing::TorchZip("archive", Evil()), {}, "model/evil.pt");
  core::Json j = ReportToJson(r);
  CHECK(j["path"] == "model/evil.pt");
  CHECK(j["format"] == "pytorch-zip");
  CHECK(j["verdict"] == "blocked");
  CHECK(j["size"] == r.size);
  REQUIRE(j["findings"].is_array());
  bool found = false;
  for (const auto& f : j["findings"]) {
    if (f["rule"] == "pickle.global") {
      found = true;
      CHECK(f["severity"] == "critical");
      CHECK(f["global"] == "os.system");
      CHECK(f["location"] == "archive/data.pkl");
      CHECK(f["offset"] == 2);
      CHECK(f["malformed"] == false);
    }
  }
  CHECK(found);
  CHECK(j["globals"] == core::Json::array({"os.system"}));
  CHECK(j["torchscript_code"].is_array());
  CHECK(j["external_data"].is_array());
}

TEST_CASE("report: a version's verdict and counts", "[scanner]") {
  FileReport clean = ScanBytes(testing::TorchDataPkl(1), {}, "a.pkl");
  FileReport invalid = ScanBytes(testing::Safetensors("{}", 3), {}, "b.safetensors");
  FileReport blocked = ScanBytes(Evil(), {}, "c.pkl");
  REQUIRE(clean.verdict == Verdict::kClean);
  REQUIRE(invalid.verdict == Verdict::kInvalid);
  REQUIRE(blocked.verdict == Verdict::kBlocked);

  CHECK(AggregateReports({clean}).verdict == Verdict::kClean);
  CHECK(AggregateReports({clean, invalid}).verdict == Verdict::kInvalid);
  VersionReport v = AggregateReports({clean, invalid, blocked});
  CHECK(v.verdict == Verdict::kBlocked);
  CHECK(v.max_severity == Severity::kCritical);
  CHECK(v.files.size() == 3);
  CHECK(AggregateReports({}).verdict == Verdict::kClean);

  core::Json j = VersionReportToJson(v);
  CHECK(j["verdict"] == "blocked");
  CHECK(j["max_severity"] == "critical");
  CHECK(j["block_at"] == "medium");
  CHECK(VersionReportToJson(AggregateReports({clean}, Severity::kHigh))["block_at"] == "high");
  // A stricter or laxer threshold recomputes the files' verdicts.
  FileReport unknown_module = ScanBytes(testing::Pickle(2).Global("mypkg", "Net").Stop().bytes());
  REQUIRE(unknown_module.verdict == Verdict::kBlocked);
  CHECK(AggregateReports({unknown_module}, Severity::kHigh).verdict == Verdict::kClean);
  CHECK(AggregateReports({unknown_module}, Severity::kHigh).files[0].verdict == Verdict::kClean);
  CHECK(j["files"].size() == 3);
  CHECK(j["finding_counts"]["critical"].get<int>() >= 1);
  CHECK(j["files"][1]["verdict"] == "invalid");
}

TEST_CASE("report: ScanFile reads files and reports errors as statuses", "[scanner]") {
  sigil::testing::TempDir dir;
  std::string path = dir.Sub("m.pt");
  REQUIRE(core::WriteFileAtomic(path, testing::TorchZip("m", Evil())).ok());
  auto r = ScanFile(path);
  REQUIRE(r.ok());
  CHECK(r->path == path);
  CHECK(r->verdict == Verdict::kBlocked);
  FileReport same = ScanBytes(testing::TorchZip("m", Evil()), {}, path);
  CHECK(core::DumpJson(ReportToJson(*r)) == core::DumpJson(ReportToJson(same)));

  CHECK(ScanFile(dir.Sub("missing")).status().code() == core::Code::kNotFound);
  CHECK(ScanFile(dir.path()).status().code() == core::Code::kInvalidArgument);

  std::string empty = dir.Sub("empty");
  REQUIRE(core::WriteFileAtomic(empty, "").ok());
  auto e = ScanFile(empty);
  REQUIRE(e.ok());
  CHECK(e->format == Format::kUnknown);
  CHECK(e->verdict == Verdict::kClean);
}

TEST_CASE("report: names of enums", "[scanner]") {
  CHECK(SeverityName(Severity::kHigh) == "high");
  CHECK(FormatName(Format::kTorchScript) == "torchscript");
  CHECK(FormatName(Format::kGguf) == "gguf");
  CHECK(VerdictName(Verdict::kInvalid) == "invalid");
  CHECK(VerdictFor({}, Severity::kMedium) == Verdict::kClean);
  Finding low;
  low.severity = Severity::kLow;
  CHECK(VerdictFor({low}, Severity::kMedium) == Verdict::kClean);
  CHECK(VerdictFor({low}, Severity::kLow) == Verdict::kBlocked);
  Finding bad;
  bad.malformed = true;
  bad.severity = Severity::kMedium;
  CHECK(VerdictFor({low, bad}, Severity::kMedium) == Verdict::kInvalid);
}

}  // namespace
}  // namespace sigil::scanner
