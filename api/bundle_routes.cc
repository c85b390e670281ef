// The routes of docs/api.md section "Bundles (air gap)": export plans and
// bundle imports (registry/bundles.h).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/service.h"
#include "core/digest.h"
#include "core/json.h"

namespace sigil::api {
namespace {

using core::Json;

core::Status BadBody(const std::string& message) { return core::InvalidArgument(message, "JSON_INVALID"); }

// {"refs": ["repo:ref", ...], "to": "<region>", "since": ["sha256:..."]}
core::Result<registry::ExportRequest> ParseExportRequest(std::string_view body) {
  core::JsonLimits limits;
  limits.max_bytes = registry::kMaxBundlePlanBytes;
  limits.max_depth = 8;
  auto j = core::ParseJson(body, limits);
  if (!j.ok() || !j->is_object()) return BadBody("the body must be a JSON object");
  registry::ExportRequest r;
  for (auto it = j->begin(); it != j->end(); ++it) {
    if (it.key() != "refs" && it.key() != "to" && it.key() != "since") {
      return BadBody("unknown field \"" + it.key().substr(0, 100) + "\"");
    }
  }
  auto refs = j->find("refs");
  if (refs == j->end() || !refs->is_array() || refs->empty()) return BadBody("\"refs\" must be a non-empty array");
  if (refs->size() > 1000) return BadBody("at most 1000 refs");
  for (const Json& ref : *refs) {
    if (!ref.is_string()) return BadBody("\"refs\" must hold strings");
    r.refs.push_back(ref.get<std::string>());
  }
  auto to = j->find("to");
  if (to == j->end() || !to->is_string() || to->get<std::string>().empty()) {
    return BadBody("\"to\" must name the destination region");
  }
  r.to_region = to->get<std::string>();
  auto since = j->find("since");
  if (since != j->end()) {
    if (!since->is_array()) return BadBody("\"since\" must be an array of digests");
    for (const Json& d : *since) {
      if (!d.is_string()) return BadBody("\"since\" must hold digests");
      auto digest = core::Digest::Parse(d.get<std::string>());
      if (!digest.ok()) return BadBody("\"since\" holds a malformed digest");
      r.since.push_back(*digest);
    }
  }
  return r;
}

}  // namespace

HttpResponse Service::Exports(const HttpRequest& request) {
  if (request.method != "POST") return MethodNotAllowed(request, "POST");
  if (options_.bundles == nullptr) {
    return ErrorResponse(core::Unavailable("bundles are not configured", "BUNDLES_UNAVAILABLE"));
  }
  auto parsed = ParseExportRequest(request.body);
  if (!parsed.ok()) return ErrorResponse(parsed.status());
  // The route is on no repository: Bundles::Export checks pull access on
  // each ref's repository for the calling principal.
  auto plan = options_.bundles->Export(*parsed);
  if (!plan.ok()) return ErrorResponse(plan.status());
  return JsonResponse(200, *plan);
}

HttpResponse Service::BundleImport(const HttpRequest& request) {
  if (request.method != "POST") return MethodNotAllowed(request, "POST");
  if (options_.bundles == nullptr) {
    return ErrorResponse(core::Unavailable("bundles are not configured", "BUNDLES_UNAVAILABLE"));
  }
  auto summary = options_.bundles->Import(request.body);
  if (!summary.ok()) return ErrorResponse(summary.status());
  // Imported versions are scanned here as pushed ones are.
  if (options_.scanning != nullptr) {
    for (const registry::VersionInfo& v : summary->added) {
      if (v.state != registry::VersionState::kPending) continue;
      auto queued = options_.scanning->Enqueue(v.repo, v.version);
      if (!queued.ok()) return ErrorResponse(queued.status());
    }
  }
  return JsonResponse(200, Json{{"versions_added", summary->versions_added},
                                {"attestations_added", summary->attestations_added},
                                {"aliases_moved", summary->aliases_moved},
                                {"changed", summary->changed}});
}

}  // namespace sigil::api
