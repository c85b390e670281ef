#include "registry/evaluations.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "attest/statement.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/random.h"
#include "registry/access.h"
#include "registry/internal/blob_read.h"
#include "registry/internal/keys.h"
#include "scanner/scanner.h"
#include "signing/dsse.h"
#include "validator/eval_spec.h"
#include "validator/evaluation.h"
#include "validator/judge.h"
#include "validator/worker.h"

namespace sigil::registry {

struct Evaluations::Running {
  std::atomic<bool> cancel{false};
  bool by_shutdown = false;  // guarded by Evaluations::mu_
};

namespace {

using core::Json;

constexpr std::string_view kJobsCf = "jobs";
constexpr std::string_view kReferrersCf = "referrers";
// Tensors named in a report's weight summary (the stats job lists them all).
constexpr size_t kReportTensors = 20;
constexpr size_t kMaxSpecBytes = 1 << 20;

std::string JobKey(std::string_view id) { return internal::JoinKey({"job", id}); }
std::string JobPrefix() { return internal::JoinKey({"job", ""}); }
std::string RecordPrefix(std::string_view repo, const core::Digest& version) {
  return internal::JoinKey({"eval", repo, version.ToString(), ""});
}

std::string Hex16(int64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

core::Result<JobState> ParseJobState(std::string_view s) {
  for (JobState st : {JobState::kQueued, JobState::kRunning, JobState::kCompleted, JobState::kFailed,
                      JobState::kCancelled}) {
    if (JobStateName(st) == s) return st;
  }
  return core::DataLoss("unknown job state " + std::string(s));
}

Json StatusJson(const core::Status& s) {
  return Json{{"code", std::string(core::CodeName(s.code()))}, {"reason", s.reason()}, {"message", s.message()}};
}

}  // namespace

core::Result<JobInfo> JobFromJson(std::string_view text) {
  auto j = core::ParseJson(text, {64 << 20, 64});
  if (!j.ok() || !j->is_object()) return core::DataLoss("corrupt job record");
  JobInfo job;
  try {
    job.id = j->at("id").get<std::string>();
    job.kind = j->at("kind").get<std::string>();
    job.repo = j->at("repository").get<std::string>();
    job.version = j->at("version").get<std::string>();
    ASSIGN_OR_RETURN(job.digest, core::Digest::Parse(j->at("digest").get<std::string>()));
    ASSIGN_OR_RETURN(job.state, ParseJobState(j->at("state").get<std::string>()));
    job.created_micros = j->at("created_micros").get<int64_t>();
    job.started_micros = j->value("started_micros", int64_t{0});
    job.finished_micros = j->value("finished_micros", int64_t{0});
    job.attempts = j->value("attempts", 0u);
    job.progress = j->value("progress", std::string());
    job.request = j->value("request", Json::object());
    job.result = j->value("result", Json());
    job.error = j->value("error", Json());
    job.cancel_requested = j->value("cancel_requested", false);
  } catch (const Json::exception& e) {
    return core::DataLoss(std::string("corrupt job record: ") + e.what());
  }
  return job;
}

namespace {

// Every record under prefix, in key order.
core::Result<std::vector<JobInfo>> ReadJobRecords(storage::MetaStore* meta, std::string_view prefix) {
  std::vector<JobInfo> jobs;
  core::Status bad;
  RETURN_IF_ERROR(meta->Scan(kJobsCf, prefix, [&](std::string_view, std::string_view value) {
    auto job = JobFromJson(value);
    if (!job.ok()) {
      bad = job.status();
      return false;
    }
    jobs.push_back(std::move(job).value());
    return true;
  }));
  RETURN_IF_ERROR(bad);
  return jobs;
}

}  // namespace

core::Result<std::vector<JobInfo>> ListJobRecords(storage::MetaStore* meta, std::string_view prefix, size_t limit) {
  ASSIGN_OR_RETURN(std::vector<JobInfo> jobs, ReadJobRecords(meta, prefix));
  std::sort(jobs.begin(), jobs.end(),
            [](const JobInfo& a, const JobInfo& b) { return a.created_micros > b.created_micros; });
  if (jobs.size() > limit) jobs.resize(limit);
  return jobs;
}

core::Result<std::vector<JobInfo>> UnfinishedJobRecords(storage::MetaStore* meta, std::string_view prefix) {
  ASSIGN_OR_RETURN(std::vector<JobInfo> jobs, ReadJobRecords(meta, prefix));
  std::erase_if(jobs, [](const JobInfo& job) { return job.finished(); });
  std::sort(jobs.begin(), jobs.end(),
            [](const JobInfo& a, const JobInfo& b) { return a.created_micros < b.created_micros; });
  return jobs;
}

namespace {

// "repo:ref", "repo@sha256:...", "sha256:..." or a bare ref of `repo`.
std::pair<std::string, std::string> SplitRef(std::string_view text, std::string_view repo) {
  if (text.rfind("sha256:", 0) == 0) return {std::string(repo), std::string(text)};
  size_t at = text.find('@');
  if (at != std::string_view::npos) return {std::string(text.substr(0, at)), std::string(text.substr(at + 1))};
  size_t colon = text.rfind(':');
  if (colon != std::string_view::npos) {
    return {std::string(text.substr(0, colon)), std::string(text.substr(colon + 1))};
  }
  return {std::string(repo), std::string(text)};
}

std::string Title(const Descriptor& layer) {
  auto it = layer.annotations.find(std::string(kTitleAnnotation));
  return it != layer.annotations.end() ? it->second : layer.digest.ToString();
}

const Descriptor* FindFile(const Manifest& manifest, std::string_view path) {
  for (const Descriptor& layer : manifest.layers) {
    if (Title(layer) == path) return &layer;
  }
  return nullptr;
}

// A blob opened for a worker process: the child inherits the read-only
// descriptor and opens it as /dev/fd/N. A store without descriptors (the
// memory store of tests) gets a copy in the scratch directory.
struct WorkerFile {
  std::unique_ptr<storage::BlobReader> reader;
  std::string path;
  int fd = -1;
  std::string copy;  // removed by the destructor
  WorkerFile() = default;
  WorkerFile(const WorkerFile&) = delete;
  WorkerFile& operator=(const WorkerFile&) = delete;
  ~WorkerFile() {
    if (!copy.empty()) ::unlink(copy.c_str());
  }
};

core::Result<std::unique_ptr<WorkerFile>> OpenForWorker(storage::BlobStore* blobs, const core::Digest& digest,
                                                        const std::string& scratch) {
  auto file = std::make_unique<WorkerFile>();
  ASSIGN_OR_RETURN(file->reader, blobs->Open(digest));
  file->fd = file->reader->fd();
  if (file->fd >= 0) {
    file->path = "/dev/fd/" + std::to_string(file->fd);
    return file;
  }
  std::string bytes(file->reader->size(), '\0');
  RETURN_IF_ERROR(internal::ReadAtOf(file->reader.get())(0, bytes.size(), bytes.data()));
  RETURN_IF_ERROR(core::MakeDirs(scratch, 0700));
  file->copy = core::JoinPath(scratch, digest.Hex() + "." + core::RandomHex(6));
  RETURN_IF_ERROR(core::WriteFileAtomic(file->copy, bytes, 0400));
  file->path = file->copy;
  return file;
}

// The tensors the scanner found in a blob, as the validator takes them.
// Tensors of types the validator does not know are left out.
core::Result<std::vector<validator::TensorRef>> TensorsOf(storage::BlobReader* reader, const std::string& path) {
  ASSIGN_OR_RETURN(scanner::FileReport report, scanner::ScanReader(internal::ReadAtOf(reader), reader->size(), {}, path));
  std::vector<validator::TensorRef> out;
  for (const scanner::TensorLayout& t : report.tensors) {
    auto dtype = validator::ParseDType(t.dtype);
    if (!dtype.ok()) continue;
    validator::TensorRef ref;
    ref.name = t.name;
    ref.dtype = *dtype;
    ref.shape = t.shape;
    ref.offset = t.offset;
    if (ref.Bytes() != t.length) continue;
    out.push_back(std::move(ref));
  }
  return out;
}

// A weight file's statistics in a report: figures, and the tensors that
// matter (non-finite ones, the least similar to the parent).
Json WeightSummary(const std::string& path, const core::Digest& digest, const validator::StatsReport& r) {
  Json nonfinite = Json::array();
  for (const auto& t : r.tensors) {
    if ((t.nan > 0 || t.inf > 0) && nonfinite.size() < kReportTensors) {
      nonfinite.push_back({{"name", t.name}, {"nan", t.nan}, {"inf", t.inf}, {"count", t.count}});
    }
  }
  Json out = {{"path", path},
              {"digest", digest.ToString()},
              {"backend", r.backend},
              {"tensors", r.tensors.size()},
              {"skipped", r.skipped.size()},
              {"bytes", r.bytes},
              {"seconds", r.seconds},
              {"total_nan", r.total_nan},
              {"total_inf", r.total_inf},
              {"nonfinite_tensors", nonfinite}};
  if (!r.diffs.empty() || !r.only_in_child.empty() || !r.only_in_parent.empty()) {
    std::vector<const validator::TensorDiff*> diffs;
    for (const auto& d : r.diffs) {
      if (d.comparable) diffs.push_back(&d);
    }
    std::sort(diffs.begin(), diffs.end(), [](auto* a, auto* b) { return a->cosine < b->cosine; });
    Json least = Json::array();
    for (size_t i = 0; i < diffs.size() && i < kReportTensors; ++i) {
      least.push_back({{"name", diffs[i]->name}, {"cosine", diffs[i]->cosine}, {"max_abs_diff", diffs[i]->max_abs_diff}});
    }
    out["parent"] = {{"compared", diffs.size()},
                     {"least_similar", least},
                     {"only_in_child", r.only_in_child.size()},
                     {"only_in_parent", r.only_in_parent.size()}};
  }
  return out;
}

}  // namespace

std::string_view JobStateName(JobState state) {
  switch (state) {
    case JobState::kQueued: return "queued";
    case JobState::kRunning: return "running";
    case JobState::kCompleted: return "completed";
    case JobState::kFailed: return "failed";
    case JobState::kCancelled: return "cancelled";
  }
  return "unknown";
}

Json JobToJson(const JobInfo& job) {
  Json j = {{"id", job.id},
            {"kind", job.kind},
            {"repository", job.repo},
            {"version", job.version},
            {"digest", job.digest.ToString()},
            {"state", std::string(JobStateName(job.state))},
            {"created_micros", job.created_micros},
            {"created", core::FormatRfc3339(job.created_micros)},
            {"attempts", job.attempts},
            {"progress", job.progress},
            {"request", job.request},
            {"cancel_requested", job.cancel_requested}};
  if (job.started_micros > 0) {
    j["started_micros"] = job.started_micros;
    j["started"] = core::FormatRfc3339(job.started_micros);
  }
  if (job.finished_micros > 0) {
    j["finished_micros"] = job.finished_micros;
    j["finished"] = core::FormatRfc3339(job.finished_micros);
  }
  if (!job.result.is_null()) j["result"] = job.result;
  if (!job.error.is_null()) j["error"] = job.error;
  return j;
}

core::Result<std::unique_ptr<Evaluations>> Evaluations::Start(EvaluationsOptions options) {
  if (options.registry == nullptr || options.blobs == nullptr || options.meta == nullptr ||
      options.clock == nullptr || options.concurrency == 0 || options.scratch_dir.empty() ||
      options.max_attempts == 0) {
    return core::InvalidArgument("evaluations need a registry, stores, a clock, a scratch directory and a worker");
  }
  if ((options.attestations == nullptr) != !options.server_key.has_value()) {
    return core::InvalidArgument("signed evaluation reports need both the attestations and the server key");
  }
  std::unique_ptr<Evaluations> e(new Evaluations(std::move(options)));
  RETURN_IF_ERROR(core::MakeDirs(e->options_.scratch_dir, 0700));
  RETURN_IF_ERROR(e->Recover());
  for (size_t i = 0; i < e->options_.concurrency; ++i) e->workers_.emplace_back([p = e.get()] { p->Work(); });
  return e;
}

Evaluations::~Evaluations() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& [id, running] : running_) {
      running->by_shutdown = true;
      running->cancel = true;
    }
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

core::Status Evaluations::Save(const JobInfo& job) {
  return options_.meta->Put(kJobsCf, JobKey(job.id), core::DumpJson(JobToJson(job)));
}

core::Result<JobInfo> Evaluations::Load(std::string_view id) {
  auto text = options_.meta->Get(kJobsCf, JobKey(id));
  if (!text.ok()) {
    if (text.status().code() == core::Code::kNotFound) {
      return core::NotFound("no job " + std::string(id), "JOB_UNKNOWN");
    }
    return text.status();
  }
  return JobFromJson(*text);
}

core::Status Evaluations::Recover() {
  ASSIGN_OR_RETURN(std::vector<JobInfo> unfinished, UnfinishedJobRecords(options_.meta, JobPrefix()));
  for (JobInfo& job : unfinished) {
    if (job.state == JobState::kRunning && job.attempts >= options_.max_attempts) {
      job.state = JobState::kFailed;
      job.finished_micros = options_.clock->NowMicros();
      job.error = StatusJson(core::Aborted("the server stopped during each of its " + std::to_string(job.attempts) +
                                              " attempts",
                                          "JOB_INTERRUPTED"));
      RETURN_IF_ERROR(Save(job));
      continue;
    }
    if (job.cancel_requested) {
      job.state = JobState::kCancelled;
      job.finished_micros = options_.clock->NowMicros();
      job.error = StatusJson(core::Status(core::Code::kCancelled, "cancelled", "JOB_CANCELLED"));
      RETURN_IF_ERROR(Save(job));
      continue;
    }
    if (job.state == JobState::kRunning) {
      job.state = JobState::kQueued;
      job.progress = "queued again after a server restart";
      RETURN_IF_ERROR(Save(job));
    }
    queue_.push_back(job.id);
  }
  if (!unfinished.empty()) SIGIL_LOG(kInfo) << "evaluations: took up " << unfinished.size() << " unfinished job(s)";
  return core::OkStatus();
}

void Evaluations::Enqueue(const std::string& id) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(id);
  }
  work_cv_.notify_one();
}

core::Result<JobInfo> Evaluations::Submit(JobInfo job) {
  ASSIGN_OR_RETURN(ResolvedVersion version, options_.registry->Resolve(job.repo, job.version));
  if (version.info.state == VersionState::kQuarantined) {
    return core::FailedPrecondition(job.repo + ":" + version.info.version + " is quarantined: it is not run",
                                    "QUARANTINED");
  }
  job.id = "job-" + core::RandomHex(12);
  job.version = version.info.version;
  job.digest = version.info.digest;
  job.state = JobState::kQueued;
  job.created_micros = options_.clock->NowMicros();
  job.progress = "queued";
  RETURN_IF_ERROR(Save(job));
  Enqueue(job.id);
  return job;
}

// The caller must be able to pull everything the spec names besides the
// version: the dataset's, the baseline's and the parent's repositories. A
// dataset named by digest may be any blob, so it needs a token for every
// repository.
core::Status Evaluations::CheckSpecReadable(const validator::EvalSpec& spec, std::string_view repo) {
  if (!spec.dataset.ref.empty()) RETURN_IF_ERROR(RequireAccess(Action::kPull, SplitRef(spec.dataset.ref, repo).first));
  if (spec.baseline) RETURN_IF_ERROR(RequireAccess(Action::kPull, SplitRef(spec.baseline->ref, repo).first));
  if (spec.parent) RETURN_IF_ERROR(RequireAccess(Action::kPull, SplitRef(spec.parent->ref, repo).first));
  const Principal* caller = PrincipalScope::Current();
  if (spec.dataset.digest && caller != nullptr &&
      std::find(caller->repos.begin(), caller->repos.end(), "**") == caller->repos.end()) {
    return core::PermissionDenied("token " + caller->name +
                                      " is scoped to some repositories: name the dataset by version "
                                      "(\"ref\" and \"path\") rather than by digest",
                                  "REPOSITORY_OUT_OF_SCOPE");
  }
  return core::OkStatus();
}

core::Result<JobInfo> Evaluations::SubmitEvaluation(std::string_view repo, std::string_view ref,
                                                    std::string_view spec_json) {
  RETURN_IF_ERROR(RequireAccess(Action::kPush, repo));
  if (spec_json.size() > kMaxSpecBytes) {
    return core::InvalidArgument("evaluation spec over " + std::to_string(kMaxSpecBytes) + " bytes", "BAD_EVAL_SPEC");
  }
  ASSIGN_OR_RETURN(validator::EvalSpec spec, validator::ParseEvalSpec(spec_json));
  RETURN_IF_ERROR(CheckSpecReadable(spec, repo));
  core::Digest digest = core::Sha256::Of(spec_json);
  // The exact bytes the job will read are stored before the job refers to them.
  RETURN_IF_ERROR(options_.blobs->Put(digest, spec_json));
  return SubmitEvaluationByDigest(repo, ref, digest);
}

core::Result<JobInfo> Evaluations::SubmitEvaluationByDigest(std::string_view repo, std::string_view ref,
                                                            const core::Digest& spec) {
  RETURN_IF_ERROR(RequireAccess(Action::kPush, repo));
  auto reader = options_.blobs->Open(spec);
  if (!reader.ok()) {
    if (reader.status().code() == core::Code::kNotFound) {
      return core::NotFound("no evaluation spec " + spec.ToString(), "SPEC_UNKNOWN");
    }
    return reader.status();
  }
  if ((*reader)->size() > kMaxSpecBytes) return core::InvalidArgument("evaluation spec too large", "BAD_EVAL_SPEC");
  std::string text((*reader)->size(), '\0');
  RETURN_IF_ERROR(internal::ReadAtOf(reader->get())(0, text.size(), text.data()));
  ASSIGN_OR_RETURN(validator::EvalSpec parsed, validator::ParseEvalSpec(text));
  RETURN_IF_ERROR(CheckSpecReadable(parsed, repo));
  JobInfo job;
  job.kind = "evaluation";
  job.repo = std::string(repo);
  job.version = std::string(ref);
  job.request = {{"spec_digest", spec.ToString()}};
  return Submit(std::move(job));
}

core::Result<JobInfo> Evaluations::SubmitStats(std::string_view repo, std::string_view ref,
                                               std::string_view parent_ref) {
  RETURN_IF_ERROR(RequireAccess(Action::kPush, repo));
  JobInfo job;
  job.kind = "stats";
  job.repo = std::string(repo);
  job.version = std::string(ref);
  job.request = Json::object();
  if (!parent_ref.empty()) {
    auto [prepo, pref] = SplitRef(parent_ref, repo);
    RETURN_IF_ERROR(RequireAccess(Action::kPull, prepo));
    RETURN_IF_ERROR(options_.registry->Resolve(prepo, pref).status());
    job.request["parent"] = std::string(parent_ref);
  }
  return Submit(std::move(job));
}

core::Result<JobInfo> Evaluations::Get(std::string_view id) { return Load(id); }

core::Result<std::vector<JobInfo>> Evaluations::List(size_t limit) {
  return ListJobRecords(options_.meta, JobPrefix(), limit);
}

core::Result<JobInfo> Evaluations::Cancel(std::string_view id) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(JobInfo job, Load(id));
  RETURN_IF_ERROR(RequireAccess(Action::kPush, job.repo));
  if (job.finished()) return job;
  job.cancel_requested = true;
  auto running = running_.find(job.id);
  if (running == running_.end()) {
    job.state = JobState::kCancelled;
    job.finished_micros = options_.clock->NowMicros();
    job.progress = "cancelled before it started";
    job.error = StatusJson(core::Status(core::Code::kCancelled, "cancelled before it started", "JOB_CANCELLED"));
  } else {
    running->second->cancel = true;
  }
  RETURN_IF_ERROR(Save(job));
  return job;
}

void Evaluations::WaitIdle() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return queue_.empty() && running_.empty(); });
}

void Evaluations::Work() {
  while (true) {
    std::string id;
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      id = std::move(queue_.front());
      queue_.pop_front();
      if (running_.count(id)) continue;  // queued twice
      running_[id] = std::make_shared<Running>();
    }
    RunJob(id);
    {
      std::lock_guard lock(mu_);
      running_.erase(id);
    }
    idle_cv_.notify_all();
  }
}

void Evaluations::SetProgress(JobInfo& job, std::string progress) {
  std::lock_guard lock(mu_);
  auto stored = Load(job.id);
  if (stored.ok()) job.cancel_requested = stored->cancel_requested;
  job.progress = std::move(progress);
  Save(job).IgnoreError();  // progress is advisory; the final state is checked
}

void Evaluations::RunJob(const std::string& id) {
  std::shared_ptr<Running> running;
  JobInfo job;
  {
    std::lock_guard lock(mu_);
    running = running_[id];
    auto loaded = Load(id);
    if (!loaded.ok()) {
      SIGIL_LOG(kError) << "evaluations: job " << id << ": " << loaded.status().ToString();
      return;
    }
    job = std::move(loaded).value();
    if (job.finished()) return;  // cancelled while queued
    job.state = JobState::kRunning;
    job.started_micros = options_.clock->NowMicros();
    ++job.attempts;
    job.progress = "started";
    core::Status saved = Save(job);
    if (!saved.ok()) {
      SIGIL_LOG(kError) << "evaluations: job " << id << ": " << saved.ToString();
      return;
    }
  }
  SIGIL_LOG(kInfo) << "job " << id << ": " << job.kind << " of " << job.repo << ":" << job.version;
  core::Result<Json> result = job.kind == "stats" ? RunStats(job, *running) : RunEvaluation(job, *running);

  std::lock_guard lock(mu_);
  if (running->by_shutdown) return;  // stays running: the next Start takes it up
  auto stored = Load(id);
  if (stored.ok()) job.cancel_requested = stored->cancel_requested;
  job.finished_micros = options_.clock->NowMicros();
  if (running->cancel || job.cancel_requested) {
    job.state = JobState::kCancelled;
    job.progress = "cancelled";
    job.error = StatusJson(core::Status(core::Code::kCancelled, "cancelled while running", "JOB_CANCELLED"));
  } else if (result.ok()) {
    job.state = JobState::kCompleted;
    job.progress = "done";
    job.result = std::move(result).value();
  } else {
    job.state = JobState::kFailed;
    job.progress = "failed";
    job.error = StatusJson(result.status());
  }
  core::Status saved = Save(job);
  if (!saved.ok()) SIGIL_LOG(kError) << "evaluations: job " << id << ": " << saved.ToString();
  SIGIL_LOG(kInfo) << "job " << id << ": " << JobStateName(job.state)
                   << (result.ok() ? "" : " (" + result.status().ToString() + ")");
}

namespace {

// Waits for a pending version's first scan; refuses a quarantined one.
core::Result<ResolvedVersion> WaitUsable(Registry* registry, core::Clock* clock, const std::string& repo,
                                         const std::string& ref, int64_t wait_micros,
                                         const std::atomic<bool>& cancel) {
  int64_t deadline = clock->NowMicros() + wait_micros;
  while (true) {
    ASSIGN_OR_RETURN(ResolvedVersion v, registry->Resolve(repo, ref));
    if (v.info.state == VersionState::kQuarantined) {
      return core::FailedPrecondition(repo + ":" + v.info.version + " is quarantined", "QUARANTINED");
    }
    if (v.info.state == VersionState::kAvailable) return v;
    if (cancel) return core::Status(core::Code::kCancelled, "cancelled", "JOB_CANCELLED");
    if (clock->NowMicros() > deadline) {
      return core::DeadlineExceeded(repo + ":" + v.info.version + " is still being scanned", "PENDING_SCAN");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

struct ModelRun {
  std::string repo;
  ResolvedVersion version;
  validator::EvalOutcome outcome;
};

}  // namespace

core::Result<std::vector<Evaluations::WeightFile>> Evaluations::WeightStats(
    const ResolvedVersion& version, const std::optional<ResolvedVersion>& parent, const std::atomic<bool>& cancel) {
  std::vector<WeightFile> out;
  for (const Descriptor& layer : version.manifest.layers) {
    if (cancel) return core::Status(core::Code::kCancelled, "cancelled", "JOB_CANCELLED");
    std::string path = Title(layer);
    ASSIGN_OR_RETURN(auto reader, options_.blobs->Open(layer.digest));
    // Files the scanner finds no tensors in (configs, tokenizers) are not weights.
    auto tensors = TensorsOf(reader.get(), path);
    if (!tensors.ok() || tensors->empty()) continue;
    WeightFile file{path, layer.digest, std::nullopt, {}};
    const Descriptor* parent_file = parent ? FindFile(parent->manifest, path) : nullptr;
    if (parent_file != nullptr) {
      file.parent_digest = parent_file->digest;
      ASSIGN_OR_RETURN(auto parent_reader, options_.blobs->Open(parent_file->digest));
      ASSIGN_OR_RETURN(auto parent_tensors, TensorsOf(parent_reader.get(), path));
      ASSIGN_OR_RETURN(file.report,
                       validator::CompareWithParent(internal::ReadAtOf(reader.get()), reader->size(), *tensors,
                                                    internal::ReadAtOf(parent_reader.get()), parent_reader->size(),
                                                    parent_tensors, options_.stats));
    } else {
      ASSIGN_OR_RETURN(file.report, validator::ComputeStats(internal::ReadAtOf(reader.get()), reader->size(),
                                                           *tensors, options_.stats));
    }
    out.push_back(std::move(file));
  }
  return out;
}

core::Result<Json> Evaluations::RunEvaluation(JobInfo& job, Running& running) {
  auto started = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(core::Digest spec_digest, core::Digest::Parse(job.request.value("spec_digest", "")));
  std::string spec_text;
  {
    ASSIGN_OR_RETURN(auto reader, options_.blobs->Open(spec_digest));
    if (reader->size() > kMaxSpecBytes) return core::InvalidArgument("evaluation spec too large", "BAD_EVAL_SPEC");
    spec_text.resize(reader->size());
    RETURN_IF_ERROR(internal::ReadAtOf(reader.get())(0, spec_text.size(), spec_text.data()));
  }
  ASSIGN_OR_RETURN(validator::EvalSpec spec, validator::ParseEvalSpec(spec_text));
  if (options_.worker_executable.empty()) {
    return core::Unavailable("this server has no validator worker (sigil-validator) to run models",
                             "VALIDATOR_UNAVAILABLE");
  }

  SetProgress(job, "waiting for the version's scan");
  ASSIGN_OR_RETURN(ResolvedVersion version, WaitUsable(options_.registry, options_.clock, job.repo,
                                                       job.digest.ToString(), options_.scan_wait_micros,
                                                       running.cancel));
  // Copies of blobs for the worker (stores without descriptors) live here.
  std::string scratch = core::JoinPath(options_.scratch_dir, job.id);
  struct RemoveScratch {
    std::string path;
    ~RemoveScratch() { core::RemoveTree(path).IgnoreError(); }
  } remove_scratch{scratch};

  // The dataset: a file of this or another version, or any blob by digest.
  core::Digest dataset_digest;
  std::string dataset_label;
  if (spec.dataset.digest) {
    dataset_digest = *spec.dataset.digest;
    dataset_label = dataset_digest.ToString();
  } else {
    ResolvedVersion holder = version;
    std::string holder_repo = job.repo;
    if (!spec.dataset.ref.empty()) {
      auto [drepo, dref] = SplitRef(spec.dataset.ref, job.repo);
      ASSIGN_OR_RETURN(holder, WaitUsable(options_.registry, options_.clock, drepo, dref, options_.scan_wait_micros,
                                          running.cancel));
      holder_repo = drepo;
    }
    const Descriptor* file = FindFile(holder.manifest, spec.dataset.path);
    if (file == nullptr) {
      return core::NotFound("the dataset " + holder_repo + ":" + holder.info.version + " has no file " +
                                spec.dataset.path,
                            "DATASET_UNKNOWN");
    }
    dataset_digest = file->digest;
    dataset_label = holder_repo + ":" + holder.info.version + "/" + spec.dataset.path;
  }
  auto dataset = OpenForWorker(options_.blobs, dataset_digest, scratch);
  if (!dataset.ok()) {
    if (dataset.status().code() == core::Code::kNotFound) {
      return core::NotFound("the dataset blob " + dataset_digest.ToString() + " is not in the registry",
                            "DATASET_UNKNOWN");
    }
    return dataset.status();
  }
  ASSIGN_OR_RETURN(std::vector<validator::TensorRef> dataset_tensors,
                   TensorsOf((*dataset)->reader.get(), dataset_label));
  auto find_tensor = [&](const std::string& name) -> core::Result<validator::FileTensor> {
    for (const auto& t : dataset_tensors) {
      if (t.name == name) return validator::FileTensor{(*dataset)->path, t};
    }
    return core::InvalidArgument("the dataset " + dataset_label + " has no tensor \"" + name +
                                     "\" (it must be a safetensors file with the inputs and targets)",
                                 "DATASET_INVALID");
  };
  validator::EvalJob eval;
  ASSIGN_OR_RETURN(eval.inputs, find_tensor(spec.dataset.inputs));
  ASSIGN_OR_RETURN(eval.targets, find_tensor(spec.dataset.targets));
  eval.batch_size = spec.batch_size;
  eval.metrics = spec.metrics;
  eval.top_k = spec.top_k;
  eval.determinism = spec.determinism;
  eval.device = spec.device;

  // Runs spec.model of `v` in a worker process.
  auto run_model = [&](const std::string& repo, const ResolvedVersion& v) -> core::Result<validator::EvalOutcome> {
    const Descriptor* model = FindFile(v.manifest, spec.model);
    if (model == nullptr) {
      return core::NotFound(repo + ":" + v.info.version + " has no file " + spec.model, "MODEL_UNKNOWN");
    }
    ASSIGN_OR_RETURN(auto model_file, OpenForWorker(options_.blobs, model->digest, scratch));
    validator::EvalJob run = eval;
    run.model_path = model_file->path;
    validator::WorkerOptions worker;
    worker.executable = options_.worker_executable;
    worker.scratch_parent = options_.scratch_dir;
    worker.time_limit_s = spec.time_limit_s;
    worker.memory_limit_bytes = spec.memory_limit_mb << 20;
    worker.cancel = &running.cancel;
    for (int fd : {model_file->fd, (*dataset)->fd}) {
      if (fd >= 0) worker.inherit_fds.push_back(fd);
    }
    return validator::RunInWorker(run, worker);
  };

  SetProgress(job, "running " + spec.model);
  ASSIGN_OR_RETURN(validator::EvalOutcome candidate, run_model(job.repo, version));
  if (running.cancel) return core::Status(core::Code::kCancelled, "cancelled", "JOB_CANCELLED");

  std::optional<ModelRun> baseline;
  std::string baseline_error;
  if (spec.baseline) {
    SetProgress(job, "running the baseline " + spec.baseline->ref);
    auto [brepo, bref] = SplitRef(spec.baseline->ref, job.repo);
    auto bversion = WaitUsable(options_.registry, options_.clock, brepo, bref, options_.scan_wait_micros,
                               running.cancel);
    if (!bversion.ok()) {
      baseline_error = bversion.status().message();
    } else {
      auto outcome = run_model(brepo, *bversion);
      if (!outcome.ok()) {
        baseline_error = outcome.status().message();
      } else {
        baseline = ModelRun{brepo, std::move(bversion).value(), std::move(outcome).value()};
      }
    }
    if (running.cancel) return core::Status(core::Code::kCancelled, "cancelled", "JOB_CANCELLED");
  }

  // Weight statistics over every file the scanner finds tensors in.
  std::vector<validator::StatsReport> weight_reports;
  Json weights = Json::array();
  Json parent_json;
  if (spec.weight_stats) {
    SetProgress(job, "computing weight statistics");
    std::optional<ResolvedVersion> parent;
    if (spec.parent) {
      auto [prepo, pref] = SplitRef(spec.parent->ref, job.repo);
      ASSIGN_OR_RETURN(parent, options_.registry->Resolve(prepo, pref));
      parent_json = {{"ref", spec.parent->ref}, {"version", parent->info.version}, {"digest", parent->info.digest.ToString()}};
    }
    ASSIGN_OR_RETURN(std::vector<WeightFile> files, WeightStats(version, parent, running.cancel));
    for (WeightFile& f : files) {
      weights.push_back(WeightSummary(f.path, f.digest, f.report));
      weight_reports.push_back(std::move(f.report));
    }
  }

  validator::JudgeInput input;
  input.spec = &spec;
  input.candidate = &candidate;
  input.baseline = baseline ? &baseline->outcome : nullptr;
  input.baseline_error = baseline_error;
  for (const auto& r : weight_reports) input.weights.push_back(&r);
  validator::Judgement judgement = validator::Judge(input);

  SetProgress(job, "signing the report");
  int64_t now = options_.clock->NowMicros();
  Json checks = Json::array();
  for (const auto& c : judgement.checks) checks.push_back(validator::CheckToJson(c));
  auto spec_json = core::ParseJson(spec_text);
  Json report = {
      {"repository", job.repo},
      {"version", version.info.version},
      {"digest", version.info.digest.ToString()},
      {"passed", judgement.passed},
      {"checks", checks},
      {"spec_digest", spec_digest.ToString()},
      {"spec", spec_json.ok() ? *spec_json : Json()},
      {"model", {{"path", spec.model}}},
      {"dataset", {{"name", dataset_label}, {"digest", dataset_digest.ToString()}}},
      {"run", validator::EvalOutcomeToJson(candidate)},
      {"metrics", candidate.metrics},
      {"weights", weights},
      {"time", core::FormatRfc3339(now)},
      {"duration_s", std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()},
  };
  if (const Descriptor* m = FindFile(version.manifest, spec.model)) report["model"]["digest"] = m->digest.ToString();
  if (!parent_json.is_null()) report["parent"] = parent_json;
  if (spec.baseline) {
    Json b = {{"ref", spec.baseline->ref}};
    if (baseline) {
      b["repository"] = baseline->repo;
      b["version"] = baseline->version.info.version;
      b["digest"] = baseline->version.info.digest.ToString();
      b["run"] = validator::EvalOutcomeToJson(baseline->outcome);
      b["metrics"] = baseline->outcome.metrics;
    } else {
      b["error"] = baseline_error;
    }
    report["baseline"] = b;
  }
  std::string report_text = core::DumpJson(report);
  core::Digest report_digest = core::Sha256::Of(report_text);
  RETURN_IF_ERROR(options_.blobs->Put(report_digest, report_text));

  Json record = {{"passed", judgement.passed},
                 {"created", now},
                 {"version", version.info.version},
                 {"job", job.id},
                 {"spec_digest", spec_digest.ToString()}};
  Json result = {{"passed", judgement.passed},
                 {"report_digest", report_digest.ToString()},
                 {"report", report}};
  if (options_.attestations != nullptr) {
    attest::Statement statement;
    statement.subjects.push_back({job.repo + ":" + version.info.version, {{"sha256", version.info.digest.Hex()}}});
    statement.predicate_type = std::string(attest::kSigilEvaluationV1);
    statement.predicate_json = report_text;
    ASSIGN_OR_RETURN(signing::Envelope envelope, attest::SignStatement(statement, {*options_.server_key}));
    ASSIGN_OR_RETURN(Attestations::Added added,
                     options_.attestations->Add(job.repo, version.info.digest.ToString(),
                                                signing::SerializeEnvelope(envelope)));
    record["attestation"] = added.record.content_digest.ToString();
    record["log_index"] = added.record.log_index;
    result["attestation"] = {{"digest", added.record.content_digest.ToString()},
                             {"log_index", added.record.log_index}};
  }
  RETURN_IF_ERROR(options_.meta->Put(kReferrersCf,
                                     RecordPrefix(job.repo, version.info.digest) + Hex16(now) +
                                         std::string(1, '\0') + report_digest.ToString(),
                                     core::DumpJson(record)));
  SIGIL_LOG(kInfo) << "evaluated " << job.repo << ":" << version.info.version << ": "
                   << (judgement.passed ? "passed" : "failed");
  return result;
}

core::Result<Json> Evaluations::RunStats(JobInfo& job, Running& running) {
  ASSIGN_OR_RETURN(ResolvedVersion version, options_.registry->Resolve(job.repo, job.digest.ToString()));
  std::optional<ResolvedVersion> parent;
  std::string parent_ref = job.request.value("parent", "");
  if (!parent_ref.empty()) {
    auto [prepo, pref] = SplitRef(parent_ref, job.repo);
    ASSIGN_OR_RETURN(parent, options_.registry->Resolve(prepo, pref));
  }
  SetProgress(job, "computing weight statistics");
  ASSIGN_OR_RETURN(std::vector<WeightFile> weight_files, WeightStats(version, parent, running.cancel));
  Json files = Json::array();
  for (const WeightFile& f : weight_files) {
    Json file = {{"path", f.path}, {"digest", f.digest.ToString()}, {"stats", validator::StatsReportToJson(f.report)}};
    if (f.parent_digest) file["parent_digest"] = f.parent_digest->ToString();
    files.push_back(std::move(file));
  }
  Json result = {{"files", files}};
  if (parent) {
    result["parent"] = {{"ref", parent_ref}, {"version", parent->info.version}, {"digest", parent->info.digest.ToString()}};
  }
  return result;
}

core::Result<std::vector<EvaluationRecord>> Evaluations::Reports(std::string_view repo, std::string_view ref) {
  ASSIGN_OR_RETURN(ResolvedVersion version, options_.registry->Resolve(repo, ref));
  std::vector<EvaluationRecord> out;
  core::Status bad;
  std::string prefix = RecordPrefix(repo, version.info.digest);
  RETURN_IF_ERROR(options_.meta->Scan(kReferrersCf, prefix, [&](std::string_view key, std::string_view value) {
    EvaluationRecord r;
    r.version_digest = version.info.digest;
    auto report = core::Digest::Parse(key.substr(key.rfind('\0') + 1));
    auto j = core::ParseJson(value);
    if (!report.ok() || !j.ok() || !j->is_object()) {
      bad = core::DataLoss("corrupt evaluation record of " + std::string(repo));
      return false;
    }
    r.report_digest = *report;
    try {
      r.version = j->at("version").get<std::string>();
      r.passed = j->at("passed").get<bool>();
      r.created_micros = j->at("created").get<int64_t>();
      r.job_id = j->value("job", "");
      auto spec = core::Digest::Parse(j->at("spec_digest").get<std::string>());
      if (spec.ok()) r.spec_digest = *spec;
      if (j->contains("attestation")) {
        auto a = core::Digest::Parse(j->at("attestation").get<std::string>());
        if (a.ok()) r.attestation_digest = *a;
        r.log_index = j->value("log_index", uint64_t{0});
      }
    } catch (const Json::exception& e) {
      bad = core::DataLoss(std::string("corrupt evaluation record: ") + e.what());
      return false;
    }
    out.push_back(std::move(r));
    return true;
  }));
  RETURN_IF_ERROR(bad);
  return out;
}

}  // namespace sigil::registry
