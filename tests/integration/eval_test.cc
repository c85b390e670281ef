// Evaluation before promotion, end to end: a real sigild runs pushed
// TorchScript models in its sandboxed sigil-validator worker, and the real
// sigil client asks for evaluations and weight statistics. The metrics are
// checked against values this test computes itself from the fixture files.
#include <cmath>
#include <cstring>
#include <set>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cli/http_client.h"
#include "core/fs.h"
#include "tests/integration/process.h"
#include "tests/support/temp_dir.h"

namespace sigil::testing {
namespace {

using nlohmann::json;

const std::string kFixtures = SIGIL_VALIDATOR_FIXTURES;

struct Env {
  TempDir tmp;
  Sigild server{tmp.Sub("data")};
  std::map<std::string, std::string> env{{"XDG_STATE_HOME", tmp.Sub("state")}};
  cli::HttpClient http{"", TokenOptions()};

  Env() : http(StartServer(server), TokenOptions()) {}

  static std::string StartServer(Sigild& s) {
    REQUIRE(s.Start());
    return s.url();
  }

  RunResult Sigil(std::vector<std::string> args) {
    args.insert(args.begin(), {"--server", server.url()});
    RunResult r = RunSigil(args, env, tmp.path());
    UNSCOPED_INFO("sigil " << args[2] << " exit " << r.exit_code << "\nstdout: " << r.out << "\nstderr: " << r.err);
    return r;
  }

  // A directory holding the given files (name -> source path or bytes).
  std::string Dir(const std::string& name, const std::map<std::string, std::string>& copies,
                  const std::map<std::string, std::string>& contents = {}) {
    std::string dir = tmp.Sub(name);
    REQUIRE(core::MakeDirs(dir).ok());
    for (const auto& [file, source] : copies) WriteTextFile(dir + "/" + file, ReadWholeFile(source));
    for (const auto& [file, bytes] : contents) WriteTextFile(dir + "/" + file, bytes);
    return dir;
  }

  void Push(const std::string& dir, const std::string& ref) {
    RunResult r = Sigil({"push", dir, ref});
    REQUIRE(r.exit_code == 0);
  }

  json Get(const std::string& path) {
    auto r = http.Perform(cli::HttpRequest{.path = path});
    REQUIRE(r.ok());
    INFO(path << " -> " << r->status << " " << r->body);
    REQUIRE(r->status == 200);
    return json::parse(r->body);
  }

  json Post(const std::string& path, const std::string& body, long expect = 202) {
    auto r = http.Perform(cli::HttpRequest{.method = "POST", .path = path, .body = body});
    REQUIRE(r.ok());
    INFO(path << " -> " << r->status << " " << r->body);
    REQUIRE(r->status == expect);
    return json::parse(r->body);
  }

  json WaitJob(const std::string& id, const std::set<std::string>& states,
               std::chrono::seconds limit = std::chrono::seconds(60)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    json job;
    while (std::chrono::steady_clock::now() < deadline) {
      job = Get("/api/v1/jobs/" + id)["job"];
      if (states.count(job["state"].get<std::string>())) return job;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL("job " << id << " never reached the state wanted; last: " << job.dump());
    return job;
  }
};

// A safetensors file of the given F32 tensors, written as the format says.
std::string Safetensors(const std::vector<std::pair<std::string, std::vector<float>>>& tensors) {
  json header = json::object();
  std::string data;
  for (const auto& [name, values] : tensors) {
    size_t begin = data.size();
    data.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
    header[name] = {{"dtype", "F32"}, {"shape", {values.size()}}, {"data_offsets", {begin, data.size()}}};
  }
  std::string text = header.dump();
  uint64_t n = text.size();
  std::string out(reinterpret_cast<const char*>(&n), 8);
  return out + text + data;
}

// The fixture classifier (tests/validator/fixtures/make_fixtures.py:
// CLASSIFIER_W, CLASSIFIER_B) scored on classification.safetensors here,
// in double, without LibTorch.
struct Expected {
  double accuracy = 0;
  double top2 = 0;
  double cross_entropy = 0;
};

Expected ScoreClassifierFixture() {
  const double w[3][4] = {{1.0, 0.0, -1.0, 0.5}, {0.0, 1.0, 0.5, -1.0}, {-0.5, 0.25, 1.0, 1.0}};
  const double b[3] = {0.125, -0.25, 0.0};
  std::string file = ReadWholeFile(kFixtures + "/classification.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, file.data(), 8);
  json header = json::parse(file.substr(8, n));
  const char* data = file.data() + 8 + n;
  auto at = [&](const char* name) { return data + header[name]["data_offsets"][0].get<size_t>(); };
  size_t rows = header["targets"]["shape"][0].get<size_t>();
  REQUIRE(header["inputs"]["dtype"] == "F32");
  REQUIRE(header["targets"]["dtype"] == "I64");
  Expected e;
  for (size_t i = 0; i < rows; ++i) {
    float x[4];
    std::memcpy(x, at("inputs") + i * 16, 16);
    int64_t target = 0;
    std::memcpy(&target, at("targets") + i * 8, 8);
    double logit[3];
    for (int c = 0; c < 3; ++c) {
      logit[c] = b[c];
      for (int k = 0; k < 4; ++k) logit[c] += w[c][k] * x[k];
    }
    int rank = 0;  // classes scoring above the target
    for (int c = 0; c < 3; ++c) rank += logit[c] > logit[target];
    e.accuracy += rank == 0;
    e.top2 += rank < 2;
    double m = std::max({logit[0], logit[1], logit[2]});
    double lse = m + std::log(std::exp(logit[0] - m) + std::exp(logit[1] - m) + std::exp(logit[2] - m));
    e.cross_entropy += lse - logit[target];
  }
  e.accuracy /= rows;
  e.top2 /= rows;
  e.cross_entropy /= rows;
  return e;
}

constexpr char kSpec[] = R"({
  "model": "model.pt",
  "dataset": {"ref": "health/eval-data:v1", "path": "eval.safetensors"},
  "batch_size": 16,
  "metrics": ["accuracy", "top_k_accuracy", "cross_entropy"],
  "top_k": 2,
  "thresholds": {"accuracy": {"min": 0.5}, "latency_p95_ms": {"max": 60000}}
})";

constexpr char kBaselineSpec[] = R"({
  "model": "model.pt",
  "dataset": {"ref": "health/eval-data:v1", "path": "eval.safetensors"},
  "metrics": ["accuracy"],
  "baseline": {"ref": "production", "max_regression": {"accuracy": 0.02}}
})";

TEST_CASE("sigil eval runs a pushed model, checks its metrics and signs the report", "[integration][eval]") {
  Env e;
  e.Push(e.Dir("data", {{"eval.safetensors", kFixtures + "/classification.safetensors"}}), "health/eval-data:v1");
  e.Push(e.Dir("v1", {{"model.pt", kFixtures + "/classifier.pt"}}), "health/triage:v1");
  WriteTextFile(e.tmp.Sub("spec.json"), kSpec);

  RunResult r = e.Sigil({"eval", "health/triage:v1", "--spec", e.tmp.Sub("spec.json"), "--wait"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("PASS") != std::string::npos);
  CHECK(r.out.find("LibTorch 1.13.") != std::string::npos);

  // The same through the API, with the figures.
  json listed = e.Get("/api/v1/models/health/triage/versions/v1/evaluations")["evaluations"];
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["passed"] == true);
  std::string job_id = listed[0]["job"];
  json job = e.Get("/api/v1/jobs/" + job_id)["job"];
  REQUIRE(job["state"] == "completed");
  json report = job["result"]["report"];
  Expected want = ScoreClassifierFixture();
  CHECK(report["metrics"]["accuracy"].get<double>() == Approx(want.accuracy).epsilon(1e-9));
  CHECK(report["metrics"]["top_k_accuracy"].get<double>() == Approx(want.top2).epsilon(1e-9));
  CHECK(report["metrics"]["cross_entropy"].get<double>() == Approx(want.cross_entropy).epsilon(1e-5));
  CHECK(want.accuracy > 0.5);
  CHECK(want.accuracy < 1.0);
  CHECK(report["metrics"]["throughput"].get<double>() > 0);
  CHECK(report["run"]["device"].get<std::string>().rfind("cpu", 0) == 0);
  CHECK(report["run"]["deterministic"] == true);
  // The classifier's own weights (inside its TorchScript archive) were read.
  REQUIRE(report["weights"].size() == 1);
  CHECK(report["weights"][0]["tensors"] == 2);
  CHECK(report["weights"][0]["total_nan"] == 0);

  // The report is a signed, logged attestation of the version.
  json atts = e.Get("/api/v1/models/health/triage/versions/v1/attestations")["attestations"];
  bool found = false;
  for (const json& a : atts) {
    if (a["predicate_type"] != "https://sigil.dev/attestations/evaluation/v1") continue;
    found = true;
    CHECK(a["status"] == "verified");
    CHECK(a["server_issued"] == true);
    CHECK(a["log_index"] == job["result"]["attestation"]["log_index"]);
  }
  CHECK(found);

  SECTION("a regression against the production baseline fails with the numbers") {
    e.Push(e.Dir("v2", {{"model.pt", kFixtures + "/classifier_worse.pt"}}), "health/triage:v2");
    REQUIRE(e.Sigil({"alias", "set", "health/triage:production", "v1"}).exit_code == 0);
    WriteTextFile(e.tmp.Sub("baseline.json"), kBaselineSpec);
    RunResult b = e.Sigil({"eval", "health/triage:v2", "--spec", e.tmp.Sub("baseline.json"), "--wait", "--json"});
    CHECK(b.exit_code == 1);
    json bj = json::parse(b.out)["job"]["result"]["report"];
    CHECK(bj["passed"] == false);
    CHECK(bj["baseline"]["version"] == "v1");
    CHECK(bj["baseline"]["metrics"]["accuracy"].get<double>() == Approx(want.accuracy).epsilon(1e-9));
    bool regression = false;
    for (const json& c : bj["checks"]) {
      if (c["kind"] == "baseline") {
        regression = true;
        CHECK(c["passed"] == false);
        CHECK(c["expected"].get<double>() == Approx(want.accuracy).epsilon(1e-9));
        CHECK(c["value"].get<double>() < want.accuracy - 0.02);
      }
    }
    CHECK(regression);
    // The table names the check and both figures.
    RunResult t = e.Sigil({"eval", "health/triage:v2", "--spec", e.tmp.Sub("baseline.json"), "--wait"});
    CHECK(t.exit_code == 1);
    CHECK(t.out.find("FAIL") != std::string::npos);
    CHECK(t.out.find("against the baseline's") != std::string::npos);
  }

  SECTION("a NaN-poisoned checkpoint is caught by the statistics") {
    std::vector<float> poisoned = {0.5f, -1.0f, std::nanf(""), 2.0f};
    std::vector<float> clean = {0.5f, -1.0f, 0.25f, 2.0f};
    std::string bad = Safetensors({{"layer.weight", poisoned}, {"layer.bias", {0.0f, 1.0f}}});
    e.Push(e.Dir("v3", {{"model.pt", kFixtures + "/classifier.pt"}}, {{"weights.safetensors", bad}}),
           "health/triage:v3");
    RunResult s = e.Sigil({"stats", "health/triage:v3"});
    CHECK(s.exit_code == 1);
    CHECK(s.out.find("weights.safetensors") != std::string::npos);
    CHECK(s.out.find("1 NaN") != std::string::npos);

    RunResult ev = e.Sigil({"eval", "health/triage:v3", "--spec", e.tmp.Sub("spec.json"), "--wait"});
    CHECK(ev.exit_code == 1);
    CHECK(ev.out.find("1 NaN and 0 Inf weights") != std::string::npos);

    // Offline, on local files, with a parent.
    WriteTextFile(e.tmp.Sub("bad.safetensors"), bad);
    WriteTextFile(e.tmp.Sub("good.safetensors"),
                  Safetensors({{"layer.weight", clean}, {"layer.bias", {0.0f, 1.0f}}}));
    RunResult local = e.Sigil({"stats", e.tmp.Sub("bad.safetensors"), "--json"});
    CHECK(local.exit_code == 1);
    json lj = json::parse(local.out);
    CHECK(lj["files"][0]["stats"]["total_nan"] == 1);
    RunResult good = e.Sigil({"stats", e.tmp.Sub("good.safetensors"), "--parent", e.tmp.Sub("good.safetensors")});
    CHECK(good.exit_code == 0);
    CHECK(good.out.find("COSINE") != std::string::npos);
  }

  SECTION("a model that throws is a failed evaluation with its reason") {
    e.Push(e.Dir("v4", {{"model.pt", kFixtures + "/thrower.pt"}}), "health/triage:v4");
    RunResult t = e.Sigil({"eval", "health/triage:v4", "--spec", e.tmp.Sub("spec.json"), "--wait"});
    CHECK(t.exit_code == 1);
    CHECK(t.out.find("boom") != std::string::npos);
    // The server is still there.
    CHECK(e.Get("/healthz")["status"] == "ok");
  }

  SECTION("a spec that does not parse is refused before anything runs") {
    WriteTextFile(e.tmp.Sub("bad.json"), R"({"model": "model.pt", "metrics": ["accurracy"]})");
    RunResult t = e.Sigil({"eval", "health/triage:v1", "--spec", e.tmp.Sub("bad.json"), "--wait"});
    CHECK(t.exit_code == 1);
    CHECK(t.err.find("BAD_EVAL_SPEC") != std::string::npos);
    json err = e.Post("/api/v1/models/health/triage/versions/v1/evaluations", "{\"model\": 3}", 400);
    CHECK(err["error"]["code"] == "BAD_EVAL_SPEC");
    err = e.Post("/api/v1/models/health/triage/versions/v1/evaluations", "not json", 400);
    CHECK(err["error"]["code"] == "BAD_EVAL_SPEC");
    err = e.Post("/api/v1/models/health/triage/versions/v9/evaluations", kSpec, 404);
    CHECK(err["error"]["code"] == "VERSION_UNKNOWN");
    err = e.Post("/api/v1/models/health/triage/versions/v1/stats", "{\"parent\": 1}", 400);
    CHECK(err["error"]["code"] == "PARAMETER_INVALID");
    auto missing = e.http.Perform(cli::HttpRequest{.path = "/api/v1/jobs/job-0"});
    REQUIRE(missing.ok());
    CHECK(missing->status == 404);
    CHECK(json::parse(missing->body)["error"]["code"] == "JOB_UNKNOWN");
    auto wrong = e.http.Perform(cli::HttpRequest{.method = "DELETE", .path = "/api/v1/jobs/" + job_id});
    REQUIRE(wrong.ok());
    CHECK(wrong->status == 405);
  }
}

TEST_CASE("evaluation jobs survive kill -9 of the server and can be cancelled", "[integration][eval]") {
  Env e;
  e.Push(e.Dir("data", {{"eval.safetensors", kFixtures + "/classification.safetensors"}}), "health/eval-data:v1");
  e.Push(e.Dir("v1", {{"model.pt", kFixtures + "/spinner.pt"}}), "health/spin:v1");
  std::string spec = R"({"model": "model.pt",
    "dataset": {"ref": "health/eval-data:v1", "path": "eval.safetensors"},
    "metrics": ["accuracy"], "limits": {"time_s": 120}})";
  json job = e.Post("/api/v1/models/health/spin/versions/v1/evaluations", spec)["job"];
  std::string id = job["id"];
  CHECK(job["state"] == "queued");
  e.WaitJob(id, {"running"});
  // Give the worker time to start the model.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));

  e.server.Kill9();
  bool restarted = e.server.Start();
  INFO(e.server.log());
  REQUIRE(restarted);
  json again = e.WaitJob(id, {"running"});
  CHECK(again["attempts"] == 2);

  json cancelled = e.Post("/api/v1/jobs/" + id + "/cancel", "");
  CHECK(cancelled["job"]["cancel_requested"] == true);
  json done = e.WaitJob(id, {"cancelled", "completed", "failed"}, std::chrono::seconds(20));
  CHECK(done["state"] == "cancelled");
  CHECK(e.Get("/api/v1/jobs")["jobs"].size() == 1);

  SECTION("a model past its time limit fails with the reason, and a queued job cancels at once") {
    std::string quick = R"({"model": "model.pt",
      "dataset": {"ref": "health/eval-data:v1", "path": "eval.safetensors"},
      "metrics": ["accuracy"], "limits": {"time_s": 2}})";
    std::string first = e.Post("/api/v1/models/health/spin/versions/v1/evaluations", quick)["job"]["id"];
    // One job runs at a time (--eval-jobs 1): the second waits in the queue.
    std::string second = e.Post("/api/v1/models/health/spin/versions/v1/evaluations", quick)["job"]["id"];
    json c = e.Post("/api/v1/jobs/" + second + "/cancel", "")["job"];
    CHECK(c["state"] == "cancelled");
    json f = e.WaitJob(first, {"completed", "failed"}, std::chrono::seconds(30));
    REQUIRE(f["state"] == "completed");
    CHECK(f["result"]["passed"] == false);
    std::string detail = f["result"]["report"]["checks"][0]["detail"];
    CHECK(detail.find("time limit") != std::string::npos);
  }
}

}  // namespace
}  // namespace sigil::testing
