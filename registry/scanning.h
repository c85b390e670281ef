// Scanning: every new version's files are scanned in the background, and
// the verdict decides its state. A version is `pending` from its push until
// its first report; a blocked or invalid file puts it in `quarantined`, a
// clean report makes it `available`.
//
// A small pool of worker threads owned by Scanning reads each layer through
// storage::BlobStore with scanner::ScanReader (tensor data stays unread
// where the format allows), names each file report by the layer's title and
// aggregates them (scanner::AggregateReports).
//
// Keys:
//   jobs       scan\0<repo>\0<version>      -> {"queued": micros}
//                a queued scan; deleted once its report is stored. Jobs and
//                versions still `pending` are re-queued by Start.
//   jobs       quarantine\0<blob digest>    -> {"versions": ["repo:version"], "released",
//                                              "summary": {...}}
//                a layer blob of quarantined versions ("versions"); refused
//                by digest unless "released": an available version holds it
//                too. Kept up to date when versions are quarantined, become
//                available (scans) or are deleted (Forget); the record goes
//                when its last quarantined holder does.
//   referrers  scan\0<repo>\0<manifest digest>\0<16 hex micros>\0<report digest>
//                -> {"verdict", "created", "version", "summary", "attestation"?}
//                one record per report, oldest first; the report (the JSON of
//                scanner::VersionReportToJson) is a blob named by the last
//                part of the key, as garbage collection expects of referrers
//                (artifact type kScanReportArtifactType).
//
// When AttestationOptions-style signing is configured (attestations and
// server_key), each report is also issued as an in-toto statement
// (predicate attest::kSigilScanV1, subject the manifest digest) in a DSSE
// envelope signed with the server attestation key and stored through
// Attestations::Add, which appends it to the transparency log.
//
// A re-scan (Enqueue of a version that has a report) leaves the version's
// state alone until the new report decides it.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/digest.h"
#include "core/status.h"
#include "registry/attestations.h"
#include "registry/registry.h"
#include "scanner/scanner.h"
#include "signing/keys.h"
#include "storage/blob_store.h"
#include "storage/meta_store.h"

namespace sigil::registry {

inline constexpr std::string_view kScanReportArtifactType = "application/vnd.sigil.scan.report.v1+json";

struct ScanningOptions {
  Registry* registry = nullptr;  // borrowed, like the stores and the clock
  storage::BlobStore* blobs = nullptr;
  storage::MetaStore* meta = nullptr;
  core::Clock* clock = core::Clock::Real();
  scanner::ScanOptions scan;
  size_t workers = 2;
  // Both or neither: reports are then also signed statements in the log.
  Attestations* attestations = nullptr;
  std::optional<signing::PrivateKey> server_key;
};

struct ScanRecord {
  std::string version;          // the version name the scan ran for
  core::Digest version_digest;  // its manifest
  core::Digest report_digest;   // the report blob
  std::string verdict;          // "clean", "blocked", "invalid"
  int64_t created_micros = 0;
  std::string summary_json;  // see SummaryJson in scanning.cc: verdict and findings at or above block_at
  std::string report_json;   // the report blob's bytes
  // The signed statement stored through Attestations, when issued.
  std::optional<core::Digest> attestation_digest;
  uint64_t log_index = 0;
};

struct ScanStatus {
  VersionInfo version;
  bool queued = false;               // a scan is queued or running
  std::optional<ScanRecord> latest;  // nullopt before the first report
};

class Scanning {
 public:
  // Starts the workers and re-queues unfinished scans: jobs left in the
  // `jobs` family and versions still `pending`.
  // Errors: kInvalidArgument for missing options; those of the stores.
  static core::Result<std::unique_ptr<Scanning>> Start(ScanningOptions options);
  // Stops the workers after the scans they are running; queued jobs stay
  // recorded for the next Start.
  ~Scanning();

  // Queues a scan of the version (a new push, or a re-scan after a rule
  // update). Recorded durably before it returns; queuing a version that is
  // already queued is a no-op. Returns the version and the report before
  // this scan. Errors: those of Registry::Resolve.
  core::Result<ScanStatus> Enqueue(std::string_view repo, std::string_view ref);

  // The version's state and latest report. Errors: those of Resolve.
  core::Result<ScanStatus> Status(std::string_view repo, std::string_view ref);

  // Whether the version's files may be pulled: kPermissionDenied QUARANTINED
  // (detail: the summary of the latest report), kFailedPrecondition
  // PENDING_SCAN while its first scan runs.
  core::Status CheckPullable(const VersionInfo& version);
  // Whether a blob may be pulled by digest: kPermissionDenied QUARANTINED
  // (detail: the summary and the quarantined holders) when a quarantined
  // version holds it and no available version does. One point read.
  core::Status CheckBlobPullable(const core::Digest& digest);

  // Updates the quarantine index after `deleted` (resolved before it was
  // deleted) is gone, and drops its queued job record.
  core::Status Forget(const ResolvedVersion& deleted);

  // Blocks until no scan is queued or running (tests, shutdown).
  void WaitIdle();

 private:
  explicit Scanning(ScanningOptions options) : options_(std::move(options)) {}

  using Job = std::pair<std::string, std::string>;  // repo, version
  core::Status Recover();
  void Push(Job job);
  void Work();
  core::Status Run(const Job& job);
  core::Result<scanner::VersionReport> ScanVersion(const ResolvedVersion& version);
  enum class IndexChange { kQuarantined, kAvailable, kQuarantinedDeleted, kAvailableDeleted };
  core::Status UpdateQuarantineIndex(const std::string& label, const Manifest& manifest, IndexChange change,
                                     const std::string& summary_json);
  // The blobs among `blobs` that an available version other than `except`
  // ("repo:version") holds.
  core::Result<std::set<core::Digest>> HeldByAvailable(const std::set<core::Digest>& blobs,
                                                       const std::string& except);
  core::Result<std::optional<nlohmann::json>> LoadQuarantine(const core::Digest& blob);
  core::Result<std::optional<ScanRecord>> Latest(const std::string& repo, const core::Digest& digest,
                                                 bool with_report);

  ScanningOptions options_;
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable idle_cv_;
  std::deque<Job> queue_;
  std::set<Job> queued_;  // queued or running
  size_t running_ = 0;
  bool stopping_ = false;
  std::mutex index_mu_;  // quarantine index read-modify-writes
  std::vector<std::thread> workers_;
};

}  // namespace sigil::registry
