// Access control in Service::Handle, without a socket: the route table
// agrees with the routes, tokens are checked before a route runs, and each
// change or refusal is audited.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "api/service.h"
#include "core/json.h"
#include "signing/keys.h"
#include "storage/blob_store.h"
#include "storage/meta_store.h"

namespace sigil::api {
namespace {

using core::Json;
using registry::Action;

struct Fixture {
  std::unique_ptr<storage::BlobStore> blobs = storage::NewMemoryBlobStore();
  std::unique_ptr<storage::MetaStore> meta = storage::NewMemoryMetaStore();
  core::ManualClock clock;
  storage::UploadManager uploads{blobs.get(), meta.get(), &clock, storage::UploadOptions()};
  registry::Registry registry{RegistryOptions()};
  std::unique_ptr<attest::TransparencyLog> log = OpenLog();
  std::unique_ptr<registry::AccessControl> access = OpenAccess();
  Metrics metrics;
  Service open{ServiceOptions{&registry, &uploads, blobs.get(), meta.get(), &metrics}};
  Service guarded{Guarded()};

  registry::RegistryOptions RegistryOptions() {
    registry::RegistryOptions o;
    o.blobs = blobs.get();
    o.meta = meta.get();
    o.clock = &clock;
    return o;
  }
  std::unique_ptr<attest::TransparencyLog> OpenLog() {
    auto key = signing::PrivateKey::Generate(signing::Algorithm::kEd25519);
    REQUIRE(key.ok());
    attest::TransparencyLogOptions o;
    o.meta = meta.get();
    o.origin = "sigil/test";
    o.key = *key;
    auto l = attest::TransparencyLog::Open(o);
    REQUIRE(l.ok());
    return std::move(l).value();
  }
  std::unique_ptr<registry::AccessControl> OpenAccess() {
    registry::AccessOptions o;
    o.meta = meta.get();
    o.log = log.get();
    o.clock = &clock;
    auto a = registry::AccessControl::Open(o);
    REQUIRE(a.ok());
    return std::move(a).value();
  }
  ServiceOptions Guarded() {
    ServiceOptions o{&registry, &uploads, blobs.get(), meta.get(), &metrics};
    o.log = log.get();
    o.access = access.get();
    return o;
  }
  std::string Token(const std::string& name, registry::Role role, std::vector<std::string> repos) {
    registry::NewToken spec;
    spec.name = name;
    spec.role = role;
    spec.repos = std::move(repos);
    auto created = access->CreateToken(spec, "test");
    REQUIRE(created.ok());
    return created->token;
  }

  HttpResponse Call(Service& service, const std::string& method, const std::string& path,
                    const std::string& token = "", const std::string& body = "", std::string* route = nullptr) {
    HttpRequest r;
    r.method = method;
    auto q = path.find('?');
    r.path = path.substr(0, q);
    if (q != std::string::npos) r.query = ParseQuery(path.substr(q + 1));
    if (!token.empty()) r.headers["authorization"] = "Bearer " + token;
    r.body = body;
    return service.Handle(r, route);
  }
};

std::string Reason(const HttpResponse& r) {
  auto body = core::ParseJson(r.body);
  if (!body.ok() || !body->contains("error")) return "";
  return (*body)["error"]["code"].get<std::string>();
}

TEST_CASE("the access table names the same route template as the routes", "[api][access]") {
  Fixture f;
  const std::vector<std::pair<std::string, std::string>> requests = {
      {"GET", "/api/v1/blobs/sha256:" + std::string(64, 'a')},
      {"PUT", "/api/v1/blobs/sha256:" + std::string(64, 'a')},
      {"POST", "/api/v1/uploads"},
      {"PATCH", "/api/v1/uploads/abc"},
      {"GET", "/api/v1/models"},
      {"GET", "/api/v1/models/health/triage"},
      {"PUT", "/api/v1/models/health/triage/labels"},
      {"PUT", "/api/v1/models/health/triage/access"},
      {"GET", "/api/v1/models/health/triage/versions"},
      {"DELETE", "/api/v1/models/health/triage/versions/1"},
      {"GET", "/api/v1/models/health/triage/versions/1/manifest"},
      {"PUT", "/api/v1/models/health/triage/versions/1/labels"},
      {"GET", "/api/v1/models/health/triage/versions/1/files/a/b.bin"},
      {"GET", "/api/v1/models/health/triage/aliases"},
      {"PUT", "/api/v1/models/health/triage/aliases/prod"},
      {"POST", "/api/v1/gc"},
      {"GET", "/api/v1/tokens"},
      {"GET", "/api/v1/tokens/self"},
      {"DELETE", "/api/v1/tokens/ci"},
      {"GET", "/api/v1/audit"},
      {"GET", "/api/v1/nothing"},
  };
  for (const auto& [method, path] : requests) {
    HttpRequest r;
    r.method = method;
    r.path = path;
    std::string route;
    f.open.Handle(r, &route);
    INFO(method << " " << path);
    CHECK(f.open.Classify(r).route == route);
  }
}

TEST_CASE("the access table's actions", "[api][access]") {
  Fixture f;
  struct Row {
    std::string method, path;
    Action action;
    std::string repository;
  };
  const std::vector<Row> rows = {
      {"GET", "/api/v1/models/health/triage/versions/1", Action::kPull, "health/triage"},
      {"HEAD", "/api/v1/blobs/sha256:" + std::string(64, 'a'), Action::kPull, ""},
      {"PUT", "/api/v1/models/health/triage/versions/1", Action::kPush, "health/triage"},
      {"POST", "/api/v1/models/health/triage/versions/1/sign", Action::kPush, "health/triage"},
      {"PUT", "/api/v1/models/health/triage/aliases/prod", Action::kAdmin, "health/triage"},
      {"POST", "/api/v1/models/health/triage/versions/1/promotions", Action::kPromote, "health/triage"},
      {"POST", "/api/v1/models/health/triage/versions/1/policy-test", Action::kPull, "health/triage"},
      {"GET", "/api/v1/models/health/triage/aliases/prod/history", Action::kPull, "health/triage"},
      {"DELETE", "/api/v1/models/health/triage/aliases/prod", Action::kDelete, "health/triage"},
      {"DELETE", "/api/v1/models/health/triage/versions/1", Action::kDelete, "health/triage"},
      {"PUT", "/api/v1/models/health/triage/access", Action::kAdmin, "health/triage"},
      {"POST", "/api/v1/uploads", Action::kPush, ""},
      {"POST", "/api/v1/gc", Action::kAdmin, ""},
      {"POST", "/api/v1/trust/keys", Action::kAdmin, ""},
      {"GET", "/api/v1/audit", Action::kAuditRead, ""},
      // Not a method of the route: reads need pull, writes fail closed.
      {"PATCH", "/api/v1/models/health/triage/versions", Action::kAdmin, "health/triage"},
      {"GET", "/api/v1/nothing", Action::kPull, ""},
  };
  for (const Row& row : rows) {
    HttpRequest r;
    r.method = row.method;
    r.path = row.path;
    RouteAccess a = f.open.Classify(r);
    INFO(row.method << " " << row.path);
    CHECK_FALSE(a.exempt);
    CHECK(a.action == row.action);
    CHECK(a.repository == row.repository);
  }
  for (const char* exempt : {"/healthz", "/readyz", "/metrics", "/api/v1/log/checkpoint", "/api/v1/keys/server"}) {
    HttpRequest r;
    r.method = "GET";
    r.path = exempt;
    CHECK(f.open.Classify(r).exempt);
  }
}

TEST_CASE("Handle authenticates, authorizes and audits before a route runs", "[api][access]") {
  Fixture f;
  std::string reader = f.Token("reader", registry::Role::kReader, {"health/*"});
  std::string admin = f.Token("admin", registry::Role::kAdmin, {"**"});

  HttpResponse none = f.Call(f.guarded, "GET", "/api/v1/models");
  CHECK(none.status == 401);
  CHECK(Reason(none) == "AUTHENTICATION_REQUIRED");
  bool challenge = false;
  for (const auto& [k, v] : none.headers) challenge |= k == "WWW-Authenticate" && v == "Bearer realm=\"sigil\"";
  CHECK(challenge);
  CHECK(f.Call(f.guarded, "GET", "/api/v1/models", "sgl_garbage").status == 401);
  CHECK(f.Call(f.guarded, "GET", "/healthz").status == 200);
  CHECK(f.Call(f.guarded, "GET", "/api/v1/models", reader).status == 200);

  // A reader cannot create a repository's labels; nothing is made.
  HttpResponse refused =
      f.Call(f.guarded, "PUT", "/api/v1/models/health/triage/labels", reader, R"({"labels": {"a": "b"}})");
  CHECK(refused.status == 403);
  CHECK(Reason(refused) == "ROLE_INSUFFICIENT");
  CHECK(f.registry.GetRepo("health/triage").status().code() == core::Code::kNotFound);
  // Out of scope, even for a read.
  CHECK(Reason(f.Call(f.guarded, "GET", "/api/v1/models/finance/x", reader)) == "REPOSITORY_OUT_OF_SCOPE");

  CHECK(f.Call(f.guarded, "PUT", "/api/v1/models/health/triage/access", admin, R"({"anonymous_read": true})")
            .status == 200);
  // Anonymous pulls of that repository only.
  CHECK(f.Call(f.guarded, "GET", "/api/v1/models/health/triage").status == 200);
  CHECK(f.Call(f.guarded, "GET", "/api/v1/models/health/triage/access").status == 200);

  auto entries = f.access->Query(registry::AuditQuery{});
  REQUIRE(entries.ok());
  // none, garbage, the refused PUT, the out-of-scope GET, the access PUT.
  REQUIRE(entries->size() == 5);
  CHECK((*entries)[0].token == "anonymous");
  CHECK((*entries)[0].result == "refused");
  CHECK((*entries)[1].token == "invalid-token");
  CHECK((*entries)[2].token == "reader");
  CHECK((*entries)[2].action == "push");
  CHECK((*entries)[2].status == 403);
  CHECK((*entries)[2].repository == "health/triage");
  CHECK((*entries)[3].reason == "REPOSITORY_OUT_OF_SCOPE");
  CHECK((*entries)[4].token == "admin");
  CHECK((*entries)[4].action == "access.set");
  CHECK((*entries)[4].result == "allowed");
  CHECK(f.log->Size() >= 5);
}

TEST_CASE("an admission hook's refusal is answered and audited", "[api][access]") {
  Fixture f;
  std::string reader = f.Token("reader", registry::Role::kReader, {"**"});
  ServiceOptions o = f.Guarded();
  std::string admitted_id;
  o.admit = [&](const registry::Principal& p, const HttpRequest&) -> core::Status {
    admitted_id = p.token_id;
    return core::ResourceExhausted("slow down", "RATE_LIMITED").WithDetail(R"({"retry_after_s": 3})");
  };
  Service limited(o);
  HttpResponse r = f.Call(limited, "GET", "/api/v1/models", reader);
  CHECK(r.status == 429);
  CHECK_FALSE(admitted_id.empty());
  CHECK(f.Call(limited, "GET", "/healthz").status == 200);  // exempt routes are not limited
  auto entries = f.access->Query(registry::AuditQuery{});
  REQUIRE(entries.ok());
  REQUIRE(entries->size() == 1);
  CHECK(entries->back().token == "reader");
  CHECK(entries->back().result == "refused");
  CHECK(entries->back().reason == "RATE_LIMITED");
  CHECK(entries->back().status == 429);
}

TEST_CASE("without access control every route is open and the token routes are unavailable",
          "[api][access]") {
  Fixture f;
  CHECK(f.Call(f.open, "GET", "/api/v1/models").status == 200);
  CHECK(Reason(f.Call(f.open, "GET", "/api/v1/tokens")) == "ACCESS_CONTROL_UNAVAILABLE");
  CHECK(Reason(f.Call(f.open, "GET", "/api/v1/audit")) == "ACCESS_CONTROL_UNAVAILABLE");
}

}  // namespace
}  // namespace sigil::api
