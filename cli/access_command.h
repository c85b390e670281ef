// The access control commands: login, token create/ls/revoke, audit,
// access set. Each returns what to print on stdout (the server's JSON when
// json is true, a table or a line otherwise). Errors are the server's
// (ErrorFromResponse) or kUnavailable when it cannot be reached.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "cli/http_client.h"
#include "core/status.h"

namespace sigil::cli {

// Checks token against server (GET /api/v1/tokens/self) and stores it in
// the credentials file (cli/credentials.h). token is trimmed; empty is
// kInvalidArgument TOKEN_INVALID.
core::Result<std::string> Login(const std::string& server, std::string token,
                                std::chrono::milliseconds retry_budget);

struct TokenSpec {
  std::string name;
  std::string role;
  std::vector<std::string> repos;
  std::string site;
  std::string region;
  std::string expires;  // "30d", or empty: never
};

class AccessCommands {
 public:
  AccessCommands(HttpClient* http, std::chrono::milliseconds retry_budget, bool json)
      : http_(http), retry_budget_(retry_budget), json_(json) {}

  // The new token on a line of its own (shown once), then its record.
  core::Result<std::string> CreateToken(const TokenSpec& spec);
  core::Result<std::string> ListTokens();
  core::Result<std::string> RevokeToken(const std::string& name);
  // since: RFC 3339 or empty.
  core::Result<std::string> Audit(const std::string& repo, const std::string& since,
                                  const std::string& action);
  core::Result<std::string> SetAnonymousRead(const std::string& repo, bool allowed);

 private:
  core::Result<HttpResponse> Call(const HttpRequest& request);

  HttpClient* http_;
  std::chrono::milliseconds retry_budget_;
  bool json_;
};

}  // namespace sigil::cli
