#include "registry/evaluations.h"
#include "registry/access.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/clock.h"
#include "core/fs.h"
#include "core/json.h"
#include "tests/registry/model_fixture.h"
#include "tests/support/temp_dir.h"

namespace sigil::registry {
namespace {

using core::Json;

const std::string kWorker = std::string(SIGIL_BINARY_DIR) + "/validator/sigil-validator";
const std::string kFixtures = SIGIL_VALIDATOR_FIXTURES;

// A safetensors file of F32 tensors.
std::string Safetensors(const std::vector<std::pair<std::string, std::vector<float>>>& tensors) {
  Json header = Json::object();
  std::string data;
  for (const auto& [name, values] : tensors) {
    size_t begin = data.size();
    data.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
    header[name] = {{"dtype", "F32"}, {"shape", {values.size()}}, {"data_offsets", {begin, data.size()}}};
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text.push_back(' ');
  uint64_t n = text.size();
  return std::string(reinterpret_cast<const char*>(&n), 8) + text + data;
}

std::string Fixture(const std::string& name) {
  auto bytes = core::ReadFile(kFixtures + "/" + name);
  REQUIRE(bytes.ok());
  return *bytes;
}

struct Env {
  testing::TempDir tmp;
  std::unique_ptr<storage::BlobStore> blobs = storage::NewMemoryBlobStore();
  std::unique_ptr<storage::MetaStore> meta = storage::NewMemoryMetaStore();
  Registry reg{RegistryOpts()};

  RegistryOptions RegistryOpts() {
    RegistryOptions o;
    o.blobs = blobs.get();
    o.meta = meta.get();
    o.gc_grace_micros = 0;
    return o;
  }
  EvaluationsOptions Opts() {
    EvaluationsOptions o;
    o.registry = &reg;
    o.blobs = blobs.get();
    o.meta = meta.get();
    o.scratch_dir = tmp.Sub("scratch");
    o.worker_executable = kWorker;
    o.stats.backend = validator::Backend::kCpu;
    return o;
  }
  std::unique_ptr<Evaluations> Start(EvaluationsOptions o) {
    auto e = Evaluations::Start(std::move(o));
    INFO(e.status().ToString());
    REQUIRE(e.ok());
    return std::move(e).value();
  }
  VersionInfo Push(const std::string& repo, const std::string& version,
                   const std::map<std::string, std::string>& files) {
    return fixtures::PushModel(reg, *blobs, repo, version, files);
  }
  JobInfo Finished(Evaluations& e, const std::string& id) {
    e.WaitIdle();
    auto job = e.Get(id);
    REQUIRE(job.ok());
    REQUIRE(job->finished());
    return *job;
  }
};

TEST_CASE("a statistics job reads every weight file, against the parent's", "[registry][evaluations]") {
  Env env;
  env.Push("team/m", "1", {{"model.safetensors", Safetensors({{"w", {1, 2, 3, 4}}})}, {"README", "hello"}});
  env.Push("team/m", "2", {{"model.safetensors", Safetensors({{"w", {1, 2, 3, std::nanf("")}}})}});
  auto e = env.Start(env.Opts());

  auto job = e->SubmitStats("team/m", "2", "1");
  REQUIRE(job.ok());
  CHECK(job->state == JobState::kQueued);
  CHECK(job->kind == "stats");
  JobInfo done = env.Finished(*e, job->id);
  INFO(JobToJson(done).dump());
  REQUIRE(done.state == JobState::kCompleted);
  const Json& files = done.result["files"];
  REQUIRE(files.size() == 1);  // the README holds no tensors
  CHECK(files[0]["path"] == "model.safetensors");
  CHECK(files[0]["stats"]["total_nan"] == 1);
  CHECK(files[0]["stats"]["tensors"][0]["max"] == 3.0);
  CHECK(files[0]["stats"]["diffs"][0]["max_abs_diff"] == 0.0);  // over values finite on both sides
  CHECK(done.result["parent"]["version"] == "1");

  CHECK(e->SubmitStats("team/m", "2", "nope").status().code() == core::Code::kNotFound);
  CHECK(e->SubmitStats("team/m", "9", "").status().code() == core::Code::kNotFound);
}

TEST_CASE("a bad spec is refused and nothing is stored", "[registry][evaluations]") {
  Env env;
  env.Push("team/m", "1", {{"model.pt", "x"}});
  auto e = env.Start(env.Opts());
  std::string spec = R"({"model": "model.pt", "metrics": ["accuracy"], "batch_size": 0})";
  auto job = e->SubmitEvaluation("team/m", "1", spec);
  CHECK(job.status().reason() == "BAD_EVAL_SPEC");
  CHECK(env.blobs->Stat(core::Sha256::Of(spec)).status().code() == core::Code::kNotFound);
  CHECK(e->List(10)->empty());
  CHECK(e->SubmitEvaluationByDigest("team/m", "1", core::Sha256::Of("absent")).status().reason() == "SPEC_UNKNOWN");
  CHECK(e->Get("job-000").status().reason() == "JOB_UNKNOWN");
}

TEST_CASE("an evaluation runs the worker over blobs copied for it, and reports", "[registry][evaluations]") {
  Env env;
  env.Push("data/eval", "v1", {{"eval.safetensors", Fixture("classification.safetensors")}});
  env.Push("team/m", "1", {{"model.pt", Fixture("classifier.pt")}});
  env.Push("team/m", "2", {{"model.pt", Fixture("corrupt.pt")}});
  auto e = env.Start(env.Opts());
  std::string spec = R"({"model": "model.pt", "dataset": {"ref": "data/eval:v1", "path": "eval.safetensors"},
                         "metrics": ["accuracy"], "thresholds": {"accuracy": {"min": 0.99}}})";
  auto job = e->SubmitEvaluation("team/m", "1", spec);
  REQUIRE(job.ok());
  JobInfo done = env.Finished(*e, job->id);
  INFO(JobToJson(done).dump());
  REQUIRE(done.state == JobState::kCompleted);
  CHECK(done.result["passed"] == false);  // accuracy is below 0.99
  double accuracy = done.result["report"]["metrics"]["accuracy"];
  CHECK(accuracy > 0.5);
  CHECK(accuracy < 0.99);
  CHECK(done.attempts == 1);
  auto reports = e->Reports("team/m", "1");
  REQUIRE(reports.ok());
  REQUIRE(reports->size() == 1);
  CHECK((*reports)[0].report_digest.ToString() == done.result["report_digest"]);
  CHECK_FALSE((*reports)[0].attestation_digest.has_value());  // no server key here
  // Garbage collection keeps the spec the report names, and the report.
  REQUIRE(env.reg.CollectGarbage().ok());
  CHECK(env.blobs->Stat(core::Sha256::Of(spec)).ok());
  CHECK(env.blobs->Stat((*reports)[0].report_digest).ok());
  // The copies made for the worker are gone.
  CHECK_FALSE(core::PathExists(core::JoinPath(env.tmp.Sub("scratch"), job->id)));

  auto corrupt = e->SubmitEvaluation("team/m", "2", spec);
  REQUIRE(corrupt.ok());
  done = env.Finished(*e, corrupt->id);
  REQUIRE(done.state == JobState::kCompleted);
  CHECK(done.result["passed"] == false);
  CHECK(done.result["report"]["run"]["ok"] == false);

  SECTION("a missing dataset or model fails the job with the reason") {
    std::string nodata = R"({"model": "model.pt", "dataset": {"ref": "data/eval:v1", "path": "other.safetensors"},
                             "metrics": ["accuracy"]})";
    auto j = e->SubmitEvaluation("team/m", "1", nodata);
    REQUIRE(j.ok());
    done = env.Finished(*e, j->id);
    CHECK(done.state == JobState::kFailed);
    CHECK(done.error["reason"] == "DATASET_UNKNOWN");
    std::string nomodel = R"({"model": "other.pt", "dataset": {"ref": "data/eval:v1", "path": "eval.safetensors"},
                              "metrics": ["accuracy"]})";
    j = e->SubmitEvaluation("team/m", "1", nomodel);
    REQUIRE(j.ok());
    done = env.Finished(*e, j->id);
    CHECK(done.state == JobState::kFailed);
    CHECK(done.error["reason"] == "MODEL_UNKNOWN");
  }
}

TEST_CASE("jobs left running by a stopped server run again, until they have been tried enough",
          "[registry][evaluations]") {
  Env env;
  VersionInfo v = env.Push("team/m", "1", {{"model.safetensors", Safetensors({{"w", {1, 2}}})}});
  auto record = [&](const std::string& id, const std::string& state, int attempts) {
    JobInfo job;
    job.id = id;
    job.kind = "stats";
    job.repo = "team/m";
    job.version = "1";
    job.digest = v.digest;
    job.state = state == "running" ? JobState::kRunning : JobState::kQueued;
    job.attempts = attempts;
    job.created_micros = 1;
    job.request = Json::object();
    REQUIRE(env.meta->Put("jobs", std::string("job\0", 4) + id, JobToJson(job).dump()).ok());
  };
  record("job-a", "running", 1);
  record("job-b", "running", 3);
  record("job-c", "queued", 0);
  auto e = env.Start(env.Opts());
  e->WaitIdle();
  auto a = e->Get("job-a");
  CHECK(a->state == JobState::kCompleted);
  CHECK(a->attempts == 2);
  auto b = e->Get("job-b");
  CHECK(b->state == JobState::kFailed);
  CHECK(b->error["reason"] == "JOB_INTERRUPTED");
  CHECK(e->Get("job-c")->state == JobState::kCompleted);
  auto list = e->List(10);
  REQUIRE(list.ok());
  CHECK(list->size() == 3);
  // Cancelling a finished job changes nothing.
  CHECK(e->Cancel("job-a")->state == JobState::kCompleted);
}

TEST_CASE("quarantined versions are not run, and a server without a worker says so", "[registry][evaluations]") {
  Env env;
  env.Push("team/m", "1", {{"model.pt", "x"}});
  REQUIRE(env.reg.SetVersionState("team/m", "1", VersionState::kQuarantined).ok());
  EvaluationsOptions o = env.Opts();
  o.worker_executable.clear();
  auto e = env.Start(o);
  std::string spec = R"({"model": "model.pt", "dataset": {"path": "d.safetensors"}, "metrics": ["accuracy"]})";
  CHECK(e->SubmitEvaluation("team/m", "1", spec).status().reason() == "QUARANTINED");
  CHECK(e->SubmitStats("team/m", "1", "").status().reason() == "QUARANTINED");

  env.Push("team/m", "2", {{"model.pt", "x"}});
  auto job = e->SubmitEvaluation("team/m", "2", spec);
  REQUIRE(job.ok());
  JobInfo done = env.Finished(*e, job->id);
  CHECK(done.state == JobState::kFailed);
  CHECK(done.error["reason"] == "VALIDATOR_UNAVAILABLE");
}

}  // namespace
}  // namespace sigil::registry

namespace sigil::registry {
namespace {

TEST_CASE("a scoped token may only evaluate against what it may pull", "[registry][evaluations]") {
  Env env;
  env.Push("data/eval", "v1", {{"eval.safetensors", Fixture("classification.safetensors")}});
  env.Push("team/data", "v1", {{"eval.safetensors", Fixture("classification.safetensors")}});
  env.Push("team/m", "1", {{"model.pt", Fixture("classifier.pt")}});
  auto e = env.Start(env.Opts());
  Principal pusher;
  pusher.anonymous = false;
  pusher.name = "ci";
  pusher.role = Role::kPusher;
  pusher.repos = {"team/*"};
  PrincipalScope scope(pusher);
  auto spec = [](const std::string& dataset) {
    return R"({"model": "model.pt", "dataset": )" + dataset + R"(, "metrics": ["accuracy"]})";
  };
  auto other = e->SubmitEvaluation("team/m", "1", spec(R"({"ref": "data/eval:v1", "path": "eval.safetensors"})"));
  CHECK(other.status().reason() == "REPOSITORY_OUT_OF_SCOPE");
  std::string digest = core::Sha256::Of(Fixture("classification.safetensors")).ToString();
  auto by_digest = e->SubmitEvaluation("team/m", "1", spec(R"({"digest": ")" + digest + R"("})"));
  CHECK(by_digest.status().reason() == "REPOSITORY_OUT_OF_SCOPE");
  CHECK(e->SubmitStats("team/m", "1", "data/eval:v1").status().reason() == "REPOSITORY_OUT_OF_SCOPE");
  auto own = e->SubmitEvaluation("team/m", "1", spec(R"({"ref": "team/data:v1", "path": "eval.safetensors"})"));
  CHECK(own.ok());
  e->WaitIdle();
}

}  // namespace
}  // namespace sigil::registry
