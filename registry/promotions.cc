#include "registry/promotions.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "attest/git_mirror.h"
#include "attest/slsa.h"
#include "attest/statement.h"
#include "core/log.h"
#include "core/random.h"
#include "registry/access.h"
#include "registry/internal/blob_read.h"
#include "registry/internal/keys.h"
#include "registry/names.h"
#include "signing/dsse.h"

namespace sigil::registry {
namespace {

using core::Json;

constexpr std::string_view kJobsCf = "jobs";
constexpr std::string_view kKind = "promotion";
// Role names SignatureEvidence::key_roles carries besides a trusted key's
// name: the server's own key.
constexpr std::string_view kServerKeyRole = "sigild";
constexpr size_t kMaxReportBytes = 64 << 20;
constexpr auto kPollInterval = std::chrono::milliseconds(50);

std::string JobKey(std::string_view id) { return internal::JoinKey({"promotion", id}); }
std::string JobPrefix() { return internal::JoinKey({"promotion", ""}); }

Json StatusJson(const core::Status& s) {
  Json j = {{"code", std::string(core::CodeName(s.code()))}, {"reason", s.reason()}, {"message", s.message()}};
  if (!s.detail().empty()) {
    auto detail = core::ParseJson(s.detail());
    if (detail.ok()) j["detail"] = *detail;
  }
  return j;
}

core::Result<std::string> ReadBlob(storage::BlobStore* blobs, const core::Digest& digest, size_t limit) {
  ASSIGN_OR_RETURN(auto reader, blobs->Open(digest));
  if (reader->size() > limit) return core::ResourceExhausted("blob " + digest.ToString() + " is too large");
  std::string out(reader->size(), '\0');
  RETURN_IF_ERROR(internal::ReadAtOf(reader.get())(0, out.size(), out.data()));
  return out;
}

std::string Title(const Descriptor& layer) {
  auto it = layer.annotations.find(std::string(kTitleAnnotation));
  return it != layer.annotations.end() ? it->second : layer.digest.ToString();
}

// The in-toto statement inside a stored attestation document (a DSSE
// envelope or a Sigstore bundle holding one). The document verified when it
// was added; its record's status says whether it still does.
core::Result<attest::Statement> StatementOf(const AttestationRecord& record) {
  auto doc = core::ParseJson(record.content, {kMaxAttestationBytes, 64});
  if (!doc.ok() || !doc->is_object()) return core::DataLoss("stored attestation is not a JSON object");
  const Json* envelope_json = &*doc;
  if (doc->contains("mediaType")) {
    auto it = doc->find("dsseEnvelope");
    if (it == doc->end() || !it->is_object()) return core::DataLoss("stored bundle holds no envelope");
    envelope_json = &*it;
  }
  ASSIGN_OR_RETURN(signing::Envelope envelope, signing::EnvelopeFromJson(*envelope_json));
  return attest::ParseStatement(envelope.payload);
}

// A Decision that no policy made: the promotion fails on `rule`.
policies::Decision Refusal(std::string rule, std::string reason) {
  policies::Decision d;
  d.passed = false;
  d.rules.push_back({std::move(rule), false, std::move(reason)});
  return d;
}

// The latest completed report of `spec` for the version, with its metrics.
core::Result<std::optional<policies::EvaluationEvidence>> LatestReport(const EvidenceSources& sources,
                                                                      std::string_view repo,
                                                                      const core::Digest& version,
                                                                      const std::optional<core::Digest>& spec) {
  if (sources.evaluations == nullptr) return std::optional<policies::EvaluationEvidence>();
  ASSIGN_OR_RETURN(std::vector<EvaluationRecord> reports,
                   sources.evaluations->Reports(repo, version.ToString()));
  for (auto it = reports.rbegin(); it != reports.rend(); ++it) {
    if (spec && it->spec_digest != *spec) continue;
    policies::EvaluationEvidence e;
    e.passed = it->passed;
    e.spec_digest = it->spec_digest;
    ASSIGN_OR_RETURN(std::string text, ReadBlob(sources.blobs, it->report_digest, kMaxReportBytes));
    auto report = core::ParseJson(text, {kMaxReportBytes, 64});
    if (!report.ok() || !report->is_object()) {
      return core::DataLoss("evaluation report " + it->report_digest.ToString() + " does not parse");
    }
    auto metrics = report->find("metrics");
    if (metrics != report->end() && metrics->is_object()) {
      for (const auto& [name, value] : metrics->items()) {
        if (value.is_number()) e.metrics[name] = value.get<double>();
      }
    }
    return std::optional<policies::EvaluationEvidence>(std::move(e));
  }
  return std::optional<policies::EvaluationEvidence>();
}

// The evaluation evidence for one spec (nullopt: the latest report of any
// spec): the version's report and the current holder's metrics.
core::Result<std::optional<policies::EvaluationEvidence>> EvaluationFor(
    const EvidenceSources& sources, const ResolvedVersion& version, const std::optional<AliasInfo>& holder,
    const std::optional<core::Digest>& spec) {
  ASSIGN_OR_RETURN(auto mine, LatestReport(sources, version.info.repo, version.info.digest, spec));
  if (!mine) return mine;
  if (holder) {
    ASSIGN_OR_RETURN(auto current,
                     LatestReport(sources, version.info.repo, holder->digest, spec ? spec : mine->spec_digest));
    mine->current_metrics = current ? current->metrics : std::map<std::string, double>();
  }
  return mine;
}

std::optional<core::Digest> SpecOf(const policies::Policy& policy) {
  if (policy.evaluation && policy.evaluation->spec_digest) return policy.evaluation->spec_digest;
  return std::nullopt;
}

core::Result<std::optional<AliasInfo>> HolderOf(Registry* registry, std::string_view repo, std::string_view stage) {
  auto alias = registry->GetAlias(repo, stage);
  if (alias.ok()) return std::optional<AliasInfo>(std::move(alias).value());
  if (alias.status().reason() == "ALIAS_UNKNOWN") return std::optional<AliasInfo>();
  return alias.status();
}

// The evidence with the evaluation each policy's spec names: one
// Decision per policy.
core::Result<std::vector<policies::Decision>> Decide(const EvidenceSources& sources, const ResolvedVersion& version,
                                                    const std::optional<AliasInfo>& holder,
                                                    const std::vector<PolicyRecord>& policies,
                                                    const policies::Evidence& evidence,
                                                    const policies::Context& context) {
  std::vector<policies::Decision> out;
  for (const PolicyRecord& p : policies) {
    policies::Evidence ev = evidence;
    if (auto spec = SpecOf(p.policy)) {
      ASSIGN_OR_RETURN(ev.evaluation, EvaluationFor(sources, version, holder, spec));
    }
    out.push_back(policies::Evaluate(p.policy, ev, context));
  }
  return out;
}

Json DecisionsJson(const std::vector<policies::Decision>& decisions) {
  Json out = Json::array();
  for (const auto& d : decisions) out.push_back(policies::DecisionToJson(d));
  return out;
}

}  // namespace

core::Result<policies::Evidence> GatherEvidence(const EvidenceSources& sources, const ResolvedVersion& version,
                                                std::string_view stage,
                                                const std::vector<PolicyRecord>& policies,
                                                std::vector<core::Digest>* used) {
  if (sources.registry == nullptr || sources.blobs == nullptr || sources.attestations == nullptr) {
    return core::InvalidArgument("evidence needs the registry, the blob store and the attestations");
  }
  const std::string& repo = version.info.repo;
  const int64_t now = sources.clock->NowMicros();
  policies::Evidence ev;
  ev.repository = repo;
  ev.manifest_digest = version.info.digest;
  ev.now_micros = now;
  for (const Descriptor& layer : version.manifest.layers) ev.files.push_back({Title(layer), layer.digest});

  // Attestations: every one, verified or not (policies count only verified
  // ones); model signatures by key with the trust store's names as roles.
  ASSIGN_OR_RETURN(std::vector<AttestationRecord> records,
                   sources.attestations->List(repo, version.info.digest.ToString(), ""));
  std::shared_ptr<const signing::TrustStore> trust = sources.attestations->trust();
  const std::string server_key_id = sources.attestations->server_public_key().key_id();
  const AttestationRecord* provenance = nullptr;
  for (const AttestationRecord& r : records) {
    bool verified = r.status == "verified";
    if (r.predicate_type == attest::kSlsaVsaV1) continue;  // earlier verdicts are not evidence
    ev.attestations.push_back({r.predicate_type, r.key_ids, r.created_micros, verified});
    if (verified && used != nullptr) used->push_back(r.content_digest);
    if (r.predicate_type == attest::kModelSigningV1) {
      for (const std::string& key_id : r.key_ids) {
        policies::SignatureEvidence s;
        s.key_id = key_id;
        s.verified = verified;
        if (key_id == server_key_id) {
          s.key_roles.push_back(std::string(kServerKeyRole));
        } else if (const signing::TrustedKey* k = trust->Find(key_id)) {
          s.key_roles.push_back(k->name);
          // A key the trust store limits to other stages does not sign for this one.
          signing::TrustQuery q{std::string(attest::kModelSigningV1), repo, std::string(stage)};
          if (!trust->CheckAllowed(key_id, q, now).ok()) s.verified = false;
        } else {
          s.verified = false;
        }
        ev.signatures.push_back(std::move(s));
      }
    }
    if (verified && r.predicate_type == attest::kSlsaProvenanceV1) provenance = &r;  // the latest wins
  }

  if (sources.scanning != nullptr) {
    ASSIGN_OR_RETURN(ScanStatus scan, sources.scanning->Status(repo, version.info.digest.ToString()));
    if (scan.latest) {
      policies::ScanEvidence s;
      s.verdict = scan.latest->verdict;
      auto report = core::ParseJson(scan.latest->report_json, {kMaxReportBytes, 64});
      if (report.ok() && report->is_object() && report->contains("max_severity") &&
          (*report)["max_severity"].is_string()) {
        auto sev = policies::ParseSeverity((*report)["max_severity"].get<std::string>());
        if (sev) s.max_severity = *sev;
      }
      ev.scan = s;
      if (scan.latest->attestation_digest && used != nullptr &&
          std::find(used->begin(), used->end(), *scan.latest->attestation_digest) == used->end()) {
        used->push_back(*scan.latest->attestation_digest);
      }
    }
  }

  // The evaluation of the first spec a policy names (Decide replaces it for
  // policies naming others), else the latest report of any spec.
  std::optional<core::Digest> spec;
  for (const PolicyRecord& p : policies) {
    if ((spec = SpecOf(p.policy))) break;
  }
  ASSIGN_OR_RETURN(std::optional<AliasInfo> holder, HolderOf(sources.registry, repo, stage));
  ASSIGN_OR_RETURN(ev.evaluation, EvaluationFor(sources, version, holder, spec));

  if (provenance != nullptr) {
    ASSIGN_OR_RETURN(attest::Statement statement, StatementOf(*provenance));
    ASSIGN_OR_RETURN(attest::Provenance prov, attest::ParseProvenance(statement.predicate_json));
    policies::ProvenanceEvidence pv;
    pv.builder_id = prov.builder.id;
    for (const attest::ResourceDescriptor& dep : prov.resolved_dependencies) {
      auto commit = dep.digest.find("gitCommit");
      if (commit != dep.digest.end()) {
        if (pv.commit) continue;  // the first code dependency is the source
        pv.source_repository = dep.uri;
        policies::CommitEvidence c;
        c.commit = commit->second;
        auto check = attest::CheckCommit(sources.git_mirror_root, dep.uri, commit->second);
        if (check.ok()) {
          c.exists_in_mirror = check->exists;
          c.reachable_from = check->reachable_from;
          c.signature_valid = check->signature_valid;
          c.signer_key = check->signer_key;
          c.detail = check->detail;
        } else {
          c.detail = sources.git_mirror_root.empty() ? "no git mirror is configured" : check.status().message();
        }
        pv.commit = std::move(c);
        continue;
      }
      auto sha = dep.digest.find("sha256");
      if (sha == dep.digest.end()) continue;
      auto digest = core::Digest::Parse("sha256:" + sha->second);
      if (!digest.ok()) continue;
      bool registered = sources.blobs->Stat(*digest).ok();
      pv.datasets.push_back({*digest, registered});
    }
    // The files the provenance names as its outputs; the subject naming the
    // manifest itself (which binds the statement to the version) is not one.
    for (const attest::Subject& s : statement.subjects) {
      auto sha = s.digest.find("sha256");
      if (sha == s.digest.end()) continue;
      auto digest = core::Digest::Parse("sha256:" + sha->second);
      if (digest.ok() && *digest != version.info.digest) pv.subjects.push_back({s.name, *digest});
    }
    ev.provenance = std::move(pv);
  }
  return ev;
}

core::Result<std::unique_ptr<Promotions>> Promotions::Start(PromotionsOptions options) {
  const EvidenceSources& s = options.sources;
  if (s.registry == nullptr || s.blobs == nullptr || s.attestations == nullptr || s.clock == nullptr ||
      options.meta == nullptr || options.policies == nullptr || !options.server_key || options.max_attempts == 0) {
    return core::InvalidArgument(
        "promotions need the registry, the stores, the attestations, the policies and the server key");
  }
  std::unique_ptr<Promotions> p(new Promotions(std::move(options)));
  // Unfinished jobs, oldest first.
  ASSIGN_OR_RETURN(std::vector<JobInfo> unfinished, UnfinishedJobRecords(p->options_.meta, JobPrefix()));
  for (JobInfo& job : unfinished) {
    if (job.state == JobState::kRunning && job.attempts >= p->options_.max_attempts) {
      job.state = JobState::kFailed;
      job.finished_micros = p->options_.sources.clock->NowMicros();
      job.progress = "failed";
      job.error = StatusJson(core::Aborted(
          "the server stopped during each of its " + std::to_string(job.attempts) + " attempts", "JOB_INTERRUPTED"));
      RETURN_IF_ERROR(p->options_.meta->Put(kJobsCf, JobKey(job.id), core::DumpJson(JobToJson(job))));
      continue;
    }
    if (job.state == JobState::kRunning) {
      job.state = JobState::kQueued;
      job.progress = "queued again after a server restart";
      RETURN_IF_ERROR(p->options_.meta->Put(kJobsCf, JobKey(job.id), core::DumpJson(JobToJson(job))));
    }
    p->queue_.push_back(job.id);
  }
  if (!unfinished.empty()) SIGIL_LOG(kInfo) << "promotions: took up " << unfinished.size() << " unfinished job(s)";
  p->worker_ = std::thread([raw = p.get()] { raw->Work(); });
  return p;
}

Promotions::~Promotions() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

core::Status Promotions::Save(const JobInfo& job) {
  return options_.meta->Put(kJobsCf, JobKey(job.id), core::DumpJson(JobToJson(job)));
}

core::Result<JobInfo> Promotions::Submit(std::string_view repo, std::string_view ref, std::string_view stage) {
  RETURN_IF_ERROR(RequireAccess(Action::kPromote, repo));
  RETURN_IF_ERROR(ValidateTag(stage));
  ASSIGN_OR_RETURN(ResolvedVersion version, options_.sources.registry->Resolve(repo, ref));
  if (version.info.state == VersionState::kQuarantined) {
    return core::FailedPrecondition(std::string(repo) + ":" + version.info.version +
                                        " is quarantined: it cannot be promoted",
                                    "QUARANTINED");
  }
  // Versions and aliases share one namespace (Registry): a stage cannot be a version's name.
  auto clash = options_.sources.registry->Resolve(repo, stage);
  if (clash.ok() && clash->info.version == stage) {
    return core::AlreadyExists("'" + std::string(stage) + "' is a version of '" + std::string(repo) +
                                   "', not a stage",
                               "NAME_TAKEN");
  }
  // The holder now: the promotion is judged against it and moves the alias
  // only if it is still there (of two promotions to one alias, one wins).
  ASSIGN_OR_RETURN(std::optional<AliasInfo> holder, HolderOf(options_.sources.registry, repo, stage));
  const Principal* caller = PrincipalScope::Current();
  JobInfo job;
  job.id = "job-" + core::RandomHex(12);
  job.kind = std::string(kKind);
  job.repo = std::string(repo);
  job.version = version.info.version;
  job.digest = version.info.digest;
  job.state = JobState::kQueued;
  job.created_micros = options_.sources.clock->NowMicros();
  job.progress = "queued";
  job.request = {{"stage", stage},
                 {"by", caller != nullptr ? caller->name : "sigild"},
                 {"role", caller != nullptr ? std::string(RoleName(caller->role)) : "admin"},
                 {"expect_current", holder ? Json(holder->digest.ToString()) : Json()},
                 {"expect_version", holder ? holder->version : ""}};
  {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(Save(job));
    queue_.push_back(job.id);
  }
  work_cv_.notify_one();
  return job;
}

core::Result<JobInfo> Promotions::Get(std::string_view id) {
  auto text = options_.meta->Get(kJobsCf, JobKey(id));
  if (!text.ok()) {
    if (text.status().code() == core::Code::kNotFound) return core::NotFound("no job " + std::string(id), "JOB_UNKNOWN");
    return text.status();
  }
  return JobFromJson(*text);
}

core::Result<std::vector<JobInfo>> Promotions::List(size_t limit) {
  return ListJobRecords(options_.meta, JobPrefix(), limit);
}

core::Result<Json> Promotions::Test(std::string_view policy_document, std::string_view repo, std::string_view ref,
                                    std::string_view stage) {
  ASSIGN_OR_RETURN(policies::Policy policy, policies::ParsePolicy(policy_document));
  RETURN_IF_ERROR(ValidateTag(stage));
  ASSIGN_OR_RETURN(ResolvedVersion version, options_.sources.registry->Resolve(repo, ref));
  PolicyRecord record;
  record.name = policy.name;
  record.digest = policy.digest;
  record.document = std::string(policy_document);
  record.policy = std::move(policy);
  std::vector<PolicyRecord> one{record};
  ASSIGN_OR_RETURN(policies::Evidence evidence, GatherEvidence(options_.sources, version, stage, one, nullptr));
  ASSIGN_OR_RETURN(std::optional<AliasInfo> holder, HolderOf(options_.sources.registry, repo, stage));
  policies::Context context;
  const Principal* caller = PrincipalScope::Current();
  if (caller != nullptr) {
    context.token_name = caller->name;
    context.role = std::string(RoleName(caller->role));
    context.site = caller->site;
    context.region = caller->region;
  }
  context.action = policies::Action::kPromote;
  context.stage = std::string(stage);
  ASSIGN_OR_RETURN(auto decisions, Decide(options_.sources, version, holder, one, evidence, context));
  return policies::DecisionToJson(decisions.front());
}

void Promotions::WaitIdle() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return queue_.empty() && !busy_; });
}

void Promotions::Work() {
  while (true) {
    std::string id;
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      id = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
    }
    RunJob(id);
    {
      std::lock_guard lock(mu_);
      busy_ = false;
    }
    idle_cv_.notify_all();
  }
}

core::Status Promotions::Interrupted(const std::string& id) {
  std::lock_guard lock(mu_);
  if (stopping_) return core::Aborted("stopping", "PROMOTIONS_STOPPING");
  if (cancelled_.count(id)) return core::Status(core::Code::kCancelled, "cancelled", "JOB_CANCELLED");
  return core::OkStatus();
}

core::Result<JobInfo> Promotions::Cancel(std::string_view id) {
  ASSIGN_OR_RETURN(JobInfo job, Get(id));
  std::lock_guard lock(mu_);
  if (job.finished()) return job;
  auto queued = std::find(queue_.begin(), queue_.end(), job.id);
  if (queued != queue_.end()) {
    queue_.erase(queued);
    job.state = JobState::kCancelled;
    job.finished_micros = options_.sources.clock->NowMicros();
    job.progress = "cancelled";
    job.error = StatusJson(core::Status(core::Code::kCancelled, "cancelled", "JOB_CANCELLED"));
    RETURN_IF_ERROR(Save(job));
    idle_cv_.notify_all();
    return job;
  }
  cancelled_.insert(job.id);
  job.cancel_requested = true;
  return job;
}

void Promotions::SetProgress(JobInfo& job, std::string progress) {
  job.progress = std::move(progress);
  Save(job).IgnoreError();  // advisory; the final state is checked
}

void Promotions::RunJob(const std::string& id) {
  auto loaded = Get(id);
  if (!loaded.ok()) {
    SIGIL_LOG(kError) << "promotions: job " << id << ": " << loaded.status().ToString();
    return;
  }
  JobInfo job = std::move(loaded).value();
  if (job.finished()) return;
  job.state = JobState::kRunning;
  job.started_micros = options_.sources.clock->NowMicros();
  ++job.attempts;
  job.progress = "started";
  core::Status saved = Save(job);
  if (!saved.ok()) {
    SIGIL_LOG(kError) << "promotions: job " << id << ": " << saved.ToString();
    return;
  }
  SIGIL_LOG(kInfo) << "job " << id << ": promotion of " << job.repo << ":" << job.version << " to "
                   << job.request.value("stage", "");
  Json partial;  // decisions made before a failure, kept in the job
  core::Result<Json> result = Promote(job, &partial);
  if (!result.ok() && result.status().reason() == "PROMOTIONS_STOPPING") return;  // taken up at the next Start
  {
    std::lock_guard lock(mu_);
    cancelled_.erase(job.id);
  }
  job.finished_micros = options_.sources.clock->NowMicros();
  if (!result.ok() && result.status().reason() == "JOB_CANCELLED") {
    job.state = JobState::kCancelled;
    job.progress = "cancelled";
    job.error = StatusJson(result.status());
    if (!partial.is_null()) job.result = partial;
  } else if (result.ok()) {
    job.state = JobState::kCompleted;
    job.progress = "done";
    job.result = std::move(result).value();
  } else {
    job.state = JobState::kFailed;
    job.progress = "failed";
    job.error = StatusJson(result.status());
    if (!partial.is_null()) job.result = partial;
  }
  saved = Save(job);
  if (!saved.ok()) SIGIL_LOG(kError) << "promotions: job " << id << ": " << saved.ToString();
  SIGIL_LOG(kInfo) << "job " << id << ": " << JobStateName(job.state)
                   << (job.result.is_object() ? " " + job.result.value("verdict", std::string()) : std::string())
                   << (result.ok() ? "" : " (" + result.status().ToString() + ")");
}

core::Result<JobInfo> Promotions::WaitJob(const std::string& promotion_id, const std::string& id,
                                          int64_t deadline) {
  while (true) {
    ASSIGN_OR_RETURN(JobInfo job, options_.sources.evaluations->Get(id));
    if (job.finished()) return job;
    if (core::Status s = Interrupted(promotion_id); !s.ok()) {
      if (s.reason() == "JOB_CANCELLED") options_.sources.evaluations->Cancel(id).status().IgnoreError();
      return s;
    }
    if (options_.sources.clock->NowMicros() > deadline) {
      return core::DeadlineExceeded("evaluation job " + id + " did not finish in time", "PROMOTION_TIMEOUT");
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

// Runs the evaluation of spec for the version unless a report exists.
core::Status Promotions::EnsureEvaluation(JobInfo& job, const std::string& repo, const core::Digest& version,
                                          const std::string& label, const core::Digest& spec, int64_t deadline) {
  ASSIGN_OR_RETURN(auto existing, LatestReport(options_.sources, repo, version, spec));
  if (existing) return core::OkStatus();
  SetProgress(job, "evaluating " + label + " on spec " + spec.ToString());
  ASSIGN_OR_RETURN(JobInfo eval, options_.sources.evaluations->SubmitEvaluationByDigest(repo, version.ToString(), spec));
  ASSIGN_OR_RETURN(JobInfo done, WaitJob(job.id, eval.id, deadline));
  if (done.state != JobState::kCompleted) {
    // The policy then fails for want of a report, with this reason logged.
    SIGIL_LOG(kWarn) << "promotion " << job.id << ": evaluation " << done.id << " of " << label << " "
                        << JobStateName(done.state) << ": " << done.error.dump();
  }
  return core::OkStatus();
}

core::Result<Json> Promotions::Promote(JobInfo& job, Json* partial) {
  Registry* registry = options_.sources.registry;
  const std::string stage = job.request.value("stage", "");
  const int64_t deadline = options_.sources.clock->NowMicros() + options_.wait_micros;
  std::optional<core::Digest> expect;
  if (job.request.contains("expect_current") && job.request["expect_current"].is_string()) {
    ASSIGN_OR_RETURN(expect, core::Digest::Parse(job.request["expect_current"].get<std::string>()));
  }

  // A restart after the move: the alias's history names this job.
  ASSIGN_OR_RETURN(std::vector<AliasEvent> last, registry->AliasHistory(job.repo, stage, 1));
  if (!last.empty() && last[0].job_id == job.id && last[0].via == "promotion") {
    Json done = {{"verdict", "PASS"}, {"stage", stage}, {"decisions", Json::array()}, {"recovered", true},
                 {"alias", {{"name", stage}, {"version", last[0].version}, {"digest", last[0].digest.ToString()}}}};
    if (last[0].vsa) done["vsa"] = last[0].vsa->ToString();
    return done;
  }

  auto check_holder = [&]() -> core::Result<std::optional<AliasInfo>> {
    ASSIGN_OR_RETURN(std::optional<AliasInfo> holder, HolderOf(registry, job.repo, stage));
    std::optional<core::Digest> now;
    if (holder) now = holder->digest;
    if (now != expect) {
      return core::Aborted("alias '" + stage + "' of '" + job.repo + "' moved since the promotion was requested: it " +
                               (holder ? "points at '" + holder->version + "' now" : "is unset now"),
                           "ALIAS_MOVED");
    }
    return holder;
  };
  ASSIGN_OR_RETURN(std::optional<AliasInfo> holder, check_holder());

  // Moves the alias with the VSA issued for it; the job's record holds the
  // VSA first, so a restart between the two moves with it, issuing none.
  auto move_alias = [&](const std::string& version_name, const core::Digest& vsa, Json result) -> core::Result<Json> {
    SetProgress(job, "moving the alias");
    AliasMove move;
    move.by = job.request.value("by", "");
    move.via = "promotion";
    move.job_id = job.id;
    move.vsa = vsa;
    move.expect_current = expect;
    ASSIGN_OR_RETURN(AliasInfo alias, registry->MoveAlias(job.repo, stage, version_name, move));
    result["alias"] = {{"name", alias.name}, {"version", alias.version}, {"digest", alias.digest.ToString()}};
    return result;
  };
  if (job.result.is_object() && job.result.value("verdict", "") == "PASS" && job.result.contains("vsa") &&
      job.result["vsa"].is_string()) {
    ASSIGN_OR_RETURN(core::Digest vsa, core::Digest::Parse(job.result["vsa"].get<std::string>()));
    *partial = job.result;
    return move_alias(job.version, vsa, job.result);
  }

  RETURN_IF_ERROR(Interrupted(job.id));
  SetProgress(job, "resolving the version and the policies");
  ASSIGN_OR_RETURN(ResolvedVersion version, registry->Resolve(job.repo, job.digest.ToString()));
  ASSIGN_OR_RETURN(std::vector<PolicyRecord> policies, options_.policies->Applicable(job.repo, stage));
  if (policies.empty()) {
    std::vector<policies::Decision> d{Refusal("policy", "no policy covers " + job.repo + " for stage " + stage)};
    return Json{{"verdict", "FAIL"}, {"stage", stage}, {"decisions", DecisionsJson(d)}};
  }

  // What a policy needs and is missing: the scan, the evaluations.
  if (options_.sources.scanning != nullptr) {
    SetProgress(job, "waiting for the scan");
    while (true) {
      ASSIGN_OR_RETURN(ScanStatus scan, options_.sources.scanning->Status(job.repo, job.digest.ToString()));
      if (!scan.queued && scan.version.state != VersionState::kPending) break;
      RETURN_IF_ERROR(Interrupted(job.id));
      if (options_.sources.clock->NowMicros() > deadline) {
        return core::DeadlineExceeded("the scan of " + job.repo + ":" + job.version + " did not finish in time",
                                      "PROMOTION_TIMEOUT");
      }
      std::this_thread::sleep_for(kPollInterval);
    }
    ASSIGN_OR_RETURN(version, registry->Resolve(job.repo, job.digest.ToString()));
  }
  if (version.info.state == VersionState::kQuarantined) {
    return core::FailedPrecondition(job.repo + ":" + version.info.version + " is quarantined: it cannot be promoted",
                                    "QUARANTINED");
  }
  if (options_.sources.evaluations != nullptr) {
    for (const PolicyRecord& p : policies) {
      auto spec = SpecOf(p.policy);
      if (!spec) continue;
      RETURN_IF_ERROR(
          EnsureEvaluation(job, job.repo, version.info.digest, job.repo + ":" + version.info.version, *spec, deadline));
      if (holder && !p.policy.evaluation->max_regression_vs_current.empty()) {
        RETURN_IF_ERROR(EnsureEvaluation(job, job.repo, holder->digest,
                                         "the current " + stage + " (" + holder->version + ")", *spec, deadline));
      }
    }
  }

  SetProgress(job, "gathering evidence");
  std::vector<core::Digest> used;
  ASSIGN_OR_RETURN(policies::Evidence evidence, GatherEvidence(options_.sources, version, stage, policies, &used));
  policies::Context context;
  context.token_name = job.request.value("by", "");
  context.role = job.request.value("role", "");
  context.action = policies::Action::kPromote;
  context.stage = stage;
  SetProgress(job, "evaluating the policies");
  ASSIGN_OR_RETURN(std::vector<policies::Decision> decisions,
                   Decide(options_.sources, version, holder, policies, evidence, context));
  bool passed = std::all_of(decisions.begin(), decisions.end(), [](const auto& d) { return d.passed; });
  Json result = {{"verdict", passed ? "PASS" : "FAIL"}, {"stage", stage}, {"decisions", DecisionsJson(decisions)}};
  if (!passed) return result;
  *partial = result;

  // The holder judged against must still be there before a VSA is issued;
  // a cancel after this point is too late.
  RETURN_IF_ERROR(check_holder().status());
  RETURN_IF_ERROR(Interrupted(job.id));
  SetProgress(job, "issuing the verification summary");
  const int64_t now = options_.sources.clock->NowMicros();
  attest::Vsa vsa;
  vsa.verifier_id = std::string(kVerifierId);
  vsa.time_verified = now;
  vsa.resource_uri = "sigil://" + options_.origin + "/" + job.repo + "@" + version.info.digest.ToString();
  const PolicyRecord& first = policies.front();
  vsa.policy.uri = "sigil://" + options_.origin + "/policies/" + first.name + "?version=" + std::to_string(first.version);
  vsa.policy.digest = {{"sha256", first.digest.Hex()}};
  Json all_policies = Json::array();
  for (const PolicyRecord& p : policies) {
    all_policies.push_back({{"name", p.name}, {"version", p.version}, {"digest", p.digest.ToString()}});
  }
  vsa.policy.annotations_json = core::DumpJson(Json{{"policies", all_policies}});
  std::sort(used.begin(), used.end());
  used.erase(std::unique(used.begin(), used.end()), used.end());
  for (const core::Digest& d : used) {
    attest::ResourceDescriptor in;
    in.uri = "sigil://" + options_.origin + "/" + job.repo + "@" + version.info.digest.ToString() +
             "/attestations/" + d.ToString();
    in.digest = {{"sha256", d.Hex()}};
    vsa.input_attestations.push_back(std::move(in));
  }
  vsa.verification_result = std::string(attest::kVsaPassed);
  std::string level = stage;
  std::transform(level.begin(), level.end(), level.begin(), [](unsigned char c) {
    return std::isalnum(c) ? static_cast<char>(std::toupper(c)) : '_';
  });
  vsa.verified_levels = {"SIGIL_STAGE_" + level};
  vsa.slsa_version = "1.0";
  attest::Statement statement;
  statement.subjects.push_back({job.repo + ":" + version.info.version, {{"sha256", version.info.digest.Hex()}}});
  statement.predicate_type = std::string(attest::kSlsaVsaV1);
  ASSIGN_OR_RETURN(statement.predicate_json, attest::BuildVsa(vsa));
  ASSIGN_OR_RETURN(signing::Envelope envelope, attest::SignStatement(statement, {*options_.server_key}));
  ASSIGN_OR_RETURN(Attestations::Added added,
                   options_.sources.attestations->Add(job.repo, version.info.digest.ToString(),
                                                      signing::SerializeEnvelope(envelope)));
  result["vsa"] = added.record.content_digest.ToString();
  result["log_index"] = added.record.log_index;
  *partial = result;
  job.result = result;  // saved with the next progress, before the move
  return move_alias(version.info.version, added.record.content_digest, result);
}

}  // namespace sigil::registry
