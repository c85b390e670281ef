// `sigil scan PATH...`: the server's checks, run locally and offline.
//
// Each PATH is read as `sigil push PATH` would send it (ListModelFiles: a
// file under its base name, or every regular file of a directory under its
// relative path), each file is scanned with scanner::ScanFile and the files
// of one PATH are aggregated as one version (scanner::AggregateReports), so
// the verdicts are the ones the server would reach for a push of PATH.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "scanner/scanner.h"

namespace sigil::cli {

struct ScanTarget {
  std::string path;  // as given
  bool directory = false;
  scanner::VersionReport report;
};

struct ScanOutcome {
  std::vector<ScanTarget> targets;
  bool clean = true;  // every file of every target clean
};

// Errors: those of ListModelFiles and ScanFile (a missing PATH is
// kNotFound). A hostile file is a report, not an error.
core::Result<ScanOutcome> ScanPaths(const std::vector<std::string>& paths,
                                    const scanner::ScanOptions& options = {});

// A table: one line per file (verdict, format, size, path), its blocking or
// malformed findings indented below it, and a closing count.
std::string FormatScanTable(const ScanOutcome& outcome);

// {"verdict": "clean"|"blocked"|"invalid", "targets": [{"path": PATH,
//  "report": <scanner::VersionReportToJson>}]}, one line.
std::string FormatScanJson(const ScanOutcome& outcome);

}  // namespace sigil::cli
