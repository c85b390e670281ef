#include "validator/judge.h"

#include <cmath>
#include <cstdio>
#include <limits>

namespace sigil::validator {
namespace {

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

Check Threshold(const std::string& metric, const Bound& bound, const EvalOutcome& outcome) {
  Check c;
  c.kind = "threshold";
  c.metric = metric;
  auto it = outcome.metrics.find(metric);
  if (it == outcome.metrics.end()) {
    c.detail = metric + " was not measured";
    return c;
  }
  double v = it->second;
  c.value = v;
  c.passed = std::isfinite(v);
  std::string parts;
  if (bound.min) {
    c.expected = *bound.min;
    bool ok = v >= *bound.min;
    c.passed = c.passed && ok;
    parts += metric + " " + Num(v) + (ok ? " >= " : " < ") + "min " + Num(*bound.min);
  }
  if (bound.max) {
    if (!bound.min) c.expected = *bound.max;
    bool ok = v <= *bound.max;
    c.passed = c.passed && ok;
    if (!parts.empty()) parts += "; ";
    parts += metric + " " + Num(v) + (ok ? " <= " : " > ") + "max " + Num(*bound.max);
  }
  if (!std::isfinite(v)) parts = metric + " is not a finite number";
  c.detail = parts;
  return c;
}

Check Baseline(const std::string& metric, double allowed, const EvalOutcome& candidate,
               const EvalOutcome& baseline) {
  Check c;
  c.kind = "baseline";
  c.metric = metric;
  auto mine = candidate.metrics.find(metric);
  auto theirs = baseline.metrics.find(metric);
  if (mine == candidate.metrics.end() || theirs == baseline.metrics.end()) {
    c.detail = metric + " was not measured on both models";
    return c;
  }
  c.value = mine->second;
  c.expected = theirs->second;
  // How much worse the candidate is, in the metric's own direction.
  double worse = HigherIsBetter(metric) ? theirs->second - mine->second : mine->second - theirs->second;
  c.passed = std::isfinite(worse) && worse <= allowed + 1e-12;
  c.detail = metric + " " + Num(mine->second) + " against the baseline's " + Num(theirs->second) + ": " +
             (worse > 0 ? "worse by " + Num(worse) : "no regression") + " (allowed " + Num(allowed) + ")";
  return c;
}

}  // namespace

Judgement Judge(const JudgeInput& in) {
  Judgement j;
  const EvalSpec& spec = *in.spec;
  const EvalOutcome& cand = *in.candidate;

  Check run;
  run.kind = "run";
  run.passed = cand.ok;
  run.detail = cand.ok ? "the model ran on " + std::to_string(cand.samples) + " samples (" + cand.device + ")"
                       : "the evaluation failed: " + cand.error;
  j.checks.push_back(run);

  if (cand.ok) {
    for (const auto& [metric, bound] : spec.thresholds) j.checks.push_back(Threshold(metric, bound, cand));
    if (spec.determinism && cand.deterministic.has_value()) {
      Check d;
      d.kind = "determinism";
      d.metric = "outputs";
      d.passed = *cand.deterministic;
      d.detail = d.passed ? "two runs gave identical outputs" : "two runs on the same inputs gave different outputs";
      j.checks.push_back(d);
    }
    if (spec.baseline) {
      if (in.baseline == nullptr || !in.baseline->ok) {
        Check b;
        b.kind = "baseline";
        b.detail = "the baseline " + spec.baseline->ref + " could not be evaluated: " +
                   (in.baseline != nullptr ? in.baseline->error : in.baseline_error);
        j.checks.push_back(b);
      } else {
        for (const auto& [metric, allowed] : spec.baseline->max_regression) {
          j.checks.push_back(Baseline(metric, allowed, cand, *in.baseline));
        }
      }
    }
  }

  if (spec.weight_stats && !in.weights.empty()) {
    uint64_t nan = 0;
    uint64_t inf = 0;
    std::string worst;
    for (const StatsReport* r : in.weights) {
      nan += r->total_nan;
      inf += r->total_inf;
      for (const TensorStats& t : r->tensors) {
        if (worst.empty() && (t.nan > 0 || t.inf > 0)) worst = t.name;
      }
    }
    Check w;
    w.kind = "weights";
    w.metric = "nonfinite";
    w.value = static_cast<double>(nan + inf);
    w.expected = static_cast<double>(spec.max_nonfinite);
    w.passed = nan + inf <= spec.max_nonfinite;
    w.detail = std::to_string(nan) + " NaN and " + std::to_string(inf) + " Inf weights (allowed " +
               std::to_string(spec.max_nonfinite) + ")" + (worst.empty() ? "" : ", first in " + worst);
    j.checks.push_back(w);

    if (spec.parent) {
      double min_cos = std::numeric_limits<double>::infinity();
      double max_diff = 0;
      std::string min_cos_at;
      std::string max_diff_at;
      size_t compared = 0;
      for (const StatsReport* r : in.weights) {
        for (const TensorDiff& d : r->diffs) {
          if (!d.comparable) continue;
          ++compared;
          if (d.cosine < min_cos) {
            min_cos = d.cosine;
            min_cos_at = d.name;
          }
          if (d.max_abs_diff > max_diff || max_diff_at.empty()) {
            max_diff = std::max(max_diff, d.max_abs_diff);
            max_diff_at = d.name;
          }
        }
      }
      auto none = [&](const std::string& metric) {
        Check c;
        c.kind = "parent";
        c.metric = metric;
        c.detail = "no tensor could be compared with the parent " + spec.parent->ref;
        return c;
      };
      if (spec.parent->min_cosine) {
        if (compared == 0) {
          j.checks.push_back(none("cosine"));
        } else {
          Check c;
          c.kind = "parent";
          c.metric = "cosine";
          c.value = min_cos;
          c.expected = *spec.parent->min_cosine;
          c.passed = min_cos >= *spec.parent->min_cosine;
          c.detail = "lowest cosine similarity to the parent " + Num(min_cos) + " (" + min_cos_at + "), min " +
                     Num(*spec.parent->min_cosine);
          j.checks.push_back(c);
        }
      }
      if (spec.parent->max_abs_diff) {
        if (compared == 0) {
          j.checks.push_back(none("max_abs_diff"));
        } else {
          Check c;
          c.kind = "parent";
          c.metric = "max_abs_diff";
          c.value = max_diff;
          c.expected = *spec.parent->max_abs_diff;
          c.passed = max_diff <= *spec.parent->max_abs_diff;
          c.detail = "largest difference from the parent " + Num(max_diff) + " (" + max_diff_at + "), max " +
                     Num(*spec.parent->max_abs_diff);
          j.checks.push_back(c);
        }
      }
    }
  }

  j.passed = true;
  for (const Check& c : j.checks) j.passed = j.passed && c.passed;
  return j;
}

core::Json CheckToJson(const Check& c) {
  core::Json j = {{"kind", c.kind}, {"passed", c.passed}, {"detail", c.detail}};
  if (!c.metric.empty()) j["metric"] = c.metric;
  if (c.value && std::isfinite(*c.value)) j["value"] = *c.value;
  if (c.expected && std::isfinite(*c.expected)) j["expected"] = *c.expected;
  return j;
}

}  // namespace sigil::validator
