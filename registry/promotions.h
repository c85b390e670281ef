// Promotions: a version moves to a stage (an alias such as `production`)
// only when every policy in force for the repository and stage passes on its
// evidence.
//
// A promotion is a durable job (JobInfo, kind "promotion"). It:
//   1. resolves the version (refusing a quarantined one) and the policies
//      that apply (PolicyStore::Applicable); none is a FAIL (rule "policy":
//      "no policy covers <repo> for stage <stage>");
//   2. runs what a policy needs and is missing: waits for the version's scan,
//      and submits the evaluation a policy's evaluation.spec names (and the
//      same spec for the alias's current holder, for the regression check)
//      unless a report for that spec exists, then waits for it;
//   3. gathers the evidence (GatherEvidence) and evaluates every policy
//      (policies::Evaluate);
//   4. on PASS: issues a SLSA VSA v1 statement (subject: the manifest digest;
//      verifier.id kVerifierId; resourceUri "sigil://<origin>/<repo>@<digest>";
//      policy {uri "sigil://<origin>/policies/<name>?version=<n>", digest};
//      inputAttestations: every attestation used, by content digest;
//      verificationResult PASSED; verifiedLevels ["SIGIL_STAGE_<stage>"]),
//      signed by the server key and logged (Attestations::Add), then moves the
//      alias (Registry::MoveAlias via "promotion", expect_current = the
//      holder the evidence was judged against). If the alias moved meanwhile
//      the job fails with ALIAS_MOVED and the alias is left alone: of two
//      concurrent promotions to one alias, exactly one wins.
//      On FAIL: the alias does not move and the result lists every rule.
// The result: {"verdict", "stage", "decisions": [DecisionToJson...],
//              "vsa"?, "log_index"?, "alias"?}.
//
// Keys: jobs  promotion\0<id> -> JobToJson (the evaluation jobs' format).
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "attest/transparency_log.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/status.h"
#include "policies/evaluate.h"
#include "registry/attestations.h"
#include "registry/evaluations.h"
#include "registry/policy_store.h"
#include "registry/registry.h"
#include "registry/scanning.h"
#include "signing/keys.h"
#include "storage/blob_store.h"
#include "storage/meta_store.h"

namespace sigil::registry {

inline constexpr std::string_view kVerifierId = "https://sigil.dev/sigild";

struct EvidenceSources {
  Registry* registry = nullptr;
  storage::BlobStore* blobs = nullptr;
  Attestations* attestations = nullptr;
  Scanning* scanning = nullptr;        // optional: no scan evidence without it
  Evaluations* evaluations = nullptr;  // optional: no evaluation evidence without it
  core::Clock* clock = core::Clock::Real();
  // Root of the local git mirrors (attest/git_mirror.h); empty: commit rules
  // fail with "no git mirror is configured".
  std::string git_mirror_root;
};

// Everything policies::Evaluate needs about one version, for a promotion to
// `stage`: its files, verified model signatures (key ids and trust-store
// roles), verified attestations by predicate type, the latest scan, the
// evaluation reports (for the spec the policies name, against the stage's
// current holder), the SLSA provenance (builder, source, commit checked in
// the mirror, datasets, subjects). `used` receives the content digests of
// the attestations read (a VSA's inputAttestations).
core::Result<policies::Evidence> GatherEvidence(const EvidenceSources& sources, const ResolvedVersion& version,
                                                std::string_view stage,
                                                const std::vector<PolicyRecord>& policies,
                                                std::vector<core::Digest>* used);

struct PromotionsOptions {
  EvidenceSources sources;
  storage::MetaStore* meta = nullptr;
  PolicyStore* policies = nullptr;
  std::string origin;  // the log origin, names this server in URIs
  // Signs the VSAs (with sources.attestations, which stores and logs them).
  std::optional<signing::PrivateKey> server_key;
  uint32_t max_attempts = 3;
  // How long a promotion waits for a scan or an evaluation it started.
  int64_t wait_micros = 1800ll * 1'000'000;
};

class Promotions {
 public:
  // Starts the job thread and takes up unfinished promotions.
  static core::Result<std::unique_ptr<Promotions>> Start(PromotionsOptions options);
  ~Promotions();

  // Needs the promoter role on the repository (RequireAccess). stage: an
  // alias name. Errors: those of Resolve; kFailedPrecondition QUARANTINED;
  // kInvalidArgument TAG_INVALID; kAlreadyExists NAME_TAKEN (a version's
  // name). The job records the alias's holder now (request.expect_current):
  // it is judged against it and moves the alias only if it is still there.
  // A failed promotion (a FAIL verdict) completes; ALIAS_MOVED, QUARANTINED,
  // PROMOTION_TIMEOUT and JOB_INTERRUPTED leave it failed.
  core::Result<JobInfo> Submit(std::string_view repo, std::string_view ref, std::string_view stage);
  // kNotFound JOB_UNKNOWN.
  core::Result<JobInfo> Get(std::string_view id);
  core::Result<std::vector<JobInfo>> List(size_t limit);
  // A queued promotion is cancelled at once; a running one at its next step
  // (it also cancels the evaluation it waits for), and never after its VSA
  // was issued: from there it finishes. A finished job is returned as it
  // is. kNotFound JOB_UNKNOWN. A cancel a crash cuts short is lost: the job
  // runs again at the next Start.
  core::Result<JobInfo> Cancel(std::string_view id);

  // Dry run: evaluates one policy document (not stored) against the version
  // for the stage, with the evidence that exists now (nothing is run).
  // Returns DecisionToJson. Errors: POLICY_INVALID; those of Resolve.
  core::Result<core::Json> Test(std::string_view policy_document, std::string_view repo,
                                std::string_view ref, std::string_view stage);

  void WaitIdle();

 private:
  explicit Promotions(PromotionsOptions options) : options_(std::move(options)) {}
  core::Status Save(const JobInfo& job);
  void Work();
  // PROMOTIONS_STOPPING while the server stops, JOB_CANCELLED once the job
  // was cancelled; OK otherwise.
  core::Status Interrupted(const std::string& id);
  void SetProgress(JobInfo& job, std::string progress);
  void RunJob(const std::string& id);
  // The promotion itself: the result, or an error (*partial then holds the
  // decisions made, when the error came after them).
  core::Result<core::Json> Promote(JobInfo& job, core::Json* partial);
  // Polls an evaluation job until it finishes, the deadline, or shutdown.
  core::Result<JobInfo> WaitJob(const std::string& promotion_id, const std::string& id, int64_t deadline);
  core::Status EnsureEvaluation(JobInfo& job, const std::string& repo, const core::Digest& version,
                                const std::string& label, const core::Digest& spec, int64_t deadline);

  PromotionsOptions options_;
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable idle_cv_;
  std::deque<std::string> queue_;
  std::set<std::string> cancelled_;  // running jobs asked to stop
  bool busy_ = false;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace sigil::registry
