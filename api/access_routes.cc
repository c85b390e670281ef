// Access control in front of every route (docs/api.md "Access control and
// audit"): the route table of actions, authentication, authorization, the
// audit record of each request, and the token, audit and repository access
// routes.
#include <nlohmann/json.hpp>

#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include "api/service.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"

namespace sigil::api {
namespace {

using core::Json;
using registry::Action;

// Every route of docs/api.md and the action each method needs. A method a
// route does not list needs kPull when it reads (GET, HEAD) and kAdmin
// otherwise: the route answers 405 to it anyway, and a write the table
// forgot fails closed.
struct Rule {
  std::string_view route;
  std::string_view method;
  Action action;
  std::string_view audit;  // the audit log's action name
};

constexpr Rule kRules[] = {
    {"/api/v1/blobs/{digest}", "GET", Action::kPull, "pull"},
    {"/api/v1/blobs/{digest}", "HEAD", Action::kPull, "pull"},
    {"/api/v1/blobs/{digest}", "PUT", Action::kPush, "push"},
    {"/api/v1/uploads", "POST", Action::kPush, "push"},
    {"/api/v1/uploads/{id}", "GET", Action::kPush, "push"},
    {"/api/v1/uploads/{id}", "PATCH", Action::kPush, "push"},
    {"/api/v1/uploads/{id}", "PUT", Action::kPush, "push"},
    {"/api/v1/uploads/{id}", "DELETE", Action::kPush, "push"},
    {"/api/v1/models", "GET", Action::kPull, "pull"},
    {"/api/v1/models/{repo}", "GET", Action::kPull, "pull"},
    {"/api/v1/models/{repo}/labels", "PUT", Action::kPush, "push"},
    {"/api/v1/models/{repo}/access", "GET", Action::kPull, "pull"},
    {"/api/v1/models/{repo}/access", "PUT", Action::kAdmin, "access.set"},
    {"/api/v1/models/{repo}/versions", "GET", Action::kPull, "pull"},
    {"/api/v1/models/{repo}/versions/{ref}", "GET", Action::kPull, "pull"},
    {"/api/v1/models/{repo}/versions/{ref}", "PUT", Action::kPush, "push"},
    {"/api/v1/models/{repo}/versions/{ref}", "DELETE", Action::kDelete, "delete"},
    {"/api/v1/models/{repo}/versions/{ref}/manifest", "GET", Action::kPull, "pull"},
    {"/api/v1/models/{repo}/versions/{ref}/labels", "PUT", Action::kPush, "push"},
    {"/api/v1/models/{repo}/versions/{ref}/files/{path}", "GET", Action::kPull, "pull"},
    {"/api/v1/models/{repo}/versions/{ref}/files/{path}", "HEAD", Action::kPull, "pull"},
    {"/api/v1/models/{repo}/versions/{ref}/scan", "GET", Action::kPull, "pull"},
    {"/api/v1/models/{repo}/versions/{ref}/scan", "POST", Action::kPush, "push"},
    {"/api/v1/models/{repo}/versions/{ref}/evaluations", "GET", Action::kPull, "pull"},
    {"/api/v1/models/{repo}/versions/{ref}/evaluations", "POST", Action::kPush, "push"},
    {"/api/v1/models/{repo}/versions/{ref}/stats", "POST", Action::kPush, "push"},
    {"/api/v1/models/{repo}/versions/{ref}/attestations", "GET", Action::kPull, "pull"},
    {"/api/v1/models/{repo}/versions/{ref}/attestations", "POST", Action::kPush, "push"},
    {"/api/v1/models/{repo}/versions/{ref}/sign", "POST", Action::kPush, "push"},
    {"/api/v1/models/{repo}/versions/{ref}/evidence", "GET", Action::kPull, "pull"},
    {"/api/v1/models/{repo}/aliases", "GET", Action::kPull, "pull"},
    {"/api/v1/models/{repo}/aliases/{alias}", "GET", Action::kPull, "pull"},
    {"/api/v1/models/{repo}/aliases/{alias}", "PUT", Action::kAdmin, "alias.override"},
    {"/api/v1/models/{repo}/aliases/{alias}/history", "GET", Action::kPull, "pull"},
    {"/api/v1/models/{repo}/versions/{ref}/promotions", "POST", Action::kPromote, "promote"},
    {"/api/v1/models/{repo}/versions/{ref}/policy-test", "POST", Action::kPull, "policy.test"},
    {"/api/v1/policies", "GET", Action::kPull, "pull"},
    {"/api/v1/policies", "POST", Action::kAdmin, "policy.put"},
    {"/api/v1/policies/{name}", "GET", Action::kPull, "pull"},
    {"/api/v1/policies/{name}", "DELETE", Action::kAdmin, "policy.delete"},
    {"/api/v1/policies/{name}/versions/{n}", "GET", Action::kPull, "pull"},
    {"/api/v1/exports", "POST", Action::kPull, "export"},
    {"/api/v1/bundles", "POST", Action::kAdmin, "import"},
    {"/api/v1/models/{repo}/aliases/{alias}", "DELETE", Action::kDelete, "delete"},
    {"/api/v1/gc", "POST", Action::kAdmin, "gc"},
    {"/api/v1/trust/keys", "GET", Action::kPull, "pull"},
    {"/api/v1/trust/keys", "POST", Action::kAdmin, "trust.add"},
    {"/api/v1/trust/keys/{id}/revoke", "POST", Action::kAdmin, "trust.revoke"},
    {"/api/v1/trust/reload", "POST", Action::kAdmin, "trust.reload"},
    {"/api/v1/log/entries/{index}", "GET", Action::kPull, "pull"},
    {"/api/v1/log/proof/inclusion", "GET", Action::kPull, "pull"},
    {"/api/v1/log/proof/consistency", "GET", Action::kPull, "pull"},
    {"/api/v1/jobs", "GET", Action::kPull, "pull"},
    {"/api/v1/jobs/{id}", "GET", Action::kPull, "pull"},
    {"/api/v1/jobs/{id}/cancel", "POST", Action::kPush, "push"},
    {"/api/v1/tokens", "GET", Action::kAdmin, "token.list"},
    {"/api/v1/tokens", "POST", Action::kAdmin, "token.create"},
    // Any valid token may read its own record: kPull on no repository.
    {"/api/v1/tokens/self", "GET", Action::kPull, "token.self"},
    {"/api/v1/tokens/{name}", "DELETE", Action::kAdmin, "token.revoke"},
    {"/api/v1/audit", "GET", Action::kAuditRead, "audit-read"},
};

// Served to anyone: liveness, metrics, and what a verifier pins or checks.
constexpr std::string_view kExempt[] = {"/healthz", "/readyz", "/metrics", "/api/v1/log/checkpoint",
                                        "/api/v1/keys/server"};

HttpResponse AccessUnavailable() {
  return ErrorResponse(core::Unavailable("access control is not configured (auth is off)",
                                         "ACCESS_CONTROL_UNAVAILABLE"));
}

core::Result<Json> ParseObject(const HttpRequest& request) {
  core::JsonLimits limits;
  limits.max_bytes = 1 << 20;
  ASSIGN_OR_RETURN(Json body, core::ParseJson(request.body, limits));
  if (!body.is_object()) return core::InvalidArgument("body must be a JSON object", "JSON_INVALID");
  return body;
}

// "Bearer <token>" (the scheme in any case). Errors: kUnauthenticated
// TOKEN_INVALID.
core::Result<std::string> BearerToken(const std::string& header) {
  constexpr std::string_view kScheme = "bearer ";
  bool scheme = header.size() > kScheme.size();
  for (size_t i = 0; scheme && i < kScheme.size(); ++i) {
    scheme = static_cast<char>(std::tolower(static_cast<unsigned char>(header[i]))) == kScheme[i];
  }
  if (!scheme) {
    return core::Unauthenticated("the Authorization header must be 'Bearer <token>'", "TOKEN_INVALID");
  }
  size_t b = kScheme.size();
  while (b < header.size() && header[b] == ' ') ++b;
  size_t e = header.size();
  while (e > b && header[e - 1] == ' ') --e;
  std::string token = header.substr(b, e - b);
  if (token.empty() || token.find_first_of(" \t") != std::string::npos) {
    return core::Unauthenticated("the Authorization header must be 'Bearer <token>'", "TOKEN_INVALID");
  }
  return token;
}

// The error code of an error response ("" when it has none).
std::string ErrorReason(const HttpResponse& response) {
  if (response.status < 400 || response.content_type != "application/json") return "";
  auto body = core::ParseJson(response.body);
  if (!body.ok() || !body->is_object() || !body->contains("error") || !(*body)["error"].is_object()) {
    return "";
  }
  const Json& code = (*body)["error"]["code"];
  return code.is_string() ? code.get<std::string>() : "";
}

}  // namespace

RouteAccess Service::Classify(const HttpRequest& request) const {
  RouteAccess a;
  const std::string& p = request.path;
  a.target = p.substr(0, 200);
  for (std::string_view exempt : kExempt) {
    if (p == exempt) {
      a.route = p;
      a.exempt = true;
      return a;
    }
  }
  constexpr std::string_view kPrefix = "/api/v1/";
  std::vector<std::string> parts;
  if (p.compare(0, kPrefix.size(), kPrefix) == 0) {
    parts = SplitPath(std::string_view(p).substr(kPrefix.size()));
  }
  const size_t n = parts.size();
  const std::string first = n > 0 ? parts[0] : std::string();
  // The route templates, as Dispatch names them.
  if (first == "blobs" && n >= 2) {
    a.route = "/api/v1/blobs/{digest}";
  } else if (first == "uploads" && n == 1) {
    a.route = "/api/v1/uploads";
  } else if (first == "uploads" && n == 2) {
    a.route = "/api/v1/uploads/{id}";
  } else if (first == "models" && n == 1) {
    a.route = "/api/v1/models";
  } else if (first == "models") {
    auto parsed = ParseModelPath(std::string_view(p).substr(std::string_view("/api/v1/models/").size()));
    if (parsed.ok()) {
      const std::vector<std::string>& w = parsed->rest;
      a.repository = parsed->repo;
      a.target = parsed->repo;
      const std::string base = "/api/v1/models/{repo}";
      if (w.empty()) {
        a.route = base;
      } else if (w.size() == 1 && (w[0] == "labels" || w[0] == "access" || w[0] == "versions" ||
                                   w[0] == "aliases")) {
        a.route = base + "/" + w[0];
      } else if (w[0] == "versions") {
        a.target = parsed->repo + ":" + w[1];
        if (w.size() == 2) {
          a.route = base + "/versions/{ref}";
        } else if (w.size() == 3 && (w[2] == "manifest" || w[2] == "scan" || w[2] == "evaluations" ||
                                     w[2] == "stats" || w[2] == "labels" || w[2] == "attestations" ||
                                     w[2] == "sign" || w[2] == "evidence" || w[2] == "promotions" ||
                                     w[2] == "policy-test")) {
          a.route = base + "/versions/{ref}/" + w[2];
        } else if (w.size() >= 4 && w[2] == "files") {
          a.route = base + "/versions/{ref}/files/{path}";
        }
      } else if (w[0] == "aliases" && w.size() == 2) {
        a.route = base + "/aliases/{alias}";
        a.target = parsed->repo + ":" + w[1];
      } else if (w[0] == "aliases" && w.size() == 3 && w[2] == "history") {
        a.route = base + "/aliases/{alias}/history";
        a.target = parsed->repo + ":" + w[1];
      }
      if (a.route == "unknown") a.repository.clear();
    }
  } else if (first == "gc" && n == 1) {
    a.route = "/api/v1/gc";
  } else if (first == "trust" && n == 2 && (parts[1] == "keys" || parts[1] == "reload")) {
    a.route = "/api/v1/trust/" + parts[1];
  } else if (first == "trust" && n == 4 && parts[1] == "keys" && parts[3] == "revoke") {
    a.route = "/api/v1/trust/keys/{id}/revoke";
  } else if (first == "log" && n == 3 && parts[1] == "entries") {
    a.route = "/api/v1/log/entries/{index}";
  } else if (first == "log" && n == 3 && parts[1] == "proof" &&
             (parts[2] == "inclusion" || parts[2] == "consistency")) {
    a.route = "/api/v1/log/proof/" + parts[2];
  } else if (first == "jobs" && (n == 2 || (n == 3 && parts[2] == "cancel"))) {
    a.route = n == 2 ? "/api/v1/jobs/{id}" : "/api/v1/jobs/{id}/cancel";
    a.target = "job:" + parts[1];
    // A job acts on its version's repository; an unknown job is on none
    // (the route answers 404).
    if (options_.evaluations != nullptr) {
      auto job = options_.evaluations->Get(parts[1]);
      if (job.ok()) a.repository = job->repo;
    }
    if (a.repository.empty() && options_.promotions != nullptr) {
      auto job = options_.promotions->Get(parts[1]);
      if (job.ok()) a.repository = job->repo;
    }
  } else if (first == "jobs" && n == 1) {
    a.route = "/api/v1/jobs";
  } else if (first == "tokens" && n == 1) {
    a.route = "/api/v1/tokens";
  } else if (first == "tokens" && n == 2) {
    a.route = parts[1] == "self" && request.method == "GET" ? "/api/v1/tokens/self" : "/api/v1/tokens/{name}";
    std::string name;
    a.target = "token:" + (PercentDecode(parts[1], &name) ? name : parts[1]);
  } else if (first == "audit" && n == 1) {
    a.route = "/api/v1/audit";
  } else if ((first == "exports" || first == "bundles") && n == 1) {
    // On no repository: an export checks pull access on each ref's
    // repository itself (Bundles::Export); an import needs admin.
    a.route = "/api/v1/" + first;
  } else if (first == "policies" && (n == 1 || n == 2 || (n == 4 && parts[2] == "versions"))) {
    // On no repository: the role decides. The target names the policy: from
    // the path, or from the document a POST carries.
    a.route = n == 1 ? "/api/v1/policies" : n == 2 ? "/api/v1/policies/{name}" : "/api/v1/policies/{name}/versions/{n}";
    std::string name;
    if (n >= 2) {
      if (!PercentDecode(parts[1], &name)) name = parts[1];
    } else if (request.method == "POST") {
      core::JsonLimits limits;
      limits.max_bytes = policies::kMaxPolicyBytes;
      auto doc = core::ParseJson(request.body, limits);
      if (doc.ok() && doc->is_object() && doc->contains("name") && (*doc)["name"].is_string()) {
        name = (*doc)["name"].get<std::string>().substr(0, 200);
      }
    }
    if (!name.empty()) a.target = "policy:" + name;
  }

  bool reads = request.method == "GET" || request.method == "HEAD";
  a.action = reads ? Action::kPull : Action::kAdmin;
  a.audit_action = std::string(registry::ActionName(a.action));
  for (const Rule& rule : kRules) {
    if (rule.route == a.route && rule.method == request.method) {
      a.action = rule.action;
      a.audit_action = std::string(rule.audit);
      break;
    }
  }
  return a;
}

bool Service::HeldByAnonymousRepository(const std::string& digest_text) {
  auto digest = core::Digest::Parse(digest_text);
  if (!digest.ok()) return false;
  // Repositories open to anonymous pulls are few: this walks their versions
  // rather than keeping a reverse index of which versions hold a blob.
  constexpr size_t kPage = 1000;
  std::string repo_page;
  do {
    auto repos = options_.registry->ListRepos(repo_page, kPage);
    if (!repos.ok()) return false;
    for (const registry::RepoInfo& repo : repos->items) {
      if (!repo.anonymous_read) continue;
      std::string version_page;
      do {
        auto versions = options_.registry->ListVersions(repo.name, version_page, kPage);
        if (!versions.ok()) break;
        for (const registry::VersionInfo& v : versions->items) {
          if (v.digest == *digest) return true;
          auto resolved = options_.registry->Resolve(repo.name, v.digest.ToString());
          if (!resolved.ok()) continue;
          if (resolved->manifest.config.digest == *digest) return true;
          for (const auto& layer : resolved->manifest.layers) {
            if (layer.digest == *digest) return true;
          }
        }
        version_page = versions->next;
      } while (!version_page.empty());
    }
    repo_page = repos->next;
  } while (!repo_page.empty());
  return false;
}

HttpResponse Service::Handle(const HttpRequest& request, std::string* route) {
  std::string unused;
  if (route == nullptr) route = &unused;
  if (options_.access == nullptr) return Dispatch(request, route);
  RouteAccess access = Classify(request);
  if (access.exempt) return Dispatch(request, route);

  registry::Principal principal;
  principal.name = "anonymous";
  std::string who = "anonymous";
  core::Status refusal;
  std::string header = request.Header("authorization");
  if (!header.empty()) {
    who = "invalid-token";
    auto token = BearerToken(header);
    auto authenticated = token.ok() ? options_.access->Authenticate(*token)
                                    : core::Result<registry::Principal>(token.status());
    if (authenticated.ok()) {
      principal = std::move(authenticated).value();
      who = principal.name;
    } else {
      refusal = authenticated.status();
      // A revoked or expired token proved its secret: the audit names it.
      if (refusal.reason() == "TOKEN_REVOKED" || refusal.reason() == "TOKEN_EXPIRED") {
        std::string id = token->substr(4, 16);  // sgl_<16 hex id>_...
        auto tokens = options_.access->ListTokens();
        for (size_t i = 0; tokens.ok() && i < tokens->size(); ++i) {
          if ((*tokens)[i].id == id) who = (*tokens)[i].name;
        }
      }
    }
  }
  if (refusal.ok() && options_.admit) refusal = options_.admit(principal, request);
  if (refusal.ok()) {
    bool anonymous_read = false;
    if (principal.anonymous && !access.repository.empty()) {
      auto info = options_.registry->GetRepo(access.repository);
      anonymous_read = info.ok() && info->anonymous_read;
    } else if (principal.anonymous && access.route == "/api/v1/blobs/{digest}" &&
               (request.method == "GET" || request.method == "HEAD")) {
      anonymous_read = HeldByAnonymousRepository(request.path.substr(std::string("/api/v1/blobs/").size()));
    }
    refusal = registry::Authorize(principal, access.action, access.repository, anonymous_read);
  }

  HttpResponse response;
  bool refused_here = !refusal.ok();
  if (refused_here) {
    *route = access.route;
    response = ErrorResponse(refusal);
  } else {
    registry::PrincipalScope scope(principal);
    try {
      response = Dispatch(request, route);
    } catch (const std::exception& e) {
      response = ErrorResponse(core::Internal(std::string("unexpected error: ") + e.what()));
    }
  }
  if (response.status == 401) response.AddHeader("WWW-Authenticate", "Bearer realm=\"sigil\"");

  bool changes = request.method != "GET" && request.method != "HEAD";
  bool refused = response.status == 401 || response.status == 403 || response.status == 429;
  if (changes || refused) {
    RecordAudit(request, access, principal, response, refused_here ? refusal.reason() : "", who);
  }
  return response;
}

void Service::RecordAudit(const HttpRequest& request, const RouteAccess& access,
                          const registry::Principal& principal, const HttpResponse& response,
                          const std::string& refusal_reason, const std::string& principal_name) {
  registry::AuditEntry entry;
  entry.token = principal_name;
  if (!principal.anonymous) entry.role = std::string(registry::RoleName(principal.role));
  entry.site = principal.site;
  entry.action = access.audit_action;
  entry.method = request.method;
  entry.target = access.target;
  entry.repository = access.repository;
  entry.status = response.status;
  bool refused = response.status == 401 || response.status == 403 || response.status == 429;
  entry.result = refused ? "refused" : "allowed";
  entry.reason = !refusal_reason.empty() ? refusal_reason : ErrorReason(response);
  try {
    auto recorded = options_.access->Record(std::move(entry));
    if (!recorded.ok()) {
      SIGIL_LOG(kError) << "audit entry for " << request.method << " " << access.target
                        << " not recorded: " << recorded.status().ToString();
    }
  } catch (const std::exception& e) {
    SIGIL_LOG(kError) << "audit entry for " << request.method << " " << access.target
                      << " not recorded: " << e.what();
  }
}

HttpResponse Service::Tokens(const HttpRequest& request, const std::vector<std::string>& parts,
                             std::string* route) {
  if (parts.size() == 2 && parts[1] == "self" && request.method == "GET") {
    *route = "/api/v1/tokens/self";
  } else {
    *route = parts.size() == 1 ? "/api/v1/tokens" : "/api/v1/tokens/{name}";
  }
  if (parts.size() > 2) {
    *route = "unknown";
    return ErrorResponse(core::NotFound("no route for " + request.path.substr(0, 200), "ROUTE_UNKNOWN"));
  }
  if (options_.access == nullptr) return AccessUnavailable();
  registry::AccessControl* access = options_.access;
  if (parts.size() == 2) {
    if (parts[1] == "self" && request.method == "GET") {
      const registry::Principal* me = registry::PrincipalScope::Current();
      if (me == nullptr || me->anonymous) {
        return ErrorResponse(core::Unauthenticated("no token was sent", "AUTHENTICATION_REQUIRED"));
      }
      auto tokens = access->ListTokens();
      if (!tokens.ok()) return ErrorResponse(tokens.status());
      for (const auto& t : *tokens) {
        if (t.id == me->token_id) return JsonResponse(200, Json{{"record", registry::TokenToJson(t)}});
      }
      return ErrorResponse(core::NotFound("the token's record is gone", "TOKEN_UNKNOWN"));
    }
    if (request.method != "DELETE") return MethodNotAllowed(request, "DELETE");
    std::string name;
    if (!PercentDecode(parts[1], &name)) {
      return ErrorResponse(core::InvalidArgument("malformed escape in path", "PATH_INVALID"));
    }
    auto revoked = access->RevokeToken(name);
    if (!revoked.ok()) return ErrorResponse(revoked.status());
    return JsonResponse(200, Json{{"record", registry::TokenToJson(*revoked)}});
  }
  if (request.method == "GET") {
    auto tokens = access->ListTokens();
    if (!tokens.ok()) return ErrorResponse(tokens.status());
    Json list = Json::array();
    for (const auto& t : *tokens) list.push_back(registry::TokenToJson(t));
    return JsonResponse(200, Json{{"tokens", list}});
  }
  if (request.method != "POST") return MethodNotAllowed(request, "GET, POST");
  auto body = ParseObject(request);
  if (!body.ok()) return ErrorResponse(body.status());
  auto bad = [](const std::string& message) {
    return ErrorResponse(core::InvalidArgument(message, "TOKEN_INVALID"));
  };
  for (const auto& [key, value] : body->items()) {
    if (key != "name" && key != "role" && key != "repos" && key != "site" && key != "region" &&
        key != "expires") {
      return bad("unknown field '" + key + "' (name, role, repos, site, region, expires)");
    }
    if (key != "repos" && !value.is_string()) return bad("'" + key + "' must be a string");
  }
  registry::NewToken spec;
  spec.name = body->value("name", "");
  auto role = registry::ParseRole(body->value("role", ""));
  if (!role.ok()) return ErrorResponse(role.status());
  spec.role = *role;
  if (!body->contains("repos") || !(*body)["repos"].is_array() || (*body)["repos"].empty()) {
    return bad("'repos' must be a non-empty list of repository globs");
  }
  spec.repos.clear();
  for (const Json& g : (*body)["repos"]) {
    if (!g.is_string()) return bad("'repos' must be a list of strings");
    spec.repos.push_back(g.get<std::string>());
  }
  spec.site = body->value("site", "");
  spec.region = body->value("region", "");
  std::string expires = body->value("expires", "");
  if (!expires.empty()) {
    // A duration from now ("30d"), or an RFC 3339 time.
    auto duration = core::ParseDuration(expires);
    if (duration.ok()) {
      spec.expires_micros = core::Clock::Real()->NowMicros() + *duration;
    } else {
      auto at = core::ParseRfc3339(expires);
      if (!at.ok()) return bad("'expires' must be a duration (30s, 12h, 30d) or an RFC 3339 time");
      spec.expires_micros = *at;
    }
  }
  const registry::Principal* me = registry::PrincipalScope::Current();
  auto created = access->CreateToken(spec, me != nullptr ? me->name : "server");
  if (!created.ok()) return ErrorResponse(created.status());
  HttpResponse r = JsonResponse(
      201, Json{{"token", created->token}, {"record", registry::TokenToJson(created->record)}});
  r.AddHeader("Cache-Control", "no-store");
  return r;
}

HttpResponse Service::Audit(const HttpRequest& request) {
  if (options_.access == nullptr) return AccessUnavailable();
  if (request.method != "GET") return MethodNotAllowed(request, "GET");
  registry::AuditQuery query;
  auto param = [&](const char* key) {
    auto it = request.query.find(key);
    return it == request.query.end() ? std::string() : it->second;
  };
  query.repository = param("repo");
  query.action = param("action");
  if (std::string since = param("since"); !since.empty()) {
    auto micros = core::ParseRfc3339(since);
    if (!micros.ok()) {
      return ErrorResponse(core::InvalidArgument("'since' must be an RFC 3339 time", "PARAMETER_INVALID"));
    }
    query.since_micros = *micros;
  }
  if (std::string limit = param("limit"); !limit.empty()) {
    size_t n = 0;
    for (char c : limit) {
      if (c < '0' || c > '9' || n > 100000) {
        n = 0;
        break;
      }
      n = n * 10 + static_cast<size_t>(c - '0');
    }
    if (n < 1 || n > 10000) {
      return ErrorResponse(core::InvalidArgument("'limit' must be in [1, 10000]", "PARAMETER_INVALID"));
    }
    query.limit = n;
  }
  auto entries = options_.access->Query(query);
  if (!entries.ok()) return ErrorResponse(entries.status());
  Json list = Json::array();
  for (const auto& e : *entries) list.push_back(registry::AuditEntryToJson(e));
  return JsonResponse(200, Json{{"entries", list}});
}

HttpResponse Service::RepoAccess(const HttpRequest& request, const std::string& repo) {
  auto json_of = [&](const registry::RepoInfo& info) {
    return Json{{"repository", info.name}, {"anonymous_read", info.anonymous_read}};
  };
  if (request.method == "GET") {
    auto info = options_.registry->GetRepo(repo);
    if (!info.ok()) return ErrorResponse(info.status());
    return JsonResponse(200, json_of(*info));
  }
  if (request.method != "PUT") return MethodNotAllowed(request, "GET, PUT");
  auto body = ParseObject(request);
  if (!body.ok()) return ErrorResponse(body.status());
  if (body->size() != 1 || !body->contains("anonymous_read") || !(*body)["anonymous_read"].is_boolean()) {
    return ErrorResponse(core::InvalidArgument("body must be {\"anonymous_read\": true|false}", "JSON_INVALID"));
  }
  core::Status s = options_.registry->SetAnonymousRead(repo, (*body)["anonymous_read"].get<bool>());
  if (!s.ok()) return ErrorResponse(s);
  auto info = options_.registry->GetRepo(repo);
  if (!info.ok()) return ErrorResponse(info.status());
  return JsonResponse(200, json_of(*info));
}

}  // namespace sigil::api
