// Judging an evaluation: every check its spec asks for, each with the
// figures that decided it. Pure: the same inputs give the same verdict.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/json.h"
#include "validator/eval_spec.h"
#include "validator/evaluation.h"
#include "validator/tensor_stats.h"

namespace sigil::validator {

struct Check {
  std::string kind;    // "run", "threshold", "baseline", "determinism", "weights", "parent"
  std::string metric;  // the metric or figure checked; empty for "run"
  bool passed = false;
  std::optional<double> value;     // the candidate's figure
  std::optional<double> expected;  // the bound or the baseline's figure
  std::string detail;              // the sentence a person reads
};

struct JudgeInput {
  const EvalSpec* spec = nullptr;
  const EvalOutcome* candidate = nullptr;
  // Set when the spec names a baseline: its outcome, or why there is none.
  const EvalOutcome* baseline = nullptr;
  std::string baseline_error;
  // Weight statistics of the version's weight files (empty when none).
  std::vector<const StatsReport*> weights;
};

struct Judgement {
  bool passed = false;
  std::vector<Check> checks;
};

Judgement Judge(const JudgeInput& input);

core::Json CheckToJson(const Check& check);

}  // namespace sigil::validator
