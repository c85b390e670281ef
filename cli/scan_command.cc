#include "cli/scan_command.h"

#include <sys/stat.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <utility>

#include "cli/model_files.h"
#include "cli/progress.h"
#include "core/json.h"

namespace sigil::cli {
namespace {

scanner::Verdict Worst(scanner::Verdict a, scanner::Verdict b) {
  auto rank = [](scanner::Verdict v) {
    return v == scanner::Verdict::kBlocked ? 2 : v == scanner::Verdict::kInvalid ? 1 : 0;
  };
  return rank(a) >= rank(b) ? a : b;
}

scanner::Verdict Overall(const ScanOutcome& outcome) {
  scanner::Verdict v = scanner::Verdict::kClean;
  for (const ScanTarget& t : outcome.targets) v = Worst(v, t.report.verdict);
  return v;
}

}  // namespace

core::Result<ScanOutcome> ScanPaths(const std::vector<std::string>& paths,
                                    const scanner::ScanOptions& options) {
  ScanOutcome out;
  for (const std::string& path : paths) {
    ASSIGN_OR_RETURN(std::vector<LocalFile> files, ListModelFiles(path));
    std::vector<scanner::FileReport> reports;
    for (const LocalFile& f : files) {
      ASSIGN_OR_RETURN(scanner::FileReport r, scanner::ScanFile(f.path, options));
      r.path = f.title;
      reports.push_back(std::move(r));
    }
    struct stat st {};
    bool directory = ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    ScanTarget target{path, directory, scanner::AggregateReports(std::move(reports), options.block_at)};
    out.clean = out.clean && target.report.verdict == scanner::Verdict::kClean;
    out.targets.push_back(std::move(target));
  }
  return out;
}

std::string FormatScanTable(const ScanOutcome& outcome) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof(line), "%-8s  %-15s  %10s  %s\n", "VERDICT", "FORMAT", "SIZE", "PATH");
  out += line;
  size_t files = 0, clean = 0, blocked = 0, invalid = 0;
  for (const ScanTarget& t : outcome.targets) {
    for (const scanner::FileReport& f : t.report.files) {
      ++files;
      if (f.verdict == scanner::Verdict::kClean) ++clean;
      if (f.verdict == scanner::Verdict::kBlocked) ++blocked;
      if (f.verdict == scanner::Verdict::kInvalid) ++invalid;
      // A directory's files are shown under it; a single file as given.
      std::string shown = t.directory ? t.path + "/" + f.path : t.path;
      std::snprintf(line, sizeof(line), "%-8s  %-15s  %10s  ",
                    std::string(scanner::VerdictName(f.verdict)).c_str(),
                    std::string(scanner::FormatName(f.format)).c_str(), FormatBytes(f.size).c_str());
      out += line;
      out += shown + "\n";
      for (const scanner::Finding& finding : f.findings) {
        if (!finding.malformed && finding.severity < t.report.block_at) continue;
        out += "          " + std::string(scanner::SeverityName(finding.severity)) + " " + finding.rule;
        if (!finding.global.empty()) out += " " + finding.global;
        if (!finding.location.empty()) out += " in " + finding.location;
        out += ": " + finding.message + "\n";
      }
    }
  }
  std::snprintf(line, sizeof(line), "%zu file(s): %zu clean, %zu blocked, %zu invalid\n", files, clean,
                blocked, invalid);
  out += line;
  return out;
}

std::string FormatScanJson(const ScanOutcome& outcome) {
  core::Json targets = core::Json::array();
  for (const ScanTarget& t : outcome.targets) {
    targets.push_back({{"path", t.path}, {"report", scanner::VersionReportToJson(t.report)}});
  }
  core::Json j = {{"verdict", std::string(scanner::VerdictName(Overall(outcome)))}, {"targets", targets}};
  return core::DumpJson(j) + "\n";
}

}  // namespace sigil::cli
