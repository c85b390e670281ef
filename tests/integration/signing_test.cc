// Signing and offline verification end to end: a CI key made with
// `sigil key generate` and trusted by the server signs provenance at push
// time and a model signature; a client holding only a trusted-keys file
// pulls with --verify and re-verifies offline once the server is gone, and
// every flipped byte fails naming its check.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cli/http_client.h"
#include "core/fs.h"
#include "signing/base64.h"
#include "tests/integration/process.h"
#include "tests/support/temp_dir.h"

namespace sigil::testing {
namespace {

using nlohmann::json;

struct Env {
  TempDir tmp;
  Sigild server{tmp.Sub("data")};
  std::map<std::string, std::string> env{{"XDG_STATE_HOME", tmp.Sub("state")}};

  Env() { REQUIRE(server.Start()); }

  RunResult Sigil(std::vector<std::string> args) {
    args.insert(args.begin(), {"--server", server.url()});
    RunResult r = RunSigil(args, env, tmp.path());
    INFO("sigil " << args[2] << " stdout: " << r.out << "\nstderr: " << r.err);
    return r;
  }
};

// Changes one character of a base64 string to another base64 character.
std::string FlipBase64Char(std::string b64) {
  size_t i = b64.size() / 2;
  b64[i] = b64[i] == 'A' ? 'B' : 'A';
  return b64;
}

void FlipFileByte(const std::string& path, size_t offset) {
  std::string bytes = ReadWholeFile(path);
  REQUIRE(offset < bytes.size());
  bytes[offset] ^= 0x01;
  WriteTextFile(path, bytes);
}

constexpr char kProvenance[] = R"({
  "buildDefinition": {
    "buildType": "https://sigil.dev/training/v1",
    "externalParameters": {"learning_rate": 0.001, "epochs": 3},
    "resolvedDependencies": [
      {"uri": "git+https://git.example/train.git", "digest": {"gitCommit": "0123456789abcdef0123456789abcdef01234567"}}
    ]
  },
  "runDetails": {"builder": {"id": "https://ci.example/runner"}}
})";

TEST_CASE("provenance and model signatures verify on pull and offline; flipped bytes fail",
          "[integration][signing]") {
  Env e;
  std::string keys = e.tmp.Sub("keys");
  REQUIRE(core::MakeDirs(keys).ok());
  RunResult gen = e.Sigil({"key", "generate", "--type", "ecdsa-p256", "--out", keys + "/ci"});
  REQUIRE(gen.exit_code == 0);
  CHECK(gen.out.size() == 65);  // the key id and a newline
  struct stat st {};
  REQUIRE(::stat((keys + "/ci.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(e.Sigil({"key", "generate", "--out", keys + "/ci"}).exit_code == 4);  // never overwrites

  // The operator trusts the CI key on the server.
  cli::HttpClient http(e.server.url(), TokenOptions());
  std::string trust = json{
      {"public_key", ReadWholeFile(keys + "/ci.pub")},
      {"name", "ci"},
      {"predicate_types", {"*"}},
      {"repositories",
       {"team/**"}}}.dump();
  auto added = http.Perform(cli::HttpRequest{.method = "POST",
                                             .path = "/api/v1/trust/keys",
                                             .headers = {"Content-Type: application/json"},
                                             .body = trust});
  REQUIRE(added.ok());
  REQUIRE(added->status == 201);

  std::string model = e.tmp.Sub("model");
  WriteTextFile(model + "/config.json", "{\"hidden\": 64}\n");
  WriteRandomFile(model + "/weights/model.safetensors.bin", 300000, 7);
  WriteTextFile(e.tmp.Sub("prov.json"), kProvenance);
  WriteTextFile(e.tmp.Sub("bad-prov.json"), R"({"runDetails": {"builder": {"id": "x"}}})");
  CHECK(e.Sigil({"push", model, "team/m:0", "--provenance", e.tmp.Sub("bad-prov.json"), "--key",
                 keys + "/ci.key"})
            .exit_code == 1);
  REQUIRE(
      e.Sigil({"push", model, "team/m:1", "--provenance", e.tmp.Sub("prov.json"), "--key", keys + "/ci.key"})
          .exit_code == 0);
  RunResult signed_ref = e.Sigil({"sign", "team/m:1", "--key", keys + "/ci.key"});
  REQUIRE(signed_ref.exit_code == 0);
  CHECK(signed_ref.out.find("https://model_signing/signature/v1.0") != std::string::npos);

  WriteTextFile(e.tmp.Sub("review.json"), R"({"reviewer": "alice", "approved": true})");
  RunResult attested = e.Sigil({"attest", "team/m:1", "--predicate-type", "https://example.com/review/v1",
                                "--predicate", e.tmp.Sub("review.json"), "--key", keys + "/ci.key"});
  REQUIRE(attested.exit_code == 0);
  CHECK(attested.out.find("https://example.com/review/v1") != std::string::npos);
  WriteTextFile(e.tmp.Sub("list.json"), "[1, 2]");
  CHECK(e.Sigil({"attest", "team/m:1", "--predicate-type", "https://example.com/review/v1", "--predicate",
                 e.tmp.Sub("list.json"), "--key", keys + "/ci.key"})
            .exit_code == 1);

  // The client: only a trusted-keys file, made from the server's keys and
  // the CI public key.
  std::string client = e.tmp.Sub("client");
  REQUIRE(core::MakeDirs(client).ok());
  std::string trusted = client + "/keys.json";
  REQUIRE(e.Sigil({"key", "server", "--trusted-keys", trusted}).exit_code == 0);
  std::string out = client + "/model";
  SECTION("without the CI key, pull --verify refuses and writes nothing") {
    RunResult refused = e.Sigil({"pull", "team/m:1", out, "--verify", "--trusted-keys", trusted});
    CHECK(refused.exit_code == 1);
    CHECK(refused.err.find("VERIFY_FAILED") != std::string::npos);
    CHECK(refused.err.find("signature") != std::string::npos);
    CHECK(::stat(out.c_str(), &st) != 0);
  }
  SECTION("with it, pull --verify and offline verify pass, and each flip fails") {
    REQUIRE(e.Sigil({"key", "trust", keys + "/ci.pub", "--trusted-keys", trusted, "--name", "ci",
                     "--repository", "team/**"})
                .exit_code == 0);
    RunResult pulled = e.Sigil({"pull", "team/m:1", out, "--verify", "--trusted-keys", trusted});
    REQUIRE(pulled.exit_code == 0);
    CHECK(pulled.err.find("verified: every check passed") != std::string::npos);
    CHECK(ReadWholeFile(out + "/weights/model.safetensors.bin") ==
          ReadWholeFile(model + "/weights/model.safetensors.bin"));
    json evidence = json::parse(ReadWholeFile(out + "/.sigil/evidence.json"));
    REQUIRE(evidence["attestations"].size() >= 2);
    std::vector<std::string> types;
    for (const auto& a : evidence["attestations"]) types.push_back(a["predicate_type"]);
    CHECK(std::count(types.begin(), types.end(), "https://slsa.dev/provenance/v1") == 1);
    CHECK(std::count(types.begin(), types.end(), "https://model_signing/signature/v1.0") == 1);
    CHECK(std::count(types.begin(), types.end(), "https://example.com/review/v1") == 1);

    RunResult online = e.Sigil({"verify", "team/m:1", "--trusted-keys", trusted});
    CHECK(online.exit_code == 0);

    e.server.Kill9();
    RunResult offline = e.Sigil({"verify", out, "--trusted-keys", trusted});
    CHECK(offline.exit_code == 0);
    CHECK(offline.out.find("ok    files: 2 files match the manifest") != std::string::npos);

    const std::string weights = out + "/weights/model.safetensors.bin";
    FlipFileByte(weights, 12345);
    RunResult flipped = e.Sigil({"verify", out, "--trusted-keys", trusted});
    CHECK(flipped.exit_code == 1);
    CHECK(flipped.err.find("check 'files' failed") != std::string::npos);
    FlipFileByte(weights, 12345);
    REQUIRE(e.Sigil({"verify", out, "--trusted-keys", trusted}).exit_code == 0);

    const std::string evidence_path = out + "/.sigil/evidence.json";
    const std::string original = ReadWholeFile(evidence_path);
    json tampered = evidence;
    tampered["attestations"][0]["envelope"]["payload"] =
        FlipBase64Char(tampered["attestations"][0]["envelope"]["payload"]);
    WriteTextFile(evidence_path, tampered.dump());
    RunResult payload = e.Sigil({"verify", out, "--trusted-keys", trusted});
    CHECK(payload.exit_code == 1);
    CHECK(payload.err.find("check 'signature 0' failed") != std::string::npos);

    tampered = evidence;
    tampered["attestations"][1]["log_entry"]["leaf"] =
        FlipBase64Char(tampered["attestations"][1]["log_entry"]["leaf"]);
    WriteTextFile(evidence_path, tampered.dump());
    RunResult leaf = e.Sigil({"verify", out, "--trusted-keys", trusted});
    CHECK(leaf.exit_code == 1);
    CHECK(leaf.err.find("check 'log entry 1' failed") != std::string::npos);

    WriteTextFile(evidence_path, original);
    CHECK(e.Sigil({"verify", out, "--trusted-keys", trusted}).exit_code == 0);
  }
}

TEST_CASE("sigil sign DIR and sigil verify DIR --signature work offline", "[integration][signing]") {
  TempDir tmp;
  std::map<std::string, std::string> env{{"XDG_STATE_HOME", tmp.Sub("state")}};
  auto sigil = [&](std::vector<std::string> args) {
    RunResult r = RunSigil(args, env, tmp.path());
    INFO("sigil stdout: " << r.out << "\nstderr: " << r.err);
    return r;
  };
  REQUIRE(sigil({"key", "generate", "--out", tmp.Sub("ci")}).exit_code == 0);
  std::string model = tmp.Sub("model");
  WriteTextFile(model + "/config.json", "{\"hidden\": 64}\n");
  WriteRandomFile(model + "/weights.bin", 50000, 3);
  REQUIRE(sigil({"sign", model, "--key", tmp.Sub("ci.key"), "--out", tmp.Sub("model.sig")}).exit_code == 0);
  RunResult good = sigil({"verify", model, "--signature", tmp.Sub("model.sig"), "--key", tmp.Sub("ci.pub")});
  CHECK(good.exit_code == 0);
  CHECK(good.out.find("verified: every check passed") != std::string::npos);

  REQUIRE(sigil({"key", "generate", "--out", tmp.Sub("other")}).exit_code == 0);
  RunResult wrong_key =
      sigil({"verify", model, "--signature", tmp.Sub("model.sig"), "--key", tmp.Sub("other.pub")});
  CHECK(wrong_key.exit_code == 1);
  CHECK(wrong_key.err.find("check 'key' failed") != std::string::npos);

  WriteTextFile(model + "/notes.txt", "added after signing\n");
  RunResult extra = sigil({"verify", model, "--signature", tmp.Sub("model.sig"), "--key", tmp.Sub("ci.pub")});
  CHECK(extra.exit_code == 1);
  CHECK(extra.err.find("notes.txt") != std::string::npos);
  CHECK(sigil({"verify", model, "--signature", tmp.Sub("model.sig"), "--key", tmp.Sub("ci.pub"),
               "--ignore-paths", "notes.txt"})
            .exit_code == 0);
  REQUIRE(core::RemoveFile(model + "/notes.txt").ok());

  FlipFileByte(model + "/weights.bin", 777);
  RunResult flipped =
      sigil({"verify", model, "--signature", tmp.Sub("model.sig"), "--key", tmp.Sub("ci.pub")});
  CHECK(flipped.exit_code == 1);
  CHECK(flipped.err.find("check 'files' failed") != std::string::npos);
  CHECK(flipped.err.find("weights.bin") != std::string::npos);
}

TEST_CASE("an encrypted key needs its passphrase", "[integration][signing]") {
  TempDir tmp;
  WriteTextFile(tmp.Sub("pass"), "correct horse\n");
  std::map<std::string, std::string> env{{"XDG_STATE_HOME", tmp.Sub("state")}};
  REQUIRE(RunSigil({"key", "generate", "--type", "ecdsa-p384", "--out", tmp.Sub("k"), "--passphrase-file",
                    tmp.Sub("pass")},
                   env, tmp.path())
              .exit_code == 0);
  CHECK(ReadWholeFile(tmp.Sub("k.key")).find("ENCRYPTED") != std::string::npos);
  WriteTextFile(tmp.Sub("m/a.txt"), "a\n");
  RunResult no_pass =
      RunSigil({"sign", tmp.Sub("m"), "--key", tmp.Sub("k.key"), "--out", tmp.Sub("m.sig")}, env, tmp.path());
  CHECK(no_pass.exit_code == 1);
  CHECK(no_pass.err.find("PASSPHRASE_REQUIRED") != std::string::npos);
  env["SIGIL_KEY_PASSPHRASE"] = "correct horse";
  CHECK(
      RunSigil({"sign", tmp.Sub("m"), "--key", tmp.Sub("k.key"), "--out", tmp.Sub("m.sig")}, env, tmp.path())
          .exit_code == 0);
}

}  // namespace
}  // namespace sigil::testing
