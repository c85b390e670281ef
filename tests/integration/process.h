// Test helpers: a sigild child process, runs of the sigil binary, files.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cli/http_client.h"

namespace sigil::testing {

// A loopback TCP port nothing listens on right now.
int FreePort();

// The admin token of every sigild these tests start: one per test process,
// written to DIR.token and imported by sigild as "bootstrap".
const std::string& TestToken();
// Client options that send token (by default the admin TestToken()).
cli::HttpOptions TokenOptions(std::string token = TestToken());

// sigild --data DIR --listen 127.0.0.1:PORT --bootstrap-token-file DIR.token
// --rate-limit 0 [extra...], output in DIR.log.
class Sigild {
 public:
  Sigild(std::string data_dir, std::vector<std::string> extra_args = {});
  ~Sigild();  // kills the process if still running

  // Starts the process (on the same port when restarted) and waits until
  // GET /healthz answers 200; false after timeout.
  bool Start(std::chrono::seconds timeout = std::chrono::seconds(20));
  void Kill9();
  // SIGTERM and wait.
  void Stop();

  // For a sigild started with --tls-cert/--tls-key: url() is https:// and
  // Start() checks its health trusting ca_file.
  void UseTls(std::string ca_file) { ca_file_ = std::move(ca_file); }

  int port() const { return port_; }
  std::string url() const {
    return (ca_file_.empty() ? "http" : "https") + std::string("://127.0.0.1:") + std::to_string(port_);
  }
  // Everything sigild wrote (stdout and stderr, across restarts). Stop(),
  // Kill9() and a failed Start() fail the running test when what it wrote
  // since the last such check holds a sanitizer report.
  std::string log() const;
  // The bootstrap admin token (TestToken()).
  const std::string& token() const { return TestToken(); }

 private:
  std::string data_dir_;
  std::vector<std::string> extra_args_;
  int port_;
  std::string ca_file_;
  pid_t pid_ = -1;
  size_t log_checked_ = 0;  // bytes of the log already checked for reports
  void CheckLog();
};

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out;
  std::string err;
};

// Starts `sigil args...` with extra environment, stdout/stderr into files
// under work_dir; returns the pid. SIGIL_TOKEN defaults to TestToken() and
// XDG_CONFIG_HOME to work_dir/config (env overrides both; an empty
// SIGIL_TOKEN means none).
pid_t StartSigil(const std::vector<std::string>& args,
                 const std::map<std::string, std::string>& env, const std::string& work_dir);
// Waits for a started sigil and collects its output.
RunResult WaitSigil(pid_t pid, const std::string& work_dir);
// Start + wait.
RunResult RunSigil(const std::vector<std::string>& args,
                   const std::map<std::string, std::string>& env, const std::string& work_dir);

// Writes size pseudo-random bytes (seeded) to path, creating parent dirs.
void WriteRandomFile(const std::string& path, uint64_t size, uint32_t seed);
void WriteTextFile(const std::string& path, const std::string& text);
std::string ReadWholeFile(const std::string& path);
// Relative paths of every regular file below dir, sorted.
std::vector<std::string> ListFiles(const std::string& dir);
// SHA-256 of a file as "sha256:<hex>".
std::string FileDigest(const std::string& path);

}  // namespace sigil::testing
