#include "cli/access_command.h"

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/credentials.h"
#include "core/json.h"

namespace sigil::cli {
namespace {

using nlohmann::json;

std::string Str(const json& object, const char* key) {
  if (!object.is_object() || !object.contains(key)) return "";
  const auto& v = object[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

std::string Join(const json& array) {
  std::string out;
  if (!array.is_array()) return out;
  for (const auto& v : array) {
    if (!v.is_string()) continue;
    if (!out.empty()) out += ",";
    out += v.get<std::string>();
  }
  return out;
}

core::Result<json> ParseAnswer(const HttpResponse& response) {
  auto parsed = core::ParseJson(response.body);
  if (!parsed.ok() || !parsed->is_object()) {
    return core::Internal("the server's answer is not a JSON object");
  }
  return *parsed;
}

std::string Dash(const std::string& s) { return s.empty() ? "-" : s; }

std::string TokenTable(const json& tokens) {
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "ROLE", "REPOS", "SITE", "REGION", "CREATED", "EXPIRES", "STATE", "LAST USED"}};
  if (tokens.is_array()) {
    for (const auto& t : tokens) {
      std::string state = !Str(t, "revoked").empty() ? "revoked" : "live";
      rows.push_back({Str(t, "name"), Str(t, "role"), Join(t.value("repos", json::array())),
                      Dash(Str(t, "site")), Dash(Str(t, "region")), Str(t, "created"),
                      Dash(Str(t, "expires")), state, Dash(Str(t, "last_used"))});
    }
  }
  return FormatTable(rows);
}

}  // namespace

core::Result<std::string> Login(const std::string& server, std::string token,
                                std::chrono::milliseconds retry_budget) {
  size_t b = token.find_first_not_of(" \t\r\n");
  size_t e = token.find_last_not_of(" \t\r\n");
  token = b == std::string::npos ? std::string() : token.substr(b, e - b + 1);
  if (token.empty()) return core::InvalidArgument("no token given (on stdin or --token-file)", "TOKEN_INVALID");
  HttpOptions options;
  options.token = token;
  HttpClient http(server, options);
  ASSIGN_OR_RETURN(HttpResponse r,
                   PerformWithRetry(http, HttpRequest{.path = "/api/v1/tokens/self"}, retry_budget));
  if (!r.ok()) return ErrorFromResponse(r);
  ASSIGN_OR_RETURN(json answer, ParseAnswer(r));
  RETURN_IF_ERROR(SaveToken(server, token));
  const json& record = answer.contains("record") ? answer["record"] : answer;
  return "logged in to " + server + " as " + Str(record, "name") + " (" + Str(record, "role") + ", " +
         Join(record.value("repos", json::array())) + "); token stored in " + CredentialsPath() + "\n";
}

core::Result<HttpResponse> AccessCommands::Call(const HttpRequest& request) {
  ASSIGN_OR_RETURN(HttpResponse r, PerformWithRetry(*http_, request, retry_budget_));
  if (!r.ok()) return ErrorFromResponse(r);
  return r;
}

core::Result<std::string> AccessCommands::CreateToken(const TokenSpec& spec) {
  json body = {{"name", spec.name}, {"role", spec.role}, {"repos", spec.repos}};
  if (!spec.site.empty()) body["site"] = spec.site;
  if (!spec.region.empty()) body["region"] = spec.region;
  if (!spec.expires.empty()) body["expires"] = spec.expires;
  std::string text = core::DumpJson(body);
  ASSIGN_OR_RETURN(HttpResponse r, Call(HttpRequest{.method = "POST",
                                                    .path = "/api/v1/tokens",
                                                    .headers = {"Content-Type: application/json"},
                                                    .body = text}));
  ASSIGN_OR_RETURN(json answer, ParseAnswer(r));
  if (json_) return core::DumpJson(answer) + "\n";
  const json& record = answer.contains("record") ? answer["record"] : json::object();
  return Str(answer, "token") + "\n" + "(shown once) token " + Str(record, "name") + ": " +
         Str(record, "role") + " on " + Join(record.value("repos", json::array())) +
         (Str(record, "expires").empty() ? "" : ", expires " + Str(record, "expires")) + "\n";
}

core::Result<std::string> AccessCommands::ListTokens() {
  ASSIGN_OR_RETURN(HttpResponse r, Call(HttpRequest{.path = "/api/v1/tokens"}));
  ASSIGN_OR_RETURN(json answer, ParseAnswer(r));
  if (json_) return core::DumpJson(answer) + "\n";
  return TokenTable(answer.value("tokens", json::array()));
}

core::Result<std::string> AccessCommands::RevokeToken(const std::string& name) {
  ASSIGN_OR_RETURN(HttpResponse r,
                   Call(HttpRequest{.method = "DELETE", .path = "/api/v1/tokens/" + UrlEncode(name)}));
  ASSIGN_OR_RETURN(json answer, ParseAnswer(r));
  if (json_) return core::DumpJson(answer) + "\n";
  return "revoked token " + name + "\n";
}

core::Result<std::string> AccessCommands::Audit(const std::string& repo, const std::string& since,
                                                const std::string& action) {
  std::string query;
  auto add = [&](const char* key, const std::string& value) {
    if (value.empty()) return;
    query += (query.empty() ? "?" : "&") + std::string(key) + "=" + UrlEncode(value);
  };
  add("repo", repo);
  add("since", since);
  add("action", action);
  ASSIGN_OR_RETURN(HttpResponse r, Call(HttpRequest{.path = "/api/v1/audit" + query}));
  ASSIGN_OR_RETURN(json answer, ParseAnswer(r));
  if (json_) return core::DumpJson(answer) + "\n";
  std::vector<std::vector<std::string>> rows = {
      {"TIME", "TOKEN", "ROLE", "SITE", "ACTION", "METHOD", "TARGET", "STATUS", "RESULT", "REASON", "LOG"}};
  for (const auto& e : answer.value("entries", json::array())) {
    rows.push_back({Str(e, "time"), Str(e, "token"), Dash(Str(e, "role")), Dash(Str(e, "site")),
                    Str(e, "action"), Str(e, "method"), Str(e, "target"), Str(e, "status"),
                    Str(e, "result"), Dash(Str(e, "reason")), Str(e, "log_index")});
  }
  return FormatTable(rows);
}

core::Result<std::string> AccessCommands::SetAnonymousRead(const std::string& repo, bool allowed) {
  std::string text = core::DumpJson(json{{"anonymous_read", allowed}});
  ASSIGN_OR_RETURN(HttpResponse r, Call(HttpRequest{.method = "PUT",
                                                    .path = "/api/v1/models/" + repo + "/access",
                                                    .headers = {"Content-Type: application/json"},
                                                    .body = text}));
  ASSIGN_OR_RETURN(json answer, ParseAnswer(r));
  if (json_) return core::DumpJson(answer) + "\n";
  return repo + ": anonymous reads " + (answer.value("anonymous_read", false) ? "allowed" : "refused") + "\n";
}

}  // namespace sigil::cli
