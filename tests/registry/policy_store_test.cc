#include "registry/policy_store.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/json.h"
#include "registry/access.h"
#include "storage/meta_store.h"

namespace sigil::registry {
namespace {

const std::string kEu = R"({"name": "eu-health", "repositories": ["health/**"],
  "residency": {"store": ["eu-*"], "pull": ["eu-*", "eu-west"], "classification": "restricted"}})";
const std::string kEuStricter = R"({"name": "eu-health", "repositories": ["health/**"],
  "residency": {"store": ["eu-*"], "pull": ["eu-frankfurt-1"]}})";
const std::string kGate = R"({"name": "production-gate", "repositories": ["health/*"],
  "stages": ["production"], "scan": {"max_severity": "low"}})";

struct Fixture {
  std::unique_ptr<storage::MetaStore> meta = storage::NewMemoryMetaStore();
  core::ManualClock clock;
  PolicyStore store{PolicyStoreOptions{meta.get(), &clock}};
};

Principal Token(const std::string& name, Role role, std::string site = "", std::string region = "") {
  Principal p;
  p.anonymous = false;
  p.token_id = "0123456789abcdef";
  p.name = name;
  p.role = role;
  p.repos = {"**"};
  p.site = std::move(site);
  p.region = std::move(region);
  return p;
}

policies::Context Pull(std::string token, std::string site, std::string region = "") {
  policies::Context c;
  c.token_name = std::move(token);
  c.site = std::move(site);
  c.region = std::move(region);
  c.action = policies::Action::kPull;
  return c;
}

TEST_CASE("policies are stored in versions and the same bytes store nothing", "[policy_store]") {
  Fixture f;
  PrincipalScope scope(Token("ops", Role::kAdmin));
  auto first = f.store.Put(kEu);
  REQUIRE(first.ok());
  CHECK(first->created);
  CHECK(first->record.name == "eu-health");
  CHECK(first->record.version == 1);
  CHECK(first->record.created_by == "ops");
  CHECK(first->record.created_micros == f.clock.NowMicros());
  CHECK(first->record.document == kEu);
  CHECK(first->record.digest == first->record.policy.digest);

  auto again = f.store.Put(kEu);
  REQUIRE(again.ok());
  CHECK_FALSE(again->created);
  CHECK(again->record.version == 1);

  f.clock.Advance(1000);
  auto second = f.store.Put(kEuStricter);
  REQUIRE(second.ok());
  CHECK(second->created);
  CHECK(second->record.version == 2);
  CHECK(second->record.digest != first->record.digest);

  auto latest = f.store.Get("eu-health");
  REQUIRE(latest.ok());
  CHECK(latest->version == 2);
  CHECK(latest->document == kEuStricter);
  auto old = f.store.Get("eu-health", 1);
  REQUIRE(old.ok());
  CHECK(old->document == kEu);
  CHECK(old->policy.residency->pull->size() == 2);
  auto missing = f.store.Get("eu-health", 3);
  CHECK(missing.status().reason() == "POLICY_UNKNOWN");
  CHECK(f.store.Get("nobody").status().reason() == "POLICY_UNKNOWN");
  CHECK(f.store.Get("bad\nname").status().reason() == "POLICY_UNKNOWN");

  // The old version reverts by being put again: a new version, not the old number.
  auto revert = f.store.Put(kEu);
  REQUIRE(revert.ok());
  CHECK(revert->created);
  CHECK(revert->record.version == 3);
}

TEST_CASE("list gives the latest of each live name and deletion is a tombstone", "[policy_store]") {
  Fixture f;
  REQUIRE(f.store.Put(kGate).ok());
  REQUIRE(f.store.Put(kEu).ok());
  REQUIRE(f.store.Put(kEuStricter).ok());
  auto list = f.store.List();
  REQUIRE(list.ok());
  REQUIRE(list->size() == 2);
  CHECK((*list)[0].name == "eu-health");
  CHECK((*list)[0].version == 2);
  CHECK((*list)[1].name == "production-gate");
  CHECK((*list)[1].created_by == "server");  // no principal: the server's own thread

  REQUIRE(f.store.Delete("eu-health").ok());
  CHECK(f.store.Delete("eu-health").reason() == "POLICY_UNKNOWN");
  CHECK(f.store.Delete("never").reason() == "POLICY_UNKNOWN");
  CHECK(f.store.Get("eu-health").status().reason() == "POLICY_UNKNOWN");
  list = f.store.List();
  REQUIRE(list.ok());
  REQUIRE(list->size() == 1);
  CHECK((*list)[0].name == "production-gate");

  auto history = f.store.History("eu-health");
  REQUIRE(history.ok());
  REQUIRE(history->size() == 3);
  CHECK(history->back().deleted);
  CHECK(history->back().document.empty());
  CHECK(history->back().version == 3);
  auto tomb = f.store.Get("eu-health", 3);
  REQUIRE(tomb.ok());
  CHECK(tomb->deleted);
  CHECK(f.store.History("never").status().reason() == "POLICY_UNKNOWN");

  // Putting the name again revives it after the tombstone.
  auto back = f.store.Put(kEu);
  REQUIRE(back.ok());
  CHECK(back->created);
  CHECK(back->record.version == 4);
  CHECK(f.store.List()->size() == 2);

  // A second store over the same metadata sees the same (nothing lives only in the cache).
  PolicyStore other(PolicyStoreOptions{f.meta.get(), &f.clock});
  auto seen = other.List();
  REQUIRE(seen.ok());
  REQUIRE(seen->size() == 2);
  CHECK((*seen)[0].version == 4);
}

TEST_CASE("malformed documents and names are refused and store nothing", "[policy_store]") {
  Fixture f;
  for (const std::string& bad : {std::string(""), std::string("{"), std::string("[]"),
                                 std::string(R"({"name": "x"})"),
                                 std::string(R"({"name": "x", "repositories": ["a/*"], "nope": 1})"),
                                 std::string(R"({"name": "has space", "repositories": ["a/*"]})"),
                                 std::string(R"({"name": "a/b", "repositories": ["a/*"]})"),
                                 std::string(R"({"name": "..", "repositories": ["a/*"]})"),
                                 std::string(R"({"name": ")") + std::string(65, 'n') +
                                     R"(", "repositories": ["a/*"]})",
                                 std::string(R"({"name": "x", "repositories": ["a/*"], "residency": {"pull": "eu"}})")}) {
    INFO(bad);
    auto r = f.store.Put(bad);
    CHECK(r.status().code() == core::Code::kInvalidArgument);
    CHECK(r.status().reason() == "POLICY_INVALID");
  }
  CHECK(f.store.List()->empty());
  size_t keys = 0;
  REQUIRE(f.meta->Scan("meta", "", [&](std::string_view, std::string_view) { return ++keys, true; }).ok());
  CHECK(keys == 0);
}

TEST_CASE("put and delete need the admin role", "[policy_store]") {
  Fixture f;
  REQUIRE(f.store.Put(kEu).ok());
  for (Role role : {Role::kReader, Role::kPusher, Role::kPromoter}) {
    PrincipalScope scope(Token("ci", role));
    CHECK(f.store.Put(kGate).status().reason() == "ROLE_INSUFFICIENT");
    CHECK(f.store.Delete("eu-health").reason() == "ROLE_INSUFFICIENT");
    // Reads need no role here (api/ checks them).
    CHECK(f.store.Get("eu-health").ok());
  }
  CHECK(f.store.List()->size() == 1);
}

TEST_CASE("applicable policies follow repository globs and stages", "[policy_store]") {
  Fixture f;
  REQUIRE(f.store.Put(kEu).ok());
  REQUIRE(f.store.Put(kGate).ok());
  auto names = [&](std::string_view repo, std::optional<std::string_view> stage) {
    std::vector<std::string> out;
    auto a = f.store.Applicable(repo, stage);
    REQUIRE(a.ok());
    for (const auto& r : *a) out.push_back(r.name);
    return out;
  };
  CHECK(names("health/xray", std::nullopt) == std::vector<std::string>{"eu-health", "production-gate"});
  CHECK(names("health/xray", "production") == std::vector<std::string>{"eu-health", "production-gate"});
  CHECK(names("health/xray", "staging") == std::vector<std::string>{"eu-health"});
  CHECK(names("health/deep/xray", std::nullopt) == std::vector<std::string>{"eu-health"});
  CHECK(names("retail/xray", std::nullopt).empty());
  REQUIRE(f.store.Delete("production-gate").ok());
  CHECK(names("health/xray", "production") == std::vector<std::string>{"eu-health"});
}

TEST_CASE("residency refusals name the policy and the rule", "[policy_store]") {
  Fixture f;
  CHECK(f.store.CheckResidency("health/xray", Pull("us-reader", "us-east-1")).ok());
  CHECK_FALSE(*f.store.RestrictsResidency(policies::Action::kPull));
  REQUIRE(f.store.Put(kGate).ok());  // no residency rule: still allows everything
  CHECK(f.store.CheckResidency("health/xray", Pull("us-reader", "us-east-1")).ok());
  CHECK_FALSE(*f.store.RestrictsResidency(policies::Action::kPull));
  REQUIRE(f.store.Put(kEu).ok());
  CHECK(*f.store.RestrictsResidency(policies::Action::kPull));
  CHECK(*f.store.RestrictsResidency(policies::Action::kStore));
  CHECK_FALSE(*f.store.RestrictsResidency(policies::Action::kExport));

  core::Status s = f.store.CheckResidency("health/xray", Pull("us-reader", "us-east-1", "us-east"));
  CHECK(s.code() == core::Code::kPermissionDenied);
  CHECK(s.reason() == "RESIDENCY_DENIED");
  CHECK(s.message().find("policy eu-health: residency.pull: ") == 0);
  CHECK(s.message().find("us-east-1") != std::string::npos);
  auto detail = core::ParseJson(s.detail());
  REQUIRE(detail.ok());
  REQUIRE((*detail)["decisions"].size() == 1);
  CHECK((*detail)["decisions"][0]["verdict"] == "FAIL");
  CHECK((*detail)["decisions"][0]["policy"]["name"] == "eu-health");

  // Site or region may match.
  CHECK(f.store.CheckResidency("health/xray", Pull("eu-reader", "eu-frankfurt-1")).ok());
  CHECK(f.store.CheckResidency("health/xray", Pull("eu-reader", "dc7", "eu-west")).ok());
  // Repositories the policy does not cover are not restricted.
  CHECK(f.store.CheckResidency("retail/xray", Pull("us-reader", "us-east-1")).ok());
  // A token without a site is refused, and told why.
  s = f.store.CheckResidency("health/xray", Pull("ci", ""));
  CHECK(s.reason() == "RESIDENCY_DENIED");
  CHECK(s.message().find("(token ci has no site)") != std::string::npos);
  s = f.store.CheckResidency("health/xray", Pull("anonymous", ""));
  CHECK(s.message().find("(an anonymous caller has no site)") != std::string::npos);

  policies::Context store;
  store.action = policies::Action::kStore;
  store.site = "us-east-1";
  s = f.store.CheckResidency("health/xray", store);
  CHECK(s.reason() == "RESIDENCY_DENIED");
  CHECK(s.message().find("policy eu-health: residency.store: ") == 0);
  store.site = "eu-paris";
  CHECK(f.store.CheckResidency("health/xray", store).ok());

  // The cache follows every change: the stricter version refuses eu-paris pulls.
  CHECK(f.store.CheckResidency("health/xray", Pull("eu", "eu-paris")).ok());
  REQUIRE(f.store.Put(kEuStricter).ok());
  CHECK(f.store.CheckResidency("health/xray", Pull("eu", "eu-paris")).reason() == "RESIDENCY_DENIED");
  CHECK(f.store.CheckResidency("health/xray", Pull("eu", "eu-frankfurt-1")).ok());
  REQUIRE(f.store.Delete("eu-health").ok());
  CHECK(f.store.CheckResidency("health/xray", Pull("us", "us-east-1")).ok());
  CHECK_FALSE(*f.store.RestrictsResidency(policies::Action::kPull));

  policies::Context promote;
  CHECK(f.store.CheckResidency("health/xray", promote).code() == core::Code::kInvalidArgument);
}

TEST_CASE("every policy that states the rule must pass", "[policy_store]") {
  Fixture f;
  REQUIRE(f.store.Put(R"({"name": "a", "repositories": ["**"], "residency": {"pull": ["eu-*", "us-*"]}})").ok());
  REQUIRE(f.store.Put(R"({"name": "b", "repositories": ["health/*"], "residency": {"pull": []}})").ok());
  core::Status s = f.store.CheckResidency("health/xray", Pull("eu", "eu-paris"));
  CHECK(s.message().find("policy b: residency.pull: ") == 0);
  auto detail = core::ParseJson(s.detail());
  REQUIRE(detail.ok());
  CHECK((*detail)["decisions"].size() == 2);
  CHECK(f.store.CheckResidency("retail/xray", Pull("eu", "eu-paris")).ok());
  CHECK(f.store.CheckResidency("retail/xray", Pull("cn", "cn-north")).reason() == "RESIDENCY_DENIED");
}

TEST_CASE("concurrent puts of one name store consecutive versions", "[policy_store]") {
  Fixture f;
  std::vector<std::thread> threads;
  std::atomic<int> created{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      std::string doc = R"({"name": "p", "repositories": ["r/)" + std::to_string(i) + R"("]})";
      auto r = f.store.Put(doc);
      if (r.ok() && r->created) ++created;
      // Readers meanwhile always see a consistent list.
      auto list = f.store.List();
      if (list.ok()) CHECK(list->size() == 1);
    });
  }
  for (auto& t : threads) t.join();
  CHECK(created == 8);
  auto history = f.store.History("p");
  REQUIRE(history.ok());
  REQUIRE(history->size() == 8);
  for (size_t i = 0; i < history->size(); ++i) CHECK((*history)[i].version == i + 1);
  CHECK(f.store.Get("p")->version == 8);
}

TEST_CASE("corrupt stored records are reported, not trusted", "[policy_store]") {
  Fixture f;
  REQUIRE(f.store.Put(kEu).ok());
  std::string key = std::string("policy\0eu-health\0", 17) + "0000000000000002";
  REQUIRE(f.meta->Put("meta", key, R"({"digest": "sha256:00", "created": 1, "by": "x", "document": "{}"})").ok());
  PolicyStore fresh(PolicyStoreOptions{f.meta.get(), &f.clock});
  CHECK(fresh.Get("eu-health").status().code() == core::Code::kDataLoss);
  CHECK(fresh.List().status().code() == core::Code::kDataLoss);
  CHECK(fresh.CheckResidency("health/x", Pull("eu", "eu-paris")).code() == core::Code::kDataLoss);
}

}  // namespace
}  // namespace sigil::registry
