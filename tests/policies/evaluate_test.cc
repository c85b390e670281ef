#include "policies/evaluate.h"

#include <algorithm>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/json.h"

namespace sigil::policies {
namespace {

constexpr int64_t kDay = 86'400'000'000;
constexpr int64_t kNow = 1'700'000'000'000'000;
constexpr char kSlsa[] = "https://slsa.dev/provenance/v1";

core::Digest D(char c) { return core::Sha256::Of(std::string(1, c)); }

Policy MustParse(const std::string& text) {
  auto p = ParsePolicy(text);
  INFO(p.status().ToString());
  REQUIRE(p.ok());
  return *p;
}

const RuleResult* FindRule(const Decision& d, std::string_view name) {
  for (const auto& r : d.rules) {
    if (r.rule == name) return &r;
  }
  return nullptr;
}

// Asserts the rule is present with the outcome, and its reason mentions `text`.
void Expect(const Decision& d, std::string_view name, bool passed, std::string_view text = "") {
  INFO(core::DumpJson(DecisionToJson(d)));
  const RuleResult* r = FindRule(d, name);
  REQUIRE(r != nullptr);
  CHECK(r->passed == passed);
  CHECK(r->reason.find(text) != std::string::npos);
}

const char kGate[] = R"({
  "name": "gate",
  "repositories": ["health/*"],
  "stages": ["production"],
  "signatures": {"keys": ["a", "b", "c"], "threshold": "2 of 3"},
  "attestations": [{"predicate_type": "https://slsa.dev/provenance/v1", "keys": ["builder"]}],
  "provenance": {"builders": ["https://ci.example/builder"],
                 "source_repositories": ["https://git.example/health/*"],
                 "dataset_digests_registered": true, "subjects_match_files": true,
                 "commit": {"branches": ["main", "release/*"], "signed": true}},
  "scan": {"max_severity": "low"},
  "evaluation": {"spec_digest": "sha256:043a718774c572bd8a25adbeb1bfcd5c0256ae11cecf9f9c3f925d0e52beaf89",
                 "thresholds": {"accuracy": {"min": 0.9}, "latency_ms": {"max": 120}},
                 "max_regression_vs_current": {"accuracy": 0.01}},
  "freshness": {"max_age_days": 30}
})";

constexpr char kCiKey[] =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID+tFRfiGCNqcrOp9LZbmxBHRPWtnpFLdScK0B7Y4/y5";
constexpr char kReleaseKey[] =
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBJJFLYvsZDjcehQwtv97JbReuZ3p1KGO0KZOCbq0pP0Bn5iqxNKAVaUrLDAMwH+7Hr1+/8FB7nj8uNdyZoAfq3M=";
constexpr char kRogueKey[] =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILR01kDyspIoUvSR0zQQGFQK94Kt3tYptwRjH9Zq1mPs";

Evidence GoodEvidence() {
  Evidence e;
  e.repository = "health/triage-llm";
  e.manifest_digest = D('m');
  e.files = {{"model.safetensors", D('w')}, {"config.json", D('c')}};
  e.signatures = {{"a", {}, true}, {"b", {}, true}};
  e.attestations = {{kSlsa, {"builder"}, kNow - 2 * kDay, true}};
  e.scan = ScanEvidence{"clean", scanner::Severity::kInfo};
  EvaluationEvidence ev;
  ev.passed = true;
  ev.spec_digest = core::Sha256::Of("s");
  ev.metrics = {{"accuracy", 0.93}, {"latency_ms", 80}};
  ev.current_metrics = std::map<std::string, double>{{"accuracy", 0.935}};
  e.evaluation = ev;
  ProvenanceEvidence pv;
  pv.builder_id = "https://ci.example/builder";
  pv.source_repository = "https://git.example/health/triage";
  pv.commit = CommitEvidence{"abc123", true, {"feature/x", "main"}, true, kCiKey, ""};
  pv.datasets = {{D('d'), true}};
  pv.subjects = {{"config.json", D('c')}, {"model.safetensors", D('w')}};
  e.provenance = pv;
  e.now_micros = kNow;
  return e;
}

Context Promote(std::string stage = "production") {
  Context c;
  c.token_name = "ci";
  c.role = "promoter";
  c.action = Action::kPromote;
  c.stage = std::move(stage);
  return c;
}

TEST_CASE("good evidence passes every promotion rule", "[policies]") {
  Policy p = MustParse(kGate);
  REQUIRE(core::Sha256::Of("s").ToString() == p.evaluation->spec_digest->ToString());
  Decision d = Evaluate(p, GoodEvidence(), Promote());
  INFO(core::DumpJson(DecisionToJson(d)));
  CHECK(d.passed);
  CHECK(d.policy_name == "gate");
  CHECK(d.policy_digest == p.digest);
  for (const char* rule :
       {"scope.repository", "scope.stage", "signatures", "attestation https://slsa.dev/provenance/v1",
        "freshness", "provenance.builder", "provenance.source_repository", "provenance.commit",
        "provenance.commit_signature", "provenance.datasets", "provenance.subjects", "scan",
        "evaluation", "evaluation.spec", "evaluation.threshold.accuracy",
        "evaluation.threshold.latency_ms", "evaluation.regression.accuracy"}) {
    Expect(d, rule, true);
  }
  Expect(d, "signatures", true, "2 of 3 required signatures: found 2 (keys a, b)");
  Expect(d, "provenance.commit", true, "reachable from main");
  auto j = DecisionToJson(d);
  CHECK(j["verdict"] == "PASS");
  CHECK(j["policy"]["digest"] == p.digest.ToString());
  CHECK(j["rules"].size() == d.rules.size());
}

TEST_CASE("provenance.commit signers: only the listed SSH keys pass", "[policies]") {
  Policy p = MustParse(R"({"name": "signed-code", "repositories": ["health/*"],
    "provenance": {"commit": {"signed": true, "signers": [
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID+tFRfiGCNqcrOp9LZbmxBHRPWtnpFLdScK0B7Y4/y5 ci@example.org",
      "ecdsa-sha2-nistp256\tAAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBJJFLYvsZDjcehQwtv97JbReuZ3p1KGO0KZOCbq0pP0Bn5iqxNKAVaUrLDAMwH+7Hr1+/8FB7nj8uNdyZoAfq3M="]}}})");
  Evidence e = GoodEvidence();
  e.provenance->commit->signer_key = kCiKey;
  Decision d = Evaluate(p, e, Promote());
  CHECK(d.passed);
  Expect(d, "provenance.commit_signature", true,
         "commit abc123 is signed by ssh-ed25519 AAAA...dScK0B7Y4/y5, an allowed signer");

  e.provenance->commit->signer_key = kReleaseKey;
  CHECK(Evaluate(p, e, Promote()).passed);

  e.provenance->commit->signer_key = kRogueKey;
  d = Evaluate(p, e, Promote());
  CHECK(!d.passed);
  Expect(d, "provenance.commit_signature", false,
         "commit abc123 is signed by ssh-ed25519 AAAA...twRjH9Zq1mPs, not an allowed signer");

  // Same key type, a listed key's base64 with one character changed.
  std::string near = kCiKey;
  near[near.size() - 2] = 'z';
  e.provenance->commit->signer_key = near;
  CHECK(!Evaluate(p, e, Promote()).passed);

  // A listed key whose signature did not verify does not pass.
  e.provenance->commit->signer_key = kCiKey;
  e.provenance->commit->signature_valid = false;
  Expect(Evaluate(p, e, Promote()), "provenance.commit_signature", false, "no valid signature");

  // Without signers, any valid signature passes, and the reason names it.
  Policy any = MustParse(R"({"name": "n", "repositories": ["health/*"],
    "provenance": {"commit": {"signed": true}}})");
  e.provenance->commit->signature_valid = true;
  e.provenance->commit->signer_key = kRogueKey;
  Expect(Evaluate(any, e, Promote()), "provenance.commit_signature", true,
         "carries a valid signature by ssh-ed25519 AAAA...twRjH9Zq1mPs");
}

TEST_CASE("scope: other repositories and stages fail", "[policies]") {
  Policy p = MustParse(kGate);
  Evidence e = GoodEvidence();
  e.repository = "vision/resnet";
  Decision d = Evaluate(p, e, Promote("staging"));
  CHECK(!d.passed);
  Expect(d, "scope.repository", false, "matches none of health/*");
  Expect(d, "scope.stage", false, "'staging' is not one of production");
}

TEST_CASE("signatures: 2 of 3 threshold, rogue and unverified keys not counted", "[policies]") {
  Policy p = MustParse(kGate);
  Evidence e = GoodEvidence();
  e.signatures = {{"a", {}, true}, {"rogue", {}, true}, {"b", {}, false}, {"a", {}, true}};
  Decision d = Evaluate(p, e, Promote());
  CHECK(!d.passed);
  Expect(d, "signatures", false, "2 of 3 required signatures: found 1 (keys a)");
  Expect(d, "signatures", false, "not trusted by this policy: rogue");
  Expect(d, "signatures", false, "did not verify: b");

  e.signatures = {{"a", {}, true}, {"b", {}, true}, {"c", {}, true}, {"rogue", {}, true}};
  Decision all = Evaluate(p, e, Promote());
  Expect(all, "signatures", true, "found 3 (keys a, b, c)");
}

TEST_CASE("signatures: key roles count", "[policies]") {
  Policy p = MustParse(
      R"({"name":"r","repositories":["**"],"signatures":{"roles":["release"],"threshold":2}})");
  Evidence e = GoodEvidence();
  e.signatures = {{"x", {"release"}, true}, {"y", {"dev"}, true}};
  Decision d = Evaluate(p, e, Promote());
  Expect(d, "signatures", false, "2 required signatures: found 1 (keys x)");
  e.signatures.push_back({"z", {"dev", "release"}, true});
  Expect(Evaluate(p, e, Promote()), "signatures", true, "found 2 (keys x, z)");
}

TEST_CASE("attestations: missing, wrong key, stale", "[policies]") {
  Policy p = MustParse(kGate);
  Evidence e = GoodEvidence();
  e.attestations.clear();
  Decision d = Evaluate(p, e, Promote());
  Expect(d, "attestation https://slsa.dev/provenance/v1", false,
         "missing attestation https://slsa.dev/provenance/v1");

  e.attestations = {{kSlsa, {"intruder"}, kNow, true}};
  Expect(Evaluate(p, e, Promote()), "attestation https://slsa.dev/provenance/v1", false,
         "signed only by keys not allowed: intruder");

  e.attestations = {{kSlsa, {"builder"}, kNow, false}};
  Expect(Evaluate(p, e, Promote()), "attestation https://slsa.dev/provenance/v1", false,
         "missing attestation");

  e.attestations = {{kSlsa, {"builder"}, kNow - 45 * kDay, true}};
  Decision stale = Evaluate(p, e, Promote());
  CHECK(!stale.passed);
  Expect(stale, "attestation https://slsa.dev/provenance/v1", false,
         "only older than 30 days, signed by builder");
  Expect(stale, "freshness", false, "stale: https://slsa.dev/provenance/v1 (45 days old)");
}

TEST_CASE("provenance rules fail one by one", "[policies]") {
  Policy p = MustParse(kGate);
  {
    Evidence e = GoodEvidence();
    e.provenance.reset();
    Expect(Evaluate(p, e, Promote()), "provenance", false, "no verified provenance");
  }
  {
    Evidence e = GoodEvidence();
    e.provenance->builder_id = "laptop";
    Expect(Evaluate(p, e, Promote()), "provenance.builder", false, "builder 'laptop' is not one of");
  }
  {
    Evidence e = GoodEvidence();
    e.provenance->source_repository = "https://evil.example/fork";
    Expect(Evaluate(p, e, Promote()), "provenance.source_repository", false, "matches none of");
  }
  {
    Evidence e = GoodEvidence();
    e.provenance->commit->exists_in_mirror = false;
    e.provenance->commit->detail.clear();
    Expect(Evaluate(p, e, Promote()), "provenance.commit", false, "not in the local mirror");
    CHECK(FindRule(Evaluate(p, e, Promote()), "provenance.commit")->reason ==
          "commit abc123 is not in the local mirror");
    e.provenance->commit->detail = "no git mirror is configured";
    CHECK(FindRule(Evaluate(p, e, Promote()), "provenance.commit")->reason ==
          "commit abc123 is not in the local mirror: no git mirror is configured");
  }
  {
    Evidence e = GoodEvidence();
    e.provenance->commit->reachable_from = {"feature/x"};
    Expect(Evaluate(p, e, Promote()), "provenance.commit", false,
           "not reachable from main, release/*");
    e.provenance->commit->reachable_from = {"release/2.0"};
    Expect(Evaluate(p, e, Promote()), "provenance.commit", true, "reachable from release/2.0");
  }
  {
    Evidence e = GoodEvidence();
    e.provenance->commit->signature_valid = false;
    Expect(Evaluate(p, e, Promote()), "provenance.commit_signature", false, "no valid signature");
  }
  {
    Evidence e = GoodEvidence();
    e.provenance->commit.reset();
    Expect(Evaluate(p, e, Promote()), "provenance.commit", false, "names no commit");
  }
  {
    Evidence e = GoodEvidence();
    e.provenance->commit->signature_valid = false;
    e.provenance->commit->detail = "SSH signature is for namespace 'file', not 'git'";
    Expect(Evaluate(p, e, Promote()), "provenance.commit_signature", false,
           "commit abc123 has no valid signature: SSH signature is for namespace 'file', not 'git'");
  }
  {
    Evidence e = GoodEvidence();
    e.provenance->datasets.push_back({D('u'), false});
    Expect(Evaluate(p, e, Promote()), "provenance.datasets", false,
           "not registered: " + D('u').ToString());
  }
  {
    Evidence e = GoodEvidence();
    e.provenance->subjects = {{"model.safetensors", D('x')}, {"extra.bin", D('e')}};
    Decision d = Evaluate(p, e, Promote());
    Expect(d, "provenance.subjects", false, "files not in subjects: config.json, model.safetensors");
    Expect(d, "provenance.subjects", false, "subjects not among files: extra.bin, model.safetensors");
  }
}

TEST_CASE("scan: missing report and severity above the ceiling fail", "[policies]") {
  Policy p = MustParse(kGate);
  Evidence e = GoodEvidence();
  e.scan = ScanEvidence{"suspicious", scanner::Severity::kLow};
  Expect(Evaluate(p, e, Promote()), "scan", true, "worst finding low, within low");
  e.scan = ScanEvidence{"malicious", scanner::Severity::kCritical};
  Expect(Evaluate(p, e, Promote()), "scan", false, "worst finding critical, above the allowed low");
  e.scan.reset();
  Expect(Evaluate(p, e, Promote()), "scan", false, "no scan report");
}

TEST_CASE("evaluation: report, spec, thresholds and regression", "[policies]") {
  Policy p = MustParse(kGate);
  {
    Evidence e = GoodEvidence();
    e.evaluation.reset();
    Expect(Evaluate(p, e, Promote()), "evaluation", false, "no evaluation report");
  }
  {
    Evidence e = GoodEvidence();
    e.evaluation->passed = false;
    e.evaluation->spec_digest = D('z');
    Decision d = Evaluate(p, e, Promote());
    Expect(d, "evaluation", false, "did not pass");
    Expect(d, "evaluation.spec", false, "ran on " + D('z').ToString());
  }
  {
    Evidence e = GoodEvidence();
    e.evaluation->metrics = {{"accuracy", 0.85}};
    Decision d = Evaluate(p, e, Promote());
    Expect(d, "evaluation.threshold.accuracy", false, "accuracy = 0.85, fails >= 0.9");
    Expect(d, "evaluation.threshold.latency_ms", false, "metric latency_ms missing");
    Expect(d, "evaluation.regression.accuracy", false, "regresses beyond tolerance 0.01");
  }
  {
    Evidence e = GoodEvidence();
    e.evaluation->metrics["latency_ms"] = 150;
    Expect(Evaluate(p, e, Promote()), "evaluation.threshold.latency_ms", false,
           "latency_ms = 150, fails <= 120");
  }
  {
    Evidence e = GoodEvidence();
    e.evaluation->current_metrics.reset();
    Expect(Evaluate(p, e, Promote()), "evaluation.regression.accuracy", true,
           "no current version");
  }
  {
    // A loss regresses upwards.
    Policy loss = MustParse(R"({"name":"loss","repositories":["health/*"],
      "evaluation":{"max_regression_vs_current":{"cross_entropy":0.05}}})");
    Evidence e = GoodEvidence();
    e.evaluation->metrics = {{"cross_entropy", 0.40}};
    e.evaluation->current_metrics = std::map<std::string, double>{{"cross_entropy", 0.30}};
    Expect(Evaluate(loss, e, Promote()), "evaluation.regression.cross_entropy", false, "regresses beyond");
    e.evaluation->metrics = {{"cross_entropy", 0.20}};
    Expect(Evaluate(loss, e, Promote()), "evaluation.regression.cross_entropy", true, "within");
  }
}

TEST_CASE("residency refuses store, pull and export outside the allowed places", "[policies]") {
  Policy p = MustParse(R"({"name":"res","repositories":["health/*"],
    "residency":{"store":["eu-*"],"pull":["eu-west","site-berlin"],"export":["eu-central"],
                 "classification":"restricted"}})");
  Evidence e = GoodEvidence();
  Context c;
  c.token_name = "node-1";
  c.site = "site-paris";
  c.region = "eu-west";

  c.action = Action::kStore;
  Expect(Evaluate(p, e, c), "residency.store", true, "storing allowed at site 'site-paris'");
  c.action = Action::kPull;
  Expect(Evaluate(p, e, c), "residency.pull", true, "(restricted)");
  c.action = Action::kExport;
  c.export_region = "eu-central";
  Expect(Evaluate(p, e, c), "residency.export", true, "export allowed at region 'eu-central'");

  c.site = "site-virginia";
  c.region = "us-east";
  c.action = Action::kStore;
  Decision store = Evaluate(p, e, c);
  CHECK(!store.passed);
  Expect(store, "residency.store", false, "storing not allowed at site 'site-virginia', region 'us-east'; allowed: eu-*");
  c.action = Action::kPull;
  Expect(Evaluate(p, e, c), "residency.pull", false, "pulling not allowed");
  c.site = "site-berlin";
  Expect(Evaluate(p, e, c), "residency.pull", true, "pulling allowed");
  c.action = Action::kExport;
  c.export_region = "us-east";
  Decision exp = Evaluate(p, e, c);
  CHECK(!exp.passed);
  Expect(exp, "residency.export", false, "export not allowed at region 'us-east'");
  // Promotion gates are not part of a residency decision.
  CHECK(FindRule(exp, "signatures") == nullptr);
}

TEST_CASE("residency: an empty list allows nowhere, an absent one everywhere", "[policies]") {
  Policy p = MustParse(R"({"name":"res","repositories":["**"],"residency":{"export":[]}})");
  Context c;
  c.site = "s";
  c.region = "r";
  c.action = Action::kExport;
  c.export_region = "r";
  Expect(Evaluate(p, GoodEvidence(), c), "residency.export", false, "allowed: none");
  c.action = Action::kPull;
  Expect(Evaluate(p, GoodEvidence(), c), "residency.pull", true, "not restricted");
}

TEST_CASE("decisions are deterministic", "[policies]") {
  Policy p = MustParse(kGate);
  Evidence e = GoodEvidence();
  e.signatures = {{"rogue", {}, true}, {"c", {}, true}, {"a", {}, false}};
  e.evaluation->metrics["accuracy"] = 0.1 + 0.2;
  std::string first = core::DumpJson(DecisionToJson(Evaluate(p, e, Promote())));
  // The same evidence in another order decides identically.
  std::reverse(e.signatures.begin(), e.signatures.end());
  for (int i = 0; i < 5; ++i) {
    CHECK(core::DumpJson(DecisionToJson(Evaluate(p, e, Promote()))) == first);
  }
  CHECK(first.find("\"verdict\":\"FAIL\"") != std::string::npos);
  CHECK(first.find("accuracy = 0.30000000000000004") != std::string::npos);
}

}  // namespace
}  // namespace sigil::policies
