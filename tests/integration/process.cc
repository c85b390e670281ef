#include "tests/integration/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <thread>

#include "core/digest.h"
#include "core/fs.h"

extern char** environ;

namespace sigil::testing {
namespace {

[[noreturn]] void ExecOrDie(const std::string& binary, const std::vector<std::string>& args,
                            const std::string& out, const std::string& err) {
  int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (o < 0 || e < 0 || ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0) ::_exit(126);
  int devnull = ::open("/dev/null", O_RDONLY);
  if (devnull >= 0) ::dup2(devnull, 0);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execv(binary.c_str(), argv.data());
  ::_exit(127);
}

// ASan, LSan and UBSan write their reports to the stderr of the process
// they run in. A sanitized sigild or sigil may still exit with the code a
// test expects (1 is both ASan's and an ordinary failure's), so the test
// fails on the report itself.
void CheckNoSanitizerReport(const std::string& who, const std::string& output) {
  size_t at = std::string::npos;
  for (const char* needle : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", ": runtime error: ",
                             "AddressSanitizer:DEADLYSIGNAL", "wrote a sanitizer report"}) {
    at = std::min(at, output.find(needle));
  }
  if (at == std::string::npos) return;
  size_t from = output.rfind('\n', at);
  from = from == std::string::npos ? 0 : from + 1;
  FAIL_CHECK(who << " wrote a sanitizer report:\n" << output.substr(from, 16000));
}

}  // namespace

const std::string& TestToken() {
  static const std::string token = [] {
    // The shape sigild accepts: sgl_<16 hex>_<43 base64url>.
    static const char kHex[] = "0123456789abcdef";
    static const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::random_device rd;
    std::mt19937_64 rng((static_cast<uint64_t>(rd()) << 32) ^ rd());
    std::string t = "sgl_";
    for (int i = 0; i < 16; ++i) t.push_back(kHex[rng() % 16]);
    t.push_back('_');
    // 43 characters carry 258 bits: the last one's two low bits are zero.
    for (int i = 0; i < 42; ++i) t.push_back(kB64[rng() % 64]);
    t.push_back(kB64[(rng() % 16) * 4]);
    return t;
  }();
  return token;
}

cli::HttpOptions TokenOptions(std::string token) {
  cli::HttpOptions options;
  options.token = std::move(token);
  return options;
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    throw std::runtime_error("cannot find a free port");
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

Sigild::Sigild(std::string data_dir, std::vector<std::string> extra_args)
    : data_dir_(std::move(data_dir)), extra_args_(std::move(extra_args)), port_(FreePort()) {}

Sigild::~Sigild() { Kill9(); }

bool Sigild::Start(std::chrono::seconds timeout) {
  std::string token_file = data_dir_ + ".token";
  if (!core::WriteFileAtomic(token_file, TestToken() + "\n", 0600).ok()) return false;
  std::vector<std::string> args = {"--data", data_dir_, "--listen", "127.0.0.1:" + std::to_string(port_),
                                   "--bootstrap-token-file", token_file};
  // Tests drive sigild far faster than a client would; the request limit
  // has its own test (nginx_test.cc), which turns it back on.
  args.insert(args.end(), {"--rate-limit", "0"});
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  pid_t pid = ::fork();
  if (pid == 0) {
    // Appends, so a restart keeps the first run's log.
    std::string log = data_dir_ + ".log";
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 || ::dup2(fd, 1) < 0 || ::dup2(fd, 2) < 0) ::_exit(126);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(SIGILD_BINARY));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(SIGILD_BINARY, argv.data());
    ::_exit(127);
  }
  if (pid < 0) return false;
  pid_ = pid;
  cli::HttpOptions http_options;
  http_options.ca_file = ca_file_;
  http_options.token = "";  // /healthz needs none
  cli::HttpClient http(url(), http_options);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      CheckLog();
      return false;  // exited early
    }
    auto r = http.Perform(cli::HttpRequest{.path = "/healthz"});
    if (r.ok() && r->status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

void Sigild::Kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  CheckLog();
}

void Sigild::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  CheckLog();
}

void Sigild::CheckLog() {
  std::string text = log();
  if (text.size() <= log_checked_) return;
  CheckNoSanitizerReport("sigild (log " + data_dir_ + ".log)", text.substr(log_checked_));
  log_checked_ = text.size();
}

std::string Sigild::log() const {
  auto text = core::ReadFile(data_dir_ + ".log");
  return text.ok() ? *text : "";
}

pid_t StartSigil(const std::vector<std::string>& args,
                 const std::map<std::string, std::string>& env, const std::string& work_dir) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setenv("SIGIL_TOKEN", TestToken().c_str(), 1);
    ::setenv("XDG_CONFIG_HOME", (work_dir + "/config").c_str(), 1);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    ExecOrDie(SIGIL_BINARY, args, work_dir + "/sigil.out", work_dir + "/sigil.err");
  }
  return pid;
}

RunResult WaitSigil(pid_t pid, const std::string& work_dir) {
  RunResult r;
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = ReadWholeFile(work_dir + "/sigil.out");
  r.err = ReadWholeFile(work_dir + "/sigil.err");
  CheckNoSanitizerReport("sigil", r.err);
  return r;
}

RunResult RunSigil(const std::vector<std::string>& args,
                   const std::map<std::string, std::string>& env, const std::string& work_dir) {
  return WaitSigil(StartSigil(args, env, work_dir), work_dir);
}

void WriteRandomFile(const std::string& path, uint64_t size, uint32_t seed) {
  if (!core::MakeDirs(core::DirName(path)).ok()) throw std::runtime_error("mkdir " + path);
  core::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) throw std::runtime_error("create " + path);
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> buf(1 << 17);
  uint64_t left = size;
  while (left > 0) {
    for (auto& w : buf) w = rng();
    size_t n = static_cast<size_t>(std::min<uint64_t>(left, buf.size() * sizeof(uint64_t)));
    if (!core::WriteAll(fd.get(), buf.data(), n, path).ok()) throw std::runtime_error("write");
    left -= n;
  }
}

void WriteTextFile(const std::string& path, const std::string& text) {
  if (!core::MakeDirs(core::DirName(path)).ok()) throw std::runtime_error("mkdir " + path);
  if (!core::WriteFileAtomic(path, text).ok()) throw std::runtime_error("write " + path);
}

std::string ReadWholeFile(const std::string& path) {
  auto text = core::ReadFile(path, uint64_t{1} << 30);
  return text.ok() ? *text : "";
}

std::vector<std::string> ListFiles(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file()) {
      out.push_back(it->path().lexically_relative(dir).generic_string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string FileDigest(const std::string& path) {
  auto d = core::HashFile(path);
  return d.ok() ? d->ToString() : "error: " + d.status().ToString();
}

}  // namespace sigil::testing
