#include "registry/access.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/digest.h"
#include "core/json.h"
#include "core/random.h"
#include "registry/internal/constant_time.h"
#include "registry/internal/keys.h"
#include "signing/base64.h"
#include "signing/trust_store.h"

namespace sigil::registry {

namespace internal {

std::atomic<uint64_t> token_hash_comparisons{0};

// The hashes are always 32 bytes. registry may not include OpenSSL for
// CRYPTO_memcmp.
bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  token_hash_comparisons.fetch_add(1, std::memory_order_relaxed);
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  // The volatile read keeps the compiler from turning the loop into an early exit.
  volatile unsigned char result = diff;
  return result == 0;
}

}  // namespace internal

namespace {

using core::Json;

constexpr std::string_view kMetaCf = "meta";
constexpr std::string_view kAuditCf = "audit";
constexpr std::string_view kTokenPrefix = "sgl_";
constexpr size_t kIdChars = 16;
constexpr size_t kSecretBytes = 32;
constexpr size_t kSecretChars = 43;  // base64url of 32 bytes, unpadded
constexpr size_t kTokenChars = kTokenPrefix.size() + kIdChars + 1 + kSecretChars;
constexpr size_t kMaxNameChars = 64;
constexpr size_t kMaxGlobs = 64;
constexpr size_t kMaxGlobChars = 255;
constexpr size_t kMaxPlaceChars = 64;
// Audit fields come from requests; bounded so an entry always fits a log leaf.
constexpr size_t kMaxAuditField = 1024;
constexpr int64_t kLastUsedEveryMicros = 60ll * 1'000'000;

std::string TokenKey(std::string_view id) { return internal::JoinKey({"token", id}); }
std::string TokenPrefix() { return internal::JoinKey({"token", ""}); }

std::string Hex16(uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) out[i] = kDigits[v & 0xf];
  return out;
}

core::Status TokenInvalid(std::string message) {
  return core::InvalidArgument(std::move(message), "TOKEN_INVALID");
}
// The one answer for every token that does not verify, whatever the cause.
core::Status NotAToken() { return core::Unauthenticated("invalid token", "TOKEN_INVALID"); }
core::Status CorruptToken(std::string_view id, const std::string& why) {
  return core::DataLoss("corrupt token record " + std::string(id) + ": " + why);
}

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool IsBase64Url(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}
bool IsNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}
// Repository name characters plus the glob operators.
bool IsGlobChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == '/' ||
         c == '*' || c == '?';
}

struct TokenParts {
  std::string_view id;
  std::string_view secret;
};

// "sgl_<16 lowercase hex>_<43 base64url>", the last character carrying no
// stray bits (so one secret has exactly one spelling).
std::optional<TokenParts> SplitToken(std::string_view text) {
  if (text.size() != kTokenChars || !text.starts_with(kTokenPrefix)) return std::nullopt;
  std::string_view id = text.substr(kTokenPrefix.size(), kIdChars);
  if (text[kTokenPrefix.size() + kIdChars] != '_') return std::nullopt;
  std::string_view secret = text.substr(kTokenPrefix.size() + kIdChars + 1);
  if (!std::all_of(id.begin(), id.end(), IsLowerHex)) return std::nullopt;
  if (!std::all_of(secret.begin(), secret.end(), IsBase64Url)) return std::nullopt;
  auto bytes = signing::Base64Decode(secret);
  if (!bytes.ok() || bytes->size() != kSecretBytes) return std::nullopt;
  return TokenParts{id, secret};
}

std::string Base64Url(std::string_view bytes) {
  std::string out = signing::Base64Encode(bytes);
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

std::string SecretHashBytes(std::string_view secret) {
  core::Digest d = core::Sha256::Of(secret);
  return std::string(reinterpret_cast<const char*>(d.bytes().data()), d.bytes().size());
}

bool Live(const TokenRecord& r, int64_t now) {
  return r.revoked_micros == 0 && (r.expires_micros == 0 || now < r.expires_micros);
}

std::string RecordToText(const TokenRecord& r) {
  return core::DumpJson({{"id", r.id},
                         {"name", r.name},
                         {"role", RoleName(r.role)},
                         {"repos", r.repos},
                         {"site", r.site},
                         {"region", r.region},
                         {"created", r.created_micros},
                         {"expires", r.expires_micros},
                         {"revoked", r.revoked_micros},
                         {"last_used", r.last_used_micros},
                         {"created_by", r.created_by},
                         {"hash", r.hash_hex}});
}

core::Result<TokenRecord> RecordFromText(std::string_view id, std::string_view text) {
  auto j = core::ParseJson(text);
  if (!j.ok()) return CorruptToken(id, j.status().message());
  if (!j->is_object()) return CorruptToken(id, "not an object");
  TokenRecord r;
  auto str = [&](std::string_view field, std::string* out) -> core::Status {
    auto v = core::GetString(*j, field);
    if (!v.ok()) return CorruptToken(id, v.status().message());
    *out = std::move(v).value();
    return core::OkStatus();
  };
  auto num = [&](std::string_view field, int64_t* out) -> core::Status {
    auto v = core::GetInt(*j, field);
    if (!v.ok()) return CorruptToken(id, v.status().message());
    *out = *v;
    return core::OkStatus();
  };
  std::string role;
  RETURN_IF_ERROR(str("id", &r.id));
  RETURN_IF_ERROR(str("name", &r.name));
  RETURN_IF_ERROR(str("role", &role));
  RETURN_IF_ERROR(str("site", &r.site));
  RETURN_IF_ERROR(str("region", &r.region));
  RETURN_IF_ERROR(num("created", &r.created_micros));
  RETURN_IF_ERROR(num("expires", &r.expires_micros));
  RETURN_IF_ERROR(num("revoked", &r.revoked_micros));
  RETURN_IF_ERROR(num("last_used", &r.last_used_micros));
  RETURN_IF_ERROR(str("created_by", &r.created_by));
  RETURN_IF_ERROR(str("hash", &r.hash_hex));
  auto parsed_role = ParseRole(role);
  if (!parsed_role.ok()) return CorruptToken(id, parsed_role.status().message());
  r.role = *parsed_role;
  auto repos = j->find("repos");
  if (repos == j->end() || !repos->is_array()) return CorruptToken(id, "'repos' is not an array");
  for (const Json& g : *repos) {
    if (!g.is_string()) return CorruptToken(id, "'repos' holds a non-string");
    r.repos.push_back(g.get<std::string>());
  }
  if (r.id != id) return CorruptToken(id, "the record names id " + r.id);
  if (r.hash_hex.size() != 2 * kSecretBytes || !core::HexDecode(r.hash_hex).ok()) {
    return CorruptToken(id, "bad hash");
  }
  return r;
}

core::Status ValidateSpec(const NewToken& spec, int64_t now) {
  if (spec.name.empty() || spec.name.size() > kMaxNameChars ||
      !std::all_of(spec.name.begin(), spec.name.end(), IsNameChar)) {
    return TokenInvalid("token name '" + spec.name + "' must be 1 to 64 of [A-Za-z0-9._-]");
  }
  if (spec.repos.empty()) return TokenInvalid("token " + spec.name + " names no repository glob");
  if (spec.repos.size() > kMaxGlobs) {
    return TokenInvalid("token " + spec.name + " names more than " + std::to_string(kMaxGlobs) + " globs");
  }
  for (const std::string& g : spec.repos) {
    if (g.empty() || g.size() > kMaxGlobChars || !std::all_of(g.begin(), g.end(), IsGlobChar)) {
      return TokenInvalid("repository glob '" + g +
                          "' must be 1 to 255 of lowercase letters, digits, '._-/' and '*', '?'");
    }
  }
  auto check_place = [](std::string_view field, const std::string& value) {
    if (value.size() <= kMaxPlaceChars && std::all_of(value.begin(), value.end(), IsNameChar)) {
      return core::OkStatus();
    }
    return TokenInvalid("token " + std::string(field) + " '" + value +
                        "' must be at most 64 of [A-Za-z0-9._-]");
  };
  RETURN_IF_ERROR(check_place("site", spec.site));
  RETURN_IF_ERROR(check_place("region", spec.region));
  if (spec.expires_micros < 0 || (spec.expires_micros != 0 && spec.expires_micros <= now)) {
    return TokenInvalid("token " + spec.name + " would expire at " +
                        core::FormatRfc3339(spec.expires_micros) + ", which is not in the future");
  }
  return core::OkStatus();
}

std::string_view Verb(Action action) {
  switch (action) {
    case Action::kPull:
      return "pull";
    case Action::kPush:
      return "push";
    case Action::kPromote:
      return "promote";
    case Action::kDelete:
      return "delete";
    case Action::kAdmin:
      return "administer";
    case Action::kAuditRead:
      return "read the audit log";
  }
  return "act";
}

std::string_view Gerund(Action action) {
  switch (action) {
    case Action::kPull:
      return "pulling";
    case Action::kPush:
      return "pushing";
    case Action::kPromote:
      return "promoting";
    case Action::kDelete:
      return "deleting";
    case Action::kAdmin:
      return "administration";
    case Action::kAuditRead:
      return "reading the audit log";
  }
  return "acting";
}

std::string Clip(std::string s) {
  if (s.size() > kMaxAuditField) s.resize(kMaxAuditField);
  return s;
}

Json Rfc3339OrNull(int64_t micros) { return micros == 0 ? Json(nullptr) : Json(core::FormatRfc3339(micros)); }

core::Result<AuditEntry> AuditFromText(std::string_view key, std::string_view text) {
  auto corrupt = [&](const std::string& why) {
    return core::DataLoss("corrupt audit record " + core::HexEncode(key.data(), key.size()) + ": " + why);
  };
  auto j = core::ParseJson(text);
  if (!j.ok()) return corrupt(j.status().message());
  if (!j->is_object()) return corrupt("not an object");
  AuditEntry e;
  for (auto [field, out] : {std::pair<const char*, std::string*>{"token", &e.token},
                            {"role", &e.role},
                            {"site", &e.site},
                            {"action", &e.action},
                            {"method", &e.method},
                            {"target", &e.target},
                            {"repository", &e.repository},
                            {"result", &e.result},
                            {"reason", &e.reason}}) {
    auto v = core::GetString(*j, field);
    if (!v.ok()) return corrupt(v.status().message());
    *out = std::move(v).value();
  }
  auto time = core::GetInt(*j, "time_micros");
  if (!time.ok()) return corrupt(time.status().message());
  e.time_micros = *time;
  auto status = core::GetInt(*j, "status");
  if (!status.ok()) return corrupt(status.status().message());
  e.status = static_cast<int>(*status);
  auto index = core::GetUint(*j, "log_index");
  if (!index.ok()) return corrupt(index.status().message());
  e.log_index = *index;
  return e;
}

thread_local const PrincipalScope* current_scope = nullptr;

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kReader:
      return "reader";
    case Role::kPusher:
      return "pusher";
    case Role::kPromoter:
      return "promoter";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

core::Result<Role> ParseRole(std::string_view name) {
  for (Role r : {Role::kReader, Role::kPusher, Role::kPromoter, Role::kAdmin}) {
    if (RoleName(r) == name) return r;
  }
  return core::InvalidArgument("unknown role '" + std::string(name) + "' (reader, pusher, promoter or admin)",
                               "ROLE_INVALID");
}

std::string_view ActionName(Action action) {
  switch (action) {
    case Action::kPull:
      return "pull";
    case Action::kPush:
      return "push";
    case Action::kPromote:
      return "promote";
    case Action::kDelete:
      return "delete";
    case Action::kAdmin:
      return "admin";
    case Action::kAuditRead:
      return "audit-read";
  }
  return "unknown";
}

Role RequiredRole(Action action) {
  switch (action) {
    case Action::kPull:
      return Role::kReader;
    case Action::kPush:
      return Role::kPusher;
    case Action::kPromote:
      return Role::kPromoter;
    case Action::kDelete:
    case Action::kAdmin:
    case Action::kAuditRead:
      return Role::kAdmin;
  }
  return Role::kAdmin;
}

core::Status Authorize(const Principal& principal, Action action, std::string_view repo,
                       bool anonymous_read) {
  if (principal.anonymous) {
    if (action == Action::kPull && anonymous_read) return core::OkStatus();
    std::string what(Verb(action));
    if (!repo.empty()) what += (action == Action::kPull ? " " : " on ") + std::string(repo);
    return core::Unauthenticated("a token is needed to " + what, "AUTHENTICATION_REQUIRED");
  }
  Role needed = RequiredRole(action);
  if (principal.role < needed) {
    return core::PermissionDenied("token " + principal.name + " (" + std::string(RoleName(principal.role)) +
                                      ") may not " + std::string(Verb(action)) + ": " +
                                      std::string(Gerund(action)) + " needs the " +
                                      std::string(RoleName(needed)) + " role",
                                  "ROLE_INSUFFICIENT");
  }
  if (repo.empty()) return core::OkStatus();
  for (const std::string& glob : principal.repos) {
    if (signing::GlobMatch(glob, repo)) return core::OkStatus();
  }
  std::string globs;
  for (const std::string& glob : principal.repos) globs += (globs.empty() ? "" : ", ") + glob;
  if (globs.empty()) globs = "no repository";
  return core::PermissionDenied(
      "token " + principal.name + " is scoped to " + globs + " and may not touch " + std::string(repo),
      "REPOSITORY_OUT_OF_SCOPE");
}

PrincipalScope::PrincipalScope(Principal principal)
    : principal_(std::move(principal)), outer_(current_scope) {
  current_scope = this;
}

PrincipalScope::~PrincipalScope() { current_scope = outer_; }

const Principal* PrincipalScope::Current() { return current_scope ? &current_scope->principal_ : nullptr; }

core::Status RequireAccess(Action action, std::string_view repo) {
  const Principal* p = PrincipalScope::Current();
  if (p == nullptr) return core::OkStatus();
  return Authorize(*p, action, repo);
}

core::Result<std::unique_ptr<AccessControl>> AccessControl::Open(AccessOptions options) {
  if (options.meta == nullptr) return core::InvalidArgument("access control: no metadata store");
  if (options.log == nullptr) return core::InvalidArgument("access control: no transparency log");
  if (options.clock == nullptr) return core::InvalidArgument("access control: no clock");
  return std::unique_ptr<AccessControl>(new AccessControl(std::move(options)));
}

core::Result<std::vector<TokenRecord>> AccessControl::LoadAll() {
  std::vector<TokenRecord> out;
  core::Status bad;
  std::string prefix = TokenPrefix();
  RETURN_IF_ERROR(options_.meta->Scan(kMetaCf, prefix, [&](std::string_view key, std::string_view value) {
    auto r = RecordFromText(key.substr(prefix.size()), value);
    if (!r.ok()) {
      bad = r.status();
      return false;
    }
    out.push_back(std::move(r).value());
    return true;
  }));
  RETURN_IF_ERROR(bad);
  return out;
}

core::Status AccessControl::CheckNameFree(std::string_view name, int64_t now) {
  ASSIGN_OR_RETURN(std::vector<TokenRecord> all, LoadAll());
  for (const TokenRecord& r : all) {
    if (r.name == name && Live(r, now)) {
      return core::AlreadyExists("a live token is already named " + std::string(name), "TOKEN_NAME_TAKEN");
    }
  }
  return core::OkStatus();
}

core::Result<TokenRecord> AccessControl::Store(TokenRecord record) {
  RETURN_IF_ERROR(options_.meta->Put(kMetaCf, TokenKey(record.id), RecordToText(record)));
  return record;
}

core::Result<CreatedToken> AccessControl::CreateToken(const NewToken& spec, std::string_view created_by) {
  int64_t now = options_.clock->NowMicros();
  RETURN_IF_ERROR(ValidateSpec(spec, now));
  std::array<unsigned char, kSecretBytes> secret_bytes;
  core::RandomBytes(secret_bytes.data(), secret_bytes.size());
  std::string secret =
      Base64Url(std::string_view(reinterpret_cast<const char*>(secret_bytes.data()), secret_bytes.size()));
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(CheckNameFree(spec.name, now));
  // 64 random bits: a clash is improbable, but a record is never overwritten.
  std::string id;
  for (;;) {
    id = core::RandomHex(kIdChars / 2);
    auto existing = options_.meta->Get(kMetaCf, TokenKey(id));
    if (existing.status().code() == core::Code::kNotFound) break;
    if (!existing.ok()) return existing.status();
  }
  TokenRecord r;
  r.id = id;
  r.name = spec.name;
  r.role = spec.role;
  r.repos = spec.repos;
  r.site = spec.site;
  r.region = spec.region;
  r.created_micros = now;
  r.expires_micros = spec.expires_micros;
  r.created_by = std::string(created_by);
  r.hash_hex = core::Sha256::Of(secret).Hex();
  ASSIGN_OR_RETURN(TokenRecord stored, Store(std::move(r)));
  std::string text = std::string(kTokenPrefix) + id + "_" + secret;
  return CreatedToken{std::move(stored), std::move(text)};
}

core::Result<TokenRecord> AccessControl::ImportToken(std::string_view name, std::string_view token_text) {
  int64_t now = options_.clock->NowMicros();
  NewToken spec;
  spec.name = std::string(name);
  spec.role = Role::kAdmin;
  spec.repos = {"**"};
  RETURN_IF_ERROR(ValidateSpec(spec, now));
  auto parts = SplitToken(token_text);
  if (!parts) return TokenInvalid("the token is not of the form sgl_<16 hex>_<43 base64url>");
  std::string hash = core::Sha256::Of(parts->secret).Hex();
  std::lock_guard lock(mu_);
  auto existing = options_.meta->Get(kMetaCf, TokenKey(parts->id));
  if (existing.ok()) {
    ASSIGN_OR_RETURN(TokenRecord r, RecordFromText(parts->id, *existing));
    // The same file read again (a restart) is the same token.
    if (r.hash_hex == hash && r.name == name && Live(r, now)) return r;
    return core::AlreadyExists("a token with id " + r.id + " already exists", "TOKEN_ID_TAKEN");
  }
  if (existing.status().code() != core::Code::kNotFound) return existing.status();
  RETURN_IF_ERROR(CheckNameFree(name, now));
  TokenRecord r;
  r.id = std::string(parts->id);
  r.name = spec.name;
  r.role = spec.role;
  r.repos = spec.repos;
  r.created_micros = now;
  r.created_by = "bootstrap";
  r.hash_hex = std::move(hash);
  return Store(std::move(r));
}

core::Result<std::vector<TokenRecord>> AccessControl::ListTokens() {
  ASSIGN_OR_RETURN(std::vector<TokenRecord> all, LoadAll());
  std::sort(all.begin(), all.end(), [](const TokenRecord& a, const TokenRecord& b) {
    if (a.name != b.name) return a.name < b.name;
    return a.created_micros != b.created_micros ? a.created_micros < b.created_micros : a.id < b.id;
  });
  return all;
}

core::Result<TokenRecord> AccessControl::RevokeToken(std::string_view name_or_id) {
  int64_t now = options_.clock->NowMicros();
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(std::vector<TokenRecord> all, LoadAll());
  // An id wins over a name; of several tokens with one name (only one can
  // be live), the live one, else the newest.
  const TokenRecord* target = nullptr;
  for (const TokenRecord& r : all) {
    if (r.id == name_or_id) target = &r;
  }
  if (target == nullptr) {
    for (const TokenRecord& r : all) {
      if (r.name != name_or_id) continue;
      if (target == nullptr || Live(r, now) ||
          (!Live(*target, now) && r.created_micros > target->created_micros)) {
        target = &r;
      }
    }
  }
  if (target == nullptr) {
    return core::NotFound("no token named or with id '" + std::string(name_or_id) + "'", "TOKEN_UNKNOWN");
  }
  if (target->revoked_micros != 0) return *target;
  TokenRecord r = *target;
  r.revoked_micros = now;
  last_used_written_.erase(r.id);
  return Store(std::move(r));
}

core::Result<bool> AccessControl::HasAdmin() {
  int64_t now = options_.clock->NowMicros();
  ASSIGN_OR_RETURN(std::vector<TokenRecord> all, LoadAll());
  return std::any_of(all.begin(), all.end(),
                     [&](const TokenRecord& r) { return r.role == Role::kAdmin && Live(r, now); });
}

void AccessControl::NoteUse(const TokenRecord& seen, int64_t now) {
  std::lock_guard lock(mu_);
  auto it = last_used_written_.find(seen.id);
  int64_t last = it != last_used_written_.end() ? it->second : seen.last_used_micros;
  if (now - last < kLastUsedEveryMicros && now >= last) return;
  // Read again under mu_: a revocation since the caller's read must not be
  // written back.
  auto text = options_.meta->Get(kMetaCf, TokenKey(seen.id));
  if (!text.ok()) return;
  auto r = RecordFromText(seen.id, *text);
  if (!r.ok() || r->revoked_micros != 0) return;
  r->last_used_micros = now;
  // Last-used is advice: a failed write costs only its freshness.
  if (options_.meta->Put(kMetaCf, TokenKey(seen.id), RecordToText(*r)).ok())
    last_used_written_[seen.id] = now;
}

core::Result<Principal> AccessControl::Authenticate(std::string_view token_text) {
  auto parts = SplitToken(token_text);
  if (!parts) return NotAToken();
  std::string presented = SecretHashBytes(parts->secret);
  auto text = options_.meta->Get(kMetaCf, TokenKey(parts->id));
  if (!text.ok()) {
    if (text.status().code() != core::Code::kNotFound) return text.status();
    // The same hash and comparison as for a known id, so an unknown id is
    // not told apart by its cost.
    static const std::string kNoHash(kSecretBytes, '\0');
    (void)internal::ConstantTimeEqual(presented, kNoHash);
    return NotAToken();
  }
  ASSIGN_OR_RETURN(TokenRecord r, RecordFromText(parts->id, *text));
  ASSIGN_OR_RETURN(std::string stored, core::HexDecode(r.hash_hex));
  if (!internal::ConstantTimeEqual(presented, stored)) return NotAToken();
  int64_t now = options_.clock->NowMicros();
  if (r.revoked_micros != 0) {
    return core::Unauthenticated(
        "token " + r.name + " was revoked at " + core::FormatRfc3339(r.revoked_micros), "TOKEN_REVOKED");
  }
  if (r.expires_micros != 0 && now >= r.expires_micros) {
    return core::Unauthenticated("token " + r.name + " expired at " + core::FormatRfc3339(r.expires_micros),
                                 "TOKEN_EXPIRED");
  }
  NoteUse(r, now);
  Principal p;
  p.anonymous = false;
  p.token_id = r.id;
  p.name = r.name;
  p.role = r.role;
  p.repos = r.repos;
  p.site = r.site;
  p.region = r.region;
  return p;
}

core::Result<AuditEntry> AccessControl::Record(AuditEntry entry) {
  entry.time_micros = options_.clock->NowMicros();
  for (std::string* s : {&entry.token, &entry.role, &entry.site, &entry.action, &entry.method, &entry.target,
                         &entry.repository, &entry.result, &entry.reason}) {
    *s = Clip(std::move(*s));
  }
  Json leaf = AuditEntryToJson(entry);
  leaf.erase("log_index");  // the leaf's own position, not known before the append
  leaf["type"] = "sigil.audit/v1";
  auto index = options_.log->AppendWith(
      storage::WriteBatch(), core::DumpJson(leaf), [&](uint64_t index, storage::WriteBatch* batch) {
        entry.log_index = index;
        std::string key = internal::JoinKey({Hex16(static_cast<uint64_t>(entry.time_micros)), Hex16(index)});
        batch->Put(kAuditCf, key, core::DumpJson(AuditEntryToJson(entry)));
        return core::OkStatus();
      });
  if (!index.ok()) return index.status();
  entry.log_index = *index;
  return entry;
}

core::Result<std::vector<AuditEntry>> AccessControl::Query(const AuditQuery& query) {
  std::deque<AuditEntry> kept;
  if (query.limit == 0) return std::vector<AuditEntry>();
  core::Status bad;
  // Keys start with the time, so "since" is where the scan starts: a time's
  // 16 hex digits sort before every key that extends them.
  std::string start_after =
      query.since_micros > 0 ? Hex16(static_cast<uint64_t>(query.since_micros)) : std::string();
  RETURN_IF_ERROR(options_.meta->Scan(
      kAuditCf, "",
      [&](std::string_view key, std::string_view value) {
        auto e = AuditFromText(key, value);
        if (!e.ok()) {
          bad = e.status();
          return false;
        }
        if (e->time_micros < query.since_micros) return true;
        if (!query.repository.empty() && e->repository != query.repository) return true;
        if (!query.action.empty() && e->action != query.action) return true;
        kept.push_back(std::move(e).value());
        if (kept.size() > query.limit) kept.pop_front();
        return true;
      },
      start_after));
  RETURN_IF_ERROR(bad);
  return std::vector<AuditEntry>(std::make_move_iterator(kept.begin()), std::make_move_iterator(kept.end()));
}

Json TokenToJson(const TokenRecord& r) {
  return {{"id", r.id},
          {"name", r.name},
          {"role", RoleName(r.role)},
          {"repos", r.repos},
          {"site", r.site},
          {"region", r.region},
          {"created", core::FormatRfc3339(r.created_micros)},
          {"expires", Rfc3339OrNull(r.expires_micros)},
          {"revoked", Rfc3339OrNull(r.revoked_micros)},
          {"last_used", Rfc3339OrNull(r.last_used_micros)},
          {"created_by", r.created_by}};
}

Json AuditEntryToJson(const AuditEntry& e) {
  return {{"time", core::FormatRfc3339(e.time_micros)},
          {"time_micros", e.time_micros},
          {"token", e.token},
          {"role", e.role},
          {"site", e.site},
          {"action", e.action},
          {"method", e.method},
          {"target", e.target},
          {"repository", e.repository},
          {"status", e.status},
          {"result", e.result},
          {"reason", e.reason},
          {"log_index", e.log_index}};
}

}  // namespace sigil::registry
