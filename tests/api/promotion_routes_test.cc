// The routes of docs/api.md "Promotions and alias history", driven without
// a socket over in-memory stores.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "api/service.h"
#include "core/json.h"
#include "registry/promotions.h"
#include "storage/blob_store.h"
#include "storage/meta_store.h"
#include "tests/api/model_fixture.h"
#include "tests/support/temp_dir.h"

namespace sigil::api {
namespace {

using core::Json;

constexpr char kOrigin[] = "sigil/test.example";
// Passes for any version the server signed.
constexpr char kSigned[] = R"({"name": "signed", "repositories": ["health/*"], "stages": ["production"],
  "signatures": {"roles": ["sigild"], "threshold": 1}})";

signing::PrivateKey NewKey(signing::Algorithm a = signing::Algorithm::kEcdsaP256Sha256) {
  auto k = signing::PrivateKey::Generate(a);
  REQUIRE(k.ok());
  return *k;
}

Json Body(const HttpResponse& r) { return core::ParseJson(r.body).value(); }

struct Fixture {
  testing::TempDir dir;
  std::unique_ptr<storage::BlobStore> blobs = storage::NewMemoryBlobStore();
  std::unique_ptr<storage::MetaStore> meta = storage::NewMemoryMetaStore();
  core::ManualClock clock;
  storage::UploadManager uploads{blobs.get(), meta.get(), &clock, storage::UploadOptions()};
  registry::Registry registry{RegistryOpts()};
  signing::PrivateKey server_key = NewKey();
  std::unique_ptr<attest::TransparencyLog> log = OpenLog();
  std::unique_ptr<registry::Attestations> attestations = OpenAttestations();
  registry::PolicyStore policies{registry::PolicyStoreOptions{meta.get(), &clock}};
  std::unique_ptr<registry::Promotions> promotions = StartPromotions();
  Metrics metrics;
  Service service{Options(true)};
  Service without{Options(false)};

  registry::RegistryOptions RegistryOpts() {
    registry::RegistryOptions o;
    o.blobs = blobs.get();
    o.meta = meta.get();
    o.clock = &clock;
    return o;
  }
  std::unique_ptr<attest::TransparencyLog> OpenLog() {
    attest::TransparencyLogOptions o;
    o.meta = meta.get();
    o.origin = kOrigin;
    o.key = NewKey(signing::Algorithm::kEd25519);
    auto l = attest::TransparencyLog::Open(o);
    REQUIRE(l.ok());
    return std::move(l).value();
  }
  std::unique_ptr<registry::Attestations> OpenAttestations() {
    registry::AttestationOptions o;
    o.registry = &registry;
    o.blobs = blobs.get();
    o.meta = meta.get();
    o.clock = &clock;
    o.log = log.get();
    o.server_key = server_key;
    auto a = registry::Attestations::Open(o);
    REQUIRE(a.ok());
    return std::move(a).value();
  }
  std::unique_ptr<registry::Promotions> StartPromotions() {
    registry::PromotionsOptions o;
    o.sources.registry = &registry;
    o.sources.blobs = blobs.get();
    o.sources.attestations = attestations.get();
    o.sources.clock = &clock;
    o.meta = meta.get();
    o.policies = &policies;
    o.origin = kOrigin;
    o.server_key = server_key;
    auto p = registry::Promotions::Start(std::move(o));
    REQUIRE(p.ok());
    return std::move(p).value();
  }
  ServiceOptions Options(bool with_promotions) {
    ServiceOptions o;
    o.registry = &registry;
    o.uploads = &uploads;
    o.blobs = blobs.get();
    o.meta = meta.get();
    o.metrics = &metrics;
    o.attestations = attestations.get();
    o.log = log.get();
    o.policies = &policies;
    if (with_promotions) o.promotions = promotions.get();
    return o;
  }
  static HttpResponse Call(Service& s, const std::string& method, const std::string& target,
                           const std::string& body = "") {
    HttpRequest r;
    r.method = method;
    auto q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) r.query = ParseQuery(target.substr(q + 1));
    r.body = body;
    std::string route;
    return s.Handle(r, &route);
  }
  HttpResponse Call(const std::string& method, const std::string& target, const std::string& body = "") {
    return Call(service, method, target, body);
  }
  void Push(const std::string& version, const std::string& weights) {
    std::string manifest = testing::StoreModelManifest(blobs.get(), {{"model.pt", weights}});
    REQUIRE(Call("PUT", "/api/v1/models/health/triage/versions/" + version, manifest).status == 201);
  }
};

TEST_CASE("promotion routes: submit, follow the job, read the alias history", "[api][promotions]") {
  Fixture f;
  REQUIRE(f.policies.Put(kSigned).ok());
  f.Push("1", "one");
  f.Push("2", "two");
  REQUIRE(f.Call("POST", "/api/v1/models/health/triage/versions/1/sign").status == 201);
  const std::string v = "/api/v1/models/health/triage/versions/";

  // Bad requests.
  CHECK(f.Call("GET", v + "1/promotions").status == 405);
  CHECK(Body(f.Call("POST", v + "1/promotions", "{")).dump().find("PARAMETER_INVALID") != std::string::npos);
  CHECK(f.Call("POST", v + "1/promotions", R"({"stage": "production"})").status == 400);
  CHECK(f.Call("POST", v + "1/promotions", R"({"to": 7})").status == 400);
  CHECK(f.Call("POST", v + "1/promotions", R"({"to": "a/b"})").status == 400);
  CHECK(f.Call("POST", v + "9/promotions", R"({"to": "production"})").status == 404);

  auto submitted = f.Call("POST", v + "1/promotions", R"({"to": "production"})");
  REQUIRE(submitted.status == 202);
  std::string id = Body(submitted)["job"]["id"];
  CHECK(Body(submitted)["job"]["kind"] == "promotion");
  f.promotions->WaitIdle();
  auto job = f.Call("GET", "/api/v1/jobs/" + id);
  REQUIRE(job.status == 200);
  Json j = Body(job)["job"];
  INFO(j.dump());
  CHECK(j["state"] == "completed");
  CHECK(j["result"]["verdict"] == "PASS");
  CHECK(j["result"]["decisions"][0]["policy"]["name"] == "signed");
  std::string vsa = j["result"]["vsa"];

  // Version 2 is unsigned: the job completes with FAIL.
  f.clock.Advance(1000);
  auto second = f.Call("POST", v + "2/promotions", R"({"to": "production"})");
  REQUIRE(second.status == 202);
  f.promotions->WaitIdle();
  Json j2 = Body(f.Call("GET", "/api/v1/jobs/" + std::string(Body(second)["job"]["id"])))["job"];
  CHECK(j2["result"]["verdict"] == "FAIL");
  auto jobs = f.Call("GET", "/api/v1/jobs");
  REQUIRE(jobs.status == 200);
  CHECK(Body(jobs)["jobs"].size() == 2);
  CHECK(Body(jobs)["jobs"][0]["id"] == j2["id"]);  // newest first
  CHECK(f.Call("GET", "/api/v1/jobs/job-nope").status == 404);

  // A job by id is shown and cancelled only within the caller's scope: out
  // of scope it does not exist; a reader may see it but not cancel it.
  auto as = [&](registry::Role role, const std::string& repos, const std::string& method, const std::string& path) {
    registry::Principal p;
    p.anonymous = false;
    p.name = "scoped";
    p.role = role;
    p.repos = {repos};
    registry::PrincipalScope scope(p);
    return f.Call(method, path);
  };
  CHECK(as(registry::Role::kAdmin, "finance/**", "GET", "/api/v1/jobs/" + id).status == 404);
  CHECK(as(registry::Role::kPromoter, "finance/**", "POST", "/api/v1/jobs/" + id + "/cancel").status == 404);
  CHECK(as(registry::Role::kReader, "health/**", "GET", "/api/v1/jobs/" + id).status == 200);
  CHECK(as(registry::Role::kReader, "health/**", "POST", "/api/v1/jobs/" + id + "/cancel").status == 403);
  CHECK(as(registry::Role::kPusher, "health/**", "POST", "/api/v1/jobs/" + id + "/cancel").status == 403);
  CHECK(as(registry::Role::kPromoter, "health/**", "POST", "/api/v1/jobs/" + id + "/cancel").status == 202);

  // An alias PUT is an override, recorded as such.
  REQUIRE(f.Call("PUT", "/api/v1/models/health/triage/aliases/production", R"({"ref": "2"})").status == 200);
  auto history = f.Call("GET", "/api/v1/models/health/triage/aliases/production/history");
  REQUIRE(history.status == 200);
  Json events = Body(history)["events"];
  REQUIRE(events.size() == 2);
  CHECK(events[0]["via"] == "override");
  CHECK(events[0]["version"] == "2");
  CHECK(events[0]["previous_version"] == "1");
  CHECK(events[1]["via"] == "promotion");
  CHECK(events[1]["job_id"] == id);
  CHECK(events[1]["vsa"] == vsa);
  CHECK_FALSE(events[1].contains("previous_digest"));
  CHECK(Body(f.Call("GET", "/api/v1/models/health/triage/aliases/production/history?limit=1"))["events"].size() == 1);
  CHECK(f.Call("GET", "/api/v1/models/health/triage/aliases/production/history?limit=0").status == 400);
  CHECK(f.Call("GET", "/api/v1/models/health/triage/aliases/production/history?limit=x").status == 400);
  CHECK(f.Call("GET", "/api/v1/models/health/none/aliases/production/history").status == 404);
  CHECK(f.Call("POST", "/api/v1/models/health/triage/aliases/production/history").status == 405);
  CHECK(Body(f.Call("GET", "/api/v1/models/health/triage/aliases/canary/history"))["events"].empty());
}

TEST_CASE("policy-test route: a dry run of a document against a version", "[api][promotions]") {
  Fixture f;
  f.Push("1", "one");
  const std::string url = "/api/v1/models/health/triage/versions/1/policy-test";
  Json body = {{"document", kSigned}, {"stage", "production"}};
  auto r = f.Call("POST", url, body.dump());
  REQUIRE(r.status == 200);
  CHECK(Body(r)["verdict"] == "FAIL");
  CHECK(Body(r)["policy"]["name"] == "signed");
  REQUIRE(f.Call("POST", "/api/v1/models/health/triage/versions/1/sign").status == 201);
  CHECK(Body(f.Call("POST", url, body.dump()))["verdict"] == "PASS");
  // Nothing was stored or started.
  CHECK(f.policies.List()->empty());
  CHECK(f.promotions->List(10)->empty());

  CHECK(Body(f.Call("POST", url, R"({"document": "{", "stage": "production"})")).dump().find("POLICY_INVALID") !=
        std::string::npos);
  CHECK(f.Call("POST", url, R"({"document": "{}"})").status == 400);
  CHECK(f.Call("POST", url, R"({"document": 1, "stage": "production"})").status == 400);
  CHECK(f.Call("POST", url, "[]").status == 400);
  CHECK(f.Call("GET", url).status == 405);
  CHECK(f.Call("POST", "/api/v1/models/health/triage/versions/5/policy-test", body.dump()).status == 404);

  // Without promotions configured.
  auto off = Fixture::Call(f.without, "POST", url, body.dump());
  CHECK(off.status == 503);
  CHECK(Body(off).dump().find("PROMOTIONS_UNAVAILABLE") != std::string::npos);
  CHECK(Fixture::Call(f.without, "POST", "/api/v1/models/health/triage/versions/1/promotions",
                      R"({"to": "production"})")
            .status == 503);
  // The history is the registry's: it answers without promotions.
  CHECK(Fixture::Call(f.without, "GET", "/api/v1/models/health/triage/aliases/production/history").status == 200);
}

}  // namespace
}  // namespace sigil::api
