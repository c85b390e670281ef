// The worker process, both sides.
//
// Protocol (the worker's side is worker_main.cc): the parent writes the job as one JSON document into a pipe
// that becomes the child's stdin (written whole before fork, so the parent never blocks on it nor takes
// SIGPIPE), execs sigil-validator, and reads the outcome as one JSON document from the child's stdout. The
// worker moves its stdout aside at start and points fd 1 at stderr, so whatever a model prints cannot corrupt
// the outcome. stderr is kept as a bounded tail for messages. A status pipe (close-on-exec) tells the parent
// which network isolation the child got, or why exec failed.
#include "validator/worker.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/fs.h"
#include "core/json.h"
#include "validator/sanitizers.h"

extern char** environ;

namespace sigil::validator {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kIsolationEnv = kWorkerIsolationEnv;
constexpr size_t kMaxJobBytes = 60 << 10;      // fits a pipe's default 64 KiB buffer
constexpr size_t kMaxOutcomeBytes = 16 << 20;  // stdout beyond this is refused
constexpr size_t kStderrTailBytes = 8 << 10;
constexpr uint64_t kMaxFileBytes = 1ull << 30;  // RLIMIT_FSIZE: the worker writes nothing big
// RLIMIT_CPU is a backstop for a parent that died (then PDEATHSIG should have
// fired already); the wall clock is the real limit. CPU seconds add up over
// threads, so the backstop allows every core for the whole time limit.
constexpr uint64_t kCpuMarginS = 30;
constexpr auto kPollTick = std::chrono::milliseconds(50);

// --- network isolation, async-signal-safe (runs between fork and exec) ---

#if defined(__x86_64__)
#define SIGIL_SECCOMP_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SIGIL_SECCOMP_ARCH AUDIT_ARCH_AARCH64
#endif

#ifdef SIGIL_SECCOMP_ARCH
// socket(2) for any family but AF_UNIX fails with EACCES; so does
// io_uring_setup (io_uring can open sockets) and any syscall of a foreign
// ABI (x32 numbers, another architecture) that could reach socket unseen.
constexpr uint32_t kX32SyscallBit = 0x40000000;
constexpr sock_filter kSocketFilter[] = {
    /* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
    /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SIGIL_SECCOMP_ARCH, 0, 8),
    /* 2 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
    /* 3 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, kX32SyscallBit, 6, 0),
    /* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 5, 0),
    /* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 1, 0),
    /* 6 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    /* 7 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0])),
    /* 8 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 0, 1),
    /* 9 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    /* 10 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EACCES & SECCOMP_RET_DATA)),
};
#endif

// A new network namespace (only loopback, down) where the kernel allows one,
// as root or through a new user namespace; else the seccomp filter. Returns
// what it got: "netns", "seccomp" or "none".
const char* IsolateNetwork() {
  if (::unshare(CLONE_NEWNET) == 0) return "netns";
  if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0) return "netns";
#ifdef SIGIL_SECCOMP_ARCH
  sock_fprog prog;
  prog.len = static_cast<unsigned short>(sizeof(kSocketFilter) / sizeof(kSocketFilter[0]));
  prog.filter = const_cast<sock_filter*>(kSocketFilter);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
      ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0) {
    return "seccomp";
  }
#endif
  return "none";
}

// --- the child, between fork and exec: async-signal-safe calls only ---

struct ChildPlan {
  const char* executable;
  char* const* argv;
  char* const* envp;
  char* isolation_slot;  // the value part of SIGIL_WORKER_ISOLATION=..., 16 bytes
  const char* scratch;
  int stdin_fd, stdout_fd, stderr_fd, status_fd;
  const int* inherit;
  size_t inherit_count;
  rlimit as, cpu, fsize;
  bool limit_address_space;  // false in ASan builds (sanitizers.h)
  pid_t parent;
};

void WriteStatus(int fd, const char* text) {
  size_t n = strlen(text);
  while (n > 0) {
    ssize_t w = ::write(fd, text, n);
    if (w <= 0 && errno != EINTR) return;
    if (w > 0) {
      text += w;
      n -= static_cast<size_t>(w);
    }
  }
}

[[noreturn]] void ChildFail(const ChildPlan& p, const char* step) {
  int err = errno;
  WriteStatus(p.status_fd, "\nfailed:");
  WriteStatus(p.status_fd, step);
  WriteStatus(p.status_fd, ":");
  char digits[16];
  int i = 15;
  digits[i] = '\0';
  do {
    digits[--i] = static_cast<char>('0' + err % 10);
    err /= 10;
  } while (err > 0 && i > 0);
  WriteStatus(p.status_fd, digits + i);
  ::_exit(127);
}

[[noreturn]] void RunChild(const ChildPlan& p) {
  ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != p.parent) ::_exit(127);  // the parent died before PDEATHSIG was set
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);

  if (::dup2(p.stdin_fd, 0) < 0 || ::dup2(p.stdout_fd, 1) < 0 || ::dup2(p.stderr_fd, 2) < 0) {
    ChildFail(p, "dup2");
  }
  if (::chdir(p.scratch) != 0) ChildFail(p, "chdir");

  const char* isolation = IsolateNetwork();
  size_t n = strlen(isolation);
  memcpy(p.isolation_slot, isolation, n + 1);
  WriteStatus(p.status_fd, isolation);

  rlimit no_core = {0, 0};
  if ((p.limit_address_space && ::setrlimit(RLIMIT_AS, &p.as) != 0) || ::setrlimit(RLIMIT_CPU, &p.cpu) != 0 ||
      ::setrlimit(RLIMIT_CORE, &no_core) != 0 || ::setrlimit(RLIMIT_FSIZE, &p.fsize) != 0) {
    ChildFail(p, "setrlimit");
  }

  // Everything above 2 closes at exec except the descriptors to inherit.
  if (::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) != 0) {
    rlimit files;
    int top = (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < 65536)
                  ? static_cast<int>(files.rlim_cur)
                  : 65536;
    for (int fd = 3; fd < top; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  for (size_t i = 0; i < p.inherit_count; ++i) {
    if (::fcntl(p.inherit[i], F_SETFD, 0) != 0) ChildFail(p, "inherit_fds");
  }
  ::execve(p.executable, p.argv, p.envp);
  ChildFail(p, "exec");
}

// --- the parent ---

std::string SignalName(int sig) {
  const char* descr = ::sigdescr_np(sig);
  return descr ? descr : "unknown signal";
}

bool MentionsOutOfMemory(const std::string& text) {
  for (const char* needle :
       {"can't allocate memory", "bad_alloc", "Cannot allocate memory", "out of memory", "std::bad_alloc"}) {
    if (text.find(needle) != std::string::npos) return true;
  }
  return false;
}

std::string Trimmed(std::string text, size_t max) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.size() > max) text = "..." + text.substr(text.size() - max);
  return text;
}

struct Pipe {
  core::UniqueFd read, write;
};

core::Result<Pipe> MakePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return core::ErrnoStatus(errno, "pipe");
  return Pipe{core::UniqueFd(fds[0]), core::UniqueFd(fds[1])};
}

// Reads what is there without blocking; false at end of file or error.
bool Drain(int fd, std::string* into, size_t limit, bool keep_tail, bool* overflow) {
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      into->append(buf, static_cast<size_t>(n));
      if (into->size() > limit) {
        if (keep_tail) {
          into->erase(0, into->size() - limit);
        } else {
          into->resize(limit);
          if (overflow) *overflow = true;
        }
      }
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
}

// The scratch directory, removed when the run is over, whatever happened.
class ScratchDir {
 public:
  ~ScratchDir() {
    if (!path_.empty()) core::RemoveTree(path_).IgnoreError();
  }
  core::Status Create(const std::string& parent) {
    std::string base = parent;
    if (base.empty()) {
      const char* tmp = std::getenv("TMPDIR");
      base = tmp && *tmp ? tmp : "/tmp";
    }
    std::string templ = core::JoinPath(base, "sigil-eval-XXXXXX");
    if (::mkdtemp(templ.data()) == nullptr) {
      return core::ErrnoStatus(errno, "creating a scratch directory in " + base);
    }
    path_ = templ;
    return core::OkStatus();
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// VmPeak of a live process, from /proc; 0 when unknown.
uint64_t PeakAddressSpace(pid_t pid) {
  auto status = core::ReadFile("/proc/" + std::to_string(pid) + "/status", 1 << 16);
  if (!status.ok()) return 0;
  size_t at = status->find("VmPeak:");
  if (at == std::string::npos) return 0;
  return std::strtoull(status->c_str() + at + 7, nullptr, 10) << 10;
}

struct Ending {
  bool timed_out = false;
  uint64_t peak_address_space = 0;  // read just before a kill at the time limit
  int poll_errno = 0;               // the parent could not watch the child
  bool cancelled = false;
  int wait_status = 0;
  rusage usage{};
};

void DescribeEnding(const Ending& end, const WorkerOptions& options, bool stdout_overflow,
                    const std::string& out, const std::string& err, EvalOutcome* outcome) {
  const std::string limit_mib = std::to_string(options.memory_limit_bytes >> 20);
  const std::string err_tail = Trimmed(err, 2000);
  std::optional<EvalOutcome> reported;
  std::string unreadable;
  if (!out.empty() && !stdout_overflow) {
    auto json = core::ParseJson(out, {.max_bytes = kMaxOutcomeBytes, .max_depth = 16});
    auto parsed = json.ok() ? EvalOutcomeFromJson(*json) : core::Result<EvalOutcome>(json.status());
    if (parsed.ok()) {
      reported = std::move(parsed).value();
    } else {
      unreadable = parsed.status().message();
    }
  }
  if (reported) *outcome = *reported;
  outcome->exit_code.reset();
  outcome->signal.reset();
  if (WIFEXITED(end.wait_status)) outcome->exit_code = WEXITSTATUS(end.wait_status);
  if (WIFSIGNALED(end.wait_status)) outcome->signal = WTERMSIG(end.wait_status);
  outcome->peak_rss_bytes = static_cast<uint64_t>(end.usage.ru_maxrss) * 1024;

  auto fail = [&](std::string why) {
    outcome->ok = false;
    outcome->error = std::move(why);
  };
  if (end.cancelled) return fail("cancelled");
  if (end.poll_errno != 0) {
    return fail(std::string("the worker was stopped: watching it failed: ") + strerror(end.poll_errno));
  }
  if (end.timed_out) {
    std::string why = "the model ran past the time limit of " + std::to_string(options.time_limit_s) + " s";
    // LibTorch can stall, rather than fail, when RLIMIT_AS leaves no room for
    // its threads; say so when the address space had reached the limit.
    if (end.peak_address_space + (64ull << 20) >= options.memory_limit_bytes) {
      why += " (its address space had reached the memory limit of " + limit_mib + " MiB)";
    }
    return fail(why);
  }
  bool clean_exit = outcome->exit_code.has_value();
  if (reported) {
    if (!outcome->ok && MentionsOutOfMemory(outcome->error)) {
      return fail("out of memory (limit " + limit_mib + " MiB): " + outcome->error);
    }
    if (outcome->ok && !(clean_exit && *outcome->exit_code == 0)) {
      return fail("the worker reported an outcome but then " +
                  (clean_exit ? "exited with code " + std::to_string(*outcome->exit_code)
                              : "was killed by signal " + std::to_string(*outcome->signal)));
    }
    return;
  }
  if (outcome->signal) {
    int sig = *outcome->signal;
    if (sig == SIGXCPU) {
      return fail("the model ran past its CPU-time limit (" + std::to_string(options.time_limit_s) +
                  " s per core)");
    }
    if (sig == SIGKILL) {
      return fail("out of memory (limit " + limit_mib +
                  " MiB): killed by SIGKILL, as the kernel's out-of-memory killer does");
    }
    std::string why = "killed by signal " + std::to_string(sig) + " (" + SignalName(sig) + ")";
    if (MentionsOutOfMemory(err_tail)) {
      return fail("out of memory (limit " + limit_mib + " MiB): " + why + ": " + err_tail);
    }
    return fail(err_tail.empty() ? why : why + ": " + err_tail);
  }
  if (stdout_overflow) {
    return fail("the worker wrote more than " + std::to_string(kMaxOutcomeBytes >> 20) + " MiB of outcome");
  }
  if (MentionsOutOfMemory(err_tail)) {
    return fail("out of memory (limit " + limit_mib + " MiB): " + err_tail);
  }
  std::string why = "the worker exited with code " + std::to_string(*outcome->exit_code);
  if (!unreadable.empty())
    why += " and an unreadable outcome (" + unreadable + ")";
  else
    why += " without an outcome";
  return fail(err_tail.empty() ? why : why + ": " + err_tail);
}

}  // namespace

core::Result<EvalOutcome> RunInWorker(const EvalJob& job, const WorkerOptions& options) {
  if (options.executable.empty()) {
    return core::InvalidArgument("no worker executable (sigil-validator) was given");
  }
  if (::access(options.executable.c_str(), X_OK) != 0) {
    return core::Internal("the worker executable " + options.executable +
                          " cannot be run: " + strerror(errno));
  }
  if (options.time_limit_s == 0 || options.memory_limit_bytes == 0) {
    return core::InvalidArgument("worker time and memory limits must be above 0");
  }
  for (int fd : options.inherit_fds) {
    if (fd <= 2 || ::fcntl(fd, F_GETFD) < 0) {
      return core::InvalidArgument("inherit_fds holds " + std::to_string(fd) +
                                   ", not an open descriptor above 2");
    }
  }
  std::string job_text = core::DumpJson(EvalJobToJson(job)) + "\n";
  if (job_text.size() > kMaxJobBytes) {
    return core::InvalidArgument("the evaluation job is larger than " + std::to_string(kMaxJobBytes) +
                                 " bytes");
  }

  ScratchDir scratch;
  RETURN_IF_ERROR(scratch.Create(options.scratch_parent));

  // The whole job goes into the stdin pipe now: no writes to a child that
  // may be dead, no SIGPIPE, no deadlock between stdin and stdout.
  ASSIGN_OR_RETURN(Pipe in, MakePipe());
  RETURN_IF_ERROR(core::WriteAll(in.write.get(), job_text.data(), job_text.size(), "job pipe"));
  in.write.Reset();
  ASSIGN_OR_RETURN(Pipe out, MakePipe());
  ASSIGN_OR_RETURN(Pipe err, MakePipe());
  ASSIGN_OR_RETURN(Pipe status, MakePipe());

  // Everything the child needs is allocated before fork: after it, only
  // async-signal-safe calls (the parent may have other threads).
  std::vector<std::string> env_strings;
  std::string asan_options;
  for (char** e = environ; *e; ++e) {
    std::string_view entry(*e);
    if (entry.starts_with(std::string(kIsolationEnv) + "=")) continue;
    if (kAddressSanitizerBuild && entry.starts_with("ASAN_OPTIONS=")) {
      asan_options = entry.substr(strlen("ASAN_OPTIONS="));
      continue;
    }
    env_strings.emplace_back(entry);
  }
  if (kAddressSanitizerBuild) {
    // The memory limit, as sanitizers.h says; later ASan options win.
    if (!asan_options.empty()) asan_options += ":";
    asan_options += "soft_rss_limit_mb=" + std::to_string(std::max<uint64_t>(1, options.memory_limit_bytes >> 20)) +
                    ":allocator_may_return_null=1";
    env_strings.push_back("ASAN_OPTIONS=" + asan_options);
  }
  // glibc reserves 64 MiB of address space per malloc arena and makes up to
  // 8 per core; two keep the worker's address space (RLIMIT_AS) predictable.
  if (!std::getenv("MALLOC_ARENA_MAX")) env_strings.emplace_back("MALLOC_ARENA_MAX=2");
  std::string isolation_entry = std::string(kIsolationEnv) + "=" + std::string(16, '\0');
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(isolation_entry.data());
  envp.push_back(nullptr);
  std::string executable = options.executable;
  std::vector<char*> argv = {executable.data(), nullptr};

  uint64_t cores = std::max(1u, std::thread::hardware_concurrency());
  rlim_t cpu_soft = static_cast<rlim_t>(options.time_limit_s * cores + kCpuMarginS);
  ChildPlan plan{
      .executable = executable.c_str(),
      .argv = argv.data(),
      .envp = envp.data(),
      .isolation_slot = isolation_entry.data() + strlen(kIsolationEnv) + 1,
      .scratch = scratch.path().c_str(),
      .stdin_fd = in.read.get(),
      .stdout_fd = out.write.get(),
      .stderr_fd = err.write.get(),
      .status_fd = status.write.get(),
      .inherit = options.inherit_fds.data(),
      .inherit_count = options.inherit_fds.size(),
      .as = {options.memory_limit_bytes, options.memory_limit_bytes},
      .cpu = {cpu_soft, cpu_soft + 5},
      .fsize = {kMaxFileBytes, kMaxFileBytes},
      .limit_address_space = !kAddressSanitizerBuild,
      .parent = ::getpid(),
  };

  auto started = Clock::now();
  pid_t pid = ::fork();
  if (pid < 0) return core::Internal(std::string("starting the worker: fork: ") + strerror(errno));
  if (pid == 0) RunChild(plan);
  ::setpgid(pid, pid);  // also here, so the group exists before any kill below
  in.read.Reset();
  out.write.Reset();
  err.write.Reset();
  status.write.Reset();

  // The status pipe closes at exec: its text is the isolation, and a failure.
  std::string status_text;
  while (true) {
    char buf[256];
    ssize_t n = ::read(status.read.get(), buf, sizeof buf);
    if (n > 0) {
      status_text.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  if (size_t f = status_text.find("\nfailed:"); f != std::string::npos) {
    int wstatus;
    while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    std::string what = status_text.substr(f + 8);
    size_t colon = what.rfind(':');
    int code = colon == std::string::npos ? 0 : std::atoi(what.c_str() + colon + 1);
    return core::Internal("starting the worker: " + what.substr(0, colon) + ": " + strerror(code));
  }
  std::string isolation = status_text.empty() ? "none" : status_text;

  ::fcntl(out.read.get(), F_SETFL, O_NONBLOCK);
  ::fcntl(err.read.get(), F_SETFL, O_NONBLOCK);
  std::string stdout_text, stderr_text;
  bool stdout_overflow = false, out_open = true, err_open = true;
  Ending end;
  auto deadline = started + std::chrono::seconds(options.time_limit_s);
  while (true) {
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == pid) {
      break;  // exited; reaped below, after the group is gone
    }
    if (options.cancel && options.cancel->load()) {
      end.cancelled = true;
      break;
    }
    auto now = Clock::now();
    if (now >= deadline) {
      end.timed_out = true;
      end.peak_address_space = PeakAddressSpace(pid);
      break;
    }
    pollfd fds[2];
    nfds_t nfds = 0;
    if (out_open) fds[nfds++] = {out.read.get(), POLLIN, 0};
    if (err_open) fds[nfds++] = {err.read.get(), POLLIN, 0};
    auto wait = std::min<Clock::duration>(kPollTick, deadline - now);
    int ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count());
    if (nfds == 0) {
      ::poll(nullptr, 0, ms);
      continue;
    }
    if (::poll(fds, nfds, ms) < 0 && errno != EINTR) {
      end.poll_errno = errno;
      break;
    }
    if (out_open) out_open = Drain(out.read.get(), &stdout_text, kMaxOutcomeBytes, false, &stdout_overflow);
    if (err_open) err_open = Drain(err.read.get(), &stderr_text, kStderrTailBytes, true, nullptr);
  }
  // The whole group goes: the worker on timeout or cancel, and in every case
  // anything it left behind.
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
  while (::wait4(pid, &end.wait_status, 0, &end.usage) < 0 && errno == EINTR) {
  }

  // With the group dead the pipes reach end of file; a descendant that left
  // the group could hold them open, so the drain is bounded.
  auto drain_deadline = Clock::now() + std::chrono::seconds(1);
  while ((out_open || err_open) && Clock::now() < drain_deadline) {
    pollfd fds[2];
    nfds_t nfds = 0;
    if (out_open) fds[nfds++] = {out.read.get(), POLLIN, 0};
    if (err_open) fds[nfds++] = {err.read.get(), POLLIN, 0};
    ::poll(fds, nfds, 50);
    if (out_open) out_open = Drain(out.read.get(), &stdout_text, kMaxOutcomeBytes, false, &stdout_overflow);
    if (err_open) err_open = Drain(err.read.get(), &stderr_text, kStderrTailBytes, true, nullptr);
  }

  if (kSanitizerBuild && HoldsSanitizerReport(stderr_text)) {
    // Sanitizer builds are test runs: a report from the worker is a bug to
    // fix, not only a failed evaluation, so it goes to this process's stderr
    // (sigild's log) as well, where tests look for reports.
    std::fprintf(stderr, "sigil-validator (pid %d) wrote a sanitizer report:\n%s\n", static_cast<int>(pid),
                 stderr_text.c_str());
  }

  EvalOutcome outcome;
  DescribeEnding(end, options, stdout_overflow, stdout_text, stderr_text, &outcome);
  outcome.isolation = isolation;
  if (outcome.seconds == 0) outcome.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  return outcome;
}

std::string FindWorkerExecutable() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  std::string dir = core::DirName(std::string(buf, static_cast<size_t>(n)));
  for (const std::string& candidate :
       {core::JoinPath(dir, "sigil-validator"), core::JoinPath(dir, "../validator/sigil-validator")}) {
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string ApplyNetworkIsolation() { return IsolateNetwork(); }

bool HoldsSanitizerReport(std::string_view text) {
  // ASan's out-of-memory is the memory limit at work (kAddressSanitizerBuild).
  if (text.find("SUMMARY: AddressSanitizer: out-of-memory") != std::string_view::npos) return false;
  for (const char* needle : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", ": runtime error: ",
                             "AddressSanitizer:DEADLYSIGNAL", "UndefinedBehaviorSanitizer:DEADLYSIGNAL"}) {
    if (text.find(needle) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace sigil::validator
