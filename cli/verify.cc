#include "cli/verify.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "attest/model_signing.h"
#include "attest/statement.h"
#include "cli/pull.h"
#include "core/digest.h"
#include "core/fs.h"
#include "core/json.h"
#include "registry/attestations.h"
#include "registry/manifest.h"
#include "signing/base64.h"
#include "signing/dsse.h"

namespace sigil::cli {
namespace {

using core::Json;
using core::Result;
using core::Status;

constexpr uint64_t kMaxTrustedKeysBytes = 4 << 20;
constexpr uint64_t kMaxEvidenceBytes = 256 << 20;
constexpr std::string_view kLeafType = "sigil.attestation/v1";

Status Failed(std::string message, std::string reason = "VERIFY_FAILED") {
  return core::Unauthenticated(std::move(message), std::move(reason));
}

std::string StringField(const Json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Result<attest::MerkleHash> HashFromBase64(const std::string& text, const std::string& what) {
  auto raw = signing::Base64Decode(text);
  if (!raw.ok() || raw->size() != 32) return Failed(what + " is not base64 of 32 bytes");
  attest::MerkleHash h;
  std::copy(raw->begin(), raw->end(), h.begin());
  return h;
}

bool SameEnvelope(const signing::Envelope& a, const signing::Envelope& b) {
  if (a.payload_type != b.payload_type || a.payload != b.payload) return false;
  if (a.signatures.size() != b.signatures.size()) return false;
  for (size_t i = 0; i < a.signatures.size(); ++i) {
    if (a.signatures[i].sig != b.signatures[i].sig || a.signatures[i].keyid != b.signatures[i].keyid) {
      return false;
    }
  }
  return true;
}

// The DSSE envelope inside a stored attestation document (an envelope or a
// Sigstore bundle, whose public-key hint goes to *hint).
Result<signing::Envelope> DocumentEnvelope(std::string_view document, std::string* hint) {
  auto doc = core::ParseJson(document);
  if (!doc.ok() || !doc->is_object()) return Failed("the attestation document is not a JSON object");
  if (doc->contains("mediaType")) {
    std::string media = StringField(*doc, "mediaType");
    if (media.rfind("application/vnd.dev.sigstore.bundle", 0) != 0) {
      return Failed("the bundle's mediaType '" + media.substr(0, 100) + "' is not a Sigstore bundle");
    }
    auto material = doc->find("verificationMaterial");
    if (material != doc->end() && material->is_object()) {
      auto pub = material->find("publicKey");
      if (pub != material->end() && pub->is_object()) *hint = StringField(*pub, "hint");
    }
    auto dsse = doc->find("dsseEnvelope");
    if (dsse == doc->end()) return Failed("the bundle holds no dsseEnvelope");
    ASSIGN_OR_RETURN(signing::Envelope e, signing::EnvelopeFromJson(*dsse));
    if (e.signatures.size() != 1) return Failed("a bundle must carry exactly one signature");
    return e;
  }
  return signing::EnvelopeFromJson(*doc);
}

struct Entry {
  Json leaf;
  std::string content;
};

// The log entry: the leaf names this content, version and repository, and
// the fields listed beside it agree with the leaf.
Result<Entry> CheckLogEntry(const Json& att, const std::string& repository, const core::Digest& version) {
  if (!att.is_object()) return Failed("not a JSON object");
  auto log_entry = att.find("log_entry");
  if (log_entry == att.end() || !log_entry->is_object()) return Failed("no log_entry");
  auto leaf_bytes = signing::Base64Decode(StringField(*log_entry, "leaf"));
  if (!leaf_bytes.ok()) return Failed("log_entry.leaf is not base64");
  auto content = signing::Base64Decode(StringField(att, "content"));
  if (!content.ok()) return Failed("content is not base64");
  auto leaf = core::ParseJson(*leaf_bytes);
  if (!leaf.ok() || !leaf->is_object()) return Failed("the leaf is not a JSON object");
  if (StringField(*leaf, "type") != kLeafType) return Failed("the leaf is not a sigil attestation entry");
  std::string content_digest = core::Sha256::Of(*content).ToString();
  if (StringField(*leaf, "content_digest") != content_digest) {
    return Failed("the content hashes to " + content_digest + ", the log entry names " +
                  StringField(*leaf, "content_digest"));
  }
  if (StringField(*leaf, "version_digest") != version.ToString()) {
    return Failed("the log entry is for version " + StringField(*leaf, "version_digest") + ", not " +
                  version.ToString());
  }
  if (StringField(*leaf, "repository") != repository) {
    return Failed("the log entry is for repository '" + StringField(*leaf, "repository") + "'");
  }
  std::string leaf_hash = core::HexEncode(attest::MerkleLeafHash(*leaf_bytes).data(), 32);
  if (log_entry->contains("leaf_hash") && StringField(*log_entry, "leaf_hash") != leaf_hash) {
    return Failed("log_entry.leaf_hash is not the hash of the leaf");
  }
  const char* same[] = {"content_digest", "version_digest", "predicate_type", "repository"};
  for (const char* field : same) {
    if (att.contains(field) && StringField(att, field) != StringField(*leaf, field)) {
      return Failed(std::string("'") + field + "' differs from the log entry");
    }
  }
  if (att.contains("key_ids") && (*leaf).contains("key_ids") && att["key_ids"] != (*leaf)["key_ids"]) {
    return Failed("'key_ids' differ from the log entry");
  }
  auto index = log_entry->find("index");
  if (index == log_entry->end() || !index->is_number_unsigned()) return Failed("log_entry.index is missing");
  if (att.contains("log_index") && att["log_index"] != *index) {
    return Failed("'log_index' differs from log_entry.index");
  }
  return Entry{std::move(*leaf), std::move(*content)};
}

Status CheckInclusion(const Json& att, const std::string& leaf_bytes_b64, const attest::Checkpoint& cp) {
  const Json& log_entry = att["log_entry"];
  auto index = core::GetUint(log_entry, "index");
  if (!index.ok()) return Failed("log_entry.index: " + index.status().message());
  auto leaf = signing::Base64Decode(leaf_bytes_b64);
  if (!leaf.ok()) return Failed("log_entry.leaf is not base64");
  auto proof_json = log_entry.find("inclusion_proof");
  if (proof_json == log_entry.end() || !proof_json->is_array()) return Failed("no inclusion_proof");
  std::vector<std::string> proof;
  for (const Json& h : *proof_json) {
    auto raw = h.is_string() ? signing::Base64Decode(h.get<std::string>())
                             : Result<std::string>(Failed("not a string"));
    if (!raw.ok()) return Failed("an inclusion proof hash is not base64");
    proof.push_back(std::move(*raw));
  }
  Status s = attest::VerifyInclusion(*index, cp.size, attest::HashBytes(attest::MerkleLeafHash(*leaf)), proof,
                                     attest::HashBytes(cp.root));
  if (!s.ok()) {
    return Failed("entry " + std::to_string(*index) + " is not in the log of size " +
                      std::to_string(cp.size) + ": " + s.message(),
                  "MERKLE_PROOF_INVALID");
  }
  return core::OkStatus();
}

// Signature, payload type, statement; returns the statement.
Result<attest::Statement> CheckSignature(const Json& att, const Entry& entry, const std::string& repository,
                                         const TrustedKeys& trusted, int64_t now, std::string* signer) {
  std::string hint;
  ASSIGN_OR_RETURN(signing::Envelope envelope, DocumentEnvelope(entry.content, &hint));
  auto listed = att.find("envelope");
  if (listed != att.end()) {
    auto shown = signing::EnvelopeFromJson(*listed);
    if (!shown.ok() || !SameEnvelope(*shown, envelope)) {
      return Failed("the listed envelope differs from the logged content");
    }
  }
  std::vector<signing::PublicKey> keys;
  for (const signing::TrustedKey& k : trusted.store.keys()) keys.push_back(k.key);
  if (keys.empty()) return Failed("no trusted keys", "KEY_UNTRUSTED");
  auto verified = signing::VerifyEnvelope(envelope, keys, 1);
  if (!verified.ok()) {
    return Failed("no trusted key verifies the signature (" + verified.status().message() + ")",
                  "SIGNATURE_INVALID");
  }
  if (!hint.empty() &&
      std::find(verified->key_ids.begin(), verified->key_ids.end(), hint) == verified->key_ids.end()) {
    return Failed("the bundle's public-key hint does not name the key that signed it", "BUNDLE_KEY_MISMATCH");
  }
  if (verified->payload_type != signing::kInTotoPayloadType) {
    return Failed("payload type '" + verified->payload_type.substr(0, 100) + "' is not in-toto",
                  "DSSE_PAYLOAD_TYPE");
  }
  auto statement = attest::ParseStatement(verified->payload);
  if (!statement.ok())
    return Failed("the payload is not an in-toto statement: " + statement.status().message());
  if (statement->predicate_type != StringField(entry.leaf, "predicate_type")) {
    return Failed("the statement's predicate type is not the logged one");
  }
  signing::TrustQuery query{statement->predicate_type, repository, {}};
  Status refusal;
  for (const std::string& id : verified->key_ids) {
    Status allowed = trusted.store.CheckAllowed(id, query, now);
    if (allowed.ok()) {
      const signing::TrustedKey* k = trusted.store.Find(id);
      *signer = (k != nullptr && !k->name.empty() ? k->name + " " : std::string()) + id.substr(0, 12);
      return std::move(*statement);
    }
    if (refusal.ok()) refusal = allowed;
  }
  return Failed(refusal.message(), refusal.reason());
}

Status CheckSubject(const attest::Statement& statement, const core::Digest& version,
                    const registry::Manifest& manifest, std::string* what) {
  std::vector<std::pair<core::Digest, std::string>> accepted{{version, "the manifest digest"}};
  if (statement.predicate_type == attest::kModelSigningV1) {
    ASSIGN_OR_RETURN(core::Digest root,
                     registry::ManifestModelRoot(manifest, attest::IgnorePathsOfPredicate(statement.predicate_json)));
    accepted.push_back({root, "the files ROOT " + root.ToString()});
  }
  for (const attest::Subject& s : statement.subjects) {
    auto it = s.digest.find("sha256");
    if (it == s.digest.end()) continue;
    for (const auto& [digest, name] : accepted) {
      if (it->second == digest.Hex()) {
        *what = name;
        return core::OkStatus();
      }
    }
  }
  return Failed("no subject is the manifest digest " + version.ToString() +
                    (accepted.size() > 1 ? " or " + accepted[1].second : std::string()),
                "SUBJECT_MISMATCH");
}

// Every file of the manifest hashes to its layer digest, and no other
// regular file lies in dir (outside .sigil/ and the partial directory).
Status CheckFiles(const registry::Manifest& manifest, const std::string& dir, size_t* count) {
  std::vector<PullFile> files;
  for (const registry::Descriptor& layer : manifest.layers) {
    auto title = layer.annotations.find(std::string(registry::kTitleAnnotation));
    if (title == layer.annotations.end()) return Failed("a layer has no title");
    files.push_back(PullFile{title->second, layer.digest, layer.size});
  }
  Status titles = CheckTitles(files);
  if (!titles.ok()) return Failed(titles.message(), titles.reason());
  std::set<std::string> expected;
  for (const PullFile& f : files) {
    auto got = core::HashFile(core::JoinPath(dir, f.title));
    if (!got.ok()) return Failed("'" + f.title + "': " + got.status().message(), "MODEL_MISMATCH");
    if (*got != f.digest) {
      return Failed("'" + f.title + "' hashes to " + got->ToString() + ", expected " + f.digest.ToString(),
                    "DIGEST_MISMATCH");
    }
    expected.insert(f.title);
    ++*count;
  }
  std::error_code ec;
  std::filesystem::recursive_directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::string rel = std::filesystem::relative(it->path(), dir, ec).generic_string();
    if (ec) break;
    if (rel == kEvidenceDir || rel == kPartialDir) {
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_directory(ec) && expected.count(rel) == 0) {
      return Failed("'" + rel + "' is not a file of the version", "MODEL_MISMATCH");
    }
  }
  if (ec) return Failed("listing " + dir + ": " + ec.message(), "MODEL_MISMATCH");
  return core::OkStatus();
}

// Online: a consistency proof between the evidence's checkpoint and the
// largest seen. Offline: a smaller checkpoint must be one seen before.
Status CheckConsistency(const attest::Checkpoint& cp, const CheckpointHistory& history,
                        const ConsistencyFetcher& fetch, std::string* detail) {
  if (history.empty()) {
    *detail = "no checkpoint of " + cp.origin + " seen before";
    return core::OkStatus();
  }
  auto seen = history.RootAt(cp.size);
  if (seen.has_value() && *seen != cp.root) {
    return Failed("the log's root at size " + std::to_string(cp.size) +
                      " differs from the one seen before: the log forked",
                  "LOG_INCONSISTENT");
  }
  uint64_t m = history.largest_size();
  std::string m_text = std::to_string(m), s_text = std::to_string(cp.size);
  if (m == cp.size) {
    *detail = "same checkpoint as seen before (size " + m_text + ")";
    return core::OkStatus();
  }
  if (!fetch) {
    if (cp.size < m && !seen.has_value()) {
      return Failed("log older than a previously seen checkpoint (size " + s_text + " < " + m_text + ")",
                    "LOG_ROLLBACK");
    }
    *detail =
        cp.size < m ? "size " + s_text + " was seen before" : "newer than size " + m_text + " (offline)";
    return core::OkStatus();
  }
  uint64_t from = std::min(m, cp.size), to = std::max(m, cp.size);
  const attest::MerkleHash& root_from = cp.size < m ? cp.root : history.largest_root();
  const attest::MerkleHash& root_to = cp.size < m ? history.largest_root() : cp.root;
  ASSIGN_OR_RETURN(std::vector<std::string> proof, fetch(from, to));
  Status s =
      attest::VerifyConsistency(from, to, proof, attest::HashBytes(root_from), attest::HashBytes(root_to));
  if (!s.ok()) {
    return Failed("sizes " + std::to_string(from) + " and " + std::to_string(to) +
                      " are not consistent: " + s.message(),
                  "LOG_INCONSISTENT");
  }
  *detail = "consistent with size " + m_text + " seen before";
  return core::OkStatus();
}

}  // namespace

// ---- TrustedKeys

Result<TrustedKeys> TrustedKeys::Parse(std::string_view json) {
  TrustedKeys out;
  ASSIGN_OR_RETURN(out.store, signing::TrustStore::Parse(json));
  ASSIGN_OR_RETURN(Json doc, core::ParseJson(json, core::JsonLimits{kMaxTrustedKeysBytes, 64}));
  auto logs = doc.find("log_keys");
  if (logs != doc.end() && !logs->is_null()) {
    if (!logs->is_array()) {
      return core::InvalidArgument("trusted keys: 'log_keys' must be an array", "TRUST_STORE_INVALID");
    }
    for (const Json& k : *logs) {
      if (!k.is_string()) {
        return core::InvalidArgument("trusted keys: 'log_keys' must hold strings", "TRUST_STORE_INVALID");
      }
      auto added = out.AddLogKey(k.get<std::string>());
      if (!added.ok()) return added.status();
    }
  }
  return out;
}

Result<TrustedKeys> TrustedKeys::Load(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, core::ReadFile(path, kMaxTrustedKeysBytes));
  auto keys = Parse(text);
  if (!keys.ok()) return keys.status().Annotate(path);
  return keys;
}

Result<bool> TrustedKeys::AddLogKey(const std::string& text) {
  auto verifier = attest::ParseNoteVerifierKey(text);
  if (!verifier.ok()) {
    return core::InvalidArgument(
        "trusted keys: log key '" + text.substr(0, 100) + "': " + verifier.status().message(),
        "TRUST_STORE_INVALID");
  }
  if (std::find(log_keys.begin(), log_keys.end(), text) != log_keys.end()) return false;
  log_keys.push_back(text);
  log_verifiers.push_back(std::move(*verifier));
  return true;
}

std::string TrustedKeys::Serialize() const {
  auto doc = core::ParseJson(store.Serialize());
  Json out = doc.ok() ? std::move(*doc) : Json{{"keys", Json::array()}};
  out["log_keys"] = log_keys;
  return out.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

Status TrustedKeys::Save(const std::string& path) const {
  return core::WriteFileAtomic(path, Serialize(), 0644);
}

// ---- CheckpointHistory

Result<CheckpointHistory> CheckpointHistory::Load(const std::string& dir, const std::string& origin) {
  CheckpointHistory h;
  h.origin_ = origin;
  if (dir.empty()) return h;
  h.path_ = core::JoinPath(dir, core::Sha256::Of(origin).Hex() + ".json");
  if (!core::PathExists(h.path_)) return h;
  ASSIGN_OR_RETURN(std::string text, core::ReadFile(h.path_));
  auto doc = core::ParseJson(text);
  if (!doc.ok() || !doc->is_object() || StringField(*doc, "origin") != origin ||
      !(*doc)["checkpoints"].is_array()) {
    return core::DataLoss("checkpoint history " + h.path_ + " is damaged");
  }
  for (const Json& c : (*doc)["checkpoints"]) {
    auto size = core::GetUint(c, "size");
    auto root = HashFromBase64(StringField(c, "root"), "a stored root");
    if (!size.ok() || !root.ok()) return core::DataLoss("checkpoint history " + h.path_ + " is damaged");
    h.Add(*size, *root);
  }
  return h;
}

uint64_t CheckpointHistory::largest_size() const { return roots_.back().first; }
const attest::MerkleHash& CheckpointHistory::largest_root() const { return roots_.back().second; }

std::optional<attest::MerkleHash> CheckpointHistory::RootAt(uint64_t size) const {
  auto it = std::lower_bound(roots_.begin(), roots_.end(), size,
                             [](const auto& entry, uint64_t s) { return entry.first < s; });
  if (it == roots_.end() || it->first != size) return std::nullopt;
  return it->second;
}

void CheckpointHistory::Add(uint64_t size, const attest::MerkleHash& root) {
  auto it = std::lower_bound(roots_.begin(), roots_.end(), size,
                             [](const auto& entry, uint64_t s) { return entry.first < s; });
  if (it != roots_.end() && it->first == size) {
    it->second = root;
  } else {
    roots_.insert(it, {size, root});
  }
}

Status CheckpointHistory::Save() const {
  if (path_.empty()) return core::OkStatus();
  Json list = Json::array();
  for (const auto& [size, root] : roots_) {
    list.push_back({{"size", size}, {"root", signing::Base64Encode(attest::HashBytes(root))}});
  }
  RETURN_IF_ERROR(core::MakeDirs(core::DirName(path_), 0700));
  return core::WriteFileAtomic(path_, core::DumpJson(Json{{"origin", origin_}, {"checkpoints", list}}) + "\n",
                               0600);
}

// ---- VerifyReport

bool VerifyReport::ok() const { return FirstFailure() == nullptr; }

void VerifyReport::Add(std::string name, const Status& status, std::string ok_detail) {
  checks.push_back(
      Check{std::move(name), status.ok(),
            status.ok() ? std::move(ok_detail)
                        : status.message() + (status.reason().empty() ? "" : " [" + status.reason() + "]")});
}

const Check* VerifyReport::FirstFailure() const {
  for (const Check& c : checks) {
    if (!c.ok) return &c;
  }
  return nullptr;
}

std::string VerifyReport::Format() const {
  std::string out;
  for (const Check& c : checks)
    out += std::string(c.ok ? "ok    " : "FAIL  ") + c.name + ": " + c.detail + "\n";
  const Check* failed = FirstFailure();
  out += failed == nullptr ? "verified: every check passed\n"
                           : "NOT VERIFIED: check '" + failed->name + "' failed\n";
  return out;
}

Status VerifyReport::ToStatus() const {
  const Check* failed = FirstFailure();
  if (failed == nullptr) return core::OkStatus();
  return core::Unauthenticated("check '" + failed->name + "' failed: " + failed->detail, "VERIFY_FAILED");
}

// ---- VerifyEvidence

Result<std::string> NoteOrigin(std::string_view note) {
  size_t nl = note.find('\n');
  if (nl == std::string_view::npos || nl == 0)
    return Failed("the checkpoint note has no origin line", "NOTE_INVALID");
  return std::string(note.substr(0, nl));
}

VerifyReport VerifyEvidence(const EvidenceCheck& in) {
  VerifyReport report;
  auto doc = core::ParseJson(in.evidence_json, core::JsonLimits{kMaxEvidenceBytes, 64});
  if (!doc.ok() || !doc->is_object()) {
    report.Add("evidence", Failed("the evidence is not a JSON object"), "");
    return report;
  }
  const Json& ev = *doc;

  // manifest
  core::Digest version = core::Sha256::Of(in.manifest_bytes);
  auto manifest = registry::ParseManifest(in.manifest_bytes);
  Status ms;
  if (StringField(ev, "version_digest") != version.ToString()) {
    ms = Failed("the manifest hashes to " + version.ToString() + ", the evidence is for '" +
                    StringField(ev, "version_digest") + "'",
                "DIGEST_MISMATCH");
  } else if (StringField(ev, "repository") != in.repository) {
    ms = Failed("the evidence is for repository '" + StringField(ev, "repository") + "', not '" +
                in.repository + "'");
  } else if (!manifest.ok()) {
    ms = manifest.status();
  }
  report.Add("manifest", ms, in.repository + "@" + version.ToString());
  if (!ms.ok()) return report;

  if (!in.files_dir.empty()) {
    size_t count = 0;
    Status fs = CheckFiles(*manifest, in.files_dir, &count);
    report.Add("files", fs, std::to_string(count) + " files match the manifest");
  }

  // checkpoint
  std::optional<attest::Checkpoint> cp;
  {
    Status cs;
    std::string note;
    auto cpj = ev.find("checkpoint");
    if (cpj != ev.end() && cpj->is_object()) note = StringField(*cpj, "note");
    auto origin = NoteOrigin(note);
    std::vector<attest::NoteVerifier> verifiers;
    if (origin.ok()) {
      for (const attest::NoteVerifier& v : in.trusted->log_verifiers) {
        if (v.name == *origin) verifiers.push_back(v);
      }
    }
    if (!origin.ok()) {
      cs = origin.status();
    } else if (verifiers.empty()) {
      cs = Failed("the checkpoint's origin '" + origin->substr(0, 100) + "' is not a trusted log",
                  "CHECKPOINT_ORIGIN");
    } else {
      auto verified = attest::VerifyCheckpoint(note, *origin, verifiers);
      if (!verified.ok()) {
        cs = Failed(verified.status().message(), verified.status().reason());
      } else {
        cp = *verified;
        std::string root_b64 = signing::Base64Encode(attest::HashBytes(cp->root));
        if ((cpj->contains("origin") && StringField(*cpj, "origin") != cp->origin) ||
            (cpj->contains("size") && (*cpj)["size"] != cp->size) ||
            (cpj->contains("root") && StringField(*cpj, "root") != root_b64)) {
          cs = Failed("the checkpoint's listed origin, size or root differ from the signed note");
        }
      }
    }
    report.Add("checkpoint", cs,
               cp ? cp->origin + " size " + std::to_string(cp->size) + ", signed by a trusted log key" : "");
    if (!cs.ok()) cp.reset();
  }

  if (cp && in.history != nullptr) {
    std::string detail;
    Status s = CheckConsistency(*cp, *in.history, in.consistency, &detail);
    report.Add("consistency", s, detail);
  }

  // attestations
  auto atts = ev.find("attestations");
  if (atts == ev.end() || !atts->is_array() || atts->empty()) {
    report.Add("attestations", Failed("the evidence lists no attestations", "ATTESTATION_MISSING"), "");
    return report;
  }
  report.Add("attestations", core::OkStatus(), std::to_string(atts->size()) + " listed");
  for (size_t i = 0; i < atts->size(); ++i) {
    const Json& att = (*atts)[i];
    std::string n = std::to_string(i);
    std::string type = att.is_object() ? StringField(att, "predicate_type") : "";
    auto entry = CheckLogEntry(att, in.repository, version);
    report.Add("log entry " + n, entry.status(), type);
    if (!entry.ok()) continue;
    if (cp) {
      Status s = CheckInclusion(att, StringField(att["log_entry"], "leaf"), *cp);
      report.Add(
          "inclusion " + n, s,
          "entry " + att["log_entry"].value("index", Json()).dump() + " of " + std::to_string(cp->size));
    } else {
      report.Add("inclusion " + n, Failed("no verified checkpoint to check against"), "");
    }
    std::string signer;
    auto statement = CheckSignature(att, *entry, in.repository, *in.trusted, in.now_micros, &signer);
    report.Add("signature " + n, statement.status(), "signed by " + signer);
    if (!statement.ok()) continue;
    std::string what;
    Status s = CheckSubject(*statement, version, *manifest, &what);
    report.Add("subject " + n, s, what);
  }

  if (report.ok() && cp && in.history != nullptr && in.consistency) {
    in.history->Add(cp->size, cp->root);
    Status s = in.history->Save();
    if (!s.ok()) report.Add("consistency", s, "");
  }
  return report;
}

}  // namespace sigil::cli
