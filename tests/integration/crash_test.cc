// Crash and restart of sigild in the middle of a push.
#include <sys/wait.h>

#include <filesystem>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cli/http_client.h"
#include "core/fs.h"
#include "tests/integration/process.h"
#include "tests/support/temp_dir.h"

namespace sigil::testing {
namespace {

using nlohmann::json;
constexpr uint64_t kMiB = 1 << 20;

// Upload ids the client recorded in its resume state.
std::vector<std::string> SavedUploadIds(const std::string& state_home) {
  std::vector<std::string> ids;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(state_home + "/sigil/uploads", ec)) {
    std::string name = entry.path().filename().string();
    if (name.find(".tmp-") != std::string::npos) continue;
    json j = json::parse(ReadWholeFile(entry.path().string()), nullptr, false);
    if (j.is_object() && j.contains("upload_id") && j["upload_id"].is_string()) {
      ids.push_back(j["upload_id"]);
    }
  }
  return ids;
}

// The server's committed offset of an upload, or -1.
int64_t ServerOffset(cli::HttpClient& http, const std::string& id) {
  auto r = http.Perform(cli::HttpRequest{.path = "/api/v1/uploads/" + id});
  if (!r.ok() || r->status != 200) return -1;
  return json::parse(r->body)["offset"].get<int64_t>();
}

// Waits until some upload of the running push has at least min_offset bytes
// committed; false if the push ended first or nothing happened in time.
bool WaitForCommittedBytes(cli::HttpClient& http, const std::string& state_home, pid_t push,
                           int64_t min_offset) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    for (const std::string& id : SavedUploadIds(state_home)) {
      if (ServerOffset(http, id) >= min_offset) return true;
    }
    int status = 0;
    if (::waitpid(push, &status, WNOHANG) == push) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

std::string MakeModel(const std::string& dir, uint64_t total_mib) {
  WriteRandomFile(dir + "/model-00001.safetensors", total_mib / 2 * kMiB + 17, 11);
  WriteRandomFile(dir + "/model-00002.safetensors", total_mib / 4 * kMiB, 12);
  WriteRandomFile(dir + "/sub/optimizer.pt", total_mib / 4 * kMiB - 17, 13);
  WriteTextFile(dir + "/config.json", "{\"layers\": 2}");
  return dir;
}

void RequireSameFiles(const std::string& a, const std::string& b) {
  REQUIRE(ListFiles(a) == ListFiles(b));
  for (const std::string& f : ListFiles(a)) {
    INFO(f);
    CHECK(FileDigest(a + "/" + f) == FileDigest(b + "/" + f));
  }
}

TEST_CASE("a push cut off by kill -9 of sigild resumes from the committed offsets",
          "[integration][slow]") {
  TempDir tmp;
  Sigild server(tmp.Sub("data"), {"--chunk-max", std::to_string(kMiB)});
  REQUIRE(server.Start());
  std::string model = MakeModel(tmp.Sub("model"), 200);
  std::string state_home = tmp.Sub("state");
  std::map<std::string, std::string> env{{"XDG_STATE_HOME", state_home}};
  cli::HttpClient http(server.url(), TokenOptions());

  // A short retry budget: the first push gives up soon after the crash.
  pid_t push = StartSigil({"--server", server.url(), "--json", "--retry-time", "2", "push", model,
                           "crash/model:1"},
                          env, tmp.path());
  REQUIRE(WaitForCommittedBytes(http, state_home, push, 4 * kMiB));
  server.Kill9();
  RunResult cut = WaitSigil(push, tmp.path());
  INFO("first push: " << cut.err);
  REQUIRE(cut.exit_code == 5);

  REQUIRE(server.Start());
  // What the server kept across the crash, per saved session.
  std::vector<std::string> ids = SavedUploadIds(state_home);
  REQUIRE_FALSE(ids.empty());
  int64_t committed = 0;
  for (const std::string& id : ids) committed += std::max<int64_t>(0, ServerOffset(http, id));
  REQUIRE(committed >= static_cast<int64_t>(4 * kMiB));

  RunResult again = RunSigil({"--server", server.url(), "--json", "push", model, "crash/model:1"},
                             env, tmp.path());
  INFO("second push: " << again.err);
  REQUIRE(again.exit_code == 0);
  json r = json::parse(again.out);
  CHECK(r["bytes_resumed"].get<int64_t>() == committed);
  CHECK(r["blobs_resumed"].get<size_t>() >= 1);
  CHECK(r["bytes_uploaded"].get<uint64_t>() < r["bytes_total"].get<uint64_t>());
  CHECK(r["bytes_uploaded"].get<uint64_t>() + r["bytes_resumed"].get<uint64_t>() +
            r["bytes_skipped"].get<uint64_t>() ==
        r["bytes_total"].get<uint64_t>());
  // Finished sessions are forgotten.
  CHECK(SavedUploadIds(state_home).empty());

  std::string out = tmp.Sub("out");
  RunResult pulled = RunSigil({"--server", server.url(), "pull", "crash/model:1", out}, env,
                              tmp.path());
  INFO(pulled.err);
  REQUIRE(pulled.exit_code == 0);
  RequireSameFiles(model, out);
}

TEST_CASE("a push rides out a sigild restart within its retry budget", "[integration][slow]") {
  TempDir tmp;
  Sigild server(tmp.Sub("data"), {"--chunk-max", std::to_string(kMiB)});
  REQUIRE(server.Start());
  std::string model = MakeModel(tmp.Sub("model"), 64);
  std::string state_home = tmp.Sub("state");
  std::map<std::string, std::string> env{{"XDG_STATE_HOME", state_home}};
  cli::HttpClient http(server.url(), TokenOptions());

  pid_t push = StartSigil({"--server", server.url(), "--json", "--retry-time", "30", "push", model,
                           "restart/model:1"},
                          env, tmp.path());
  REQUIRE(WaitForCommittedBytes(http, state_home, push, 2 * kMiB));
  server.Kill9();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  REQUIRE(server.Start());
  RunResult r = WaitSigil(push, tmp.path());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);

  std::string out = tmp.Sub("out");
  RunResult pulled = RunSigil({"--server", server.url(), "pull", "restart/model:1", out}, env,
                              tmp.path());
  INFO(pulled.err);
  REQUIRE(pulled.exit_code == 0);
  RequireSameFiles(model, out);
}

}  // namespace
}  // namespace sigil::testing
