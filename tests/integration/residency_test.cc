// Residency end to end: a sigild that knows its site and region, policies put
// with `sigil policy`, a push refused where the repository may not be
// stored, pulls refused to tokens of other sites (with the rule named) and
// served to tokens of allowed ones, and every refusal in the audit log.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cli/http_client.h"
#include "tests/integration/process.h"
#include "tests/support/temp_dir.h"

namespace sigil::testing {
namespace {

using cli::HttpClient;
using cli::HttpRequest;
using nlohmann::json;

// Stored only in the EU: this server (us-east-1) may not hold it.
const char* kEuOnly = R"({
  "name": "eu-only",
  "repositories": ["health/eu/**"],
  "residency": {"store": ["eu-*"], "classification": "restricted"}
})";
// Stored anywhere, pulled only to EU sites.
const char* kEuPull = R"({
  "name": "eu-pull",
  "repositories": ["health/shared/**"],
  "residency": {"pull": ["eu-*"]}
})";

struct Env {
  TempDir tmp;
  Sigild server{tmp.Sub("data"), {"--rate-limit", "0", "--site", "us-east-1", "--region", "us-east"}};
  std::map<std::string, std::string> env{{"XDG_STATE_HOME", tmp.Sub("state")}};

  Env() { REQUIRE(server.Start()); }

  RunResult Sigil(std::vector<std::string> args, std::map<std::string, std::string> extra = {}) {
    args.insert(args.begin(), {"--server", server.url(), "--retry-time", "10"});
    std::map<std::string, std::string> e = env;
    for (auto& [k, v] : extra) e[k] = v;
    return RunSigil(args, e, tmp.path());
  }
  // A token of the given site, made with `sigil token create`.
  std::string Token(const std::string& name, const std::string& site) {
    RunResult r = Sigil({"token", "create", "--name", name, "--role", "reader", "--repos", "**", "--site", site});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    std::string token = r.out.substr(0, r.out.find('\n'));
    REQUIRE(token.rfind("sgl_", 0) == 0);
    return token;
  }
};

TEST_CASE("residency: pushes and pulls refused by site, named and audited", "[integration][residency]") {
  Env e;
  WriteTextFile(e.tmp.Sub("eu-only.json"), kEuOnly);
  WriteTextFile(e.tmp.Sub("eu-pull.json"), kEuPull);
  WriteRandomFile(e.tmp.Sub("model") + "/weights.bin", 4096, 7);
  WriteTextFile(e.tmp.Sub("model") + "/config.json", R"({"layers": 2})");

  // Policies go in with the CLI, in versions.
  RunResult put = e.Sigil({"policy", "put", e.tmp.Sub("eu-only.json")});
  INFO(put.err);
  REQUIRE(put.exit_code == 0);
  CHECK(put.out.rfind("stored policy eu-only version 1 (sha256:", 0) == 0);
  REQUIRE(e.Sigil({"policy", "put", e.tmp.Sub("eu-pull.json")}).exit_code == 0);
  RunResult again = e.Sigil({"policy", "put", e.tmp.Sub("eu-pull.json")});
  CHECK(again.out == "policy eu-pull unchanged (version 1)\n");
  RunResult ls = e.Sigil({"policy", "ls"});
  CHECK(ls.out.find("eu-only  1") != std::string::npos);
  CHECK(ls.out.find("eu-pull  1") != std::string::npos);
  RunResult got = e.Sigil({"policy", "get", "eu-pull"});
  CHECK(got.exit_code == 0);
  CHECK(got.out == std::string(kEuPull) + "\n");
  RunResult v1 = e.Sigil({"policy", "get", "eu-pull", "--version", "1", "--json"});
  CHECK(json::parse(v1.out)["document"] == kEuPull);
  RunResult bad_version = e.Sigil({"policy", "get", "eu-pull", "--version", "x"});
  CHECK(bad_version.exit_code == 2);
  WriteTextFile(e.tmp.Sub("bad.json"), R"({"name": "bad", "repositories": ["a/*"], "residency": {"pull": "eu"}})");
  RunResult bad = e.Sigil({"policy", "put", e.tmp.Sub("bad.json")});
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("POLICY_INVALID") != std::string::npos);
  CHECK(bad.err.find("residency.pull") != std::string::npos);

  // A push of a repository that may not be stored here is refused, the rule named.
  RunResult refused_push = e.Sigil({"push", e.tmp.Sub("model"), "health/eu/xray:1"});
  CHECK(refused_push.exit_code == 1);
  CHECK(refused_push.err.find("RESIDENCY_DENIED") != std::string::npos);
  CHECK(refused_push.err.find("policy eu-only: residency.store") != std::string::npos);
  CHECK(refused_push.err.find("us-east-1") != std::string::npos);

  // One that may be stored anywhere goes in.
  RunResult pushed = e.Sigil({"push", e.tmp.Sub("model"), "health/shared/xray:1"});
  INFO(pushed.err);
  REQUIRE(pushed.exit_code == 0);

  // A dry run of a policy against the version: the rule table, exit 1 unless PASS.
  WriteTextFile(e.tmp.Sub("open.json"), R"({"name": "open", "repositories": ["health/**"], "stages": ["production"]})");
  WriteTextFile(e.tmp.Sub("signed.json"),
                R"({"name": "signed", "repositories": ["health/**"], "signatures": {"keys": ["nobody"], "threshold": 1}})");
  RunResult pass = e.Sigil({"policy", "test", e.tmp.Sub("open.json"), "health/shared/xray:1", "--stage", "production"});
  INFO(pass.err);
  CHECK(pass.exit_code == 0);
  CHECK(pass.out.find("policy open (") == 0);
  CHECK(pass.out.find("): PASS\n") != std::string::npos);
  CHECK(pass.out.find("scope.stage") != std::string::npos);
  RunResult fail = e.Sigil({"policy", "test", e.tmp.Sub("signed.json"), "health/shared/xray:1", "--stage", "production"});
  INFO("err: " << fail.err << " out: " << fail.out);
  CHECK(fail.exit_code == 1);
  CHECK(fail.out.find("): FAIL\n") != std::string::npos);
  CHECK(fail.out.find("signatures") != std::string::npos);
  // Nothing was stored by the dry runs.
  CHECK(e.Sigil({"policy", "get", "signed"}).exit_code == 3);

  std::string us = e.Token("us-reader", "us-east-1");
  std::string eu = e.Token("eu-reader", "eu-paris");

  // A token of another site is refused, with the rule.
  RunResult refused_pull = e.Sigil({"pull", "health/shared/xray:1", e.tmp.Sub("us-out")}, {{"SIGIL_TOKEN", us}});
  CHECK(refused_pull.exit_code == 1);
  CHECK(refused_pull.err.find("RESIDENCY_DENIED") != std::string::npos);
  CHECK(refused_pull.err.find("policy eu-pull: residency.pull") != std::string::npos);
  CHECK(ListFiles(e.tmp.Sub("us-out")).empty());
  // Also by blob digest.
  HttpClient us_http(e.server.url(), TokenOptions(us));
  auto blob = us_http.Perform(HttpRequest{.path = "/api/v1/blobs/" + FileDigest(e.tmp.Sub("model") + "/weights.bin")});
  REQUIRE(blob.ok());
  CHECK(blob->status == 403);
  CHECK(blob->body.find("RESIDENCY_DENIED") != std::string::npos);

  // A token of an allowed site pulls.
  RunResult pulled = e.Sigil({"pull", "health/shared/xray:1", e.tmp.Sub("eu-out")}, {{"SIGIL_TOKEN", eu}});
  INFO(pulled.err);
  REQUIRE(pulled.exit_code == 0);
  CHECK(FileDigest(e.tmp.Sub("eu-out") + "/weights.bin") == FileDigest(e.tmp.Sub("model") + "/weights.bin"));

  // Every refusal is in the audit log.
  HttpClient admin(e.server.url(), TokenOptions());
  auto audit = admin.Perform(HttpRequest{.path = "/api/v1/audit"});
  REQUIRE(audit.ok());
  REQUIRE(audit->status == 200);
  bool push_refusal = false, pull_refusal = false, blob_refusal = false;
  json entries = json::parse(audit->body)["entries"];
  for (const json& entry : entries) {
    if (entry["result"] != "refused" || entry["reason"] != "RESIDENCY_DENIED") continue;
    if (entry["action"] == "push" && entry["target"] == "health/eu/xray:1") push_refusal = true;
    if (entry["action"] == "pull" && entry["token"] == "us-reader" && entry["repository"] == "health/shared/xray") {
      pull_refusal = true;
    }
    if (entry["action"] == "pull" && entry["token"] == "us-reader" && entry["repository"] == "") blob_refusal = true;
  }
  CHECK(push_refusal);
  CHECK(pull_refusal);
  CHECK(blob_refusal);
  RunResult audit_cli = e.Sigil({"audit", "--repo", "health/shared/xray"});
  CHECK(audit_cli.out.find("RESIDENCY_DENIED") != std::string::npos);

  // Deleting the policy lifts the restriction; its versions stay readable.
  RunResult rm = e.Sigil({"policy", "rm", "eu-only"});
  CHECK(rm.exit_code == 0);
  CHECK(e.Sigil({"policy", "get", "eu-only"}).exit_code == 3);
  CHECK(e.Sigil({"policy", "get", "eu-only", "--version", "1"}).exit_code == 0);
  RunResult later = e.Sigil({"push", e.tmp.Sub("model"), "health/eu/xray:1"});
  INFO(later.err);
  CHECK(later.exit_code == 0);

  // Residency is enforced after a restart too (policies are stored).
  e.server.Stop();
  REQUIRE(e.server.Start());
  RunResult after = e.Sigil({"pull", "health/shared/xray:1", e.tmp.Sub("us-out2")}, {{"SIGIL_TOKEN", us}});
  CHECK(after.exit_code == 1);
  CHECK(after.err.find("policy eu-pull: residency.pull") != std::string::npos);
}

}  // namespace
}  // namespace sigil::testing
