#include "validator/metrics.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

namespace sigil::validator {
namespace {

Outputs Out(std::vector<int64_t> shape, std::vector<float> values) {
  return Outputs{std::move(shape), std::move(values)};
}

Targets Classes(std::vector<int64_t> classes) {
  Targets t;
  t.shape = {static_cast<int64_t>(classes.size())};
  t.integer = true;
  t.classes = std::move(classes);
  return t;
}

Targets Values(std::vector<int64_t> shape, std::vector<double> values) {
  Targets t;
  t.shape = std::move(shape);
  t.values = std::move(values);
  return t;
}

// Three samples, three classes:
//   [2, 1, 0] target 0: top-1 hit.
//   [0, 3, 1] target 2: second place, a top-2 hit only.
//   [1, 1, 0] target 1: tied for first with class 0, which wins as the
//             lower index (torch.argmax's rule), so a top-2 hit only.
const Outputs kScores = Out({3, 3}, {2, 1, 0, 0, 3, 1, 1, 1, 0});
const Targets kTargets = Classes({0, 2, 1});

TEST_CASE("accuracy and top-k accuracy on a small case with a tie", "[validator]") {
  CHECK(Accuracy(kScores, kTargets).value() == Approx(1.0 / 3));
  CHECK(TopKAccuracy(kScores, kTargets, 1).value() == Approx(1.0 / 3));
  CHECK(TopKAccuracy(kScores, kTargets, 2).value() == 1.0);
  CHECK(TopKAccuracy(kScores, kTargets, 3).value() == 1.0);
  // k beyond the number of classes counts every sample.
  CHECK(TopKAccuracy(kScores, kTargets, 5).value() == 1.0);
  // The same tie, the target now the lower index: a hit.
  CHECK(Accuracy(Out({1, 3}, {1, 1, 0}), Classes({0})).value() == 1.0);
  CHECK(TopKAccuracy(kScores, kTargets, 0).status().code() == core::Code::kInvalidArgument);
}

TEST_CASE("a NaN score ranks below every number", "[validator]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  CHECK(Accuracy(Out({1, 3}, {nan, 1, 0}), Classes({1})).value() == 1.0);
  CHECK(Accuracy(Out({1, 3}, {nan, 1, 0}), Classes({0})).value() == 0.0);
  CHECK(TopKAccuracy(Out({1, 3}, {nan, 1, 0}), Classes({0}), 2).value() == 0.0);
  CHECK(std::isnan(CrossEntropy(Out({1, 3}, {nan, 1, 0}), Classes({1})).value()));
}

TEST_CASE("cross-entropy against values computed by hand", "[validator]") {
  // Equal logits: the loss is log(C) whatever the target.
  CHECK(CrossEntropy(Out({1, 4}, {0, 0, 0, 0}), Classes({2})).value() ==
        Approx(std::log(4.0)).epsilon(1e-12));
  CHECK(CrossEntropy(Out({1, 4}, {7, 7, 7, 7}), Classes({0})).value() ==
        Approx(std::log(4.0)).epsilon(1e-12));
  // Logits log 1 and log 3: softmax [1/4, 3/4].
  float log3 = static_cast<float>(std::log(3.0));
  double expect = -std::log(std::exp(double{log3}) / (1 + std::exp(double{log3})));
  CHECK(CrossEntropy(Out({1, 2}, {0, log3}), Classes({1})).value() == Approx(expect).epsilon(1e-12));
  // Row [2, 1, 0] target 0: log(e^2 + e + 1) - 2 = 0.40760596444438013
  // (python3: math.log(math.exp(2)+math.exp(1)+1)-2).
  CHECK(CrossEntropy(Out({1, 3}, {2, 1, 0}), Classes({0})).value() ==
        Approx(0.40760596444438013).epsilon(1e-12));
  // The mean of the two rows.
  CHECK(CrossEntropy(Out({2, 3}, {2, 1, 0, 0, 0, 0}), Classes({0, 1})).value() ==
        Approx((0.40760596444438013 + std::log(3.0)) / 2).epsilon(1e-12));
  // Large logits: the shifted log-sum-exp stays finite where exp overflows.
  CHECK(CrossEntropy(Out({1, 2}, {1000, 0}), Classes({1})).value() == Approx(1000).epsilon(1e-12));
  CHECK(CrossEntropy(Out({1, 2}, {1000, 0}), Classes({0})).value() == Approx(0).margin(1e-300));
  CHECK(CrossEntropy(Out({1, 2}, {-1000, -1000}), Classes({0})).value() ==
        Approx(std::log(2.0)).epsilon(1e-12));
}

TEST_CASE("mean squared and absolute error", "[validator]") {
  Outputs out = Out({2, 2}, {1, 2, 3, 4});
  Targets t = Values({2, 2}, {1.5, 2, 1, 4});  // differences -0.5, 0, 2, 0
  CHECK(MeanSquaredError(out, t).value() == 1.0625);
  CHECK(MeanAbsoluteError(out, t).value() == 0.625);
  // Same count per sample, other shape: [2, 2] against [2, 1, 2].
  CHECK(MeanSquaredError(out, Values({2, 1, 2}, {1.5, 2, 1, 4})).value() == 1.0625);
  // Integer targets are numbers here.
  Targets ints = Classes({1, 5});
  CHECK(MeanAbsoluteError(Out({2, 1}, {2, 2}), ints).value() == 2.0);
  CHECK(MeanSquaredError(Out({2}, {2, 2}), ints).value() == 5.0);
}

TEST_CASE("percentiles interpolate between closest ranks", "[validator]") {
  std::vector<double> v = {4, 1, 3, 2};
  CHECK(Percentile(v, 50).value() == 2.5);
  CHECK(Percentile(v, 95).value() == Approx(3.85));
  CHECK(Percentile(v, 0).value() == 1);
  CHECK(Percentile(v, 100).value() == 4);
  std::vector<double> one = {7};
  CHECK(Percentile(one, 95).value() == 7);
  CHECK(Percentile({}, 50).status().code() == core::Code::kInvalidArgument);
  CHECK(Percentile(v, 101).status().code() == core::Code::kInvalidArgument);
  CHECK(Percentile(v, -1).status().code() == core::Code::kInvalidArgument);
  CHECK(Percentile(v, std::nan("")).status().code() == core::Code::kInvalidArgument);
}

TEST_CASE("metrics refuse outputs and targets that do not fit", "[validator]") {
  struct Case {
    const char* name;
    core::Result<double> result;
    const char* message;
  };
  std::vector<Case> cases = {
      {"cross_entropy with float targets", CrossEntropy(kScores, Values({3}, {0, 2, 1})),
       "integer class targets"},
      {"accuracy with float targets", Accuracy(kScores, Values({3}, {0, 2, 1})), "integer class targets"},
      {"class out of range", Accuracy(kScores, Classes({0, 3, 1})), "target 3 of sample 1"},
      {"negative class", CrossEntropy(kScores, Classes({0, -1, 1})), "target -1 of sample 1"},
      {"fewer targets", Accuracy(kScores, Classes({0, 1})), "outputs have 3 samples, targets 2"},
      {"outputs not 2-D", Accuracy(Out({3, 3, 1}, kScores.values), kTargets), "outputs [N, classes]"},
      {"targets not 1-D",
       TopKAccuracy(
           kScores,
           [] {
             Targets t = Classes({0, 2, 1});
             t.shape = {3, 1};
             return t;
           }(),
           2),
       "targets [N]"},
      {"shape and values disagree", Accuracy(Out({3, 2}, kScores.values), kTargets), "does not match"},
      {"no samples", Accuracy(Out({0, 3}, {}), Classes({})), "no samples"},
      {"regression per-sample mismatch", MeanSquaredError(kScores, kTargets),
       "as many outputs as targets per sample"},
      {"regression sample mismatch", MeanAbsoluteError(Out({2, 1}, {1, 2}), Values({1, 2}, {1, 2})),
       "outputs have 2 samples, targets 1"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    REQUIRE_FALSE(c.result.ok());
    CHECK(c.result.status().code() == core::Code::kInvalidArgument);
    CHECK(c.result.status().reason() == "METRIC_MISMATCH");
    CHECK_THAT(c.result.status().message(), Catch::Contains(c.message));
  }
}

TEST_CASE("ComputeMetrics computes each named metric and names the one that fails", "[validator]") {
  auto m = ComputeMetrics({"accuracy", "top_k_accuracy", "cross_entropy"}, kScores, kTargets, 2);
  REQUIRE(m.ok());
  CHECK(m->size() == 3);
  CHECK(m->at("accuracy") == Approx(1.0 / 3));
  CHECK(m->at("top_k_accuracy") == 1.0);
  CHECK(m->at("cross_entropy") == Approx(CrossEntropy(kScores, kTargets).value()));
  CHECK(ComputeMetrics({}, kScores, kTargets, 2).value().empty());

  auto bad = ComputeMetrics({"accuracy", "cross_entropy"}, kScores, Values({3}, {0, 2, 1}), 5);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().reason() == "METRIC_MISMATCH");
  CHECK_THAT(bad.status().message(), Catch::StartsWith("accuracy: "));
  auto unknown = ComputeMetrics({"f1"}, kScores, kTargets, 2);
  CHECK(unknown.status().reason() == "UNKNOWN_METRIC");
}

}  // namespace
}  // namespace sigil::validator
