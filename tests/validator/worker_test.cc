#include "validator/worker.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/temp_dir.h"
#include "tests/validator/fixtures/fixture_data.h"
#include "validator/evaluation.h"
#include "validator/sanitizers.h"

namespace sigil::validator {
namespace {

using sigil::testing::FixtureJob;
using sigil::testing::SafetensorsIndex;
using sigil::testing::TensorValues;
using sigil::testing::ValidatorFixture;
using Clock = std::chrono::steady_clock;

// make_fixtures.py's CLASSIFIER_W / CLASSIFIER_B and REGRESSOR_W / REGRESSOR_B.
constexpr double kClassifierW[3][4] = {{1.0, 0.0, -1.0, 0.5}, {0.0, 1.0, 0.5, -1.0}, {-0.5, 0.25, 1.0, 1.0}};
constexpr double kClassifierB[3] = {0.125, -0.25, 0.0};
constexpr double kRegressorW[2][4] = {{0.5, -0.25, 0.0, 1.0}, {0.0, 0.75, -0.5, 0.25}};
constexpr double kRegressorB[2] = {0.5, -1.0};

constexpr uint64_t kGiB = 1ull << 30;

WorkerOptions Options(const sigil::testing::TempDir& scratch) {
  WorkerOptions options;
  options.executable = SIGIL_BINARY_DIR "/validator/sigil-validator";
  options.scratch_parent = scratch.path();
  options.time_limit_s = 120;
  options.memory_limit_bytes = 2 * kGiB;
  return options;
}

// Entries of a directory other than . and ..
size_t Entries(const std::string& dir) {
  size_t n = 0;
  DIR* d = ::opendir(dir.c_str());
  REQUIRE(d != nullptr);
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") ++n;
  }
  ::closedir(d);
  return n;
}

EvalOutcome Run(const EvalJob& job, const WorkerOptions& options) {
  auto outcome = RunInWorker(job, options);
  REQUIRE(outcome.ok());
  INFO("error: " << outcome->error);
  // In sanitizer builds the worker is sanitized too: a report from it (its
  // stderr tail ends up in error) is a bug, whatever the outcome.
  CHECK_FALSE(HoldsSanitizerReport(outcome->error));
  CHECK(Entries(options.scratch_parent) == 0);  // the scratch directory is gone
  return std::move(outcome).value();
}

struct Expected {
  double accuracy = 0, top2 = 0, cross_entropy = 0;
};

// The classifier's metrics on its dataset, computed here in double from the
// fixture's bytes and the weights above, independently of the runner.
Expected ClassifierMetrics() {
  auto index = SafetensorsIndex(ValidatorFixture("classification.safetensors"));
  std::vector<float> x = TensorValues<float>(index.at("inputs"));
  std::vector<int64_t> y = TensorValues<int64_t>(index.at("targets"));
  Expected e;
  for (size_t i = 0; i < y.size(); ++i) {
    double logits[3];
    for (int c = 0; c < 3; ++c) {
      logits[c] = kClassifierB[c];
      for (int k = 0; k < 4; ++k) logits[c] += kClassifierW[c][k] * x[i * 4 + k];
    }
    double target = logits[y[i]];
    int above = 0;
    for (double l : logits) above += l > target;
    e.accuracy += above == 0;
    e.top2 += above < 2;
    double sum = 0;
    for (double l : logits) sum += std::exp(l);
    e.cross_entropy += std::log(sum) - target;
  }
  double n = static_cast<double>(y.size());
  return {e.accuracy / n, e.top2 / n, e.cross_entropy / n};
}

TEST_CASE("worker: the classifier's metrics match an independent computation", "[validator]") {
  sigil::testing::TempDir scratch;
  EvalJob job = FixtureJob("classifier.pt", "classification.safetensors",
                           {"accuracy", "top_k_accuracy", "cross_entropy"});
  job.batch_size = 5;  // 48 samples: nine full batches and one of three
  job.top_k = 2;
  EvalOutcome o = Run(job, Options(scratch));
  REQUIRE(o.ok);
  Expected e = ClassifierMetrics();
  CHECK(e.accuracy == 0.75);  // make_fixtures.py moves every fourth target
  CHECK(o.metrics.at("accuracy") == e.accuracy);
  CHECK(o.metrics.at("top_k_accuracy") == e.top2);
  CHECK(o.metrics.at("cross_entropy") == Approx(e.cross_entropy).epsilon(1e-9));
  CHECK(o.metrics.at("latency_p50_ms") > 0);
  CHECK(o.metrics.at("latency_p95_ms") >= o.metrics.at("latency_p50_ms"));
  CHECK(o.metrics.at("throughput") > 0);
  CHECK(o.metrics.size() == 6);
  CHECK(o.samples == 48);
  CHECK(o.batches == 10);
  CHECK(o.deterministic == true);
  CHECK(o.device == "cpu");
  // Debian's libtorch-dev 1.13.1 says TORCH_VERSION "1.13.0" in its header.
  CHECK_THAT(o.torch_version, Catch::StartsWith("1.13."));
  CHECK(o.threads >= 1);
  CHECK(o.exit_code == 0);
  CHECK_FALSE(o.signal.has_value());
  CHECK(o.peak_rss_bytes > (50ull << 20));  // LibTorch alone is ~150 MiB
  CHECK(o.load_seconds > 0);
  CHECK(o.seconds >= o.load_seconds);
  // Root here: a network namespace. Elsewhere at least the seccomp filter.
  CHECK(o.isolation != "none");
  if (::geteuid() == 0) CHECK(o.isolation == "netns");
}

TEST_CASE("worker: a worse classifier scores lower, as baselines will compare", "[validator]") {
  sigil::testing::TempDir scratch;
  EvalOutcome good =
      Run(FixtureJob("classifier.pt", "classification.safetensors", {"accuracy"}), Options(scratch));
  EvalOutcome worse =
      Run(FixtureJob("classifier_worse.pt", "classification.safetensors", {"accuracy"}), Options(scratch));
  REQUIRE(good.ok);
  REQUIRE(worse.ok);
  CHECK(worse.metrics.at("accuracy") < good.metrics.at("accuracy"));
}

TEST_CASE("worker: regression metrics match an independent computation", "[validator]") {
  sigil::testing::TempDir scratch;
  EvalJob job = FixtureJob("regressor.pt", "regression.safetensors", {"mse", "mae"});
  job.determinism = false;
  EvalOutcome o = Run(job, Options(scratch));
  REQUIRE(o.ok);
  auto index = SafetensorsIndex(ValidatorFixture("regression.safetensors"));
  std::vector<float> x = TensorValues<float>(index.at("inputs"));
  std::vector<float> y = TensorValues<float>(index.at("targets"));
  double se = 0, ae = 0;
  for (size_t i = 0; i < y.size() / 2; ++i) {
    for (int c = 0; c < 2; ++c) {
      double out = kRegressorB[c];
      for (int k = 0; k < 4; ++k) out += kRegressorW[c][k] * x[i * 4 + k];
      double d = out - y[i * 2 + c];
      se += d * d;
      ae += std::fabs(d);
    }
  }
  CHECK(o.metrics.at("mse") == Approx(se / y.size()).epsilon(1e-9));
  CHECK(o.metrics.at("mae") == Approx(ae / y.size()).epsilon(1e-9));
  CHECK(o.metrics.at("mse") > 0);
  CHECK_FALSE(o.deterministic.has_value());
}

TEST_CASE("worker: a model that throws fails with its message", "[validator]") {
  sigil::testing::TempDir scratch;
  EvalOutcome o = Run(FixtureJob("thrower.pt", "classification.safetensors", {"accuracy"}), Options(scratch));
  CHECK_FALSE(o.ok);
  CHECK_THAT(o.error, Catch::Contains("boom"));
  CHECK(o.exit_code == 0);  // a failed evaluation is still a clean report
}

TEST_CASE("worker: a corrupt archive fails at loading", "[validator]") {
  sigil::testing::TempDir scratch;
  EvalOutcome o = Run(FixtureJob("corrupt.pt", "classification.safetensors", {"accuracy"}), Options(scratch));
  CHECK_FALSE(o.ok);
  CHECK_THAT(o.error, Catch::StartsWith("loading the model: ") && Catch::Contains("archive"));
}

TEST_CASE("worker: datasets that do not fit the metrics or each other", "[validator]") {
  sigil::testing::TempDir scratch;
  auto classification = SafetensorsIndex(ValidatorFixture("classification.safetensors"));
  auto regression = SafetensorsIndex(ValidatorFixture("regression.safetensors"));

  EvalJob float_targets = FixtureJob("regressor.pt", "regression.safetensors", {"cross_entropy"});
  EvalOutcome o = Run(float_targets, Options(scratch));
  CHECK_FALSE(o.ok);
  CHECK_THAT(o.error, Catch::Contains("cross_entropy") && Catch::Contains("integer class targets"));

  EvalJob uneven = FixtureJob("classifier.pt", "classification.safetensors", {"accuracy"});
  uneven.targets = regression.at("targets");
  o = Run(uneven, Options(scratch));
  CHECK_FALSE(o.ok);
  CHECK_THAT(o.error, Catch::Contains("inputs have 48 samples, targets 24"));

  EvalJob past_end = FixtureJob("classifier.pt", "classification.safetensors", {"accuracy"});
  past_end.inputs.tensor.shape = {4800, 4};
  o = Run(past_end, Options(scratch));
  CHECK_FALSE(o.ok);
  CHECK_THAT(o.error, Catch::Contains("extends past the end"));

  EvalJob missing = FixtureJob("classifier.pt", "classification.safetensors", {"accuracy"});
  missing.model_path = ValidatorFixture("no-such-model.pt");
  o = Run(missing, Options(scratch));
  CHECK_FALSE(o.ok);
  CHECK_THAT(o.error, Catch::StartsWith("loading the model: "));
  (void)classification;
}

TEST_CASE("worker: a model that never returns is killed at the time limit", "[validator]") {
  sigil::testing::TempDir scratch;
  WorkerOptions options = Options(scratch);
  options.time_limit_s = 3;
  auto start = Clock::now();
  EvalOutcome o = Run(FixtureJob("spinner.pt", "classification.safetensors", {"accuracy"}), options);
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  CHECK_FALSE(o.ok);
  CHECK_THAT(o.error, Catch::StartsWith("the model ran past the time limit of 3 s"));
  CHECK(o.signal == SIGKILL);
  CHECK(seconds >= 3);
  CHECK(seconds < 10);  // generous: 3 s and the kill
}

TEST_CASE("worker: a model that allocates without bound runs out of memory", "[validator]") {
  sigil::testing::TempDir scratch;
  WorkerOptions options = Options(scratch);
  // The smallest limit specs allow: LibTorch and the model load under it, and
  // the runaway allocation stops at it.
  options.memory_limit_bytes = kMinWorkerMemoryBytes;
  EvalOutcome o = Run(FixtureJob("hog.pt", "classification.safetensors", {"accuracy"}), options);
  CHECK_FALSE(o.ok);
  CHECK_THAT(o.error, Catch::StartsWith("out of memory (limit 1024 MiB): "));
  if (kAddressSanitizerBuild) {
    // ASan's sampled RSS limit (sanitizers.h) lets the peak pass the limit by
    // what the model allocates between samples: a few 64 MiB tensors.
    CHECK(o.peak_rss_bytes < kMinWorkerMemoryBytes + (512ull << 20));
  } else {
    CHECK(o.peak_rss_bytes < kMinWorkerMemoryBytes);
  }

  // Under the same limit an ordinary model runs.
  o = Run(FixtureJob("classifier.pt", "classification.safetensors", {"accuracy"}), options);
  CHECK(o.ok);
}

TEST_CASE("worker: sanitizer reports are told from the memory limit", "[validator]") {
  struct Case {
    const char* text;
    bool report;
  };
  const Case cases[] = {
      {"==7==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x6020", true},
      {"==7==ERROR: LeakSanitizer: detected memory leaks", true},
      {"validator/metrics.cc:12:5: runtime error: signed integer overflow", true},
      {"AddressSanitizer:DEADLYSIGNAL\n==7==ERROR: AddressSanitizer: SEGV on unknown address", true},
      {"==7==AddressSanitizer: soft rss limit exhausted (1024Mb vs 1025Mb)\n==7==ERROR: AddressSanitizer: "
       "allocator is out of memory trying to allocate 0x8 bytes\nSUMMARY: AddressSanitizer: out-of-memory",
       false},
      {"terminate called after throwing an instance of 'std::bad_alloc'", false},
      {"", false},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    CHECK(HoldsSanitizerReport(c.text) == c.report);
  }
}

TEST_CASE("worker: cancelling from another thread stops the run", "[validator]") {
  sigil::testing::TempDir scratch;
  std::atomic<bool> cancel{false};
  WorkerOptions options = Options(scratch);
  options.time_limit_s = 60;
  options.cancel = &cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    cancel = true;
  });
  auto start = Clock::now();
  EvalOutcome o = Run(FixtureJob("spinner.pt", "classification.safetensors", {"accuracy"}), options);
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  canceller.join();
  CHECK_FALSE(o.ok);
  CHECK(o.error == "cancelled");
  CHECK(o.signal == SIGKILL);
  CHECK(seconds < 10);
}

TEST_CASE("worker: inherited descriptors are visible, others are not", "[validator]") {
  sigil::testing::TempDir scratch;
  // Opened without O_CLOEXEC: only the worker's own closing keeps it out.
  int fd = ::open(ValidatorFixture("classification.safetensors").c_str(), O_RDONLY);
  REQUIRE(fd > 2);
  EvalJob job = FixtureJob("classifier.pt", "classification.safetensors", {"accuracy"});
  job.inputs.path = job.targets.path = "/dev/fd/" + std::to_string(fd);

  EvalOutcome hidden = Run(job, Options(scratch));
  CHECK_FALSE(hidden.ok);
  CHECK_THAT(hidden.error, Catch::Contains("/dev/fd/"));

  WorkerOptions options = Options(scratch);
  options.inherit_fds = {fd};
  EvalOutcome shown = Run(job, options);
  CHECK(shown.ok);
  CHECK(shown.metrics.at("accuracy") == 0.75);
  ::close(fd);
}

TEST_CASE("worker: refusals before starting", "[validator]") {
  sigil::testing::TempDir scratch;
  EvalJob job = FixtureJob("classifier.pt", "classification.safetensors", {"accuracy"});
  WorkerOptions options = Options(scratch);
  options.executable = "";
  CHECK(RunInWorker(job, options).status().code() == core::Code::kInvalidArgument);
  options.executable = scratch.Sub("no-such-validator");
  CHECK(RunInWorker(job, options).status().code() == core::Code::kInternal);
  options = Options(scratch);
  options.inherit_fds = {1};
  CHECK(RunInWorker(job, options).status().code() == core::Code::kInvalidArgument);
  CHECK(Entries(scratch.path()) == 0);
}

TEST_CASE("worker: an executable that is not the worker yields a clear failure", "[validator]") {
  sigil::testing::TempDir scratch;
  EvalJob job = FixtureJob("classifier.pt", "classification.safetensors", {"accuracy"});
  WorkerOptions options = Options(scratch);
  struct Case {
    const char* executable;
    const char* error;
  };
  for (const Case& c : {Case{"/bin/false", "the worker exited with code 1 without an outcome"},
                        Case{"/bin/true", "the worker exited with code 0 without an outcome"}}) {
    options.executable = c.executable;
    EvalOutcome o = Run(job, options);
    CHECK_FALSE(o.ok);
    CHECK(o.error == c.error);
  }
}

TEST_CASE("worker: every way a worker can end becomes a reason", "[validator]") {
  // Stand-in workers: shell scripts that end as a broken worker would.
  sigil::testing::TempDir scratch;
  sigil::testing::TempDir bin;
  EvalJob job = FixtureJob("classifier.pt", "classification.safetensors", {"accuracy"});
  struct Case {
    const char* name;
    const char* script;
    const char* error;  // the outcome's error starts with this
  };
  const Case cases[] = {
      {"segfault", "kill -SEGV $$", "killed by signal 11 (Segmentation fault)"},
      {"abort after bad_alloc",
       "echo \"terminate called after throwing an instance of 'std::bad_alloc'\" >&2; kill -ABRT $$",
       "out of memory (limit 2048 MiB): killed by signal 6 (Aborted): terminate called"},
      {"SIGKILL not sent by the parent", "kill -KILL $$",
       "out of memory (limit 2048 MiB): killed by SIGKILL"},
      {"CPU limit", "kill -XCPU $$", "the model ran past its CPU-time limit"},
      {"nonzero exit with a message", "echo 'something broke' >&2; exit 3",
       "the worker exited with code 3 without an outcome: something broke"},
      {"junk on stdout", "echo not-json", "the worker exited with code 0 and an unreadable outcome"},
      {"a flood on stdout", "head -c 20000000 /dev/zero", "the worker wrote more than 16 MiB of outcome"},
      {"success reported, then a failing exit", "echo '{\"ok\":true}'; exit 5",
       "the worker reported an outcome but then exited with code 5"},
      {"an outcome saying memory ran out", "echo '{\"ok\":false,\"error\":\"std::bad_alloc\"}'",
       "out of memory (limit 2048 MiB): std::bad_alloc"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    std::string path = bin.Sub("worker.sh");
    {
      std::ofstream out(path, std::ios::trunc);
      out << "#!/bin/sh\n" << c.script << "\n";
    }
    REQUIRE(::chmod(path.c_str(), 0755) == 0);
    WorkerOptions options = Options(scratch);
    options.executable = path;
    EvalOutcome o = Run(job, options);
    CHECK_FALSE(o.ok);
    CHECK_THAT(o.error, Catch::StartsWith(c.error));
  }

  // A descendant holding the pipes open goes with the process group.
  std::string path = bin.Sub("worker.sh");
  {
    std::ofstream out(path, std::ios::trunc);
    out << "#!/bin/sh\nsleep 60 &\necho '{\"ok\":true,\"device\":\"cpu\"}'\n";
  }
  WorkerOptions options = Options(scratch);
  options.executable = path;
  auto start = Clock::now();
  EvalOutcome o = Run(job, options);
  CHECK(o.ok);
  CHECK(o.device == "cpu");
  CHECK(std::chrono::duration<double>(Clock::now() - start).count() < 10);
}

TEST_CASE("network isolation leaves no way out", "[validator]") {
  // A listening socket in this namespace; the isolated child must not reach it.
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(listener >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  REQUIRE(::listen(listener, 1) == 0);

  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::string isolation = ApplyNetworkIsolation();
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    bool reached = s >= 0 && ::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    int unix_socket = ::socket(AF_UNIX, SOCK_STREAM, 0);
    int code = isolation == "none" ? 10 : reached ? 11 : unix_socket < 0 ? 12 : 0;
    ::_exit(code);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  ::close(listener);
  REQUIRE(WIFEXITED(status));
  INFO("10: no isolation, 11: connected, 12: AF_UNIX refused");
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("without namespaces the seccomp filter refuses Internet sockets", "[validator]") {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // A filter of the test's own makes unshare fail, as an unprivileged
    // kernel would, so the isolation falls back to seccomp.
    sock_filter deny_unshare[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_unshare, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{static_cast<unsigned short>(std::size(deny_unshare)), deny_unshare};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
      ::_exit(20);
    }
    std::string isolation = ApplyNetworkIsolation();
    int inet = ::socket(AF_INET, SOCK_STREAM, 0);
    int inet_errno = errno;
    int inet6 = ::socket(AF_INET6, SOCK_DGRAM, 0);
    int unix_socket = ::socket(AF_UNIX, SOCK_STREAM, 0);
    int code = isolation != "seccomp"                            ? 21
               : inet >= 0 || inet_errno != EACCES || inet6 >= 0 ? 22
               : unix_socket < 0                                 ? 23
                                                                 : 0;
    ::_exit(code);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  INFO("20: test filter refused, 21: not seccomp, 22: Internet socket allowed, 23: AF_UNIX refused");
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("EvalJob and EvalOutcome survive their JSON form", "[validator]") {
  EvalJob job = FixtureJob("classifier.pt", "classification.safetensors", {"accuracy", "mse"});
  job.batch_size = 7;
  job.top_k = 3;
  job.determinism = false;
  job.threads = 2;
  auto back = EvalJobFromJson(EvalJobToJson(job));
  REQUIRE(back.ok());
  CHECK(EvalJobToJson(*back) == EvalJobToJson(job));
  CHECK(back->targets.tensor.dtype == DType::kI64);
  CHECK(back->inputs.tensor.shape == std::vector<uint64_t>{48, 4});

  core::Json bad = EvalJobToJson(job);
  bad["inputs"]["dtype"] = "F128";
  CHECK(EvalJobFromJson(bad).status().reason() == "BAD_EVAL_JOB");
  bad = EvalJobToJson(job);
  bad["batch_size"] = 0;
  CHECK(EvalJobFromJson(bad).status().reason() == "BAD_EVAL_JOB");
  bad = EvalJobToJson(job);
  bad.erase("model_path");
  CHECK(EvalJobFromJson(bad).status().reason() == "BAD_EVAL_JOB");

  EvalOutcome o;
  o.ok = true;
  o.metrics = {{"accuracy", 0.5},
               {"mse", std::numeric_limits<double>::infinity()},
               {"mae", -std::numeric_limits<double>::infinity()},
               {"cross_entropy", std::numeric_limits<double>::quiet_NaN()}};
  o.deterministic = false;
  o.signal = 9;
  o.peak_rss_bytes = 123;
  o.isolation = "seccomp";
  auto text = core::DumpJson(EvalOutcomeToJson(o));
  auto parsed = EvalOutcomeFromJson(core::ParseJson(text).value());
  REQUIRE(parsed.ok());
  CHECK(parsed->ok);
  CHECK(parsed->metrics.at("accuracy") == 0.5);
  CHECK(parsed->metrics.at("mse") == std::numeric_limits<double>::infinity());
  CHECK(parsed->metrics.at("mae") == -std::numeric_limits<double>::infinity());
  CHECK(std::isnan(parsed->metrics.at("cross_entropy")));
  CHECK(parsed->deterministic == false);
  CHECK(parsed->signal == 9);
  CHECK_FALSE(parsed->exit_code.has_value());
  CHECK(parsed->peak_rss_bytes == 123);
  CHECK(parsed->isolation == "seccomp");
  CHECK(EvalOutcomeFromJson(core::Json{{"ok", "yes"}}).status().reason() == "BAD_EVAL_OUTCOME");
}

}  // namespace
}  // namespace sigil::validator
