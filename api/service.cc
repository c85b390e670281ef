#include "api/service.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <vector>

#include "api/range.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"

namespace sigil::api {

HttpResponse JsonResponse(int status, const core::Json& body) {
  HttpResponse r;
  r.status = status;
  r.body = core::DumpJson(body);
  return r;
}

HttpResponse MethodNotAllowed(const HttpRequest& request, const std::string& allowed) {
  HttpResponse r = ErrorResponse(core::Status(core::Code::kInvalidArgument,
                                              request.method + " is not allowed here (allowed: " +
                                                  allowed + ")",
                                              "METHOD_NOT_ALLOWED"));
  r.status = 405;
  r.AddHeader("Allow", allowed);
  return r;
}

namespace {

using core::Json;

HttpResponse NoContent() {
  HttpResponse r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

Json LabelsJson(const std::map<std::string, std::string>& labels) {
  Json out = Json::object();
  for (const auto& [k, v] : labels) out[k] = v;
  return out;
}

Json RepoJson(const registry::RepoInfo& repo) {
  return Json{{"name", repo.name},
              {"created", core::FormatRfc3339(repo.created_micros)},
              {"labels", LabelsJson(repo.labels)},
              {"residency",
               {{"region", repo.residency.region},
                {"classification", repo.residency.classification}}},
              {"versions", repo.version_count},
              {"anonymous_read", repo.anonymous_read}};
}

Json VersionJson(const registry::VersionInfo& v) {
  return Json{{"repository", v.repo},
              {"version", v.version},
              {"digest", v.digest.ToString()},
              {"size", v.manifest_size},
              {"total_size", v.total_size},
              {"created", core::FormatRfc3339(v.created_micros)},
              {"state", std::string(registry::VersionStateName(v.state))},
              {"labels", LabelsJson(v.labels)},
              {"aliases", v.aliases}};
}

Json AliasJson(const registry::AliasInfo& a) {
  return Json{{"name", a.name},
              {"version", a.version},
              {"digest", a.digest.ToString()},
              {"updated", core::FormatRfc3339(a.updated_micros)}};
}

core::Result<size_t> PageLimit(const HttpRequest& request) {
  auto it = request.query.find("limit");
  if (it == request.query.end() || it->second.empty()) return size_t{100};
  size_t limit = 0;
  for (char c : it->second) {
    if (c < '0' || c > '9' || limit > 100000) {
      return core::InvalidArgument("limit must be an integer in [1, 1000]", "LIMIT_INVALID");
    }
    limit = limit * 10 + static_cast<size_t>(c - '0');
  }
  if (limit < 1 || limit > 1000) {
    return core::InvalidArgument("limit must be an integer in [1, 1000]", "LIMIT_INVALID");
  }
  return limit;
}

std::string QueryValue(const HttpRequest& request, const std::string& key) {
  auto it = request.query.find(key);
  return it == request.query.end() ? std::string() : it->second;
}

// "k1=v1,k2=v2" -> labels.
core::Result<std::map<std::string, std::string>> ParseLabelList(const std::string& text) {
  std::map<std::string, std::string> labels;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = text.find(',', i);
    if (j == std::string::npos) j = text.size();
    std::string item = text.substr(i, j - i);
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return core::InvalidArgument("label '" + item + "' must be key=value", "LABEL_INVALID");
    }
    labels[item.substr(0, eq)] = item.substr(eq + 1);
    i = j + 1;
  }
  return labels;
}

core::Result<std::map<std::string, std::string>> LabelsFromJson(const Json& body) {
  std::map<std::string, std::string> labels;
  if (!body.contains("labels")) return labels;
  const Json& l = body["labels"];
  if (!l.is_object()) return core::InvalidArgument("'labels' must be an object", "LABEL_INVALID");
  for (auto it = l.begin(); it != l.end(); ++it) {
    if (!it.value().is_string()) {
      return core::InvalidArgument("label '" + it.key() + "' must have a string value",
                                   "LABEL_INVALID");
    }
    labels[it.key()] = it.value().get<std::string>();
  }
  return labels;
}

core::Result<Json> ParseBody(const HttpRequest& request) {
  core::JsonLimits limits;
  limits.max_bytes = 1 << 20;
  return core::ParseJson(request.body, limits);
}

}  // namespace

std::string HttpRequest::Header(const std::string& lowercase_name) const {
  auto it = headers.find(lowercase_name);
  return it == headers.end() ? std::string() : it->second;
}

int HttpStatusFor(const core::Status& status) {
  using core::Code;
  switch (status.code()) {
    case Code::kOk: return 200;
    case Code::kInvalidArgument: return 400;
    case Code::kUnauthenticated: return 401;
    case Code::kPermissionDenied: return 403;
    case Code::kNotFound: return 404;
    case Code::kAlreadyExists:
    case Code::kAborted:
    case Code::kFailedPrecondition: return 409;
    case Code::kOutOfRange: return 416;
    case Code::kResourceExhausted: {
      std::string reason = status.reason();
      if (reason == "INSUFFICIENT_STORAGE") return 507;
      if (reason == "CHUNK_TOO_LARGE" || reason == "UPLOAD_TOO_LARGE" ||
          reason == "BODY_TOO_LARGE" || reason == "MANIFEST_TOO_LARGE") {
        return 413;
      }
      return 429;
    }
    case Code::kUnimplemented: return 501;
    case Code::kUnavailable: return 503;
    case Code::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

HttpResponse ErrorResponse(const core::Status& status) {
  HttpResponse r;
  r.status = HttpStatusFor(status);
  r.body = core::ErrorJson(status);
  if (status.reason() == "RATE_LIMITED") {
    r.AddHeader("Retry-After", std::to_string(RateLimiter::RetryAfterSeconds(status)));
  }
  if (r.status >= 500) SIGIL_LOG(kError) << "request failed: " << status.ToString();
  return r;
}

core::Result<ModelPath> ParseModelPath(std::string_view components) {
  std::vector<std::string> decoded;
  for (const std::string& part : SplitPath(components)) {
    std::string d;
    if (!PercentDecode(part, &d)) {
      return core::InvalidArgument("malformed escape in path", "PATH_INVALID");
    }
    decoded.push_back(std::move(d));
  }
  size_t k = 0;
  while (k < decoded.size() && decoded[k] != "versions" && decoded[k] != "aliases" &&
         decoded[k] != "labels" && !(decoded[k] == "access" && k > 0 && k + 1 == decoded.size())) {
    ++k;
  }
  ModelPath out;
  for (size_t i = 0; i < k; ++i) {
    if (i > 0) out.repo += "/";
    out.repo += decoded[i];
  }
  if (out.repo.empty()) return core::InvalidArgument("missing repository name", "NAME_INVALID");
  out.rest.assign(decoded.begin() + static_cast<std::ptrdiff_t>(k), decoded.end());
  return out;
}

HttpResponse Service::Dispatch(const HttpRequest& request, std::string* route) {
  *route = "unknown";
  const std::string& p = request.path;
  if (p == "/healthz" || p == "/readyz" || p == "/metrics") {
    *route = p;
    return Health(request, p);
  }
  constexpr std::string_view kPrefix = "/api/v1/";
  if (p.compare(0, kPrefix.size(), kPrefix) != 0) {
    return ErrorResponse(core::NotFound("no route for " + p.substr(0, 200), "ROUTE_UNKNOWN"));
  }
  std::vector<std::string> parts = SplitPath(std::string_view(p).substr(kPrefix.size()));
  if (parts[0] == "blobs" && parts.size() >= 2) {
    // Everything after blobs/ is the digest, so "sha256:../x" is refused as
    // a malformed digest rather than routed elsewhere.
    *route = "/api/v1/blobs/{digest}";
    std::string digest;
    if (!PercentDecode(std::string_view(p).substr(kPrefix.size() + 6), &digest)) {
      return ErrorResponse(core::InvalidArgument("malformed path", "PATH_INVALID"));
    }
    return Blob(request, digest);
  }
  if (parts[0] == "uploads" && parts.size() == 1) {
    *route = "/api/v1/uploads";
    return Uploads(request);
  }
  if (parts[0] == "uploads" && parts.size() == 2) {
    *route = "/api/v1/uploads/{id}";
    return Upload(request, parts[1]);
  }
  if (parts[0] == "models") {
    return Models(request, route);
  }
  if (parts[0] == "gc" && parts.size() == 1) {
    *route = "/api/v1/gc";
    return Gc(request);
  }
  if (parts[0] == "keys" && parts.size() == 2 && parts[1] == "server") {
    *route = "/api/v1/keys/server";
    return ServerKeysRoute(request);
  }
  if (parts[0] == "exports" && parts.size() == 1) {
    *route = "/api/v1/exports";
    return Exports(request);
  }
  if (parts[0] == "bundles" && parts.size() == 1) {
    *route = "/api/v1/bundles";
    return BundleImport(request);
  }
  if (parts[0] == "policies") return Policies(request, parts, route);
  if (parts[0] == "trust") return Trust(request, parts, route);
  if (parts[0] == "log") return Log(request, parts, route);
  if (parts[0] == "jobs") return Jobs(request, parts, route);
  if (parts[0] == "tokens") return Tokens(request, parts, route);
  if (parts[0] == "audit" && parts.size() == 1) {
    *route = "/api/v1/audit";
    return Audit(request);
  }
  return ErrorResponse(core::NotFound("no route for " + p.substr(0, 200), "ROUTE_UNKNOWN"));
}

HttpResponse Service::Health(const HttpRequest& request, const std::string& which) {
  if (request.method != "GET" && request.method != "HEAD") return MethodNotAllowed(request, "GET");
  if (which == "/healthz") return JsonResponse(200, Json{{"status", "ok"}});
  if (which == "/readyz") {
    core::Status meta = options_.meta->CheckHealth();
    core::Status blobs = options_.blobs->CheckHealth();
    Json body = {{"metadata", meta.ok() ? "ok" : meta.message()},
                 {"blobs", blobs.ok() ? "ok" : blobs.message()}};
    body["status"] = meta.ok() && blobs.ok() ? "ready" : "not ready";
    return JsonResponse(meta.ok() && blobs.ok() ? 200 : 503, body);
  }
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4";
  r.body = options_.metrics->Render(options_.uploads->OpenCount());
  return r;
}

HttpResponse Service::SendBlob(const HttpRequest& request, const core::Digest& digest) {
  auto reader = options_.blobs->Open(digest);
  if (!reader.ok()) return ErrorResponse(reader.status());
  uint64_t size = (*reader)->size();
  HttpResponse r;
  r.content_type = "application/octet-stream";
  r.AddHeader("ETag", "\"" + digest.ToString() + "\"");
  r.AddHeader("Docker-Content-Digest", digest.ToString());
  r.AddHeader("Accept-Ranges", "bytes");
  r.file_offset = 0;
  r.file_length = size;
  std::string range = request.Header("range");
  if (!range.empty()) {
    auto parsed = ParseRange(range, size);
    if (!parsed.ok()) {
      HttpResponse err = ErrorResponse(parsed.status());
      if (err.status == 416) err.AddHeader("Content-Range", "bytes */" + std::to_string(size));
      return err;
    }
    r.status = 206;
    r.file_offset = parsed->offset;
    r.file_length = parsed->length;
    r.AddHeader("Content-Range", "bytes " + std::to_string(parsed->offset) + "-" +
                                     std::to_string(parsed->offset + parsed->length - 1) + "/" +
                                     std::to_string(size));
  }
  r.head_only = request.method == "HEAD";
  r.file = std::move(*reader);
  return r;
}

HttpResponse Service::Blob(const HttpRequest& request, const std::string& digest_text) {
  auto digest = core::Digest::Parse(digest_text);
  if (!digest.ok()) return ErrorResponse(digest.status());
  if (request.method == "GET" || request.method == "HEAD") {
    // HEAD stays open: pushes use it to skip blobs the server has.
    if (request.method == "GET") {
      core::Status pullable = CheckBlobPullable(*digest);
      if (!pullable.ok()) return ErrorResponse(pullable);
      // Residency too: HEAD tells only whether the server has the bytes.
      core::Status resident = CheckBlobResidency(*digest);
      if (!resident.ok()) return ErrorResponse(resident);
    }
    return SendBlob(request, *digest);
  }
  if (request.method == "PUT") {
    if (request.body_stream != nullptr) return PutBlobStreamed(request, *digest);
    if (request.body.size() > options_.uploads->options().chunk_max) {
      return ErrorResponse(core::ResourceExhausted(
          "a single-request upload may carry at most " +
              std::to_string(options_.uploads->options().chunk_max) +
              " bytes; use an upload session",
          "CHUNK_TOO_LARGE"));
    }
    core::Status s = options_.blobs->Put(*digest, request.body);
    if (!s.ok()) return ErrorResponse(s);
    HttpResponse r = JsonResponse(201, Json{{"digest", digest->ToString()},
                                            {"size", request.body.size()}});
    r.AddHeader("Location", "/api/v1/blobs/" + digest->ToString());
    r.AddHeader("Docker-Content-Digest", digest->ToString());
    return r;
  }
  return MethodNotAllowed(request, "GET, HEAD, PUT");
}

// A streamed body announced larger than any blob may be is refused before
// a byte of it is read.
HttpResponse Service::BodyOverSessionMax(const HttpRequest& request) {
  return ErrorResponse(core::ResourceExhausted(
      "a " + std::to_string(request.body_stream_length) + "-byte body is larger than " +
          std::to_string(options_.uploads->options().session_max) +
          " bytes, the largest blob this server accepts (its session_max setting)",
      "UPLOAD_TOO_LARGE"));
}

// A single-request upload of any size: the body goes through an upload
// session of its own, so it is hashed and written as it arrives.
HttpResponse Service::PutBlobStreamed(const HttpRequest& request, const core::Digest& digest) {
  if (request.body_stream_length > options_.uploads->options().session_max) return BodyOverSessionMax(request);
  auto blob = options_.uploads->PutFrom(digest, *request.body_stream);
  if (!blob.ok()) return ErrorResponse(blob.status());
  HttpResponse r = JsonResponse(201, Json{{"digest", digest.ToString()}, {"size", blob->size}});
  r.AddHeader("Location", "/api/v1/blobs/" + digest.ToString());
  r.AddHeader("Docker-Content-Digest", digest.ToString());
  return r;
}

HttpResponse Service::Uploads(const HttpRequest& request) {
  if (request.method != "POST") return MethodNotAllowed(request, "POST");
  auto info = options_.uploads->Create();
  if (!info.ok()) return ErrorResponse(info.status());
  if (options_.limiter != nullptr) {
    const registry::Principal* principal = registry::PrincipalScope::Current();
    core::Status admitted = options_.limiter->OpenUpload(
        LimitKey(principal != nullptr ? principal->token_id : "", request.remote_address), info->id);
    if (!admitted.ok()) {
      options_.uploads->Abort(info->id).IgnoreError();
      return ErrorResponse(admitted);
    }
  }
  HttpResponse r = JsonResponse(201, Json{{"id", info->id},
                                          {"offset", info->offset},
                                          {"chunk_max", options_.uploads->options().chunk_max}});
  r.AddHeader("Location", "/api/v1/uploads/" + info->id);
  return r;
}

HttpResponse Service::Upload(const HttpRequest& request, const std::string& id) {
  auto offset_response = [&](int status, const storage::UploadInfo& info) {
    HttpResponse r = JsonResponse(status, Json{{"id", info.id},
                                               {"offset", info.offset},
                                               {"chunk_max", options_.uploads->options().chunk_max}});
    if (info.offset > 0) r.AddHeader("Range", "0-" + std::to_string(info.offset - 1));
    r.AddHeader("Location", "/api/v1/uploads/" + info.id);
    return r;
  };
  auto mismatch = [&](const core::Status& s) {
    HttpResponse r = ErrorResponse(s);
    if (s.reason() == "UPLOAD_OFFSET_MISMATCH") {
      auto detail = core::ParseJson(s.detail());
      if (detail.ok() && detail->contains("offset") && (*detail)["offset"].is_number_unsigned()) {
        uint64_t offset = (*detail)["offset"].get<uint64_t>();
        if (offset > 0) r.AddHeader("Range", "0-" + std::to_string(offset - 1));
      }
    }
    return r;
  };
  const uint64_t body_size = request.body_stream != nullptr ? request.body_stream_length : request.body.size();
  if (request.body_stream_length > options_.uploads->options().session_max) return BodyOverSessionMax(request);
  auto append = [&](uint64_t start) {
    if (request.body_stream != nullptr) return options_.uploads->AppendFrom(id, start, *request.body_stream);
    return options_.uploads->Append(id, start, request.body);
  };
  // The chunk's position: Content-Range when given, else the committed offset.
  auto chunk_start = [&](uint64_t* start) -> core::Status {
    std::string header = request.Header("content-range");
    if (header.empty()) {
      auto info = options_.uploads->Get(id);
      if (!info.ok()) return info.status();
      *start = info->offset;
      return core::OkStatus();
    }
    auto range = ParseContentRange(header);
    if (!range.ok()) return range.status();
    if (range->end && *range->end - range->start + 1 != body_size) {
      return core::InvalidArgument("Content-Range " + header + " does not match the " +
                                       std::to_string(body_size) + "-byte body",
                                   "RANGE_INVALID");
    }
    *start = range->start;
    return core::OkStatus();
  };

  if (request.method == "GET") {
    auto info = options_.uploads->Get(id);
    if (!info.ok()) return ErrorResponse(info.status());
    return offset_response(200, *info);
  }
  if (request.method == "PATCH") {
    uint64_t start = 0;
    core::Status s = chunk_start(&start);
    if (!s.ok()) return ErrorResponse(s);
    auto info = append(start);
    if (!info.ok()) return mismatch(info.status());
    return offset_response(202, *info);
  }
  if (request.method == "PUT") {
    std::string digest_text = QueryValue(request, "digest");
    if (digest_text.empty()) {
      return ErrorResponse(core::InvalidArgument("commit needs ?digest=sha256:...", "DIGEST_INVALID"));
    }
    auto digest = core::Digest::Parse(digest_text);
    if (!digest.ok()) return ErrorResponse(digest.status());
    if (body_size > 0) {
      uint64_t start = 0;
      core::Status s = chunk_start(&start);
      if (!s.ok()) return ErrorResponse(s);
      auto info = append(start);
      if (!info.ok()) return mismatch(info.status());
    }
    auto blob = options_.uploads->Commit(id, *digest);
    if (!blob.ok()) return mismatch(blob.status());
    if (options_.limiter != nullptr) options_.limiter->CloseUpload(id);
    HttpResponse r = JsonResponse(201, Json{{"digest", blob->digest.ToString()}, {"size", blob->size}});
    r.AddHeader("Location", "/api/v1/blobs/" + blob->digest.ToString());
    r.AddHeader("Docker-Content-Digest", blob->digest.ToString());
    return r;
  }
  if (request.method == "DELETE") {
    core::Status s = options_.uploads->Abort(id);
    if (!s.ok()) return ErrorResponse(s);
    if (options_.limiter != nullptr) options_.limiter->CloseUpload(id);
    return NoContent();
  }
  return MethodNotAllowed(request, "GET, PATCH, PUT, DELETE");
}

HttpResponse Service::Models(const HttpRequest& request, std::string* route) {
  std::string_view tail = std::string_view(request.path).substr(std::string_view("/api/v1/models").size());
  if (tail.empty()) {
    *route = "/api/v1/models";
    return ListRepos(request);
  }
  if (tail[0] != '/') {
    return ErrorResponse(core::NotFound("no route for " + request.path.substr(0, 200), "ROUTE_UNKNOWN"));
  }
  auto parsed = ParseModelPath(tail.substr(1));
  if (!parsed.ok()) return ErrorResponse(parsed.status());
  const std::string& repo = parsed->repo;
  const std::vector<std::string>& decoded = parsed->rest;  // from the first route word
  size_t rest = decoded.size();
  if (rest == 0) {
    *route = "/api/v1/models/{repo}";
    return Repo(request, repo);
  }
  const std::string& word = decoded[0];
  if (word == "access" && rest == 1) {
    *route = "/api/v1/models/{repo}/access";
    return RepoAccess(request, repo);
  }
  if (word == "labels" && rest == 1) {
    *route = "/api/v1/models/{repo}/labels";
    return RepoLabels(request, repo);
  }
  if (word == "versions") {
    if (rest == 1) {
      *route = "/api/v1/models/{repo}/versions";
      return Versions(request, repo);
    }
    const std::string& ref = decoded[1];
    if (rest == 2) {
      *route = "/api/v1/models/{repo}/versions/{ref}";
      return Version(request, repo, ref);
    }
    if (rest == 3 && decoded[2] == "manifest") {
      *route = "/api/v1/models/{repo}/versions/{ref}/manifest";
      return VersionManifest(request, repo, ref);
    }
    if (rest == 3 && decoded[2] == "scan") {
      *route = "/api/v1/models/{repo}/versions/{ref}/scan";
      return VersionScan(request, repo, ref);
    }
    if (rest == 3 && decoded[2] == "evaluations") {
      *route = "/api/v1/models/{repo}/versions/{ref}/evaluations";
      return VersionEvaluations(request, repo, ref);
    }
    if (rest == 3 && decoded[2] == "stats") {
      *route = "/api/v1/models/{repo}/versions/{ref}/stats";
      return VersionStats(request, repo, ref);
    }
    if (rest == 3 && decoded[2] == "labels") {
      *route = "/api/v1/models/{repo}/versions/{ref}/labels";
      return VersionLabels(request, repo, ref);
    }
    if (rest == 3 && decoded[2] == "promotions") {
      *route = "/api/v1/models/{repo}/versions/{ref}/promotions";
      return VersionPromotions(request, repo, ref);
    }
    if (rest == 3 && decoded[2] == "policy-test") {
      *route = "/api/v1/models/{repo}/versions/{ref}/policy-test";
      return VersionPolicyTest(request, repo, ref);
    }
    if (rest == 3 && (decoded[2] == "attestations" || decoded[2] == "sign" ||
                      decoded[2] == "evidence")) {
      if (request.method == "GET" && decoded[2] != "sign") {
        core::Status resident = CheckResidency(repo, policies::Action::kPull);
        if (!resident.ok()) {
          *route = "/api/v1/models/{repo}/versions/{ref}/" + decoded[2];
          return ErrorResponse(resident);
        }
      }
      return VersionAttestationRoute(request, repo, ref, decoded[2], route);
    }
    if (rest >= 4 && decoded[2] == "files") {
      *route = "/api/v1/models/{repo}/versions/{ref}/files/{path}";
      std::string path;
      for (size_t i = 3; i < decoded.size(); ++i) {
        if (i > 3) path += "/";
        path += decoded[i];
      }
      return File(request, repo, ref, path);
    }
  }
  if (word == "aliases") {
    if (rest == 1) {
      *route = "/api/v1/models/{repo}/aliases";
      return Aliases(request, repo);
    }
    if (rest == 2) {
      *route = "/api/v1/models/{repo}/aliases/{alias}";
      return Alias(request, repo, decoded[1]);
    }
    if (rest == 3 && decoded[2] == "history") {
      *route = "/api/v1/models/{repo}/aliases/{alias}/history";
      return AliasHistory(request, repo, decoded[1]);
    }
  }
  return ErrorResponse(core::NotFound("no route for " + request.path.substr(0, 200), "ROUTE_UNKNOWN"));
}

HttpResponse Service::ListRepos(const HttpRequest& request) {
  if (request.method != "GET") return MethodNotAllowed(request, "GET");
  auto limit = PageLimit(request);
  if (!limit.ok()) return ErrorResponse(limit.status());
  auto page = options_.registry->ListRepos(QueryValue(request, "page"), *limit);
  if (!page.ok()) return ErrorResponse(page.status());
  Json repos = Json::array();
  // Only the repositories the caller may pull (a page may come out short).
  const registry::Principal* principal = registry::PrincipalScope::Current();
  for (const auto& repo : page->items) {
    if (principal != nullptr &&
        !registry::Authorize(*principal, registry::Action::kPull, repo.name, repo.anonymous_read).ok()) {
      continue;
    }
    repos.push_back(RepoJson(repo));
  }
  return JsonResponse(200, Json{{"repositories", repos}, {"next", page->next}});
}

HttpResponse Service::Repo(const HttpRequest& request, const std::string& repo) {
  if (request.method != "GET") return MethodNotAllowed(request, "GET");
  auto info = options_.registry->GetRepo(repo);
  if (!info.ok()) return ErrorResponse(info.status());
  Json body = RepoJson(*info);
  auto aliases = options_.registry->ListAliases(repo);
  if (!aliases.ok()) return ErrorResponse(aliases.status());
  Json alias_map = Json::object();
  for (const auto& a : *aliases) alias_map[a.name] = a.version;
  body["aliases"] = alias_map;
  return JsonResponse(200, body);
}

HttpResponse Service::RepoLabels(const HttpRequest& request, const std::string& repo) {
  if (request.method != "PUT") return MethodNotAllowed(request, "PUT");
  auto body = ParseBody(request);
  if (!body.ok()) return ErrorResponse(body.status());
  if (!body->is_object()) {
    return ErrorResponse(core::InvalidArgument("body must be a JSON object", "JSON_INVALID"));
  }
  auto labels = LabelsFromJson(*body);
  if (!labels.ok()) return ErrorResponse(labels.status());
  registry::Residency residency;
  if (body->contains("residency")) {
    const Json& r = (*body)["residency"];
    if (!r.is_object()) {
      return ErrorResponse(core::InvalidArgument("'residency' must be an object", "RESIDENCY_INVALID"));
    }
    for (const char* field : {"region", "classification"}) {
      if (r.contains(field) && !r[field].is_string()) {
        return ErrorResponse(core::InvalidArgument(
            std::string("residency '") + field + "' must be a string", "RESIDENCY_INVALID"));
      }
    }
    residency.region = r.value("region", "");
    residency.classification = r.value("classification", "");
  }
  core::Status s = options_.registry->SetRepoMetadata(repo, *labels, residency);
  if (!s.ok()) return ErrorResponse(s);
  auto info = options_.registry->GetRepo(repo);
  if (!info.ok()) return ErrorResponse(info.status());
  return JsonResponse(200, RepoJson(*info));
}

HttpResponse Service::Versions(const HttpRequest& request, const std::string& repo) {
  if (request.method != "GET") return MethodNotAllowed(request, "GET");
  auto limit = PageLimit(request);
  if (!limit.ok()) return ErrorResponse(limit.status());
  auto page = options_.registry->ListVersions(repo, QueryValue(request, "page"), *limit);
  if (!page.ok()) return ErrorResponse(page.status());
  Json versions = Json::array();
  for (const auto& v : page->items) versions.push_back(VersionJson(v));
  return JsonResponse(200, Json{{"versions", versions}, {"next", page->next}});
}

HttpResponse Service::Version(const HttpRequest& request, const std::string& repo,
                              const std::string& ref) {
  if (request.method == "GET") {
    core::Status resident = CheckResidency(repo, policies::Action::kPull);
    if (!resident.ok()) return ErrorResponse(resident);
    auto resolved = options_.registry->Resolve(repo, ref);
    if (!resolved.ok()) return ErrorResponse(resolved.status());
    Json body = VersionJson(resolved->info);
    auto manifest = core::ParseJson(resolved->manifest_bytes);
    body["manifest"] = manifest.ok() ? *manifest : Json();
    HttpResponse r = JsonResponse(200, body);
    r.AddHeader("Docker-Content-Digest", resolved->info.digest.ToString());
    return r;
  }
  if (request.method == "PUT") {
    // The version's content would be stored here: this server's site and
    // region must be allowed to hold the repository.
    core::Status resident = CheckResidency(repo, policies::Action::kStore);
    if (!resident.ok()) return ErrorResponse(resident);
    std::map<std::string, std::string> labels;
    std::string label_text = QueryValue(request, "labels");
    if (!label_text.empty()) {
      auto parsed = ParseLabelList(label_text);
      if (!parsed.ok()) return ErrorResponse(parsed.status());
      labels = std::move(*parsed);
    }
    auto info = options_.registry->PutVersion(repo, ref, request.body, labels);
    if (!info.ok()) return ErrorResponse(info.status());
    if (options_.scanning != nullptr && info->state == registry::VersionState::kPending) {
      // Only queued here; the scan runs on the scanning workers.
      auto queued = options_.scanning->Enqueue(repo, ref);
      if (!queued.ok()) return ErrorResponse(queued.status());
    }
    HttpResponse r = JsonResponse(201, VersionJson(*info));
    r.AddHeader("Docker-Content-Digest", info->digest.ToString());
    r.AddHeader("Location", "/api/v1/models/" + repo + "/versions/" + ref);
    return r;
  }
  if (request.method == "DELETE") {
    std::optional<registry::ResolvedVersion> before;
    if (options_.scanning != nullptr) {
      auto resolved = options_.registry->Resolve(repo, ref);
      if (!resolved.ok()) return ErrorResponse(resolved.status());
      before = std::move(resolved).value();
    }
    core::Status s = options_.registry->DeleteVersion(repo, ref);
    if (!s.ok()) return ErrorResponse(s);
    if (before) {
      // Blobs it shared with quarantined versions may be refused now.
      s = options_.scanning->Forget(*before);
      if (!s.ok()) return ErrorResponse(s);
    }
    return NoContent();
  }
  return MethodNotAllowed(request, "GET, PUT, DELETE");
}

HttpResponse Service::VersionManifest(const HttpRequest& request, const std::string& repo,
                                      const std::string& ref) {
  if (request.method != "GET") return MethodNotAllowed(request, "GET");
  core::Status resident = CheckResidency(repo, policies::Action::kPull);
  if (!resident.ok()) return ErrorResponse(resident);
  auto resolved = options_.registry->Resolve(repo, ref);
  if (!resolved.ok()) return ErrorResponse(resolved.status());
  HttpResponse r;
  r.content_type = std::string(registry::kOciManifestMediaType);
  r.body = resolved->manifest_bytes;
  r.AddHeader("Docker-Content-Digest", resolved->info.digest.ToString());
  return r;
}

HttpResponse Service::VersionLabels(const HttpRequest& request, const std::string& repo,
                                    const std::string& ref) {
  if (request.method != "PUT") return MethodNotAllowed(request, "PUT");
  auto body = ParseBody(request);
  if (!body.ok()) return ErrorResponse(body.status());
  if (!body->is_object()) {
    return ErrorResponse(core::InvalidArgument("body must be a JSON object", "JSON_INVALID"));
  }
  auto labels = LabelsFromJson(*body);
  if (!labels.ok()) return ErrorResponse(labels.status());
  core::Status s = options_.registry->SetVersionLabels(repo, ref, *labels);
  if (!s.ok()) return ErrorResponse(s);
  auto resolved = options_.registry->Resolve(repo, ref);
  if (!resolved.ok()) return ErrorResponse(resolved.status());
  return JsonResponse(200, VersionJson(resolved->info));
}

HttpResponse Service::File(const HttpRequest& request, const std::string& repo,
                           const std::string& ref, const std::string& path) {
  if (request.method != "GET" && request.method != "HEAD") {
    return MethodNotAllowed(request, "GET, HEAD");
  }
  core::Status resident = CheckResidency(repo, policies::Action::kPull);
  if (!resident.ok()) return ErrorResponse(resident);
  auto resolved = options_.registry->Resolve(repo, ref);
  if (!resolved.ok()) return ErrorResponse(resolved.status());
  const registry::Descriptor* layer = resolved->manifest.FindFile(path);
  if (layer == nullptr) {
    return ErrorResponse(core::NotFound("version " + ref + " has no file '" + path + "'",
                                        "FILE_UNKNOWN"));
  }
  core::Status pullable = CheckVersionPullable(resolved->info);
  if (!pullable.ok()) return ErrorResponse(pullable);
  return SendBlob(request, layer->digest);
}

HttpResponse Service::Aliases(const HttpRequest& request, const std::string& repo) {
  if (request.method != "GET") return MethodNotAllowed(request, "GET");
  auto aliases = options_.registry->ListAliases(repo);
  if (!aliases.ok()) return ErrorResponse(aliases.status());
  Json list = Json::array();
  for (const auto& a : *aliases) list.push_back(AliasJson(a));
  return JsonResponse(200, Json{{"aliases", list}});
}

HttpResponse Service::Alias(const HttpRequest& request, const std::string& repo,
                            const std::string& alias) {
  if (request.method == "GET") {
    auto info = options_.registry->GetAlias(repo, alias);
    if (!info.ok()) return ErrorResponse(info.status());
    return JsonResponse(200, AliasJson(*info));
  }
  if (request.method == "PUT") {
    auto body = ParseBody(request);
    if (!body.ok()) return ErrorResponse(body.status());
    auto ref = core::GetString(*body, "ref");
    if (!ref.ok()) return ErrorResponse(core::InvalidArgument(ref.status().message(), "JSON_INVALID"));
    // An admin override, recorded in the alias's history as such; promoters
    // move aliases through promotions.
    const registry::Principal* principal = registry::PrincipalScope::Current();
    registry::AliasMove move;
    move.by = principal != nullptr ? principal->name : "sigild";
    move.via = "override";
    auto info = options_.registry->MoveAlias(repo, alias, *ref, move);
    if (!info.ok()) return ErrorResponse(info.status());
    return JsonResponse(200, AliasJson(*info));
  }
  if (request.method == "DELETE") {
    core::Status s = options_.registry->DeleteAlias(repo, alias);
    if (!s.ok()) return ErrorResponse(s);
    return NoContent();
  }
  return MethodNotAllowed(request, "GET, PUT, DELETE");
}

HttpResponse Service::Gc(const HttpRequest& request) {
  if (request.method != "POST") return MethodNotAllowed(request, "POST");
  auto report = options_.registry->CollectGarbage();
  if (!report.ok()) return ErrorResponse(report.status());
  return JsonResponse(200, Json{{"blobs_scanned", report->blobs_scanned},
                                {"blobs_deleted", report->blobs_deleted},
                                {"bytes_freed", report->bytes_freed},
                                {"blobs_kept_young", report->blobs_kept_young}});
}

}  // namespace sigil::api
