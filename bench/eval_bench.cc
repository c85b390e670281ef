// What the worker process costs: the classifier fixture evaluated N times
// in this process (RunEvaluation) and N times through RunInWorker (fork, exec
// of sigil-validator, LibTorch loading, the model, JSON both ways). The
// difference per evaluation is the price of the isolation.
//
//   eval_bench [--runs N] [--worker PATH]
//
// The first in-process run pays LibTorch's lazy initialisation and is shown
// on its own.
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/fs.h"
#include "tests/validator/fixtures/fixture_data.h"
#include "validator/evaluation.h"
#include "validator/worker.h"

namespace {

using namespace sigil;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 10;
  std::string worker = SIGIL_BINARY_DIR "/validator/sigil-validator";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--runs") && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--worker") && i + 1 < argc) {
      worker = argv[++i];
    } else {
      std::fprintf(stderr, "usage: eval_bench [--runs N] [--worker PATH]\n");
      return 2;
    }
  }
  validator::EvalJob job = testing::FixtureJob("classifier.pt", "classification.safetensors",
                                               {"accuracy", "top_k_accuracy", "cross_entropy"});

  std::vector<double> in_process;
  double first = 0;
  for (int i = 0; i <= runs; ++i) {
    auto start = Clock::now();
    validator::EvalOutcome o = validator::RunEvaluation(job);
    double s = Seconds(start);
    if (!o.ok) {
      std::fprintf(stderr, "eval_bench: in-process run failed: %s\n", o.error.c_str());
      return 1;
    }
    if (i == 0)
      first = s;
    else
      in_process.push_back(s);
  }

  std::string scratch = "/tmp/sigil-eval-bench-XXXXXX";
  if (!::mkdtemp(scratch.data())) {
    std::perror("eval_bench: mkdtemp");
    return 1;
  }
  validator::WorkerOptions options;
  options.executable = worker;
  options.scratch_parent = scratch;
  options.time_limit_s = 120;
  options.memory_limit_bytes = 4ull << 30;
  std::vector<double> in_worker;
  uint64_t peak_rss = 0;
  for (int i = 0; i < runs; ++i) {
    auto start = Clock::now();
    auto o = validator::RunInWorker(job, options);
    double s = Seconds(start);
    if (!o.ok() || !o->ok) {
      std::fprintf(stderr, "eval_bench: worker run failed: %s\n",
                   o.ok() ? o->error.c_str() : o.status().ToString().c_str());
      core::RemoveTree(scratch).IgnoreError();
      return 1;
    }
    in_worker.push_back(s);
    if (i == runs - 1) core::RemoveTree(scratch).IgnoreError();
    peak_rss = std::max(peak_rss, o->peak_rss_bytes);
  }

  std::printf("eval_bench: classifier fixture, 48 samples, %d runs each\n", runs);
  std::printf("  in process, first run:    %8.1f ms (LibTorch's lazy start)\n", first * 1e3);
  std::printf("  in process, median:       %8.1f ms\n", Median(in_process) * 1e3);
  std::printf("  worker process, median:   %8.1f ms (peak RSS %.0f MiB)\n", Median(in_worker) * 1e3,
              static_cast<double>(peak_rss) / (1 << 20));
  std::printf("  worker overhead per run:  %8.1f ms\n", (Median(in_worker) - Median(in_process)) * 1e3);
  return 0;
}
