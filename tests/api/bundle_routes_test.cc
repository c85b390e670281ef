// The bundle routes (docs/api.md "Bundles (air gap)") in Service::Handle,
// with access control: bodies, per-ref pull access, residency refusals
// audited as refused, the admin-only import.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "api/service.h"
#include "core/json.h"
#include "signing/keys.h"
#include "storage/blob_store.h"
#include "storage/meta_store.h"
#include "tests/registry/model_fixture.h"

namespace sigil::api {
namespace {

using core::Json;

signing::PrivateKey Key(signing::Algorithm a) {
  auto k = signing::PrivateKey::Generate(a);
  REQUIRE(k.ok());
  return *k;
}

struct Fixture {
  std::unique_ptr<storage::BlobStore> blobs = storage::NewMemoryBlobStore();
  std::unique_ptr<storage::MetaStore> meta = storage::NewMemoryMetaStore();
  core::ManualClock clock;
  storage::UploadManager uploads{blobs.get(), meta.get(), &clock, storage::UploadOptions()};
  registry::Registry registry{RegistryOptions()};
  std::unique_ptr<attest::TransparencyLog> log = OpenLog();
  std::unique_ptr<registry::AccessControl> access = OpenAccess();
  std::unique_ptr<registry::Attestations> attestations = OpenAttestations();
  registry::PolicyStore policies{registry::PolicyStoreOptions{meta.get(), &clock}};
  registry::Bundles bundles{BundleOptions()};
  Metrics metrics;
  Service service{Options(true)};
  Service unconfigured{Options(false)};

  registry::RegistryOptions RegistryOptions() {
    registry::RegistryOptions o;
    o.blobs = blobs.get();
    o.meta = meta.get();
    o.clock = &clock;
    return o;
  }
  std::unique_ptr<attest::TransparencyLog> OpenLog() {
    attest::TransparencyLogOptions o;
    o.meta = meta.get();
    o.origin = "sigil/test";
    o.key = Key(signing::Algorithm::kEd25519);
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
  std::unique_ptr<registry::Attestations> OpenAttestations() {
    registry::AttestationOptions o;
    o.registry = &registry;
    o.blobs = blobs.get();
    o.meta = meta.get();
    o.clock = &clock;
    o.log = log.get();
    o.server_key = Key(signing::Algorithm::kEcdsaP256Sha256);
    auto a = registry::Attestations::Open(o);
    REQUIRE(a.ok());
    return std::move(a).value();
  }
  registry::BundlesOptions BundleOptions() {
    registry::BundlesOptions o;
    o.registry = &registry;
    o.blobs = blobs.get();
    o.meta = meta.get();
    o.attestations = attestations.get();
    o.log = log.get();
    o.policies = &policies;
    o.clock = &clock;
    o.origin = "sigil/test";
    o.site = "eu-health-1";
    o.region = "eu-west";
    return o;
  }
  ServiceOptions Options(bool with_bundles) {
    ServiceOptions o{&registry, &uploads, blobs.get(), meta.get(), &metrics};
    o.log = log.get();
    o.access = access.get();
    o.attestations = attestations.get();
    o.policies = &policies;
    if (with_bundles) o.bundles = &bundles;
    o.site = "eu-health-1";
    o.region = "eu-west";
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
  HttpResponse Call(Service& s, const std::string& method, const std::string& path, const std::string& token,
                    const std::string& body) {
    HttpRequest r;
    r.method = method;
    r.path = path;
    if (!token.empty()) r.headers["authorization"] = "Bearer " + token;
    r.body = body;
    std::string route;
    return s.Handle(r, &route);
  }
};

std::string Reason(const HttpResponse& r) {
  auto body = core::ParseJson(r.body);
  if (!body.ok() || !body->contains("error")) return "";
  return (*body)["error"]["code"].get<std::string>();
}

TEST_CASE("export route: bodies, per-ref access, residency refusals audited", "[api][bundles]") {
  Fixture f;
  registry::fixtures::PushModel(f.registry, *f.blobs, "health/x", "1", {{"model.bin", "weights"}});
  registry::fixtures::PushModel(f.registry, *f.blobs, "other/y", "1", {{"model.bin", "other"}});
  std::string reader = f.Token("reader", registry::Role::kReader, {"health/*"});
  std::string admin = f.Token("admin", registry::Role::kAdmin, {"**"});

  for (const char* bad : {"", "[]", "{\"refs\": []}", "{\"refs\": [\"health/x:1\"]}",
                          "{\"refs\": [\"health/x:1\"], \"to\": \"eu\", \"extra\": 1}",
                          "{\"refs\": [\"health/x:1\"], \"to\": \"eu\", \"since\": [\"sha256:zz\"]}"}) {
    HttpResponse r = f.Call(f.service, "POST", "/api/v1/exports", reader, bad);
    INFO(bad << " -> " << r.body);
    CHECK(r.status == 400);
    CHECK(Reason(r) == "JSON_INVALID");
  }
  HttpResponse ok = f.Call(f.service, "POST", "/api/v1/exports", reader,
                           R"({"refs": ["health/x:1"], "to": "eu-west"})");
  INFO(ok.body);
  REQUIRE(ok.status == 200);
  Json plan = Json::parse(ok.body);
  CHECK(plan["versions"].size() == 1);
  CHECK(plan["origin"] == "sigil/test");
  CHECK(plan["site"] == "eu-health-1");

  // The route is on no repository: each ref's repository is checked.
  HttpResponse scoped = f.Call(f.service, "POST", "/api/v1/exports", reader,
                               R"({"refs": ["health/x:1", "other/y:1"], "to": "eu-west"})");
  CHECK(scoped.status == 403);
  CHECK(Reason(scoped) == "REPOSITORY_OUT_OF_SCOPE");

  REQUIRE(f.policies.Put(R"({"name": "eu-only", "repositories": ["health/*"], "residency": {"export": ["eu-*"]}})")
              .ok());
  HttpResponse denied = f.Call(f.service, "POST", "/api/v1/exports", reader,
                               R"({"refs": ["health/x:1"], "to": "us-east"})");
  CHECK(denied.status == 403);
  CHECK(Reason(denied) == "RESIDENCY_DENIED");
  auto audit = f.access->Query({});
  REQUIRE(audit.ok());
  bool refused = false;
  for (const auto& e : *audit) refused = refused || (e.reason == "RESIDENCY_DENIED" && e.result == "refused");
  CHECK(refused);

  CHECK(Reason(f.Call(f.unconfigured, "POST", "/api/v1/exports", admin,
                      R"({"refs": ["health/x:1"], "to": "eu-west"})")) == "BUNDLES_UNAVAILABLE");
  CHECK(f.Call(f.service, "GET", "/api/v1/exports", admin, "").status == 405);
}

TEST_CASE("import route: admin only, malformed and untrusted plans refused", "[api][bundles]") {
  Fixture f;
  registry::fixtures::PushModel(f.registry, *f.blobs, "health/x", "1", {{"model.bin", "weights"}});
  std::string pusher = f.Token("pusher", registry::Role::kPusher, {"**"});
  std::string admin = f.Token("admin", registry::Role::kAdmin, {"**"});
  HttpResponse plan = f.Call(f.service, "POST", "/api/v1/exports", admin, R"({"refs": ["health/x:1"], "to": "eu"})");
  REQUIRE(plan.status == 200);

  HttpResponse role = f.Call(f.service, "POST", "/api/v1/bundles", pusher, plan.body);
  CHECK(role.status == 403);
  CHECK(Reason(role) == "ROLE_INSUFFICIENT");
  HttpResponse garbage = f.Call(f.service, "POST", "/api/v1/bundles", admin, "{\"schema\": 1}");
  CHECK(garbage.status == 400);
  CHECK(Reason(garbage) == "BUNDLE_INVALID");
  // This server knows no peer log (not even its own): refused, and audited.
  HttpResponse untrusted = f.Call(f.service, "POST", "/api/v1/bundles", admin, plan.body);
  CHECK(untrusted.status == 403);
  CHECK(Reason(untrusted) == "CHECKPOINT_UNTRUSTED");
  CHECK(Reason(f.Call(f.unconfigured, "POST", "/api/v1/bundles", admin, plan.body)) == "BUNDLES_UNAVAILABLE");
}

}  // namespace
}  // namespace sigil::api
