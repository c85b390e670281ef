#include "core/fs.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "tests/support/temp_dir.h"

namespace sigil::core {
namespace {

TEST_CASE("atomic writes replace whole files and leave no temp files", "[core]") {
  testing::TempDir dir;
  std::string path = dir.Sub("a/b/file");
  REQUIRE(MakeDirs(DirName(path)).ok());
  REQUIRE(WriteFileAtomic(path, "one").ok());
  REQUIRE(WriteFileAtomic(path, "two", 0600).ok());
  CHECK(ReadFile(path).value() == "two");
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK_FALSE(PathExists(path + ".tmp"));
}

TEST_CASE("reading a file larger than the limit is refused", "[core]") {
  testing::TempDir dir;
  REQUIRE(WriteFileAtomic(dir.Sub("big"), std::string(100, 'x')).ok());
  CHECK(ReadFile(dir.Sub("big"), 99).status().code() == Code::kResourceExhausted);
  CHECK(ReadFile(dir.Sub("big"), 100).value().size() == 100);
  CHECK(ReadFile(dir.Sub("none")).status().code() == Code::kNotFound);
}

TEST_CASE("path helpers", "[core]") {
  CHECK(DirName("a/b/c") == "a/b");
  CHECK(DirName("c") == ".");
  CHECK(DirName("/c") == "/");
  CHECK(JoinPath("a", "b") == "a/b");
  CHECK(JoinPath("a/", "b") == "a/b");
  CHECK(RemoveFile("/nonexistent/sigil/file").ok());
}

}  // namespace
}  // namespace sigil::core
