#include "registry/promotions.h"

#include <chrono>
#include <thread>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "attest/slsa.h"
#include "attest/statement.h"
#include "core/clock.h"
#include "core/fs.h"
#include "core/json.h"
#include "registry/access.h"
#include "signing/dsse.h"
#include "tests/registry/model_fixture.h"
#include "tests/support/temp_dir.h"

namespace sigil::registry {
namespace {

using core::Json;

constexpr char kRepo[] = "health/triage";
constexpr char kOrigin[] = "sigil/test.example";
constexpr char kBuilder[] = "https://ci.example/builder";
const std::string kWorker = std::string(SIGIL_BINARY_DIR) + "/validator/sigil-validator";
const std::string kFixtures = SIGIL_VALIDATOR_FIXTURES;

signing::PrivateKey NewKey(signing::Algorithm a = signing::Algorithm::kEcdsaP256Sha256) {
  auto k = signing::PrivateKey::Generate(a);
  REQUIRE(k.ok());
  return *k;
}

std::string Fixture(const std::string& name) {
  auto bytes = core::ReadFile(kFixtures + "/" + name);
  REQUIRE(bytes.ok());
  return *bytes;
}

// A policy covering kRepo for production: signed by a "release" key, with
// verified provenance from kBuilder.
const char kGate[] = R"({"name": "gate", "repositories": ["health/*"], "stages": ["production"],
  "signatures": {"roles": ["release"], "threshold": 1},
  "attestations": [{"predicate_type": "https://slsa.dev/provenance/v1"}],
  "provenance": {"builders": ["https://ci.example/builder"], "dataset_digests_registered": true}})";

struct Env {
  testing::TempDir tmp;
  core::ManualClock clock;
  std::unique_ptr<storage::BlobStore> blobs = storage::NewMemoryBlobStore();
  std::unique_ptr<storage::MetaStore> meta = storage::NewMemoryMetaStore();
  Registry reg{RegistryOpts()};
  signing::PrivateKey server_key = NewKey();
  signing::PrivateKey log_key = NewKey(signing::Algorithm::kEd25519);
  std::unique_ptr<attest::TransparencyLog> log = OpenLog();
  std::unique_ptr<Attestations> attestations = OpenAttestations();
  PolicyStore policies{PolicyStoreOptions{meta.get(), &clock}};
  signing::PrivateKey release = NewKey();
  signing::PrivateKey rogue = NewKey();
  signing::PrivateKey builder = NewKey();
  std::string dataset = "rows of training data";

  Env() {
    Trust(release, "release", {std::string(attest::kModelSigningV1)});
    Trust(rogue, "rogue", {std::string(attest::kModelSigningV1)});
    Trust(builder, "builder", {std::string(attest::kSlsaProvenanceV1)});
    REQUIRE(blobs->Put(core::Sha256::Of(dataset), dataset).ok());
  }

  RegistryOptions RegistryOpts() {
    RegistryOptions o;
    o.blobs = blobs.get();
    o.meta = meta.get();
    o.clock = &clock;
    return o;
  }
  std::unique_ptr<attest::TransparencyLog> OpenLog() {
    attest::TransparencyLogOptions o;
    o.meta = meta.get();
    o.origin = kOrigin;
    o.key = log_key;
    auto l = attest::TransparencyLog::Open(o);
    REQUIRE(l.ok());
    return std::move(l).value();
  }
  std::unique_ptr<Attestations> OpenAttestations() {
    AttestationOptions o;
    o.registry = &reg;
    o.blobs = blobs.get();
    o.meta = meta.get();
    o.clock = &clock;
    o.log = log.get();
    o.server_key = server_key;
    auto a = Attestations::Open(o);
    REQUIRE(a.ok());
    return std::move(a).value();
  }
  void Trust(const signing::PrivateKey& key, const std::string& name, std::vector<std::string> types,
             std::vector<std::string> stages = {"*"}) {
    signing::TrustedKey k{key.public_key(), name, std::move(types), {"health/**"}, std::move(stages), std::nullopt};
    REQUIRE(attestations->AddTrustedKey(k).ok());
  }
  PromotionsOptions Opts(Evaluations* evaluations = nullptr) {
    PromotionsOptions o;
    o.sources.registry = &reg;
    o.sources.blobs = blobs.get();
    o.sources.attestations = attestations.get();
    o.sources.evaluations = evaluations;
    o.sources.clock = &clock;
    o.meta = meta.get();
    o.policies = &policies;
    o.origin = kOrigin;
    o.server_key = server_key;
    return o;
  }
  std::unique_ptr<Promotions> Start(PromotionsOptions o) {
    auto p = Promotions::Start(std::move(o));
    INFO(p.status().ToString());
    REQUIRE(p.ok());
    return std::move(p).value();
  }
  VersionInfo Push(const std::string& version, const std::string& weights) {
    return fixtures::PushModel(reg, *blobs, kRepo, version, {{"model.pt", weights}, {"config.json", "{}"}});
  }
  void Attest(const VersionInfo& v, const signing::PrivateKey& key, std::string_view type, std::string predicate) {
    attest::Statement s;
    s.subjects.push_back({std::string(kRepo) + ":" + v.version, {{"sha256", v.digest.Hex()}}});
    s.predicate_type = std::string(type);
    s.predicate_json = std::move(predicate);
    auto envelope = attest::SignStatement(s, {key});
    REQUIRE(envelope.ok());
    auto added = attestations->Add(kRepo, v.version, signing::SerializeEnvelope(*envelope));
    INFO(added.status().ToString());
    REQUIRE(added.ok());
  }
  void SignModel(const VersionInfo& v, const signing::PrivateKey& key) {
    Attest(v, key, attest::kModelSigningV1, "{}");
  }
  void Provenance(const VersionInfo& v, const std::string& builder_id, const std::string& commit = "") {
    attest::Provenance p;
    if (!commit.empty()) {
      attest::ResourceDescriptor code;
      code.uri = "https://git.example.org/health/train.git";
      code.digest = {{"gitCommit", commit}};
      p.resolved_dependencies.push_back(code);
    }
    p.build_type = "https://ci.example/train/v1";
    p.external_parameters_json = "{}";
    p.builder.id = builder_id;
    attest::ResourceDescriptor data;
    data.name = "train.safetensors";
    data.digest = {{"sha256", core::Sha256::Of(dataset).Hex()}};
    p.resolved_dependencies.push_back(data);
    auto predicate = attest::BuildProvenance(p);
    REQUIRE(predicate.ok());
    Attest(v, builder, attest::kSlsaProvenanceV1, *predicate);
  }
  // A second "release" key, allowed for the staging stage only.
  signing::PrivateKey NewStagingKey() {
    signing::PrivateKey k = NewKey();
    Trust(k, "release", {std::string(attest::kModelSigningV1)}, {"staging"});
    return k;
  }
  void Policy(const std::string& document) { REQUIRE(policies.Put(document).ok()); }
  JobInfo Finished(Promotions& p, const std::string& id) {
    p.WaitIdle();
    auto job = p.Get(id);
    REQUIRE(job.ok());
    INFO(JobToJson(*job).dump());
    REQUIRE(job->finished());
    return *job;
  }
  // The rules of a job's first decision: rule -> passed.
  static std::map<std::string, bool> Rules(const JobInfo& job) {
    std::map<std::string, bool> out;
    for (const auto& r : job.result["decisions"][0]["rules"]) out[r["rule"]] = r["passed"];
    return out;
  }
};

TEST_CASE("a promotion that passes issues a logged VSA and moves the alias", "[registry][promotions]") {
  Env env;
  env.Policy(kGate);
  VersionInfo v1 = env.Push("1", "weights one");
  env.SignModel(v1, env.release);
  env.Provenance(v1, kBuilder);
  auto p = env.Start(env.Opts());

  Principal gate;
  gate.anonymous = false;
  gate.name = "ci-gate";
  gate.role = Role::kPromoter;
  gate.repos = {"health/*"};
  core::Result<JobInfo> job = core::Internal("unset");
  {
    PrincipalScope scope(gate);
    job = p->Submit(kRepo, "1", "production");
  }
  REQUIRE(job.ok());
  CHECK(job->kind == "promotion");
  CHECK(job->state == JobState::kQueued);
  JobInfo done = env.Finished(*p, job->id);
  INFO(JobToJson(done).dump());
  REQUIRE(done.state == JobState::kCompleted);
  CHECK(done.result["verdict"] == "PASS");
  for (const auto& [rule, passed] : Env::Rules(done)) {
    INFO(rule);
    CHECK(passed);
  }
  CHECK(Env::Rules(done).count("signatures"));
  CHECK(Env::Rules(done).count("provenance.datasets"));

  auto alias = env.reg.GetAlias(kRepo, "production");
  REQUIRE(alias.ok());
  CHECK(alias->version == "1");

  // The VSA: attached to the version, signed by the server, in the log.
  auto vsas = env.attestations->List(kRepo, "1", attest::kSlsaVsaV1);
  REQUIRE(vsas.ok());
  REQUIRE(vsas->size() == 1);
  const AttestationRecord& vsa = (*vsas)[0];
  CHECK(vsa.content_digest.ToString() == done.result["vsa"]);
  CHECK(vsa.log_index == done.result["log_index"]);
  CHECK(vsa.status == "verified");
  CHECK(vsa.server_issued);
  CHECK(env.log->Size() > vsa.log_index);
  auto envelope = signing::ParseEnvelope(vsa.content);
  REQUIRE(envelope.ok());
  auto statement = attest::VerifyStatement(*envelope, {env.server_key.public_key()}, 1, v1.digest,
                                           attest::kSlsaVsaV1);
  REQUIRE(statement.ok());
  auto predicate = attest::ParseVsa(statement->statement.predicate_json);
  REQUIRE(predicate.ok());
  CHECK(predicate->verifier_id == kVerifierId);
  CHECK(predicate->verification_result == "PASSED");
  CHECK(predicate->verified_levels == std::vector<std::string>{"SIGIL_STAGE_PRODUCTION"});
  CHECK(predicate->resource_uri == std::string("sigil://") + kOrigin + "/" + kRepo + "@" + v1.digest.ToString());
  CHECK(predicate->policy.uri == std::string("sigil://") + kOrigin + "/policies/gate?version=1");
  CHECK(predicate->input_attestations.size() == 2);  // the signature and the provenance

  // The alias's history names the promotion, its job and its VSA.
  auto history = env.reg.AliasHistory(kRepo, "production", 10);
  REQUIRE(history.ok());
  REQUIRE(history->size() == 1);
  CHECK((*history)[0].via == "promotion");
  CHECK((*history)[0].by == "ci-gate");
  CHECK((*history)[0].job_id == job->id);
  CHECK((*history)[0].vsa == vsa.content_digest);

  // A reader may not request a promotion; the version must exist.
  Principal reader = gate;
  reader.role = Role::kReader;
  {
    PrincipalScope scope(reader);
    CHECK(p->Submit(kRepo, "1", "production").status().reason() == "ROLE_INSUFFICIENT");
  }
  CHECK(p->Submit(kRepo, "9", "production").status().reason() == "VERSION_UNKNOWN");
  CHECK(p->Submit(kRepo, "1", "bad/stage").status().reason() == "TAG_INVALID");
  CHECK(p->Submit(kRepo, "1", "1").status().reason() == "NAME_TAKEN");
  CHECK(p->Get("job-nope").status().reason() == "JOB_UNKNOWN");
}

TEST_CASE("a failing promotion lists every failed rule and leaves the alias", "[registry][promotions]") {
  Env env;
  env.Policy(kGate);
  VersionInfo v1 = env.Push("1", "weights one");
  VersionInfo v2 = env.Push("2", "weights two");
  REQUIRE(env.reg.SetAlias(kRepo, "production", "1").ok());
  // Version 2: signed only by a key the trust store knows but the policy
  // does not name, and no provenance at all.
  env.SignModel(v2, env.rogue);
  auto p = env.Start(env.Opts());
  auto job = p->Submit(kRepo, "2", "production");
  REQUIRE(job.ok());
  JobInfo done = env.Finished(*p, job->id);
  REQUIRE(done.state == JobState::kCompleted);
  CHECK(done.result["verdict"] == "FAIL");
  CHECK_FALSE(done.result.contains("vsa"));
  auto rules = Env::Rules(done);
  CHECK(rules["signatures"] == false);
  CHECK(rules["attestation https://slsa.dev/provenance/v1"] == false);
  CHECK(rules["provenance"] == false);
  std::string reasons = done.result["decisions"][0].dump();
  CHECK(reasons.find("not trusted by this policy") != std::string::npos);
  CHECK(reasons.find("no verified provenance") != std::string::npos);
  CHECK(env.reg.GetAlias(kRepo, "production")->version == "1");
  CHECK(env.attestations->List(kRepo, "2", attest::kSlsaVsaV1)->empty());

  // Signed by the release key but the provenance names another builder: only that rule fails.
  env.SignModel(v2, env.release);
  env.Provenance(v2, "https://evil.example/builder");
  job = p->Submit(kRepo, "2", "production");
  REQUIRE(job.ok());
  done = env.Finished(*p, job->id);
  rules = Env::Rules(done);
  CHECK(done.result["verdict"] == "FAIL");
  CHECK(rules["signatures"] == true);
  CHECK(rules["provenance.builder"] == false);
  CHECK(rules["provenance.datasets"] == true);
  CHECK(env.reg.GetAlias(kRepo, "production")->version == "1");
  (void)v1;

  // A key the trust store allows for staging only does not sign for production.
  signing::PrivateKey staging_only = env.NewStagingKey();
  VersionInfo v3 = env.Push("3", "weights three");
  env.SignModel(v3, staging_only);
  env.Provenance(v3, kBuilder);
  job = p->Submit(kRepo, "3", "production");
  REQUIRE(job.ok());
  done = env.Finished(*p, job->id);
  CHECK(done.result["verdict"] == "FAIL");
  CHECK(Env::Rules(done)["signatures"] == false);
  CHECK(done.result["decisions"][0].dump().find("did not verify") != std::string::npos);

  // A stage no policy covers fails with the reason.
  job = p->Submit(kRepo, "2", "canary");
  REQUIRE(job.ok());
  done = env.Finished(*p, job->id);
  CHECK(done.result["verdict"] == "FAIL");
  REQUIRE(done.result["decisions"].size() == 1);
  CHECK(done.result["decisions"][0]["rules"][0]["rule"] == "policy");
  CHECK(done.result["decisions"][0]["rules"][0]["reason"] == "no policy covers health/triage for stage canary");
  CHECK(env.reg.GetAlias(kRepo, "canary").status().reason() == "ALIAS_UNKNOWN");

  // The dry run answers the same decision without a job.
  auto tested = p->Test(kGate, kRepo, "2", "production");
  REQUIRE(tested.ok());
  CHECK((*tested)["verdict"] == "FAIL");
  CHECK(p->Test("{", kRepo, "2", "production").status().reason() == "POLICY_INVALID");
  CHECK(p->Test(kGate, kRepo, "7", "production").status().reason() == "VERSION_UNKNOWN");
  auto lenient = p->Test(R"({"name": "lenient", "repositories": ["**"]})", kRepo, "2", "production");
  REQUIRE(lenient.ok());
  CHECK((*lenient)["verdict"] == "PASS");
}

TEST_CASE("of two promotions to one alias exactly one moves it, and both are recorded",
          "[registry][promotions]") {
  Env env;
  env.Policy(kGate);
  VersionInfo v1 = env.Push("1", "weights one");
  VersionInfo v2 = env.Push("2", "weights two");
  for (const VersionInfo& v : {v1, v2}) {
    env.SignModel(v, env.release);
    env.Provenance(v, kBuilder);
  }
  // Two promotions asked while the alias was unset, as two CI jobs asking
  // at once leave them: both queued before the promotion thread runs
  // either. (Submitting to a running thread may finish the first before the
  // second is asked, and the second then rightly replaces it.)
  for (const auto& [id, v] : {std::pair<std::string, VersionInfo>{"job-a", v1}, {"job-b", v2}}) {
    JobInfo job;
    job.id = id;
    job.kind = "promotion";
    job.repo = kRepo;
    job.version = v.version;
    job.digest = v.digest;
    job.created_micros = env.clock.NowMicros();
    job.request = {{"stage", "production"}, {"by", "ci-gate"}, {"role", "promoter"},
                   {"expect_current", nullptr}, {"expect_version", ""}};
    REQUIRE(env.meta->Put("jobs", std::string("promotion") + '\0' + id, core::DumpJson(JobToJson(job))).ok());
  }
  auto p = env.Start(env.Opts());
  JobInfo da = env.Finished(*p, "job-a");
  JobInfo db = env.Finished(*p, "job-b");
  int moved = 0;
  for (const JobInfo* j : {&da, &db}) {
    INFO(JobToJson(*j).dump());
    if (j->state == JobState::kCompleted) {
      CHECK(j->result["verdict"] == "PASS");
      ++moved;
    } else {
      CHECK(j->state == JobState::kFailed);
      CHECK(j->error["reason"] == "ALIAS_MOVED");
    }
  }
  CHECK(moved == 1);
  auto history = env.reg.AliasHistory(kRepo, "production", 10);
  REQUIRE(history->size() == 1);
  const JobInfo& winner = da.state == JobState::kCompleted ? da : db;
  CHECK((*history)[0].job_id == winner.id);
  CHECK(env.reg.GetAlias(kRepo, "production")->version == winner.version);
  auto listed = p->List(10);
  REQUIRE(listed.ok());
  CHECK(listed->size() == 2);
}

TEST_CASE("promotions left by a stopped server are taken up by the next Start", "[registry][promotions]") {
  Env env;
  env.Policy(kGate);
  VersionInfo v1 = env.Push("1", "weights one");
  env.SignModel(v1, env.release);
  env.Provenance(v1, kBuilder);
  // As a server killed after accepting them leaves them: one queued, one
  // running through all its attempts.
  auto record = [&](const std::string& id, JobState state, uint32_t attempts) {
    JobInfo job;
    job.id = id;
    job.kind = "promotion";
    job.repo = kRepo;
    job.version = "1";
    job.digest = v1.digest;
    job.state = state;
    job.attempts = attempts;
    job.created_micros = env.clock.NowMicros();
    job.request = {{"stage", "production"}, {"by", "ci-gate"}, {"role", "promoter"},
                   {"expect_current", nullptr}, {"expect_version", ""}};
    REQUIRE(env.meta->Put("jobs", std::string("promotion") + '\0' + id, core::DumpJson(JobToJson(job))).ok());
  };
  record("job-queued", JobState::kQueued, 0);
  record("job-doomed", JobState::kRunning, 3);
  auto p = env.Start(env.Opts());
  JobInfo queued = env.Finished(*p, "job-queued");
  INFO(JobToJson(queued).dump());
  CHECK(queued.state == JobState::kCompleted);
  CHECK(queued.result["verdict"] == "PASS");
  CHECK(queued.attempts == 1);
  JobInfo doomed = env.Finished(*p, "job-doomed");
  CHECK(doomed.state == JobState::kFailed);
  CHECK(doomed.error["reason"] == "JOB_INTERRUPTED");
  CHECK(env.reg.GetAlias(kRepo, "production")->version == "1");
  CHECK(env.reg.AliasHistory(kRepo, "production", 10)->at(0).job_id == "job-queued");

  // Killed after its VSA, before the move: the next attempt moves the alias
  // with that VSA and issues none. (A finished promotion's record, its alias
  // deleted since, stands in for the record the kill left.)
  VersionInfo v2 = env.Push("2", "weights two");
  env.Policy(R"({"name": "staging-gate", "repositories": ["health/*"], "stages": ["staging"]})");
  auto first_try = p->Submit(kRepo, "2", "staging");
  REQUIRE(first_try.ok());
  JobInfo cut = env.Finished(*p, first_try->id);
  INFO(JobToJson(cut).dump());
  REQUIRE(cut.result["verdict"] == "PASS");
  const size_t vsas = env.attestations->List(kRepo, "2", attest::kSlsaVsaV1)->size();
  REQUIRE(vsas == 1);
  REQUIRE(env.reg.DeleteAlias(kRepo, "staging").ok());
  cut.id = "job-cut";
  cut.state = JobState::kRunning;
  cut.result.erase("alias");
  REQUIRE(env.meta->Put("jobs", std::string("promotion") + '\0' + "job-cut", core::DumpJson(JobToJson(cut))).ok());
  p.reset();
  p = env.Start(env.Opts());
  JobInfo moved = env.Finished(*p, "job-cut");
  INFO(JobToJson(moved).dump());
  CHECK(moved.state == JobState::kCompleted);
  CHECK(env.reg.GetAlias(kRepo, "staging")->version == "2");
  CHECK(env.reg.AliasHistory(kRepo, "staging", 1)->at(0).vsa->ToString() == cut.result["vsa"].get<std::string>());
  CHECK(env.reg.AliasHistory(kRepo, "staging", 1)->at(0).job_id == "job-cut");
  CHECK(env.attestations->List(kRepo, "2", attest::kSlsaVsaV1)->size() == vsas);
  (void)v2;

  // A damaged record stops Start rather than being skipped.
  p.reset();
  REQUIRE(env.meta->Put("jobs", std::string("promotion") + '\0' + "job-bad", "{not json").ok());
  CHECK(Promotions::Start(env.Opts()).status().code() == core::Code::kDataLoss);
}

TEST_CASE("a promotion runs the evaluation its policy names and fails a regression against the current holder",
          "[registry][promotions]") {
  Env env;
  env.Push("1", "unused");  // keeps version names apart from the data repository
  REQUIRE(fixtures::PushModel(env.reg, *env.blobs, "health/data", "v1",
                              {{"eval.safetensors", Fixture("classification.safetensors")}})
              .version == "v1");
  VersionInfo good = fixtures::PushModel(env.reg, *env.blobs, kRepo, "good", {{"model.pt", Fixture("classifier.pt")}});
  VersionInfo worse =
      fixtures::PushModel(env.reg, *env.blobs, kRepo, "worse", {{"model.pt", Fixture("classifier_worse.pt")}});
  std::string spec = R"({"model": "model.pt", "dataset": {"ref": "health/data:v1", "path": "eval.safetensors"},
                         "metrics": ["accuracy"]})";
  core::Digest spec_digest = core::Sha256::Of(spec);
  REQUIRE(env.blobs->Put(spec_digest, spec).ok());
  env.Policy(R"({"name": "quality", "repositories": ["health/*"], "stages": ["production"],
                 "evaluation": {"spec_digest": ")" + spec_digest.ToString() + R"(",
                                "thresholds": {"accuracy": {"min": 0.5}},
                                "max_regression_vs_current": {"accuracy": 0.0}}})");

  EvaluationsOptions eo;
  eo.registry = &env.reg;
  eo.blobs = env.blobs.get();
  eo.meta = env.meta.get();
  eo.scratch_dir = env.tmp.Sub("scratch");
  eo.worker_executable = kWorker;
  auto evaluations = Evaluations::Start(std::move(eo));
  REQUIRE(evaluations.ok());
  auto p = env.Start(env.Opts(evaluations->get()));

  // The first promotion runs the missing evaluation itself and passes.
  auto first = p->Submit(kRepo, "good", "production");
  REQUIRE(first.ok());
  JobInfo done = env.Finished(*p, first->id);
  INFO(JobToJson(done).dump());
  REQUIRE(done.state == JobState::kCompleted);
  CHECK(done.result["verdict"] == "PASS");
  CHECK((*evaluations)->Reports(kRepo, "good")->size() == 1);
  CHECK(env.reg.GetAlias(kRepo, "production")->version == "good");

  // The worse model regresses against it.
  auto second = p->Submit(kRepo, "worse", "production");
  REQUIRE(second.ok());
  done = env.Finished(*p, second->id);
  INFO(JobToJson(done).dump());
  REQUIRE(done.state == JobState::kCompleted);
  CHECK(done.result["verdict"] == "FAIL");
  auto rules = Env::Rules(done);
  CHECK(rules["evaluation.spec"] == true);
  CHECK(rules["evaluation.regression.accuracy"] == false);
  CHECK(env.reg.GetAlias(kRepo, "production")->version == "good");
  CHECK((*evaluations)->Reports(kRepo, "good")->size() == 1);  // not run again
  (void)good;
  (void)worse;
}

TEST_CASE("a promotion can be cancelled while queued and while it waits for its evaluation",
          "[registry][promotions]") {
  Env env;
  REQUIRE(fixtures::PushModel(env.reg, *env.blobs, "health/data", "v1",
                              {{"eval.safetensors", Fixture("classification.safetensors")}})
              .version == "v1");
  // The model never returns: its evaluation runs until cancelled.
  fixtures::PushModel(env.reg, *env.blobs, kRepo, "spins", {{"model.pt", Fixture("spinner.pt")}});
  env.Push("2", "weights");
  std::string spec = R"({"model": "model.pt", "dataset": {"ref": "health/data:v1", "path": "eval.safetensors"},
                         "metrics": ["accuracy"], "limits": {"time_s": 300}})";
  core::Digest spec_digest = core::Sha256::Of(spec);
  REQUIRE(env.blobs->Put(spec_digest, spec).ok());
  env.Policy(R"({"name": "quality", "repositories": ["health/*"], "stages": ["production"],
                 "evaluation": {"spec_digest": ")" + spec_digest.ToString() + R"(",
                                "thresholds": {"accuracy": {"min": 0.5}}}})");
  EvaluationsOptions eo;
  eo.registry = &env.reg;
  eo.blobs = env.blobs.get();
  eo.meta = env.meta.get();
  eo.scratch_dir = env.tmp.Sub("scratch");
  eo.worker_executable = kWorker;
  auto evaluations = Evaluations::Start(std::move(eo));
  REQUIRE(evaluations.ok());
  auto p = env.Start(env.Opts(evaluations->get()));

  auto running = p->Submit(kRepo, "spins", "production");
  REQUIRE(running.ok());
  auto queued = p->Submit(kRepo, "2", "production");
  REQUIRE(queued.ok());
  // The first is waiting for its evaluation once that job exists.
  for (int i = 0; i < 600 && (*evaluations)->List(10)->empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE((*evaluations)->List(10)->size() == 1);

  auto cancelled = p->Cancel(queued->id);
  REQUIRE(cancelled.ok());
  CHECK(cancelled->state == JobState::kCancelled);
  CHECK(p->Get(queued->id)->state == JobState::kCancelled);

  auto asked = p->Cancel(running->id);
  REQUIRE(asked.ok());
  CHECK(asked->cancel_requested);
  JobInfo done = env.Finished(*p, running->id);
  CHECK(done.state == JobState::kCancelled);
  CHECK(done.error["reason"] == "JOB_CANCELLED");
  (*evaluations)->WaitIdle();
  auto evaluation = (*evaluations)->List(10);
  REQUIRE(evaluation.ok());
  REQUIRE(evaluation->size() == 1);
  CHECK((*evaluation)[0].state == JobState::kCancelled);
  CHECK_FALSE(env.reg.GetAlias(kRepo, "production").ok());
  // Cancelling a finished job changes nothing; an unknown one is JOB_UNKNOWN.
  CHECK(p->Cancel(running->id)->state == JobState::kCancelled);
  CHECK(p->Cancel("job-unknown").status().reason() == "JOB_UNKNOWN");
}

TEST_CASE("the commit a provenance names is checked in the local git mirror", "[registry][promotions]") {
  Env env;
  std::string root = env.tmp.Sub("mirrors");
  std::string dir = root + "/git.example.org/health/train";
  REQUIRE(core::MakeDirs(dir, 0700).ok());
  std::string script = "cd '" + dir + "' && export GIT_CONFIG_NOSYSTEM=1 HOME='" + env.tmp.path() +
                       "' && git -c init.defaultBranch=main init -q && git -c user.name=t -c user.email=t@example.org "
                       "commit -q --allow-empty -m one && git rev-parse HEAD > '" + env.tmp.Sub("head") + "'";
  REQUIRE(std::system(script.c_str()) == 0);
  auto head = core::ReadFile(env.tmp.Sub("head"));
  REQUIRE(head.ok());
  std::string commit = head->substr(0, 40);
  VersionInfo known = env.Push("1", "weights one");
  VersionInfo unknown = env.Push("2", "weights two");
  env.Provenance(known, kBuilder, commit);
  env.Provenance(unknown, kBuilder, std::string(40, 'a'));
  const std::string policy = R"({"name": "code", "repositories": ["health/*"],
    "provenance": {"source_repositories": ["https://git.example.org/health/*"], "commit": {"branches": ["main"]}}})";
  auto rules = [](const Json& decision) {
    std::map<std::string, std::pair<bool, std::string>> out;
    for (const auto& r : decision["rules"]) out[r["rule"]] = {r["passed"], r["reason"]};
    return out;
  };

  PromotionsOptions o = env.Opts();
  o.sources.git_mirror_root = root;
  auto p = env.Start(std::move(o));
  auto pass = p->Test(policy, kRepo, "1", "production");
  REQUIRE(pass.ok());
  INFO(pass->dump());
  CHECK((*pass)["verdict"] == "PASS");
  CHECK(rules(*pass)["provenance.commit"].second.find("reachable from main") != std::string::npos);
  CHECK(rules(*pass)["provenance.source_repository"].first);
  auto fail = p->Test(policy, kRepo, "2", "production");
  REQUIRE(fail.ok());
  CHECK((*fail)["verdict"] == "FAIL");
  CHECK_FALSE(rules(*fail)["provenance.commit"].first);

  // Without a mirror the commit cannot be vouched for.
  p.reset();
  auto without = env.Start(env.Opts());
  auto unmirrored = without->Test(policy, kRepo, "1", "production");
  REQUIRE(unmirrored.ok());
  CHECK((*unmirrored)["verdict"] == "FAIL");
  CHECK_FALSE(rules(*unmirrored)["provenance.commit"].first);
}

}  // namespace
}  // namespace sigil::registry
