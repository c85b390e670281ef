// The human forms `sigil promote` and `sigil history` print.
#include "cli/promote_command.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace sigil::cli {
namespace {

using json = nlohmann::json;

json Decision(bool passed) {
  return {{"verdict", passed ? "PASS" : "FAIL"},
          {"policy", {{"name", "gate"}, {"digest", "sha256:" + std::string(64, 'a')}}},
          {"rules", {{{"rule", "signatures"}, {"passed", passed}, {"reason", "1 required signatures: found 0"}}}}};
}

json Job(const std::string& state, json result, json error = nullptr) {
  json j = {{"id", "job-1"}, {"kind", "promotion"}, {"repository", "health/triage"}, {"version", "2"},
            {"state", state}, {"request", {{"stage", "production"}}}};
  if (!result.is_null()) j["result"] = result;
  if (!error.is_null()) j["error"] = error;
  return j;
}

TEST_CASE("a promotion job prints its rule table and the VSA on PASS", "[cli][promote]") {
  std::string pass = FormatPromotionJob(Job("completed", {{"verdict", "PASS"}, {"decisions", {Decision(true)}},
                                                          {"vsa", "sha256:" + std::string(64, 'b')}, {"log_index", 7}}));
  CHECK(pass.find("policy gate") != std::string::npos);
  CHECK(pass.find("signatures") != std::string::npos);
  CHECK(pass.find("promoted health/triage:2 to production") != std::string::npos);
  CHECK(pass.find("verification summary sha256:bbbb") != std::string::npos);
  CHECK(pass.find("(log index 7)") != std::string::npos);

  std::string fail = FormatPromotionJob(Job("completed", {{"verdict", "FAIL"}, {"decisions", {Decision(false)}}}));
  CHECK(fail.find("FAIL") != std::string::npos);
  CHECK(fail.find("not promoted") != std::string::npos);
  CHECK(fail.find("verification summary") == std::string::npos);

  std::string moved = FormatPromotionJob(
      Job("failed", nullptr, {{"reason", "ALIAS_MOVED"}, {"message", "it points at '3' now"}}));
  CHECK(moved.find("failed (ALIAS_MOVED: it points at '3' now)") != std::string::npos);
  // Damaged answers print what they can rather than throwing.
  CHECK_NOTHROW(FormatPromotionJob(json::object()));
  CHECK_NOTHROW(FormatPromotionJob(Job("completed", {{"decisions", 5}, {"log_index", "x"}})));
}

TEST_CASE("an alias history prints one line a move, newest first", "[cli][promote]") {
  json body = {{"alias", "production"},
               {"events",
                {{{"time", "2026-12-01T10:00:00Z"}, {"by", "root"}, {"via", "delete"}, {"version", ""},
                  {"previous_version", "2"}},
                 {{"time", "2026-11-30T10:00:00Z"}, {"by", "ci-gate"}, {"via", "promotion"}, {"version", "2"},
                  {"previous_version", ""}, {"job_id", "job-9"}, {"vsa", "sha256:" + std::string(64, 'c')}}}}};
  std::string out = FormatAliasHistory(body);
  CHECK(out.find("TIME") == 0);
  size_t del = out.find("delete");
  size_t promo = out.find("promotion");
  REQUIRE(del != std::string::npos);
  REQUIRE(promo != std::string::npos);
  CHECK(del < promo);
  CHECK(out.find("sha256:cccccccccccc job-9") != std::string::npos);
  CHECK(FormatAliasHistory({{"alias", "canary"}, {"events", json::array()}}) == "alias canary has never been set\n");
  CHECK_NOTHROW(FormatAliasHistory({{"events", {1, "x", nullptr}}}));
}

}  // namespace
}  // namespace sigil::cli
