// PrintDecisions: the rule table of one or more policy decisions
// (policies::DecisionToJson), as `sigil policy test` and `sigil promote`
// print them.
//
// Accepts a single decision object, an array of them, or an object holding
// them under "decisions" (the detail of a RESIDENCY_DENIED or promotion
// refusal). For each decision it prints a heading line
//   policy <name> (<short digest>): PASS|FAIL
// and then a table RULE RESULT REASON, one rule a row (PASS/FAIL). No
// decision at all prints "no policy applies". Values that are not what
// DecisionToJson writes are printed as "-" rather than refused.
//
// Returns true when every decision's verdict is "PASS" (true for none).
// Thread-safe (writes only to out).
#pragma once

#include <ostream>

#include <nlohmann/json_fwd.hpp>

namespace sigil::cli {

bool PrintDecisions(const nlohmann::json& decisions_or_decision, std::ostream& out);

}  // namespace sigil::cli
