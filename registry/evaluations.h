// Evaluations: before promotion the registry itself runs a version. A job
// loads the version's TorchScript model in a validator worker process
// (validator/worker.h), scores it on a dataset from the registry, runs the
// baseline (another version or an alias such as `production`) the same way,
// computes weight statistics over the version's safetensors and PyTorch files
// (against a parent checkpoint when asked), and judges it all against the
// spec (validator/judge.h). The report is a blob, recorded as a referrer and
// issued as an in-toto statement (predicate attest::kSigilEvaluationV1)
// signed by the server key and appended to the transparency log.
//
// Weight statistics alone are a job too ("stats"), for `sigil stats REF`.
//
// Jobs are durable: every state change is written before it is acted on.
// On Start, queued jobs are queued again and running ones (the server
// stopped under them) too, until they have been started max_attempts times;
// then they fail with the reason. Nothing is lost.
//
// Keys:
//   jobs       job\0<id> -> JobInfo as JSON (JobToJson)
//   referrers  eval\0<repo>\0<manifest digest>\0<16 hex micros>\0<report digest>
//                -> {"passed", "created", "version", "job", "spec_digest",
//                    "attestation"?, "log_index"?}
//                (the report blob is named by the last part, as garbage
//                collection expects of referrers)
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/digest.h"
#include <nlohmann/json.hpp>

#include "core/json.h"
#include "core/status.h"
#include "registry/attestations.h"
#include "registry/registry.h"
#include "signing/keys.h"
#include "storage/blob_store.h"
#include "storage/meta_store.h"
#include "validator/eval_spec.h"
#include "validator/tensor_stats.h"

namespace sigil::registry {

inline constexpr std::string_view kEvaluationReportArtifactType =
    "application/vnd.sigil.evaluation.report.v1+json";

enum class JobState { kQueued, kRunning, kCompleted, kFailed, kCancelled };
std::string_view JobStateName(JobState state);  // "queued", "running", "completed", "failed", "cancelled"

struct JobInfo {
  std::string id;
  std::string kind;  // "evaluation" or "stats"; "promotion" (registry/promotions.h)
  std::string repo;
  std::string version;
  core::Digest digest;  // the version's manifest
  JobState state = JobState::kQueued;
  int64_t created_micros = 0;
  int64_t started_micros = 0;
  int64_t finished_micros = 0;
  uint32_t attempts = 0;   // times a worker started it
  std::string progress;    // what it is doing now ("running the model", ...)
  core::Json request;      // evaluation: {"spec_digest"}; stats: {"parent"?}
  // completed: evaluation {"passed", "report_digest", "attestation", "log_index",
  // "metrics", "checks"...}; stats {"files": [...]}.
  core::Json result;
  // failed or cancelled: {"code", "reason", "message"}.
  core::Json error;
  bool cancel_requested = false;

  bool finished() const {
    return state == JobState::kCompleted || state == JobState::kFailed || state == JobState::kCancelled;
  }
};

core::Json JobToJson(const JobInfo& job);
// Reads JobToJson's output back (any kind). kDataLoss for a damaged record.
core::Result<JobInfo> JobFromJson(std::string_view text);
// The job records under prefix in the "jobs" column family, newest first,
// at most limit. kDataLoss for a damaged record.
core::Result<std::vector<JobInfo>> ListJobRecords(storage::MetaStore* meta, std::string_view prefix, size_t limit);
// The unfinished ones, oldest first (what a Start takes up again).
core::Result<std::vector<JobInfo>> UnfinishedJobRecords(storage::MetaStore* meta, std::string_view prefix);

struct EvaluationRecord {
  std::string version;
  core::Digest version_digest;
  core::Digest report_digest;
  bool passed = false;
  int64_t created_micros = 0;
  std::string job_id;
  core::Digest spec_digest;
  std::optional<core::Digest> attestation_digest;
  uint64_t log_index = 0;
};

struct EvaluationsOptions {
  Registry* registry = nullptr;  // borrowed, like the stores and the clock
  storage::BlobStore* blobs = nullptr;
  storage::MetaStore* meta = nullptr;
  core::Clock* clock = core::Clock::Real();
  // Both or neither: reports are then signed statements in the log.
  Attestations* attestations = nullptr;
  std::optional<signing::PrivateKey> server_key;
  // Jobs run at once.
  size_t concurrency = 1;
  // The sigil-validator program; without it evaluation jobs fail with
  // VALIDATOR_UNAVAILABLE (statistics still work).
  std::string worker_executable;
  // Scratch directories of worker processes are made inside it.
  std::string scratch_dir;
  uint32_t max_attempts = 3;
  // How long a job waits for a pending version's first scan.
  int64_t scan_wait_micros = 600ll * 1'000'000;
  validator::StatsOptions stats;
};

class Evaluations {
 public:
  // Starts the job threads and takes up unfinished jobs.
  // Errors: kInvalidArgument for missing options; those of the stores.
  static core::Result<std::unique_ptr<Evaluations>> Start(EvaluationsOptions options);
  // Cancels running workers' processes and stops; their jobs run again at
  // the next Start.
  ~Evaluations();

  // Checks the spec (validator::ParseEvalSpec), stores it as a blob, and
  // queues an evaluation of the version. Errors: kInvalidArgument
  // BAD_EVAL_SPEC; kFailedPrecondition QUARANTINED; those of Resolve.
  core::Result<JobInfo> SubmitEvaluation(std::string_view repo, std::string_view ref, std::string_view spec_json);
  // The same with a spec already stored as a blob. kNotFound SPEC_UNKNOWN.
  core::Result<JobInfo> SubmitEvaluationByDigest(std::string_view repo, std::string_view ref,
                                                 const core::Digest& spec);
  // Queues weight statistics of the version, against parent_ref (a version
  // or alias of the same repository, or "repo:ref") when not empty.
  core::Result<JobInfo> SubmitStats(std::string_view repo, std::string_view ref, std::string_view parent_ref);

  // Errors: kNotFound JOB_UNKNOWN.
  core::Result<JobInfo> Get(std::string_view id);
  // Newest first, at most limit.
  core::Result<std::vector<JobInfo>> List(size_t limit);
  // A queued job is cancelled at once; a running one when its worker has
  // been killed (soon after). Cancelling a finished job changes nothing.
  core::Result<JobInfo> Cancel(std::string_view id);

  // The version's evaluation reports, oldest first.
  core::Result<std::vector<EvaluationRecord>> Reports(std::string_view repo, std::string_view ref);

  // Blocks until no job is queued or running (tests, shutdown).
  void WaitIdle();

 private:
  explicit Evaluations(EvaluationsOptions options) : options_(std::move(options)) {}

  struct Running;
  core::Status Recover();
  core::Result<JobInfo> Submit(JobInfo job);
  core::Status CheckSpecReadable(const validator::EvalSpec& spec, std::string_view repo);
  core::Status Save(const JobInfo& job);
  core::Result<JobInfo> Load(std::string_view id);
  void Enqueue(const std::string& id);
  void Work();
  void RunJob(const std::string& id);
  core::Result<core::Json> RunEvaluation(JobInfo& job, Running& running);
  core::Result<core::Json> RunStats(JobInfo& job, Running& running);
  // Statistics of every file of `version` the scanner finds tensors in,
  // each against the parent's file of the same path when there is one.
  struct WeightFile {
    std::string path;
    core::Digest digest;
    std::optional<core::Digest> parent_digest;
    validator::StatsReport report;
  };
  core::Result<std::vector<WeightFile>> WeightStats(const ResolvedVersion& version,
                                                    const std::optional<ResolvedVersion>& parent,
                                                    const std::atomic<bool>& cancel);
  void SetProgress(JobInfo& job, std::string progress);

  EvaluationsOptions options_;
  std::mutex mu_;  // queue, running set, job record read-modify-writes
  std::condition_variable work_cv_;
  std::condition_variable idle_cv_;
  std::deque<std::string> queue_;
  std::map<std::string, std::shared_ptr<Running>> running_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace sigil::registry
