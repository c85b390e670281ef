#include "cli/verify_command.h"

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "cli/sign_command.h"
#include "core/clock.h"
#include "core/digest.h"
#include "core/fs.h"
#include "core/json.h"
#include "registry/manifest.h"
#include "signing/base64.h"

namespace sigil::cli {
namespace {

// The origin on the evidence's checkpoint note: only picks the history
// file; the checkpoint check authenticates it.
std::string EvidenceOrigin(const std::string& evidence_json) {
  auto doc = core::ParseJson(evidence_json, core::JsonLimits{256 << 20, 64});
  if (!doc.ok() || !doc->is_object() || !(*doc)["checkpoint"].is_object()) return "";
  auto note = core::GetString((*doc)["checkpoint"], "note");
  if (!note.ok()) return "";
  auto origin = NoteOrigin(*note);
  return origin.ok() ? *origin : "";
}

core::Result<std::vector<std::string>> FetchConsistency(HttpClient& http, uint64_t from, uint64_t to,
                                                        std::chrono::milliseconds retry_budget) {
  ASSIGN_OR_RETURN(HttpResponse r,
                   PerformWithRetry(http,
                                    HttpRequest{.path = "/api/v1/log/proof/consistency?from=" +
                                                        std::to_string(from) + "&to=" + std::to_string(to)},
                                    retry_budget));
  if (!r.ok()) return ErrorFromResponse(r);
  ASSIGN_OR_RETURN(core::Json doc, core::ParseJson(r.body));
  std::vector<std::string> out;
  if (!doc.is_object() || !doc["hashes"].is_array())
    return core::Internal("consistency answer has no 'hashes'");
  for (const core::Json& h : doc["hashes"]) {
    if (!h.is_string()) return core::Internal("consistency answer holds a non-string hash");
    ASSIGN_OR_RETURN(std::string raw, signing::Base64Decode(h.get<std::string>()));
    out.push_back(std::move(raw));
  }
  return out;
}

}  // namespace

std::string DefaultCheckpointDir() {
  const char* xdg = std::getenv("XDG_STATE_HOME");
  if (xdg != nullptr && xdg[0] == '/') return core::JoinPath(xdg, "sigil/checkpoints");
  const char* home = std::getenv("HOME");
  if (home != nullptr && home[0] == '/') return core::JoinPath(home, ".local/state/sigil/checkpoints");
  return "";
}

core::Result<OnlineVerification> VerifyOnline(HttpClient& http, const std::string& repository,
                                              const std::string& manifest_bytes, const TrustedKeys& trusted,
                                              const std::string& checkpoint_dir,
                                              std::chrono::milliseconds retry_budget) {
  core::Digest digest = core::Sha256::Of(manifest_bytes);
  ASSIGN_OR_RETURN(HttpResponse r,
                   PerformWithRetry(http,
                                    HttpRequest{.path = "/api/v1/models/" + repository + "/versions/" +
                                                        digest.ToString() + "/evidence"},
                                    retry_budget));
  if (!r.ok()) return ErrorFromResponse(r);
  OnlineVerification out;
  out.evidence_json = std::move(r.body);
  std::string origin = EvidenceOrigin(out.evidence_json);
  std::optional<CheckpointHistory> history;
  if (!origin.empty()) {
    ASSIGN_OR_RETURN(history, CheckpointHistory::Load(checkpoint_dir, origin));
  }
  EvidenceCheck check;
  check.repository = repository;
  check.evidence_json = out.evidence_json;
  check.manifest_bytes = manifest_bytes;
  check.trusted = &trusted;
  check.history = history ? &*history : nullptr;
  check.consistency = [&](uint64_t from, uint64_t to) {
    return FetchConsistency(http, from, to, retry_budget);
  };
  check.now_micros = core::Clock::Real()->NowMicros();
  out.report = VerifyEvidence(check);
  return out;
}

core::Result<OnlineVerification> VerifyReference(HttpClient& http, const Reference& ref,
                                                 const TrustedKeys& trusted,
                                                 const std::string& checkpoint_dir,
                                                 std::chrono::milliseconds retry_budget) {
  ASSIGN_OR_RETURN(RemoteVersion v, FetchVersion(http, ref, retry_budget));
  return VerifyOnline(http, ref.repository, v.manifest_bytes, trusted, checkpoint_dir, retry_budget);
}

VerifyReport VerifyPulledDir(const std::string& dir, const TrustedKeys& trusted,
                             const std::string& checkpoint_dir) {
  VerifyReport report;
  const std::string evidence_dir = core::JoinPath(dir, kEvidenceDir);
  auto evidence = core::ReadFile(core::JoinPath(evidence_dir, kEvidenceFile), 256 << 20);
  auto manifest = core::ReadFile(core::JoinPath(evidence_dir, kManifestFile));
  if (!evidence.ok() || !manifest.ok()) {
    report.Add("evidence", !evidence.ok() ? evidence.status() : manifest.status(), "");
    return report;
  }
  auto doc = core::ParseJson(*evidence, core::JsonLimits{256 << 20, 64});
  std::string repository = doc.ok() && doc->is_object() ? doc->value("repository", std::string()) : "";
  std::optional<CheckpointHistory> history;
  std::string origin = EvidenceOrigin(*evidence);
  if (!origin.empty()) {
    auto h = CheckpointHistory::Load(checkpoint_dir, origin);
    if (!h.ok()) {
      report.Add("consistency", h.status(), "");
      return report;
    }
    history = std::move(*h);
  }
  EvidenceCheck check;
  check.repository = repository;
  check.evidence_json = std::move(*evidence);
  check.manifest_bytes = std::move(*manifest);
  check.files_dir = dir;
  check.trusted = &trusted;
  check.history = history ? &*history : nullptr;
  check.now_micros = core::Clock::Real()->NowMicros();
  return VerifyEvidence(check);
}

core::Status RefuseEvidenceTitles(const std::string& manifest_bytes) {
  ASSIGN_OR_RETURN(registry::Manifest manifest, registry::ParseManifest(manifest_bytes));
  for (const registry::Descriptor& layer : manifest.layers) {
    auto title = layer.annotations.find(std::string(registry::kTitleAnnotation));
    if (title == layer.annotations.end()) continue;
    const std::string& t = title->second;
    if (t == kEvidenceDir || t.rfind(std::string(kEvidenceDir) + "/", 0) == 0) {
      return core::InvalidArgument("refusing file '" + t.substr(0, 200) + "': " + std::string(kEvidenceDir) +
                                       "/ holds the verification evidence",
                                   "PATH_INVALID");
    }
  }
  return core::OkStatus();
}

core::Status StoreEvidence(const std::string& dir, const std::string& evidence_json,
                           const std::string& manifest_bytes) {
  const std::string evidence_dir = core::JoinPath(dir, kEvidenceDir);
  RETURN_IF_ERROR(core::MakeDirs(evidence_dir));
  RETURN_IF_ERROR(core::WriteFileAtomic(core::JoinPath(evidence_dir, kManifestFile), manifest_bytes));
  return core::WriteFileAtomic(core::JoinPath(evidence_dir, kEvidenceFile), evidence_json);
}

}  // namespace sigil::cli
