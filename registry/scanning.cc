#include "registry/scanning.h"
#include "registry/internal/blob_read.h"
#include "registry/internal/keys.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "attest/statement.h"
#include "core/json.h"
#include "core/log.h"
#include "signing/dsse.h"

namespace sigil::registry {
namespace {

using core::Json;

constexpr std::string_view kJobsCf = "jobs";
constexpr std::string_view kReferrersCf = "referrers";
// Findings listed in a summary (the report has them all).
constexpr size_t kSummaryFindings = 20;
constexpr size_t kListPage = 1000;

std::string Join(std::initializer_list<std::string_view> parts) { return internal::JoinKey(parts); }

std::string JobKey(std::string_view repo, std::string_view version) { return Join({"scan", repo, version}); }
std::string JobPrefix() { return Join({"scan", ""}); }
std::string QuarantineKey(const core::Digest& blob) { return Join({"quarantine", blob.ToString()}); }
std::string RecordPrefix(std::string_view repo, const core::Digest& version) {
  return Join({"scan", repo, version.ToString(), ""});
}

std::string Hex16(int64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string VersionLabel(std::string_view repo, std::string_view version) {
  return std::string(repo) + ":" + std::string(version);
}

// What a refusal shows: the verdict and the findings that decided it.
Json SummaryJson(const scanner::VersionReport& report) {
  Json findings = Json::array();
  size_t total = 0;
  for (const auto& file : report.files) {
    for (const auto& f : file.findings) {
      if (!f.malformed && f.severity < report.block_at) continue;
      ++total;
      if (findings.size() >= kSummaryFindings) continue;
      Json item = {{"path", file.path},
                   {"rule", f.rule},
                   {"severity", std::string(scanner::SeverityName(f.severity))},
                   {"message", f.message}};
      if (!f.location.empty()) item["location"] = f.location;
      if (!f.global.empty()) item["global"] = f.global;
      findings.push_back(std::move(item));
    }
  }
  return Json{{"verdict", std::string(scanner::VerdictName(report.verdict))},
              {"findings", findings},
              {"finding_count", total}};
}

// A file that could not be read cannot be vouched for.
scanner::FileReport Unreadable(const std::string& path, uint64_t size, const core::Status& why) {
  scanner::FileReport r;
  r.path = path;
  r.size = size;
  scanner::Finding f;
  f.severity = scanner::Severity::kHigh;
  f.rule = "registry.unreadable";
  f.message = "the blob could not be read: " + why.message();
  f.malformed = true;
  r.findings.push_back(std::move(f));
  r.verdict = scanner::Verdict::kInvalid;
  return r;
}

}  // namespace

core::Result<std::unique_ptr<Scanning>> Scanning::Start(ScanningOptions options) {
  if (options.registry == nullptr || options.blobs == nullptr || options.meta == nullptr ||
      options.clock == nullptr || options.workers == 0) {
    return core::InvalidArgument("scanning needs a registry, stores, a clock and at least one worker");
  }
  if ((options.attestations == nullptr) != !options.server_key.has_value()) {
    return core::InvalidArgument("signed scan reports need both the attestations and the server key");
  }
  std::unique_ptr<Scanning> s(new Scanning(std::move(options)));
  RETURN_IF_ERROR(s->Recover());
  for (size_t i = 0; i < s->options_.workers; ++i) s->workers_.emplace_back([p = s.get()] { p->Work(); });
  return s;
}

Scanning::~Scanning() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

core::Status Scanning::Recover() {
  std::set<Job> jobs;
  core::Status bad;
  std::string prefix = JobPrefix();
  RETURN_IF_ERROR(options_.meta->Scan(kJobsCf, prefix, [&](std::string_view key, std::string_view) {
    std::string_view rest = key.substr(prefix.size());
    size_t sep = rest.find('\0');
    if (sep == std::string_view::npos) {
      bad = core::DataLoss("corrupt scan job key");
      return false;
    }
    jobs.emplace(std::string(rest.substr(0, sep)), std::string(rest.substr(sep + 1)));
    return true;
  }));
  RETURN_IF_ERROR(bad);
  // A version recorded as pending whose job was never written (a crash
  // between the push and its job) is found by its state.
  std::string repo_page;
  do {
    ASSIGN_OR_RETURN(auto repos, options_.registry->ListRepos(repo_page, kListPage));
    for (const RepoInfo& repo : repos.items) {
      std::string version_page;
      do {
        ASSIGN_OR_RETURN(auto versions, options_.registry->ListVersions(repo.name, version_page, kListPage));
        for (const VersionInfo& v : versions.items) {
          if (v.state == VersionState::kPending) jobs.emplace(v.repo, v.version);
        }
        version_page = versions.next;
      } while (!version_page.empty());
    }
    repo_page = repos.next;
  } while (!repo_page.empty());
  for (const Job& job : jobs) {
    RETURN_IF_ERROR(options_.meta->Put(kJobsCf, JobKey(job.first, job.second),
                                       core::DumpJson(Json{{"queued", options_.clock->NowMicros()}})));
    Push(job);
  }
  if (!jobs.empty()) SIGIL_LOG(kInfo) << "scanning: re-queued " << jobs.size() << " unfinished scan(s)";
  return core::OkStatus();
}

void Scanning::Push(Job job) {
  {
    std::lock_guard lock(mu_);
    if (!queued_.insert(job).second) return;
    queue_.push_back(std::move(job));
  }
  work_cv_.notify_one();
}

core::Result<ScanStatus> Scanning::Enqueue(std::string_view repo, std::string_view ref) {
  ASSIGN_OR_RETURN(ResolvedVersion version, options_.registry->Resolve(repo, ref));
  RETURN_IF_ERROR(options_.meta->Put(kJobsCf, JobKey(repo, version.info.version),
                                     core::DumpJson(Json{{"queued", options_.clock->NowMicros()}})));
  // What was there before: the queued scan may finish before we return.
  ScanStatus out;
  out.queued = true;
  ASSIGN_OR_RETURN(out.latest, Latest(std::string(repo), version.info.digest, false));
  Push({std::string(repo), version.info.version});
  out.version = std::move(version.info);
  return out;
}

void Scanning::WaitIdle() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return queued_.empty(); });
}

void Scanning::Work() {
  while (true) {
    Job job;
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    core::Status s = Run(job);
    if (!s.ok()) {
      // The job record stays: the next start tries again.
      SIGIL_LOG(kError) << "scanning " << VersionLabel(job.first, job.second) << ": " << s.ToString();
    }
    {
      std::lock_guard lock(mu_);
      --running_;
      queued_.erase(job);
    }
    idle_cv_.notify_all();
  }
}

core::Result<scanner::VersionReport> Scanning::ScanVersion(const ResolvedVersion& version) {
  std::vector<scanner::FileReport> files;
  for (const Descriptor& layer : version.manifest.layers) {
    auto title = layer.annotations.find(std::string(kTitleAnnotation));
    std::string path = title != layer.annotations.end() ? title->second : layer.digest.ToString();
    auto reader = options_.blobs->Open(layer.digest);
    if (!reader.ok()) {
      files.push_back(Unreadable(path, layer.size, reader.status()));
      continue;
    }
    storage::BlobReader* r = reader->get();
    auto report = scanner::ScanReader(internal::ReadAtOf(r), r->size(), options_.scan, path);
    files.push_back(report.ok() ? std::move(report).value() : Unreadable(path, r->size(), report.status()));
  }
  return scanner::AggregateReports(std::move(files), options_.scan.block_at);
}

core::Status Scanning::Run(const Job& job) {
  const auto& [repo, name] = job;
  auto resolved = options_.registry->Resolve(repo, name);
  if (!resolved.ok()) {
    if (resolved.status().code() != core::Code::kNotFound) return resolved.status();
    // Deleted while queued: nothing to scan.
    return options_.meta->Delete(kJobsCf, JobKey(repo, name));
  }
  const ResolvedVersion& version = *resolved;
  ASSIGN_OR_RETURN(scanner::VersionReport report, ScanVersion(version));
  int64_t now = options_.clock->NowMicros();
  Json body = scanner::VersionReportToJson(report);
  std::string report_text = core::DumpJson(body);
  core::Digest report_digest = core::Sha256::Of(report_text);
  RETURN_IF_ERROR(options_.blobs->Put(report_digest, report_text));

  Json summary = SummaryJson(report);
  Json record = {{"verdict", std::string(scanner::VerdictName(report.verdict))},
                 {"created", now},
                 {"version", name},
                 {"summary", summary}};
  if (options_.attestations != nullptr) {
    attest::Statement statement;
    statement.subjects.push_back({VersionLabel(repo, name), {{"sha256", version.info.digest.Hex()}}});
    statement.predicate_type = std::string(attest::kSigilScanV1);
    statement.predicate_json = report_text;
    ASSIGN_OR_RETURN(signing::Envelope envelope, attest::SignStatement(statement, {*options_.server_key}));
    ASSIGN_OR_RETURN(Attestations::Added added,
                     options_.attestations->Add(repo, version.info.digest.ToString(),
                                                signing::SerializeEnvelope(envelope)));
    record["attestation"] = added.record.content_digest.ToString();
    record["log_index"] = added.record.log_index;
  }

  VersionState state =
      report.verdict == scanner::Verdict::kClean ? VersionState::kAvailable : VersionState::kQuarantined;
  std::string summary_text = core::DumpJson(summary);
  // A quarantined version's blobs are refused before its state says so; an
  // available version's are released after.
  std::string label = VersionLabel(repo, name);
  if (state == VersionState::kQuarantined) {
    RETURN_IF_ERROR(UpdateQuarantineIndex(label, version.manifest, IndexChange::kQuarantined, summary_text));
  }

  storage::WriteBatch batch;
  batch.Put(
      kReferrersCf,
      RecordPrefix(repo, version.info.digest) + Hex16(now) + std::string(1, '\0') + report_digest.ToString(),
      core::DumpJson(record));
  batch.Delete(kJobsCf, JobKey(repo, name));
  RETURN_IF_ERROR(options_.meta->Write(batch));
  core::Status set = options_.registry->SetVersionState(repo, name, state);
  if (!set.ok() && set.code() != core::Code::kNotFound) return set;
  if (state == VersionState::kAvailable) {
    RETURN_IF_ERROR(UpdateQuarantineIndex(label, version.manifest, IndexChange::kAvailable, summary_text));
  }
  SIGIL_LOG(kInfo) << "scanned " << VersionLabel(repo, name) << ": " << scanner::VerdictName(report.verdict)
                   << " -> " << VersionStateName(state);
  return core::OkStatus();
}

core::Result<std::set<core::Digest>> Scanning::HeldByAvailable(const std::set<core::Digest>& blobs,
                                                               const std::string& except) {
  // Quarantine and deletions of versions sharing quarantined blobs are rare,
  // so this walks every version instead of keeping a reverse index of holders.
  std::set<core::Digest> held;
  std::string repo_page;
  do {
    ASSIGN_OR_RETURN(auto repos, options_.registry->ListRepos(repo_page, kListPage));
    for (const RepoInfo& repo : repos.items) {
      std::string version_page;
      do {
        ASSIGN_OR_RETURN(auto versions, options_.registry->ListVersions(repo.name, version_page, kListPage));
        for (const VersionInfo& v : versions.items) {
          if (v.state != VersionState::kAvailable || VersionLabel(v.repo, v.version) == except) continue;
          auto other = options_.registry->Resolve(v.repo, v.version);
          if (!other.ok()) {
            if (other.status().code() == core::Code::kNotFound) continue;
            return other.status();
          }
          for (const Descriptor& layer : other->manifest.layers) {
            if (blobs.count(layer.digest)) held.insert(layer.digest);
          }
        }
        version_page = versions.next;
      } while (!version_page.empty());
    }
    repo_page = repos.next;
  } while (!repo_page.empty());
  return held;
}

core::Result<std::optional<Json>> Scanning::LoadQuarantine(const core::Digest& blob) {
  auto text = options_.meta->Get(kJobsCf, QuarantineKey(blob));
  if (!text.ok()) {
    if (text.status().code() == core::Code::kNotFound) return std::optional<Json>();
    return text.status();
  }
  auto parsed = core::ParseJson(*text);
  if (!parsed.ok() || !parsed->is_object() || !parsed->contains("versions") ||
      !(*parsed)["versions"].is_array()) {
    return core::DataLoss("corrupt quarantine record of " + blob.ToString());
  }
  return std::optional<Json>(std::move(parsed).value());
}

core::Status Scanning::UpdateQuarantineIndex(const std::string& label, const Manifest& manifest,
                                             IndexChange change, const std::string& summary_json) {
  std::set<core::Digest> layers;
  for (const Descriptor& layer : manifest.layers) layers.insert(layer.digest);
  std::lock_guard lock(index_mu_);
  std::set<core::Digest> held;
  if (change == IndexChange::kQuarantined) {
    ASSIGN_OR_RETURN(held, HeldByAvailable(layers, label));
  }
  storage::WriteBatch batch;
  std::set<core::Digest> recheck;  // released blobs whose available holder left
  std::map<core::Digest, Json> records;
  for (const core::Digest& d : layers) {
    ASSIGN_OR_RETURN(std::optional<Json> rec, LoadQuarantine(d));
    if (change == IndexChange::kQuarantined) {
      if (!rec) rec = Json{{"versions", Json::array()}, {"released", false}};
      Json& holders = (*rec)["versions"];
      if (std::find(holders.begin(), holders.end(), Json(label)) == holders.end()) holders.push_back(label);
      (*rec)["released"] = held.count(d) > 0;
      auto summary = core::ParseJson(summary_json);
      (*rec)["summary"] = summary.ok() ? *summary : Json::object();
      batch.Put(kJobsCf, QuarantineKey(d), core::DumpJson(*rec));
      continue;
    }
    if (!rec) continue;
    Json& holders = (*rec)["versions"];
    holders.erase(std::remove(holders.begin(), holders.end(), Json(label)), holders.end());
    if (holders.empty()) {
      batch.Delete(kJobsCf, QuarantineKey(d));
      continue;
    }
    if (change == IndexChange::kAvailable) {
      (*rec)["released"] = true;
    } else if (change == IndexChange::kAvailableDeleted && rec->value("released", false)) {
      recheck.insert(d);
    }
    records[d] = std::move(*rec);
  }
  if (!recheck.empty()) {
    ASSIGN_OR_RETURN(std::set<core::Digest> still, HeldByAvailable(recheck, label));
    for (const core::Digest& d : recheck) records[d]["released"] = still.count(d) > 0;
  }
  for (const auto& [d, rec] : records) batch.Put(kJobsCf, QuarantineKey(d), core::DumpJson(rec));
  return options_.meta->Write(batch);
}

core::Status Scanning::Forget(const ResolvedVersion& deleted) {
  IndexChange change = deleted.info.state == VersionState::kAvailable ? IndexChange::kAvailableDeleted
                                                                      : IndexChange::kQuarantinedDeleted;
  RETURN_IF_ERROR(UpdateQuarantineIndex(VersionLabel(deleted.info.repo, deleted.info.version),
                                        deleted.manifest, change, {}));
  return options_.meta->Delete(kJobsCf, JobKey(deleted.info.repo, deleted.info.version));
}

core::Result<std::optional<ScanRecord>> Scanning::Latest(const std::string& repo, const core::Digest& digest,
                                                         bool with_report) {
  std::string key;
  std::string value;
  std::string prefix = RecordPrefix(repo, digest);
  RETURN_IF_ERROR(options_.meta->Scan(kReferrersCf, prefix, [&](std::string_view k, std::string_view v) {
    key = std::string(k);  // keys ascend by time: the last is the latest
    value = std::string(v);
    return true;
  }));
  if (key.empty()) return std::optional<ScanRecord>();
  auto damaged = [&](const std::string& why) {
    return core::DataLoss("scan record of " + repo + "@" + digest.ToString() + ": " + why);
  };
  ScanRecord r;
  r.version_digest = digest;
  auto report_digest = core::Digest::Parse(std::string_view(key).substr(key.rfind('\0') + 1));
  if (!report_digest.ok()) return damaged("bad report digest");
  r.report_digest = *report_digest;
  auto j = core::ParseJson(value);
  if (!j.ok() || !j->is_object()) return damaged("not a JSON object");
  try {
    r.version = j->at("version").get<std::string>();
    r.verdict = j->at("verdict").get<std::string>();
    r.created_micros = j->at("created").get<int64_t>();
    r.summary_json = core::DumpJson(j->at("summary"));
    if (j->contains("attestation")) {
      auto a = core::Digest::Parse(j->at("attestation").get<std::string>());
      if (!a.ok()) return damaged("bad attestation digest");
      r.attestation_digest = *a;
      r.log_index = j->at("log_index").get<uint64_t>();
    }
  } catch (const Json::exception& e) {
    return damaged(e.what());
  }
  if (with_report) {
    ASSIGN_OR_RETURN(auto reader, options_.blobs->Open(r.report_digest));
    r.report_json.resize(reader->size());
    size_t got = 0;
    while (got < r.report_json.size()) {
      ASSIGN_OR_RETURN(size_t n, reader->ReadAt(got, r.report_json.data() + got, r.report_json.size() - got));
      if (n == 0) return damaged("report blob shorter than its size");
      got += n;
    }
  }
  return std::optional<ScanRecord>(std::move(r));
}

core::Result<ScanStatus> Scanning::Status(std::string_view repo, std::string_view ref) {
  ASSIGN_OR_RETURN(ResolvedVersion version, options_.registry->Resolve(repo, ref));
  ScanStatus out;
  {
    std::lock_guard lock(mu_);
    out.queued = queued_.count({std::string(repo), version.info.version}) > 0;
  }
  ASSIGN_OR_RETURN(out.latest, Latest(std::string(repo), version.info.digest, true));
  out.version = std::move(version.info);
  return out;
}

core::Status Scanning::CheckPullable(const VersionInfo& version) {
  std::string label = VersionLabel(version.repo, version.version);
  if (version.state == VersionState::kPending) {
    return core::FailedPrecondition(label + " is being scanned; its files can be pulled once it is available",
                                    "PENDING_SCAN");
  }
  if (version.state != VersionState::kQuarantined) return core::OkStatus();
  ASSIGN_OR_RETURN(auto latest, Latest(version.repo, version.digest, false));
  std::string detail = latest ? latest->summary_json : core::DumpJson(Json::object());
  return core::Status(core::Code::kPermissionDenied,
                      label + " is quarantined: its scan found a blocked or invalid file", "QUARANTINED",
                      detail);
}

core::Status Scanning::CheckBlobPullable(const core::Digest& digest) {
  auto rec = options_.meta->Get(kJobsCf, QuarantineKey(digest));
  if (!rec.ok()) return rec.status().code() == core::Code::kNotFound ? core::OkStatus() : rec.status();
  auto j = core::ParseJson(*rec);
  if (j.ok() && j->is_object() && j->value("released", false)) return core::OkStatus();
  Json detail = Json::object();
  if (j.ok() && j->is_object()) {
    detail = j->value("summary", Json::object());
    if (j->contains("versions")) detail["versions"] = (*j)["versions"];
  }
  return core::Status(core::Code::kPermissionDenied,
                      "blob " + digest.ToString() + " belongs only to quarantined versions", "QUARANTINED",
                      core::DumpJson(detail));
}

}  // namespace sigil::registry
