// The policy commands: `sigil policy put|get|ls|rm|test`. Each returns what
// to print on stdout (the server's JSON when json is true, a line, a table or
// the document otherwise). Errors are the server's (ErrorFromResponse), a
// local file that cannot be read (core::ReadFile's), or kUnavailable when the
// server cannot be reached.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "cli/http_client.h"
#include "cli/refs.h"
#include "core/status.h"

namespace sigil::cli {

// What `policy test` found: the text to print and whether every decision
// passed (exit 0 only then).
struct PolicyTestOutcome {
  std::string output;
  bool passed = false;
};

class PolicyCommands {
 public:
  PolicyCommands(HttpClient* http, std::chrono::milliseconds retry_budget, bool json)
      : http_(http), retry_budget_(retry_budget), json_(json) {}

  // POST /api/v1/policies with the file's exact bytes (at most 64 KiB,
  // policies::kMaxPolicyBytes; the server parses them). "stored policy N
  // version V (digest)" or "policy N unchanged (version V)".
  core::Result<std::string> Put(const std::string& file);
  // The document (version 0: the latest), as stored; with json the record.
  core::Result<std::string> Get(const std::string& name, uint64_t version);
  // NAME VERSION DIGEST CREATED BY, the latest of each policy in force.
  core::Result<std::string> List();
  core::Result<std::string> Remove(const std::string& name);
  // Dry run of the file's policy against a version for a stage (POST
  // .../versions/{ref}/policy-test {"document", "stage"}): the rule table
  // (cli/decision_table.h), or the server's decision JSON with json.
  core::Result<PolicyTestOutcome> Test(const std::string& file, const Reference& ref,
                                       const std::string& stage);

 private:
  core::Result<HttpResponse> Call(const HttpRequest& request);

  HttpClient* http_;
  std::chrono::milliseconds retry_budget_;
  bool json_;
};

}  // namespace sigil::cli
