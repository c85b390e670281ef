// Model file scanner: refuses malicious and malformed model files before
// anything loads them.
//
// The scanner never executes or deserializes what it reads. Formats are
// detected by content (never by name); pickle streams are analysed by
// simulating the pickle machine's stack, memo and marks without building
// objects, and every callable they import is judged against an allow-list for
// model data (a deny-list only rates severity). Archives are read by their
// central directory, as PyTorch reads them, and cross-checked against their
// local headers. safetensors, GGUF, NumPy, ONNX and Keras files are validated
// structurally. Every count, size, depth and the running time are limited: a
// hostile file yields findings or an `invalid` verdict, never a crash, a hang
// or a large allocation. Tensor data is skipped wherever the format allows.
//
// Thread-safety: every function here is reentrant and keeps no shared state;
// scan as many files in parallel as you like.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/json.h"
#include "core/status.h"

namespace sigil::scanner {

enum class Severity { kInfo = 0, kLow, kMedium, kHigh, kCritical };

enum class Format {
  kUnknown,
  kPickle,          // one or more concatenated pickles, any protocol
  kTorchLegacy,     // pre-zip torch.save: five pickles then raw storages, or
                    // the oldest layout, a tar with a `pickle` member
  kTorchZip,        // torch.save archive (data.pkl + data/)
  kTorchScript,     // torch.jit.save archive (adds code/ and constants.pkl)
  kNumpy,           // .npy
  kNumpyZip,        // .npz
  kKeras,           // .keras archive with config.json
  kZip,             // any other zip
  kSafetensors,
  kGguf,
  kOnnx,
  kKerasConfig,     // a bare Keras model config (JSON)
  kTar,             // a tar archive (not the oldest torch.save layout)
};

enum class Verdict {
  kClean,    // nothing at or above the blocking severity, structurally valid
  kBlocked,  // a finding at or above the blocking severity
  kInvalid,  // malformed, or beyond a limit, so it could not be vouched for
};

std::string_view SeverityName(Severity s);  // "info" ... "critical"
std::string_view FormatName(Format f);      // "pickle", "pytorch-zip", ...
std::string_view VerdictName(Verdict v);    // "clean", "blocked", "invalid"

struct Finding {
  Severity severity = Severity::kInfo;
  // Stable rule id, "<area>.<what>": "pickle.global", "zip.duplicate_name",
  // "safetensors.not_tiled", "limit.time", ...
  std::string rule;
  std::string message;
  // Where: empty for the file itself, else an archive member; nested
  // archives are joined with '!' ("outer.zip!inner/data.pkl").
  std::string location;
  // Byte offset inside the file or member named by location.
  uint64_t offset = 0;
  // The Python global involved ("os.system"), when there is one.
  std::string global;
  // True when the finding means the file is malformed or beyond a limit
  // (verdict invalid) rather than dangerous.
  bool malformed = false;
};

struct ExternalData {
  std::string location;  // as written in the ONNX model
  uint64_t offset = 0;
  uint64_t length = 0;   // 0: to the end of the file
  bool has_length = false;
};

// A dense, contiguous tensor inside the scanned file, for consumers that
// stream its bytes (weight statistics). Listed only where the scanner can
// vouch for the position without loading anything.
struct TensorLayout {
  // safetensors: the header key. PyTorch: the state-dict key path, nested
  // dict keys (and object attributes) joined with '.'; TorchScript constants
  // are "CONSTANTS.c<i>", as the archive's code names them.
  std::string name;
  // safetensors dtype names: "F64", "F32", "F16", "BF16", "I64", "I32",
  // "I16", "I8", "U8", "BOOL"; safetensors files may list others ("F8_E4M3",
  // "U16", ...): skip what you do not know.
  std::string dtype;
  std::vector<uint64_t> shape;  // row-major; empty for a scalar
  uint64_t offset = 0;          // absolute byte offset from the start of the file
  uint64_t length = 0;          // bytes
};

struct FileReport {
  // As given to ScanFile, or the name given to ScanBytes. Callers scanning
  // blobs set it to the file's path in the version before AggregateReports.
  std::string path;
  uint64_t size = 0;
  Format format = Format::kUnknown;
  Verdict verdict = Verdict::kClean;
  std::vector<Finding> findings;
  // Every Python global a pickle in the file imports ("module.name"),
  // sorted and unique; TorchScript classes defined by the archive excluded.
  std::vector<std::string> globals;
  // TorchScript archives: the code files (archive member names) for the
  // validator to look at.
  std::vector<std::string> torchscript_code;
  // ONNX: external data references, checked against the other files of a
  // version by AggregateReports.
  std::vector<ExternalData> external_data;
  // The file's dense tensors, in data order for safetensors and in dict
  // order for PyTorch archives; at most max_tensors (an info finding
  // "tensors.truncated" says when more were left out). Filled for:
  //  - safetensors: every tensor, only when the header is structurally valid;
  //  - torch.save zip archives and TorchScript archives: tensors that
  //    torch._utils._rebuild_tensor_v2 rebuilds from a storage of a known
  //    dtype, stored uncompressed in <root>/data/ (constants.pkl:
  //    <root>/constants/), contiguous and inside their storage, and reached
  //    from the pickle's result through dict keys or object attributes; a
  //    tensor stored under several names is listed once per name.
  // Never filled for other formats, legacy torch files, or files nested in
  // archives. A tensor's position says nothing about its safety: use it
  // only when the verdict is clean.
  std::vector<TensorLayout> tensors;
};

struct ScanOptions {
  // Findings at or above this severity block the file.
  Severity block_at = Severity::kMedium;
  // Wall-clock budget for one file (nested members included).
  uint32_t time_limit_ms = 120000;
  // Findings kept per file; further ones are counted in one last finding.
  size_t max_findings = 1000;

  // Pickle machine.
  uint64_t max_pickle_ops = 50'000'000;
  size_t max_pickle_stack = 1'000'000;
  size_t max_pickle_memo = 1'000'000;
  size_t max_pickles_per_stream = 1000;  // concatenated pickles
  size_t max_pickle_line = 1 << 16;      // protocol 0 text arguments

  // Archives.
  size_t max_zip_entries = 1 << 20;
  int max_nesting = 4;                          // archives inside archives
  uint64_t max_inflated_member = 256ull << 20;  // one member decompressed in memory
  uint64_t max_inflated_total = 1ull << 30;     // all members of one file
  uint64_t bomb_ratio = 200;                    // uncompressed / compressed
  uint64_t bomb_min_bytes = 16ull << 20;        // ratio only matters above this

  // Headers.
  uint64_t max_safetensors_header = 100'000'000;
  uint64_t max_gguf_tensors = 1 << 20;
  uint64_t max_gguf_kv = 1 << 20;
  uint64_t max_gguf_string = 64ull << 20;
  uint64_t max_json_bytes = 16ull << 20;  // Keras configs
  int max_onnx_depth = 64;

  // FileReport::tensors kept per file.
  size_t max_tensors = 1 << 20;
};

// Scans one file, reading it with pread and skipping tensor data.
// Errors: kNotFound / kPermissionDenied when it cannot be opened,
// kInvalidArgument when it is not a regular file, kInternal on a read error.
// A hostile or malformed file is not an error: it gets a report.
core::Result<FileReport> ScanFile(const std::string& path, const ScanOptions& options = {});

// Scans bytes held in memory (tests, fuzzers, blobs already read).
FileReport ScanBytes(std::string_view data, const ScanOptions& options = {},
                     std::string name = {});

// Positional reads of `size` bytes held elsewhere (a blob store): fills out
// with exactly n bytes at offset, or returns the error that prevented it.
// Called only with offset + n <= size, possibly from one thread at a time.
using ReadAtFn = std::function<core::Status(uint64_t offset, size_t n, char* out)>;

// Scans content read through `read`, like ScanFile: tensor data is skipped
// wherever the format allows. report.path is `name`. Errors: the first
// error `read` returned, annotated.
core::Result<FileReport> ScanReader(const ReadAtFn& read, uint64_t size,
                                    const ScanOptions& options = {}, std::string name = {});

// The verdict for a list of findings.
Verdict VerdictFor(const std::vector<Finding>& findings, Severity block_at);

// A version's reports together.
struct VersionReport {
  // blocked if any file is, else invalid if any file is, else clean.
  Verdict verdict = Verdict::kClean;
  Severity max_severity = Severity::kInfo;  // over findings that are not malformed
  Severity block_at = Severity::kMedium;    // the threshold the verdicts used
  std::vector<FileReport> files;
};

// Combines the reports of one version's files, whose `path`s are the files'
// paths relative to the version root. Cross-file checks happen here: ONNX
// external data must name another file of the version, inside the root,
// with offset and length inside that file. Findings from those checks are
// added to the referring file's report. Every file's verdict is recomputed
// with block_at.
VersionReport AggregateReports(std::vector<FileReport> files,
                               Severity block_at = Severity::kMedium);

// Machine-readable forms (the body of a scan attestation).
core::Json ReportToJson(const FileReport& report);
core::Json VersionReportToJson(const VersionReport& report);

}  // namespace sigil::scanner
