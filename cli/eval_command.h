// `sigil eval REF --spec FILE [--wait]` and `sigil stats FILE|REF`.
//
// eval sends the spec file as it is (the server stores those bytes and names
// the job's spec by their digest), and with --wait polls the job until it
// ends and prints the checks, the metrics and the signed report's place in
// the transparency log. stats computes weight statistics locally for a file
// (offline, with the same code the server runs) or asks the server for a
// version's.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/http_client.h"
#include "cli/refs.h"
#include "core/status.h"

namespace sigil::cli {

struct JobOutcome {
  std::string output;     // what to print on stdout
  bool finished = false;  // the job ended (completed, failed or cancelled)
  bool passed = false;    // an evaluation that completed and passed every check; stats without NaN/Inf
};

struct JobWait {
  bool wait = false;
  std::chrono::seconds limit{3600};
  std::chrono::milliseconds retry_budget{5000};
  bool json = false;
};

// Errors: BAD_EVAL_SPEC for a spec that does not parse (checked locally
// first), the server's, kDeadlineExceeded when --wait outlasts the limit.
core::Result<JobOutcome> EvaluateRemote(HttpClient& http, const Reference& ref, const std::string& spec_path,
                                        const JobWait& wait);

// Weight statistics of a local file (safetensors or a PyTorch checkpoint),
// against a local parent file when parent_path is not empty.
core::Result<JobOutcome> StatsLocal(const std::string& path, const std::string& parent_path, bool json);
// Of a version's weight files, against parent (a reference the server
// resolves) when not empty; always waits.
core::Result<JobOutcome> StatsRemote(HttpClient& http, const Reference& ref, const std::string& parent,
                                     const JobWait& wait);

// The human forms: an evaluation job's result, and {"files": [...]} of
// weight statistics.
std::string FormatEvaluationJob(const nlohmann::json& job);
std::string FormatStats(const nlohmann::json& files);

}  // namespace sigil::cli
