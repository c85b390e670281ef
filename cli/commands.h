// The small commands: ls, inspect, alias, rm, gc. Each talks to the server
// through the given client and returns what to print on stdout: the
// server's JSON when json is true, a human table or line otherwise.
// Errors are the server's (ErrorFromResponse) or kUnavailable when it cannot
// be reached.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "cli/http_client.h"
#include "cli/refs.h"
#include "core/status.h"

namespace sigil::cli {

// Columns padded to their widest cell, separated by two spaces, one row a line.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);
// "sha256:0123456789abcdef..." -> "0123456789ab".
std::string ShortDigest(const std::string& digest);
// The table `sigil ls REPO` prints for a list of version JSON objects:
// VERSION DIGEST SIZE CREATED STATE ALIASES.
std::string FormatVersions(const nlohmann::json& versions);
// The table `sigil ls` prints for repository JSON objects:
// REPOSITORY VERSIONS CREATED LABELS.
std::string FormatRepositories(const nlohmann::json& repositories);

class Commands {
 public:
  Commands(HttpClient* http, std::chrono::milliseconds retry_budget, bool json)
      : http_(http), retry_budget_(retry_budget), json_(json) {}

  core::Result<std::string> ListRepositories();
  core::Result<std::string> ListVersions(const std::string& repository);
  core::Result<std::string> Inspect(const Reference& ref);
  // target: a version or a manifest digest.
  core::Result<std::string> SetAlias(const Reference& alias, const std::string& target);
  core::Result<std::string> RemoveAlias(const Reference& alias);
  core::Result<std::string> RemoveVersion(const Reference& version);
  core::Result<std::string> CollectGarbage();

 private:
  core::Result<HttpResponse> Call(const HttpRequest& request);
  core::Result<nlohmann::json> CallJson(const HttpRequest& request);
  // Follows "next" page tokens; gathers the arrays under key.
  core::Result<nlohmann::json> Paged(const std::string& path, const std::string& key);

  HttpClient* http_;
  std::chrono::milliseconds retry_budget_;
  bool json_;
};

}  // namespace sigil::cli
