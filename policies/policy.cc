#include "policies/policy.h"

#include <cmath>
#include <initializer_list>
#include <set>

#include <nlohmann/json.hpp>

#include "core/json.h"
#include "signing/base64.h"
#include "signing/trust_store.h"

namespace sigil::policies {
namespace {

using core::Json;
using core::Result;
using core::Status;

Status Invalid(std::string_view field, std::string_view what) {
  return core::InvalidArgument("policy field '" + std::string(field) + "' " + std::string(what),
                               "POLICY_INVALID");
}

std::string Join(std::string_view path, std::string_view key) {
  return path.empty() ? std::string(key) : std::string(path) + "." + std::string(key);
}

Status RequireObject(const Json& v, std::string_view path) {
  if (!v.is_object()) return Invalid(path, "must be an object");
  return core::OkStatus();
}

// Refuses keys outside `allowed`: a misspelt rule must not silently vanish.
Status CheckKeys(const Json& obj, std::string_view path,
                 std::initializer_list<std::string_view> allowed) {
  RETURN_IF_ERROR(RequireObject(obj, path.empty() ? "(document)" : path));
  for (const auto& [key, value] : obj.items()) {
    bool known = false;
    for (std::string_view a : allowed) known = known || key == a;
    if (!known) return Invalid(Join(path, key), "is not a known field");
  }
  return core::OkStatus();
}

Result<std::string> String(const Json& v, std::string_view path) {
  if (!v.is_string()) return Invalid(path, "must be a string");
  const auto& s = v.get_ref<const std::string&>();
  if (s.empty()) return Invalid(path, "must not be empty");
  if (s.size() > kMaxStringBytes) return Invalid(path, "is longer than 1024 bytes");
  return s;
}

Result<std::vector<std::string>> StringList(const Json& v, std::string_view path,
                                            bool allow_empty) {
  if (!v.is_array()) return Invalid(path, "must be an array of strings");
  if (v.size() > kMaxListEntries) return Invalid(path, "has more than 256 entries");
  if (v.empty() && !allow_empty) return Invalid(path, "must not be empty");
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    ASSIGN_OR_RETURN(std::string s, String(v[i], std::string(path) + "[" + std::to_string(i) + "]"));
    out.push_back(std::move(s));
  }
  return out;
}

Result<bool> Bool(const Json& v, std::string_view path) {
  if (!v.is_boolean()) return Invalid(path, "must be true or false");
  return v.get<bool>();
}

Result<double> Number(const Json& v, std::string_view path) {
  if (!v.is_number()) return Invalid(path, "must be a number");
  double d = v.get<double>();
  if (!std::isfinite(d)) return Invalid(path, "must be finite");
  return d;
}

// "N of M" or a bare positive integer N.
Status ParseThreshold(const Json& v, std::string_view path, SignatureRule& rule) {
  if (v.is_number_integer()) {
    int64_t n = v.get<int64_t>();
    if (n < 1 || n > static_cast<int64_t>(kMaxListEntries)) return Invalid(path, "must be at least 1");
    rule.threshold = static_cast<int>(n);
    rule.of = 0;
    return core::OkStatus();
  }
  if (!v.is_string()) return Invalid(path, "must be \"N of M\" or an integer");
  const std::string& s = v.get_ref<const std::string&>();
  size_t pos = s.find(" of ");
  auto digits = [](std::string_view t) {
    if (t.empty() || t.size() > 3) return -1;
    int n = 0;
    for (char c : t) {
      if (c < '0' || c > '9') return -1;
      n = n * 10 + (c - '0');
    }
    return n;
  };
  if (pos == std::string::npos) return Invalid(path, "must be \"N of M\" or an integer");
  int n = digits(std::string_view(s).substr(0, pos));
  int m = digits(std::string_view(s).substr(pos + 4));
  if (n < 1 || m < 1 || n > m) return Invalid(path, "must be \"N of M\" with 1 <= N <= M");
  rule.threshold = n;
  rule.of = m;
  return core::OkStatus();
}

Result<SignatureRule> ParseSignatures(const Json& v) {
  RETURN_IF_ERROR(CheckKeys(v, "signatures", {"keys", "roles", "threshold"}));
  SignatureRule rule;
  if (v.contains("keys")) {
    ASSIGN_OR_RETURN(rule.keys, StringList(v["keys"], "signatures.keys", true));
  }
  if (v.contains("roles")) {
    ASSIGN_OR_RETURN(rule.roles, StringList(v["roles"], "signatures.roles", true));
  }
  if (rule.keys.empty() && rule.roles.empty()) {
    return Invalid("signatures", "must name keys or roles");
  }
  if (!v.contains("threshold")) return Invalid("signatures.threshold", "is required");
  RETURN_IF_ERROR(ParseThreshold(v["threshold"], "signatures.threshold", rule));
  if (rule.roles.empty()) {
    int listed = static_cast<int>(rule.keys.size());
    if (rule.of != 0 && rule.of != listed) {
      return Invalid("signatures.threshold", "says of " + std::to_string(rule.of) + " but " +
                                                 std::to_string(listed) + " keys are listed");
    }
    if (rule.threshold > listed) {
      return Invalid("signatures.threshold", "asks for more signatures than keys listed");
    }
  }
  return rule;
}

Result<std::vector<AttestationRule>> ParseAttestations(const Json& v) {
  if (!v.is_array()) return Invalid("attestations", "must be an array");
  if (v.size() > kMaxListEntries) return Invalid("attestations", "has more than 256 entries");
  std::vector<AttestationRule> out;
  for (size_t i = 0; i < v.size(); ++i) {
    std::string path = "attestations[" + std::to_string(i) + "]";
    RETURN_IF_ERROR(CheckKeys(v[i], path, {"predicate_type", "keys"}));
    AttestationRule rule;
    if (!v[i].contains("predicate_type")) return Invalid(path + ".predicate_type", "is required");
    ASSIGN_OR_RETURN(rule.predicate_type, String(v[i]["predicate_type"], path + ".predicate_type"));
    if (v[i].contains("keys")) {
      ASSIGN_OR_RETURN(rule.keys, StringList(v[i]["keys"], path + ".keys", true));
    }
    out.push_back(std::move(rule));
  }
  return out;
}

// "<type> <base64 key blob> [comment]" as ssh-keygen writes a .pub file,
// for the key types attest can verify; the blob must hold a key of that type.
Status CheckSshPublicKey(std::string_view text, std::string_view path) {
  SshPublicKeyText key = SplitSshPublicKey(text);
  if (key.type != "ssh-ed25519" && key.type != "ecdsa-sha2-nistp256") {
    return Invalid(path, "must be an ssh-ed25519 or ecdsa-sha2-nistp256 public key "
                         "(\"<type> <base64> [comment]\")");
  }
  auto blob = signing::Base64Decode(key.base64);
  if (!blob.ok() || signing::Base64Encode(*blob) != key.base64) {
    return Invalid(path, "must hold the key in standard padded base64, as a .pub file does");
  }
  // SSH wire strings: the type, then the key (Ed25519: 32 bytes) or the
  // curve name and an uncompressed point (P-256: 65 bytes).
  std::string_view rest = *blob;
  auto next = [&rest](std::string_view& out) {
    if (rest.size() < 4) return false;
    size_t n = (size_t{static_cast<uint8_t>(rest[0])} << 24) |
               (size_t{static_cast<uint8_t>(rest[1])} << 16) |
               (size_t{static_cast<uint8_t>(rest[2])} << 8) | size_t{static_cast<uint8_t>(rest[3])};
    if (n > rest.size() - 4) return false;
    out = rest.substr(4, n);
    rest.remove_prefix(4 + n);
    return true;
  };
  std::string_view type, curve, point;
  bool ok = next(type) && type == key.type;
  if (ok && key.type == "ssh-ed25519") {
    ok = next(point) && point.size() == 32;
  } else if (ok) {
    ok = next(curve) && curve == "nistp256" && next(point) && point.size() == 65 && point[0] == 0x04;
  }
  if (!ok || !rest.empty()) return Invalid(path, "does not hold a " + key.type + " key");
  return core::OkStatus();
}

Result<ProvenanceRule> ParseProvenance(const Json& v) {
  RETURN_IF_ERROR(CheckKeys(v, "provenance",
                            {"builders", "source_repositories", "dataset_digests_registered",
                             "subjects_match_files", "commit"}));
  ProvenanceRule rule;
  if (v.contains("builders")) {
    ASSIGN_OR_RETURN(rule.builders, StringList(v["builders"], "provenance.builders", false));
  }
  if (v.contains("source_repositories")) {
    ASSIGN_OR_RETURN(rule.source_repositories,
                     StringList(v["source_repositories"], "provenance.source_repositories", false));
  }
  if (v.contains("dataset_digests_registered")) {
    ASSIGN_OR_RETURN(rule.dataset_digests_registered,
                     Bool(v["dataset_digests_registered"], "provenance.dataset_digests_registered"));
  }
  if (v.contains("subjects_match_files")) {
    ASSIGN_OR_RETURN(rule.subjects_match_files,
                     Bool(v["subjects_match_files"], "provenance.subjects_match_files"));
  }
  if (v.contains("commit")) {
    const Json& c = v["commit"];
    RETURN_IF_ERROR(CheckKeys(c, "provenance.commit", {"branches", "signed", "signers"}));
    CommitRule commit;
    if (c.contains("branches")) {
      ASSIGN_OR_RETURN(commit.branches, StringList(c["branches"], "provenance.commit.branches", false));
    }
    if (c.contains("signed")) {
      ASSIGN_OR_RETURN(commit.signed_commit, Bool(c["signed"], "provenance.commit.signed"));
    }
    if (c.contains("signers")) {
      ASSIGN_OR_RETURN(commit.signers, StringList(c["signers"], "provenance.commit.signers", false));
      for (size_t i = 0; i < commit.signers.size(); ++i) {
        RETURN_IF_ERROR(CheckSshPublicKey(
            commit.signers[i], "provenance.commit.signers[" + std::to_string(i) + "]"));
      }
      if (!commit.signed_commit) {
        return Invalid("provenance.commit.signers", "needs \"signed\": true");
      }
    }
    rule.commit = std::move(commit);
  }
  return rule;
}

Result<EvaluationRule> ParseEvaluation(const Json& v) {
  RETURN_IF_ERROR(
      CheckKeys(v, "evaluation", {"spec_digest", "thresholds", "max_regression_vs_current"}));
  EvaluationRule rule;
  if (v.contains("spec_digest")) {
    ASSIGN_OR_RETURN(std::string s, String(v["spec_digest"], "evaluation.spec_digest"));
    auto d = core::Digest::Parse(s);
    if (!d.ok()) return Invalid("evaluation.spec_digest", "must be sha256:<64 hex>");
    rule.spec_digest = *d;
  }
  if (v.contains("thresholds")) {
    const Json& t = v["thresholds"];
    RETURN_IF_ERROR(RequireObject(t, "evaluation.thresholds"));
    if (t.size() > kMaxListEntries) return Invalid("evaluation.thresholds", "has more than 256 entries");
    for (const auto& [metric, bounds] : t.items()) {
      std::string path = "evaluation.thresholds." + metric;
      RETURN_IF_ERROR(CheckKeys(bounds, path, {"min", "max"}));
      MetricBounds b;
      if (bounds.contains("min")) { ASSIGN_OR_RETURN(b.min, Number(bounds["min"], path + ".min")); }
      if (bounds.contains("max")) { ASSIGN_OR_RETURN(b.max, Number(bounds["max"], path + ".max")); }
      if (!b.min && !b.max) return Invalid(path, "must have min or max");
      if (b.min && b.max && *b.min > *b.max) return Invalid(path, "has min above max");
      rule.thresholds[metric] = b;
    }
  }
  if (v.contains("max_regression_vs_current")) {
    const Json& r = v["max_regression_vs_current"];
    RETURN_IF_ERROR(RequireObject(r, "evaluation.max_regression_vs_current"));
    if (r.size() > kMaxListEntries) {
      return Invalid("evaluation.max_regression_vs_current", "has more than 256 entries");
    }
    for (const auto& [metric, x] : r.items()) {
      std::string path = "evaluation.max_regression_vs_current." + metric;
      ASSIGN_OR_RETURN(double d, Number(x, path));
      if (d < 0) return Invalid(path, "must not be negative");
      rule.max_regression_vs_current[metric] = d;
    }
  }
  return rule;
}

Result<ResidencyRule> ParseResidency(const Json& v) {
  RETURN_IF_ERROR(CheckKeys(v, "residency", {"store", "pull", "export", "classification"}));
  ResidencyRule rule;
  if (v.contains("store")) { ASSIGN_OR_RETURN(rule.store, StringList(v["store"], "residency.store", true)); }
  if (v.contains("pull")) { ASSIGN_OR_RETURN(rule.pull, StringList(v["pull"], "residency.pull", true)); }
  if (v.contains("export")) {
    ASSIGN_OR_RETURN(rule.export_to, StringList(v["export"], "residency.export", true));
  }
  if (v.contains("classification")) {
    ASSIGN_OR_RETURN(rule.classification, String(v["classification"], "residency.classification"));
  }
  return rule;
}

// nlohmann keeps the last of duplicate keys; a policy with two "scan" rules
// would read differently to a reviewer than to sigil, so refuse it.
Status CheckNoDuplicateKeys(std::string_view text) {
  std::vector<std::set<std::string>> open;
  std::string duplicate;
  auto callback = [&](int, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) {
      open.emplace_back();
    } else if (event == Json::parse_event_t::object_end) {
      if (!open.empty()) open.pop_back();
    } else if (event == Json::parse_event_t::key && !open.empty() && parsed.is_string()) {
      if (!open.back().insert(parsed.get<std::string>()).second && duplicate.empty()) {
        duplicate = parsed.get<std::string>();
      }
    }
    return true;
  };
  try {
    Json discarded = Json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/false);
    if (discarded.is_discarded()) {
      return core::InvalidArgument("policy document is not valid JSON", "POLICY_INVALID");
    }
  } catch (const std::exception&) {
    return core::InvalidArgument("policy document is not valid JSON", "POLICY_INVALID");
  }
  if (!duplicate.empty()) return Invalid(duplicate, "appears twice in one object");
  return core::OkStatus();
}

}  // namespace

std::optional<scanner::Severity> ParseSeverity(std::string_view name) {
  for (auto s : {scanner::Severity::kInfo, scanner::Severity::kLow, scanner::Severity::kMedium,
                 scanner::Severity::kHigh, scanner::Severity::kCritical}) {
    if (scanner::SeverityName(s) == name) return s;
  }
  return std::nullopt;
}

core::Result<Policy> ParsePolicy(std::string_view text) {
  if (text.size() > kMaxPolicyBytes) {
    return core::InvalidArgument("policy document is larger than 65536 bytes", "POLICY_INVALID");
  }
  auto parsed = core::ParseJson(text, core::JsonLimits{kMaxPolicyBytes, kMaxPolicyDepth});
  if (!parsed.ok()) {
    return core::InvalidArgument("policy document: " + parsed.status().message(), "POLICY_INVALID");
  }
  RETURN_IF_ERROR(CheckNoDuplicateKeys(text));
  const Json& doc = *parsed;
  RETURN_IF_ERROR(CheckKeys(doc, "",
                            {"name", "repositories", "stages", "signatures", "attestations",
                             "provenance", "scan", "evaluation", "residency", "freshness"}));
  Policy policy;
  if (!doc.contains("name")) return Invalid("name", "is required");
  ASSIGN_OR_RETURN(policy.name, String(doc["name"], "name"));
  if (!doc.contains("repositories")) return Invalid("repositories", "is required");
  ASSIGN_OR_RETURN(policy.repositories, StringList(doc["repositories"], "repositories", false));
  if (doc.contains("stages")) {
    ASSIGN_OR_RETURN(policy.stages, StringList(doc["stages"], "stages", false));
  }
  if (doc.contains("signatures")) {
    ASSIGN_OR_RETURN(policy.signatures, ParseSignatures(doc["signatures"]));
  }
  if (doc.contains("attestations")) {
    ASSIGN_OR_RETURN(policy.attestations, ParseAttestations(doc["attestations"]));
  }
  if (doc.contains("provenance")) {
    ASSIGN_OR_RETURN(policy.provenance, ParseProvenance(doc["provenance"]));
  }
  if (doc.contains("scan")) {
    const Json& s = doc["scan"];
    RETURN_IF_ERROR(CheckKeys(s, "scan", {"max_severity"}));
    if (!s.contains("max_severity")) return Invalid("scan.max_severity", "is required");
    ASSIGN_OR_RETURN(std::string name, String(s["max_severity"], "scan.max_severity"));
    auto sev = ParseSeverity(name);
    if (!sev) return Invalid("scan.max_severity", "must be info, low, medium, high or critical");
    policy.scan = ScanRule{*sev};
  }
  if (doc.contains("evaluation")) {
    ASSIGN_OR_RETURN(policy.evaluation, ParseEvaluation(doc["evaluation"]));
  }
  if (doc.contains("residency")) {
    ASSIGN_OR_RETURN(policy.residency, ParseResidency(doc["residency"]));
  }
  if (doc.contains("freshness")) {
    const Json& f = doc["freshness"];
    RETURN_IF_ERROR(CheckKeys(f, "freshness", {"max_age_days"}));
    if (!f.contains("max_age_days")) return Invalid("freshness.max_age_days", "is required");
    const Json& d = f["max_age_days"];
    if (!d.is_number_integer() || d.get<int64_t>() < 1 || d.get<int64_t>() > 36500) {
      return Invalid("freshness.max_age_days", "must be an integer from 1 to 36500");
    }
    policy.freshness = FreshnessRule{d.get<int64_t>()};
  }
  policy.digest = core::Sha256::Of(text);
  return policy;
}

nlohmann::json PolicyToJson(const Policy& p) {
  Json j = {{"name", p.name}, {"repositories", p.repositories}};
  if (!p.stages.empty()) j["stages"] = p.stages;
  if (p.signatures) {
    Json s = Json::object();
    if (!p.signatures->keys.empty()) s["keys"] = p.signatures->keys;
    if (!p.signatures->roles.empty()) s["roles"] = p.signatures->roles;
    if (p.signatures->of != 0) {
      s["threshold"] =
          std::to_string(p.signatures->threshold) + " of " + std::to_string(p.signatures->of);
    } else {
      s["threshold"] = p.signatures->threshold;
    }
    j["signatures"] = s;
  }
  if (!p.attestations.empty()) {
    Json a = Json::array();
    for (const auto& r : p.attestations) {
      Json e = {{"predicate_type", r.predicate_type}};
      if (!r.keys.empty()) e["keys"] = r.keys;
      a.push_back(e);
    }
    j["attestations"] = a;
  }
  if (p.provenance) {
    const auto& r = *p.provenance;
    Json e = {{"dataset_digests_registered", r.dataset_digests_registered},
              {"subjects_match_files", r.subjects_match_files}};
    if (!r.builders.empty()) e["builders"] = r.builders;
    if (!r.source_repositories.empty()) e["source_repositories"] = r.source_repositories;
    if (r.commit) {
      Json c = {{"signed", r.commit->signed_commit}};
      if (!r.commit->branches.empty()) c["branches"] = r.commit->branches;
      if (!r.commit->signers.empty()) c["signers"] = r.commit->signers;
      e["commit"] = c;
    }
    j["provenance"] = e;
  }
  if (p.scan) j["scan"] = {{"max_severity", scanner::SeverityName(p.scan->max_severity)}};
  if (p.evaluation) {
    const auto& r = *p.evaluation;
    Json e = Json::object();
    if (r.spec_digest) e["spec_digest"] = r.spec_digest->ToString();
    if (!r.thresholds.empty()) {
      Json t = Json::object();
      for (const auto& [metric, b] : r.thresholds) {
        Json m = Json::object();
        if (b.min) m["min"] = *b.min;
        if (b.max) m["max"] = *b.max;
        t[metric] = m;
      }
      e["thresholds"] = t;
    }
    if (!r.max_regression_vs_current.empty()) {
      e["max_regression_vs_current"] = r.max_regression_vs_current;
    }
    j["evaluation"] = e;
  }
  if (p.residency) {
    const auto& r = *p.residency;
    Json e = Json::object();
    if (r.store) e["store"] = *r.store;
    if (r.pull) e["pull"] = *r.pull;
    if (r.export_to) e["export"] = *r.export_to;
    if (!r.classification.empty()) e["classification"] = r.classification;
    j["residency"] = e;
  }
  if (p.freshness) j["freshness"] = {{"max_age_days", p.freshness->max_age_days}};
  return j;
}

SshPublicKeyText SplitSshPublicKey(std::string_view text) {
  auto is_space = [](char c) { return c == ' ' || c == '\t'; };
  auto token = [&](std::string_view& s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    size_t n = 0;
    while (n < s.size() && !is_space(s[n])) ++n;
    std::string out(s.substr(0, n));
    s.remove_prefix(n);
    return out;
  };
  SshPublicKeyText key;
  key.type = token(text);
  key.base64 = token(text);
  return key;
}

bool CoversRepository(const Policy& policy, std::string_view repository) {
  for (const auto& g : policy.repositories) {
    if (signing::GlobMatch(g, repository)) return true;
  }
  return false;
}

bool CoversStage(const Policy& policy, std::string_view stage) {
  if (policy.stages.empty()) return true;
  for (const auto& s : policy.stages) {
    if (s == stage) return true;
  }
  return false;
}

}  // namespace sigil::policies
