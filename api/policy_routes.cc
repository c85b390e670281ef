// The routes of docs/api.md sections "Policies" and "Residency": the stored
// policy documents, and the residency checks the content routes make before
// they store or send a repository's bytes.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "api/service.h"
#include "core/clock.h"
#include "core/json.h"

namespace sigil::api {
namespace {

using core::Json;

HttpResponse NotConfigured() {
  return ErrorResponse(core::Unavailable("policies are not configured", "POLICIES_UNAVAILABLE"));
}

Json RecordJson(const registry::PolicyRecord& r, bool with_document) {
  Json j = {{"name", r.name},
            {"version", r.version},
            {"digest", r.digest.ToString()},
            {"created", core::FormatRfc3339(r.created_micros)},
            {"created_by", r.created_by},
            {"deleted", r.deleted}};
  if (with_document) j["document"] = r.document;
  return j;
}

// "1", "2", ...: no sign, no leading zero, at most 18 digits.
core::Result<uint64_t> ParseVersion(const std::string& text) {
  bool ok = !text.empty() && text.size() <= 18 && text[0] != '0';
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') ok = false;
    if (ok) v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (!ok) {
    return core::InvalidArgument("a policy version is a number from 1 ('" + text.substr(0, 40) + "' is not)",
                                 "POLICY_VERSION_INVALID");
  }
  return v;
}

// Whether the repository holds the blob: a version's manifest, config or
// layer. Walks the repository's versions (called only for repositories whose
// residency refuses the caller).
core::Result<bool> RepositoryHolds(registry::Registry& registry, const std::string& repo,
                                   const core::Digest& digest) {
  constexpr size_t kPage = 1000;
  std::string page;
  do {
    ASSIGN_OR_RETURN(auto versions, registry.ListVersions(repo, page, kPage));
    for (const registry::VersionInfo& v : versions.items) {
      if (v.digest == digest) return true;
      auto resolved = registry.Resolve(repo, v.digest.ToString());
      if (!resolved.ok()) continue;  // deleted meanwhile
      if (resolved->manifest.config.digest == digest) return true;
      for (const auto& layer : resolved->manifest.layers) {
        if (layer.digest == digest) return true;
      }
    }
    page = versions.next;
  } while (!page.empty());
  return false;
}

}  // namespace

HttpResponse Service::Policies(const HttpRequest& request, const std::vector<std::string>& parts,
                               std::string* route) {
  const size_t n = parts.size();
  if (n == 1) {
    *route = "/api/v1/policies";
  } else if (n == 2) {
    *route = "/api/v1/policies/{name}";
  } else if (n == 4 && parts[2] == "versions") {
    *route = "/api/v1/policies/{name}/versions/{n}";
  } else {
    return ErrorResponse(core::NotFound("no route for " + request.path.substr(0, 200), "ROUTE_UNKNOWN"));
  }
  if (options_.policies == nullptr) return NotConfigured();
  registry::PolicyStore* store = options_.policies;
  if (n == 1) {
    if (request.method == "GET") {
      auto list = store->List();
      if (!list.ok()) return ErrorResponse(list.status());
      Json out = Json::array();
      for (const auto& r : *list) out.push_back(RecordJson(r, false));
      return JsonResponse(200, Json{{"policies", out}});
    }
    if (request.method != "POST") return MethodNotAllowed(request, "GET, POST");
    auto put = store->Put(request.body);
    if (!put.ok()) return ErrorResponse(put.status());
    HttpResponse r = JsonResponse(put->created ? 201 : 200, RecordJson(put->record, true));
    r.AddHeader("Location", "/api/v1/policies/" + put->record.name + "/versions/" +
                                std::to_string(put->record.version));
    return r;
  }
  std::string name;
  if (!PercentDecode(parts[1], &name)) {
    return ErrorResponse(core::InvalidArgument("malformed escape in path", "PATH_INVALID"));
  }
  if (n == 4) {
    if (request.method != "GET") return MethodNotAllowed(request, "GET");
    auto version = ParseVersion(parts[3]);
    if (!version.ok()) return ErrorResponse(version.status());
    auto record = store->Get(name, *version);
    if (!record.ok()) return ErrorResponse(record.status());
    return JsonResponse(200, RecordJson(*record, true));
  }
  if (request.method == "GET") {
    auto record = store->Get(name);
    if (!record.ok()) return ErrorResponse(record.status());
    return JsonResponse(200, RecordJson(*record, true));
  }
  if (request.method == "DELETE") {
    core::Status s = store->Delete(name);
    if (!s.ok()) return ErrorResponse(s);
    HttpResponse r;
    r.status = 204;
    r.content_type.clear();
    return r;
  }
  return MethodNotAllowed(request, "GET, DELETE");
}

policies::Context Service::ResidencyContext(policies::Action action) const {
  policies::Context c;
  c.action = action;
  const registry::Principal* p = registry::PrincipalScope::Current();
  if (action == policies::Action::kPull && options_.access != nullptr && p != nullptr) {
    c.token_name = p->anonymous ? "anonymous" : p->name;
    if (!p->anonymous) c.role = std::string(registry::RoleName(p->role));
    c.site = p->site;
    c.region = p->region;
    return c;
  }
  // Stores happen here; pulls without access control are the server's own.
  c.site = options_.site;
  c.region = options_.region;
  return c;
}

core::Status Service::CheckResidency(const std::string& repo, policies::Action action) {
  if (options_.policies == nullptr) return core::OkStatus();
  return options_.policies->CheckResidency(repo, ResidencyContext(action));
}

core::Status Service::CheckBlobResidency(const core::Digest& digest) {
  if (options_.policies == nullptr) return core::OkStatus();
  // The common case: no policy restricts pulls, and nothing is looked up.
  ASSIGN_OR_RETURN(bool restricted, options_.policies->RestrictsResidency(policies::Action::kPull));
  if (!restricted) return core::OkStatus();
  policies::Context context = ResidencyContext(policies::Action::kPull);
  constexpr size_t kPage = 1000;
  std::string page;
  do {
    ASSIGN_OR_RETURN(auto repos, options_.registry->ListRepos(page, kPage));
    for (const registry::RepoInfo& repo : repos.items) {
      // The residency decision is in memory; only a refusing repository's
      // versions are walked.
      core::Status s = options_.policies->CheckResidency(repo.name, context);
      if (s.ok()) continue;
      if (s.reason() != "RESIDENCY_DENIED") return s;
      ASSIGN_OR_RETURN(bool holds, RepositoryHolds(*options_.registry, repo.name, digest));
      if (holds) {
        return core::Status(s.code(), "blob " + digest.ToString() + " is held by " + repo.name + ": " + s.message(),
                            s.reason(), s.detail());
      }
    }
    page = repos.next;
  } while (!page.empty());
  return core::OkStatus();
}

}  // namespace sigil::api
