#include "cli/decision_table.h"

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"

namespace sigil::cli {
namespace {

using nlohmann::json;

std::string Text(const json& object, const char* key) {
  if (!object.is_object() || !object.contains(key)) return "-";
  const json& v = object[key];
  if (v.is_string()) return v.get<std::string>().empty() ? "-" : v.get<std::string>();
  if (v.is_null()) return "-";
  return v.dump();
}

// A reason on one line: a table row must not be broken by the server's text.
std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return s;
}

bool PrintOne(const json& decision, std::ostream& out) {
  const json policy = decision.is_object() && decision.contains("policy") ? decision["policy"] : json();
  std::string verdict = Text(decision, "verdict");
  bool passed = verdict == "PASS";
  std::string digest = Text(policy, "digest");
  out << "policy " << Text(policy, "name");
  if (digest != "-") out << " (" << ShortDigest(digest) << ")";
  out << ": " << (passed ? "PASS" : verdict == "-" ? "FAIL (no verdict)" : verdict) << "\n";
  std::vector<std::vector<std::string>> rows = {{"RULE", "RESULT", "REASON"}};
  if (decision.is_object() && decision.contains("rules") && decision["rules"].is_array()) {
    for (const json& rule : decision["rules"]) {
      bool ok = rule.is_object() && rule.contains("passed") && rule["passed"].is_boolean() &&
                rule["passed"].get<bool>();
      rows.push_back({Text(rule, "rule"), ok ? "PASS" : "FAIL", OneLine(Text(rule, "reason"))});
    }
  }
  out << FormatTable(rows);
  return passed;
}

}  // namespace

bool PrintDecisions(const json& decisions_or_decision, std::ostream& out) {
  const json* list = &decisions_or_decision;
  if (list->is_object() && list->contains("decisions")) list = &(*list)["decisions"];
  if (list->is_object()) return PrintOne(*list, out);
  if (!list->is_array() || list->empty()) {
    out << "no policy applies\n";
    return true;
  }
  bool all = true;
  bool first = true;
  for (const json& d : *list) {
    if (!first) out << "\n";
    first = false;
    all = PrintOne(d, out) && all;
  }
  return all;
}

}  // namespace sigil::cli
