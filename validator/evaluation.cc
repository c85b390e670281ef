// JSON forms of EvalJob and EvalOutcome: the worker protocol (the job on the
// worker's stdin, the outcome on its stdout) and what reports store.
#include "validator/evaluation.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

namespace sigil::validator {
namespace {

using core::Json;

core::Status BadJob(const std::string& what) {
  return core::InvalidArgument("evaluation job: " + what, "BAD_EVAL_JOB");
}
core::Status BadOutcome(const std::string& what) {
  return core::InvalidArgument("evaluation outcome: " + what, "BAD_EVAL_OUTCOME");
}

// Dimensions above this are nonsense for a file-backed tensor; refusing them
// keeps every product of a shape far from overflowing uint64.
constexpr uint64_t kMaxDimension = 1ull << 40;
constexpr size_t kMaxRank = 16;

Json FileTensorToJson(const FileTensor& ft) {
  return Json{{"path", ft.path},
              {"name", ft.tensor.name},
              {"dtype", std::string(DTypeName(ft.tensor.dtype))},
              {"shape", ft.tensor.shape},
              {"offset", ft.tensor.offset}};
}

core::Result<FileTensor> FileTensorFromJson(const Json& j, const std::string& field) {
  if (!j.is_object()) return BadJob(field + " must be an object");
  FileTensor ft;
  auto path = core::GetString(j, "path");
  if (!path.ok() || path->empty()) return BadJob(field + ".path must be a non-empty string");
  ft.path = *path;
  if (j.contains("name")) {
    auto name = core::GetString(j, "name");
    if (!name.ok()) return BadJob(field + ".name must be a string");
    ft.tensor.name = *name;
  }
  auto dtype_name = core::GetString(j, "dtype");
  if (!dtype_name.ok()) return BadJob(field + ".dtype must be a string");
  auto dtype = ParseDType(*dtype_name);
  if (!dtype.ok()) return BadJob(field + ".dtype: " + dtype.status().message());
  ft.tensor.dtype = *dtype;
  if (!j.contains("shape") || !j["shape"].is_array() || j["shape"].size() > kMaxRank) {
    return BadJob(field + ".shape must be an array of at most " + std::to_string(kMaxRank) + " dimensions");
  }
  for (const Json& d : j["shape"]) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > kMaxDimension) {
      return BadJob(field + ".shape must hold non-negative integers");
    }
    ft.tensor.shape.push_back(d.get<uint64_t>());
  }
  auto offset = core::GetUint(j, "offset");
  if (!offset.ok()) return BadJob(field + ".offset must be a non-negative integer");
  ft.tensor.offset = *offset;
  return ft;
}

// JSON has no NaN or infinity; a metric that came out so (a diverging model)
// must survive the trip, so they travel as strings.
Json NumberToJson(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  return v;
}

core::Result<double> NumberFromJson(const Json& j) {
  if (j.is_number()) return j.get<double>();
  if (j == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (j == "Infinity") return std::numeric_limits<double>::infinity();
  if (j == "-Infinity") return -std::numeric_limits<double>::infinity();
  return BadOutcome("a metric must be a number, \"NaN\", \"Infinity\" or \"-Infinity\"");
}

}  // namespace

core::Json EvalJobToJson(const EvalJob& job) {
  return Json{{"model_path", job.model_path},
              {"inputs", FileTensorToJson(job.inputs)},
              {"targets", FileTensorToJson(job.targets)},
              {"batch_size", job.batch_size},
              {"metrics", job.metrics},
              {"top_k", job.top_k},
              {"determinism", job.determinism},
              {"device", job.device},
              {"threads", job.threads}};
}

core::Result<EvalJob> EvalJobFromJson(const core::Json& j) {
  if (!j.is_object()) return BadJob("must be a JSON object");
  EvalJob job;
  auto model = core::GetString(j, "model_path");
  if (!model.ok() || model->empty()) return BadJob("model_path must be a non-empty string");
  job.model_path = *model;
  if (!j.contains("inputs")) return BadJob("inputs is required");
  ASSIGN_OR_RETURN(job.inputs, FileTensorFromJson(j["inputs"], "inputs"));
  if (!j.contains("targets")) return BadJob("targets is required");
  ASSIGN_OR_RETURN(job.targets, FileTensorFromJson(j["targets"], "targets"));
  if (j.contains("batch_size")) {
    auto b = core::GetUint(j, "batch_size");
    if (!b.ok() || *b == 0 || *b > 65536) return BadJob("batch_size must be within 1..65536");
    job.batch_size = static_cast<uint32_t>(*b);
  }
  if (j.contains("metrics")) {
    if (!j["metrics"].is_array()) return BadJob("metrics must be an array of names");
    for (const Json& m : j["metrics"]) {
      if (!m.is_string()) return BadJob("metrics must be an array of names");
      job.metrics.push_back(m.get<std::string>());
    }
  }
  if (j.contains("top_k")) {
    auto k = core::GetUint(j, "top_k");
    if (!k.ok() || *k == 0 || *k > 1000) return BadJob("top_k must be within 1..1000");
    job.top_k = static_cast<uint32_t>(*k);
  }
  if (j.contains("determinism")) {
    if (!j["determinism"].is_boolean()) return BadJob("determinism must be a boolean");
    job.determinism = j["determinism"].get<bool>();
  }
  if (j.contains("device")) {
    auto device = core::GetString(j, "device");
    if (!device.ok() || (*device != "auto" && *device != "cpu" && *device != "cuda")) {
      return BadJob("device must be \"auto\", \"cpu\" or \"cuda\"");
    }
    job.device = *device;
  }
  if (j.contains("threads")) {
    auto t = core::GetInt(j, "threads");
    if (!t.ok() || *t < 0 || *t > 1024) return BadJob("threads must be within 0..1024");
    job.threads = static_cast<int>(*t);
  }
  return job;
}

core::Json EvalOutcomeToJson(const EvalOutcome& o) {
  Json metrics = Json::object();
  for (const auto& [name, value] : o.metrics) metrics[name] = NumberToJson(value);
  Json j = {{"ok", o.ok},
            {"error", o.error},
            {"device", o.device},
            {"torch_version", o.torch_version},
            {"threads", o.threads},
            {"samples", o.samples},
            {"batches", o.batches},
            {"metrics", metrics},
            {"seconds", o.seconds},
            {"load_seconds", o.load_seconds},
            {"peak_rss_bytes", o.peak_rss_bytes},
            {"isolation", o.isolation}};
  if (o.deterministic) j["deterministic"] = *o.deterministic;
  if (o.exit_code) j["exit_code"] = *o.exit_code;
  if (o.signal) j["signal"] = *o.signal;
  return j;
}

core::Result<EvalOutcome> EvalOutcomeFromJson(const core::Json& j) {
  if (!j.is_object()) return BadOutcome("must be a JSON object");
  EvalOutcome o;
  if (!j.contains("ok") || !j["ok"].is_boolean()) return BadOutcome("ok must be a boolean");
  o.ok = j["ok"].get<bool>();
  for (auto [field, out] :
       {std::pair{"error", &o.error}, std::pair{"device", &o.device},
        std::pair{"torch_version", &o.torch_version}, std::pair{"isolation", &o.isolation}}) {
    if (!j.contains(field)) continue;
    auto s = core::GetString(j, field);
    if (!s.ok()) return BadOutcome(s.status().message());
    *out = *s;
  }
  for (auto [field, out] : {std::pair{"samples", &o.samples}, std::pair{"batches", &o.batches},
                            std::pair{"peak_rss_bytes", &o.peak_rss_bytes}}) {
    if (!j.contains(field)) continue;
    auto n = core::GetUint(j, field);
    if (!n.ok()) return BadOutcome(n.status().message());
    *out = *n;
  }
  for (auto [field, out] : {std::pair{"seconds", &o.seconds}, std::pair{"load_seconds", &o.load_seconds}}) {
    if (!j.contains(field)) continue;
    if (!j[field].is_number()) return BadOutcome(std::string(field) + " must be a number");
    *out = j[field].get<double>();
  }
  auto small_int = [&](const char* field) -> core::Result<int> {
    auto n = core::GetInt(j, field);
    if (!n.ok() || *n < INT32_MIN || *n > INT32_MAX) {
      return BadOutcome(std::string(field) + " must be a 32-bit integer");
    }
    return static_cast<int>(*n);
  };
  if (j.contains("threads")) {
    ASSIGN_OR_RETURN(o.threads, small_int("threads"));
  }
  if (j.contains("exit_code")) {
    ASSIGN_OR_RETURN(o.exit_code, small_int("exit_code"));
  }
  if (j.contains("signal")) {
    ASSIGN_OR_RETURN(o.signal, small_int("signal"));
  }
  if (j.contains("deterministic")) {
    if (!j["deterministic"].is_boolean()) return BadOutcome("deterministic must be a boolean");
    o.deterministic = j["deterministic"].get<bool>();
  }
  if (j.contains("metrics")) {
    if (!j["metrics"].is_object()) return BadOutcome("metrics must be an object");
    for (const auto& item : j["metrics"].items()) {
      ASSIGN_OR_RETURN(o.metrics[item.key()], NumberFromJson(item.value()));
    }
  }
  return o;
}

}  // namespace sigil::validator
