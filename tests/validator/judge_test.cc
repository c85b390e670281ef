// Judging evaluations: every check the spec asks for, from figures given
// here, each passing and failing on its own.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "validator/judge.h"

namespace sigil::validator {
namespace {

EvalOutcome Ran(std::map<std::string, double> metrics) {
  EvalOutcome o;
  o.ok = true;
  o.device = "cpu";
  o.samples = 100;
  o.metrics = std::move(metrics);
  o.deterministic = true;
  return o;
}

const Check* Find(const Judgement& j, const std::string& kind, const std::string& metric = "") {
  for (const Check& c : j.checks) {
    if (c.kind == kind && (metric.empty() || c.metric == metric)) return &c;
  }
  return nullptr;
}

TEST_CASE("thresholds pass at the bound and fail beyond it, naming both figures", "[validator][judge]") {
  EvalSpec spec;
  spec.thresholds["accuracy"] = Bound{0.9, std::nullopt};
  spec.thresholds["latency_p95_ms"] = Bound{std::nullopt, 50.0};
  EvalOutcome at = Ran({{"accuracy", 0.9}, {"latency_p95_ms", 50.0}});
  Judgement j = Judge({&spec, &at, nullptr, "", {}});
  CHECK(j.passed);
  REQUIRE(j.checks.size() == 4);  // run, two thresholds, determinism

  EvalOutcome below = Ran({{"accuracy", 0.89}, {"latency_p95_ms", 51.0}});
  j = Judge({&spec, &below, nullptr, "", {}});
  CHECK_FALSE(j.passed);
  const Check* acc = Find(j, "threshold", "accuracy");
  REQUIRE(acc != nullptr);
  CHECK_FALSE(acc->passed);
  CHECK(*acc->value == 0.89);
  CHECK(*acc->expected == 0.9);
  CHECK(acc->detail == "accuracy 0.89 < min 0.9");
  CHECK_FALSE(Find(j, "threshold", "latency_p95_ms")->passed);

  EvalOutcome nan = Ran({{"accuracy", std::nan("")}, {"latency_p95_ms", 1.0}});
  CHECK_FALSE(Judge({&spec, &nan, nullptr, "", {}}).passed);
}

TEST_CASE("a failed run fails the evaluation with its reason and skips metric checks", "[validator][judge]") {
  EvalSpec spec;
  spec.thresholds["accuracy"] = Bound{0.5, std::nullopt};
  EvalOutcome crashed;
  crashed.error = "killed by signal 11 (Segmentation fault)";
  Judgement j = Judge({&spec, &crashed, nullptr, "", {}});
  CHECK_FALSE(j.passed);
  REQUIRE(j.checks.size() == 1);
  CHECK(j.checks[0].detail == "the evaluation failed: killed by signal 11 (Segmentation fault)");
}

TEST_CASE("baseline regressions count in each metric's own direction", "[validator][judge]") {
  EvalSpec spec;
  spec.baseline = BaselineSpec{"production", {{"accuracy", 0.01}, {"cross_entropy", 0.05}}};
  EvalOutcome base = Ran({{"accuracy", 0.95}, {"cross_entropy", 0.20}});

  EvalOutcome within = Ran({{"accuracy", 0.94}, {"cross_entropy", 0.25}});
  CHECK(Judge({&spec, &within, &base, "", {}}).passed);

  EvalOutcome worse = Ran({{"accuracy", 0.93}, {"cross_entropy", 0.26}});
  Judgement j = Judge({&spec, &worse, &base, "", {}});
  CHECK_FALSE(j.passed);
  const Check* acc = Find(j, "baseline", "accuracy");
  REQUIRE(acc != nullptr);
  CHECK_FALSE(acc->passed);
  CHECK(*acc->expected == 0.95);
  CHECK(acc->detail.find("worse by 0.02") != std::string::npos);
  CHECK_FALSE(Find(j, "baseline", "cross_entropy")->passed);

  // Better on both: no regression.
  EvalOutcome better = Ran({{"accuracy", 0.99}, {"cross_entropy", 0.1}});
  CHECK(Judge({&spec, &better, &base, "", {}}).passed);

  // No baseline outcome: the check fails with why.
  j = Judge({&spec, &within, nullptr, "production: ALIAS_UNKNOWN", {}});
  CHECK_FALSE(j.passed);
  CHECK(Find(j, "baseline")->detail.find("could not be evaluated: production: ALIAS_UNKNOWN") != std::string::npos);
}

TEST_CASE("non-deterministic outputs fail when determinism is asked for", "[validator][judge]") {
  EvalSpec spec;
  EvalOutcome o = Ran({});
  o.deterministic = false;
  CHECK_FALSE(Judge({&spec, &o, nullptr, "", {}}).passed);
  spec.determinism = false;
  CHECK(Judge({&spec, &o, nullptr, "", {}}).passed);
}

TEST_CASE("weights: non-finite values and distance from the parent", "[validator][judge]") {
  EvalSpec spec;
  EvalOutcome o = Ran({});
  StatsReport clean;
  clean.tensors.push_back(TensorStats{"a", DType::kF32, {4}, 4, 0, 0, -1, 1, 0, 2});
  StatsReport poisoned = clean;
  poisoned.tensors[0].nan = 2;
  poisoned.tensors[0].name = "layer.weight";
  poisoned.total_nan = 2;
  CHECK(Judge({&spec, &o, nullptr, "", {&clean}}).passed);
  Judgement j = Judge({&spec, &o, nullptr, "", {&clean, &poisoned}});
  CHECK_FALSE(j.passed);
  CHECK(Find(j, "weights")->detail == "2 NaN and 0 Inf weights (allowed 0), first in layer.weight");
  spec.max_nonfinite = 2;
  CHECK(Judge({&spec, &o, nullptr, "", {&poisoned}}).passed);

  spec.parent = ParentSpec{"v1", 0.99, 0.5};
  StatsReport diffed = clean;
  diffed.diffs.push_back(TensorDiff{"a", true, "", 0.25, 0.999});
  diffed.diffs.push_back(TensorDiff{"b", true, "", 0.75, 0.98});
  diffed.diffs.push_back(TensorDiff{"c", false, "shape differs", 0, 0});
  j = Judge({&spec, &o, nullptr, "", {&diffed}});
  CHECK_FALSE(j.passed);
  const Check* cos = Find(j, "parent", "cosine");
  REQUIRE(cos != nullptr);
  CHECK(*cos->value == 0.98);
  CHECK(cos->detail.find("(b)") != std::string::npos);
  const Check* diff = Find(j, "parent", "max_abs_diff");
  CHECK(*diff->value == 0.75);
  CHECK_FALSE(diff->passed);

  // Nothing comparable: the parent checks fail rather than pass vacuously.
  StatsReport none = clean;
  j = Judge({&spec, &o, nullptr, "", {&none}});
  CHECK_FALSE(Find(j, "parent", "cosine")->passed);
}

}  // namespace
}  // namespace sigil::validator
