#include "cli/policy_command.h"

#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/decision_table.h"
#include "core/fs.h"
#include "core/json.h"

namespace sigil::cli {
namespace {

using nlohmann::json;

// policies::kMaxPolicyBytes: larger files are refused here, before sending.
constexpr size_t kMaxPolicyFile = 64 << 10;

std::string Str(const json& object, const char* key) {
  if (!object.is_object() || !object.contains(key)) return "";
  const json& v = object[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

core::Result<json> ParseAnswer(const HttpResponse& response) {
  auto parsed = core::ParseJson(response.body);
  if (!parsed.ok() || !parsed->is_object()) {
    return core::Internal("the server's answer is not a JSON object");
  }
  return *parsed;
}

// Policy names are [A-Za-z0-9._-]; anything else could not name one, and
// must not reshape the request path.
core::Status CheckName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 64 && name != "." && name != "..";
  for (char c : name) {
    ok = ok && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                c == '_' || c == '-');
  }
  if (!ok) return core::NotFound("no policy named '" + name + "'", "POLICY_UNKNOWN");
  return core::OkStatus();
}

}  // namespace

core::Result<HttpResponse> PolicyCommands::Call(const HttpRequest& request) {
  ASSIGN_OR_RETURN(HttpResponse r, PerformWithRetry(*http_, request, retry_budget_));
  if (!r.ok()) return ErrorFromResponse(r);
  return r;
}

core::Result<std::string> PolicyCommands::Put(const std::string& file) {
  ASSIGN_OR_RETURN(std::string document, core::ReadFile(file, kMaxPolicyFile));
  ASSIGN_OR_RETURN(HttpResponse r, Call(HttpRequest{.method = "POST",
                                                    .path = "/api/v1/policies",
                                                    .headers = {"Content-Type: application/json"},
                                                    .body = document}));
  ASSIGN_OR_RETURN(json record, ParseAnswer(r));
  if (json_) return core::DumpJson(record) + "\n";
  if (r.status == 201) {
    return "stored policy " + Str(record, "name") + " version " + Str(record, "version") + " (" +
           Str(record, "digest") + ")\n";
  }
  return "policy " + Str(record, "name") + " unchanged (version " + Str(record, "version") + ")\n";
}

core::Result<std::string> PolicyCommands::Get(const std::string& name, uint64_t version) {
  RETURN_IF_ERROR(CheckName(name));
  std::string path = "/api/v1/policies/" + name;
  if (version > 0) path += "/versions/" + std::to_string(version);
  ASSIGN_OR_RETURN(HttpResponse r, Call(HttpRequest{.path = path}));
  ASSIGN_OR_RETURN(json record, ParseAnswer(r));
  if (json_) return core::DumpJson(record) + "\n";
  if (record.value("deleted", false)) {
    return "# policy " + name + " version " + Str(record, "version") + " is a deletion\n";
  }
  std::string document = Str(record, "document");
  if (!document.empty() && document.back() != '\n') document += "\n";
  return document;
}

core::Result<std::string> PolicyCommands::List() {
  ASSIGN_OR_RETURN(HttpResponse r, Call(HttpRequest{.path = "/api/v1/policies"}));
  ASSIGN_OR_RETURN(json answer, ParseAnswer(r));
  if (json_) return core::DumpJson(answer) + "\n";
  std::vector<std::vector<std::string>> rows = {{"NAME", "VERSION", "DIGEST", "CREATED", "BY"}};
  if (answer.contains("policies") && answer["policies"].is_array()) {
    for (const json& p : answer["policies"]) {
      rows.push_back({Str(p, "name"), Str(p, "version"), ShortDigest(Str(p, "digest")), Str(p, "created"),
                      Str(p, "created_by")});
    }
  }
  return FormatTable(rows);
}

core::Result<std::string> PolicyCommands::Remove(const std::string& name) {
  RETURN_IF_ERROR(CheckName(name));
  ASSIGN_OR_RETURN(HttpResponse r, Call(HttpRequest{.method = "DELETE", .path = "/api/v1/policies/" + name}));
  (void)r;
  if (json_) return core::DumpJson(json{{"name", name}, {"deleted", true}}) + "\n";
  return "deleted policy " + name + " (its versions stay readable)\n";
}

core::Result<PolicyTestOutcome> PolicyCommands::Test(const std::string& file, const Reference& ref,
                                                     const std::string& stage) {
  ASSIGN_OR_RETURN(std::string document, core::ReadFile(file, kMaxPolicyFile));
  std::string body = core::DumpJson(json{{"document", document}, {"stage", stage}});
  ASSIGN_OR_RETURN(HttpResponse r,
                   Call(HttpRequest{.method = "POST",
                                    .path = "/api/v1/models/" + ref.repository + "/versions/" + ref.ref() +
                                            "/policy-test",
                                    .headers = {"Content-Type: application/json"},
                                    .body = body}));
  ASSIGN_OR_RETURN(json decision, ParseAnswer(r));
  PolicyTestOutcome out;
  std::ostringstream table;
  out.passed = PrintDecisions(decision, table);
  out.output = json_ ? core::DumpJson(decision) + "\n" : table.str();
  return out;
}

}  // namespace sigil::cli
