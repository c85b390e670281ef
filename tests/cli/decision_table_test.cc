#include "cli/decision_table.h"

#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace sigil::cli {
namespace {

using nlohmann::json;

const char* kFail = R"({"verdict":"FAIL","policy":{"name":"eu-health","digest":"sha256:0123456789abcdef"},
  "rules":[{"rule":"scope.repository","passed":true,"reason":"health/* covers health/xray"},
           {"rule":"residency.pull","passed":false,"reason":"site us-east-1 is not in [eu-*]"}]})";
const char* kPass = R"({"verdict":"PASS","policy":{"name":"open","digest":"sha256:fedcba9876543210"},
  "rules":[{"rule":"residency.pull","passed":true,"reason":"site\neu-west-1 is in [eu-*]"}]})";

TEST_CASE("a decision prints as a rule table with its verdict", "[cli][policy]") {
  std::ostringstream out;
  CHECK_FALSE(PrintDecisions(json::parse(kFail), out));
  CHECK(out.str() ==
        "policy eu-health (0123456789ab): FAIL\n"
        "RULE              RESULT  REASON\n"
        "scope.repository  PASS    health/* covers health/xray\n"
        "residency.pull    FAIL    site us-east-1 is not in [eu-*]\n");
}

TEST_CASE("a list of decisions passes only when every one passes", "[cli][policy]") {
  std::ostringstream out;
  CHECK(PrintDecisions(json::array({json::parse(kPass)}), out));
  // A reason's line break does not break the table.
  CHECK(out.str() ==
        "policy open (fedcba987654): PASS\n"
        "RULE            RESULT  REASON\n"
        "residency.pull  PASS    site eu-west-1 is in [eu-*]\n");
  std::ostringstream both;
  CHECK_FALSE(PrintDecisions(json{{"decisions", {json::parse(kPass), json::parse(kFail)}}}, both));
  CHECK(both.str().find("policy open (fedcba987654): PASS\n") == 0);
  CHECK(both.str().find("\n\npolicy eu-health (0123456789ab): FAIL\n") != std::string::npos);
}

TEST_CASE("no decision means no policy applies and malformed decisions fail", "[cli][policy]") {
  std::ostringstream none;
  CHECK(PrintDecisions(json::array(), none));
  CHECK(none.str() == "no policy applies\n");
  std::ostringstream odd;
  CHECK_FALSE(PrintDecisions(json::parse(R"({"rules":[{"rule":7},"x"]})"), odd));
  CHECK(odd.str() ==
        "policy -: FAIL (no verdict)\n"
        "RULE  RESULT  REASON\n"
        "7     FAIL    -\n"
        "-     FAIL    -\n");
}

}  // namespace
}  // namespace sigil::cli
