// One evaluation run: a TorchScript model over a dataset's inputs, its
// outputs scored against the targets. EvalJob is what the server hands the
// worker process; EvalOutcome is what comes back.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "validator/tensor.h"

namespace sigil::validator {

// A tensor inside a file the worker opens read-only.
struct FileTensor {
  std::string path;
  TensorRef tensor;
};

struct EvalJob {
  std::string model_path;  // TorchScript archive
  FileTensor inputs;       // [N, ...] float
  FileTensor targets;      // [N] integer classes, or [N, ...] float values
  uint32_t batch_size = 32;
  std::vector<std::string> metrics;  // quality metrics to compute
  uint32_t top_k = 5;
  bool determinism = true;  // run twice on CPU; outputs must be identical
  std::string device = "auto";
  int threads = 0;  // intra-op threads; 0: LibTorch's default
};

struct EvalOutcome {
  bool ok = false;
  std::string error;  // why it failed: the model threw, timed out, ran out of memory...
  std::string device;         // "cpu" or "cuda:0 (<name>)"
  std::string torch_version;  // "1.13.1"
  int threads = 0;
  uint64_t samples = 0;
  uint64_t batches = 0;
  // Quality metrics asked for, plus latency_p50_ms, latency_p95_ms and
  // throughput (samples per second over the timed run).
  std::map<std::string, double> metrics;
  std::optional<bool> deterministic;  // set when checked
  double seconds = 0;                 // wall time of the whole run, load included
  double load_seconds = 0;            // of which loading the model
  // Worker process facts, filled in by RunInWorker.
  std::optional<int> exit_code;
  std::optional<int> signal;
  uint64_t peak_rss_bytes = 0;
  std::string isolation;  // "netns", "seccomp" or "none"
};

core::Json EvalJobToJson(const EvalJob& job);
core::Result<EvalJob> EvalJobFromJson(const core::Json& j);
core::Json EvalOutcomeToJson(const EvalOutcome& outcome);
core::Result<EvalOutcome> EvalOutcomeFromJson(const core::Json& j);

// Runs the evaluation in this process with LibTorch (validator/torch_runner.cc,
// the one file that includes LibTorch). A model that throws, a corrupt
// archive or a dataset that does not fit becomes outcome.ok = false with the
// reason; errors are only for a job that cannot be read.
EvalOutcome RunEvaluation(const EvalJob& job);

// LibTorch facts for reports: its version, whether CUDA is usable by it.
std::string TorchVersion();
bool TorchCudaAvailable();

}  // namespace sigil::validator
