// The routes of docs/api.md section "Evaluations and jobs": evaluation and
// weight-statistics jobs of a version, its evaluation reports, and the jobs
// themselves (state, progress, result, cancel).
#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "api/service.h"
#include "core/clock.h"
#include "core/json.h"
#include "registry/evaluations.h"

namespace sigil::api {
namespace {

using core::Json;

constexpr size_t kMaxJobList = 1000;

HttpResponse NotConfigured() {
  return ErrorResponse(core::Unavailable("evaluations are not configured", "EVALUATIONS_UNAVAILABLE"));
}

HttpResponse Accepted(const registry::JobInfo& job) {
  HttpResponse r = JsonResponse(202, Json{{"job", registry::JobToJson(job)}});
  r.AddHeader("Location", "/api/v1/jobs/" + job.id);
  return r;
}

}  // namespace

HttpResponse Service::VersionEvaluations(const HttpRequest& request, const std::string& repo,
                                         const std::string& ref) {
  if (options_.evaluations == nullptr) return NotConfigured();
  if (request.method == "GET") {
    auto reports = options_.evaluations->Reports(repo, ref);
    if (!reports.ok()) return ErrorResponse(reports.status());
    Json list = Json::array();
    for (const auto& r : *reports) {
      Json item = {{"version", r.version},
                   {"digest", r.version_digest.ToString()},
                   {"artifactType", std::string(registry::kEvaluationReportArtifactType)},
                   {"report_digest", r.report_digest.ToString()},
                   {"passed", r.passed},
                   {"created", core::FormatRfc3339(r.created_micros)},
                   {"job", r.job_id},
                   {"spec_digest", r.spec_digest.ToString()}};
      if (r.attestation_digest) {
        item["attestation"] = {{"digest", r.attestation_digest->ToString()}, {"log_index", r.log_index}};
      }
      list.push_back(std::move(item));
    }
    return JsonResponse(200, Json{{"evaluations", list}});
  }
  if (request.method != "POST") return MethodNotAllowed(request, "GET, POST");
  // The body is the spec itself (stored as it was sent), or
  // {"spec_digest": "sha256:..."} naming one stored before.
  auto body = core::ParseJson(request.body);
  if (!body.ok()) return ErrorResponse(core::InvalidArgument(body.status().message(), "BAD_EVAL_SPEC"));
  core::Result<registry::JobInfo> job = core::Internal("unset");
  if (body->is_object() && body->size() == 1 && body->contains("spec_digest")) {
    const Json& d = (*body)["spec_digest"];
    auto digest = d.is_string() ? core::Digest::Parse(d.get<std::string>())
                                : core::Result<core::Digest>(core::InvalidArgument("spec_digest must be a string"));
    if (!digest.ok()) return ErrorResponse(core::InvalidArgument(digest.status().message(), "BAD_EVAL_SPEC"));
    job = options_.evaluations->SubmitEvaluationByDigest(repo, ref, *digest);
  } else {
    job = options_.evaluations->SubmitEvaluation(repo, ref, request.body);
  }
  if (!job.ok()) return ErrorResponse(job.status());
  return Accepted(*job);
}

HttpResponse Service::VersionStats(const HttpRequest& request, const std::string& repo, const std::string& ref) {
  if (options_.evaluations == nullptr) return NotConfigured();
  if (request.method != "POST") return MethodNotAllowed(request, "POST");
  std::string parent;
  if (!request.body.empty()) {
    auto body = core::ParseJson(request.body);
    if (!body.ok() || !body->is_object()) {
      return ErrorResponse(core::InvalidArgument("the body must be a JSON object", "PARAMETER_INVALID"));
    }
    for (const auto& [key, value] : body->items()) {
      if (key != "parent" || !value.is_string()) {
        return ErrorResponse(core::InvalidArgument("the body takes only \"parent\": a version reference",
                                                   "PARAMETER_INVALID"));
      }
      parent = value.get<std::string>();
    }
  }
  auto job = options_.evaluations->SubmitStats(repo, ref, parent);
  if (!job.ok()) return ErrorResponse(job.status());
  return Accepted(*job);
}

HttpResponse Service::Jobs(const HttpRequest& request, const std::vector<std::string>& parts,
                           std::string* route) {
  // Evaluation and statistics jobs, and promotion jobs (promotion_routes.cc).
  if (options_.evaluations == nullptr && options_.promotions == nullptr) return NotConfigured();
  if (parts.size() == 1) {
    *route = "/api/v1/jobs";
    if (request.method != "GET") return MethodNotAllowed(request, "GET");
    std::vector<registry::JobInfo> all;
    if (options_.evaluations != nullptr) {
      auto list = options_.evaluations->List(kMaxJobList);
      if (!list.ok()) return ErrorResponse(list.status());
      all = std::move(list).value();
    }
    if (options_.promotions != nullptr) {
      auto list = options_.promotions->List(kMaxJobList);
      if (!list.ok()) return ErrorResponse(list.status());
      for (auto& job : *list) all.push_back(std::move(job));
    }
    std::stable_sort(all.begin(), all.end(), [](const registry::JobInfo& a, const registry::JobInfo& b) {
      return a.created_micros > b.created_micros;
    });
    if (all.size() > kMaxJobList) all.resize(kMaxJobList);
    const std::vector<registry::JobInfo>* jobs = &all;
    Json list = Json::array();
    // Only the jobs of repositories the caller may pull.
    const registry::Principal* principal = registry::PrincipalScope::Current();
    for (const auto& job : *jobs) {
      if (principal != nullptr && !registry::Authorize(*principal, registry::Action::kPull, job.repo).ok()) {
        continue;
      }
      Json j = registry::JobToJson(job);
      j.erase("result");  // GET /api/v1/jobs/{id} has it
      list.push_back(std::move(j));
    }
    return JsonResponse(200, Json{{"jobs", list}});
  }
  // A job by id: found among the evaluations' or the promotions' jobs, and
  // shown or cancelled only to callers with access to its repository (the
  // route itself is on no repository).
  auto find = [&](const std::string& id) -> core::Result<registry::JobInfo> {
    core::Result<registry::JobInfo> job = core::NotFound("no job " + id.substr(0, 100), "JOB_UNKNOWN");
    if (options_.evaluations != nullptr) job = options_.evaluations->Get(id);
    if (!job.ok() && job.status().reason() == "JOB_UNKNOWN" && options_.promotions != nullptr) {
      job = options_.promotions->Get(id);
    }
    return job;
  };
  auto authorize = [&](const registry::JobInfo& job, registry::Action action) -> core::Status {
    const registry::Principal* principal = registry::PrincipalScope::Current();
    if (principal == nullptr) return core::OkStatus();
    if (!registry::Authorize(*principal, registry::Action::kPull, job.repo).ok()) {
      return core::NotFound("no job " + job.id, "JOB_UNKNOWN");  // not even its existence
    }
    return registry::Authorize(*principal, action, job.repo);
  };
  if (parts.size() == 2) {
    *route = "/api/v1/jobs/{id}";
    if (request.method != "GET") return MethodNotAllowed(request, "GET");
    auto job = find(parts[1]);
    if (!job.ok()) return ErrorResponse(job.status());
    if (core::Status s = authorize(*job, registry::Action::kPull); !s.ok()) return ErrorResponse(s);
    return JsonResponse(200, Json{{"job", registry::JobToJson(*job)}});
  }
  if (parts.size() == 3 && parts[2] == "cancel") {
    *route = "/api/v1/jobs/{id}/cancel";
    if (request.method != "POST") return MethodNotAllowed(request, "POST");
    auto found = find(parts[1]);
    if (!found.ok()) return ErrorResponse(found.status());
    const bool promotion = found->kind == "promotion";
    if (core::Status s = authorize(*found, promotion ? registry::Action::kPromote : registry::Action::kPush);
        !s.ok()) {
      return ErrorResponse(s);
    }
    auto job = promotion ? options_.promotions->Cancel(found->id) : options_.evaluations->Cancel(found->id);
    if (!job.ok()) return ErrorResponse(job.status());
    return JsonResponse(202, Json{{"job", registry::JobToJson(*job)}});
  }
  *route = "unknown";
  return ErrorResponse(core::NotFound("no route for " + request.path.substr(0, 200), "ROUTE_UNKNOWN"));
}

}  // namespace sigil::api
