// Evaluation specs: what to run a model version on and what it must reach.
//
// A spec is JSON, stored as a blob and referenced by digest:
//
//   {"model": "model.pt",                       TorchScript file in the version
//    "dataset": {"ref": "data/eval:v1",          a version (empty: this one)
//                "path": "eval.safetensors",     a file in it
//                "digest": "sha256:...",         or any blob by digest
//                "inputs": "inputs", "targets": "targets"},   tensor names
//    "batch_size": 32,
//    "metrics": ["accuracy", "top_k_accuracy", "mse", "mae", "cross_entropy"],
//    "top_k": 5,
//    "thresholds": {"accuracy": {"min": 0.9}, "latency_p95_ms": {"max": 50}},
//    "baseline": {"ref": "production", "max_regression": {"accuracy": 0.01}},
//    "determinism": true,
//    "weights": {"max_nonfinite": 0,
//                "parent": {"ref": "v1", "min_cosine": 0.9, "max_abs_diff": 1.0}},
//    "limits": {"time_s": 600, "memory_mb": 8192},
//    "device": "auto"}
//
// Latency (latency_p50_ms, latency_p95_ms per batch) and throughput (samples
// per second) are always measured. Every metric name may carry a threshold;
// the baseline comparison covers the metrics named in max_regression (an
// absolute allowance, in the direction that is worse for that metric).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/digest.h"
#include "core/json.h"
#include "core/status.h"

namespace sigil::validator {

// Every metric an outcome can carry.
inline constexpr std::string_view kMetricNames[] = {
    "accuracy", "top_k_accuracy", "mse",        "mae",       "cross_entropy",
    "latency_p50_ms", "latency_p95_ms", "throughput"};
// accuracy, top_k_accuracy and throughput: larger is better; others smaller.
bool HigherIsBetter(std::string_view metric);
bool IsMetricName(std::string_view metric);

struct DatasetRef {
  std::string ref;                     // "repo:version", "repo@sha256:..", a ref of this repo, or empty
  std::string path;                    // file in that version
  std::optional<core::Digest> digest;  // or a blob by digest (then ref and path are empty)
  std::string inputs = "inputs";
  std::string targets = "targets";
};

struct Bound {
  std::optional<double> min;
  std::optional<double> max;
};

struct BaselineSpec {
  std::string ref;  // a version or alias of the same repository, or "repo:ref"
  std::map<std::string, double> max_regression;
};

struct ParentSpec {
  std::string ref;  // as BaselineSpec::ref
  std::optional<double> min_cosine;
  std::optional<double> max_abs_diff;
};

struct EvalSpec {
  std::string model;
  DatasetRef dataset;
  uint32_t batch_size = 32;
  std::vector<std::string> metrics;  // of kMetricNames, without latency/throughput (always measured)
  uint32_t top_k = 5;
  std::map<std::string, Bound> thresholds;
  std::optional<BaselineSpec> baseline;
  bool determinism = true;
  bool weight_stats = true;      // "weights": false turns statistics off
  uint64_t max_nonfinite = 0;    // NaN + Inf allowed over all weights
  std::optional<ParentSpec> parent;
  uint32_t time_limit_s = 600;
  uint64_t memory_limit_mb = 8192;
  std::string device = "auto";  // "auto", "cpu", "cuda"
};

// Parses and checks a spec: unknown keys, unknown metrics, a threshold on a
// metric that is not measured, batch_size 0 or above 65536, top_k 0, a
// dataset with neither path nor digest, limits of 0... are refused.
// Errors: kInvalidArgument BAD_EVAL_SPEC with the offending field.
core::Result<EvalSpec> ParseEvalSpec(std::string_view json);
core::Json EvalSpecToJson(const EvalSpec& spec);

}  // namespace sigil::validator
