#include "cli/sign_command.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "attest/slsa.h"
#include "attest/statement.h"
#include "core/fs.h"
#include "core/json.h"

namespace sigil::cli {
namespace {

bool UnderPath(std::string_view path, std::string_view prefix) {
  if (prefix.empty() || path.substr(0, prefix.size()) != prefix) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

std::string VersionPath(const Reference& ref) { return "/api/v1/models/" + ref.repository + "/versions/"; }

std::string Summary(const std::string& answer) {
  auto j = core::ParseJson(answer);
  if (!j.ok() || !j->is_object()) return answer;
  return "attached " + j->value("predicate_type", std::string()) + " to " +
         j->value("repository", std::string()) + "@" + j->value("version_digest", std::string()) +
         " (log entry " + j->value("log_index", core::Json()).dump() + ", " +
         j->value("content_digest", std::string()) + ")\n";
}

}  // namespace

core::Result<RemoteVersion> FetchVersion(HttpClient& http, const Reference& ref,
                                         std::chrono::milliseconds retry_budget) {
  const std::string base = VersionPath(ref);
  ASSIGN_OR_RETURN(HttpResponse vr,
                   PerformWithRetry(http, HttpRequest{.path = base + ref.ref()}, retry_budget));
  if (!vr.ok()) return ErrorFromResponse(vr);
  ASSIGN_OR_RETURN(core::Json version, core::ParseJson(vr.body));
  ASSIGN_OR_RETURN(std::string digest_text, core::GetString(version, "digest"));
  RemoteVersion out;
  ASSIGN_OR_RETURN(out.digest, core::Digest::Parse(digest_text));
  if (!ref.digest.empty() && out.digest.ToString() != ref.digest) {
    return core::DataLoss("server answered " + out.digest.ToString() + " for " + ref.ToString(),
                          "DIGEST_MISMATCH");
  }
  ASSIGN_OR_RETURN(
      HttpResponse mr,
      PerformWithRetry(http, HttpRequest{.path = base + digest_text + "/manifest"}, retry_budget));
  if (!mr.ok()) return ErrorFromResponse(mr);
  if (core::Sha256::Of(mr.body) != out.digest) {
    return core::DataLoss("manifest of " + ref.ToString() + " does not match its digest", "DIGEST_MISMATCH");
  }
  out.manifest_bytes = std::move(mr.body);
  ASSIGN_OR_RETURN(out.manifest, registry::ParseManifest(out.manifest_bytes));
  return out;
}

core::Result<attest::ModelManifest> ModelManifestOf(const std::string& repository,
                                                    const registry::Manifest& manifest) {
  attest::ModelManifest out;
  out.model_name = repository.substr(repository.rfind('/') + 1);
  for (const registry::Descriptor& layer : manifest.layers) {
    auto title = layer.annotations.find(std::string(registry::kTitleAnnotation));
    if (title == layer.annotations.end())
      return core::InvalidArgument("a layer has no title", "PATH_INVALID");
    bool ignored = false;
    for (std::string_view d : attest::kDefaultIgnoredPaths) ignored = ignored || UnderPath(title->second, d);
    if (!ignored) out.resources.push_back({title->second, "sha256", layer.digest.Hex()});
  }
  attest::SortResources(&out.resources);
  ASSIGN_OR_RETURN(out.root, attest::ResourcesRoot(out.resources));
  return out;
}

core::Result<std::string> PostAttestation(HttpClient& http, const Reference& ref, const std::string& document,
                                          std::chrono::milliseconds retry_budget) {
  ASSIGN_OR_RETURN(HttpResponse r,
                   PerformWithRetry(http,
                                    HttpRequest{.method = "POST",
                                                .path = VersionPath(ref) + ref.ref() + "/attestations",
                                                .headers = {"Content-Type: application/json"},
                                                .body = document},
                                    retry_budget));
  if (!r.ok()) return ErrorFromResponse(r);
  return std::move(r.body);
}

core::Result<std::string> SignRemoteModel(HttpClient& http, const Reference& ref,
                                          const signing::PrivateKey& key,
                                          std::chrono::milliseconds retry_budget) {
  ASSIGN_OR_RETURN(RemoteVersion v, FetchVersion(http, ref, retry_budget));
  ASSIGN_OR_RETURN(attest::ModelManifest model, ModelManifestOf(ref.repository, v.manifest));
  ASSIGN_OR_RETURN(std::string bundle, attest::SignModelManifest(model, key));
  Reference exact{ref.repository, "", v.digest.ToString()};
  ASSIGN_OR_RETURN(std::string answer, PostAttestation(http, exact, bundle, retry_budget));
  return Summary(answer);
}

core::Result<std::string> AttestRemote(HttpClient& http, const Reference& ref,
                                       const std::string& predicate_type, const std::string& predicate_json,
                                       const signing::PrivateKey& key,
                                       std::chrono::milliseconds retry_budget, bool file_subjects) {
  ASSIGN_OR_RETURN(core::Json predicate, core::ParseJson(predicate_json));
  if (!predicate.is_object())
    return core::InvalidArgument("the predicate must be a JSON object", "STATEMENT_INVALID");
  ASSIGN_OR_RETURN(RemoteVersion v, FetchVersion(http, ref, retry_budget));
  attest::Statement statement;
  statement.subjects.push_back({ref.repository, {{"sha256", v.digest.Hex()}}});
  if (file_subjects) {
    for (const registry::Descriptor& layer : v.manifest.layers) {
      auto title = layer.annotations.find(std::string(registry::kTitleAnnotation));
      if (title == layer.annotations.end()) return core::InvalidArgument("a layer has no title", "PATH_INVALID");
      statement.subjects.push_back({title->second, {{"sha256", layer.digest.Hex()}}});
    }
  }
  statement.predicate_type = predicate_type;
  statement.predicate_json = core::DumpJson(predicate);
  ASSIGN_OR_RETURN(signing::Envelope envelope, attest::SignStatement(statement, {key}));
  Reference exact{ref.repository, "", v.digest.ToString()};
  ASSIGN_OR_RETURN(std::string answer,
                   PostAttestation(http, exact, signing::SerializeEnvelope(envelope), retry_budget));
  return Summary(answer);
}

core::Result<std::string> LoadProvenance(const std::string& predicate_path) {
  ASSIGN_OR_RETURN(std::string predicate, core::ReadFile(predicate_path, 4 << 20));
  auto parsed = attest::ParseProvenance(predicate);
  if (!parsed.ok()) return parsed.status().Annotate(predicate_path);
  return predicate;
}

core::Result<std::string> AttachProvenance(HttpClient& http, const std::string& repository,
                                           const std::string& manifest_digest, const std::string& predicate,
                                           const signing::PrivateKey& key,
                                           std::chrono::milliseconds retry_budget) {
  return AttestRemote(http, Reference{repository, "", manifest_digest},
                      std::string(attest::kSlsaProvenanceV1), predicate, key, retry_budget,
                      /*file_subjects=*/true);
}

VerifyReport VerifyModelSignature(const std::string& model_dir, const std::string& signature_path,
                                  const signing::PublicKey& key,
                                  const std::vector<std::string>& ignore_paths) {
  VerifyReport report;
  attest::ModelVerifyOptions options;
  options.ignore_paths = ignore_paths;
  std::error_code ec;
  auto rel = std::filesystem::relative(std::filesystem::absolute(signature_path, ec),
                                       std::filesystem::absolute(model_dir, ec), ec);
  if (!ec && !rel.empty() && rel.native().rfind("..", 0) != 0)
    options.ignore_paths.push_back(rel.generic_string());
  auto bundle = core::ReadFile(signature_path, 64 << 20);
  if (!bundle.ok()) {
    report.Add("bundle", bundle.status(), "");
    return report;
  }
  auto verified = attest::VerifyModel(model_dir, *bundle, key, options);
  // The checks in the order VerifyModel runs them, with the reasons each
  // one fails with.
  struct Step {
    const char* name;
    std::vector<std::string_view> reasons;
    std::string ok;
  };
  std::vector<Step> steps = {
      {"bundle",
       {"BUNDLE_INVALID", "BUNDLE_MEDIA_TYPE", "JSON_INVALID", "BASE64_INVALID"},
       "Sigstore bundle v0.3"},
      {"key", {"BUNDLE_KEY_MISMATCH"}, "public-key hint is " + key.key_id().substr(0, 12)},
      {"signature", {"SIGNATURE_INVALID"}, "verifies with the key"},
      {"statement",
       {"DSSE_PAYLOAD_TYPE", "STATEMENT_INVALID", "MODEL_RESOURCE_NAME"},
       "in-toto model signature v1.0"},
      {"root", {"MODEL_ROOT_MISMATCH"}, "the subject is the ROOT of the listed resources"},
      {"files", {}, "every file matches"},
  };
  size_t failed = steps.size() - 1;  // anything else: rehashing the model
  if (!verified.ok()) {
    for (size_t i = 0; i < steps.size(); ++i) {
      for (std::string_view r : steps[i].reasons) {
        if (verified.status().reason() == r && failed == steps.size() - 1) failed = i;
      }
    }
  } else {
    steps.back().ok =
        std::to_string(verified->resources.size()) + " files match, ROOT " + verified->root.ToString();
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    if (verified.ok() || i < failed) {
      report.Add(steps[i].name, core::OkStatus(), steps[i].ok);
    } else {
      report.Add(steps[i].name, verified.status(), "");
      break;
    }
  }
  return report;
}

}  // namespace sigil::cli
