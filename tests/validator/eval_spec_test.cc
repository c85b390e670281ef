#include "validator/eval_spec.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace sigil::validator {
namespace {

constexpr const char* kDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

// The smallest valid spec, as JSON, for tests to modify.
core::Json Minimal() {
  return core::Json{{"model", "model.pt"}, {"dataset", {{"path", "eval.safetensors"}}}};
}

core::Status ParseStatus(const core::Json& j) { return ParseEvalSpec(core::DumpJson(j)).status(); }

TEST_CASE("a minimal spec takes the documented defaults", "[validator]") {
  auto spec = ParseEvalSpec(R"({"model":"model.pt","dataset":{"path":"eval.safetensors"}})");
  REQUIRE(spec.ok());
  CHECK(spec->model == "model.pt");
  CHECK(spec->dataset.path == "eval.safetensors");
  CHECK(spec->dataset.ref.empty());
  CHECK_FALSE(spec->dataset.digest.has_value());
  CHECK(spec->dataset.inputs == "inputs");
  CHECK(spec->dataset.targets == "targets");
  CHECK(spec->batch_size == 32);
  CHECK(spec->metrics.empty());
  CHECK(spec->top_k == 5);
  CHECK(spec->thresholds.empty());
  CHECK_FALSE(spec->baseline.has_value());
  CHECK(spec->determinism);
  CHECK(spec->weight_stats);
  CHECK(spec->max_nonfinite == 0);
  CHECK_FALSE(spec->parent.has_value());
  CHECK(spec->time_limit_s == 600);
  CHECK(spec->memory_limit_mb == 8192);
  CHECK(spec->device == "auto");
}

TEST_CASE("a full spec is parsed field by field and round-trips", "[validator]") {
  const char* text = R"({
    "model": "weights/model.pt",
    "dataset": {"ref": "data/eval:v1", "path": "eval.safetensors", "inputs": "x", "targets": "y"},
    "batch_size": 64,
    "metrics": ["accuracy", "top_k_accuracy", "cross_entropy"],
    "top_k": 3,
    "thresholds": {"accuracy": {"min": 0.9}, "latency_p95_ms": {"max": 50},
                   "cross_entropy": {"min": 0, "max": 2.5}},
    "baseline": {"ref": "production", "max_regression": {"accuracy": 0.01, "throughput": 100}},
    "determinism": false,
    "weights": {"max_nonfinite": 3, "parent": {"ref": "v1", "min_cosine": 0.9, "max_abs_diff": 1.0}},
    "limits": {"time_s": 120, "memory_mb": 4096},
    "device": "cuda"})";
  auto spec = ParseEvalSpec(text);
  REQUIRE(spec.ok());
  CHECK(spec->model == "weights/model.pt");
  CHECK(spec->dataset.ref == "data/eval:v1");
  CHECK(spec->dataset.inputs == "x");
  CHECK(spec->dataset.targets == "y");
  CHECK(spec->batch_size == 64);
  CHECK(spec->metrics == std::vector<std::string>{"accuracy", "top_k_accuracy", "cross_entropy"});
  CHECK(spec->top_k == 3);
  REQUIRE(spec->thresholds.size() == 3);
  CHECK(spec->thresholds["accuracy"].min == 0.9);
  CHECK_FALSE(spec->thresholds["accuracy"].max.has_value());
  CHECK(spec->thresholds["latency_p95_ms"].max == 50);
  CHECK(spec->thresholds["cross_entropy"].min == 0);
  CHECK(spec->thresholds["cross_entropy"].max == 2.5);
  REQUIRE(spec->baseline.has_value());
  CHECK(spec->baseline->ref == "production");
  CHECK(spec->baseline->max_regression.at("accuracy") == 0.01);
  CHECK(spec->baseline->max_regression.at("throughput") == 100);
  CHECK_FALSE(spec->determinism);
  CHECK(spec->weight_stats);
  CHECK(spec->max_nonfinite == 3);
  REQUIRE(spec->parent.has_value());
  CHECK(spec->parent->ref == "v1");
  CHECK(spec->parent->min_cosine == 0.9);
  CHECK(spec->parent->max_abs_diff == 1.0);
  CHECK(spec->time_limit_s == 120);
  CHECK(spec->memory_limit_mb == 4096);
  CHECK(spec->device == "cuda");

  auto again = ParseEvalSpec(core::DumpJson(EvalSpecToJson(*spec)));
  REQUIRE(again.ok());
  CHECK(EvalSpecToJson(*again) == EvalSpecToJson(*spec));
  CHECK(again->thresholds.at("cross_entropy").max == 2.5);
  CHECK(again->parent->max_abs_diff == 1.0);
}

TEST_CASE("a dataset by digest, and weights off, round-trip", "[validator]") {
  core::Json j = Minimal();
  j["dataset"] = {{"digest", kDigest}};
  j["weights"] = false;
  auto spec = ParseEvalSpec(core::DumpJson(j));
  REQUIRE(spec.ok());
  REQUIRE(spec->dataset.digest.has_value());
  CHECK(spec->dataset.digest->ToString() == kDigest);
  CHECK(spec->dataset.path.empty());
  CHECK_FALSE(spec->weight_stats);
  auto again = ParseEvalSpec(core::DumpJson(EvalSpecToJson(*spec)));
  REQUIRE(again.ok());
  CHECK(again->dataset.digest == spec->dataset.digest);
  CHECK_FALSE(again->weight_stats);
}

TEST_CASE("metric names and their better direction", "[validator]") {
  for (std::string_view m : kMetricNames) CHECK(IsMetricName(m));
  CHECK_FALSE(IsMetricName("f1"));
  CHECK_FALSE(IsMetricName(""));
  CHECK(HigherIsBetter("accuracy"));
  CHECK(HigherIsBetter("top_k_accuracy"));
  CHECK(HigherIsBetter("throughput"));
  CHECK_FALSE(HigherIsBetter("mse"));
  CHECK_FALSE(HigherIsBetter("mae"));
  CHECK_FALSE(HigherIsBetter("cross_entropy"));
  CHECK_FALSE(HigherIsBetter("latency_p50_ms"));
  CHECK_FALSE(HigherIsBetter("latency_p95_ms"));
}

TEST_CASE("specs that are refused, each naming the field", "[validator]") {
  struct Case {
    const char* name;
    const char* field;  // expected in the message
    core::Json spec;
  };
  auto with = [](const char* key, core::Json value) {
    core::Json j = Minimal();
    j[key] = std::move(value);
    return j;
  };
  auto without = [](const char* key) {
    core::Json j = Minimal();
    j.erase(key);
    return j;
  };
  auto dataset = [&](core::Json d) { return with("dataset", std::move(d)); };
  auto metrics_and = [](const char* key, core::Json value) {
    core::Json j = Minimal();
    j["metrics"] = {"accuracy"};
    j[key] = std::move(value);
    return j;
  };
  std::vector<Case> cases = {
      {"unknown top-level key", "modle", with("modle", "x.pt")},
      {"model missing", "model", without("model")},
      {"model not a string", "model", with("model", 3)},
      {"model empty", "model", with("model", "")},
      {"model absolute", "model", with("model", "/etc/passwd")},
      {"model escapes", "model", with("model", "../other/model.pt")},
      {"model with empty part", "model", with("model", "a//model.pt")},
      {"dataset missing", "dataset", without("dataset")},
      {"dataset not an object", "dataset", with("dataset", "eval.safetensors")},
      {"dataset without path or digest", "dataset", dataset({{"ref", "data:v1"}})},
      {"dataset unknown key", "dataset.file", dataset({{"file", "a"}, {"path", "a"}})},
      {"dataset digest and path", "dataset", dataset({{"digest", kDigest}, {"path", "a"}})},
      {"dataset digest and ref", "dataset", dataset({{"digest", kDigest}, {"ref", "d:v1"}})},
      {"dataset digest malformed", "dataset.digest", dataset({{"digest", "sha256:abc"}})},
      {"dataset digest uppercase", "dataset.digest",
       dataset({{"digest", "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"}})},
      {"dataset inputs empty", "dataset.inputs", dataset({{"path", "a"}, {"inputs", ""}})},
      {"dataset targets not a string", "dataset.targets", dataset({{"path", "a"}, {"targets", 1}})},
      {"dataset same tensor twice", "dataset", dataset({{"path", "a"}, {"inputs", "x"}, {"targets", "x"}})},
      {"batch_size 0", "batch_size", with("batch_size", 0)},
      {"batch_size negative", "batch_size", with("batch_size", -1)},
      {"batch_size too large", "batch_size", with("batch_size", 65537)},
      {"batch_size fractional", "batch_size", with("batch_size", 3.5)},
      {"batch_size a string", "batch_size", with("batch_size", "32")},
      {"batch_size beyond 64 bits", "batch_size", with("batch_size", 1e30)},
      {"metrics not an array", "metrics", with("metrics", "accuracy")},
      {"metrics unknown", "metrics", with("metrics", {"accuracy", "f1"})},
      {"metrics not strings", "metrics", with("metrics", {1})},
      {"metrics twice", "metrics", with("metrics", {"mse", "mse"})},
      {"metrics always measured", "metrics", with("metrics", {"latency_p95_ms"})},
      {"top_k 0", "top_k", with("top_k", 0)},
      {"top_k bool", "top_k", with("top_k", true)},
      {"thresholds not an object", "thresholds", with("thresholds", {1, 2})},
      {"threshold on unknown metric", "thresholds.f1", metrics_and("thresholds", {{"f1", {{"min", 1}}}})},
      {"threshold on unmeasured metric", "thresholds.mse",
       metrics_and("thresholds", {{"mse", {{"max", 1}}}})},
      {"threshold without bounds", "thresholds.accuracy",
       metrics_and("thresholds", {{"accuracy", core::Json::object()}})},
      {"threshold unknown key", "thresholds.accuracy.minimum",
       metrics_and("thresholds", {{"accuracy", {{"minimum", 1}}}})},
      {"threshold min above max", "thresholds.accuracy",
       metrics_and("thresholds", {{"accuracy", {{"min", 0.9}, {"max", 0.5}}}})},
      {"threshold not a number", "thresholds.accuracy.min",
       metrics_and("thresholds", {{"accuracy", {{"min", "0.9"}}}})},
      {"threshold a number, not a bound", "thresholds.accuracy",
       metrics_and("thresholds", {{"accuracy", 0.9}})},
      {"baseline without ref", "baseline.ref",
       metrics_and("baseline", {{"max_regression", {{"accuracy", 0.1}}}})},
      {"baseline without regressions", "baseline.max_regression",
       metrics_and("baseline", {{"ref", "production"}})},
      {"baseline empty regressions", "baseline.max_regression",
       metrics_and("baseline", {{"ref", "production"}, {"max_regression", core::Json::object()}})},
      {"baseline on unmeasured metric", "baseline.max_regression.mae",
       metrics_and("baseline", {{"ref", "production"}, {"max_regression", {{"mae", 0.1}}}})},
      {"baseline negative allowance", "baseline.max_regression.accuracy",
       metrics_and("baseline", {{"ref", "production"}, {"max_regression", {{"accuracy", -0.1}}}})},
      {"baseline unknown key", "baseline.alias", metrics_and("baseline", {{"alias", "production"}})},
      {"determinism not a bool", "determinism", with("determinism", 1)},
      {"weights a string", "weights", with("weights", "yes")},
      {"weights unknown key", "weights.nan", with("weights", {{"nan", 0}})},
      {"weights negative nonfinite", "weights.max_nonfinite", with("weights", {{"max_nonfinite", -1}})},
      {"parent without ref", "weights.parent.ref", with("weights", {{"parent", {{"min_cosine", 0.5}}}})},
      {"parent cosine above 1", "weights.parent.min_cosine",
       with("weights", {{"parent", {{"ref", "v1"}, {"min_cosine", 1.5}}}})},
      {"parent negative diff", "weights.parent.max_abs_diff",
       with("weights", {{"parent", {{"ref", "v1"}, {"max_abs_diff", -1}}}})},
      {"limits time 0", "limits.time_s", with("limits", {{"time_s", 0}})},
      {"limits memory 0", "limits.memory_mb", with("limits", {{"memory_mb", 0}})},
      {"limits memory below the worker's minimum", "limits.memory_mb", with("limits", {{"memory_mb", 100}})},
      {"limits time beyond a week", "limits.time_s", with("limits", {{"time_s", 10000000}})},
      {"limits unknown key", "limits.cpus", with("limits", {{"cpus", 4}})},
      {"device unknown", "device", with("device", "tpu")},
      {"device not a string", "device", with("device", 0)},
  };
  for (const Case& c : cases) {
    INFO(c.name << ": " << core::DumpJson(c.spec));
    core::Status s = ParseStatus(c.spec);
    REQUIRE_FALSE(s.ok());
    CHECK(s.code() == core::Code::kInvalidArgument);
    CHECK(s.reason() == "BAD_EVAL_SPEC");
    CHECK_THAT(s.message(), Catch::Contains(std::string("eval spec: ") + c.field + ":"));
  }
}

TEST_CASE("hostile documents are refused as bad specs", "[validator]") {
  std::vector<std::string> documents = {
      "",
      "null",
      "[]",
      "\"model.pt\"",
      "{",
      std::string(100000, '['),
      R"({"model":"m.pt","dataset":{"path":"a"},"x":")" + std::string(70 << 10, 'a') + "\"}",
      R"({"model":")" + std::string(2000, 'a') + R"(","dataset":{"path":"a"}})",
      std::string("{\"model\":\"m\\u0000.pt\",\"dataset\":{\"path\":\"a\"}}"),
      "{\"model\":\"\xff.pt\",\"dataset\":{\"path\":\"a\"}}",
  };
  for (const std::string& doc : documents) {
    INFO(doc.substr(0, 80));
    auto r = ParseEvalSpec(doc);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == core::Code::kInvalidArgument);
    CHECK(r.status().reason() == "BAD_EVAL_SPEC");
  }
}

}  // namespace
}  // namespace sigil::validator
