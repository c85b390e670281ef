// Client tokens: where they are kept, and where they may be sent.
#include "cli/credentials.h"

#include <sys/stat.h>

#include <chrono>
#include <cstdlib>

#include <catch2/catch.hpp>

#include "cli/http_client.h"
#include "core/fs.h"
#include "tests/support/temp_dir.h"

namespace sigil::cli {
namespace {

// Sets an environment variable for the scope, restoring it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    const char* old = std::getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (had_) {
      ::setenv(name_, old_.c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  bool had_ = false;
  std::string old_;
};

TEST_CASE("loopback hosts are told from the rest", "[cli][credentials]") {
  struct Row {
    const char* url;
    bool loopback;
  };
  const Row rows[] = {
      {"http://127.0.0.1:7070", true},        {"http://127.1.2.3", true},
      {"http://localhost:7070/", true},       {"http://LOCALHOST", true},
      {"http://[::1]:7070", true},            {"http://user@127.0.0.1:1/x", true},
      {"http://[::ffff:127.0.0.1]:1", true},  {"http://10.0.0.1:7070", false},
      {"http://example.invalid", false},      {"http://127.0.0.1.example.com", false},
      {"http://localhost.example.com", false}, {"http://[::2]:7070", false},
      {"http://128.0.0.1", false},
  };
  for (const Row& row : rows) {
    INFO(row.url);
    CHECK(IsLoopbackUrl(row.url) == row.loopback);
    CHECK(CheckTokenTransport(row.url).ok() == row.loopback);
  }
  CHECK(CheckTokenTransport("https://example.invalid").ok());
  CHECK(CheckTokenTransport("http://example.invalid").reason() == "INSECURE_TRANSPORT");
}

TEST_CASE("a token is never sent over plain http to another host: nothing is sent", "[cli][credentials]") {
  HttpOptions options;
  options.token = "sgl_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  // 192.0.2.0/24 is TEST-NET-1: a connection attempt would hang until the
  // connect timeout; the refusal comes first.
  HttpClient client("http://192.0.2.1:7070", options);
  auto start = std::chrono::steady_clock::now();
  auto r = client.Perform(HttpRequest{.path = "/api/v1/models"});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == core::Code::kInvalidArgument);
  CHECK(r.status().reason() == "INSECURE_TRANSPORT");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));
}

TEST_CASE("login's credentials file: per server, mode 0600 in a 0700 directory", "[cli][credentials]") {
  testing::TempDir tmp;
  ScopedEnv config("XDG_CONFIG_HOME", tmp.Sub("config"));
  ScopedEnv token("SIGIL_TOKEN", "");
  CHECK(CredentialsPath() == tmp.Sub("config") + "/sigil/credentials.json");
  CHECK(*ResolveToken("http://127.0.0.1:7070") == "");
  REQUIRE(SaveToken("http://127.0.0.1:7070/", "sgl_one").ok());
  REQUIRE(SaveToken("https://registry.example", "sgl_two").ok());
  CHECK(*ResolveToken("http://127.0.0.1:7070") == "sgl_one");
  CHECK(*ResolveToken("https://registry.example/") == "sgl_two");
  CHECK(*ResolveToken("http://127.0.0.1:7071") == "");
  struct stat st {};
  REQUIRE(::stat(CredentialsPath().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(::stat((tmp.Sub("config") + "/sigil").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  {
    ScopedEnv env_token("SIGIL_TOKEN", "sgl_env");
    CHECK(*ResolveToken("http://127.0.0.1:7070") == "sgl_env");
  }
  REQUIRE(core::WriteFileAtomic(CredentialsPath(), "[1]", 0600).ok());
  CHECK(ResolveToken("http://127.0.0.1:7070").status().reason() == "CREDENTIALS_INVALID");
}

}  // namespace
}  // namespace sigil::cli
