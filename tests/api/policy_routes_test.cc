// The policy routes and the residency checks of the content routes, in
// Service::Handle without a socket: documents stored in versions, 503
// without a store, pushes and pulls refused by site with the rule named, and
// every refusal in the audit log.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "api/service.h"
#include "core/json.h"
#include "model_fixture.h"
#include "signing/keys.h"
#include "storage/blob_store.h"
#include "storage/meta_store.h"

namespace sigil::api {
namespace {

using core::Json;

const std::string kEu = R"({"name": "eu-health", "repositories": ["health/**"],
  "residency": {"store": ["eu-*", "us-east"], "pull": ["eu-*"], "classification": "restricted"}})";
const std::string kEuStoreOnly = R"({"name": "eu-store", "repositories": ["health/**"],
  "residency": {"store": ["eu-*"]}})";

struct Fixture {
  std::unique_ptr<storage::BlobStore> blobs = storage::NewMemoryBlobStore();
  std::unique_ptr<storage::MetaStore> meta = storage::NewMemoryMetaStore();
  core::ManualClock clock;
  storage::UploadManager uploads{blobs.get(), meta.get(), &clock, storage::UploadOptions()};
  registry::Registry registry{RegistryOptions()};
  std::unique_ptr<attest::TransparencyLog> log = OpenLog();
  std::unique_ptr<registry::AccessControl> access = OpenAccess();
  registry::PolicyStore policies{registry::PolicyStoreOptions{meta.get(), &clock}};
  Metrics metrics;
  // This server stands in us-east-1 (region us-east).
  Service bare{ServiceOptions{&registry, &uploads, blobs.get(), meta.get(), &metrics}};
  Service open{Options(false)};
  Service guarded{Options(true)};
  std::string admin = Token("ops", registry::Role::kAdmin, "eu-paris");

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
  ServiceOptions Options(bool with_access) {
    ServiceOptions o{&registry, &uploads, blobs.get(), meta.get(), &metrics};
    o.log = log.get();
    if (with_access) o.access = access.get();
    o.policies = &policies;
    o.site = "us-east-1";
    o.region = "us-east";
    return o;
  }
  std::string Token(const std::string& name, registry::Role role, const std::string& site,
                    const std::string& region = "") {
    registry::NewToken spec;
    spec.name = name;
    spec.role = role;
    spec.repos = {"**"};
    spec.site = site;
    spec.region = region;
    auto created = access->CreateToken(spec, "test");
    REQUIRE(created.ok());
    return created->token;
  }
  HttpResponse Call(Service& service, const std::string& method, const std::string& path,
                    const std::string& token = "", const std::string& body = "") {
    HttpRequest r;
    r.method = method;
    r.path = path;
    if (!token.empty()) r.headers["authorization"] = "Bearer " + token;
    r.body = body;
    return service.Handle(r, nullptr);
  }
  Json Body(const HttpResponse& r) {
    auto j = core::ParseJson(r.body);
    REQUIRE(j.ok());
    return *j;
  }
  std::vector<Json> Audit() {
    auto r = Call(guarded, "GET", "/api/v1/audit", admin);
    REQUIRE(r.status == 200);
    Json body = Body(r);
    std::vector<Json> out;
    for (const Json& e : body["entries"]) out.push_back(e);
    return out;
  }
};

std::string Reason(const HttpResponse& r) {
  auto body = core::ParseJson(r.body);
  if (!body.ok() || !body->contains("error")) return "";
  return (*body)["error"]["code"].get<std::string>();
}
std::string Message(const HttpResponse& r) {
  auto body = core::ParseJson(r.body);
  if (!body.ok() || !body->contains("error")) return "";
  return (*body)["error"]["message"].get<std::string>();
}

TEST_CASE("without a policy store the policy routes answer 503 and nothing is refused", "[api][policy]") {
  Fixture f;
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/api/v1/policies"},
           {"POST", "/api/v1/policies"},
           {"GET", "/api/v1/policies/eu-health"},
           {"DELETE", "/api/v1/policies/eu-health"},
           {"GET", "/api/v1/policies/eu-health/versions/1"}}) {
    INFO(method << " " << path);
    auto r = f.Call(f.bare, method, path, "", kEu);
    CHECK(r.status == 503);
    CHECK(Reason(r) == "POLICIES_UNAVAILABLE");
  }
  REQUIRE(f.policies.Put(kEuStoreOnly).ok());
  std::string manifest = testing::StoreModelManifest(f.blobs.get(), {{"w.bin", "weights"}});
  CHECK(f.Call(f.bare, "PUT", "/api/v1/models/health/xray/versions/1", "", manifest).status == 201);
}

TEST_CASE("the policy routes are on no repository, their target the policy", "[api][policy]") {
  Fixture f;
  struct Row {
    std::string method, path, body, route, target;
    registry::Action action;
  };
  const std::vector<Row> rows = {
      {"GET", "/api/v1/policies", "", "/api/v1/policies", "/api/v1/policies", registry::Action::kPull},
      {"POST", "/api/v1/policies", kEu, "/api/v1/policies", "policy:eu-health", registry::Action::kAdmin},
      {"POST", "/api/v1/policies", "not json", "/api/v1/policies", "/api/v1/policies", registry::Action::kAdmin},
      {"GET", "/api/v1/policies/eu-health", "", "/api/v1/policies/{name}", "policy:eu-health", registry::Action::kPull},
      {"DELETE", "/api/v1/policies/eu%2Dhealth", "", "/api/v1/policies/{name}", "policy:eu-health",
       registry::Action::kAdmin},
      {"GET", "/api/v1/policies/eu-health/versions/2", "", "/api/v1/policies/{name}/versions/{n}",
       "policy:eu-health", registry::Action::kPull},
  };
  for (const Row& row : rows) {
    INFO(row.method << " " << row.path);
    HttpRequest r;
    r.method = row.method;
    r.path = row.path;
    r.body = row.body;
    RouteAccess a = f.guarded.Classify(r);
    CHECK(a.route == row.route);
    CHECK(a.target == row.target);
    CHECK(a.action == row.action);
    CHECK(a.repository.empty());
    std::string route;
    f.open.Handle(r, &route);
    CHECK(route == row.route);
  }
}

TEST_CASE("policies are put, read by version, listed and deleted", "[api][policy]") {
  Fixture f;
  auto put = f.Call(f.guarded, "POST", "/api/v1/policies", f.admin, kEu);
  REQUIRE(put.status == 201);
  Json rec = f.Body(put);
  CHECK(rec["name"] == "eu-health");
  CHECK(rec["version"] == 1);
  CHECK(rec["created_by"] == "ops");
  CHECK(rec["document"] == kEu);
  CHECK(rec["deleted"] == false);
  CHECK(rec["digest"].get<std::string>().rfind("sha256:", 0) == 0);
  auto same = f.Call(f.guarded, "POST", "/api/v1/policies", f.admin, kEu);
  CHECK(same.status == 200);
  CHECK(f.Body(same)["version"] == 1);
  auto second = f.Call(f.guarded, "POST", "/api/v1/policies", f.admin, kEuStoreOnly);
  CHECK(second.status == 201);

  std::string reader = f.Token("reader", registry::Role::kReader, "eu-paris");
  auto list = f.Call(f.guarded, "GET", "/api/v1/policies", reader);
  REQUIRE(list.status == 200);
  Json policies = f.Body(list)["policies"];
  REQUIRE(policies.size() == 2);
  CHECK(policies[0]["name"] == "eu-health");
  CHECK(policies[1]["name"] == "eu-store");
  CHECK_FALSE(policies[0].contains("document"));

  auto one = f.Call(f.guarded, "GET", "/api/v1/policies/eu-health", reader);
  REQUIRE(one.status == 200);
  CHECK(f.Body(one)["document"] == kEu);
  auto v1 = f.Call(f.guarded, "GET", "/api/v1/policies/eu-health/versions/1", reader);
  REQUIRE(v1.status == 200);
  CHECK(f.Body(v1)["version"] == 1);
  for (std::string bad : {"0", "x", "-1", "01", "1.0", "99999999999999999999"}) {
    INFO(bad);
    CHECK(Reason(f.Call(f.guarded, "GET", "/api/v1/policies/eu-health/versions/" + bad, reader)) ==
          "POLICY_VERSION_INVALID");
  }
  CHECK(Reason(f.Call(f.guarded, "GET", "/api/v1/policies/eu-health/versions/7", reader)) == "POLICY_UNKNOWN");
  CHECK(f.Call(f.guarded, "GET", "/api/v1/policies/nobody", reader).status == 404);
  CHECK(f.Call(f.guarded, "GET", "/api/v1/policies/a/b/c", reader).status == 404);
  CHECK(f.Call(f.guarded, "PUT", "/api/v1/policies/eu-health", f.admin).status == 405);

  // Writes need an admin; refusals are audited with the policy named.
  auto refused = f.Call(f.guarded, "POST", "/api/v1/policies", reader, kEuStoreOnly);
  CHECK(refused.status == 403);
  CHECK(Reason(refused) == "ROLE_INSUFFICIENT");
  CHECK(f.Call(f.guarded, "DELETE", "/api/v1/policies/eu-health", reader).status == 403);

  for (const std::string& bad : {std::string("not json"), std::string("{}"), std::string("[1]"),
                                 std::string(R"({"name": "x", "repositories": ["a"], "extra": 1})"),
                                 std::string(R"({"name": "x/y", "repositories": ["a"]})"),
                                 std::string(70000, ' ')}) {
    auto r = f.Call(f.guarded, "POST", "/api/v1/policies", f.admin, bad);
    CHECK(r.status == 400);
    CHECK(Reason(r) == "POLICY_INVALID");
  }

  CHECK(f.Call(f.guarded, "DELETE", "/api/v1/policies/eu-store", f.admin).status == 204);
  CHECK(Reason(f.Call(f.guarded, "DELETE", "/api/v1/policies/eu-store", f.admin)) == "POLICY_UNKNOWN");
  CHECK(f.Call(f.guarded, "GET", "/api/v1/policies/eu-store", reader).status == 404);
  auto tomb = f.Call(f.guarded, "GET", "/api/v1/policies/eu-store/versions/2", reader);
  REQUIRE(tomb.status == 200);
  CHECK(f.Body(tomb)["deleted"] == true);
  CHECK(f.Body(f.Call(f.guarded, "GET", "/api/v1/policies", reader))["policies"].size() == 1);

  bool put_audited = false, refusal_audited = false, delete_audited = false;
  for (const Json& e : f.Audit()) {
    if (e["action"] == "policy.put" && e["result"] == "allowed" && e["target"] == "policy:eu-health") {
      put_audited = true;
      CHECK(e["repository"] == "");
    }
    if (e["action"] == "policy.put" && e["result"] == "refused" && e["target"] == "policy:eu-store") {
      refusal_audited = e["token"] == "reader" && e["reason"] == "ROLE_INSUFFICIENT";
    }
    if (e["action"] == "policy.delete" && e["target"] == "policy:eu-store" && e["status"] == 204) {
      delete_audited = true;
    }
  }
  CHECK(put_audited);
  CHECK(refusal_audited);
  CHECK(delete_audited);
}

TEST_CASE("a push is refused where the repository may not be stored", "[api][policy][residency]") {
  Fixture f;
  REQUIRE(f.Call(f.guarded, "POST", "/api/v1/policies", f.admin, kEuStoreOnly).status == 201);
  std::string pusher = f.Token("ci", registry::Role::kPusher, "eu-paris");
  std::string manifest = testing::StoreModelManifest(f.blobs.get(), {{"w.bin", "weights"}});
  auto r = f.Call(f.guarded, "PUT", "/api/v1/models/health/xray/versions/1", pusher, manifest);
  CHECK(r.status == 403);
  CHECK(Reason(r) == "RESIDENCY_DENIED");
  CHECK(Message(r).find("policy eu-store: residency.store: ") == 0);
  CHECK(Message(r).find("us-east-1") != std::string::npos);
  auto detail = f.Body(r)["error"]["detail"];
  CHECK(detail["decisions"][0]["verdict"] == "FAIL");
  CHECK(Reason(f.Call(f.guarded, "GET", "/api/v1/models/health/xray/versions/1", pusher)) != "");
  // Nothing was stored.
  CHECK(f.registry.Resolve("health/xray", "1").status().code() == core::Code::kNotFound);
  // Another repository, and the same one without access control: the server's place decides.
  CHECK(f.Call(f.guarded, "PUT", "/api/v1/models/retail/xray/versions/1", pusher, manifest).status == 201);
  CHECK(Reason(f.Call(f.open, "PUT", "/api/v1/models/health/xray/versions/1", "", manifest)) ==
        "RESIDENCY_DENIED");
  // Uploads (no repository) are not refused.
  CHECK(f.Call(f.guarded, "POST", "/api/v1/uploads", pusher).status == 201);

  bool audited = false;
  for (const Json& e : f.Audit()) {
    if (e["action"] == "push" && e["target"] == "health/xray:1") {
      audited = e["result"] == "refused" && e["reason"] == "RESIDENCY_DENIED" && e["status"] == 403 &&
                e["token"] == "ci";
    }
  }
  CHECK(audited);

  // Once the policy is gone, the same push goes through.
  REQUIRE(f.Call(f.guarded, "DELETE", "/api/v1/policies/eu-store", f.admin).status == 204);
  CHECK(f.Call(f.guarded, "PUT", "/api/v1/models/health/xray/versions/1", pusher, manifest).status == 201);
}

TEST_CASE("pulls are refused to tokens of sites the policy does not allow", "[api][policy][residency]") {
  Fixture f;
  std::string manifest = testing::StoreModelManifest(f.blobs.get(), {{"w.bin", "restricted weights"}});
  std::string other = testing::StoreModelManifest(f.blobs.get(), {{"w.bin", "open weights"}});
  std::string pusher = f.Token("ci", registry::Role::kPusher, "us-east-1");
  REQUIRE(f.Call(f.guarded, "POST", "/api/v1/policies", f.admin, kEu).status == 201);
  // Stored here: the policy allows region us-east for storage.
  REQUIRE(f.Call(f.guarded, "PUT", "/api/v1/models/health/xray/versions/1", pusher, manifest).status == 201);
  REQUIRE(f.Call(f.guarded, "PUT", "/api/v1/models/retail/xray/versions/1", pusher, other).status == 201);
  std::string layer = core::Sha256::Of("restricted weights").ToString();
  std::string open_layer = core::Sha256::Of("open weights").ToString();

  std::string eu = f.Token("eu-reader", registry::Role::kReader, "eu-paris");
  std::string eu_region = f.Token("eu-region-reader", registry::Role::kReader, "dc7", "eu-west");
  std::string us = f.Token("us-reader", registry::Role::kReader, "us-east-1", "us-east");
  std::string nowhere = f.Token("no-site", registry::Role::kReader, "");

  const std::vector<std::pair<std::string, std::string>> pulls = {
      {"GET", "/api/v1/models/health/xray/versions/1"},
      {"GET", "/api/v1/models/health/xray/versions/1/manifest"},
      {"GET", "/api/v1/models/health/xray/versions/1/files/w.bin"},
      {"HEAD", "/api/v1/models/health/xray/versions/1/files/w.bin"},
      {"GET", "/api/v1/blobs/" + layer},
  };
  for (const auto& [method, path] : pulls) {
    INFO(method << " " << path);
    CHECK(f.Call(f.guarded, method, path, eu).status / 100 == 2);
    CHECK(f.Call(f.guarded, method, path, eu_region).status / 100 == 2);
    auto r = f.Call(f.guarded, method, path, us);
    CHECK(r.status == 403);
    if (method == "GET") {
      CHECK(Reason(r) == "RESIDENCY_DENIED");
      CHECK(Message(r).find("policy eu-health: residency.pull: ") != std::string::npos);
      CHECK(Message(r).find("us-east-1") != std::string::npos);
    }
    auto n = f.Call(f.guarded, method, path, nowhere);
    CHECK(n.status == 403);
    if (method == "GET") CHECK(Message(n).find("(token no-site has no site)") != std::string::npos);
  }
  CHECK(Message(f.Call(f.guarded, "GET", "/api/v1/blobs/" + layer, us)).find("is held by health/xray") !=
        std::string::npos);
  // Evidence and attestations are the repository's content too (refused before they are looked up).
  CHECK(Reason(f.Call(f.guarded, "GET", "/api/v1/models/health/xray/versions/1/attestations", us)) ==
        "RESIDENCY_DENIED");
  CHECK(Reason(f.Call(f.guarded, "GET", "/api/v1/models/health/xray/versions/1/evidence", us)) ==
        "RESIDENCY_DENIED");
  // A version that does not exist is refused the same way: nothing is told about the repository.
  CHECK(Reason(f.Call(f.guarded, "GET", "/api/v1/models/health/xray/versions/9", us)) == "RESIDENCY_DENIED");
  // Other repositories, blobs they alone hold, and blob HEADs (pushes ask them) are not restricted.
  CHECK(f.Call(f.guarded, "GET", "/api/v1/models/retail/xray/versions/1/files/w.bin", us).status == 200);
  CHECK(f.Call(f.guarded, "GET", "/api/v1/blobs/" + open_layer, us).status == 200);
  CHECK(f.Call(f.guarded, "HEAD", "/api/v1/blobs/" + layer, us).status == 200);
  // Metadata (listing, the repository) stays readable.
  CHECK(f.Call(f.guarded, "GET", "/api/v1/models/health/xray/versions", us).status == 200);
  // Without access control the server's own site pulls: us-east-1 is not allowed.
  CHECK(Reason(f.Call(f.open, "GET", "/api/v1/models/health/xray/versions/1/manifest")) == "RESIDENCY_DENIED");

  int refusals = 0;
  bool named = false;
  for (const Json& e : f.Audit()) {
    if (e["result"] != "refused" || e["reason"] != "RESIDENCY_DENIED") continue;
    ++refusals;
    CHECK(e["status"] == 403);
    if (e["token"] == "us-reader" && e["target"] == "health/xray:1" && e["repository"] == "health/xray" &&
        e["site"] == "us-east-1") {
      named = true;
    }
  }
  // Five routes for each of two tokens, the held-blob read, attestations, evidence, version 9.
  CHECK(refusals == 14);
  CHECK(named);

  // A new version of the policy applies at once.
  REQUIRE(f.Call(f.guarded, "POST", "/api/v1/policies", f.admin,
                 R"({"name": "eu-health", "repositories": ["health/**"], "residency": {"pull": ["us-*"]}})")
              .status == 201);
  CHECK(f.Call(f.guarded, "GET", "/api/v1/blobs/" + layer, us).status == 200);
  CHECK(f.Call(f.guarded, "GET", "/api/v1/blobs/" + layer, eu).status == 403);
}

}  // namespace
}  // namespace sigil::api
