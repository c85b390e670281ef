// Quality metrics over a model's outputs, and latency percentiles. Pure C++,
// no LibTorch: the runner hands over outputs already converted to float.
//
// Classification: outputs [N, C] (scores or logits, row-major) with integer
// class targets [N], each in [0, C). Regression: outputs and targets with the
// same number of elements per sample (outputs [N, ...], targets [N, ...]).
// All sums are in double. Errors: kInvalidArgument METRIC_MISMATCH with what
// does not fit (shapes, target types, a class index out of range).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"

namespace sigil::validator {

// A model's outputs for a whole dataset.
struct Outputs {
  std::vector<int64_t> shape;  // [N, ...]
  std::vector<float> values;   // row-major, product(shape) elements
};

// The targets of a dataset: integer class indices or float values.
struct Targets {
  std::vector<int64_t> shape;  // [N, ...]
  bool integer = false;
  std::vector<int64_t> classes;  // when integer
  std::vector<double> values;    // when !integer
};

// Fraction of samples whose highest score is the target's. Of equal highest
// scores the lowest class index wins (as torch.argmax does on CPU). A NaN
// score ranks below every number.
core::Result<double> Accuracy(const Outputs& outputs, const Targets& targets);
// Fraction of samples whose target is among the k highest scores, ranked as
// Accuracy ranks them (ties broken by the lower class index, so k = 1 equals
// Accuracy). k >= C counts every sample. REQUIRES: k >= 1.
core::Result<double> TopKAccuracy(const Outputs& outputs, const Targets& targets, uint32_t k);
// Mean over samples of log(sum_j exp(o_j)) - o_target, from logits, with the
// log-sum-exp shifted by the row maximum.
core::Result<double> CrossEntropy(const Outputs& outputs, const Targets& targets);
// Mean over all elements of (o - t)^2 and |o - t|; integer targets are taken
// as numbers.
core::Result<double> MeanSquaredError(const Outputs& outputs, const Targets& targets);
core::Result<double> MeanAbsoluteError(const Outputs& outputs, const Targets& targets);

// The p-th percentile (0..100) with linear interpolation between the closest
// ranks, numpy's default. Errors: kInvalidArgument for no values or p outside
// [0, 100].
core::Result<double> Percentile(std::span<const double> values, double p);

// Computes each named quality metric ("accuracy", "top_k_accuracy", "mse",
// "mae", "cross_entropy"). Errors: as the metric's own, annotated with its
// name; kInvalidArgument UNKNOWN_METRIC for another name.
core::Result<std::map<std::string, double>> ComputeMetrics(const std::vector<std::string>& names,
                                                           const Outputs& outputs, const Targets& targets,
                                                           uint32_t top_k);

}  // namespace sigil::validator
