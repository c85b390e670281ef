#include "cli/eval_command.h"

#include <cmath>
#include <cstdio>
#include <thread>

#include "cli/commands.h"
#include "cli/progress.h"
#include "core/fs.h"
#include "core/json.h"
#include "scanner/scanner.h"
#include "validator/eval_spec.h"
#include "validator/tensor_stats.h"

namespace sigil::cli {
namespace {

using nlohmann::json;

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

std::string Str(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

// Polls GET /api/v1/jobs/{id} until the job ends.
core::Result<json> WaitForJob(HttpClient& http, const std::string& id, const JobWait& wait) {
  auto deadline = std::chrono::steady_clock::now() + wait.limit;
  auto delay = std::chrono::milliseconds(100);
  while (true) {
    ASSIGN_OR_RETURN(HttpResponse r,
                     PerformWithRetry(http, HttpRequest{.path = "/api/v1/jobs/" + id}, wait.retry_budget));
    if (!r.ok()) return ErrorFromResponse(r);
    ASSIGN_OR_RETURN(json body, core::ParseJson(r.body, {64 << 20, 64}));
    const json& job = body["job"];
    std::string state = Str(job, "state");
    if (state == "completed" || state == "failed" || state == "cancelled") return job;
    if (std::chrono::steady_clock::now() + delay > deadline) {
      return core::DeadlineExceeded("job " + id + " is still " + state + " (" + Str(job, "progress") +
                                        "); follow it with GET /api/v1/jobs/" + id,
                                    "JOB_WAIT_TIMEOUT");
    }
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(1000));
  }
}

core::Result<json> PostJob(HttpClient& http, const std::string& path, const std::string& body,
                           const JobWait& wait) {
  ASSIGN_OR_RETURN(HttpResponse r, PerformWithRetry(http,
                                                    HttpRequest{.method = "POST",
                                                                .path = path,
                                                                .headers = {"Content-Type: application/json"},
                                                                .body = body},
                                                    wait.retry_budget));
  if (!r.ok()) return ErrorFromResponse(r);
  ASSIGN_OR_RETURN(json answer, core::ParseJson(r.body));
  if (!answer.is_object() || !answer.contains("job") || Str(answer["job"], "id").empty()) {
    return core::Internal("the server's answer to " + path + " names no job");
  }
  return answer["job"];
}

std::string JobError(const json& job) {
  const json& e = job.contains("error") ? job["error"] : json();
  return Str(e, "reason") + ": " + Str(e, "message");
}

}  // namespace

std::string FormatEvaluationJob(const json& job) {
  std::string out;
  std::string state = Str(job, "state");
  std::string label = Str(job, "repository") + ":" + Str(job, "version");
  if (state != "completed") {
    out += "evaluation " + Str(job, "id") + " of " + label + ": " + state;
    if (job.contains("error")) out += " (" + JobError(job) + ")";
    return out + "\n";
  }
  const json& result = job["result"];
  const json& report = result.contains("report") ? result["report"] : json::object();
  bool passed = result.value("passed", false);
  const json& run = report.contains("run") ? report["run"] : json::object();
  out += "evaluation of " + label + ": " + (passed ? "PASS" : "FAIL");
  if (run.is_object() && run.value("ok", false)) {
    out += " on " + Str(run, "device") + " (LibTorch " + Str(run, "torch_version") + ", " +
           std::to_string(run.value("threads", 0)) + " threads, " + std::to_string(run.value("samples", 0)) +
           " samples)";
  }
  out += "\n\n";
  std::vector<std::vector<std::string>> rows = {{"CHECK", "METRIC", "VALUE", "EXPECTED", "RESULT", "DETAIL"}};
  if (report.contains("checks")) {
    for (const json& c : report["checks"]) {
      rows.push_back({Str(c, "kind"), Str(c, "metric"),
                      c.contains("value") ? Num(c["value"].get<double>()) : "-",
                      c.contains("expected") ? Num(c["expected"].get<double>()) : "-",
                      c.value("passed", false) ? "pass" : "FAIL", Str(c, "detail")});
    }
  }
  out += FormatTable(rows);
  if (report.contains("metrics") && report["metrics"].is_object() && !report["metrics"].empty()) {
    std::vector<std::vector<std::string>> metrics = {{"METRIC", "VALUE", "BASELINE"}};
    const json* base = report.contains("baseline") && report["baseline"].contains("metrics")
                           ? &report["baseline"]["metrics"]
                           : nullptr;
    for (const auto& [name, value] : report["metrics"].items()) {
      std::string b = base != nullptr && base->contains(name) ? Num((*base)[name].get<double>()) : "-";
      metrics.push_back({name, value.is_number() ? Num(value.get<double>()) : "-", b});
    }
    out += "\n" + FormatTable(metrics);
  }
  out += "\nreport " + Str(result, "report_digest");
  if (result.contains("attestation")) {
    out += ", signed attestation " + Str(result["attestation"], "digest") + " at log index " +
           std::to_string(result["attestation"].value("log_index", uint64_t{0}));
  }
  return out + "\n";
}

std::string FormatStats(const json& files) {
  std::string out;
  for (const json& file : files) {
    const json& s = file["stats"];
    out += Str(file, "path") + ": " + std::to_string(s["tensors"].size()) + " tensors, " +
           FormatBytes(s.value("bytes", uint64_t{0})) + " on " + Str(s, "backend") + " in " +
           Num(s.value("seconds", 0.0)) + " s; " + std::to_string(s.value("total_nan", uint64_t{0})) + " NaN, " +
           std::to_string(s.value("total_inf", uint64_t{0})) + " Inf\n";
    std::map<std::string, const json*> diffs;
    if (s.contains("diffs") && s["diffs"].is_array()) {
      for (const json& d : s["diffs"]) diffs[Str(d, "name")] = &d;
    }
    std::vector<std::string> head = {"TENSOR", "DTYPE", "SHAPE", "NAN", "INF", "MIN", "MAX", "MEAN", "L2"};
    if (!diffs.empty()) {
      head.push_back("COSINE");
      head.push_back("MAX_DIFF");
    }
    std::vector<std::vector<std::string>> rows = {head};
    for (const json& t : s["tensors"]) {
      std::string shape = "[";
      for (const json& d : t.value("shape", json::array())) shape += (shape.size() > 1 ? "," : "") + d.dump();
      shape += "]";
      std::vector<std::string> row = {Str(t, "name"),          Str(t, "dtype"),
                                      shape,                   std::to_string(t.value("nan", uint64_t{0})),
                                      std::to_string(t.value("inf", uint64_t{0})),
                                      Num(t.value("min", 0.0)), Num(t.value("max", 0.0)),
                                      Num(t.value("mean", 0.0)), Num(t.value("l2", 0.0))};
      if (!diffs.empty()) {
        auto d = diffs.find(Str(t, "name"));
        if (d != diffs.end() && d->second->value("comparable", false)) {
          row.push_back(Num(d->second->value("cosine", 0.0)));
          row.push_back(Num(d->second->value("max_abs_diff", 0.0)));
        } else {
          row.push_back("-");
          row.push_back("-");
        }
      }
      rows.push_back(std::move(row));
    }
    out += FormatTable(rows);
    for (const char* side : {"only_in_child", "only_in_parent"}) {
      if (s.contains(side) && !s[side].empty()) {
        out += std::string(side) + ": " + std::to_string(s[side].size()) + " tensor(s)\n";
      }
    }
  }
  if (files.empty()) out += "no weight file (safetensors or PyTorch checkpoint) found\n";
  return out;
}

namespace {

bool Clean(const json& files) {
  for (const json& f : files) {
    if (f["stats"].value("total_nan", uint64_t{0}) > 0 || f["stats"].value("total_inf", uint64_t{0}) > 0) {
      return false;
    }
  }
  return true;
}

core::Result<std::vector<validator::TensorRef>> LocalTensors(const std::string& path) {
  ASSIGN_OR_RETURN(scanner::FileReport report, scanner::ScanFile(path));
  if (report.tensors.empty()) {
    return core::InvalidArgument(path + " holds no tensors sigil can read (" +
                                     std::string(scanner::FormatName(report.format)) +
                                     "): stats reads safetensors files and PyTorch checkpoints",
                                 "NO_TENSORS");
  }
  std::vector<validator::TensorRef> out;
  for (const scanner::TensorLayout& t : report.tensors) {
    auto dtype = validator::ParseDType(t.dtype);
    if (!dtype.ok()) continue;
    validator::TensorRef ref{t.name, *dtype, t.shape, t.offset};
    if (ref.Bytes() == t.length) out.push_back(std::move(ref));
  }
  return out;
}

}  // namespace

core::Result<JobOutcome> StatsLocal(const std::string& path, const std::string& parent_path, bool json_out) {
  ASSIGN_OR_RETURN(auto tensors, LocalTensors(path));
  uint64_t size = 0;
  ASSIGN_OR_RETURN(validator::ReadAtFn read, validator::FileReader(path, &size));
  validator::StatsReport report;
  if (parent_path.empty()) {
    ASSIGN_OR_RETURN(report, validator::ComputeStats(read, size, tensors));
  } else {
    ASSIGN_OR_RETURN(auto parent_tensors, LocalTensors(parent_path));
    uint64_t parent_size = 0;
    ASSIGN_OR_RETURN(validator::ReadAtFn parent_read, validator::FileReader(parent_path, &parent_size));
    ASSIGN_OR_RETURN(report, validator::CompareWithParent(read, size, tensors, parent_read, parent_size,
                                                          parent_tensors));
  }
  json files = json::array({json{{"path", path}, {"stats", validator::StatsReportToJson(report)}}});
  JobOutcome out;
  out.finished = true;
  out.passed = Clean(files);
  out.output = json_out ? core::DumpJson(json{{"files", files}}) + "\n" : FormatStats(files);
  return out;
}

core::Result<JobOutcome> StatsRemote(HttpClient& http, const Reference& ref, const std::string& parent,
                                     const JobWait& wait) {
  json body = json::object();
  if (!parent.empty()) body["parent"] = parent;
  ASSIGN_OR_RETURN(json job, PostJob(http, "/api/v1/models/" + ref.repository + "/versions/" + ref.ref() + "/stats",
                                     core::DumpJson(body), wait));
  ASSIGN_OR_RETURN(job, WaitForJob(http, Str(job, "id"), wait));
  JobOutcome out;
  out.finished = true;
  if (Str(job, "state") != "completed") {
    return core::Status(core::Code::kUnknown, "statistics job " + Str(job, "id") + " " + Str(job, "state") + ": " +
                                                  JobError(job),
                        "JOB_" + std::string(Str(job, "state") == "cancelled" ? "CANCELLED" : "FAILED"));
  }
  const json& files = job["result"]["files"];
  out.passed = Clean(files);
  out.output = wait.json ? core::DumpJson(job["result"]) + "\n" : FormatStats(files);
  return out;
}

core::Result<JobOutcome> EvaluateRemote(HttpClient& http, const Reference& ref, const std::string& spec_path,
                                        const JobWait& wait) {
  ASSIGN_OR_RETURN(std::string spec, core::ReadFile(spec_path, 1 << 20));
  // Checked here first, so a typo is reported before anything is sent.
  RETURN_IF_ERROR(validator::ParseEvalSpec(spec).status().Annotate(spec_path));
  ASSIGN_OR_RETURN(json job, PostJob(http,
                                     "/api/v1/models/" + ref.repository + "/versions/" + ref.ref() + "/evaluations",
                                     spec, wait));
  JobOutcome out;
  if (!wait.wait) {
    out.output = wait.json ? core::DumpJson(json{{"job", job}}) + "\n"
                           : "evaluation job " + Str(job, "id") + " queued; follow it with GET /api/v1/jobs/" +
                                 Str(job, "id") + " or run again with --wait\n";
    return out;
  }
  ASSIGN_OR_RETURN(job, WaitForJob(http, Str(job, "id"), wait));
  out.finished = true;
  out.passed = Str(job, "state") == "completed" && job["result"].value("passed", false);
  out.output = wait.json ? core::DumpJson(json{{"job", job}}) + "\n" : FormatEvaluationJob(job);
  return out;
}

}  // namespace sigil::cli
