// Promotions end to end: the real sigil binary stores a policy, requests
// promotions of versions to a stage and reads the alias's history from a
// real sigild.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "cli/http_client.h"
#include "tests/integration/process.h"
#include "tests/support/temp_dir.h"

namespace sigil::testing {
namespace {

using nlohmann::json;

// Production needs the server's own model signature (role "sigild") and a
// clean scan.
constexpr char kGate[] = R"({"name": "gate", "repositories": ["team/*"], "stages": ["production"],
  "signatures": {"roles": ["sigild"], "threshold": 1}, "scan": {"max_severity": "low"}})";

struct Env {
  TempDir tmp;
  Sigild server{tmp.Sub("data")};
  std::map<std::string, std::string> env{{"XDG_STATE_HOME", tmp.Sub("state")}};

  Env() { REQUIRE(server.Start()); }

  RunResult Sigil(std::vector<std::string> args) {
    args.insert(args.begin(), {"--server", server.url()});
    RunResult r = RunSigil(args, env, tmp.path());
    INFO("sigil stderr: " << r.err);
    return r;
  }
};

TEST_CASE("sigil promote moves an alias only when the policy passes, and sigil history shows each move",
          "[integration][promote]") {
  Env e;
  for (const char* v : {"1", "2"}) {
    std::string model = e.tmp.Sub(std::string("model-") + v);
    WriteTextFile(model + "/config.json", std::string("{\"v\": ") + v + "}\n");
    WriteRandomFile(model + "/weights.bin", 4096, v[0]);
    REQUIRE(e.Sigil({"push", model, std::string("team/model:") + v}).exit_code == 0);
  }
  WriteTextFile(e.tmp.Sub("gate.json"), kGate);
  REQUIRE(e.Sigil({"policy", "put", e.tmp.Sub("gate.json")}).exit_code == 0);
  cli::HttpClient http(e.server.url(), TokenOptions());
  auto signed_v1 = http.Perform(cli::HttpRequest{.method = "POST", .path = "/api/v1/models/team/model/versions/1/sign"});
  REQUIRE(signed_v1.ok());
  REQUIRE(signed_v1->status / 100 == 2);

  // Usage errors.
  CHECK(e.Sigil({"promote", "team/model:1"}).exit_code == 2);
  CHECK(e.Sigil({"history", "team/model"}).exit_code == 2);

  // Version 1 passes: the rule table, the VSA and its log index.
  RunResult pass = e.Sigil({"promote", "team/model:1", "--to", "production", "--wait"});
  INFO(pass.out);
  REQUIRE(pass.exit_code == 0);
  CHECK(pass.out.find("policy gate") != std::string::npos);
  CHECK(pass.out.find("signatures") != std::string::npos);
  CHECK(pass.out.find("promoted team/model:1 to production") != std::string::npos);
  CHECK(pass.out.find("verification summary sha256:") != std::string::npos);
  CHECK(pass.out.find("log index") != std::string::npos);

  // Version 2 is not signed: exit 1, the failed rule named, the alias stays.
  RunResult fail = e.Sigil({"promote", "team/model:2", "--to", "production", "--wait"});
  INFO(fail.out);
  CHECK(fail.exit_code == 1);
  CHECK(fail.out.find("FAIL") != std::string::npos);
  CHECK(fail.out.find("required signatures: found 0") != std::string::npos);
  CHECK(fail.err.find("PROMOTION_FAILED") != std::string::npos);
  auto alias = http.Perform(cli::HttpRequest{.path = "/api/v1/models/team/model/aliases/production"});
  REQUIRE(alias.ok());
  CHECK(json::parse(alias->body)["version"] == "1");

  // The JSON form names the job; jobs list it with the evaluations'.
  RunResult as_json = e.Sigil({"--json", "promote", "team/model:2", "--to", "production", "--wait"});
  CHECK(as_json.exit_code == 1);
  json job = json::parse(as_json.out)["job"];
  CHECK(job["kind"] == "promotion");
  CHECK(job["result"]["verdict"] == "FAIL");
  auto listed = http.Perform(cli::HttpRequest{.path = "/api/v1/jobs"});
  REQUIRE(listed.ok());
  CHECK(json::parse(listed->body)["jobs"].size() == 3);

  // An admin override, then the history: newest first, who and how.
  REQUIRE(e.Sigil({"alias", "set", "team/model:production", "2"}).exit_code == 0);
  RunResult history = e.Sigil({"history", "team/model", "--alias", "production"});
  INFO(history.out);
  REQUIRE(history.exit_code == 0);
  size_t override_at = history.out.find("override");
  size_t promotion_at = history.out.find("promotion");
  REQUIRE(override_at != std::string::npos);
  REQUIRE(promotion_at != std::string::npos);
  CHECK(override_at < promotion_at);
  CHECK(history.out.find("bootstrap") != std::string::npos);
  RunResult history_json = e.Sigil({"--json", "history", "team/model", "--alias", "production", "--limit", "1"});
  REQUIRE(history_json.exit_code == 0);
  json events = json::parse(history_json.out)["events"];
  REQUIRE(events.size() == 1);
  CHECK(events[0]["via"] == "override");
  CHECK(events[0]["previous_version"] == "1");
  RunResult never = e.Sigil({"history", "team/model", "--alias", "canary"});
  CHECK(never.exit_code == 0);
  CHECK(never.out.find("never been set") != std::string::npos);
}

TEST_CASE("a promotion interrupted by kill -9 is taken up again and finishes after the restart",
          "[integration][promote]") {
  Env e;
  const std::string fixtures = SIGIL_VALIDATOR_FIXTURES;
  // The spec travels as a file of the data version, so its blob is stored.
  const std::string spec = R"({"model": "model.pt", "dataset": {"ref": "team/data:v1", "path": "eval.safetensors"},
                               "metrics": ["accuracy"]})";
  std::string data = e.tmp.Sub("data-v1");
  WriteTextFile(data + "/eval.safetensors", ReadWholeFile(fixtures + "/classification.safetensors"));
  WriteTextFile(data + "/spec.json", spec);
  REQUIRE(e.Sigil({"push", data, "team/data:v1"}).exit_code == 0);
  std::string model = e.tmp.Sub("model-1");
  WriteTextFile(model + "/model.pt", ReadWholeFile(fixtures + "/classifier.pt"));
  REQUIRE(e.Sigil({"push", model, "team/model:1"}).exit_code == 0);
  std::string spec_digest = FileDigest(data + "/spec.json");
  WriteTextFile(e.tmp.Sub("quality.json"),
                R"({"name": "quality", "repositories": ["team/model"], "stages": ["production"],
                    "evaluation": {"spec_digest": ")" + spec_digest + R"(", "thresholds": {"accuracy": {"min": 0.5}}}})");
  REQUIRE(e.Sigil({"policy", "put", e.tmp.Sub("quality.json")}).exit_code == 0);

  // The promotion has to run the evaluation: the server dies meanwhile.
  RunResult submitted = e.Sigil({"--json", "promote", "team/model:1", "--to", "production"});
  REQUIRE(submitted.exit_code == 0);
  std::string id = json::parse(submitted.out)["job"]["id"];
  e.server.Kill9();
  REQUIRE(e.server.Start());

  cli::HttpClient http(e.server.url(), TokenOptions());
  json job;
  for (int i = 0; i < 1200; ++i) {
    auto r = http.Perform(cli::HttpRequest{.path = "/api/v1/jobs/" + id});
    REQUIRE(r.ok());
    REQUIRE(r->status == 200);
    job = json::parse(r->body)["job"];
    if (job["state"] != "queued" && job["state"] != "running") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  INFO(job.dump());
  REQUIRE(job["state"] == "completed");
  CHECK(job["result"]["verdict"] == "PASS");
  CHECK(job["attempts"].get<int>() >= 1);
  auto alias = http.Perform(cli::HttpRequest{.path = "/api/v1/models/team/model/aliases/production"});
  REQUIRE(alias.ok());
  CHECK(json::parse(alias->body)["version"] == "1");
  RunResult history = e.Sigil({"--json", "history", "team/model", "--alias", "production"});
  REQUIRE(history.exit_code == 0);
  json events = json::parse(history.out)["events"];
  REQUIRE(events.size() == 1);  // moved once, by this job
  CHECK(events[0]["job_id"] == id);
}

}  // namespace
}  // namespace sigil::testing
