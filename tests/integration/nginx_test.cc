// sigil over HTTPS: through nginx in front of sigild (docs/examples/nginx.conf,
// rendered and run as it is) and with sigild's own TLS. Certificates come
// from the openssl command line: a test CA and a server certificate for
// localhost and 127.0.0.1. The client verifies with --cacert (or
// $SIGIL_CACERT) and refuses the server without it. Also the per-token
// limits (429 with Retry-After), directly and through nginx.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "tests/integration/process.h"
#include "tests/support/temp_dir.h"

namespace sigil::testing {
namespace {

using nlohmann::json;

// The program's path when it is on $PATH or in an sbin directory.
std::string FindProgram(const std::string& name) {
  std::string path = std::getenv("PATH") != nullptr ? std::getenv("PATH") : "";
  path += ":/usr/sbin:/sbin:/usr/local/sbin";
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find(':', i);
    if (j == std::string::npos) j = path.size();
    std::string candidate = path.substr(i, j - i) + "/" + name;
    if (j > i && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    i = j + 1;
  }
  return "";
}

// Runs argv (argv[0] looked up on $PATH) with output into log; the exit code.
int RunProgram(const std::vector<std::string>& argv, const std::string& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 || ::dup2(fd, 1) < 0 || ::dup2(fd, 2) < 0) ::_exit(126);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

struct Certs {
  std::string ca;    // the test CA's certificate: what --cacert names
  std::string cert;  // localhost and 127.0.0.1, signed by the CA
  std::string key;
  std::string other_key;  // matches no certificate here
};

Certs MakeCerts(const std::string& dir) {
  REQUIRE(core::MakeDirs(dir).ok());
  Certs c{dir + "/ca.pem", dir + "/server.pem", dir + "/server.key", dir + "/other.key"};
  const std::string log = dir + "/openssl.log";
  WriteTextFile(dir + "/server.ext",
                "basicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  const std::vector<std::vector<std::string>> steps = {
      {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-keyout", dir + "/ca.key", "-out", c.ca, "-days", "2", "-subj", "/CN=sigil test CA"},
      {"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-keyout", c.key, "-out", dir + "/server.csr", "-subj", "/CN=localhost"},
      {"openssl", "x509", "-req", "-in", dir + "/server.csr", "-CA", c.ca, "-CAkey", dir + "/ca.key",
       "-set_serial", "2", "-days", "2", "-extfile", dir + "/server.ext", "-out", c.cert},
      {"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
       c.other_key},
  };
  for (const auto& step : steps) {
    INFO(ReadWholeFile(log));
    REQUIRE(RunProgram(step, log) == 0);
  }
  return c;
}

// A model whose weights take several 1 MiB chunks.
std::string MakeModel(const TempDir& tmp) {
  std::string m = tmp.Sub("model");
  WriteRandomFile(m + "/weights/model.safetensors", 3 * (1 << 20) + 4321, 7);
  WriteRandomFile(m + "/weights/shard-2.bin", 1 << 20, 8);
  WriteTextFile(m + "/config.json", "{\"hidden\": 64}\n");
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

// Pushes and pulls a model through url with --cacert, then checks that the
// client refuses the server without the CA, quickly and saying why.
void PushPullOverTls(const TempDir& tmp, const std::string& url, const Certs& certs) {
  std::map<std::string, std::string> env{{"XDG_STATE_HOME", tmp.Sub("state")}};
  std::string model = MakeModel(tmp);

  RunResult push = RunSigil({"--server", url, "--cacert", certs.ca, "--json", "push", model, "tls/model:1.0"},
                            env, tmp.path());
  INFO("push stderr: " << push.err);
  REQUIRE(push.exit_code == 0);
  json pushed = json::parse(push.out);
  CHECK(pushed["files"] == 3);
  CHECK(pushed["bytes_uploaded"] == pushed["bytes_total"]);

  // $SIGIL_CACERT does the same as --cacert.
  std::map<std::string, std::string> env_ca = env;
  env_ca["SIGIL_CACERT"] = certs.ca;
  RunResult pull = RunSigil({"--server", url, "--json", "pull", "tls/model:1.0", tmp.Sub("out")}, env_ca,
                            tmp.path());
  INFO("pull stderr: " << pull.err);
  REQUIRE(pull.exit_code == 0);
  CHECK(json::parse(pull.out)["digest"] == pushed["digest"]);
  RequireSameTree(model, tmp.Sub("out"));

  auto start = std::chrono::steady_clock::now();
  RunResult refused = RunSigil({"--server", url, "ls"}, env, tmp.path());
  auto took = std::chrono::steady_clock::now() - start;
  INFO("stderr: " << refused.err);
  CHECK(refused.exit_code == 1);
  CHECK(refused.err.find("TLS_VERIFY_FAILED") != std::string::npos);
  CHECK(refused.err.find("--cacert") != std::string::npos);
  CHECK(took < std::chrono::seconds(5));  // not retried as if unreachable

  RunResult bad_ca = RunSigil({"--server", url, "--cacert", tmp.Sub("missing.pem"), "ls"}, env, tmp.path());
  CHECK(bad_ca.exit_code == 2);
  CHECK(bad_ca.err.find("--cacert") != std::string::npos);
}

// nginx -p DIR -c DIR/nginx.conf in the foreground; stopped when destroyed.
class Nginx {
 public:
  Nginx(std::string binary, std::string dir) : binary_(std::move(binary)), dir_(std::move(dir)) {}
  ~Nginx() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }

  // Renders docs/examples/nginx.conf and waits until /healthz answers
  // through it.
  bool Start(int port, int upstream_port, const Certs& certs) {
    std::string conf = ReadWholeFile(SIGIL_NGINX_CONF);
    auto replace = [&](const std::string& from, const std::string& to) {
      for (size_t at = conf.find(from); at != std::string::npos; at = conf.find(from, at + to.size())) {
        conf.replace(at, from.size(), to);
      }
    };
    replace("@LISTEN@", "127.0.0.1:" + std::to_string(port));
    replace("@UPSTREAM@", "127.0.0.1:" + std::to_string(upstream_port));
    replace("@CERT@", certs.cert);
    replace("@KEY@", certs.key);
    replace("@TMP@", dir_);
    if (conf.find('@') != std::string::npos) {
      FAIL("an @NAME@ is left unreplaced in the rendered nginx.conf:\n" << conf);
    }
    // As root, workers would run as nobody and could not enter the test's
    // private directory.
    if (::geteuid() == 0) conf = "user root;\n" + conf;
    WriteTextFile(dir_ + "/nginx.conf", conf);

    pid_ = ::fork();
    if (pid_ == 0) {
      std::string log = dir_ + "/nginx.out";
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd < 0 || ::dup2(fd, 1) < 0 || ::dup2(fd, 2) < 0) ::_exit(126);
      std::string conf_path = dir_ + "/nginx.conf", error_log = dir_ + "/error.log";
      ::execl(binary_.c_str(), binary_.c_str(), "-p", dir_.c_str(), "-c", conf_path.c_str(), "-e",
              error_log.c_str(), "-g", "daemon off;", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    cli::HttpOptions options;
    options.ca_file = certs.ca;
    cli::HttpClient http("https://localhost:" + std::to_string(port), options);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      auto r = http.Perform(cli::HttpRequest{.path = "/healthz"});
      if (r.ok() && r->status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  std::string log() const {
    return ReadWholeFile(dir_ + "/nginx.out") + ReadWholeFile(dir_ + "/error.log");
  }

 private:
  std::string binary_;
  std::string dir_;
  pid_t pid_ = -1;
};

TEST_CASE("push and pull through nginx terminating TLS (docs/examples/nginx.conf)", "[integration][tls]") {
  std::string nginx_binary = FindProgram("nginx");
  if (nginx_binary.empty()) {
    WARN("nginx is not installed (scripts/setup installs it): skipping the nginx deployment test");
    return;
  }
  TempDir tmp;
  Certs certs = MakeCerts(tmp.Sub("certs"));
  Sigild server{tmp.Sub("data"), {"--chunk-max", "1048576"}};
  REQUIRE(server.Start());
  REQUIRE(core::MakeDirs(tmp.Sub("nginx")).ok());
  Nginx nginx(nginx_binary, tmp.Sub("nginx"));
  int port = FreePort();
  bool started = nginx.Start(port, server.port(), certs);
  INFO("nginx log:\n" << nginx.log());
  REQUIRE(started);

  PushPullOverTls(tmp, "https://localhost:" + std::to_string(port), certs);
  // The requests went through nginx.
  CHECK(ReadWholeFile(tmp.Sub("nginx/access.log")).find("PATCH /api/v1/uploads/") != std::string::npos);
}

TEST_CASE("sigild serves HTTPS itself with --tls-cert and --tls-key", "[integration][tls]") {
  TempDir tmp;
  Certs certs = MakeCerts(tmp.Sub("certs"));
  Sigild server{tmp.Sub("data"),
                {"--chunk-max", "1048576", "--tls-cert", certs.cert, "--tls-key", certs.key}};
  server.UseTls(certs.ca);
  bool started = server.Start();
  INFO("sigild log:\n" << server.log());
  REQUIRE(started);
  PushPullOverTls(tmp, server.url(), certs);
}

TEST_CASE("sigild refuses TLS files it cannot use, saying which", "[integration][tls]") {
  TempDir tmp;
  Certs certs = MakeCerts(tmp.Sub("certs"));
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"--tls-cert", certs.cert}, "tls_cert and tls_key go together"},
      {{"--tls-cert", tmp.Sub("missing.pem"), "--tls-key", certs.key}, "missing.pem"},
      {{"--tls-cert", certs.cert, "--tls-key", certs.other_key}, "cannot be used"},
      {{"--tls-cert", certs.key, "--tls-key", certs.key}, "cannot be used"},
  };
  int n = 0;
  for (const Case& c : cases) {
    Sigild server{tmp.Sub("data" + std::to_string(n++)), c.args};
    server.UseTls(certs.ca);
    INFO("case " << n);
    CHECK_FALSE(server.Start(std::chrono::seconds(10)));
    INFO("sigild log:\n" << server.log());
    CHECK(server.log().find(c.expected) != std::string::npos);
  }
}

TEST_CASE("per-token limits answer 429 with Retry-After, also through nginx", "[integration][limits]") {
  TempDir tmp;
  Sigild server{tmp.Sub("data"), {"--rate-limit", "0.5", "--rate-burst", "3", "--uploads-per-token", "1"}};
  REQUIRE(server.Start());
  cli::HttpClient http(server.url(), TokenOptions());
  auto get = [&] { return http.Perform(cli::HttpRequest{.path = "/api/v1/models"}); };

  // One upload session at a time: the second is refused until the first ends.
  auto first = http.Perform(cli::HttpRequest{.method = "POST", .path = "/api/v1/uploads"});
  REQUIRE(first.ok());
  REQUIRE(first->status == 201);
  auto second = http.Perform(cli::HttpRequest{.method = "POST", .path = "/api/v1/uploads"});
  REQUIRE(second.ok());
  CHECK(second->status == 429);
  CHECK(json::parse(second->body)["error"]["code"] == "TOO_MANY_UPLOADS");

  // The burst of 3 is spent (two POSTs and this GET); 0.5/s means the next
  // token is 2 s away.
  auto third = get();
  REQUIRE(third.ok());
  CHECK(third->status == 200);
  auto limited = get();
  REQUIRE(limited.ok());
  CHECK(limited->status == 429);
  json error = json::parse(limited->body)["error"];
  CHECK(error["code"] == "RATE_LIMITED");
  int retry_after = std::stoi(limited->Header("retry-after"));
  CHECK(retry_after >= 1);
  CHECK(retry_after <= 2);
  CHECK(error["detail"]["retry_after_s"] == retry_after);

  // Health checks are never limited; other tokens and anonymous callers
  // have their own buckets.
  auto health = http.Perform(cli::HttpRequest{.path = "/healthz"});
  REQUIRE(health.ok());
  CHECK(health->status == 200);
  cli::HttpClient anonymous(server.url(), TokenOptions(""));
  auto anon = anonymous.Perform(cli::HttpRequest{.path = "/api/v1/models"});
  REQUIRE(anon.ok());
  CHECK(anon->status != 429);

  // After the wait the token is back, and ending the first session frees
  // its upload slot.
  std::this_thread::sleep_for(std::chrono::seconds(retry_after));
  auto id = json::parse(first->body)["id"].get<std::string>();
  auto cancelled = http.Perform(cli::HttpRequest{.method = "DELETE", .path = "/api/v1/uploads/" + id});
  REQUIRE(cancelled.ok());
  CHECK(cancelled->status == 204);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  auto again = http.Perform(cli::HttpRequest{.method = "POST", .path = "/api/v1/uploads"});
  REQUIRE(again.ok());
  CHECK(again->status == 201);

  // nginx passes the 429 and its Retry-After through unchanged.
  std::string nginx_binary = FindProgram("nginx");
  if (nginx_binary.empty()) return;
  Certs certs = MakeCerts(tmp.Sub("certs"));
  REQUIRE(core::MakeDirs(tmp.Sub("nginx")).ok());
  Nginx nginx(nginx_binary, tmp.Sub("nginx"));
  int port = FreePort();
  REQUIRE(nginx.Start(port, server.port(), certs));
  cli::HttpOptions options = TokenOptions();
  options.ca_file = certs.ca;
  cli::HttpClient proxied("https://localhost:" + std::to_string(port), options);
  long status = 0;
  std::string header;
  for (int i = 0; i < 5 && status != 429; ++i) {
    auto r = proxied.Perform(cli::HttpRequest{.path = "/api/v1/models"});
    REQUIRE(r.ok());
    status = r->status;
    header = r->Header("retry-after");
  }
  CHECK(status == 429);
  CHECK_FALSE(header.empty());
}

}  // namespace
}  // namespace sigil::testing
