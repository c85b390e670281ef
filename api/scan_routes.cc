// The routes of docs/api.md section "Scanning": a version's latest scan
// report and re-scans, and the pull refusals for versions that are not
// available (quarantined or still being scanned).
#include <nlohmann/json.hpp>
#include <string>

#include "api/service.h"
#include "core/clock.h"
#include "core/json.h"
#include "registry/scanning.h"

namespace sigil::api {
namespace {

using core::Json;

HttpResponse ScanReply(int status, const registry::ScanStatus& s) {
  Json body = {{"repository", s.version.repo},
               {"version", s.version.version},
               {"digest", s.version.digest.ToString()},
               {"state", std::string(registry::VersionStateName(s.version.state))},
               {"queued", s.queued}};
  if (s.latest) {
    const registry::ScanRecord& r = *s.latest;
    body["artifactType"] = std::string(registry::kScanReportArtifactType);
    body["verdict"] = r.verdict;
    body["created"] = core::FormatRfc3339(r.created_micros);
    body["report_digest"] = r.report_digest.ToString();
    body["scanned_version"] = r.version;
    auto summary = core::ParseJson(r.summary_json);
    body["summary"] = summary.ok() ? *summary : Json::object();
    if (!r.report_json.empty()) {
      auto report = core::ParseJson(r.report_json);
      body["report"] = report.ok() ? *report : Json();
    }
    if (r.attestation_digest) {
      body["attestation"] = {{"digest", r.attestation_digest->ToString()}, {"log_index", r.log_index}};
    } else {
      body["attestation"] = nullptr;
    }
  }
  HttpResponse out;
  out.status = status;
  out.body = core::DumpJson(body);
  return out;
}

}  // namespace

HttpResponse Service::VersionScan(const HttpRequest& request, const std::string& repo,
                                  const std::string& ref) {
  if (options_.scanning == nullptr) {
    return ErrorResponse(core::Unavailable("scanning is not configured", "SCANNING_UNAVAILABLE"));
  }
  if (request.method == "GET") {
    auto status = options_.scanning->Status(repo, ref);
    if (!status.ok()) return ErrorResponse(status.status());
    if (!status->latest) {
      return ErrorResponse(core::Status(
          core::Code::kNotFound, "no scan report for " + repo + ":" + ref + " yet", "SCAN_UNKNOWN",
          core::DumpJson(Json{{"state", std::string(registry::VersionStateName(status->version.state))},
                              {"queued", status->queued}})));
    }
    return ScanReply(200, *status);
  }
  if (request.method == "POST") {
    auto status = options_.scanning->Enqueue(repo, ref);
    if (!status.ok()) return ErrorResponse(status.status());
    HttpResponse r = ScanReply(202, *status);
    r.AddHeader("Location", "/api/v1/models/" + repo + "/versions/" + ref + "/scan");
    return r;
  }
  HttpResponse r = ErrorResponse(core::Status(core::Code::kInvalidArgument,
                                              request.method + " is not allowed here (allowed: GET, POST)",
                                              "METHOD_NOT_ALLOWED"));
  r.status = 405;
  r.AddHeader("Allow", "GET, POST");
  return r;
}

core::Status Service::CheckVersionPullable(const registry::VersionInfo& version) {
  if (options_.scanning == nullptr) return core::OkStatus();
  return options_.scanning->CheckPullable(version);
}

core::Status Service::CheckBlobPullable(const core::Digest& digest) {
  if (options_.scanning == nullptr) return core::OkStatus();
  return options_.scanning->CheckBlobPullable(digest);
}

}  // namespace sigil::api
