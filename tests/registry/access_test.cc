#include "registry/access.h"

#include <atomic>
#include <cctype>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "attest/transparency_log.h"
#include "core/clock.h"
#include "core/digest.h"
#include "core/json.h"
#include "registry/attestations.h"
#include "registry/manifest.h"
#include "registry/registry.h"
#include "signing/keys.h"
#include "storage/blob_store.h"
#include "storage/meta_store.h"

#include "registry/internal/constant_time.h"

namespace sigil::registry {
namespace {

AliasMove Via(const char* via) {
  AliasMove move;
  move.via = via;
  return move;
}

constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;

void CheckError(const core::Status& s, core::Code code, const std::string& reason) {
  INFO(s.ToString());
  CHECK(s.code() == code);
  CHECK(s.reason() == reason);
}

// Fails every write while failing is set.
class FailingMetaStore : public storage::MetaStore {
 public:
  explicit FailingMetaStore(storage::MetaStore* base) : base_(base) {}
  core::Result<std::string> Get(std::string_view cf, std::string_view key) override {
    return base_->Get(cf, key);
  }
  core::Status Write(const storage::WriteBatch& batch) override {
    ++writes;
    if (failing) return core::Unavailable("injected write failure");
    return base_->Write(batch);
  }
  core::Status Scan(std::string_view cf, std::string_view prefix,
                    const std::function<bool(std::string_view, std::string_view)>& fn,
                    std::string_view start_after) override {
    return base_->Scan(cf, prefix, fn, start_after);
  }
  core::Status CheckHealth() override { return base_->CheckHealth(); }

  std::atomic<bool> failing{false};
  std::atomic<int> writes{0};

 private:
  storage::MetaStore* base_;
};

signing::PrivateKey LogKey() {
  static const signing::PrivateKey key = *signing::PrivateKey::Generate(signing::Algorithm::kEd25519);
  return key;
}

struct AccessEnv {
  AccessEnv() {
    attest::TransparencyLogOptions lo;
    lo.meta = &meta;
    lo.origin = "sigil/test.example";
    lo.key = LogKey();
    auto l = attest::TransparencyLog::Open(lo);
    REQUIRE(l.ok());
    log = std::move(l).value();
    AccessOptions o;
    o.meta = &meta;
    o.log = log.get();
    o.clock = &clock;
    auto a = AccessControl::Open(o);
    REQUIRE(a.ok());
    access = std::move(a).value();
  }

  CreatedToken Create(const std::string& name, Role role, std::vector<std::string> repos = {"**"},
                      int64_t expires = 0) {
    NewToken spec;
    spec.name = name;
    spec.role = role;
    spec.repos = std::move(repos);
    spec.expires_micros = expires;
    auto t = access->CreateToken(spec, "root");
    INFO(t.status().ToString());
    REQUIRE(t.ok());
    return std::move(t).value();
  }

  core::ManualClock clock;
  std::unique_ptr<storage::MetaStore> base = storage::NewMemoryMetaStore();
  FailingMetaStore meta{base.get()};
  std::unique_ptr<attest::TransparencyLog> log;
  std::unique_ptr<AccessControl> access;
};

Principal TokenPrincipal(const std::string& name, Role role, std::vector<std::string> repos = {"**"}) {
  Principal p;
  p.anonymous = false;
  p.token_id = "0123456789abcdef";
  p.name = name;
  p.role = role;
  p.repos = std::move(repos);
  return p;
}

Principal Anonymous() { return Principal{}; }

TEST_CASE("roles and actions have names and an order", "[access]") {
  for (Role r : {Role::kReader, Role::kPusher, Role::kPromoter, Role::kAdmin}) {
    auto parsed = ParseRole(RoleName(r));
    REQUIRE(parsed.ok());
    CHECK(*parsed == r);
  }
  CHECK(RoleName(Role::kPromoter) == "promoter");
  CheckError(ParseRole("Admin").status(), core::Code::kInvalidArgument, "ROLE_INVALID");
  CheckError(ParseRole("").status(), core::Code::kInvalidArgument, "ROLE_INVALID");
  CHECK(ActionName(Action::kAuditRead) == "audit-read");
  CHECK(ActionName(Action::kPull) == "pull");
  CHECK(RequiredRole(Action::kPull) == Role::kReader);
  CHECK(RequiredRole(Action::kPush) == Role::kPusher);
  CHECK(RequiredRole(Action::kPromote) == Role::kPromoter);
  CHECK(RequiredRole(Action::kDelete) == Role::kAdmin);
  CHECK(RequiredRole(Action::kAdmin) == Role::kAdmin);
  CHECK(RequiredRole(Action::kAuditRead) == Role::kAdmin);
}

TEST_CASE("a created token authenticates as its principal", "[access]") {
  AccessEnv env;
  NewToken spec;
  spec.name = "ci-gate";
  spec.role = Role::kPusher;
  spec.repos = {"health/*", "shared/**"};
  spec.site = "hospital-a";
  spec.region = "eu-west";
  auto created = env.access->CreateToken(spec, "root");
  REQUIRE(created.ok());
  const std::string& text = created->token;
  REQUIRE(text.size() == 64);
  CHECK(text.substr(0, 4) == "sgl_");
  CHECK(text.substr(4, 16) == created->record.id);
  CHECK(text[20] == '_');
  CHECK(created->record.name == "ci-gate");
  CHECK(created->record.created_by == "root");
  CHECK(created->record.created_micros == env.clock.NowMicros());
  // Only the hash of the secret is stored.
  CHECK(created->record.hash_hex == core::Sha256::Of(text.substr(21)).Hex());
  auto stored = env.base->Get("meta", std::string("token\0", 6) + created->record.id);
  REQUIRE(stored.ok());
  CHECK(stored->find(text.substr(21)) == std::string::npos);

  auto p = env.access->Authenticate(text);
  REQUIRE(p.ok());
  CHECK_FALSE(p->anonymous);
  CHECK(p->token_id == created->record.id);
  CHECK(p->name == "ci-gate");
  CHECK(p->role == Role::kPusher);
  CHECK(p->repos == std::vector<std::string>{"health/*", "shared/**"});
  CHECK(p->site == "hospital-a");
  CHECK(p->region == "eu-west");

  // Two tokens never share a secret or an id.
  auto other = env.Create("other", Role::kReader);
  CHECK(other.token != text);
  CHECK(other.record.id != created->record.id);
}

TEST_CASE("token specs are validated", "[access]") {
  AccessEnv env;
  auto create = [&](NewToken spec) { return env.access->CreateToken(spec, "root").status(); };
  NewToken good;
  good.name = "ok";
  CHECK(create(good).ok());

  for (std::string name : {std::string(), std::string(65, 'a'), std::string("has space"), std::string("a/b"),
                           std::string("n\0ul", 4), std::string("é")}) {
    NewToken s = good;
    s.name = name;
    CheckError(create(s), core::Code::kInvalidArgument, "TOKEN_INVALID");
  }
  NewToken s = good;
  s.name = std::string(64, 'a');
  CHECK(create(s).ok());

  for (std::vector<std::string> repos : std::vector<std::vector<std::string>>{
           {}, {""}, {"Health/*"}, {"health/*", "a b"}, {std::string(256, 'a')}}) {
    s = good;
    s.name = "globs";
    s.repos = repos;
    CheckError(create(s), core::Code::kInvalidArgument, "TOKEN_INVALID");
  }
  s = good;
  s.name = "expired";
  s.expires_micros = env.clock.NowMicros();
  CheckError(create(s), core::Code::kInvalidArgument, "TOKEN_INVALID");
  s.expires_micros = env.clock.NowMicros() + 1;
  CHECK(create(s).ok());
  s = good;
  s.name = "sited";
  s.site = "bad site";
  CheckError(create(s), core::Code::kInvalidArgument, "TOKEN_INVALID");
}

TEST_CASE("names are unique among live tokens only", "[access]") {
  AccessEnv env;
  env.Create("ci", Role::kReader);
  NewToken again;
  again.name = "ci";
  CheckError(env.access->CreateToken(again, "root").status(), core::Code::kAlreadyExists, "TOKEN_NAME_TAKEN");

  REQUIRE(env.access->RevokeToken("ci").ok());
  auto second = env.access->CreateToken(again, "root");
  REQUIRE(second.ok());

  env.Create("short", Role::kReader, {"**"}, env.clock.NowMicros() + kHour);
  NewToken short_again;
  short_again.name = "short";
  CheckError(env.access->CreateToken(short_again, "root").status(), core::Code::kAlreadyExists,
             "TOKEN_NAME_TAKEN");
  env.clock.Advance(kHour);
  CHECK(env.access->CreateToken(short_again, "root").ok());
}

TEST_CASE("tokens are listed by name without secrets", "[access]") {
  AccessEnv env;
  env.Create("zeta", Role::kReader);
  env.Create("alpha", Role::kAdmin);
  env.Create("mid", Role::kPusher);
  REQUIRE(env.access->RevokeToken("mid").ok());
  auto list = env.access->ListTokens();
  REQUIRE(list.ok());
  REQUIRE(list->size() == 3);
  CHECK((*list)[0].name == "alpha");
  CHECK((*list)[1].name == "mid");
  CHECK((*list)[1].revoked_micros == env.clock.NowMicros());
  CHECK((*list)[2].name == "zeta");

  core::Json j = TokenToJson((*list)[1]);
  CHECK(j["name"] == "mid");
  CHECK(j["role"] == "pusher");
  CHECK(j["repos"] == core::Json::array({"**"}));
  CHECK(j["created_by"] == "root");
  CHECK(j["created"] == core::FormatRfc3339(env.clock.NowMicros()));
  CHECK(j["revoked"] == core::FormatRfc3339(env.clock.NowMicros()));
  CHECK(j["expires"].is_null());
  CHECK_FALSE(j.contains("hash_hex"));
  CHECK_FALSE(j.contains("hash"));
  CHECK(core::DumpJson(j).find((*list)[1].hash_hex) == std::string::npos);
}

TEST_CASE("revocation by name or id takes effect at once", "[access]") {
  AccessEnv env;
  CreatedToken a = env.Create("a", Role::kAdmin);
  CreatedToken b = env.Create("b", Role::kReader);
  REQUIRE(env.access->Authenticate(a.token).ok());
  REQUIRE(env.access->Authenticate(b.token).ok());

  env.clock.Advance(kSecond);
  auto revoked = env.access->RevokeToken("a");
  REQUIRE(revoked.ok());
  CHECK(revoked->id == a.record.id);
  CHECK(revoked->revoked_micros == env.clock.NowMicros());
  CheckError(env.access->Authenticate(a.token).status(), core::Code::kUnauthenticated, "TOKEN_REVOKED");

  REQUIRE(env.access->RevokeToken(b.record.id).ok());
  CheckError(env.access->Authenticate(b.token).status(), core::Code::kUnauthenticated, "TOKEN_REVOKED");

  // Revoking again is harmless and keeps the first time.
  env.clock.Advance(kSecond);
  auto again = env.access->RevokeToken("a");
  REQUIRE(again.ok());
  CHECK(again->revoked_micros == env.clock.NowMicros() - kSecond);

  CheckError(env.access->RevokeToken("nobody").status(), core::Code::kNotFound, "TOKEN_UNKNOWN");
  CheckError(env.access->RevokeToken("0123456789abcdef").status(), core::Code::kNotFound, "TOKEN_UNKNOWN");

  // A name reused after revocation revokes the live token.
  CreatedToken a2 = env.Create("a", Role::kReader);
  auto second = env.access->RevokeToken("a");
  REQUIRE(second.ok());
  CHECK(second->id == a2.record.id);
}

TEST_CASE("tokens expire", "[access]") {
  AccessEnv env;
  CreatedToken t = env.Create("temp", Role::kPusher, {"**"}, env.clock.NowMicros() + kHour);
  REQUIRE(env.access->Authenticate(t.token).ok());
  env.clock.Advance(kHour - 1);
  REQUIRE(env.access->Authenticate(t.token).ok());
  env.clock.Advance(1);
  CheckError(env.access->Authenticate(t.token).status(), core::Code::kUnauthenticated, "TOKEN_EXPIRED");
  // A revoked and expired token says revoked.
  REQUIRE(env.access->RevokeToken("temp").ok());
  CheckError(env.access->Authenticate(t.token).status(), core::Code::kUnauthenticated, "TOKEN_REVOKED");
}

TEST_CASE("last use is written at most once a minute", "[access]") {
  AccessEnv env;
  CreatedToken t = env.Create("busy", Role::kReader);
  auto last_used = [&] {
    auto list = env.access->ListTokens();
    REQUIRE(list.ok());
    return list->at(0).last_used_micros;
  };
  CHECK(last_used() == 0);
  int64_t first = env.clock.NowMicros();
  REQUIRE(env.access->Authenticate(t.token).ok());
  CHECK(last_used() == first);

  int writes = env.meta.writes.load();
  for (int i = 0; i < 10; ++i) {
    env.clock.Advance(5 * kSecond);
    REQUIRE(env.access->Authenticate(t.token).ok());
  }
  CHECK(env.meta.writes.load() == writes);
  CHECK(last_used() == first);

  env.clock.Set(first + kMinute);
  REQUIRE(env.access->Authenticate(t.token).ok());
  CHECK(env.meta.writes.load() == writes + 1);
  CHECK(last_used() == first + kMinute);

  // A failed last-used write does not refuse the request.
  env.clock.Advance(2 * kMinute);
  env.meta.failing = true;
  CHECK(env.access->Authenticate(t.token).ok());
  env.meta.failing = false;
}

TEST_CASE("malformed and unknown tokens get the same answer", "[access]") {
  AccessEnv env;
  CreatedToken t = env.Create("real", Role::kAdmin);
  const std::string& good = t.token;
  std::string id = good.substr(4, 16);
  std::string secret = good.substr(21);
  // Another token's secret, valid in form.
  std::string other_secret = env.Create("other", Role::kReader).token.substr(21);

  std::string upper_id = id;
  for (char& c : upper_id) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  // The last character holds 4 bits of the secret and 2 unused bits; 'D'
  // (index 3) sets both unused bits.
  std::string stray_bits = good;
  stray_bits.back() = 'D';
  std::string with_nul = good;
  with_nul[30] = '\0';
  std::string with_nul_id = good;
  with_nul_id[8] = '\0';

  std::vector<std::string> bad = {
      "",
      "sgl_",
      "sgl__",
      good.substr(4),                                   // no prefix
      "Bearer " + good,                                 // the header, not the token
      "SGL_" + good.substr(4),                          // wrong prefix case
      good.substr(0, good.size() - 1),                  // one short
      good + "A",                                       // one long
      good + "\n",                                      // trailing newline
      " " + good.substr(1),                             // leading space
      "sgl_" + id + "-" + secret,                       // wrong separator
      "sgl_" + upper_id + "_" + secret,                 // upper-case hex
      "sgl_" + std::string(15, 'a') + "g_" + secret,    // non-hex id
      "sgl_" + id.substr(1) + "_" + secret + "A",       // id one short
      "sgl_" + id + "_" + secret.substr(0, 42) + "=",   // padding
      "sgl_" + id + "_" + secret.substr(0, 42) + "+",   // standard alphabet
      "sgl_" + id + "_" + secret.substr(0, 41) + "/A",  // standard alphabet
      stray_bits,
      with_nul,
      with_nul_id,
      std::string(64, '\0'),
      std::string(1 << 20, 'a'),
      "sgl_" + std::string(1 << 20, 'a'),
      "sgl_" + id + "_" + other_secret,                         // wrong secret for a known id
      "sgl_" + std::string("0123456789abcdef") + "_" + secret,  // unknown id
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    INFO("case " << i);
    auto p = env.access->Authenticate(bad[i]);
    REQUIRE_FALSE(p.ok());
    CheckError(p.status(), core::Code::kUnauthenticated, "TOKEN_INVALID");
    CHECK(p.status().message() == "invalid token");
  }
  REQUIRE(env.access->Authenticate(good).ok());
}

TEST_CASE("a secret's spelling is canonical", "[access]") {
  AccessEnv env;
  // 32 bytes leave 2 unused bits in the last character: a fresh token's
  // last character is one of the 16 that set none of them.
  for (int i = 0; i < 20; ++i) {
    CreatedToken t = env.Create("t" + std::to_string(i), Role::kReader);
    char last = t.token.back();
    std::string allowed = "AEIMQUYcgkosw048";
    CHECK(allowed.find(last) != std::string::npos);
  }
}

TEST_CASE("known and unknown ids both pay for a constant-time comparison", "[access]") {
  AccessEnv env;
  CreatedToken t = env.Create("real", Role::kAdmin);
  std::string secret = t.token.substr(21);
  auto& count = internal::token_hash_comparisons;

  uint64_t before = count.load();
  REQUIRE(env.access->Authenticate(t.token).ok());
  CHECK(count.load() == before + 1);

  before = count.load();
  std::string wrong_secret = env.Create("other", Role::kReader).token.substr(21);
  CHECK_FALSE(env.access->Authenticate("sgl_" + t.record.id + "_" + wrong_secret).ok());
  CHECK(count.load() == before + 1);

  before = count.load();
  CHECK_FALSE(env.access->Authenticate("sgl_ffffffffffffffff_" + secret).ok());
  CHECK(count.load() == before + 1);

  // A malformed token is refused by its form alone: nothing to compare.
  before = count.load();
  CHECK_FALSE(env.access->Authenticate("sgl_nope").ok());
  CHECK(count.load() == before);

  CHECK(internal::ConstantTimeEqual("", ""));
  CHECK(internal::ConstantTimeEqual(std::string(32, 'x'), std::string(32, 'x')));
  std::string a(32, '\0'), b(32, '\0');
  for (size_t i = 0; i < 32; ++i) {
    b[i] = '\x80';
    CHECK_FALSE(internal::ConstantTimeEqual(a, b));
    b[i] = '\0';
  }
  CHECK_FALSE(internal::ConstantTimeEqual(std::string(31, 'x'), std::string(32, 'x')));
}

TEST_CASE("the bootstrap token is imported from its text", "[access]") {
  AccessEnv env;
  CHECK_FALSE(*env.access->HasAdmin());
  // A token made elsewhere (sigild writes one on first start).
  AccessEnv elsewhere;
  std::string text = elsewhere.Create("x", Role::kReader).token;

  auto imported = env.access->ImportToken("bootstrap-admin", text);
  REQUIRE(imported.ok());
  CHECK(imported->role == Role::kAdmin);
  CHECK(imported->repos == std::vector<std::string>{"**"});
  CHECK(imported->created_by == "bootstrap");
  CHECK(imported->id == text.substr(4, 16));
  CHECK(*env.access->HasAdmin());

  auto p = env.access->Authenticate(text);
  REQUIRE(p.ok());
  CHECK(p->role == Role::kAdmin);
  CHECK(p->name == "bootstrap-admin");

  // The same file read again on a restart.
  auto again = env.access->ImportToken("bootstrap-admin", text);
  REQUIRE(again.ok());
  CHECK(again->id == imported->id);
  CHECK(env.access->ListTokens()->size() == 1);

  for (std::string bad :
       {std::string(""), text.substr(1), text + "\n", std::string("sgl_0123456789abcdef_short")}) {
    CheckError(env.access->ImportToken("other-admin", bad).status(), core::Code::kInvalidArgument,
               "TOKEN_INVALID");
  }
  CheckError(env.access->ImportToken("bad name", elsewhere.Create("y", Role::kReader).token).status(),
             core::Code::kInvalidArgument, "TOKEN_INVALID");
  CheckError(env.access->ImportToken("bootstrap-admin", elsewhere.Create("z", Role::kReader).token).status(),
             core::Code::kAlreadyExists, "TOKEN_NAME_TAKEN");

  REQUIRE(env.access->RevokeToken("bootstrap-admin").ok());
  CHECK_FALSE(*env.access->HasAdmin());
  // A revoked bootstrap token is not brought back by importing it again.
  CHECK_FALSE(env.access->ImportToken("bootstrap-admin", text).ok());
  CheckError(env.access->Authenticate(text).status(), core::Code::kUnauthenticated, "TOKEN_REVOKED");
}

// The authorization matrix, written out rather than derived from
// RequiredRole so that a change to either shows here.
TEST_CASE("authorization matrix: every action, role, scope and anonymous", "[access]") {
  struct ActionCase {
    Action action;
    Role needed;
    std::string verb;
    std::string gerund;
  };
  const std::vector<ActionCase> actions = {
      {Action::kPull, Role::kReader, "pull", "pulling"},
      {Action::kPush, Role::kPusher, "push", "pushing"},
      {Action::kPromote, Role::kPromoter, "promote", "promoting"},
      {Action::kDelete, Role::kAdmin, "delete", "deleting"},
      {Action::kAdmin, Role::kAdmin, "administer", "administration"},
      {Action::kAuditRead, Role::kAdmin, "read the audit log", "reading the audit log"},
  };
  const std::vector<Role> roles = {Role::kReader, Role::kPusher, Role::kPromoter, Role::kAdmin};
  struct RepoCase {
    std::string repo;
    bool in_scope;
  };
  const std::vector<RepoCase> repos = {
      {"health/triage", true},
      {"health/triage/v2", false},  // '*' stays within a segment
      {"finance/x", false},
      {"", true},  // an action on no repository: only the role matters
  };

  for (const ActionCase& a : actions) {
    for (Role role : roles) {
      for (const RepoCase& r : repos) {
        for (bool anonymous_read : {false, true}) {
          INFO(ActionName(a.action) << " as " << RoleName(role) << " on '" << r.repo << "' anonymous_read "
                                    << anonymous_read);
          Principal p = TokenPrincipal("ci-gate", role, {"health/*"});
          core::Status s = Authorize(p, a.action, r.repo, anonymous_read);
          if (role < a.needed) {
            CheckError(s, core::Code::kPermissionDenied, "ROLE_INSUFFICIENT");
            CHECK(s.message() == "token ci-gate (" + std::string(RoleName(role)) + ") may not " + a.verb +
                                     ": " + a.gerund + " needs the " + std::string(RoleName(a.needed)) +
                                     " role");
          } else if (!r.in_scope) {
            CheckError(s, core::Code::kPermissionDenied, "REPOSITORY_OUT_OF_SCOPE");
            CHECK(s.message() == "token ci-gate is scoped to health/* and may not touch " + r.repo);
          } else {
            CHECK(s.ok());
          }

          // "**" covers every repository.
          core::Status everywhere = Authorize(TokenPrincipal("root", role), a.action, r.repo, anonymous_read);
          CHECK(everywhere.ok() == (role >= a.needed));

          core::Status anon = Authorize(Anonymous(), a.action, r.repo, anonymous_read);
          if (a.action == Action::kPull && anonymous_read) {
            CHECK(anon.ok());
          } else {
            CheckError(anon, core::Code::kUnauthenticated, "AUTHENTICATION_REQUIRED");
          }
        }
      }
    }
  }
}

TEST_CASE("a scope message lists every glob", "[access]") {
  Principal p = TokenPrincipal("ci-gate", Role::kAdmin, {"health/*", "shared/**"});
  CHECK(Authorize(p, Action::kPush, "shared/a/b").ok());
  core::Status s = Authorize(p, Action::kPush, "finance/x");
  CheckError(s, core::Code::kPermissionDenied, "REPOSITORY_OUT_OF_SCOPE");
  CHECK(s.message() == "token ci-gate is scoped to health/*, shared/** and may not touch finance/x");
}

TEST_CASE("principal scopes nest per thread", "[access]") {
  CHECK(PrincipalScope::Current() == nullptr);
  CHECK(RequireAccess(Action::kAdmin, "any/repo").ok());
  {
    PrincipalScope outer(TokenPrincipal("outer", Role::kAdmin));
    REQUIRE(PrincipalScope::Current() != nullptr);
    CHECK(PrincipalScope::Current()->name == "outer");
    CHECK(RequireAccess(Action::kDelete, "a/b").ok());
    {
      PrincipalScope inner(TokenPrincipal("inner", Role::kReader, {"health/*"}));
      CHECK(PrincipalScope::Current()->name == "inner");
      CheckError(RequireAccess(Action::kPush, "health/a"), core::Code::kPermissionDenied,
                 "ROLE_INSUFFICIENT");
      CheckError(RequireAccess(Action::kPull, "finance/a"), core::Code::kPermissionDenied,
                 "REPOSITORY_OUT_OF_SCOPE");
      CHECK(RequireAccess(Action::kPull, "health/a").ok());

      // Another thread is the server's own: no scope, not limited.
      bool had_scope = true;
      core::Status server;
      core::Status scoped;
      std::thread t([&] {
        had_scope = PrincipalScope::Current() != nullptr;
        server = RequireAccess(Action::kAdmin, "");
        PrincipalScope own(TokenPrincipal("worker", Role::kPusher));
        scoped = RequireAccess(Action::kDelete, "health/a");
      });
      t.join();
      CHECK_FALSE(had_scope);
      CHECK(server.ok());
      CheckError(scoped, core::Code::kPermissionDenied, "ROLE_INSUFFICIENT");
      CHECK(PrincipalScope::Current()->name == "inner");
    }
    CHECK(PrincipalScope::Current()->name == "outer");
    {
      PrincipalScope anon(Anonymous());
      // Anonymous callers never change anything, not even with anonymous reads.
      CheckError(RequireAccess(Action::kPush, "health/a"), core::Code::kUnauthenticated,
                 "AUTHENTICATION_REQUIRED");
    }
  }
  CHECK(PrincipalScope::Current() == nullptr);
}

TEST_CASE("audit entries are logged and queried", "[access]") {
  AccessEnv env;
  auto record = [&](std::string action, std::string repo, std::string result) {
    AuditEntry e;
    e.token = "ci-gate";
    e.role = "pusher";
    e.site = "hospital-a";
    e.action = std::move(action);
    e.method = "PUT";
    e.target = repo + ":1.0";
    e.repository = std::move(repo);
    e.status = result == "allowed" ? 201 : 403;
    e.result = std::move(result);
    e.reason = e.result == "allowed" ? "" : "ROLE_INSUFFICIENT";
    e.time_micros = 42;  // replaced by the clock
    auto r = env.access->Record(e);
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    env.clock.Advance(kSecond);
    return std::move(r).value();
  };
  int64_t t0 = env.clock.NowMicros();
  AuditEntry first = record("push", "health/a", "allowed");
  record("delete", "health/a", "refused");
  record("push", "finance/b", "allowed");
  AuditEntry last = record("promote", "health/a", "allowed");

  CHECK(first.time_micros == t0);
  CHECK(first.log_index == 0);
  CHECK(last.log_index == 3);
  REQUIRE(env.log->Size() == 4);

  // Every entry is a log leaf.
  auto leaf = env.log->Leaf(1);
  REQUIRE(leaf.ok());
  auto j = core::ParseJson(*leaf);
  REQUIRE(j.ok());
  CHECK((*j)["type"] == "sigil.audit/v1");
  CHECK((*j)["action"] == "delete");
  CHECK((*j)["result"] == "refused");
  CHECK((*j)["reason"] == "ROLE_INSUFFICIENT");
  CHECK((*j)["token"] == "ci-gate");
  CHECK((*j)["status"] == 403);
  CHECK((*j)["time"] == core::FormatRfc3339(t0 + kSecond));
  CHECK(core::DumpJson(*j) == *leaf);  // compact

  auto all = env.access->Query({});
  REQUIRE(all.ok());
  REQUIRE(all->size() == 4);
  for (size_t i = 0; i < all->size(); ++i) {
    CHECK((*all)[i].log_index == i);
    CHECK((*all)[i].time_micros == t0 + static_cast<int64_t>(i) * kSecond);
  }
  CHECK((*all)[0].target == "health/a:1.0");
  CHECK((*all)[0].site == "hospital-a");
  CHECK((*all)[0].method == "PUT");
  CHECK((*all)[0].status == 201);

  AuditQuery q;
  q.repository = "health/a";
  auto health = env.access->Query(q);
  REQUIRE(health.ok());
  REQUIRE(health->size() == 3);
  CHECK((*health)[2].action == "promote");

  q.action = "push";
  auto pushes = env.access->Query(q);
  REQUIRE(pushes.ok());
  REQUIRE(pushes->size() == 1);
  CHECK(pushes->at(0).log_index == 0);

  AuditQuery since;
  since.since_micros = t0 + kSecond;
  auto later = env.access->Query(since);
  REQUIRE(later.ok());
  REQUIRE(later->size() == 3);
  CHECK(later->front().log_index == 1);

  AuditQuery limited;
  limited.limit = 2;
  auto latest = env.access->Query(limited);
  REQUIRE(latest.ok());
  REQUIRE(latest->size() == 2);
  CHECK((*latest)[0].log_index == 2);
  CHECK((*latest)[1].log_index == 3);
  limited.limit = 0;
  CHECK(env.access->Query(limited)->empty());

  core::Json out = AuditEntryToJson(last);
  CHECK(out["time"] == core::FormatRfc3339(last.time_micros));
  CHECK(out["time_micros"] == last.time_micros);
  CHECK(out["log_index"] == 3);
  CHECK(out["action"] == "promote");
}

TEST_CASE("an audit entry is in both the log and the audit family or in neither", "[access]") {
  AccessEnv env;
  AuditEntry e;
  e.token = "anonymous";
  e.action = "pull";
  env.meta.failing = true;
  CHECK_FALSE(env.access->Record(e).ok());
  env.meta.failing = false;
  CHECK(env.log->Size() == 0);
  CHECK(env.access->Query({})->empty());

  auto ok = env.access->Record(e);
  REQUIRE(ok.ok());
  CHECK(ok->log_index == 0);
  CHECK(env.log->Size() == 1);
  CHECK(env.access->Query({})->size() == 1);

  // Oversized fields are clipped so an entry always fits a leaf.
  e.target = std::string(2 << 20, 'p');
  auto big = env.access->Record(e);
  REQUIRE(big.ok());
  CHECK(big->target.size() < 4096);
  CHECK(env.log->Size() == 2);
}

// --- enforcement inside the registry ---

struct RegistryEnv {
  RegistryEnv() : reg(Options()) {}
  RegistryOptions Options() {
    RegistryOptions o;
    o.blobs = blobs.get();
    o.meta = meta.get();
    o.clock = &clock;
    return o;
  }
  std::string Model(const std::string& weights) {
    Manifest m;
    m.artifact_type = std::string(kModelArtifactType);
    m.config = Put("{}");
    m.config.media_type = std::string(kModelConfigMediaType);
    Descriptor layer = Put(weights);
    layer.annotations[std::string(kTitleAnnotation)] = "model.bin";
    m.layers.push_back(layer);
    return SerializeManifest(m);
  }
  Descriptor Put(const std::string& content) {
    Descriptor d;
    d.media_type = std::string(kLayerMediaType);
    d.digest = core::Sha256::Of(content);
    d.size = content.size();
    REQUIRE(blobs->Put(d.digest, content).ok());
    return d;
  }

  core::ManualClock clock;
  std::unique_ptr<storage::BlobStore> blobs = storage::NewMemoryBlobStore();
  std::unique_ptr<storage::MetaStore> meta = storage::NewMemoryMetaStore();
  Registry reg;
};

TEST_CASE("the registry refuses what the calling principal may not do", "[access]") {
  RegistryEnv env;
  std::string manifest = env.Model("weights");

  {
    PrincipalScope reader(TokenPrincipal("viewer", Role::kReader));
    CheckError(env.reg.PutVersion("health/a", "1.0", manifest).status(), core::Code::kPermissionDenied,
               "ROLE_INSUFFICIENT");
    CheckError(env.reg.SetRepoMetadata("health/a", {}, {}), core::Code::kPermissionDenied,
               "ROLE_INSUFFICIENT");
  }
  CheckError(env.reg.GetRepo("health/a").status(), core::Code::kNotFound, "REPO_UNKNOWN");
  {
    PrincipalScope anon(Anonymous());
    CheckError(env.reg.PutVersion("health/a", "1.0", manifest).status(), core::Code::kUnauthenticated,
               "AUTHENTICATION_REQUIRED");
  }
  {
    PrincipalScope scoped(TokenPrincipal("ci", Role::kAdmin, {"finance/*"}));
    CheckError(env.reg.PutVersion("health/a", "1.0", manifest).status(), core::Code::kPermissionDenied,
               "REPOSITORY_OUT_OF_SCOPE");
  }
  CheckError(env.reg.GetRepo("health/a").status(), core::Code::kNotFound, "REPO_UNKNOWN");

  {
    PrincipalScope pusher(TokenPrincipal("ci", Role::kPusher, {"health/*"}));
    REQUIRE(env.reg.PutVersion("health/a", "1.0", manifest).ok());
    CHECK(env.reg.SetVersionLabels("health/a", "1.0", {{"team", "x"}}).ok());
    CheckError(env.reg.DeleteVersion("health/a", "1.0"), core::Code::kPermissionDenied, "ROLE_INSUFFICIENT");
    CheckError(env.reg.SetAlias("health/a", "production", "1.0").status(), core::Code::kPermissionDenied,
               "ROLE_INSUFFICIENT");
    CheckError(env.reg.SetVersionState("health/a", "1.0", VersionState::kQuarantined),
               core::Code::kPermissionDenied, "ROLE_INSUFFICIENT");
    CheckError(env.reg.CollectGarbage().status(), core::Code::kPermissionDenied, "ROLE_INSUFFICIENT");
    CheckError(env.reg.SetAnonymousRead("health/a", true), core::Code::kPermissionDenied,
               "ROLE_INSUFFICIENT");
    // Reads are checked by api/, not here: a pusher's write path resolves freely.
    CHECK(env.reg.Resolve("health/a", "1.0").ok());
  }
  auto v = env.reg.Resolve("health/a", "1.0");
  REQUIRE(v.ok());
  CHECK(v->info.state == VersionState::kAvailable);
  CHECK(v->info.aliases.empty());
  CHECK(v->info.labels == std::map<std::string, std::string>{{"team", "x"}});
  CHECK_FALSE(env.reg.GetRepo("health/a")->anonymous_read);

  {
    PrincipalScope promoter(TokenPrincipal("gate", Role::kPromoter));
    // A promoter moves an alias through a promotion, not by hand.
    CheckError(env.reg.SetAlias("health/a", "production", "1.0").status(), core::Code::kPermissionDenied,
               "ROLE_INSUFFICIENT");
    CheckError(env.reg.MoveAlias("health/a", "production", "1.0", Via("import")).status(),
               core::Code::kPermissionDenied, "ROLE_INSUFFICIENT");
    REQUIRE(env.reg.MoveAlias("health/a", "production", "1.0", Via("promotion")).ok());
    CheckError(env.reg.DeleteAlias("health/a", "production"), core::Code::kPermissionDenied,
               "ROLE_INSUFFICIENT");
  }
  CHECK(env.reg.GetAlias("health/a", "production").ok());

  {
    PrincipalScope admin(TokenPrincipal("root", Role::kAdmin));
    REQUIRE(env.reg.SetAnonymousRead("health/a", true).ok());
    REQUIRE(env.reg.DeleteAlias("health/a", "production").ok());
    REQUIRE(env.reg.DeleteVersion("health/a", "1.0").ok());
    REQUIRE(env.reg.CollectGarbage().ok());
  }
  CHECK(env.reg.GetRepo("health/a")->anonymous_read);

  // Server threads (scans, jobs) carry no scope and are not limited.
  REQUIRE(env.reg.PutVersion("health/a", "2.0", manifest).ok());
  CHECK(env.reg.SetVersionState("health/a", "2.0", VersionState::kQuarantined).ok());
}

TEST_CASE("anonymous reads are a repository setting kept with old records readable", "[access]") {
  RegistryEnv env;
  REQUIRE(env.meta
              ->Put("repos", "old/repo",
                    R"({"created":5,"labels":{},"residency":{"region":"","classification":""}})")
              .ok());
  auto old = env.reg.GetRepo("old/repo");
  REQUIRE(old.ok());
  CHECK_FALSE(old->anonymous_read);

  REQUIRE(env.reg.SetAnonymousRead("old/repo", true).ok());
  CHECK(env.reg.GetRepo("old/repo")->anonymous_read);
  CHECK(env.reg.GetRepo("old/repo")->created_micros == 5);
  auto page = env.reg.ListRepos("", 10);
  REQUIRE(page.ok());
  REQUIRE(page->items.size() == 1);
  CHECK(page->items[0].anonymous_read);
  // Metadata changes keep the setting.
  REQUIRE(env.reg.SetRepoMetadata("old/repo", {{"team", "x"}}, {}).ok());
  CHECK(env.reg.GetRepo("old/repo")->anonymous_read);

  // Set before the first push, it creates the repository.
  REQUIRE(env.reg.SetAnonymousRead("new/repo", true).ok());
  CHECK(env.reg.GetRepo("new/repo")->anonymous_read);
  REQUIRE(env.reg.SetAnonymousRead("new/repo", false).ok());
  CHECK_FALSE(env.reg.GetRepo("new/repo")->anonymous_read);
  CheckError(env.reg.SetAnonymousRead("Bad Name", true), core::Code::kInvalidArgument, "NAME_INVALID");

  REQUIRE(
      env.meta->Put("repos", "bad/repo", R"({"created":5,"labels":{},"residency":{},"anonymous_read":"yes"})")
          .ok());
  CHECK(env.reg.GetRepo("bad/repo").status().code() == core::Code::kDataLoss);
}

TEST_CASE("attestation and trust changes need their roles", "[access]") {
  RegistryEnv env;
  AccessEnv logs;
  AttestationOptions o;
  o.registry = &env.reg;
  o.blobs = env.blobs.get();
  o.meta = env.meta.get();
  o.clock = &env.clock;
  o.log = logs.log.get();
  o.server_key = *signing::PrivateKey::Generate();
  auto att = Attestations::Open(o);
  REQUIRE(att.ok());
  REQUIRE(env.reg.PutVersion("health/a", "1.0", env.Model("w")).ok());

  signing::TrustedKey key{
      signing::PrivateKey::Generate()->public_key(), "ci", {"*"}, {"**"}, {"*"}, std::nullopt};
  {
    PrincipalScope pusher(TokenPrincipal("ci", Role::kPusher));
    CheckError((*att)->AddTrustedKey(key), core::Code::kPermissionDenied, "ROLE_INSUFFICIENT");
    CheckError((*att)->RevokeTrustedKey(key.id()), core::Code::kPermissionDenied, "ROLE_INSUFFICIENT");
  }
  CHECK((*att)->trust()->keys().empty());
  {
    PrincipalScope reader(TokenPrincipal("viewer", Role::kReader));
    CheckError((*att)->Sign("health/a", "1.0").status(), core::Code::kPermissionDenied, "ROLE_INSUFFICIENT");
    CheckError((*att)->Add("health/a", "1.0", "{}").status(), core::Code::kPermissionDenied,
               "ROLE_INSUFFICIENT");
  }
  CHECK(logs.log->Size() == 0);
  {
    PrincipalScope out_of_scope(TokenPrincipal("ci", Role::kPusher, {"finance/*"}));
    CheckError((*att)->Sign("health/a", "1.0").status(), core::Code::kPermissionDenied,
               "REPOSITORY_OUT_OF_SCOPE");
  }
  {
    PrincipalScope admin(TokenPrincipal("root", Role::kAdmin));
    REQUIRE((*att)->AddTrustedKey(key).ok());
  }
  CHECK((*att)->trust()->keys().size() == 1);
}

}  // namespace
}  // namespace sigil::registry
