// The scanner's fuzz targets (pickle, zip, safetensors, gguf, npy) share
// this body: the scanner detects the format from content, so each target
// differs only by its seed corpus, which keeps it inside its format.
//
// Invariants checked on every input, besides "no crash, hang or leak":
//  - the report describes the input (size) and its verdict follows from its
//    findings (VerdictFor);
//  - findings are capped at max_findings (plus the one that counts the rest);
//  - globals are sorted and unique;
//  - every tensor lies inside the file, and tensors are listed only for
//    the formats that list them;
//  - scanning through a ReadAtFn (as blobs are scanned) gives the same
//    format, verdict, findings and tensors as scanning the bytes in memory;
//  - the JSON form serializes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/json.h"
#include "scanner/scanner.h"
#include "tests/fuzz/check.h"

namespace sigil::fuzz {

inline bool SameFindings(const scanner::FileReport& a, const scanner::FileReport& b) {
  if (a.findings.size() != b.findings.size()) return false;
  for (size_t i = 0; i < a.findings.size(); ++i) {
    if (a.findings[i].rule != b.findings[i].rule || a.findings[i].offset != b.findings[i].offset ||
        a.findings[i].location != b.findings[i].location) {
      return false;
    }
  }
  return true;
}

inline bool HitTimeLimit(const scanner::FileReport& r) {
  return std::any_of(r.findings.begin(), r.findings.end(),
                     [](const scanner::Finding& f) { return f.rule == "limit.time"; });
}

inline int ScanOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  scanner::ScanOptions options;
  // Below libFuzzer's -timeout=10: the scanner's own time limit is a verdict
  // (invalid), while running past it would be a hang.
  options.time_limit_ms = 4000;
  options.max_findings = 50;

  scanner::FileReport report = scanner::ScanBytes(bytes, options, "input");
  Check(report.size == size);
  Check(report.verdict == scanner::VerdictFor(report.findings, options.block_at));
  Check(report.findings.size() <= options.max_findings + 1);
  Check(std::is_sorted(report.globals.begin(), report.globals.end()));
  Check(std::adjacent_find(report.globals.begin(), report.globals.end()) == report.globals.end());
  for (const scanner::TensorLayout& t : report.tensors) {
    Check(t.offset <= size && t.length <= size - t.offset);
  }
  if (!report.tensors.empty()) {
    Check(report.format == scanner::Format::kSafetensors ||
          report.format == scanner::Format::kTorchZip ||
          report.format == scanner::Format::kTorchScript);
  }

  auto read = [bytes](uint64_t offset, size_t n, char* out) -> core::Status {
    if (offset > bytes.size() || n > bytes.size() - offset) return core::Internal("read past the end");
    std::memcpy(out, bytes.data() + offset, n);
    return core::OkStatus();
  };
  auto via_reader = scanner::ScanReader(read, size, options, "input");
  Check(via_reader.ok());
  if (!HitTimeLimit(report) && !HitTimeLimit(*via_reader)) {
    Check(via_reader->format == report.format);
    Check(via_reader->verdict == report.verdict);
    Check(SameFindings(*via_reader, report));
    Check(via_reader->tensors.size() == report.tensors.size());
  }

  std::string json = core::DumpJson(scanner::ReportToJson(report));
  Check(!json.empty());
  return 0;
}

}  // namespace sigil::fuzz
