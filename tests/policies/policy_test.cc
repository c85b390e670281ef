#include "policies/policy.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "core/json.h"

namespace sigil::policies {
namespace {

const char kFull[] = R"({
  "name": "production-gate",
  "repositories": ["health/*"],
  "stages": ["staging", "production"],
  "signatures": {"keys": ["k-a", "k-b", "k-c"], "threshold": "2 of 3"},
  "attestations": [{"predicate_type": "https://slsa.dev/provenance/v1", "keys": ["builder"]}],
  "provenance": {"builders": ["https://ci.example/builder"],
                 "source_repositories": ["https://git.example/health/*"],
                 "dataset_digests_registered": true, "subjects_match_files": true,
                 "commit": {"branches": ["main", "release/*"], "signed": true,
                            "signers": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID+tFRfiGCNqcrOp9LZbmxBHRPWtnpFLdScK0B7Y4/y5 ci@example.org"]}},
  "scan": {"max_severity": "low"},
  "evaluation": {"spec_digest": "sha256:0000000000000000000000000000000000000000000000000000000000000001",
                 "thresholds": {"accuracy": {"min": 0.9}, "latency_ms": {"max": 120}},
                 "max_regression_vs_current": {"accuracy": 0.01}},
  "residency": {"store": ["eu-*"], "pull": ["eu-*", "site-berlin"], "export": [], "classification": "restricted"},
  "freshness": {"max_age_days": 30}
})";

TEST_CASE("a full policy parses with every rule", "[policies]") {
  auto p = ParsePolicy(kFull);
  REQUIRE(p.ok());
  CHECK(p->name == "production-gate");
  CHECK(p->repositories == std::vector<std::string>{"health/*"});
  REQUIRE(p->signatures);
  CHECK(p->signatures->threshold == 2);
  CHECK(p->signatures->of == 3);
  REQUIRE(p->attestations.size() == 1);
  CHECK(p->attestations[0].keys == std::vector<std::string>{"builder"});
  REQUIRE(p->provenance);
  REQUIRE(p->provenance->commit);
  CHECK(p->provenance->commit->signed_commit);
  CHECK(p->provenance->commit->signers ==
        std::vector<std::string>{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID+tFRfiGCNqcrOp9LZbmxBHRPWtnpFLdScK0B7Y4/y5 ci@example.org"});
  CHECK(p->provenance->dataset_digests_registered);
  REQUIRE(p->scan);
  CHECK(p->scan->max_severity == scanner::Severity::kLow);
  REQUIRE(p->evaluation);
  CHECK(p->evaluation->thresholds.at("accuracy").min == 0.9);
  CHECK(!p->evaluation->thresholds.at("accuracy").max);
  CHECK(p->evaluation->thresholds.at("latency_ms").max == 120);
  CHECK(p->evaluation->max_regression_vs_current.at("accuracy") == 0.01);
  REQUIRE(p->residency);
  REQUIRE(p->residency->export_to);
  CHECK(p->residency->export_to->empty());
  CHECK(p->residency->classification == "restricted");
  REQUIRE(p->freshness);
  CHECK(p->freshness->max_age_days == 30);
  CHECK(p->digest == core::Sha256::Of(kFull));
}

TEST_CASE("the policy digest is over the exact bytes", "[policies]") {
  auto a = ParsePolicy(R"({"name":"n","repositories":["*"]})");
  auto b = ParsePolicy(R"({"name": "n", "repositories": ["*"]})");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->digest != b->digest);
}

TEST_CASE("the canonical form parses back to the same policy", "[policies]") {
  auto p = ParsePolicy(kFull);
  REQUIRE(p.ok());
  std::string canonical = core::DumpJson(PolicyToJson(*p));
  auto q = ParsePolicy(canonical);
  REQUIRE(q.ok());
  CHECK(core::DumpJson(PolicyToJson(*q)) == canonical);
  CHECK(q->digest == core::Sha256::Of(canonical));
}

TEST_CASE("malformed policies are refused naming the field", "[policies]") {
  struct Case {
    const char* text;
    const char* field;
  };
  const Case cases[] = {
      {R"([1])", "(document)"},
      {R"({"repositories":["*"]})", "'name'"},
      {R"({"name":"","repositories":["*"]})", "'name'"},
      {R"({"name":"n"})", "'repositories'"},
      {R"({"name":"n","repositories":[]})", "'repositories'"},
      {R"({"name":"n","repositories":[1]})", "'repositories[0]'"},
      {R"({"name":"n","repositories":["*"],"colour":"red"})", "'colour'"},
      {R"({"name":"n","repositories":["*"],"stages":"prod"})", "'stages'"},
      {R"({"name":"n","repositories":["*"],"signatures":{"threshold":1}})", "'signatures'"},
      {R"({"name":"n","repositories":["*"],"signatures":{"keys":["a"]}})", "'signatures.threshold'"},
      {R"({"name":"n","repositories":["*"],"signatures":{"keys":["a","b"],"threshold":"3 of 2"}})", "'signatures.threshold'"},
      {R"({"name":"n","repositories":["*"],"signatures":{"keys":["a","b"],"threshold":"2 of 3"}})", "'signatures.threshold'"},
      {R"({"name":"n","repositories":["*"],"signatures":{"keys":["a"],"threshold":"two of three"}})", "'signatures.threshold'"},
      {R"({"name":"n","repositories":["*"],"signatures":{"keys":["a"],"threshold":0}})", "'signatures.threshold'"},
      {R"({"name":"n","repositories":["*"],"signatures":{"keys":["a"],"threshold":2}})", "'signatures.threshold'"},
      {R"({"name":"n","repositories":["*"],"signatures":{"keys":["a"],"threshold":1,"quorum":1}})", "'signatures.quorum'"},
      {R"({"name":"n","repositories":["*"],"attestations":{}})", "'attestations'"},
      {R"({"name":"n","repositories":["*"],"attestations":[{"keys":["a"]}]})", "'attestations[0].predicate_type'"},
      {R"({"name":"n","repositories":["*"],"attestations":[{"predicate_type":"p","signer":"a"}]})", "'attestations[0].signer'"},
      {R"({"name":"n","repositories":["*"],"provenance":{"builder":["b"]}})", "'provenance.builder'"},
      {R"({"name":"n","repositories":["*"],"provenance":{"builders":[]}})", "'provenance.builders'"},
      {R"({"name":"n","repositories":["*"],"provenance":{"subjects_match_files":"yes"}})", "'provenance.subjects_match_files'"},
      {R"({"name":"n","repositories":["*"],"provenance":{"commit":{"signed":1}}})", "'provenance.commit.signed'"},
      {R"({"name":"n","repositories":["*"],"provenance":{"commit":{"branch":"main"}}})", "'provenance.commit.branch'"},
      {R"({"name":"n","repositories":["*"],"provenance":{"commit":{"signed":true,"signers":[]}}})", "'provenance.commit.signers'"},
      {R"({"name":"n","repositories":["*"],"provenance":{"commit":{"signed":true,"signers":"ssh-ed25519 AAAA"}}})", "'provenance.commit.signers'"},
      // signers without "signed": true
      {R"({"name":"n","repositories":["*"],"provenance":{"commit":{"signers":["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID+tFRfiGCNqcrOp9LZbmxBHRPWtnpFLdScK0B7Y4/y5"]}}})", "'provenance.commit.signers' needs"},
      {R"({"name":"n","repositories":["*"],"provenance":{"commit":{"signed":false,"signers":["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID+tFRfiGCNqcrOp9LZbmxBHRPWtnpFLdScK0B7Y4/y5"]}}})", "'provenance.commit.signers' needs"},
      // no key, a key id instead of a key, unsupported types
      {R"({"name":"n","repositories":["*"],"provenance":{"commit":{"signed":true,"signers":["ssh-ed25519"]}}})", "'provenance.commit.signers[0]'"},
      {R"({"name":"n","repositories":["*"],"provenance":{"commit":{"signed":true,"signers":["3f1a0c"]}}})", "'provenance.commit.signers[0]'"},
      {R"({"name":"n","repositories":["*"],"provenance":{"commit":{"signed":true,"signers":["ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7fBgcbW x"]}}})", "'provenance.commit.signers[0]'"},
      {R"({"name":"n","repositories":["*"],"provenance":{"commit":{"signed":true,"signers":["ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBHNvh1XR/9n71+187mBADC+nLxAINY0/c4aNL+OcCxyzjIYz9cCGCdJavX6XCvmOm8oc3fHPxlP5ZjsJddRtnBkXf28l3WrImiiJP6Jy/mHCfCoYUZpIJugEU1udD15eMg=="]}}})", "'provenance.commit.signers[0]'"},
      // the blob is an ECDSA key but the line says ssh-ed25519
      {R"({"name":"n","repositories":["*"],"provenance":{"commit":{"signed":true,"signers":["ssh-ed25519 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBJJFLYvsZDjcehQwtv97JbReuZ3p1KGO0KZOCbq0pP0Bn5iqxNKAVaUrLDAMwH+7Hr1+/8FB7nj8uNdyZoAfq3M="]}}})", "does not hold a ssh-ed25519 key"},
      // truncated key, unpadded base64, not base64
      {R"({"name":"n","repositories":["*"],"provenance":{"commit":{"signed":true,"signers":["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID+tFRfiGCNqcrOp9LZbmxBHRPWtnpFLdScK0B7Y"]}}})", "'provenance.commit.signers[0]'"},
      {R"({"name":"n","repositories":["*"],"provenance":{"commit":{"signed":true,"signers":["ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBJJFLYvsZDjcehQwtv97JbReuZ3p1KGO0KZOCbq0pP0Bn5iqxNKAVaUrLDAMwH+7Hr1+/8FB7nj8uNdyZoAfq3M"]}}})", "standard padded base64"},
      {R"({"name":"n","repositories":["*"],"provenance":{"commit":{"signed":true,"signers":["ssh-ed25519 !!!!"]}}})", "standard padded base64"},
      {R"({"name":"n","repositories":["*"],"scan":{}})", "'scan.max_severity'"},
      {R"({"name":"n","repositories":["*"],"scan":{"max_severity":"severe"}})", "'scan.max_severity'"},
      {R"({"name":"n","repositories":["*"],"evaluation":{"spec_digest":"sha256:xyz"}})", "'evaluation.spec_digest'"},
      {R"({"name":"n","repositories":["*"],"evaluation":{"thresholds":{"acc":{}}}})", "'evaluation.thresholds.acc'"},
      {R"({"name":"n","repositories":["*"],"evaluation":{"thresholds":{"acc":{"min":2,"max":1}}}})", "'evaluation.thresholds.acc'"},
      {R"({"name":"n","repositories":["*"],"evaluation":{"thresholds":{"acc":{"min":"high"}}}})", "'evaluation.thresholds.acc.min'"},
      {R"({"name":"n","repositories":["*"],"evaluation":{"thresholds":{"acc":{"minimum":1}}}})", "'evaluation.thresholds.acc.minimum'"},
      {R"({"name":"n","repositories":["*"],"evaluation":{"max_regression_vs_current":{"acc":-1}}})", "'evaluation.max_regression_vs_current.acc'"},
      {R"({"name":"n","repositories":["*"],"residency":{"store":"eu"}})", "'residency.store'"},
      {R"({"name":"n","repositories":["*"],"residency":{"regions":["eu"]}})", "'residency.regions'"},
      {R"({"name":"n","repositories":["*"],"freshness":{"max_age_days":0}})", "'freshness.max_age_days'"},
      {R"({"name":"n","repositories":["*"],"freshness":{"max_age_days":1.5}})", "'freshness.max_age_days'"},
      {R"({"name":"n","repositories":["*"],"freshness":{}})", "'freshness.max_age_days'"},
      {R"({"name":"n","repositories":["*"],"scan":{"max_severity":"low"},"scan":{"max_severity":"critical"}})", "'scan' appears twice"},
      {R"({"name":"n","repositories":["*"],"signatures":{"keys":["a"],"keys":["b"],"threshold":1}})", "'keys' appears twice"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto p = ParsePolicy(c.text);
    REQUIRE(!p.ok());
    CHECK(p.status().code() == core::Code::kInvalidArgument);
    CHECK(p.status().reason() == "POLICY_INVALID");
    CHECK(p.status().message().find(c.field) != std::string::npos);
  }
}

TEST_CASE("policies that are not JSON, too large or too deep are refused", "[policies]") {
  const std::string too_big = R"({"name":")" + std::string(kMaxPolicyBytes, 'x') + R"(","repositories":["*"]})";
  std::string too_deep = R"({"name":"n","repositories":["*"],"stages":)";
  for (int i = 0; i < 20; ++i) too_deep += "[";
  for (int i = 0; i < 20; ++i) too_deep += "]";
  too_deep += "}";
  const std::string long_string =
      R"({"name":")" + std::string(kMaxStringBytes + 1, 'x') + R"(","repositories":["*"]})";
  std::string many = R"({"name":"n","repositories":[)";
  for (size_t i = 0; i <= kMaxListEntries; ++i) many += std::string(i ? "," : "") + "\"r\"";
  many += "]}";
  for (const std::string& text : {std::string("{"), std::string("not json"), too_big, too_deep,
                                  long_string, many}) {
    auto p = ParsePolicy(text);
    REQUIRE(!p.ok());
    CHECK(p.status().code() == core::Code::kInvalidArgument);
    CHECK(p.status().reason() == "POLICY_INVALID");
  }
}

TEST_CASE("coverage of repositories and stages", "[policies]") {
  auto p = ParsePolicy(R"({"name":"n","repositories":["health/*","vision/resnet"],"stages":["production"]})");
  REQUIRE(p.ok());
  CHECK(CoversRepository(*p, "health/triage-llm"));
  CHECK(CoversRepository(*p, "vision/resnet"));
  CHECK(!CoversRepository(*p, "vision/yolo"));
  CHECK(CoversStage(*p, "production"));
  CHECK(!CoversStage(*p, "staging"));
  auto any = ParsePolicy(R"({"name":"n","repositories":["*"]})");
  REQUIRE(any.ok());
  CHECK(CoversStage(*any, "staging"));
}

}  // namespace
}  // namespace sigil::policies

// The policy the README and docs show must stay one sigild accepts.
TEST_CASE("the example production policy in docs/examples parses", "[policies]") {
  auto text = sigil::core::ReadFile(std::string(SIGIL_EXAMPLES_DIR) + "/policy-production.json", 1 << 20);
  REQUIRE(text.ok());
  auto policy = sigil::policies::ParsePolicy(*text);
  INFO(policy.status().ToString());
  REQUIRE(policy.ok());
  CHECK(policy->name == "triage-production");
  REQUIRE(policy->provenance.has_value());
  REQUIRE(policy->provenance->commit.has_value());
  CHECK(policy->residency.has_value());
}
