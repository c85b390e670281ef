#include "attest/model_signing.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "attest/statement.h"
#include "core/digest.h"
#include "core/fs.h"
#include "core/json.h"
#include "signing/base64.h"
#include "signing/dsse.h"
#include "tests/support/temp_dir.h"

namespace sigil::attest {
namespace {

using core::Code;
using core::Json;

Json Vector() {
  auto text = core::ReadFile(SIGIL_VECTORS_DIR "/oms-files-serialization.json");
  REQUIRE(text.ok());
  auto doc = core::ParseJson(*text);
  REQUIRE(doc.ok());
  return *doc;
}

void Write(const std::string& path, std::string_view data) {
  REQUIRE(core::MakeDirs(core::DirName(path)).ok());
  REQUIRE(core::WriteFileAtomic(path, data).ok());
}

// The vector's sample_model folder under dir; returns its path.
std::string BuildSampleModel(const testing::TempDir& dir, const Json& v) {
  std::string model = dir.Sub(v["model_name"].get<std::string>());
  REQUIRE(core::MakeDirs(model).ok());
  for (const auto& [name, content] : v["files"].items()) Write(model + "/" + name, content.get<std::string>());
  return model;
}

std::vector<std::string> Names(const ModelManifest& m) {
  std::vector<std::string> out;
  for (const ModelResource& r : m.resources) out.push_back(r.name);
  return out;
}

signing::PrivateKey EcKey() { return signing::PrivateKey::Generate().value(); }

TEST_CASE("files serialization matches the OpenSSF known answer", "[attest][oms]") {
  Json v = Vector();
  testing::TempDir dir;
  std::string model = BuildSampleModel(dir, v);
  // Default ignores must not change the answer.
  Write(model + "/.git/HEAD", "ref: refs/heads/main\n");
  Write(model + "/.gitignore", "*.tmp\n");
  Write(model + "/.gitattributes", "*.bin filter=lfs\n");
  Write(model + "/.github/workflows/ci.yml", "on: push\n");

  for (int threads : {1, 2, 7}) {
    INFO("threads " << threads);
    SerializationOptions options;
    options.threads = threads;
    auto m = SerializeModel(model, options);
    REQUIRE(m.ok());
    CHECK(m->model_name == "sample_model");
    REQUIRE(m->resources.size() == v["resources"].size());
    for (size_t i = 0; i < m->resources.size(); ++i) {
      INFO(i);
      CHECK(m->resources[i].name == v["resources"][i]["name"].get<std::string>());
      CHECK(m->resources[i].algorithm == v["resources"][i]["algorithm"].get<std::string>());
      CHECK(m->resources[i].digest_hex == v["resources"][i]["digest"].get<std::string>());
    }
    CHECK(m->root.Hex() == v["root_sha256"].get<std::string>());

    auto statement = ModelStatement(*m);
    REQUIRE(statement.ok());
    auto st = ParseStatement(*statement);
    REQUIRE(st.ok());
    CHECK(st->predicate_type == "https://model_signing/signature/v1.0");
    REQUIRE(st->subjects.size() == 1);
    CHECK(st->subjects[0].name == "sample_model");
    CHECK(st->subjects[0].digest.at("sha256") == v["root_sha256"].get<std::string>());
    auto predicate = core::ParseJson(st->predicate_json).value();
    CHECK(predicate["serialization"]["method"] == "files");
    CHECK(predicate["serialization"]["hash_type"] == "sha256");
    CHECK(predicate["resources"] == v["resources"]);
  }
}

TEST_CASE("serialization edge cases from the vector", "[attest][oms]") {
  Json v = Vector();
  const Json& edge = v["edge_cases"];
  testing::TempDir dir;

  std::string empty = dir.Sub("empty");
  REQUIRE(core::MakeDirs(empty).ok());
  auto m = SerializeModel(empty, {});
  REQUIRE(m.ok());
  CHECK(m->resources.empty());
  CHECK(m->root.Hex() == edge["empty_folder_root"].get<std::string>());

  std::string one = dir.Sub("one");
  Write(one + "/weights.bin", "");
  m = SerializeModel(one, {});
  REQUIRE(m.ok());
  REQUIRE(m->resources.size() == 1);
  CHECK(m->resources[0].digest_hex == core::Sha256::Of("").Hex());
  CHECK(m->root.Hex() == edge["single_empty_file_root"].get<std::string>());

  // A single-file model is the resource ".".
  m = SerializeModel(one + "/weights.bin", {});
  REQUIRE(m.ok());
  CHECK(m->model_name == "weights.bin");
  CHECK(Names(*m) == std::vector<std::string>{"."});
  CHECK(m->root.Hex() == edge["single_empty_file_root"].get<std::string>());

  std::string sorted = dir.Sub("sorted");
  std::vector<std::string> want;
  for (const Json& name : edge["sort_order_example"]) want.push_back(name.get<std::string>());
  for (auto it = want.rbegin(); it != want.rend(); ++it) Write(sorted + "/" + *it, *it);
  m = SerializeModel(sorted, {});
  REQUIRE(m.ok());
  CHECK(Names(*m) == want);
}

TEST_CASE("ignore paths match by path component prefix", "[attest][oms]") {
  testing::TempDir dir;
  std::string model = dir.Sub("m");
  Write(model + "/d/x", "1");
  Write(model + "/d0/y", "2");
  Write(model + "/d/sub/z", "3");
  Write(model + "/keep", "4");
  Write(model + "/sub/.git/config", "5");  // only top-level .git is a default ignore
  SerializationOptions options;
  options.ignore_paths = {"d", "./keep/"};
  auto m = SerializeModel(model, options);
  REQUIRE(m.ok());
  CHECK(Names(*m) == std::vector<std::string>{"d0/y", "sub/.git/config"});
  CHECK(m->ignore_paths == std::vector<std::string>{"d", "keep"});
  options.ignore_paths = {"../outside"};
  CHECK(SerializeModel(model, options).status().code() == Code::kInvalidArgument);
}

TEST_CASE("shards serialization names byte ranges", "[attest][oms]") {
  Json v = Vector();
  testing::TempDir dir;
  std::string model = BuildSampleModel(dir, v);
  Write(model + "/empty", "");
  SerializationOptions options;
  options.method = SerializationMethod::kShards;
  options.shard_size = 8;
  auto m = SerializeModel(model, options);
  REQUIRE(m.ok());
  // "This is file f00 in d0." is 23 bytes: 0-8, 8-16, 16-23. Empty files give nothing.
  REQUIRE(m->resources.size() >= 3);
  CHECK(m->resources[0].name == "d0/f00:0:8");
  CHECK(m->resources[1].name == "d0/f00:8:16");
  CHECK(m->resources[2].name == "d0/f00:16:23");
  CHECK(m->resources[0].algorithm == "sha256-sharded-8");
  CHECK(m->resources[0].digest_hex == core::Sha256::Of("This is ").Hex());
  CHECK(m->resources[2].digest_hex == core::Sha256::Of(" in d0.").Hex());
  for (const ModelResource& r : m->resources) CHECK(r.name.rfind("empty", 0) != 0);
  CHECK(m->resources.size() == 10 * 3);  // 23- and 24-byte files, 3 shards each

  // Starts and ends sort as integers, not strings.
  std::vector<ModelResource> rs;
  for (const char* name : {"a.txt:0:8", "a/b:8:16", "a/b:0:8", "a-b:0:8", "a/b:16:24"}) {
    rs.push_back({name, "sha256-sharded-8", ""});
  }
  SortResources(&rs);
  std::vector<std::string> order;
  for (const ModelResource& r : rs) order.push_back(r.name);
  CHECK(order == std::vector<std::string>{"a/b:0:8", "a/b:8:16", "a/b:16:24", "a-b:0:8", "a.txt:0:8"});
}

TEST_CASE("file names that JSON cannot carry faithfully are refused", "[attest][oms]") {
  testing::TempDir dir;
  Write(dir.Sub("m/ok-\xc3\xa9"), "x");  // UTF-8 e-acute is fine
  auto m = SerializeModel(dir.Sub("m"), {});
  REQUIRE(m.ok());
  CHECK(Names(*m) == std::vector<std::string>{"ok-\xc3\xa9"});
  Write(dir.Sub("m/bad-\xff"), "y");
  auto r = SerializeModel(dir.Sub("m"), {});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().reason() == "MODEL_RESOURCE_NAME");
}

TEST_CASE("symlinks are refused unless allowed", "[attest][oms]") {
  testing::TempDir dir;
  std::string model = dir.Sub("m");
  Write(model + "/real", "data");
  REQUIRE(::symlink("real", (model + "/link").c_str()) == 0);
  auto refused = SerializeModel(model, {});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().reason() == "MODEL_SYMLINK");
  SerializationOptions options;
  options.allow_symlinks = true;
  auto m = SerializeModel(model, options);
  REQUIRE(m.ok());
  CHECK(Names(*m) == std::vector<std::string>{"link", "real"});
  CHECK(m->resources[0].digest_hex == m->resources[1].digest_hex);
}

struct SignedModel {
  testing::TempDir dir;
  std::string model;
  std::string sig_path;
  signing::PrivateKey key = EcKey();
  std::string bundle;

  explicit SignedModel(SerializationOptions options = {}) {
    model = BuildSampleModel(dir, Vector());
    sig_path = model + "/model.sig";
    REQUIRE(SignModel(model, key, sig_path, options).ok());
    bundle = core::ReadFile(sig_path).value();
  }
};

TEST_CASE("a signed model verifies and the bundle has the v0.3 shape", "[attest][oms]") {
  SignedModel s;
  Json b = core::ParseJson(s.bundle).value();
  CHECK(b["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json");
  CHECK(b["verificationMaterial"]["publicKey"]["hint"] == s.key.key_id());
  CHECK(b["verificationMaterial"]["tlogEntries"] == Json::array());
  CHECK(b["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json");
  REQUIRE(b["dsseEnvelope"]["signatures"].size() == 1);
  CHECK_FALSE(b["dsseEnvelope"]["signatures"][0].contains("keyid"));  // as the reference signer
  auto sig = signing::Base64Decode(b["dsseEnvelope"]["signatures"][0]["sig"].get<std::string>());
  REQUIRE(sig.ok());
  CHECK(static_cast<unsigned char>((*sig)[0]) == 0x30);  // DER

  auto verified = VerifyModelFile(s.model, s.sig_path, s.key.public_key());
  REQUIRE(verified.ok());
  CHECK(verified->root.Hex() == Vector()["root_sha256"].get<std::string>());
  CHECK(verified->resources.size() == 10);

  // The signature file is ignored on both sides; extra defaults too.
  Write(s.model + "/.git/index", "x");
  CHECK(VerifyModelFile(s.model, s.sig_path, s.key.public_key()).ok());
  // The signature file outside the model works the same.
  std::string outside = s.dir.Sub("outside.sig");
  REQUIRE(core::WriteFileAtomic(outside, s.bundle).ok());
  CHECK(VerifyModelFile(s.model, outside, s.key.public_key()).ok());
}

TEST_CASE("shards-signed model verifies", "[attest][oms]") {
  SerializationOptions options;
  options.method = SerializationMethod::kShards;
  options.shard_size = 10;
  SignedModel s(options);
  auto verified = VerifyModelFile(s.model, s.sig_path, s.key.public_key());
  REQUIRE(verified.ok());
  CHECK(verified->method == SerializationMethod::kShards);
  CHECK(verified->shard_size == 10);
}

TEST_CASE("a bit flip in a model file fails verification naming the file", "[attest][oms]") {
  SignedModel s;
  std::string path = s.model + "/d0/f01";
  std::string data = core::ReadFile(path).value();
  data[3] ^= 0x01;
  REQUIRE(core::WriteFileAtomic(path, data).ok());
  auto r = VerifyModelFile(s.model, s.sig_path, s.key.public_key());
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kUnauthenticated);
  CHECK(r.status().reason() == "MODEL_MISMATCH");
  CHECK(r.status().message().find("d0/f01") != std::string::npos);
  auto detail = core::ParseJson(r.status().detail()).value();
  CHECK(detail["resource"] == "d0/f01");
  CHECK(detail["problem"] == "modified");
}

TEST_CASE("a bit flip under shards names the file and range", "[attest][oms]") {
  SerializationOptions options;
  options.method = SerializationMethod::kShards;
  options.shard_size = 8;
  SignedModel s(options);
  std::string path = s.model + "/d1/f12";
  std::string data = core::ReadFile(path).value();
  data[20] ^= 0x80;
  REQUIRE(core::WriteFileAtomic(path, data).ok());
  auto r = VerifyModelFile(s.model, s.sig_path, s.key.public_key());
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().reason() == "MODEL_MISMATCH");
  CHECK(r.status().message().find("'d1/f12' (bytes 16-23)") != std::string::npos);
}

TEST_CASE("added and removed files fail verification", "[attest][oms]") {
  {
    SignedModel s;
    Write(s.model + "/d1/extra", "surprise");
    auto r = VerifyModelFile(s.model, s.sig_path, s.key.public_key());
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().reason() == "MODEL_MISMATCH");
    CHECK(r.status().message().find("d1/extra") != std::string::npos);
    CHECK(core::ParseJson(r.status().detail()).value()["problem"] == "unexpected");
  }
  {
    SignedModel s;
    REQUIRE(core::RemoveFile(s.model + "/f2").ok());
    auto r = VerifyModelFile(s.model, s.sig_path, s.key.public_key());
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().reason() == "MODEL_MISMATCH");
    CHECK(r.status().message().find("'f2'") != std::string::npos);
    CHECK(core::ParseJson(r.status().detail()).value()["problem"] == "missing");
  }
}

TEST_CASE("model bundles fail with the wrong key", "[attest][oms]") {
  SignedModel s;
  auto other = EcKey();
  auto r = VerifyModel(s.model, s.bundle, other.public_key(), {{"model.sig"}, 2});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kUnauthenticated);
  CHECK(r.status().reason() == "BUNDLE_KEY_MISMATCH");

  // Without the hint the signature itself fails.
  Json b = core::ParseJson(s.bundle).value();
  b["verificationMaterial"]["publicKey"].erase("hint");
  r = VerifyModel(s.model, core::DumpJson(b), other.public_key(), {{"model.sig"}, 2});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().reason() == "SIGNATURE_INVALID");
  CHECK(VerifyModel(s.model, core::DumpJson(b), s.key.public_key(), {{"model.sig"}, 2}).ok());
}

TEST_CASE("model bundles with a tampered payload fail", "[attest][oms]") {
  SignedModel s;
  Json b = core::ParseJson(s.bundle).value();
  std::string payload = signing::Base64Decode(b["dsseEnvelope"]["payload"].get<std::string>()).value();
  size_t at = payload.find("d0/f00");
  REQUIRE(at != std::string::npos);
  payload[at + 5] = '9';
  b["dsseEnvelope"]["payload"] = signing::Base64Encode(payload);
  auto r = VerifyModel(s.model, core::DumpJson(b), s.key.public_key(), {{"model.sig"}, 2});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().reason() == "SIGNATURE_INVALID");
}

TEST_CASE("model bundles must carry exactly one signature", "[attest][oms]") {
  SignedModel s;
  Json b = core::ParseJson(s.bundle).value();
  Json sigs = b["dsseEnvelope"]["signatures"];
  sigs.push_back(sigs[0]);
  b["dsseEnvelope"]["signatures"] = sigs;
  auto r = VerifyModel(s.model, core::DumpJson(b), s.key.public_key(), {{"model.sig"}, 2});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kInvalidArgument);
  CHECK(r.status().reason() == "BUNDLE_INVALID");
  b["dsseEnvelope"]["signatures"] = Json::array();
  CHECK(VerifyModel(s.model, core::DumpJson(b), s.key.public_key(), {}).status().reason() ==
        "BUNDLE_INVALID");
}

TEST_CASE("model bundle mediaType is checked", "[attest][oms]") {
  SignedModel s;
  Json b = core::ParseJson(s.bundle).value();
  b["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.2";
  CHECK(VerifyModel(s.model, core::DumpJson(b), s.key.public_key(), {{"model.sig"}, 2}).ok());
  for (const char* bad : {"application/json", "application/vnd.dev.sigstore.bundle.v0.4+json", ""}) {
    b["mediaType"] = bad;
    CHECK(VerifyModel(s.model, core::DumpJson(b), s.key.public_key(), {}).status().reason() ==
          "BUNDLE_MEDIA_TYPE");
  }
}

TEST_CASE("malformed bundles are refused", "[attest][oms]") {
  SignedModel s;
  for (const char* bad : {"", "{", "[]", R"({"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"})",
                          R"({"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{},"dsseEnvelope":{"payload":"!!","payloadType":"x","signatures":[]}})"}) {
    INFO(bad);
    auto r = VerifyModel(s.model, bad, s.key.public_key(), {});
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kInvalidArgument);
    bool expected = r.status().reason() == "BUNDLE_INVALID" || r.status().reason() == "BUNDLE_MEDIA_TYPE";
    CHECK(expected);
  }
}

// Signs an arbitrary statement payload into a bundle, as a hostile or
// foreign signer might.
std::string BundleFor(const Json& statement, const signing::PrivateKey& key) {
  auto env = signing::SignEnvelope(kInTotoPayloadType, core::DumpJson(statement), {key});
  REQUIRE(env.ok());
  Json bundle = {{"mediaType", kBundleMediaTypeV03},
                 {"verificationMaterial", {{"publicKey", {{"hint", key.key_id()}}}, {"tlogEntries", Json::array()}}},
                 {"dsseEnvelope", signing::EnvelopeToJson(*env)}};
  return core::DumpJson(bundle);
}

Json StatementOf(const ModelManifest& m) { return core::ParseJson(ModelStatement(m).value()).value(); }

TEST_CASE("resource names with '..' are refused", "[attest][oms]") {
  SignedModel s;
  ModelManifest m = SerializeModel(s.model, {{}, kDefaultShardSize, false, {"model.sig"}, 2}).value();
  for (const char* evil : {"../outside", "d0/../../x", "/etc/passwd", "d0//f00"}) {
    INFO(evil);
    ModelManifest bad = m;
    bad.resources[0].name = evil;
    bad.root = ResourcesRoot(bad.resources).value();
    auto r = VerifyModel(s.model, BundleFor(StatementOf(bad), s.key), s.key.public_key(), {{"model.sig"}, 2});
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK(r.status().reason() == "MODEL_RESOURCE_NAME");
  }
}

TEST_CASE("resources that do not hash to the subject are refused", "[attest][oms]") {
  SignedModel s;
  ModelManifest m = SerializeModel(s.model, {{}, kDefaultShardSize, false, {"model.sig"}, 2}).value();
  Json st = StatementOf(m);
  st["predicate"]["resources"][0]["digest"] = std::string(64, '0');
  auto r = VerifyModel(s.model, BundleFor(st, s.key), s.key.public_key(), {{"model.sig"}, 2});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().reason() == "MODEL_ROOT_MISMATCH");

  // ROOT is taken over the resources in the order listed: reordering them
  // breaks the subject digest, and a root over the new order verifies.
  Json shuffled = StatementOf(m);
  std::swap(shuffled["predicate"]["resources"][0], shuffled["predicate"]["resources"][9]);
  CHECK(VerifyModel(s.model, BundleFor(shuffled, s.key), s.key.public_key(), {{"model.sig"}, 2})
            .status()
            .reason() == "MODEL_ROOT_MISMATCH");
  std::vector<ModelResource> listed = m.resources;
  std::swap(listed[0], listed[9]);
  shuffled["subject"][0]["digest"]["sha256"] = ResourcesRoot(listed).value().Hex();
  auto reordered = VerifyModel(s.model, BundleFor(shuffled, s.key), s.key.public_key(), {{"model.sig"}, 2});
  REQUIRE(reordered.ok());
  CHECK(reordered->resources.front().name == "d0/f00");

  Json two_subjects = StatementOf(m);
  two_subjects["subject"].push_back(two_subjects["subject"][0]);
  CHECK(VerifyModel(s.model, BundleFor(two_subjects, s.key), s.key.public_key(), {{"model.sig"}, 2})
            .status()
            .reason() == "BUNDLE_INVALID");

  Json other_type = StatementOf(m);
  other_type["predicateType"] = "https://model_signing/Digests/v0.1";
  CHECK(VerifyModel(s.model, BundleFor(other_type, s.key), s.key.public_key(), {{"model.sig"}, 2})
            .status()
            .reason() == "STATEMENT_INVALID");
}

TEST_CASE("protobuf-JSON numbers such as 1000000000.0 are accepted", "[attest][oms]") {
  SerializationOptions options;
  options.method = SerializationMethod::kShards;  // default shard size 1,000,000,000
  SignedModel s(options);
  Json b = core::ParseJson(s.bundle).value();
  Json st = core::ParseJson(
                signing::Base64Decode(b["dsseEnvelope"]["payload"].get<std::string>()).value())
                .value();
  CHECK(st["predicate"]["serialization"]["shard_size"] == 1000000000);
  // Rewrite as a float the way Python's protobuf JSON does, and re-sign.
  std::string text = core::DumpJson(st);
  size_t at = text.find("\"shard_size\":1000000000");
  REQUIRE(at != std::string::npos);
  text.insert(at + std::string("\"shard_size\":1000000000").size(), ".0");
  auto env = signing::SignEnvelope(kInTotoPayloadType, text, {s.key});
  REQUIRE(env.ok());
  b["dsseEnvelope"] = signing::EnvelopeToJson(*env);
  auto r = VerifyModel(s.model, core::DumpJson(b), s.key.public_key(), {{"model.sig"}, 2});
  REQUIRE(r.ok());
  CHECK(r->shard_size == 1000000000);

  st["predicate"]["serialization"]["shard_size"] = 1000000000.5;
  CHECK(VerifyModel(s.model, BundleFor(st, s.key), s.key.public_key(), {{"model.sig"}, 2}).status().reason() ==
        "BUNDLE_INVALID");
}

TEST_CASE("model signing wants an EC key", "[attest][oms]") {
  testing::TempDir dir;
  Write(dir.Sub("m/w"), "x");
  auto ed = signing::PrivateKey::Generate(signing::Algorithm::kEd25519);
  REQUIRE(ed.ok());
  core::Status s = SignModel(dir.Sub("m"), *ed, dir.Sub("m.sig"));
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(s.reason() == "KEY_UNSUPPORTED");
  auto p384 = signing::PrivateKey::Generate(signing::Algorithm::kEcdsaP384Sha384);
  REQUIRE(p384.ok());
  REQUIRE(SignModel(dir.Sub("m"), *p384, dir.Sub("m.sig")).ok());
  CHECK(VerifyModelFile(dir.Sub("m"), dir.Sub("m.sig"), p384->public_key()).ok());
}

}  // namespace
}  // namespace sigil::attest
