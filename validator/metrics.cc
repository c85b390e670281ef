#include "validator/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace sigil::validator {
namespace {

core::Status Mismatch(const std::string& message) {
  return core::InvalidArgument(message, "METRIC_MISMATCH");
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// Elements per sample of a [N, ...] shape, checking the element count.
core::Result<uint64_t> PerSample(const std::vector<int64_t>& shape, size_t elements, const char* what) {
  if (shape.empty()) return Mismatch(std::string(what) + " must have a sample dimension");
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return Mismatch(std::string(what) + " has a negative dimension");
    n *= static_cast<uint64_t>(d);
  }
  if (n != elements) {
    return Mismatch(std::string(what) + " shape " + ShapeString(shape) + " does not match its " +
                    std::to_string(elements) + " elements");
  }
  if (shape[0] == 0) return Mismatch(std::string(what) + " has no samples");
  return n / static_cast<uint64_t>(shape[0]);
}

// Checks outputs [N, C] against integer targets [N] in [0, C); returns C.
core::Result<size_t> CheckClassification(const Outputs& outputs, const Targets& targets) {
  if (!targets.integer) {
    return Mismatch("classification metrics need integer class targets, got float targets of shape " +
                    ShapeString(targets.shape));
  }
  ASSIGN_OR_RETURN(uint64_t per_output, PerSample(outputs.shape, outputs.values.size(), "outputs"));
  ASSIGN_OR_RETURN(uint64_t per_target, PerSample(targets.shape, targets.classes.size(), "targets"));
  if (outputs.shape.size() != 2) {
    return Mismatch("classification metrics need outputs [N, classes], got " + ShapeString(outputs.shape));
  }
  if (targets.shape.size() != 1 || per_target != 1) {
    return Mismatch("classification metrics need targets [N] of class indices, got " +
                    ShapeString(targets.shape));
  }
  if (outputs.shape[0] != targets.shape[0]) {
    return Mismatch("outputs have " + std::to_string(outputs.shape[0]) + " samples, targets " +
                    std::to_string(targets.shape[0]));
  }
  if (per_output == 0) return Mismatch("outputs have no classes");
  for (size_t i = 0; i < targets.classes.size(); ++i) {
    int64_t t = targets.classes[i];
    if (t < 0 || static_cast<uint64_t>(t) >= per_output) {
      return Mismatch("target " + std::to_string(t) + " of sample " + std::to_string(i) +
                      " is not a class of [0, " + std::to_string(per_output) + ")");
    }
  }
  return static_cast<size_t>(per_output);
}

// Whether score a ranks above score b; NaN ranks below every number.
bool Above(float a, float b) { return a > b || (std::isnan(b) && !std::isnan(a)); }

// How many classes rank before the target: higher scores, and equal scores
// of a lower class index.
size_t RankOfTarget(const float* row, size_t classes, size_t target) {
  float t = row[target];
  size_t rank = 0;
  for (size_t j = 0; j < classes; ++j) {
    if (j == target) continue;
    bool equal = !Above(row[j], t) && !Above(t, row[j]);
    if (Above(row[j], t) || (equal && j < target)) ++rank;
  }
  return rank;
}

double TopKFraction(const Outputs& outputs, const Targets& targets, size_t classes, size_t k) {
  uint64_t hits = 0;
  size_t n = targets.classes.size();
  for (size_t i = 0; i < n; ++i) {
    const float* row = outputs.values.data() + i * classes;
    if (RankOfTarget(row, classes, static_cast<size_t>(targets.classes[i])) < k) ++hits;
  }
  return static_cast<double>(hits) / static_cast<double>(n);
}

// Checks outputs and targets hold the same number of elements per sample.
core::Status CheckRegression(const Outputs& outputs, const Targets& targets) {
  ASSIGN_OR_RETURN(uint64_t per_output, PerSample(outputs.shape, outputs.values.size(), "outputs"));
  size_t target_elements = targets.integer ? targets.classes.size() : targets.values.size();
  ASSIGN_OR_RETURN(uint64_t per_target, PerSample(targets.shape, target_elements, "targets"));
  if (outputs.shape[0] != targets.shape[0]) {
    return Mismatch("outputs have " + std::to_string(outputs.shape[0]) + " samples, targets " +
                    std::to_string(targets.shape[0]));
  }
  if (per_output != per_target) {
    return Mismatch("regression metrics need as many outputs as targets per sample: outputs " +
                    ShapeString(outputs.shape) + ", targets " + ShapeString(targets.shape));
  }
  return core::OkStatus();
}

double TargetAt(const Targets& targets, size_t i) {
  return targets.integer ? static_cast<double>(targets.classes[i]) : targets.values[i];
}

}  // namespace

core::Result<double> Accuracy(const Outputs& outputs, const Targets& targets) {
  ASSIGN_OR_RETURN(size_t classes, CheckClassification(outputs, targets));
  return TopKFraction(outputs, targets, classes, 1);
}

core::Result<double> TopKAccuracy(const Outputs& outputs, const Targets& targets, uint32_t k) {
  if (k == 0) return Mismatch("top_k must be at least 1");
  ASSIGN_OR_RETURN(size_t classes, CheckClassification(outputs, targets));
  return TopKFraction(outputs, targets, classes, k);
}

core::Result<double> CrossEntropy(const Outputs& outputs, const Targets& targets) {
  ASSIGN_OR_RETURN(size_t classes, CheckClassification(outputs, targets));
  size_t n = targets.classes.size();
  double total = 0;
  for (size_t i = 0; i < n; ++i) {
    const float* row = outputs.values.data() + i * classes;
    double max = -std::numeric_limits<double>::infinity();
    bool nan = false;
    for (size_t j = 0; j < classes; ++j) {
      if (std::isnan(row[j])) nan = true;
      max = std::max(max, static_cast<double>(row[j]));
    }
    double loss;
    if (nan) {
      loss = std::numeric_limits<double>::quiet_NaN();
    } else if (std::isinf(max)) {
      // All -inf, or a +inf logit: the shift is undefined; the unshifted
      // formula gives inf or NaN, which is the honest answer.
      double sum = 0;
      for (size_t j = 0; j < classes; ++j) sum += std::exp(static_cast<double>(row[j]));
      loss = std::log(sum) - row[targets.classes[i]];
    } else {
      double sum = 0;
      for (size_t j = 0; j < classes; ++j) sum += std::exp(static_cast<double>(row[j]) - max);
      loss = max + std::log(sum) - static_cast<double>(row[targets.classes[i]]);
    }
    total += loss;
  }
  return total / static_cast<double>(n);
}

core::Result<double> MeanSquaredError(const Outputs& outputs, const Targets& targets) {
  RETURN_IF_ERROR(CheckRegression(outputs, targets));
  double total = 0;
  for (size_t i = 0; i < outputs.values.size(); ++i) {
    double d = static_cast<double>(outputs.values[i]) - TargetAt(targets, i);
    total += d * d;
  }
  return total / static_cast<double>(outputs.values.size());
}

core::Result<double> MeanAbsoluteError(const Outputs& outputs, const Targets& targets) {
  RETURN_IF_ERROR(CheckRegression(outputs, targets));
  double total = 0;
  for (size_t i = 0; i < outputs.values.size(); ++i) {
    total += std::fabs(static_cast<double>(outputs.values[i]) - TargetAt(targets, i));
  }
  return total / static_cast<double>(outputs.values.size());
}

core::Result<double> Percentile(std::span<const double> values, double p) {
  if (values.empty()) return core::InvalidArgument("percentile of no values");
  if (!(p >= 0 && p <= 100)) return core::InvalidArgument("percentile must be within [0, 100]");
  std::vector<double> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  double rank = p / 100.0 * static_cast<double>(sorted.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(rank));
  size_t hi = std::min(lo + 1, sorted.size() - 1);
  double frac = rank - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

core::Result<std::map<std::string, double>> ComputeMetrics(const std::vector<std::string>& names,
                                                           const Outputs& outputs, const Targets& targets,
                                                           uint32_t top_k) {
  std::map<std::string, double> metrics;
  for (const std::string& name : names) {
    core::Result<double> value = core::InvalidArgument("unset");
    if (name == "accuracy") {
      value = Accuracy(outputs, targets);
    } else if (name == "top_k_accuracy") {
      value = TopKAccuracy(outputs, targets, top_k);
    } else if (name == "cross_entropy") {
      value = CrossEntropy(outputs, targets);
    } else if (name == "mse") {
      value = MeanSquaredError(outputs, targets);
    } else if (name == "mae") {
      value = MeanAbsoluteError(outputs, targets);
    } else {
      return core::InvalidArgument("unknown metric '" + name.substr(0, 64) + "'", "UNKNOWN_METRIC");
    }
    if (!value.ok()) return value.status().Annotate(name);
    metrics[name] = *value;
  }
  return metrics;
}

}  // namespace sigil::validator
