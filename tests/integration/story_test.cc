// The whole story of issue 7 with two sigild processes: a training site and
// an air-gapped serving site.
//
// Training site: a CI key signs the provenance (builder, training code
// commit in the local git mirror, the evaluation dataset) and the model; the
// server scans it, evaluates it on a registered dataset, and promotes it to
// production by the operator's policy with a signed VSA. The bundle of
// `production` is exported to the serving region and imported there (its
// log key a peer log, the training site's and CI's keys trusted), and a
// serving-site token pulls it with --verify.
//
// Each failure stops the story at its step with its reason: a version
// missing its provenance, a commit not in the mirror, a rogue key, a
// regression against production, an export to a region the policy does not
// allow, a tampered bundle (nothing imported), a pull by another site's token.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/http_client.h"
#include "core/fs.h"
#include "tests/integration/process.h"
#include "tests/support/temp_dir.h"

namespace sigil::testing {
namespace {

using nlohmann::json;

const std::string kFixtures = SIGIL_VALIDATOR_FIXTURES;
constexpr char kSourceUri[] = "https://git.example.org/health/train.git";

// A one-commit repository on branch main at dir; returns the commit id.
std::string MakeMirror(const std::string& dir, const std::string& scratch) {
  REQUIRE(core::MakeDirs(scratch).ok());
  std::string env =
      "GIT_CONFIG_NOSYSTEM=1 HOME='" + scratch + "' GIT_AUTHOR_NAME=ci GIT_AUTHOR_EMAIL=ci@example.org "
      "GIT_COMMITTER_NAME=ci GIT_COMMITTER_EMAIL=ci@example.org GIT_AUTHOR_DATE='2026-11-01T00:00:00Z' "
      "GIT_COMMITTER_DATE='2026-11-01T00:00:00Z' ";
  REQUIRE(std::system((env + "git init -q -b main '" + dir + "' && " + env + "git -C '" + dir +
                       "' commit -q --allow-empty -m 'training code'")
                          .c_str()) == 0);
  std::string head = scratch + "/head";
  REQUIRE(std::system((env + "git -C '" + dir + "' rev-parse HEAD > '" + head + "'").c_str()) == 0);
  std::string commit = ReadWholeFile(head);
  while (!commit.empty() && (commit.back() == '\n' || commit.back() == '\r')) commit.pop_back();
  REQUIRE(commit.size() == 40);
  return commit;
}

std::string Provenance(const std::string& commit, const std::string& dataset_digest) {
  return json{{"buildDefinition",
               {{"buildType", "https://sigil.dev/training/v1"},
                {"externalParameters", {{"epochs", 3}}},
                {"resolvedDependencies",
                 {{{"uri", kSourceUri}, {"digest", {{"gitCommit", commit}}}},
                  {{"uri", "health/eval-data:v1"}, {"digest", {{"sha256", dataset_digest.substr(7)}}}}}}}},
              {"runDetails", {{"builder", {{"id", "https://ci.example.org/runner"}}}}}}
      .dump();
}

// The operator's policy, on both sites.
std::string Policy(const std::string& ci_key_id, const std::string& spec_digest) {
  return json{{"name", "health-production"},
              {"repositories", {"health/triage"}},
              {"stages", {"production"}},
              {"signatures", {{"keys", {ci_key_id}}, {"threshold", 1}}},
              {"attestations", {{{"predicate_type", "https://slsa.dev/provenance/v1"}, {"keys", {ci_key_id}}}}},
              {"provenance",
               {{"builders", {"https://ci.example.org/runner"}},
                {"source_repositories", {"https://git.example.org/health/*"}},
                {"dataset_digests_registered", true},
                {"subjects_match_files", true},
                {"commit", {{"branches", {"main"}}}}}},
              {"scan", {{"max_severity", "medium"}}},
              {"evaluation",
               {{"spec_digest", spec_digest},
                {"thresholds", {{"accuracy", {{"min", 0.5}}}}},
                {"max_regression_vs_current", {{"accuracy", 0.01}}}}},
              {"residency",
               {{"store", {"train-1", "serve-1"}},
                {"pull", {"train-1", "serve-1"}},
                {"export", {"eu-*"}},
                {"classification", "health"}}},
              {"freshness", {{"max_age_days", 30}}}}
      .dump(2);
}

struct Story {
  TempDir tmp;
  std::string mirrors = tmp.Sub("mirrors");
  Sigild training{tmp.Sub("training"),
                  {"--log-origin", "sigil/training", "--site", "train-1", "--region", "eu-west", "--git-mirrors",
                   mirrors}};
  std::unique_ptr<Sigild> serving;
  std::map<std::string, std::string> env{{"XDG_STATE_HOME", tmp.Sub("state")}};
  // Each site's operator token: admin, at that site (residency rules that
  // list sites refuse tokens without one, the bootstrap token included).
  std::map<const Sigild*, std::string> operators;

  RunResult Sigil(Sigild& s, std::vector<std::string> args, std::map<std::string, std::string> extra = {}) {
    args.insert(args.begin(), {"--server", s.url(), "--retry-time", "10"});
    std::map<std::string, std::string> e = env;
    if (operators.count(&s)) e["SIGIL_TOKEN"] = operators[&s];
    for (auto& [k, v] : extra) e[k] = v;
    RunResult r = RunSigil(args, e, tmp.path());
    UNSCOPED_INFO("sigil " << args[4] << " exit " << r.exit_code << "\nstdout: " << r.out << "\nstderr: " << r.err);
    return r;
  }

  json Get(Sigild& s, const std::string& path) {
    cli::HttpClient http(s.url(), operators.count(&s) ? TokenOptions(operators[&s]) : TokenOptions());
    auto r = http.Perform(cli::HttpRequest{.path = path});
    REQUIRE(r.ok());
    INFO(path << ": " << r->body);
    REQUIRE(r->status == 200);
    return json::parse(r->body);
  }

  void Trust(Sigild& s, const std::string& pem, const std::string& name, const std::vector<std::string>& types) {
    cli::HttpClient http(s.url(), TokenOptions());
    std::string body = json{{"public_key", pem},
                            {"name", name},
                            {"predicate_types", types},
                            {"repositories", {"health/**"}},
                            {"stages", {"*"}}}
                           .dump();
    auto r = http.Perform(cli::HttpRequest{
        .method = "POST", .path = "/api/v1/trust/keys", .headers = {"Content-Type: application/json"}, .body = body});
    REQUIRE(r.ok());
    INFO(r->body);
    REQUIRE(r->status == 201);
  }

  std::string WaitScanned(Sigild& s, const std::string& repo, const std::string& version) {
    std::string state;
    for (int i = 0; i < 600; ++i) {
      state = Get(s, "/api/v1/models/" + repo + "/versions/" + version)["state"];
      if (state != "pending") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return state;
  }

  // Pushes DIR as health/triage:VERSION, with provenance signed by key when given.
  RunResult Push(const std::string& dir, const std::string& version, const std::string& provenance = "",
                 const std::string& key = "") {
    std::vector<std::string> args{"push", dir, "health/triage:" + version};
    if (!provenance.empty()) {
      std::string file = tmp.Sub("prov-" + version + ".json");
      WriteTextFile(file, provenance);
      args.insert(args.end(), {"--provenance", file, "--key", key});
    }
    return Sigil(training, args);
  }

  std::string ModelDir(const std::string& name, const std::string& weights, const std::string& note) {
    std::string dir = tmp.Sub("models/" + name);
    WriteTextFile(dir + "/model.pt", ReadWholeFile(kFixtures + "/" + weights));
    WriteTextFile(dir + "/README.md", note + "\n");
    return dir;
  }

  std::string Alias(Sigild& s, const std::string& alias) {
    return Get(s, "/api/v1/models/health/triage/aliases/" + alias)["version"];
  }

  std::string Token(Sigild& s, const std::string& name, const std::string& site, const std::string& region,
                    const std::string& role = "reader") {
    RunResult r = Sigil(s, {"token", "create", "--name", name, "--role", role, "--repos", "**", "--site", site,
                            "--region", region});
    REQUIRE(r.exit_code == 0);
    std::string token = r.out.substr(0, r.out.find('\n'));
    REQUIRE(token.rfind("sgl_", 0) == 0);
    return token;
  }
};

TEST_CASE("training site to air-gapped serving site: provenance, scan, evaluation, promotion, bundle, verified pull",
          "[integration][story]") {
  Story s;
  REQUIRE(s.training.Start());
  s.operators[&s.training] = s.Token(s.training, "ops-training", "train-1", "eu-west", "admin");
  const std::string commit =
      MakeMirror(s.mirrors + "/git.example.org/health/train", s.tmp.Sub("git-home"));

  // Keys: the CI key is trusted for provenance and model signatures; the
  // rogue key is not trusted anywhere.
  const std::string keys = s.tmp.Sub("keys");
  REQUIRE(core::MakeDirs(keys).ok());
  RunResult ci = s.Sigil(s.training, {"key", "generate", "--type", "ecdsa-p256", "--out", keys + "/ci"});
  REQUIRE(ci.exit_code == 0);
  std::string ci_key_id = ci.out.substr(0, ci.out.find('\n'));
  REQUIRE(s.Sigil(s.training, {"key", "generate", "--type", "ecdsa-p256", "--out", keys + "/rogue"}).exit_code == 0);
  const std::string ci_pem = ReadWholeFile(keys + "/ci.pub");
  s.Trust(s.training, ci_pem, "ci",
          {"https://slsa.dev/provenance/v1", "https://model_signing/signature/v1.0"});

  // The evaluation dataset and spec, registered as a version of their own.
  std::string data = s.tmp.Sub("eval-data");
  WriteTextFile(data + "/eval.safetensors", ReadWholeFile(kFixtures + "/classification.safetensors"));
  WriteTextFile(data + "/spec.json", R"({"model": "model.pt", "dataset": {"ref": "health/eval-data:v1",
                                        "path": "eval.safetensors"}, "metrics": ["accuracy"]})");
  REQUIRE(s.Sigil(s.training, {"push", data, "health/eval-data:v1"}).exit_code == 0);
  const std::string spec_digest = FileDigest(data + "/spec.json");
  const std::string dataset_digest = FileDigest(data + "/eval.safetensors");

  const std::string policy_file = s.tmp.Sub("policy.json");
  WriteTextFile(policy_file, Policy(ci_key_id, spec_digest));
  REQUIRE(s.Sigil(s.training, {"policy", "put", policy_file}).exit_code == 0);

  // 1.0.0: pushed with signed provenance, signed by CI, scanned, evaluated
  // and promoted.
  const std::string good = Provenance(commit, dataset_digest);
  REQUIRE(s.Push(s.ModelDir("v1", "classifier.pt", "1.0.0"), "1.0.0", good, keys + "/ci.key").exit_code == 0);
  REQUIRE(s.Sigil(s.training, {"sign", "health/triage:1.0.0", "--key", keys + "/ci.key"}).exit_code == 0);
  REQUIRE(s.WaitScanned(s.training, "health/triage", "1.0.0") == "available");
  RunResult promoted = s.Sigil(s.training, {"promote", "health/triage:1.0.0", "--to", "production", "--wait",
                                            "--timeout", "300"});
  REQUIRE(promoted.exit_code == 0);
  CHECK(promoted.out.find("policy health-production") != std::string::npos);
  CHECK(promoted.out.find("verification summary sha256:") != std::string::npos);
  CHECK(s.Alias(s.training, "production") == "1.0.0");
  json vsas = s.Get(s.training, "/api/v1/models/health/triage/versions/1.0.0/attestations");
  CHECK(vsas.dump().find("https://slsa.dev/verification_summary/v1") != std::string::npos);

  // Each failure stops at the promotion with its rule, and production stays.
  auto refused = [&](const std::string& version, const std::string& rule, const std::string& reason) {
    RunResult r = s.Sigil(s.training, {"promote", "health/triage:" + version, "--to", "production", "--wait",
                                       "--timeout", "300"});
    INFO("promote " << version << ": " << r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.out.find(rule) != std::string::npos);
    CHECK(r.out.find(reason) != std::string::npos);
    CHECK(s.Alias(s.training, "production") == "1.0.0");
  };
  SECTION("failures stop the story at their step") {
    // A version missing its provenance attestation.
    REQUIRE(s.Push(s.ModelDir("v2", "classifier.pt", "1.1.0 without provenance"), "1.1.0").exit_code == 0);
    REQUIRE(s.Sigil(s.training, {"sign", "health/triage:1.1.0", "--key", keys + "/ci.key"}).exit_code == 0);
    refused("1.1.0", "attestations", "https://slsa.dev/provenance/v1");

    // Training code at a commit the mirror does not have.
    const std::string unknown_commit(40, 'a');
    REQUIRE(s.Push(s.ModelDir("v3", "classifier.pt", "1.2.0 unknown commit"), "1.2.0",
                   Provenance(unknown_commit, dataset_digest), keys + "/ci.key")
                .exit_code == 0);
    REQUIRE(s.Sigil(s.training, {"sign", "health/triage:1.2.0", "--key", keys + "/ci.key"}).exit_code == 0);
    refused("1.2.0", "provenance.commit", "is not in the local mirror");

    // A rogue key: its provenance is refused at push, its signature is not
    // one the policy counts.
    RunResult rogue = s.Push(s.ModelDir("v4", "classifier.pt", "1.3.0 rogue"), "1.3.0", good, keys + "/rogue.key");
    CHECK(rogue.exit_code != 0);
    CHECK(rogue.err.find("KEY_UNTRUSTED") != std::string::npos);
    CHECK(s.Sigil(s.training, {"sign", "health/triage:1.3.0", "--key", keys + "/rogue.key"}).exit_code != 0);
    refused("1.3.0", "signatures", "found 0");

    // A worse model: a regression against production.
    REQUIRE(s.Push(s.ModelDir("v5", "classifier_worse.pt", "1.4.0 worse"), "1.4.0", good, keys + "/ci.key")
                .exit_code == 0);
    REQUIRE(s.Sigil(s.training, {"sign", "health/triage:1.4.0", "--key", keys + "/ci.key"}).exit_code == 0);
    refused("1.4.0", "evaluation", "accuracy");

    // An export to a region the policy does not allow.
    RunResult us = s.Sigil(s.training, {"export", "health/triage:production", "--to", "us-east", "--out",
                                        s.tmp.Sub("us.tar")});
    CHECK(us.exit_code != 0);
    CHECK(us.err.find("RESIDENCY_DENIED") != std::string::npos);
    struct stat st {};
    CHECK(::stat(s.tmp.Sub("us.tar").c_str(), &st) != 0);
    json audit = s.Get(s.training, "/api/v1/audit?action=export");
    CHECK(audit.dump().find("RESIDENCY_DENIED") != std::string::npos);
  }

  SECTION("the bundle crosses the air gap and the serving site pulls it verified") {
    const std::string bundle = s.tmp.Sub("carry/production.tar");
    REQUIRE(core::MakeDirs(s.tmp.Sub("carry")).ok());
    REQUIRE(s.Sigil(s.training, {"export", "health/triage:production", "--to", "eu-central", "--out", bundle})
                .exit_code == 0);

    // The serving site: the training log is a peer log; the training
    // server's key (scan, evaluation, VSA) and the CI key are trusted; the
    // same policy is in force there.
    json training_keys = s.Get(s.training, "/api/v1/keys/server");
    WriteTextFile(s.tmp.Sub("peer-logs"), training_keys["log"]["verifier"].get<std::string>() + "\n");
    s.serving = std::make_unique<Sigild>(
        s.tmp.Sub("serving"), std::vector<std::string>{"--log-origin", "sigil/serving", "--site", "serve-1",
                                                       "--region", "eu-central", "--peer-logs", s.tmp.Sub("peer-logs")});
    REQUIRE(s.serving->Start());
    Sigild& serving = *s.serving;
    s.operators[&serving] = s.Token(serving, "ops-serving", "serve-1", "eu-central", "admin");
    const std::string training_pem = training_keys["attestation"]["public_key"];
    s.Trust(serving, training_pem, "training-site", {"*"});
    s.Trust(serving, ci_pem, "ci", {"https://slsa.dev/provenance/v1", "https://model_signing/signature/v1.0"});
    REQUIRE(s.Sigil(serving, {"policy", "put", policy_file}).exit_code == 0);

    // A bundle tampered in transit is refused and nothing is imported.
    std::string bytes = ReadWholeFile(bundle);
    bytes[bytes.size() / 2] ^= 0x01;
    WriteTextFile(s.tmp.Sub("carry/tampered.tar"), bytes);
    CHECK(s.Sigil(serving, {"import", s.tmp.Sub("carry/tampered.tar")}).exit_code == 1);
    CHECK(s.Get(serving, "/api/v1/models").dump().find("health/triage") == std::string::npos);

    RunResult imported = s.Sigil(serving, {"import", bundle, "--json"});
    REQUIRE(imported.exit_code == 0);
    CHECK(json::parse(imported.out)["changed"] == true);
    RunResult again = s.Sigil(serving, {"import", bundle, "--json"});
    REQUIRE(again.exit_code == 0);
    CHECK(json::parse(again.out)["changed"] == false);
    CHECK(s.Alias(serving, "production") == "1.0.0");
    REQUIRE(s.WaitScanned(serving, "health/triage", "1.0.0") == "available");
    json history = s.Get(serving, "/api/v1/models/health/triage/aliases/production/history");
    CHECK(history.dump().find("\"import\"") != std::string::npos);

    // The serving node: its own token, the serving site's keys, the
    // training site's and CI's keys.
    const std::string trusted = s.tmp.Sub("node-keys.json");
    REQUIRE(s.Sigil(serving, {"key", "server", "--trusted-keys", trusted}).exit_code == 0);
    REQUIRE(s.Sigil(serving, {"key", "trust", keys + "/ci.pub", "--trusted-keys", trusted, "--name", "ci"})
                .exit_code == 0);
    WriteTextFile(keys + "/training.pub", training_pem);
    REQUIRE(s.Sigil(serving, {"key", "trust", keys + "/training.pub", "--trusted-keys", trusted, "--name",
                              "training-site"})
                .exit_code == 0);
    const std::string node = s.Token(serving, "node-1", "serve-1", "eu-central");
    const std::string out = s.tmp.Sub("served");
    RunResult pulled = s.Sigil(serving, {"pull", "health/triage:production", out, "--verify", "--trusted-keys", trusted},
                               {{"SIGIL_TOKEN", node}});
    REQUIRE(pulled.exit_code == 0);
    CHECK(pulled.err.find("verified: every check passed") != std::string::npos);
    CHECK(ReadWholeFile(out + "/model.pt") == ReadWholeFile(kFixtures + "/classifier.pt"));

    // A token of a site the policy does not list is refused, with the rule.
    const std::string elsewhere = s.Token(serving, "node-us", "us-1", "us-east");
    RunResult denied = s.Sigil(serving, {"pull", "health/triage:production", s.tmp.Sub("denied")},
                               {{"SIGIL_TOKEN", elsewhere}});
    CHECK(denied.exit_code != 0);
    CHECK(denied.err.find("RESIDENCY_DENIED") != std::string::npos);
    CHECK(denied.err.find("residency.pull") != std::string::npos);
  }
}

}  // namespace
}  // namespace sigil::testing
