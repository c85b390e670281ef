// Scanning end to end: the real sigil binary pushes to a real sigild, which
// scans in the background and refuses pulls of quarantined versions; and
// `sigil scan` offline.
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

// A checkpoint whose pickle calls os.system("echo pwned"): GLOBAL, the
// argument tuple, REDUCE. Assembled byte by byte, never loaded.
std::string EvilPickle() {
  std::string arg = "echo pwned";
  return std::string("\x80\x02", 2) + "cos\nsystem\n" + "X" + std::string(1, static_cast<char>(arg.size())) +
         std::string(3, '\0') + arg + "\x85" + "R.";
}

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

  // The version's state once it is no longer pending.
  std::string WaitForScan(const std::string& repo, const std::string& version) {
    cli::HttpClient http(server.url(), TokenOptions());
    std::string state;
    for (int i = 0; i < 200; ++i) {
      auto r = http.Perform(cli::HttpRequest{.path = "/api/v1/models/" + repo + "/versions/" + version});
      REQUIRE(r.ok());
      REQUIRE(r->status == 200);
      state = json::parse(r->body)["state"];
      if (state != "pending") return state;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return state;
  }
};

TEST_CASE("a malicious checkpoint is quarantined and sigil pull refuses it with the reason",
          "[integration][scan]") {
  Env e;
  std::string model = e.tmp.Sub("evil");
  WriteTextFile(model + "/config.json", "{\"hidden\": 64}\n");
  WriteTextFile(model + "/pytorch_model.bin", EvilPickle());
  RunResult pushed = e.Sigil({"push", model, "team/evil:1"});
  REQUIRE(pushed.exit_code == 0);
  CHECK(e.WaitForScan("team/evil", "1") == "quarantined");

  std::string out = e.tmp.Sub("out-evil");
  RunResult pulled = e.Sigil({"pull", "team/evil:1", out});
  CHECK(pulled.exit_code == 1);
  CHECK(pulled.err.find("QUARANTINED") != std::string::npos);
  CHECK(pulled.err.find("pytorch_model.bin") != std::string::npos);
  CHECK(pulled.err.find("os.system") != std::string::npos);
  struct stat st {};
  CHECK(::stat(out.c_str(), &st) != 0);  // nothing written, not even the directory

  // The scan report says why; the blob is refused by digest too.
  cli::HttpClient http(e.server.url(), TokenOptions());
  auto scan = http.Perform(cli::HttpRequest{.path = "/api/v1/models/team/evil/versions/1/scan"});
  REQUIRE(scan.ok());
  REQUIRE(scan->status == 200);
  json report = json::parse(scan->body);
  CHECK(report["verdict"] == "blocked");
  CHECK(report["state"] == "quarantined");
  // sigild issues the report as a statement signed by its attestation key.
  CHECK(report["attestation"].is_object());
  auto blob =
      http.Perform(cli::HttpRequest{.path = "/api/v1/blobs/" + FileDigest(model + "/pytorch_model.bin")});
  REQUIRE(blob.ok());
  CHECK(blob->status == 403);
}

TEST_CASE("clean files become available and pull", "[integration][scan]") {
  Env e;
  std::string model = e.tmp.Sub("clean");
  WriteTextFile(model + "/config.json", "{\"hidden\": 64}\n");
  WriteRandomFile(model + "/weights.bin", 200000, 7);
  REQUIRE(e.Sigil({"push", model, "team/clean:1"}).exit_code == 0);
  // Pulled right away: sigil pull waits for the scan.
  std::string out = e.tmp.Sub("out-clean");
  RunResult pulled = e.Sigil({"pull", "team/clean:1", out});
  REQUIRE(pulled.exit_code == 0);
  CHECK(e.WaitForScan("team/clean", "1") == "available");
  CHECK(FileDigest(out + "/weights.bin") == FileDigest(model + "/weights.bin"));
}

TEST_CASE("sigil scan: the committed benign fixtures are clean, a malicious file is not",
          "[integration][scan]") {
  TempDir tmp;
  std::map<std::string, std::string> env;
  RunResult clean = RunSigil({"scan", SIGIL_SCANNER_FIXTURES}, env, tmp.path());
  INFO(clean.out << clean.err);
  CHECK(clean.exit_code == 0);
  CHECK(clean.out.find(" clean, 0 blocked, 0 invalid\n") != std::string::npos);
  CHECK(clean.out.find("state_dict.pt") != std::string::npos);

  std::string evil = tmp.Sub("evil.pkl");
  WriteTextFile(evil, EvilPickle());
  RunResult blocked = RunSigil({"scan", evil}, env, tmp.path());
  INFO(blocked.out << blocked.err);
  CHECK(blocked.exit_code == 1);
  CHECK(blocked.out.find("os.system") != std::string::npos);

  RunResult as_json = RunSigil({"--json", "scan", evil, SIGIL_SCANNER_FIXTURES}, env, tmp.path());
  CHECK(as_json.exit_code == 1);
  json j = json::parse(as_json.out);
  CHECK(j["verdict"] == "blocked");
  REQUIRE(j["targets"].size() == 2);
  CHECK(j["targets"][0]["report"]["files"][0]["verdict"] == "blocked");
  CHECK(j["targets"][1]["report"]["verdict"] == "clean");

  CHECK(RunSigil({"scan", tmp.Sub("missing")}, env, tmp.path()).exit_code == 3);
  CHECK(RunSigil({"scan"}, env, tmp.path()).exit_code == 2);
}

}  // namespace
}  // namespace sigil::testing
