#include "registry/policy_store.h"

#include <algorithm>
#include <map>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/json.h"
#include "registry/access.h"
#include "registry/internal/keys.h"

namespace sigil::registry {
namespace {

using core::Json;

constexpr std::string_view kMetaCf = "meta";
constexpr size_t kMaxNameChars = 64;

std::string PolicyPrefix() { return internal::JoinKey({"policy", ""}); }
std::string NamePrefix(std::string_view name) { return internal::JoinKey({"policy", name, ""}); }

std::string Hex16(uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) out[i] = kDigits[v & 0xf];
  return out;
}

std::string VersionKey(std::string_view name, uint64_t version) {
  return internal::JoinKey({"policy", name, Hex16(version)});
}

bool IsNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// Names appear in keys and in URL paths (/api/v1/policies/{name}).
core::Status CheckName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameChars || !std::all_of(name.begin(), name.end(), IsNameChar) ||
      name == "." || name == "..") {
    return core::InvalidArgument(
        "policy field 'name' must be 1 to 64 characters of A-Z a-z 0-9 . _ - (not . or ..)", "POLICY_INVALID");
  }
  return core::OkStatus();
}

core::Status Unknown(std::string_view name) {
  return core::NotFound("no policy named '" + std::string(name) + "'", "POLICY_UNKNOWN");
}

core::Status Corrupt(std::string_view key, const std::string& why) {
  std::string printable(key);
  std::replace(printable.begin(), printable.end(), '\0', '/');
  return core::DataLoss("corrupt policy record " + printable + ": " + why);
}

// key: policy\0<name>\0<16 hex>.
core::Result<PolicyRecord> Decode(std::string_view key, std::string_view value) {
  std::string_view rest = key.substr(PolicyPrefix().size());
  size_t sep = rest.find('\0');
  if (sep == std::string_view::npos || rest.size() - sep - 1 != 16) return Corrupt(key, "malformed key");
  PolicyRecord r;
  r.name = std::string(rest.substr(0, sep));
  for (char c : rest.substr(sep + 1)) {
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return Corrupt(key, "malformed version");
    r.version = r.version * 16 + static_cast<uint64_t>(d);
  }
  auto parsed = core::ParseJson(value);
  if (!parsed.ok() || !parsed->is_object()) return Corrupt(key, "not a JSON object");
  const Json& o = *parsed;
  auto digest = core::GetString(o, "digest");
  auto created = core::GetInt(o, "created");
  auto by = core::GetString(o, "by");
  if (!o.contains("document") || !o["document"].is_string() || !digest.ok() || !created.ok() || !by.ok()) {
    return Corrupt(key, "missing fields");
  }
  r.created_micros = *created;
  r.created_by = *by;
  r.deleted = o.contains("deleted") && o["deleted"].is_boolean() && o["deleted"].get<bool>();
  r.document = o["document"].get<std::string>();
  auto d = core::Digest::Parse(*digest);
  if (!d.ok()) return Corrupt(key, "malformed digest");
  r.digest = *d;
  if (!r.deleted) {
    auto policy = policies::ParsePolicy(r.document);
    if (!policy.ok()) return Corrupt(key, "the document no longer parses: " + policy.status().message());
    if (policy->digest != r.digest || policy->name != r.name) return Corrupt(key, "digest or name mismatch");
    r.policy = std::move(*policy);
  }
  return r;
}

std::string Encode(const PolicyRecord& r) {
  Json o = {{"digest", r.digest.ToString()},
            {"created", r.created_micros},
            {"by", r.created_by},
            {"document", r.document}};
  if (r.deleted) o["deleted"] = true;
  return core::DumpJson(o);
}

std::string CallerName() {
  const Principal* p = PrincipalScope::Current();
  return p != nullptr ? p->name : "server";
}

bool StatesResidency(const policies::Policy& p, policies::Action action) {
  if (!p.residency) return false;
  switch (action) {
    case policies::Action::kStore: return p.residency->store.has_value();
    case policies::Action::kPull: return p.residency->pull.has_value();
    case policies::Action::kExport: return p.residency->export_to.has_value();
    case policies::Action::kPromote: return false;
  }
  return false;
}

}  // namespace

core::Result<std::vector<PolicyRecord>> PolicyStore::ScanVersions(std::string_view prefix) {
  if (options_.meta == nullptr) return core::FailedPrecondition("the policy store has no metadata store");
  std::vector<PolicyRecord> out;
  core::Status bad;
  RETURN_IF_ERROR(options_.meta->Scan(kMetaCf, prefix, [&](std::string_view key, std::string_view value) {
    auto r = Decode(key, value);
    if (!r.ok()) {
      bad = r.status();
      return false;
    }
    out.push_back(std::move(*r));
    return true;
  }));
  RETURN_IF_ERROR(bad);
  return out;
}

core::Result<std::optional<PolicyRecord>> PolicyStore::Latest(std::string_view name) {
  ASSIGN_OR_RETURN(std::vector<PolicyRecord> all, ScanVersions(NamePrefix(name)));
  if (all.empty()) return std::optional<PolicyRecord>();
  return std::optional<PolicyRecord>(std::move(all.back()));
}

core::Status PolicyStore::Append(PolicyRecord record) {
  storage::WriteBatch batch;
  batch.Put(kMetaCf, VersionKey(record.name, record.version), Encode(record));
  RETURN_IF_ERROR(options_.meta->Write(batch));
  std::lock_guard<std::mutex> lock(cache_mu_);
  in_force_.reset();
  return core::OkStatus();
}

core::Result<PolicyStore::PutResult> PolicyStore::Put(std::string_view document) {
  RETURN_IF_ERROR(RequireAccess(Action::kAdmin, ""));
  ASSIGN_OR_RETURN(policies::Policy policy, policies::ParsePolicy(document));
  RETURN_IF_ERROR(CheckName(policy.name));
  std::lock_guard<std::mutex> lock(put_mu_);
  ASSIGN_OR_RETURN(std::optional<PolicyRecord> latest, Latest(policy.name));
  if (latest && !latest->deleted && latest->document == document) {
    return PutResult{std::move(*latest), false};
  }
  PolicyRecord r;
  r.name = policy.name;
  r.version = latest ? latest->version + 1 : 1;
  r.digest = policy.digest;
  r.created_micros = options_.clock->NowMicros();
  r.created_by = CallerName();
  r.document = std::string(document);
  r.policy = std::move(policy);
  RETURN_IF_ERROR(Append(r));
  return PutResult{std::move(r), true};
}

core::Result<PolicyRecord> PolicyStore::Get(std::string_view name, uint64_t version) {
  if (!CheckName(name).ok()) return Unknown(name);
  if (version == 0) {
    ASSIGN_OR_RETURN(std::optional<PolicyRecord> latest, Latest(name));
    if (!latest || latest->deleted) return Unknown(name);
    return std::move(*latest);
  }
  if (options_.meta == nullptr) return core::FailedPrecondition("the policy store has no metadata store");
  std::string key = VersionKey(name, version);
  auto value = options_.meta->Get(kMetaCf, key);
  if (!value.ok()) {
    if (value.status().code() == core::Code::kNotFound) {
      return core::NotFound("policy '" + std::string(name) + "' has no version " + std::to_string(version),
                            "POLICY_UNKNOWN");
    }
    return value.status();
  }
  return Decode(key, *value);
}

core::Result<std::vector<PolicyRecord>> PolicyStore::List() {
  ASSIGN_OR_RETURN(auto in_force, InForce());
  return *in_force;
}

core::Result<std::vector<PolicyRecord>> PolicyStore::History(std::string_view name) {
  if (!CheckName(name).ok()) return Unknown(name);
  ASSIGN_OR_RETURN(std::vector<PolicyRecord> all, ScanVersions(NamePrefix(name)));
  if (all.empty()) return Unknown(name);
  return all;
}

core::Status PolicyStore::Delete(std::string_view name) {
  RETURN_IF_ERROR(RequireAccess(Action::kAdmin, ""));
  if (!CheckName(name).ok()) return Unknown(name);
  std::lock_guard<std::mutex> lock(put_mu_);
  ASSIGN_OR_RETURN(std::optional<PolicyRecord> latest, Latest(name));
  if (!latest || latest->deleted) return Unknown(name);
  PolicyRecord r;
  r.name = std::string(name);
  r.version = latest->version + 1;
  r.digest = core::Sha256::Of("");
  r.created_micros = options_.clock->NowMicros();
  r.created_by = CallerName();
  r.deleted = true;
  return Append(std::move(r));
}

core::Result<std::shared_ptr<const std::vector<PolicyRecord>>> PolicyStore::InForce() {
  // Loading under the lock: a write that lands meanwhile resets the cache
  // only after this load stored it, so a stale list never outlives a write.
  std::lock_guard<std::mutex> lock(cache_mu_);
  if (in_force_) return in_force_;
  ASSIGN_OR_RETURN(std::vector<PolicyRecord> all, ScanVersions(PolicyPrefix()));
  // Keys sort by name, then version: the last record of a name is its latest.
  std::map<std::string, PolicyRecord> latest;
  for (PolicyRecord& r : all) latest[r.name] = std::move(r);
  auto live = std::make_shared<std::vector<PolicyRecord>>();
  for (auto& [name, r] : latest) {
    if (!r.deleted) live->push_back(std::move(r));
  }
  in_force_ = live;
  return in_force_;
}

core::Result<std::vector<PolicyRecord>> PolicyStore::Applicable(std::string_view repository,
                                                                std::optional<std::string_view> stage) {
  ASSIGN_OR_RETURN(auto in_force, InForce());
  std::vector<PolicyRecord> out;
  for (const PolicyRecord& r : *in_force) {
    if (!policies::CoversRepository(r.policy, repository)) continue;
    if (stage && !policies::CoversStage(r.policy, *stage)) continue;
    out.push_back(r);
  }
  return out;
}

core::Result<bool> PolicyStore::RestrictsResidency(policies::Action action) {
  ASSIGN_OR_RETURN(auto in_force, InForce());
  for (const PolicyRecord& r : *in_force) {
    if (StatesResidency(r.policy, action)) return true;
  }
  return false;
}

core::Status PolicyStore::CheckResidency(std::string_view repository, const policies::Context& context) {
  if (context.action == policies::Action::kPromote) {
    return core::InvalidArgument("CheckResidency is for store, pull and export");
  }
  ASSIGN_OR_RETURN(auto in_force, InForce());
  policies::Evidence evidence;
  evidence.repository = std::string(repository);
  Json decisions = Json::array();
  std::string message;
  for (const PolicyRecord& r : *in_force) {
    if (!StatesResidency(r.policy, context.action) || !policies::CoversRepository(r.policy, repository)) {
      continue;
    }
    policies::Decision d = policies::Evaluate(r.policy, evidence, context);
    decisions.push_back(policies::DecisionToJson(d));
    if (d.passed || !message.empty()) continue;
    for (const policies::RuleResult& rule : d.rules) {
      if (rule.passed) continue;
      message = "policy " + r.name + ": " + rule.rule + ": " + rule.reason;
      break;
    }
  }
  if (message.empty()) return core::OkStatus();
  if (context.action != policies::Action::kExport && context.site.empty() && !context.token_name.empty()) {
    message += context.token_name == "anonymous" ? " (an anonymous caller has no site)"
                                                 : " (token " + context.token_name + " has no site)";
  }
  return core::PermissionDenied(message, "RESIDENCY_DENIED")
      .WithDetail(core::DumpJson(Json{{"decisions", decisions}}));
}

}  // namespace sigil::registry
