// Service: every route of docs/api.md, from HttpRequest to HttpResponse.
// Knows HTTP status codes and JSON bodies; the domain work is the registry's
// and the upload manager's. Pistache never appears here (see server.h).
//
// Thread-safety: Handle may be called from many threads at once.
#pragma once

#include <string>
#include <vector>

#include "api/http.h"
#include "api/metrics.h"
#include "attest/transparency_log.h"
#include "core/json.h"
#include "core/status.h"
#include "registry/attestations.h"
#include "registry/evaluations.h"
#include "registry/registry.h"
#include "registry/scanning.h"
#include "storage/blob_store.h"
#include "storage/meta_store.h"
#include "storage/uploads.h"

namespace sigil::api {

struct ServiceOptions {
  registry::Registry* registry = nullptr;
  storage::UploadManager* uploads = nullptr;
  storage::BlobStore* blobs = nullptr;
  storage::MetaStore* meta = nullptr;
  Metrics* metrics = nullptr;
  // Attestations, trust store and log routes; without them those routes
  // answer 503 ATTESTATIONS_UNAVAILABLE.
  registry::Attestations* attestations = nullptr;
  attest::TransparencyLog* log = nullptr;
  // Scans new versions and refuses pulls of versions that are not
  // available; without it versions are never scanned and the scan routes
  // answer 503 SCANNING_UNAVAILABLE.
  registry::Scanning* scanning = nullptr;
  // Evaluation and statistics jobs; without it those routes answer 503
  // EVALUATIONS_UNAVAILABLE.
  registry::Evaluations* evaluations = nullptr;
};

class Service {
 public:
  explicit Service(ServiceOptions options) : options_(options) {}

  // Routes one request. *route receives the route's template for metrics
  // ("/api/v1/blobs/{digest}"), or "unknown".
  HttpResponse Handle(const HttpRequest& request, std::string* route);

 private:
  HttpResponse Health(const HttpRequest& request, const std::string& which);
  HttpResponse Blob(const HttpRequest& request, const std::string& digest);
  HttpResponse Uploads(const HttpRequest& request);
  HttpResponse Upload(const HttpRequest& request, const std::string& id);
  HttpResponse Models(const HttpRequest& request, std::string* route);
  HttpResponse ListRepos(const HttpRequest& request);
  HttpResponse Repo(const HttpRequest& request, const std::string& repo);
  HttpResponse RepoLabels(const HttpRequest& request, const std::string& repo);
  HttpResponse Versions(const HttpRequest& request, const std::string& repo);
  HttpResponse Version(const HttpRequest& request, const std::string& repo, const std::string& ref);
  HttpResponse VersionManifest(const HttpRequest& request, const std::string& repo,
                               const std::string& ref);
  HttpResponse VersionLabels(const HttpRequest& request, const std::string& repo,
                             const std::string& ref);
  HttpResponse File(const HttpRequest& request, const std::string& repo, const std::string& ref,
                    const std::string& path);
  HttpResponse Aliases(const HttpRequest& request, const std::string& repo);
  HttpResponse Alias(const HttpRequest& request, const std::string& repo, const std::string& alias);
  HttpResponse Gc(const HttpRequest& request);
  // attestation_routes.cc
  HttpResponse ServerKeysRoute(const HttpRequest& request);
  HttpResponse Trust(const HttpRequest& request, const std::vector<std::string>& parts,
                     std::string* route);
  HttpResponse Log(const HttpRequest& request, const std::vector<std::string>& parts,
                   std::string* route);
  // word: "attestations", "sign" or "evidence".
  HttpResponse VersionAttestationRoute(const HttpRequest& request, const std::string& repo,
                                       const std::string& ref, const std::string& word,
                                       std::string* route);

  // scan_routes.cc
  HttpResponse VersionScan(const HttpRequest& request, const std::string& repo, const std::string& ref);
  core::Status CheckVersionPullable(const registry::VersionInfo& version);
  core::Status CheckBlobPullable(const core::Digest& digest);

  // eval_routes.cc
  HttpResponse VersionEvaluations(const HttpRequest& request, const std::string& repo, const std::string& ref);
  HttpResponse VersionStats(const HttpRequest& request, const std::string& repo, const std::string& ref);
  HttpResponse Jobs(const HttpRequest& request, const std::vector<std::string>& parts, std::string* route);

  // A blob's bytes with Range support (GET) or its headers (HEAD).
  HttpResponse SendBlob(const HttpRequest& request, const core::Digest& digest);

  ServiceOptions options_;
};

// The HTTP status for a Status (only api/ maps codes to HTTP).
int HttpStatusFor(const core::Status& status);
// A JSON error response for a non-OK Status.
HttpResponse ErrorResponse(const core::Status& status);
// A JSON body with a status.
HttpResponse JsonResponse(int status, const core::Json& body);
// 405 with an Allow header.
HttpResponse MethodNotAllowed(const HttpRequest& request, const std::string& allowed);

}  // namespace sigil::api
