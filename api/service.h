// Service: every route of docs/api.md, from HttpRequest to HttpResponse.
// Knows HTTP status codes and JSON bodies; the domain work is the registry's
// and the upload manager's. Sockets never appear here (see server.h).
//
// Thread-safety: Handle may be called from many threads at once.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "api/http.h"
#include "api/metrics.h"
#include "api/rate_limit.h"
#include "attest/transparency_log.h"
#include "core/json.h"
#include "core/status.h"
#include "registry/attestations.h"
#include "registry/access.h"
#include "registry/bundles.h"
#include "registry/policy_store.h"
#include "registry/promotions.h"
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
  // Tokens, roles and the audit log (docs/api.md "Access control and
  // audit"). nullptr: no authentication at all (every request is served as
  // the server's own, and the token and audit routes answer 503
  // ACCESS_CONTROL_UNAVAILABLE).
  registry::AccessControl* access = nullptr;
  // Optional, with access: called for every authenticated or anonymous
  // request (not the exempt routes) before authorization; a non-OK Status
  // (say kResourceExhausted RATE_LIMITED from a rate limiter) is answered
  // instead of the route, and audited as refused.
  std::function<core::Status(const registry::Principal& principal, const HttpRequest& request)> admit =
      nullptr;
  // Stored policies (policy routes, residency checks). Without it the
  // policy routes answer 503 POLICIES_UNAVAILABLE and nothing is refused for
  // residency.
  registry::PolicyStore* policies = nullptr;
  // Promotion jobs and alias history; without it promotions answer 503
  // PROMOTIONS_UNAVAILABLE.
  registry::Promotions* promotions = nullptr;
  // Export plans and bundle imports; without it 503 BUNDLES_UNAVAILABLE.
  registry::Bundles* bundles = nullptr;
  // This server's site and region (Config::site/region), for residency.
  std::string site = {};
  std::string region = {};
  // Optional: counts open upload sessions per caller (LimitKey); creating
  // one more than its limit answers 429 TOO_MANY_UPLOADS.
  RateLimiter* limiter = nullptr;
};

// What a request needs from access control: decided from the method and the
// path alone, before the route runs.
struct RouteAccess {
  std::string route = "unknown";  // the route's template, as for metrics
  bool exempt = false;            // served without authentication
  registry::Action action = registry::Action::kPull;
  // The repository the action is on; empty for routes on no repository
  // (blobs, uploads, tokens, trust, GC): the role alone decides.
  std::string repository;
  std::string audit_action;  // "push", "token.create", ...
  std::string target;        // "repo:ref", "repo", "token:name", or the path
};

class Service {
 public:
  explicit Service(ServiceOptions options) : options_(options) {}

  // Routes one request. *route receives the route's template for metrics
  // ("/api/v1/blobs/{digest}"), or "unknown". With access control, the
  // request is authenticated and authorized here, for every route, before
  // it runs (inside a registry::PrincipalScope), and audited after.
  HttpResponse Handle(const HttpRequest& request, std::string* route);

  // The access every route of docs/api.md needs (one table, access_routes.cc).
  RouteAccess Classify(const HttpRequest& request) const;

 private:
  // Routes one request without access control.
  HttpResponse Dispatch(const HttpRequest& request, std::string* route);
  // access_routes.cc
  HttpResponse Tokens(const HttpRequest& request, const std::vector<std::string>& parts,
                      std::string* route);
  HttpResponse Audit(const HttpRequest& request);
  HttpResponse RepoAccess(const HttpRequest& request, const std::string& repo);
  // Appends the audit entry of a finished request; a failure is logged.
  void RecordAudit(const HttpRequest& request, const RouteAccess& access,
                   const registry::Principal& principal, const HttpResponse& response,
                   const std::string& refusal_reason, const std::string& principal_name);

  HttpResponse Health(const HttpRequest& request, const std::string& which);
  HttpResponse Blob(const HttpRequest& request, const std::string& digest);
  HttpResponse PutBlobStreamed(const HttpRequest& request, const core::Digest& digest);
  HttpResponse BodyOverSessionMax(const HttpRequest& request);
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
  // policy_routes.cc
  HttpResponse Policies(const HttpRequest& request, const std::vector<std::string>& parts,
                        std::string* route);
  // The caller's place for a residency check: for kPull the request's
  // token's site and region (none for a token without them or anonymous);
  // the server's own (options_.site/region) for kStore, kExport, and for
  // pulls without access control or on server threads.
  policies::Context ResidencyContext(policies::Action action) const;
  // OK without options_.policies; else PolicyStore::CheckResidency (403
  // RESIDENCY_DENIED naming the policy and rule).
  core::Status CheckResidency(const std::string& repo, policies::Action action);
  // A blob read by digest: refused when a repository holding the blob (its
  // manifest, config or a layer) refuses the caller's pull. Costs nothing
  // unless some policy in force restricts pulls.
  core::Status CheckBlobResidency(const core::Digest& digest);
  // bundle_routes.cc
  HttpResponse Exports(const HttpRequest& request);
  HttpResponse BundleImport(const HttpRequest& request);
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

  // promotion_routes.cc
  HttpResponse VersionPromotions(const HttpRequest& request, const std::string& repo, const std::string& ref);
  HttpResponse VersionPolicyTest(const HttpRequest& request, const std::string& repo, const std::string& ref);
  HttpResponse AliasHistory(const HttpRequest& request, const std::string& repo, const std::string& alias);

  // A blob's bytes with Range support (GET) or its headers (HEAD).
  HttpResponse SendBlob(const HttpRequest& request, const core::Digest& digest);

  // Whether a repository open to anonymous pulls holds the blob (its
  // manifest, config or a layer): anonymous blob reads are allowed for those.
  bool HeldByAnonymousRepository(const std::string& digest_text);

  ServiceOptions options_;
};

// A /api/v1/models/... path split (after "/api/v1/models/"): the decoded
// repository (every component before the first route word) and the decoded
// components after it. "access" is a route word only as the last component.
struct ModelPath {
  std::string repo;
  std::vector<std::string> rest;
};
// Errors: kInvalidArgument PATH_INVALID (bad escape), NAME_INVALID (no
// repository).
core::Result<ModelPath> ParseModelPath(std::string_view components);

// The HTTP status for a Status (only api/ maps codes to HTTP).
int HttpStatusFor(const core::Status& status);
// A JSON error response for a non-OK Status.
HttpResponse ErrorResponse(const core::Status& status);
// A JSON body with a status.
HttpResponse JsonResponse(int status, const core::Json& body);
// 405 with an Allow header.
HttpResponse MethodNotAllowed(const HttpRequest& request, const std::string& allowed);

}  // namespace sigil::api
