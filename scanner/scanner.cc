#include "scanner/scanner.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "scanner/context.h"
#include "scanner/pickle.h"

namespace sigil::scanner {
namespace {

uint64_t ReadLe64(std::string_view b) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[static_cast<size_t>(i)]);
  return v;
}

// A file that starts with a pickle: plain (possibly concatenated) pickles,
// or torch's legacy format (five pickles, then raw storage bytes that
// torch.load copies without unpickling).
Format AnalyzePickleFile(const ByteSource& src, const Context& ctx) {
  PickleRun first_run;
  first_run.max_pickles = 1;
  PickleOutcome first = RunPickles(src, 0, src.size(), first_run, ctx);
  bool legacy = first.legacy_torch_magic && !first.error;
  uint64_t end = first.end;
  bool failed = first.error;
  RecordPickleOutcome(std::move(first), ctx);
  if (failed || end >= src.size()) return legacy ? Format::kTorchLegacy : Format::kPickle;
  PickleRun rest_run;
  if (legacy) rest_run.max_pickles = 4;  // protocol version, sys info, data, storage keys
  PickleOutcome rest = RunPickles(src, end, src.size(), rest_run, ctx);
  if (legacy && !rest.error && rest.pickles < 4) {
    rest.error = true;
    rest.error_offset = rest.end;
    rest.error_message = "legacy torch file ends after " + std::to_string(rest.pickles + 1) +
                         " of its 5 pickles";
  }
  RecordPickleOutcome(std::move(rest), ctx);
  return legacy ? Format::kTorchLegacy : Format::kPickle;
}

}  // namespace

Format SniffPrefix(std::string_view p) {
  auto starts = [&](std::string_view magic) { return p.substr(0, magic.size()) == magic; };
  if (starts(std::string_view("PK\x03\x04", 4)) || starts(std::string_view("PK\x05\x06", 4))) {
    return Format::kZip;
  }
  if (starts("\x93NUMPY")) return Format::kNumpy;
  if (p.size() >= 262 && p.substr(257, 5) == "ustar") return Format::kTar;
  if (starts("GGUF")) return Format::kGguf;
  if (p.size() >= 2 && static_cast<unsigned char>(p[0]) == 0x80 &&
      static_cast<unsigned char>(p[1]) <= 5) {
    return Format::kPickle;
  }
  // safetensors has no magic: a length, then a JSON object. The length is
  // not required to fit, so that a lying one is reported rather than missed.
  if (p.size() >= 10 && p[8] == '{' &&
      (p[9] == '"' || p[9] == '}' || p[9] == ' ' || p[9] == '\n')) {
    uint64_t n = ReadLe64(p.substr(0, 8));
    if (n >= 2) return Format::kSafetensors;
  }
  return Format::kUnknown;
}

Format Sniff(const ByteSource& src, const ScanOptions& options) {
  std::string prefix;
  if (!ReadRange(src, 0, std::min<uint64_t>(src.size(), kSniffBytes), &prefix)) {
    return Format::kUnknown;
  }
  Format f = SniffPrefix(prefix);
  if (f != Format::kUnknown) return f;
  if (LooksLikeTar(src)) return Format::kTar;
  size_t first = prefix.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && prefix[first] == '{' && src.size() <= options.max_json_bytes) {
    std::string text;
    if (ReadRange(src, 0, src.size(), &text)) {
      core::JsonLimits limits;
      limits.max_bytes = options.max_json_bytes;
      auto json = core::ParseJson(text, limits);
      if (json.ok() && json->is_object() && json->contains("class_name") &&
          json->contains("config")) {
        return Format::kKerasConfig;
      }
    }
    return Format::kUnknown;
  }
  if (LooksLikeOnnx(src)) return Format::kOnnx;
  return Format::kUnknown;
}

Format AnalyzeAny(const ByteSource& src, const Context& ctx) {
  Format f = Sniff(src, ctx.options());
  switch (f) {
    case Format::kZip:
      return AnalyzeZip(src, ctx);
    case Format::kTar:
      return AnalyzeTar(src, ctx);
    case Format::kPickle:
      return AnalyzePickleFile(src, ctx);
    case Format::kNumpy:
      AnalyzeNumpy(src, ctx);
      return f;
    case Format::kSafetensors:
      AnalyzeSafetensors(src, ctx);
      return f;
    case Format::kGguf:
      AnalyzeGguf(src, ctx);
      return f;
    case Format::kOnnx:
      AnalyzeOnnx(src, ctx);
      return f;
    case Format::kKerasConfig:
      AnalyzeKerasConfig(src, ctx);
      return f;
    default:
      break;
  }
  if (LooksLikePickleStart(src, 0)) {
    // Protocol 0 and 1 pickles have no magic number: try the machine, and
    // count the bytes as a pickle only when they are one.
    PickleOutcome outcome = RunPickles(src, 0, src.size(), PickleRun{}, ctx);
    if (outcome.pickles > 0 || outcome.suspicious) {
      RecordPickleOutcome(std::move(outcome), ctx);
      return Format::kPickle;
    }
  }
  ctx.Add(Severity::kInfo, "format.unknown", "content not recognised as a model format; not analysed",
          0);
  return Format::kUnknown;
}

std::string_view SeverityName(Severity s) {
  switch (s) {
    case Severity::kInfo: return "info";
    case Severity::kLow: return "low";
    case Severity::kMedium: return "medium";
    case Severity::kHigh: return "high";
    case Severity::kCritical: return "critical";
  }
  return "info";
}

std::string_view FormatName(Format f) {
  switch (f) {
    case Format::kUnknown: return "unknown";
    case Format::kPickle: return "pickle";
    case Format::kTorchLegacy: return "pytorch-legacy";
    case Format::kTorchZip: return "pytorch-zip";
    case Format::kTorchScript: return "torchscript";
    case Format::kNumpy: return "numpy";
    case Format::kNumpyZip: return "numpy-npz";
    case Format::kKeras: return "keras";
    case Format::kZip: return "zip";
    case Format::kSafetensors: return "safetensors";
    case Format::kGguf: return "gguf";
    case Format::kOnnx: return "onnx";
    case Format::kKerasConfig: return "keras-config";
    case Format::kTar: return "tar";
  }
  return "unknown";
}

std::string_view VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kClean: return "clean";
    case Verdict::kBlocked: return "blocked";
    case Verdict::kInvalid: return "invalid";
  }
  return "invalid";
}

Verdict VerdictFor(const std::vector<Finding>& findings, Severity block_at) {
  bool malformed = false;
  for (const Finding& f : findings) {
    if (!f.malformed && f.severity >= block_at) return Verdict::kBlocked;
    malformed = malformed || f.malformed;
  }
  return malformed ? Verdict::kInvalid : Verdict::kClean;
}

namespace {

FileReport Scan(const ByteSource& src, const ScanOptions& options, std::string path) {
  ScanState state(options);
  Context ctx(state, "", 0);
  FileReport report;
  report.path = std::move(path);
  report.size = src.size();
  report.format = AnalyzeAny(src, ctx);
  bool zip_family = report.format == Format::kZip || report.format == Format::kTorchZip ||
                    report.format == Format::kTorchScript || report.format == Format::kNumpyZip ||
                    report.format == Format::kKeras;
  if (!zip_family && HasZipDirectory(src)) {
    // A polyglot: torch.load and numpy go by the first bytes, zipfile and
    // Keras by the end record. Scan what the zip readers would see too.
    ctx.Add(Severity::kHigh, "format.polyglot",
            "the file is also a zip archive: readers that look at its end see other content", 0);
    AnalyzeZip(src, ctx.Member("(zip view)"));
  }
  report.findings = std::move(state.findings);
  if (state.dropped_findings > 0) {
    Finding f;
    f.severity = state.dropped_max;
    f.rule = "limit.findings";
    f.message = std::to_string(state.dropped_findings) +
                " further findings not kept (max_findings); the worst was " +
                std::string(SeverityName(state.dropped_max));
    f.malformed = state.dropped_malformed;
    report.findings.push_back(std::move(f));
  }
  report.globals.assign(state.globals.begin(), state.globals.end());
  report.torchscript_code = std::move(state.torchscript_code);
  report.external_data = std::move(state.external_data);
  report.tensors = std::move(state.tensors);
  report.verdict = VerdictFor(report.findings, options.block_at);
  return report;
}

}  // namespace

core::Result<FileReport> ScanFile(const std::string& path, const ScanOptions& options) {
  core::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return core::ErrnoStatus(errno, "opening " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return core::ErrnoStatus(errno, "stat " + path);
  if (!S_ISREG(st.st_mode)) return core::InvalidArgument(path + " is not a regular file");
  FileSource src(fd.get(), static_cast<uint64_t>(st.st_size));
  FileReport report = Scan(src, options, path);
  if (!src.io_status().ok()) return src.io_status().Annotate("scanning " + path);
  return report;
}

FileReport ScanBytes(std::string_view data, const ScanOptions& options, std::string name) {
  MemorySource src(data);
  return Scan(src, options, std::move(name));
}

namespace {

// A ByteSource over a caller's read function; keeps the first error, as
// FileSource does.
class ReaderSource : public ByteSource {
 public:
  ReaderSource(const ReadAtFn& read, uint64_t size) : read_(read), size_(size) {}
  uint64_t size() const override { return size_; }
  bool ReadAt(uint64_t offset, size_t n, char* out) const override {
    if (offset > size_ || n > size_ - offset) return false;
    core::Status s = read_(offset, n, out);
    if (s.ok()) return true;
    if (io_status_.ok()) io_status_ = std::move(s);
    return false;
  }
  const core::Status& io_status() const { return io_status_; }

 private:
  const ReadAtFn& read_;
  uint64_t size_;
  mutable core::Status io_status_;
};

}  // namespace

core::Result<FileReport> ScanReader(const ReadAtFn& read, uint64_t size, const ScanOptions& options,
                                    std::string name) {
  ReaderSource src(read, size);
  std::string where = name;
  FileReport report = Scan(src, options, std::move(name));
  if (!src.io_status().ok()) return src.io_status().Annotate("scanning " + where);
  return report;
}

namespace {

// Normalises a relative path ("a/./b/../c" -> "a/c"); false when it is
// absolute or climbs out of the root.
bool NormaliseRelative(const std::string& path, std::string* out) {
  if (path.empty() || path[0] == '/' || path[0] == '\\' ||
      (path.size() >= 2 && path[1] == ':')) {
    return false;
  }
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find_first_of("/\\", start);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(start, end - start);
    if (part == "..") {
      if (parts.empty()) return false;
      parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    start = end + 1;
  }
  out->clear();
  for (const auto& p : parts) {
    if (!out->empty()) out->push_back('/');
    out->append(p);
  }
  return !out->empty();
}

}  // namespace

VersionReport AggregateReports(std::vector<FileReport> files, Severity block_at) {
  std::map<std::string, uint64_t> sizes;
  for (const FileReport& f : files) {
    std::string norm;
    if (NormaliseRelative(f.path, &norm)) sizes[norm] = f.size;
  }
  VersionReport out;
  out.block_at = block_at;
  for (FileReport& f : files) {
    std::string dir;
    size_t slash = f.path.find_last_of('/');
    if (slash != std::string::npos) dir = f.path.substr(0, slash + 1);
    for (const ExternalData& ext : f.external_data) {
      std::string target;
      if (!NormaliseRelative(dir + ext.location, &target)) continue;  // flagged by the analyzer
      auto it = sizes.find(target);
      Finding finding;
      finding.location = ext.location;
      finding.malformed = true;
      finding.severity = Severity::kMedium;
      if (it == sizes.end()) {
        finding.rule = "onnx.external_missing";
        finding.message = "external data file '" + ext.location + "' is not part of the version";
      } else if (ext.offset > it->second ||
                 (ext.has_length && ext.length > it->second - ext.offset)) {
        finding.rule = "onnx.external_bounds";
        finding.message = "external data range of '" + ext.location + "' runs past its file";
      } else {
        continue;
      }
      f.findings.push_back(std::move(finding));
    }
    f.verdict = VerdictFor(f.findings, block_at);
    for (const Finding& fi : f.findings) {
      if (!fi.malformed && fi.severity > out.max_severity) out.max_severity = fi.severity;
    }
    if (f.verdict == Verdict::kBlocked) {
      out.verdict = Verdict::kBlocked;
    } else if (f.verdict == Verdict::kInvalid && out.verdict == Verdict::kClean) {
      out.verdict = Verdict::kInvalid;
    }
  }
  out.files = std::move(files);
  return out;
}

core::Json ReportToJson(const FileReport& report) {
  core::Json findings = core::Json::array();
  for (const Finding& f : report.findings) {
    core::Json j = {{"severity", SeverityName(f.severity)},
                    {"rule", f.rule},
                    {"message", f.message},
                    {"location", f.location},
                    {"offset", f.offset},
                    {"malformed", f.malformed}};
    if (!f.global.empty()) j["global"] = f.global;
    findings.push_back(std::move(j));
  }
  core::Json external = core::Json::array();
  for (const ExternalData& e : report.external_data) {
    core::Json j = {{"location", e.location}, {"offset", e.offset}};
    if (e.has_length) j["length"] = e.length;
    external.push_back(std::move(j));
  }
  return {{"path", report.path},
          {"size", report.size},
          {"format", FormatName(report.format)},
          {"verdict", VerdictName(report.verdict)},
          {"findings", std::move(findings)},
          {"globals", report.globals},
          {"torchscript_code", report.torchscript_code},
          {"external_data", std::move(external)},
          {"tensor_count", report.tensors.size()}};
}

core::Json VersionReportToJson(const VersionReport& report) {
  core::Json counts = core::Json::object();
  for (Severity s : {Severity::kInfo, Severity::kLow, Severity::kMedium, Severity::kHigh,
                     Severity::kCritical}) {
    counts[std::string(SeverityName(s))] = 0;
  }
  core::Json files = core::Json::array();
  for (const FileReport& f : report.files) {
    for (const Finding& fi : f.findings) {
      counts[std::string(SeverityName(fi.severity))] =
          counts[std::string(SeverityName(fi.severity))].get<int>() + 1;
    }
    files.push_back(ReportToJson(f));
  }
  return {{"scanner", "sigil-scanner"},
          {"rules_version", 1},
          {"verdict", VerdictName(report.verdict)},
          {"max_severity", SeverityName(report.max_severity)},
          {"block_at", SeverityName(report.block_at)},
          {"finding_counts", std::move(counts)},
          {"files", std::move(files)}};
}

}  // namespace sigil::scanner
