#include "validator/eval_spec.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "validator/worker.h"

namespace sigil::validator {
namespace {

using core::Json;
using core::Result;
using core::Status;

// A spec is a few hundred bytes; anything near these limits is hostile.
constexpr core::JsonLimits kSpecJsonLimits{.max_bytes = 64 << 10, .max_depth = 8};
constexpr size_t kMaxStringBytes = 1024;
constexpr uint32_t kMaxBatchSize = 65536;
constexpr uint32_t kMaxTopK = 1000;
constexpr uint32_t kMaxTimeLimitS = 7 * 24 * 3600;
// The worker loads LibTorch inside its address-space limit; below this it
// cannot start, so such a spec could only fail.
constexpr uint64_t kMinMemoryMb = kMinWorkerMemoryBytes >> 20;
constexpr uint64_t kMaxMemoryMb = 1ull << 24;  // 16 TiB

Status Bad(const std::string& field, const std::string& what) {
  return core::InvalidArgument("eval spec: " + field + ": " + what, "BAD_EVAL_SPEC");
}

bool IsAlwaysMeasured(std::string_view metric) {
  return metric == "latency_p50_ms" || metric == "latency_p95_ms" || metric == "throughput";
}

Status CheckKeys(const Json& object, const std::string& field,
                 std::initializer_list<std::string_view> allowed) {
  if (!object.is_object()) return Bad(field, "must be an object");
  for (const auto& item : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end()) {
      std::string key = item.key().substr(0, 64);
      return Bad(field.empty() ? key : field + "." + key, "unknown key");
    }
  }
  return core::OkStatus();
}

Result<std::string> String(const Json& v, const std::string& field, bool allow_empty) {
  if (!v.is_string()) return Bad(field, "must be a string");
  const auto& s = v.get_ref<const std::string&>();
  if (!allow_empty && s.empty()) return Bad(field, "must not be empty");
  if (s.size() > kMaxStringBytes) {
    return Bad(field, "longer than " + std::to_string(kMaxStringBytes) + " bytes");
  }
  if (s.find('\0') != std::string::npos) return Bad(field, "contains a NUL byte");
  return s;
}

// A file inside a version: relative, no "..", as manifests title files.
Result<std::string> RelativePath(const Json& v, const std::string& field) {
  ASSIGN_OR_RETURN(std::string path, String(v, field, /*allow_empty=*/false));
  if (path.front() == '/') return Bad(field, "must be a relative path");
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view part(path.data() + start, end - start);
    if (part == ".." || part == "." || part.empty()) {
      return Bad(field, "must be a plain relative path without '.', '..' or empty parts");
    }
    start = end + 1;
  }
  return path;
}

Result<uint64_t> Uint(const Json& v, const std::string& field, uint64_t min, uint64_t max) {
  // nlohmann stores integers beyond 2^64 as floating point: refused here too.
  if (!v.is_number_integer()) return Bad(field, "must be an integer");
  if (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0) {
    return Bad(field, "must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
  uint64_t n = v.get<uint64_t>();
  if (n < min || n > max) {
    return Bad(field, "must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
  return n;
}

Result<double> Number(const Json& v, const std::string& field) {
  if (!v.is_number()) return Bad(field, "must be a number");
  double d = v.get<double>();
  if (!std::isfinite(d)) return Bad(field, "must be finite");
  return d;
}

Result<bool> Bool(const Json& v, const std::string& field) {
  if (!v.is_boolean()) return Bad(field, "must be true or false");
  return v.get<bool>();
}

Result<DatasetRef> ParseDataset(const Json& v) {
  RETURN_IF_ERROR(CheckKeys(v, "dataset", {"ref", "path", "digest", "inputs", "targets"}));
  DatasetRef d;
  if (v.contains("ref")) {
    ASSIGN_OR_RETURN(d.ref, String(v["ref"], "dataset.ref", /*allow_empty=*/true));
  }
  if (v.contains("path")) {
    ASSIGN_OR_RETURN(d.path, RelativePath(v["path"], "dataset.path"));
  }
  if (v.contains("digest")) {
    ASSIGN_OR_RETURN(std::string text, String(v["digest"], "dataset.digest", false));
    auto digest = core::Digest::Parse(text);
    if (!digest.ok()) return Bad("dataset.digest", "must be sha256:<64 lowercase hex>");
    d.digest = *digest;
  }
  if (d.digest && (!d.path.empty() || !d.ref.empty())) {
    return Bad("dataset", "names a blob by digest, so it takes no ref or path");
  }
  if (!d.digest && d.path.empty()) return Bad("dataset", "needs a path or a digest");
  if (v.contains("inputs")) {
    ASSIGN_OR_RETURN(d.inputs, String(v["inputs"], "dataset.inputs", false));
  }
  if (v.contains("targets")) {
    ASSIGN_OR_RETURN(d.targets, String(v["targets"], "dataset.targets", false));
  }
  if (d.inputs == d.targets) return Bad("dataset", "inputs and targets name the same tensor");
  return d;
}

Result<std::vector<std::string>> ParseMetrics(const Json& v) {
  if (!v.is_array()) return Bad("metrics", "must be an array of metric names");
  std::vector<std::string> metrics;
  for (const Json& item : v) {
    if (!item.is_string()) return Bad("metrics", "must be an array of metric names");
    std::string name = item.get<std::string>();
    std::string shown = name.substr(0, 64);
    if (!IsMetricName(name)) return Bad("metrics", "unknown metric '" + shown + "'");
    if (IsAlwaysMeasured(name)) {
      return Bad("metrics", "'" + name + "' is always measured; do not list it");
    }
    if (std::find(metrics.begin(), metrics.end(), name) != metrics.end()) {
      return Bad("metrics", "'" + name + "' is listed twice");
    }
    metrics.push_back(std::move(name));
  }
  return metrics;
}

bool Measured(const EvalSpec& spec, std::string_view metric) {
  return IsAlwaysMeasured(metric) ||
         std::find(spec.metrics.begin(), spec.metrics.end(), metric) != spec.metrics.end();
}

// A key of a metric-keyed object: a known metric that the spec measures.
Status CheckMeasuredMetric(const EvalSpec& spec, const std::string& field, const std::string& metric) {
  if (!IsMetricName(metric)) return Bad(field, "unknown metric");
  if (!Measured(spec, metric)) return Bad(field, "metric is not measured (add it to \"metrics\")");
  return core::OkStatus();
}

Result<std::map<std::string, Bound>> ParseThresholds(const EvalSpec& spec, const Json& v) {
  if (!v.is_object()) return Bad("thresholds", "must be an object");
  std::map<std::string, Bound> thresholds;
  for (const auto& item : v.items()) {
    std::string field = "thresholds." + item.key().substr(0, 64);
    RETURN_IF_ERROR(CheckMeasuredMetric(spec, field, item.key()));
    RETURN_IF_ERROR(CheckKeys(item.value(), field, {"min", "max"}));
    Bound bound;
    if (item.value().contains("min")) {
      ASSIGN_OR_RETURN(bound.min, Number(item.value()["min"], field + ".min"));
    }
    if (item.value().contains("max")) {
      ASSIGN_OR_RETURN(bound.max, Number(item.value()["max"], field + ".max"));
    }
    if (!bound.min && !bound.max) return Bad(field, "needs a min or a max");
    if (bound.min && bound.max && *bound.min > *bound.max) return Bad(field, "min is above max");
    thresholds[item.key()] = bound;
  }
  return thresholds;
}

Result<BaselineSpec> ParseBaseline(const EvalSpec& spec, const Json& v) {
  RETURN_IF_ERROR(CheckKeys(v, "baseline", {"ref", "max_regression"}));
  BaselineSpec b;
  if (!v.contains("ref")) return Bad("baseline.ref", "is required");
  ASSIGN_OR_RETURN(b.ref, String(v["ref"], "baseline.ref", false));
  if (!v.contains("max_regression")) return Bad("baseline.max_regression", "is required");
  const Json& regression = v["max_regression"];
  if (!regression.is_object() || regression.empty()) {
    return Bad("baseline.max_regression", "must be an object of metric: allowance");
  }
  for (const auto& item : regression.items()) {
    std::string field = "baseline.max_regression." + item.key().substr(0, 64);
    RETURN_IF_ERROR(CheckMeasuredMetric(spec, field, item.key()));
    ASSIGN_OR_RETURN(double allowance, Number(item.value(), field));
    if (allowance < 0) return Bad(field, "must not be negative");
    b.max_regression[item.key()] = allowance;
  }
  return b;
}

Status ParseWeights(const Json& v, EvalSpec* spec) {
  if (v.is_boolean()) {
    spec->weight_stats = v.get<bool>();
    return core::OkStatus();
  }
  RETURN_IF_ERROR(CheckKeys(v, "weights", {"max_nonfinite", "parent"}));
  spec->weight_stats = true;
  if (v.contains("max_nonfinite")) {
    ASSIGN_OR_RETURN(spec->max_nonfinite, Uint(v["max_nonfinite"], "weights.max_nonfinite", 0, UINT64_MAX));
  }
  if (v.contains("parent")) {
    const Json& p = v["parent"];
    RETURN_IF_ERROR(CheckKeys(p, "weights.parent", {"ref", "min_cosine", "max_abs_diff"}));
    ParentSpec parent;
    if (!p.contains("ref")) return Bad("weights.parent.ref", "is required");
    ASSIGN_OR_RETURN(parent.ref, String(p["ref"], "weights.parent.ref", false));
    if (p.contains("min_cosine")) {
      ASSIGN_OR_RETURN(parent.min_cosine, Number(p["min_cosine"], "weights.parent.min_cosine"));
      if (*parent.min_cosine < -1 || *parent.min_cosine > 1) {
        return Bad("weights.parent.min_cosine", "must be between -1 and 1");
      }
    }
    if (p.contains("max_abs_diff")) {
      ASSIGN_OR_RETURN(parent.max_abs_diff, Number(p["max_abs_diff"], "weights.parent.max_abs_diff"));
      if (*parent.max_abs_diff < 0) return Bad("weights.parent.max_abs_diff", "must not be negative");
    }
    spec->parent = std::move(parent);
  }
  return core::OkStatus();
}

Status ParseLimits(const Json& v, EvalSpec* spec) {
  RETURN_IF_ERROR(CheckKeys(v, "limits", {"time_s", "memory_mb"}));
  if (v.contains("time_s")) {
    ASSIGN_OR_RETURN(uint64_t t, Uint(v["time_s"], "limits.time_s", 1, kMaxTimeLimitS));
    spec->time_limit_s = static_cast<uint32_t>(t);
  }
  if (v.contains("memory_mb")) {
    ASSIGN_OR_RETURN(spec->memory_limit_mb,
                     Uint(v["memory_mb"], "limits.memory_mb", kMinMemoryMb, kMaxMemoryMb));
  }
  return core::OkStatus();
}

Result<EvalSpec> ParseSpecObject(const Json& j) {
  if (!j.is_object()) return Bad("document", "must be a JSON object");
  RETURN_IF_ERROR(CheckKeys(j, "",
                            {"model", "dataset", "batch_size", "metrics", "top_k", "thresholds", "baseline",
                             "determinism", "weights", "limits", "device"}));
  EvalSpec spec;
  if (!j.contains("model")) return Bad("model", "is required");
  ASSIGN_OR_RETURN(spec.model, RelativePath(j["model"], "model"));
  if (!j.contains("dataset")) return Bad("dataset", "is required");
  ASSIGN_OR_RETURN(spec.dataset, ParseDataset(j["dataset"]));
  if (j.contains("batch_size")) {
    ASSIGN_OR_RETURN(uint64_t b, Uint(j["batch_size"], "batch_size", 1, kMaxBatchSize));
    spec.batch_size = static_cast<uint32_t>(b);
  }
  if (j.contains("metrics")) {
    ASSIGN_OR_RETURN(spec.metrics, ParseMetrics(j["metrics"]));
  }
  if (j.contains("top_k")) {
    ASSIGN_OR_RETURN(uint64_t k, Uint(j["top_k"], "top_k", 1, kMaxTopK));
    spec.top_k = static_cast<uint32_t>(k);
  }
  if (j.contains("thresholds")) {
    ASSIGN_OR_RETURN(spec.thresholds, ParseThresholds(spec, j["thresholds"]));
  }
  if (j.contains("baseline")) {
    ASSIGN_OR_RETURN(spec.baseline, ParseBaseline(spec, j["baseline"]));
  }
  if (j.contains("determinism")) {
    ASSIGN_OR_RETURN(spec.determinism, Bool(j["determinism"], "determinism"));
  }
  if (j.contains("weights")) RETURN_IF_ERROR(ParseWeights(j["weights"], &spec));
  if (j.contains("limits")) RETURN_IF_ERROR(ParseLimits(j["limits"], &spec));
  if (j.contains("device")) {
    ASSIGN_OR_RETURN(spec.device, String(j["device"], "device", false));
    if (spec.device != "auto" && spec.device != "cpu" && spec.device != "cuda") {
      return Bad("device", "must be \"auto\", \"cpu\" or \"cuda\"");
    }
  }
  return spec;
}

Json BoundToJson(const Bound& b) {
  Json j = Json::object();
  if (b.min) j["min"] = *b.min;
  if (b.max) j["max"] = *b.max;
  return j;
}

}  // namespace

bool HigherIsBetter(std::string_view metric) {
  return metric == "accuracy" || metric == "top_k_accuracy" || metric == "throughput";
}

bool IsMetricName(std::string_view metric) {
  return std::find(std::begin(kMetricNames), std::end(kMetricNames), metric) != std::end(kMetricNames);
}

core::Result<EvalSpec> ParseEvalSpec(std::string_view json) {
  auto parsed = core::ParseJson(json, kSpecJsonLimits);
  if (!parsed.ok()) return Bad("document", parsed.status().message());
  return ParseSpecObject(*parsed);
}

core::Json EvalSpecToJson(const EvalSpec& spec) {
  Json dataset = Json::object();
  if (spec.dataset.digest) {
    dataset["digest"] = spec.dataset.digest->ToString();
  } else {
    dataset["ref"] = spec.dataset.ref;
    dataset["path"] = spec.dataset.path;
  }
  dataset["inputs"] = spec.dataset.inputs;
  dataset["targets"] = spec.dataset.targets;

  Json thresholds = Json::object();
  for (const auto& [metric, bound] : spec.thresholds) thresholds[metric] = BoundToJson(bound);

  Json j = {{"model", spec.model},
            {"dataset", dataset},
            {"batch_size", spec.batch_size},
            {"metrics", spec.metrics},
            {"top_k", spec.top_k},
            {"thresholds", thresholds},
            {"determinism", spec.determinism},
            {"limits", {{"time_s", spec.time_limit_s}, {"memory_mb", spec.memory_limit_mb}}},
            {"device", spec.device}};
  if (spec.baseline) {
    Json regression = Json::object();
    for (const auto& [metric, allowance] : spec.baseline->max_regression) {
      regression[metric] = allowance;
    }
    j["baseline"] = {{"ref", spec.baseline->ref}, {"max_regression", regression}};
  }
  if (!spec.weight_stats) {
    j["weights"] = false;
  } else {
    Json weights = {{"max_nonfinite", spec.max_nonfinite}};
    if (spec.parent) {
      Json parent = {{"ref", spec.parent->ref}};
      if (spec.parent->min_cosine) parent["min_cosine"] = *spec.parent->min_cosine;
      if (spec.parent->max_abs_diff) parent["max_abs_diff"] = *spec.parent->max_abs_diff;
      weights["parent"] = parent;
    }
    j["weights"] = weights;
  }
  return j;
}

}  // namespace sigil::validator
