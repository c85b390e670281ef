// sigil-validator: one evaluation per process, started by RunInWorker
// (worker.cc has the protocol). WorkerMain lives here rather than in
// worker.cc because it runs LibTorch, which the server must not link.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <new>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "core/json.h"
#include "validator/evaluation.h"
#include "validator/worker.h"

namespace sigil::validator {
namespace {

constexpr size_t kMaxJobBytes = 1 << 20;

}  // namespace

int WorkerMain(int in_fd, int out_fd) {
  // The outcome gets a descriptor of its own; fd 1 then points at stderr, so
  // a model's print() or LibTorch's chatter cannot corrupt the protocol.
  int protocol_fd = out_fd;
  if (out_fd == STDOUT_FILENO) {
    protocol_fd = ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    if (protocol_fd < 0 || ::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) return 2;
  }
  // Started by RunInWorker, the sandbox is already on; run by hand, it is
  // applied here (still one thread: LibTorch starts its pools lazily).
  const char* given = std::getenv(kWorkerIsolationEnv);
  std::string isolation = given && *given ? given : ApplyNetworkIsolation();

  std::string text;
  char buf[65536];
  while (text.size() <= kMaxJobBytes) {
    ssize_t n = ::read(in_fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  EvalOutcome outcome;
  int code = 0;
  auto json = core::ParseJson(text, {.max_bytes = kMaxJobBytes, .max_depth = 16});
  auto job = json.ok() ? EvalJobFromJson(*json) : core::Result<EvalJob>(json.status());
  if (job.ok()) {
    outcome = RunEvaluation(*job);
  } else {
    outcome.torch_version = TorchVersion();
    outcome.error = "unreadable job: " + job.status().message();
    code = 2;
  }
  outcome.isolation = isolation;
  std::string reply = core::DumpJson(EvalOutcomeToJson(outcome)) + "\n";
  if (!core::WriteAll(protocol_fd, reply.data(), reply.size(), "outcome").ok()) return 3;
  return code;
}

}  // namespace sigil::validator

namespace {

// Freed when an allocation first fails, so that reporting the failure (a
// message, the outcome's JSON) still finds memory under RLIMIT_AS.
char* g_reserve = nullptr;

void OnOutOfMemory() {
  if (g_reserve) {
    delete[] g_reserve;
    g_reserve = nullptr;
    return;  // the allocation is retried once with the reserve given back
  }
  std::set_new_handler(nullptr);
  throw std::bad_alloc();
}

}  // namespace

int main() {
  g_reserve = new char[4 << 20];
  std::set_new_handler(OnOutOfMemory);
  int code;
  try {
    code = sigil::validator::WorkerMain(STDIN_FILENO, STDOUT_FILENO);
  } catch (const std::bad_alloc&) {
    static const char kMessage[] = "sigil-validator: out of memory (std::bad_alloc)\n";
    (void)!::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
    code = 4;
  }
  // No static destructors: LibTorch's teardown has nothing to add once the
  // outcome is written, and a crash in it would blur a clean result.
  ::_exit(code);
}
