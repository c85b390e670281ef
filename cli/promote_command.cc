#include "cli/promote_command.h"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <thread>

#include "cli/decision_table.h"
#include "core/json.h"

namespace sigil::cli {
namespace {

using json = nlohmann::json;

std::string Str(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string Short(const std::string& digest) {
  return digest.rfind("sha256:", 0) == 0 && digest.size() > 19 ? digest.substr(0, 19) : digest;
}

core::Result<json> FollowJob(HttpClient& http, const std::string& id, const JobWait& wait) {
  auto deadline = std::chrono::steady_clock::now() + wait.limit;
  auto delay = std::chrono::milliseconds(100);
  std::string last_progress;
  while (true) {
    ASSIGN_OR_RETURN(HttpResponse r,
                     PerformWithRetry(http, HttpRequest{.path = "/api/v1/jobs/" + UrlEncode(id)}, wait.retry_budget));
    if (!r.ok()) return ErrorFromResponse(r);
    ASSIGN_OR_RETURN(json body, core::ParseJson(r.body, {64 << 20, 64}));
    if (!body.is_object() || !body.contains("job")) return core::Internal("the server's job answer holds no job");
    const json& job = body["job"];
    std::string state = Str(job, "state");
    if (state == "completed" || state == "failed" || state == "cancelled") return job;
    std::string progress = Str(job, "progress");
    if (!wait.json && progress != last_progress) {
      std::fprintf(stderr, "%s: %s\n", id.c_str(), progress.c_str());
      last_progress = progress;
    }
    if (std::chrono::steady_clock::now() + delay > deadline) {
      return core::DeadlineExceeded("promotion " + id + " is still " + state + " (" + progress +
                                        "); follow it with GET /api/v1/jobs/" + id,
                                    "JOB_WAIT_TIMEOUT");
    }
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(1000));
  }
}

}  // namespace

std::string FormatPromotionJob(const json& job) {
  std::ostringstream out;
  const json result = job.is_object() && job.contains("result") ? job["result"] : json();
  std::string label = Str(job, "repository") + ":" + Str(job, "version");
  std::string stage = job.is_object() && job.contains("request") ? Str(job["request"], "stage") : "";
  if (result.is_object() && result.contains("decisions")) PrintDecisions(result["decisions"], out);
  if (Str(job, "state") != "completed") {
    const json e = job.is_object() && job.contains("error") ? job["error"] : json();
    out << "promotion " << Str(job, "id") << " of " << label << " to " << stage << ": " << Str(job, "state") << " ("
        << Str(e, "reason") << ": " << Str(e, "message") << ")\n";
    return out.str();
  }
  if (Str(result, "verdict") == "PASS") {
    out << "promoted " << label << " to " << stage;
    if (!Str(result, "vsa").empty()) {
      out << "\nverification summary " << Str(result, "vsa");
      if (result.contains("log_index") && result["log_index"].is_number()) {
        out << " (log index " << result["log_index"].get<uint64_t>() << ")";
      }
    }
    out << "\n";
  } else {
    out << "not promoted: " << label << " does not pass the policies for " << stage << "\n";
  }
  return out.str();
}

core::Result<JobOutcome> PromoteRemote(HttpClient& http, const Reference& ref, const std::string& stage,
                                       const JobWait& wait) {
  std::string path = "/api/v1/models/" + ref.repository + "/versions/" + ref.ref() + "/promotions";
  ASSIGN_OR_RETURN(HttpResponse r, PerformWithRetry(http,
                                                    HttpRequest{.method = "POST",
                                                                .path = path,
                                                                .headers = {"Content-Type: application/json"},
                                                                .body = core::DumpJson(json{{"to", stage}})},
                                                    wait.retry_budget));
  if (!r.ok()) return ErrorFromResponse(r);
  ASSIGN_OR_RETURN(json answer, core::ParseJson(r.body));
  if (!answer.is_object() || !answer.contains("job") || Str(answer["job"], "id").empty()) {
    return core::Internal("the server's answer to " + path + " names no job");
  }
  json job = answer["job"];
  JobOutcome out;
  if (!wait.wait) {
    out.output = wait.json ? core::DumpJson(json{{"job", job}}) + "\n"
                           : "promotion " + Str(job, "id") + " queued; follow it with GET /api/v1/jobs/" +
                                 Str(job, "id") + " or run again with --wait\n";
    return out;
  }
  ASSIGN_OR_RETURN(job, FollowJob(http, Str(job, "id"), wait));
  out.finished = true;
  out.passed = Str(job, "state") == "completed" && job.contains("result") && Str(job["result"], "verdict") == "PASS";
  out.output = wait.json ? core::DumpJson(json{{"job", job}}) + "\n" : FormatPromotionJob(job);
  return out;
}

std::string FormatAliasHistory(const json& body) {
  std::ostringstream out;
  const json events =
      body.is_object() && body.contains("events") && body["events"].is_array() ? body["events"] : json::array();
  if (events.empty()) return "alias " + Str(body, "alias") + " has never been set\n";
  // (Str reads fields of objects only: a damaged event prints as blanks.)
  char line[512];
  std::snprintf(line, sizeof line, "%-20s  %-16s  %-9s  %-16s  %-16s  %s\n", "TIME", "BY", "VIA", "VERSION",
                "PREVIOUS", "VSA / JOB");
  out << line;
  for (const json& e : events) {
    std::string version = Str(e, "version").empty() ? "-" : Str(e, "version");
    std::string previous = Str(e, "previous_version").empty() ? "-" : Str(e, "previous_version");
    std::string vsa = Str(e, "vsa").empty() ? "-" : Short(Str(e, "vsa"));
    if (!Str(e, "job_id").empty()) vsa += " " + Str(e, "job_id");
    std::snprintf(line, sizeof line, "%-20s  %-16s  %-9s  %-16s  %-16s  %s\n", Str(e, "time").c_str(),
                  Str(e, "by").c_str(), Str(e, "via").c_str(), version.c_str(), previous.c_str(), vsa.c_str());
    out << line;
  }
  return out.str();
}

core::Result<std::string> AliasHistoryRemote(HttpClient& http, const std::string& repo, const std::string& alias,
                                             int limit, bool as_json, std::chrono::milliseconds retry_budget) {
  std::string path = "/api/v1/models/" + repo + "/aliases/" + UrlEncode(alias) +
                     "/history?limit=" + std::to_string(limit);
  ASSIGN_OR_RETURN(HttpResponse r, PerformWithRetry(http, HttpRequest{.path = path}, retry_budget));
  if (!r.ok()) return ErrorFromResponse(r);
  ASSIGN_OR_RETURN(json body, core::ParseJson(r.body, {64 << 20, 64}));
  if (!body.is_object()) return core::Internal("the server's history answer is not an object");
  return as_json ? core::DumpJson(body) + "\n" : FormatAliasHistory(body);
}

}  // namespace sigil::cli
