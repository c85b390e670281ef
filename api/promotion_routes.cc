// The routes of docs/api.md section "Promotions and alias history":
// promotion jobs of a version, the policy dry run, and an alias's history.
// Promotion jobs are read through /api/v1/jobs (eval_routes.cc).
#include <nlohmann/json.hpp>
#include <string>

#include "api/service.h"
#include "core/clock.h"
#include "core/json.h"
#include "registry/evaluations.h"
#include "registry/promotions.h"

namespace sigil::api {
namespace {

using core::Json;

constexpr size_t kMaxPolicyTestBody = 256 << 10;

HttpResponse NotConfigured() {
  return ErrorResponse(core::Unavailable("promotions are not configured", "PROMOTIONS_UNAVAILABLE"));
}

// A JSON object body with only string fields among `allowed`.
core::Result<std::map<std::string, std::string>> StringFields(const HttpRequest& request,
                                                              const std::vector<std::string>& allowed,
                                                              size_t max_bytes) {
  if (request.body.size() > max_bytes) {
    return core::InvalidArgument("the body is over " + std::to_string(max_bytes) + " bytes", "PARAMETER_INVALID");
  }
  auto body = core::ParseJson(request.body, {max_bytes, 16});
  if (!body.ok() || !body->is_object()) {
    return core::InvalidArgument("the body must be a JSON object", "PARAMETER_INVALID");
  }
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : body->items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end() || !value.is_string()) {
      std::string names;
      for (const auto& a : allowed) names += (names.empty() ? "\"" : ", \"") + a + "\"";
      return core::InvalidArgument("the body takes only " + names + ", as strings", "PARAMETER_INVALID");
    }
    out[key] = value.get<std::string>();
  }
  return out;
}

Json EventJson(const registry::AliasEvent& e) {
  Json j = {{"alias", e.alias},
            {"version", e.version},
            {"previous_version", e.previous_version},
            {"time", core::FormatRfc3339(e.micros)},
            {"micros", e.micros},
            {"by", e.by},
            {"via", e.via}};
  if (!e.version.empty()) j["digest"] = e.digest.ToString();
  if (e.previous_digest) j["previous_digest"] = e.previous_digest->ToString();
  if (!e.job_id.empty()) j["job_id"] = e.job_id;
  if (e.vsa) j["vsa"] = e.vsa->ToString();
  return j;
}

}  // namespace

HttpResponse Service::VersionPromotions(const HttpRequest& request, const std::string& repo,
                                        const std::string& ref) {
  if (options_.promotions == nullptr) return NotConfigured();
  if (request.method != "POST") return MethodNotAllowed(request, "POST");
  auto fields = StringFields(request, {"to"}, 4096);
  if (!fields.ok()) return ErrorResponse(fields.status());
  auto to = fields->find("to");
  if (to == fields->end()) {
    return ErrorResponse(core::InvalidArgument("the body needs \"to\": the stage (an alias)", "PARAMETER_INVALID"));
  }
  auto job = options_.promotions->Submit(repo, ref, to->second);
  if (!job.ok()) return ErrorResponse(job.status());
  HttpResponse r = JsonResponse(202, Json{{"job", registry::JobToJson(*job)}});
  r.AddHeader("Location", "/api/v1/jobs/" + job->id);
  return r;
}

HttpResponse Service::VersionPolicyTest(const HttpRequest& request, const std::string& repo,
                                        const std::string& ref) {
  if (options_.promotions == nullptr) return NotConfigured();
  if (request.method != "POST") return MethodNotAllowed(request, "POST");
  auto fields = StringFields(request, {"document", "stage"}, kMaxPolicyTestBody);
  if (!fields.ok()) return ErrorResponse(fields.status());
  if (!fields->count("document") || !fields->count("stage")) {
    return ErrorResponse(core::InvalidArgument(
        "the body needs \"document\" (the policy's text) and \"stage\" (an alias)", "PARAMETER_INVALID"));
  }
  auto decision = options_.promotions->Test((*fields)["document"], repo, ref, (*fields)["stage"]);
  if (!decision.ok()) return ErrorResponse(decision.status());
  return JsonResponse(200, *decision);
}

HttpResponse Service::AliasHistory(const HttpRequest& request, const std::string& repo,
                                   const std::string& alias) {
  if (request.method != "GET") return MethodNotAllowed(request, "GET");
  size_t limit = 100;
  auto it = request.query.find("limit");
  if (it != request.query.end() && !it->second.empty()) {
    limit = 0;
    for (char c : it->second) {
      if (c < '0' || c > '9' || limit > 100000) {
        return ErrorResponse(core::InvalidArgument("limit must be an integer in [1, 1000]", "LIMIT_INVALID"));
      }
      limit = limit * 10 + static_cast<size_t>(c - '0');
    }
  }
  auto events = options_.registry->AliasHistory(repo, alias, limit);
  if (!events.ok()) return ErrorResponse(events.status());
  Json list = Json::array();
  for (const auto& e : *events) list.push_back(EventJson(e));
  return JsonResponse(200, Json{{"alias", alias}, {"events", list}});
}

}  // namespace sigil::api
