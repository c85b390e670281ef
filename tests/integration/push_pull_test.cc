// The sigil binary against a real sigild: push, pull, dedup, resume of
// partial downloads, and the small commands with their exit codes.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/digest.h"
#include "core/fs.h"
#include "tests/integration/process.h"
#include "tests/support/temp_dir.h"

namespace sigil::testing {
namespace {

using nlohmann::json;

struct Env {
  TempDir tmp;
  Sigild server{tmp.Sub("data"), {"--chunk-max", "1048576"}};
  std::map<std::string, std::string> env{{"XDG_STATE_HOME", tmp.Sub("state")}};

  Env() { REQUIRE(server.Start()); }

  RunResult Sigil(std::vector<std::string> args) {
    args.insert(args.begin(), {"--server", server.url()});
    RunResult r = RunSigil(args, env, tmp.path());
    INFO("sigil stderr: " << r.err);
    return r;
  }
  json SigilJson(std::vector<std::string> args) {
    args.insert(args.begin(), "--json");
    RunResult r = Sigil(args);
    INFO("stderr: " << r.err << "\nstdout: " << r.out);
    REQUIRE(r.exit_code == 0);
    return json::parse(r.out);
  }
};

// A model of several files: two of some MB, nested paths, an empty file and
// two files with the same bytes.
std::string MakeModel(const TempDir& tmp, const std::string& name) {
  std::string m = tmp.Sub(name);
  WriteRandomFile(m + "/weights/model.safetensors", 6 * (1 << 20) + 123, 1);
  WriteRandomFile(m + "/weights/shard-2.bin", 3 * (1 << 20), 2);
  WriteRandomFile(m + "/small.bin", 1000, 3);
  WriteTextFile(m + "/config.json", "{\"hidden\": 64}\n");
  WriteTextFile(m + "/copy-of-config.json", "{\"hidden\": 64}\n");
  WriteTextFile(m + "/nested/a/b/notes.txt", "trained on synthetic data\n");
  WriteTextFile(m + "/empty", "");
  return m;
}

void RequireSameTree(const std::string& a, const std::string& b) {
  std::vector<std::string> fa = ListFiles(a), fb = ListFiles(b);
  REQUIRE(fa == fb);
  for (const std::string& f : fa) {
    INFO(f);
    CHECK(FileDigest(a + "/" + f) == FileDigest(b + "/" + f));
  }
}

TEST_CASE("a directory pushed and pulled comes back byte for byte", "[integration]") {
  Env e;
  std::string model = MakeModel(e.tmp, "model");

  json first = e.SigilJson({"push", model, "test/model:1.0", "--label", "team=health"});
  CHECK(first["files"] == 7);
  CHECK(first["blobs"] == 7);  // 6 distinct file contents + config
  CHECK(first["bytes_uploaded"] == first["bytes_total"]);
  CHECK(first["bytes_skipped"] == 0);
  CHECK(first["bytes_resumed"] == 0);
  std::string digest = first["digest"];
  CHECK(digest.rfind("sha256:", 0) == 0);

  std::string out = e.tmp.Sub("out");
  json pulled = e.SigilJson({"pull", "test/model:1.0", out});
  CHECK(pulled["digest"] == digest);
  CHECK(pulled["files"] == 7);
  RequireSameTree(model, out);
  CHECK_FALSE(core::PathExists(out + "/.sigil-partial"));

  // The same files again: every blob is already there.
  json second = e.SigilJson({"push", model, "test/model:1.1", "--label", "team=health"});
  CHECK(second["digest"] == digest);
  CHECK(second["bytes_uploaded"] == 0);
  CHECK(second["blobs_skipped"] == second["blobs"]);
  CHECK(second["bytes_skipped"] == first["bytes_total"]);

  // Pushing the same version with the same content is fine; other content
  // is a conflict.
  RunResult same = e.Sigil({"push", model, "test/model:1.0", "--label", "team=health"});
  CHECK(same.exit_code == 0);
  CHECK(same.out == digest + "\n");
  WriteTextFile(model + "/extra.txt", "more");
  RunResult conflict = e.Sigil({"push", model, "test/model:1.0"});
  CHECK(conflict.exit_code == 4);
  CHECK(conflict.err.find("TAG_IMMUTABLE") != std::string::npos);

  // By digest, into a directory that already holds other files.
  std::string by_digest = e.tmp.Sub("by-digest");
  WriteTextFile(by_digest + "/unrelated.txt", "keep me");
  e.SigilJson({"pull", "test/model@" + digest, by_digest});
  CHECK(ReadWholeFile(by_digest + "/unrelated.txt") == "keep me");
  CHECK(FileDigest(by_digest + "/weights/model.safetensors") ==
        FileDigest(model + "/weights/model.safetensors"));

  json inspected = e.SigilJson({"inspect", "test/model:1.0"});
  CHECK(inspected["digest"] == digest);
  CHECK(inspected["manifest"]["layers"].size() == 7);
  CHECK(inspected["labels"]["team"] == "health");
}

TEST_CASE("ls, alias, rm and their exit codes", "[integration]") {
  Env e;
  std::string model = e.tmp.Sub("m");
  WriteRandomFile(model + "/w.bin", 2 * (1 << 20), 9);
  std::string digest = e.SigilJson({"push", model, "org/team/m:1.0"})["digest"];
  e.SigilJson({"push", model + "/w.bin", "org/team/m:2.0"});

  json repos = e.SigilJson({"ls"});
  REQUIRE(repos["repositories"].size() == 1);
  CHECK(repos["repositories"][0]["name"] == "org/team/m");
  json versions = e.SigilJson({"ls", "org/team/m"});
  REQUIRE(versions["versions"].size() == 2);
  RunResult table = e.Sigil({"ls", "org/team/m"});
  CHECK(table.exit_code == 0);
  CHECK(table.out.find("VERSION") == 0);
  CHECK(table.out.find(digest.substr(7, 12)) != std::string::npos);

  json alias = e.SigilJson({"alias", "set", "org/team/m:production", "1.0"});
  CHECK(alias["digest"] == digest);
  std::string out = e.tmp.Sub("prod");
  e.SigilJson({"pull", "org/team/m:production", out});
  CHECK(FileDigest(out + "/w.bin") == FileDigest(model + "/w.bin"));
  RunResult listed = e.Sigil({"ls", "org/team/m"});
  CHECK(listed.out.find("production") != std::string::npos);

  CHECK(e.Sigil({"alias", "rm", "org/team/m:production"}).exit_code == 0);
  CHECK(e.Sigil({"inspect", "org/team/m:production"}).exit_code == 3);
  CHECK(e.Sigil({"rm", "org/team/m:2.0"}).exit_code == 0);
  RunResult gone = e.Sigil({"inspect", "org/team/m:2.0"});
  CHECK(gone.exit_code == 3);
  CHECK(gone.err.find("sigil: ") == 0);

  std::string nowhere = e.tmp.Sub("nowhere");
  CHECK(e.Sigil({"pull", "org/team/m:9.9", nowhere}).exit_code == 3);
  CHECK_FALSE(core::PathExists(nowhere));

  json gc = e.SigilJson({"gc"});
  CHECK(gc.contains("blobs_deleted"));

  // Usage errors never reach the server.
  CHECK(e.Sigil({"pull", "Bad/Name:1", nowhere}).exit_code == 2);
  CHECK(e.Sigil({"push", model}).exit_code == 2);
  CHECK(e.Sigil({"frobnicate"}).exit_code == 2);
  CHECK(e.Sigil({"push", model, "org/team/m:3", "--label", "nokey"}).exit_code == 2);
  CHECK(RunSigil({"--help"}, {}, e.tmp.path()).exit_code == 0);

  // Nobody listening: exit 5 once the retry budget is spent.
  RunResult down = RunSigil({"--server", "http://127.0.0.1:" + std::to_string(FreePort()),
                             "--retry-time", "0", "ls"},
                            {}, e.tmp.path());
  CHECK(down.exit_code == 5);
  CHECK(down.err.find("SERVER_UNREACHABLE") != std::string::npos);
}

TEST_CASE("a pull resumes a partial file and replaces a corrupted one", "[integration]") {
  Env e;
  std::string model = e.tmp.Sub("m");
  WriteRandomFile(model + "/big.bin", 4 * (1 << 20), 5);
  WriteRandomFile(model + "/other.bin", 2 * (1 << 20), 6);
  e.SigilJson({"push", model, "r/m:1"});
  std::string big = ReadWholeFile(model + "/big.bin");
  std::string other = ReadWholeFile(model + "/other.bin");

  std::string out = e.tmp.Sub("out");
  std::string partial = out + "/.sigil-partial/";
  // An earlier pull stopped after 1.5 MiB of big.bin; other.bin's partial
  // holds wrong bytes.
  WriteTextFile(partial + core::Sha256::Of(big).Hex(), big.substr(0, 1536 * 1024));
  WriteTextFile(partial + core::Sha256::Of(other).Hex(), std::string(1 << 20, 'x'));

  json r = e.SigilJson({"pull", "r/m:1", out});
  CHECK(r["bytes_reused"] == 1536 * 1024);
  // big.bin: the missing 2.5 MiB. other.bin: its missing 1 MiB, which then
  // fails verification, and the whole 2 MiB again.
  CHECK(r["bytes_total"] == 6 * (1 << 20));
  CHECK(r["bytes_downloaded"] == 2560 * 1024 + (1 << 20) + 2 * (1 << 20));
  CHECK(ReadWholeFile(out + "/big.bin") == big);
  CHECK(ReadWholeFile(out + "/other.bin") == other);
  CHECK_FALSE(core::PathExists(out + "/.sigil-partial"));
}

TEST_CASE("a single file is pushed under its base name", "[integration]") {
  Env e;
  std::string file = e.tmp.Sub("dir/model.gguf");
  WriteTextFile(file, std::string("GGUF\x03\0\0\0", 8) + std::string(5000, 'g'));
  e.SigilJson({"push", file, "llm/tiny:q4"});
  json v = e.SigilJson({"inspect", "llm/tiny:q4"});
  REQUIRE(v["manifest"]["layers"].size() == 1);
  CHECK(v["manifest"]["layers"][0]["annotations"]["org.opencontainers.image.title"] ==
        "model.gguf");
  CHECK(v["manifest"]["artifactType"] == "application/vnd.cncf.model.manifest.v1+json");
  CHECK(v["manifest"]["config"]["mediaType"] == "application/vnd.cncf.model.config.v1+json");
}

TEST_CASE("two sigil pushes of the same files at once both succeed", "[integration]") {
  Env e;
  std::string model = e.tmp.Sub("m");
  WriteRandomFile(model + "/big.bin", 12 * (1 << 20), 31);
  WriteRandomFile(model + "/mid.bin", 5 * (1 << 20) + 1, 32);
  // Same user, same resume state: the two may even feed one session.
  std::string dir_a = e.tmp.Sub("a"), dir_b = e.tmp.Sub("b");
  REQUIRE(core::MakeDirs(dir_a).ok());
  REQUIRE(core::MakeDirs(dir_b).ok());
  pid_t a = StartSigil({"--server", e.server.url(), "push", model, "r/m:a"}, e.env, dir_a);
  pid_t b = StartSigil({"--server", e.server.url(), "push", model, "r/m:b"}, e.env, dir_b);
  RunResult ra = WaitSigil(a, dir_a), rb = WaitSigil(b, dir_b);
  INFO(ra.err << rb.err);
  REQUIRE(ra.exit_code == 0);
  REQUIRE(rb.exit_code == 0);
  CHECK(ra.out == rb.out);
  std::string out = e.tmp.Sub("out");
  e.SigilJson({"pull", "r/m:b", out});
  RequireSameTree(model, out);
}

TEST_CASE("small files go through sessions when the server's chunk_max is smaller",
          "[integration]") {
  TempDir tmp;
  Sigild server(tmp.Sub("data"), {"--chunk-max", "65536"});
  REQUIRE(server.Start());
  std::string model = tmp.Sub("m");
  WriteRandomFile(model + "/a.bin", 300 * 1000, 21);  // under 1 MiB, over chunk_max
  WriteRandomFile(model + "/b.bin", 2 * (1 << 20), 22);
  std::map<std::string, std::string> env{{"XDG_STATE_HOME", tmp.Sub("state")}};
  RunResult pushed =
      RunSigil({"--server", server.url(), "--json", "push", model, "r/m:1"}, env, tmp.path());
  INFO(pushed.err);
  REQUIRE(pushed.exit_code == 0);
  CHECK(json::parse(pushed.out)["bytes_uploaded"] == json::parse(pushed.out)["bytes_total"]);
  std::string out = tmp.Sub("out");
  RunResult pulled = RunSigil({"--server", server.url(), "pull", "r/m:1", out}, env, tmp.path());
  INFO(pulled.err);
  REQUIRE(pulled.exit_code == 0);
  RequireSameTree(model, out);
}

}  // namespace
}  // namespace sigil::testing
