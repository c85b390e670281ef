// Air-gap bundles end to end: two sigild processes (two data dirs, ports,
// log origins, sites). Site A exports a signed version with `sigil export`;
// site B, holding A's log key as a peer log and A's and the CI key in its
// trust store, imports it with `sigil import`, and a client pulls it from B
// with --verify against B's own checkpoint. A tampered bundle is refused
// before anything is submitted; an incremental bundle carries only new blobs.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/http_client.h"
#include "core/fs.h"
#include "tests/integration/process.h"
#include "tests/support/temp_dir.h"

namespace sigil::testing {
namespace {

using nlohmann::json;

constexpr char kProvenance[] = R"({
  "buildDefinition": {"buildType": "https://sigil.dev/training/v1", "externalParameters": {"epochs": 3}},
  "runDetails": {"builder": {"id": "https://ci.example/runner"}}
})";

struct Sites {
  TempDir tmp;
  Sigild a{tmp.Sub("a"), {"--log-origin", "sigil/site-a", "--site", "eu-health-1", "--region", "eu-west"}};
  std::unique_ptr<Sigild> b;
  std::map<std::string, std::string> env{{"XDG_STATE_HOME", tmp.Sub("state")}};

  Sites() {
    REQUIRE(a.Start());
    // B accepts bundles of A's log: its note verifier key, as A publishes it.
    json keys = Get(a, "/api/v1/keys/server");
    WriteTextFile(tmp.Sub("peer-logs"), "# site A\n" + keys["log"]["verifier"].get<std::string>() + "\n");
    b = std::make_unique<Sigild>(tmp.Sub("b"), std::vector<std::string>{"--log-origin", "sigil/site-b", "--site",
                                                                         "eu-health-2", "--region", "eu-west",
                                                                         "--peer-logs", tmp.Sub("peer-logs")});
    REQUIRE(b->Start());
  }

  json Get(Sigild& s, const std::string& path) {
    cli::HttpClient http(s.url(), TokenOptions());
    auto r = http.Perform(cli::HttpRequest{.path = path});
    REQUIRE(r.ok());
    INFO(path << ": " << r->body);
    REQUIRE(r->status == 200);
    return json::parse(r->body);
  }

  void Trust(Sigild& s, const std::string& pem, const std::string& name) {
    cli::HttpClient http(s.url(), TokenOptions());
    std::string body =
        json{{"public_key", pem}, {"name", name}, {"predicate_types", {"*"}}, {"repositories", {"team/**"}}}.dump();
    auto r = http.Perform(cli::HttpRequest{
        .method = "POST", .path = "/api/v1/trust/keys", .headers = {"Content-Type: application/json"}, .body = body});
    REQUIRE(r.ok());
    INFO(r->body);
    REQUIRE(r->status == 201);
  }

  std::string WaitScanned(Sigild& s, const std::string& repo, const std::string& version) {
    std::string state;
    for (int i = 0; i < 400; ++i) {
      state = Get(s, "/api/v1/models/" + repo + "/versions/" + version)["state"];
      if (state != "pending") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return state;
  }

  RunResult Sigil(Sigild& s, std::vector<std::string> args) {
    args.insert(args.begin(), {"--server", s.url()});
    RunResult r = RunSigil(args, env, tmp.path());
    INFO("sigil " << args[2] << " stdout: " << r.out << "\nstderr: " << r.err);
    return r;
  }
};

TEST_CASE("sigil export on one site, sigil import on another, pull --verify there", "[integration][bundle]") {
  Sites s;
  std::string keys = s.tmp.Sub("keys");
  REQUIRE(core::MakeDirs(keys).ok());
  REQUIRE(s.Sigil(*s.b, {"key", "generate", "--type", "ecdsa-p256", "--out", keys + "/ci"}).exit_code == 0);
  const std::string ci_pem = ReadWholeFile(keys + "/ci.pub");
  s.Trust(s.a, ci_pem, "ci");

  std::string model = s.tmp.Sub("model");
  WriteTextFile(model + "/config.json", "{\"hidden\": 64}\n");
  WriteRandomFile(model + "/weights/model.safetensors.bin", 300000, 11);
  WriteTextFile(s.tmp.Sub("prov.json"), kProvenance);
  REQUIRE(s.Sigil(s.a, {"push", model, "team/m:1", "--provenance", s.tmp.Sub("prov.json"), "--key", keys + "/ci.key"})
              .exit_code == 0);
  REQUIRE(s.WaitScanned(s.a, "team/m", "1") == "available");

  const std::string bundle = s.tmp.Sub("out/m1.tar");
  REQUIRE(core::MakeDirs(s.tmp.Sub("out")).ok());
  RunResult exported = s.Sigil(s.a, {"export", "team/m:1", "--to", "eu-west", "--out", bundle});
  REQUIRE(exported.exit_code == 0);
  CHECK(exported.out.find("1 version(s)") != std::string::npos);
  struct stat st {};
  REQUIRE(::stat(bundle.c_str(), &st) == 0);
  CHECK(::stat((bundle + ".tmp").c_str(), &st) != 0);

  // B trusts the CI key and A's attestation key (A's scan report travels too).
  s.Trust(*s.b, ci_pem, "ci");
  json a_keys = s.Get(s.a, "/api/v1/keys/server");
  s.Trust(*s.b, a_keys["attestation"]["public_key"], "site-a");

  SECTION("a tampered bundle is refused before anything is submitted") {
    std::string bytes = ReadWholeFile(bundle);
    // The weights are most of the file: flip a byte in their middle.
    std::string tampered_path = s.tmp.Sub("out/tampered.tar");
    std::string tampered = bytes;
    tampered[tampered.size() / 2] ^= 0x01;
    WriteTextFile(tampered_path, tampered);
    RunResult refused = s.Sigil(*s.b, {"import", tampered_path});
    CHECK(refused.exit_code == 1);
    CHECK((refused.err.find("DIGEST_MISMATCH") != std::string::npos ||
           refused.err.find("BUNDLE_FILE_INVALID") != std::string::npos));
    json repos = s.Get(*s.b, "/api/v1/models");
    CHECK(repos.dump().find("team/m") == std::string::npos);
  }

  SECTION("imported, verified on pull, idempotent, incremental") {
    RunResult imported = s.Sigil(*s.b, {"import", bundle});
    REQUIRE(imported.exit_code == 0);
    CHECK(imported.out.find("1 version(s)") != std::string::npos);
    RunResult again = s.Sigil(*s.b, {"import", bundle, "--json"});
    REQUIRE(again.exit_code == 0);
    json summary = json::parse(again.out);
    CHECK(summary["changed"] == false);
    CHECK(summary["blobs_uploaded"] == 0);

    // B scans the imported version as it scans pushes.
    REQUIRE(s.WaitScanned(*s.b, "team/m", "1") == "available");

    // The client trusts B's keys, the CI key and A's attestation key.
    std::string trusted = s.tmp.Sub("client-keys.json");
    REQUIRE(s.Sigil(*s.b, {"key", "server", "--trusted-keys", trusted}).exit_code == 0);
    REQUIRE(s.Sigil(*s.b, {"key", "trust", keys + "/ci.pub", "--trusted-keys", trusted, "--name", "ci"}).exit_code ==
            0);
    WriteTextFile(keys + "/site-a.pub", a_keys["attestation"]["public_key"].get<std::string>());
    REQUIRE(s.Sigil(*s.b, {"key", "trust", keys + "/site-a.pub", "--trusted-keys", trusted, "--name", "site-a"})
                .exit_code == 0);
    std::string out = s.tmp.Sub("pulled");
    RunResult pulled = s.Sigil(*s.b, {"pull", "team/m:1", out, "--verify", "--trusted-keys", trusted});
    REQUIRE(pulled.exit_code == 0);
    CHECK(pulled.err.find("verified: every check passed") != std::string::npos);
    CHECK(ReadWholeFile(out + "/weights/model.safetensors.bin") ==
          ReadWholeFile(model + "/weights/model.safetensors.bin"));

    // A second version sharing the weights: only its new blobs travel.
    WriteTextFile(model + "/config.json", "{\"hidden\": 128}\n");
    REQUIRE(s.Sigil(s.a, {"push", model, "team/m:2"}).exit_code == 0);
    REQUIRE(s.WaitScanned(s.a, "team/m", "2") == "available");
    const std::string bundle2 = s.tmp.Sub("out/m2.tar");
    RunResult inc = s.Sigil(s.a, {"export", "team/m:2", "--to", "eu-west", "--out", bundle2, "--since", bundle, "--json"});
    REQUIRE(inc.exit_code == 0);
    json inc_summary = json::parse(inc.out);
    CHECK(inc_summary["omitted"].get<int>() >= 1);
    struct stat st2 {};
    REQUIRE(::stat(bundle2.c_str(), &st2) == 0);
    CHECK(st2.st_size < 300000);
    RunResult imported2 = s.Sigil(*s.b, {"import", bundle2});
    REQUIRE(imported2.exit_code == 0);
    CHECK(s.Get(*s.b, "/api/v1/models/team/m/versions/2")["digest"] ==
          s.Get(s.a, "/api/v1/models/team/m/versions/2")["digest"]);
  }
}

TEST_CASE("a site without the exporter's log key refuses its bundle", "[integration][bundle]") {
  TempDir tmp;
  Sigild a{tmp.Sub("a"), {"--log-origin", "sigil/site-a"}};
  Sigild c{tmp.Sub("c"), {"--log-origin", "sigil/site-c"}};
  REQUIRE(a.Start());
  REQUIRE(c.Start());
  std::map<std::string, std::string> env{{"XDG_STATE_HOME", tmp.Sub("state")}};
  WriteTextFile(tmp.Sub("model/weights.bin"), "weights");
  REQUIRE(RunSigil({"--server", a.url(), "push", tmp.Sub("model"), "team/x:1"}, env, tmp.path()).exit_code == 0);
  RunResult exported =
      RunSigil({"--server", a.url(), "export", "team/x:1", "--to", "eu-west", "--out", tmp.Sub("x.tar")}, env,
               tmp.path());
  INFO(exported.err);
  REQUIRE(exported.exit_code == 0);
  RunResult refused = RunSigil({"--server", c.url(), "import", tmp.Sub("x.tar")}, env, tmp.path());
  INFO(refused.err);
  CHECK(refused.exit_code == 1);
  CHECK(refused.err.find("CHECKPOINT_UNTRUSTED") != std::string::npos);
  RunResult bad_usage = RunSigil({"--server", a.url(), "export", "team/x:1"}, env, tmp.path());
  CHECK(bad_usage.exit_code == 2);
}

}  // namespace
}  // namespace sigil::testing
