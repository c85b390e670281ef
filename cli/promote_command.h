// `sigil promote REF --to STAGE [--wait]` and `sigil history REPO --alias A`.
//
// promote asks the server for a promotion job (POST .../promotions) and with
// --wait follows it (GET /api/v1/jobs/{id}) until it ends, then prints the
// rule table of every policy decision (cli/decision_table.h) and, on PASS,
// the verification summary's digest and log index. history prints an
// alias's moves, newest first: when, who, the version, how (promotion,
// override, import, delete) and the VSA that let it move.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/eval_command.h"
#include "cli/http_client.h"
#include "cli/refs.h"
#include "core/status.h"

namespace sigil::cli {

// finished: the job ended; passed: it completed with verdict PASS (the
// alias moved). Errors: the server's (PROMOTIONS_UNAVAILABLE,
// ROLE_INSUFFICIENT, VERSION_UNKNOWN, QUARANTINED, ...), JOB_WAIT_TIMEOUT
// when --wait outlasts wait.limit.
core::Result<JobOutcome> PromoteRemote(HttpClient& http, const Reference& ref, const std::string& stage,
                                       const JobWait& wait);

// The human form of a finished promotion job.
std::string FormatPromotionJob(const nlohmann::json& job);

// limit in [1, 1000].
core::Result<std::string> AliasHistoryRemote(HttpClient& http, const std::string& repo, const std::string& alias,
                                             int limit, bool json, std::chrono::milliseconds retry_budget);
// The human form of {"alias", "events": [...]}.
std::string FormatAliasHistory(const nlohmann::json& body);

}  // namespace sigil::cli
