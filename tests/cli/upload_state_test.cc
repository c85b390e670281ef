#include "cli/upload_state.h"

#include <sys/stat.h>

#include <cstdlib>

#include <catch2/catch.hpp>

#include "core/fs.h"
#include "tests/support/temp_dir.h"

namespace sigil::cli {
namespace {

const core::Digest kA = core::Sha256::Of("a");
const core::Digest kB = core::Sha256::Of("b");
const std::string kServer = "http://127.0.0.1:7070";

unsigned Mode(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

TEST_CASE("upload ids are saved, found and removed per server and digest", "[cli]") {
  testing::TempDir dir;
  UploadState state(dir.Sub("state/sigil"));
  CHECK_FALSE(state.Find(kServer, kA).has_value());
  REQUIRE(state.Save(kServer, kA, "upload-1").ok());
  REQUIRE(state.Save(kServer, kB, "upload-2").ok());
  REQUIRE(state.Save("http://other:7070", kA, "upload-3").ok());
  CHECK(state.Find(kServer, kA) == std::optional<std::string>("upload-1"));
  CHECK(state.Find(kServer, kB) == std::optional<std::string>("upload-2"));
  CHECK(state.Find("http://other:7070", kA) == std::optional<std::string>("upload-3"));
  CHECK_FALSE(state.Find("http://third:7070", kA).has_value());

  // Overwritten by a newer session.
  REQUIRE(state.Save(kServer, kA, "upload-4").ok());
  CHECK(state.Find(kServer, kA) == std::optional<std::string>("upload-4"));

  REQUIRE(state.Remove(kServer, kA).ok());
  CHECK_FALSE(state.Find(kServer, kA).has_value());
  CHECK(state.Find("http://other:7070", kA).has_value());
  REQUIRE(state.Remove(kServer, kA).ok());  // already gone: fine
}

TEST_CASE("state files are private", "[cli]") {
  testing::TempDir dir;
  UploadState state(dir.Sub("sigil"));
  REQUIRE(state.Save(kServer, kA, "id").ok());
  CHECK(Mode(state.PathFor(kServer, kA)) == 0600);
  CHECK(Mode(dir.Sub("sigil")) == 0700);
  CHECK(Mode(core::DirName(state.PathFor(kServer, kA))) == 0700);
}

TEST_CASE("damaged or foreign state files count as absent", "[cli]") {
  testing::TempDir dir;
  UploadState state(dir.Sub("sigil"));
  REQUIRE(state.Save(kServer, kA, "id").ok());
  std::string path = state.PathFor(kServer, kA);
  SECTION("not JSON") { REQUIRE(core::WriteFileAtomic(path, "{garbage").ok()); }
  SECTION("other digest inside") {
    REQUIRE(core::WriteFileAtomic(path, R"({"server":"http://127.0.0.1:7070","digest":")" +
                                            kB.ToString() + R"(","upload_id":"x"})")
                .ok());
  }
  SECTION("empty id") {
    REQUIRE(core::WriteFileAtomic(path, R"({"server":"http://127.0.0.1:7070","digest":")" +
                                            kA.ToString() + R"(","upload_id":""})")
                .ok());
  }
  SECTION("id not a string") {
    REQUIRE(core::WriteFileAtomic(path, R"({"server":"http://127.0.0.1:7070","digest":")" +
                                            kA.ToString() + R"(","upload_id":7})")
                .ok());
  }
  CHECK_FALSE(state.Find(kServer, kA).has_value());
}

TEST_CASE("the state directory follows XDG_STATE_HOME, then HOME", "[cli]") {
  const char* old_xdg = std::getenv("XDG_STATE_HOME");
  const char* old_home = std::getenv("HOME");
  std::string saved_xdg = old_xdg ? old_xdg : "";
  std::string saved_home = old_home ? old_home : "";

  ::setenv("XDG_STATE_HOME", "/var/state", 1);
  ::setenv("HOME", "/home/u", 1);
  CHECK(UploadState::DefaultDir() == "/var/state/sigil");
  ::setenv("XDG_STATE_HOME", "relative/dir", 1);  // not absolute: ignored
  CHECK(UploadState::DefaultDir() == "/home/u/.local/state/sigil");
  ::unsetenv("XDG_STATE_HOME");
  CHECK(UploadState::DefaultDir() == "/home/u/.local/state/sigil");
  ::unsetenv("HOME");
  CHECK(UploadState::DefaultDir().empty());

  if (old_xdg) ::setenv("XDG_STATE_HOME", saved_xdg.c_str(), 1);
  if (old_home) ::setenv("HOME", saved_home.c_str(), 1);
}

TEST_CASE("saving without a state directory fails cleanly", "[cli]") {
  UploadState state("");
  CHECK(state.Save(kServer, kA, "id").code() == core::Code::kFailedPrecondition);
  CHECK_FALSE(state.Find(kServer, kA).has_value());
}

}  // namespace
}  // namespace sigil::cli
