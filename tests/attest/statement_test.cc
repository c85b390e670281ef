#include "attest/statement.h"

#include <functional>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "attest/slsa.h"
#include "core/clock.h"
#include "core/json.h"

namespace sigil::attest {
namespace {

using core::Code;
using core::Json;

const std::string kHexA = std::string(64, 'a');
const std::string kHexB = std::string(64, 'b');

Statement Sample() {
  Statement st;
  st.subjects = {{"model.safetensors", {{"sha256", kHexA}}}, {"config.json", {{"sha256", kHexB}}}};
  st.predicate_type = std::string(kSigilScanV1);
  st.predicate_json = R"({"verdict":"clean"})";
  return st;
}

TEST_CASE("statement round-trips through JSON", "[attest][statement]") {
  auto text = SerializeStatement(Sample());
  REQUIRE(text.ok());
  auto doc = core::ParseJson(*text);
  REQUIRE(doc.ok());
  CHECK((*doc)["_type"] == "https://in-toto.io/Statement/v1");
  CHECK((*doc)["predicateType"] == "https://sigil.dev/attestations/scan/v1");
  CHECK((*doc)["subject"][0]["digest"]["sha256"] == kHexA);
  CHECK((*doc)["predicate"]["verdict"] == "clean");
  auto back = ParseStatement(*text);
  REQUIRE(back.ok());
  REQUIRE(back->subjects.size() == 2);
  CHECK(back->subjects[1].name == "config.json");
  CHECK(back->predicate_type == kSigilScanV1);
  CHECK(back->predicate_json == R"({"verdict":"clean"})");
  CHECK(kSigilEvaluationV1 == "https://sigil.dev/attestations/evaluation/v1");
}

TEST_CASE("statement validation rejects bad statements", "[attest][statement]") {
  const std::pair<const char*, std::function<void(Json&)>> cases[] = {
      {"wrong _type", [](Json& d) { d["_type"] = "https://in-toto.io/Statement/v0.1"; }},
      {"missing _type", [](Json& d) { d.erase("_type"); }},
      {"no subjects", [](Json& d) { d["subject"] = Json::array(); }},
      {"subject not array", [](Json& d) { d["subject"] = "x"; }},
      {"uppercase hex", [](Json& d) { d["subject"][0]["digest"]["sha256"] = std::string(64, 'A'); }},
      {"short sha256", [](Json& d) { d["subject"][0]["digest"]["sha256"] = "abc"; }},
      {"empty digest", [](Json& d) { d["subject"][0]["digest"] = Json::object(); }},
      {"digest not string", [](Json& d) { d["subject"][0]["digest"]["sha256"] = 5; }},
      {"no name", [](Json& d) { d["subject"][0].erase("name"); }},
      {"no predicateType", [](Json& d) { d.erase("predicateType"); }},
      {"predicate not object", [](Json& d) { d["predicate"] = Json::array(); }},
      {"bad gitCommit", [](Json& d) { d["subject"][0]["digest"]["gitCommit"] = "abc"; }},
  };
  auto base = core::ParseJson(SerializeStatement(Sample()).value()).value();
  for (const auto& [what, change] : cases) {
    INFO(what);
    Json doc = base;
    change(doc);
    auto r = ParseStatement(core::DumpJson(doc));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK(r.status().reason() == "STATEMENT_INVALID");
  }
  CHECK(ParseStatement("{").status().reason() == "JSON_INVALID");
  Statement empty_type = Sample();
  empty_type.predicate_type.clear();
  CHECK(SerializeStatement(empty_type).status().reason() == "STATEMENT_INVALID");
  Json with_commit = base;
  with_commit["subject"][0]["digest"]["gitCommit"] = std::string(40, 'c');
  CHECK(ParseStatement(core::DumpJson(with_commit)).ok());
}

TEST_CASE("timestamps must be RFC 3339 with Z", "[attest][statement]") {
  auto t = ParseTimestamp("2026-11-23T18:14:08Z");
  REQUIRE(t.ok());
  CHECK(FormatTimestamp(*t) == "2026-11-23T18:14:08Z");
  CHECK(ParseTimestamp("2026-11-23T18:14:08.5Z").ok());
  for (const char* bad : {"2026-11-23T18:14:08+01:00", "2026-11-23 18:14:08Z", "yesterday", ""}) {
    INFO(bad);
    CHECK(ParseTimestamp(bad).status().reason() == "TIMESTAMP_INVALID");
  }
}

TEST_CASE("signed statements verify through the whole chain", "[attest][statement]") {
  auto key = signing::PrivateKey::Generate();
  REQUIRE(key.ok());
  auto env = SignStatement(Sample(), {*key});
  REQUIRE(env.ok());
  CHECK(env->payload_type == kInTotoPayloadType);
  auto artifact = core::Digest::FromHex(kHexB).value();
  auto v = VerifyStatement(*env, {key->public_key()}, 1, artifact, kSigilScanV1);
  REQUIRE(v.ok());
  REQUIRE(v->matched_subjects.size() == 1);
  CHECK(v->matched_subjects[0].name == "config.json");
  CHECK(v->key_ids == std::vector<std::string>{key->key_id()});

  auto other_artifact = core::Digest::FromHex(std::string(64, 'c')).value();
  auto mismatch = VerifyStatement(*env, {key->public_key()}, 1, other_artifact, kSigilScanV1);
  CHECK(mismatch.status().code() == Code::kFailedPrecondition);
  CHECK(mismatch.status().reason() == "SUBJECT_MISMATCH");

  CHECK(VerifyStatement(*env, {key->public_key()}, 1, artifact, kSlsaProvenanceV1).status().reason() ==
        "PREDICATE_TYPE_MISMATCH");

  signing::Envelope retyped = *env;
  retyped.payload_type = "application/json";
  auto resigned = signing::SignEnvelope("application/json", env->payload, {*key});
  REQUIRE(resigned.ok());
  CHECK(VerifyStatement(*resigned, {key->public_key()}, 1, artifact, "").status().reason() ==
        "DSSE_PAYLOAD_TYPE");
  CHECK(VerifyStatement(retyped, {key->public_key()}, 1, artifact, "").status().reason() ==
        "SIGNATURE_INVALID");

  signing::Envelope tampered = *env;
  tampered.payload.replace(tampered.payload.find("clean"), 5, "dirty");
  CHECK(VerifyStatement(tampered, {key->public_key()}, 1, artifact, "").status().reason() ==
        "SIGNATURE_INVALID");

  auto wrong_key = signing::PrivateKey::Generate();
  REQUIRE(wrong_key.ok());
  CHECK(VerifyStatement(*env, {wrong_key->public_key()}, 1, artifact, "").status().reason() ==
        "SIGNATURE_INVALID");

  // A signed payload that is not a statement is refused after verification.
  auto not_statement = signing::SignEnvelope(kInTotoPayloadType, R"({"hello":1})", {*key});
  REQUIRE(not_statement.ok());
  CHECK(VerifyStatement(*not_statement, {key->public_key()}, 1, artifact, "").status().reason() ==
        "STATEMENT_INVALID");
}

Provenance SampleProvenance() {
  Provenance p;
  p.build_type = "https://sigil.dev/buildtypes/training/v1";
  p.external_parameters_json = R"({"epochs":3,"lr":0.0003})";
  p.resolved_dependencies = {
      {"training-code", "git+https://git.example/ml/train", {{"gitCommit", std::string(40, 'd')}}, "", "", "", ""},
      {"dataset", "", {{"sha256", kHexA}}, "", "", "", ""},
  };
  p.builder.id = "https://sigil.dev/builders/gpu-cluster-1";
  p.builder.version = {{"sigil", "0.1.0"}};
  p.metadata.invocation_id = "run-42";
  p.metadata.started_on = core::ParseRfc3339("2026-11-20T10:00:00Z").value();
  p.metadata.finished_on = core::ParseRfc3339("2026-11-21T10:00:00Z").value();
  return p;
}

TEST_CASE("SLSA provenance v1 builds and parses", "[attest][slsa]") {
  auto text = BuildProvenance(SampleProvenance());
  REQUIRE(text.ok());
  auto doc = core::ParseJson(*text).value();
  CHECK(doc["buildDefinition"]["buildType"] == "https://sigil.dev/buildtypes/training/v1");
  CHECK(doc["buildDefinition"]["externalParameters"]["epochs"] == 3);
  CHECK(doc["buildDefinition"]["resolvedDependencies"][0]["digest"]["gitCommit"] == std::string(40, 'd'));
  CHECK(doc["runDetails"]["builder"]["id"] == "https://sigil.dev/builders/gpu-cluster-1");
  CHECK(doc["runDetails"]["metadata"]["startedOn"] == "2026-11-20T10:00:00Z");

  auto back = ParseProvenance(*text);
  REQUIRE(back.ok());
  CHECK(back->build_type == SampleProvenance().build_type);
  CHECK(back->builder.version.at("sigil") == "0.1.0");
  REQUIRE(back->resolved_dependencies.size() == 2);
  CHECK(back->resolved_dependencies[0].uri == "git+https://git.example/ml/train");
  CHECK(back->metadata.finished_on == SampleProvenance().metadata.finished_on);
  CHECK(back->internal_parameters_json.empty());
}

TEST_CASE("SLSA provenance requires buildType and externalParameters and builder.id", "[attest][slsa]") {
  Provenance no_type = SampleProvenance();
  no_type.build_type.clear();
  CHECK(BuildProvenance(no_type).status().reason() == "PROVENANCE_INVALID");
  Provenance no_builder = SampleProvenance();
  no_builder.builder.id.clear();
  CHECK(BuildProvenance(no_builder).status().reason() == "PROVENANCE_INVALID");
  Provenance no_params = SampleProvenance();
  no_params.external_parameters_json.clear();
  CHECK(BuildProvenance(no_params).status().reason() == "PROVENANCE_INVALID");
  Provenance bad_dep = SampleProvenance();
  bad_dep.resolved_dependencies.push_back({"nothing", "", {}, "", "", "", ""});
  CHECK(BuildProvenance(bad_dep).status().reason() == "PROVENANCE_INVALID");

  Json good = core::ParseJson(BuildProvenance(SampleProvenance()).value()).value();
  const std::pair<const char*, std::function<void(Json&)>> cases[] = {
      {"no buildType", [](Json& d) { d["buildDefinition"].erase("buildType"); }},
      {"no externalParameters", [](Json& d) { d["buildDefinition"].erase("externalParameters"); }},
      {"externalParameters not object", [](Json& d) { d["buildDefinition"]["externalParameters"] = 1; }},
      {"no builder id", [](Json& d) { d["runDetails"]["builder"].erase("id"); }},
      {"no runDetails", [](Json& d) { d.erase("runDetails"); }},
      {"offset timestamp", [](Json& d) { d["runDetails"]["metadata"]["startedOn"] = "2026-11-20T10:00:00+02:00"; }},
      {"bad dependency digest", [](Json& d) { d["buildDefinition"]["resolvedDependencies"][1]["digest"]["sha256"] = "xyz"; }},
  };
  for (const auto& [what, change] : cases) {
    INFO(what);
    Json doc = good;
    change(doc);
    auto r = ParseProvenance(core::DumpJson(doc));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK(r.status().reason() == "PROVENANCE_INVALID");
  }
}

TEST_CASE("SLSA VSA v1 builds and parses", "[attest][slsa]") {
  Vsa v;
  v.verifier_id = "https://sigil.dev/verifier";
  v.verifier_version = {{"sigil", "0.1.0"}};
  v.time_verified = core::ParseRfc3339("2026-11-23T12:00:00Z").value();
  v.resource_uri = "sigil://health/triage-llm@sha256:" + kHexA;
  v.policy = {"", "https://sigil.example/policies/prod", {{"sha256", kHexB}}, "", "", "", ""};
  v.input_attestations = {{"", "", {{"sha256", kHexB}}, "", "", "", ""}};
  v.verification_result = std::string(kVsaPassed);
  v.verified_levels = {"SLSA_BUILD_LEVEL_2"};
  v.dependency_levels = {{"SLSA_BUILD_LEVEL_1", 2}};
  v.slsa_version = "1.0";
  auto text = BuildVsa(v);
  REQUIRE(text.ok());
  auto doc = core::ParseJson(*text).value();
  CHECK(doc["verifier"]["id"] == "https://sigil.dev/verifier");
  CHECK(doc["timeVerified"] == "2026-11-23T12:00:00Z");
  CHECK(doc["verificationResult"] == "PASSED");
  CHECK(doc["policy"]["uri"] == "https://sigil.example/policies/prod");

  auto back = ParseVsa(*text);
  REQUIRE(back.ok());
  CHECK(back->verifier_id == v.verifier_id);
  CHECK(back->time_verified == v.time_verified);
  CHECK(back->resource_uri == v.resource_uri);
  CHECK(back->verified_levels == v.verified_levels);
  CHECK(back->dependency_levels.at("SLSA_BUILD_LEVEL_1") == 2);
  CHECK(back->policy.digest.at("sha256") == kHexB);

  Vsa bad = v;
  bad.verification_result = "MAYBE";
  CHECK(BuildVsa(bad).status().reason() == "VSA_INVALID");
  bad = v;
  bad.verifier_id.clear();
  CHECK(BuildVsa(bad).status().reason() == "VSA_INVALID");
  bad = v;
  bad.policy = {};
  CHECK(BuildVsa(bad).status().reason() == "VSA_INVALID");

  for (const char* field : {"verifier", "timeVerified", "resourceUri", "policy", "verificationResult",
                            "verifiedLevels"}) {
    INFO(field);
    Json d = doc;
    d.erase(field);
    CHECK(ParseVsa(core::DumpJson(d)).status().reason() == "VSA_INVALID");
  }
}

}  // namespace
}  // namespace sigil::attest
