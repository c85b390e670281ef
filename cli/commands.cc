#include "cli/commands.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "cli/progress.h"
#include "core/json.h"

namespace sigil::cli {
namespace {

std::string Str(const nlohmann::json& object, const char* key) {
  if (!object.is_object() || !object.contains(key)) return "";
  const auto& v = object[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

uint64_t Uint(const nlohmann::json& object, const char* key) {
  if (!object.is_object() || !object.contains(key)) return 0;
  const auto& v = object[key];
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0)
             ? v.get<uint64_t>()
             : 0;
}

std::string JoinStrings(const nlohmann::json& array, const std::string& sep) {
  std::string out;
  if (!array.is_array()) return out;
  for (const auto& v : array) {
    if (!v.is_string()) continue;
    if (!out.empty()) out += sep;
    out += v.get<std::string>();
  }
  return out;
}

std::string Output(const nlohmann::json& value, bool json) {
  return json ? core::DumpJson(value) + "\n" : value.dump(2) + "\n";
}

}  // namespace

std::string FormatTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string ShortDigest(const std::string& digest) {
  size_t colon = digest.find(':');
  std::string hex = colon == std::string::npos ? digest : digest.substr(colon + 1);
  return hex.substr(0, 12);
}

std::string FormatVersions(const nlohmann::json& versions) {
  std::vector<std::vector<std::string>> rows = {
      {"VERSION", "DIGEST", "SIZE", "CREATED", "STATE", "ALIASES"}};
  if (versions.is_array()) {
    for (const auto& v : versions) {
      uint64_t size = Uint(v, "total_size");
      if (size == 0) size = Uint(v, "size");
      rows.push_back({Str(v, "version"), ShortDigest(Str(v, "digest")), FormatBytes(size),
                      Str(v, "created"), Str(v, "state"),
                      v.is_object() && v.contains("aliases") ? JoinStrings(v["aliases"], ",")
                                                             : ""});
    }
  }
  return FormatTable(rows);
}

std::string FormatRepositories(const nlohmann::json& repositories) {
  std::vector<std::vector<std::string>> rows = {{"REPOSITORY", "VERSIONS", "CREATED", "LABELS"}};
  if (repositories.is_array()) {
    for (const auto& r : repositories) {
      std::string labels;
      if (r.is_object() && r.contains("labels") && r["labels"].is_object()) {
        for (const auto& [k, v] : r["labels"].items()) {
          if (!labels.empty()) labels += ",";
          labels += k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
        }
      }
      std::string versions;
      if (r.is_object() && r.contains("versions")) {
        const auto& v = r["versions"];
        versions = v.is_array() ? std::to_string(v.size()) : v.dump();
      }
      rows.push_back({Str(r, "name"), versions, Str(r, "created"), labels});
    }
  }
  return FormatTable(rows);
}

core::Result<HttpResponse> Commands::Call(const HttpRequest& request) {
  ASSIGN_OR_RETURN(HttpResponse r, PerformWithRetry(*http_, request, retry_budget_));
  if (!r.ok()) return ErrorFromResponse(r);
  return r;
}

core::Result<nlohmann::json> Commands::CallJson(const HttpRequest& request) {
  ASSIGN_OR_RETURN(HttpResponse r, Call(request));
  return core::ParseJson(r.body);
}

core::Result<nlohmann::json> Commands::Paged(const std::string& path, const std::string& key) {
  nlohmann::json all = nlohmann::json::array();
  std::string page;
  for (int pages = 0; pages < 10000; ++pages) {
    std::string url = path + "?limit=100";
    if (!page.empty()) url += "&page=" + UrlEncode(page);
    ASSIGN_OR_RETURN(nlohmann::json j, CallJson(HttpRequest{.path = url}));
    if (!j.is_object() || !j.contains(key) || !j[key].is_array()) {
      return core::Internal("server answer to " + path + " has no '" + key + "' array");
    }
    for (auto& item : j[key]) all.push_back(std::move(item));
    std::string next = Str(j, "next");
    if (next.empty() || next == page) break;
    page = next;
  }
  return all;
}

core::Result<std::string> Commands::ListRepositories() {
  ASSIGN_OR_RETURN(nlohmann::json repos, Paged("/api/v1/models", "repositories"));
  if (json_) return Output(nlohmann::json{{"repositories", repos}}, true);
  return FormatRepositories(repos);
}

core::Result<std::string> Commands::ListVersions(const std::string& repository) {
  RETURN_IF_ERROR(ValidateRepository(repository));
  ASSIGN_OR_RETURN(nlohmann::json versions,
                   Paged("/api/v1/models/" + repository + "/versions", "versions"));
  if (json_) return Output(nlohmann::json{{"versions", versions}}, true);
  return FormatVersions(versions);
}

core::Result<std::string> Commands::Inspect(const Reference& ref) {
  ASSIGN_OR_RETURN(nlohmann::json v,
                   CallJson(HttpRequest{.path = "/api/v1/models/" + ref.repository +
                                                "/versions/" + ref.ref()}));
  return Output(v, json_);
}

core::Result<std::string> Commands::SetAlias(const Reference& alias, const std::string& target) {
  std::string body = core::DumpJson(nlohmann::json{{"ref", target}});
  ASSIGN_OR_RETURN(nlohmann::json a,
                   CallJson(HttpRequest{.method = "PUT",
                                        .path = "/api/v1/models/" + alias.repository +
                                                "/aliases/" + alias.tag,
                                        .headers = {"Content-Type: application/json"},
                                        .body = body}));
  if (json_) return Output(a, true);
  return alias.ToString() + " -> " + Str(a, "version") + " (" + Str(a, "digest") + ")\n";
}

core::Result<std::string> Commands::RemoveAlias(const Reference& alias) {
  RETURN_IF_ERROR(Call(HttpRequest{.method = "DELETE",
                                   .path = "/api/v1/models/" + alias.repository + "/aliases/" +
                                           alias.tag})
                      .status());
  if (json_) return Output(nlohmann::json{{"removed", alias.ToString()}}, true);
  return "removed alias " + alias.ToString() + "\n";
}

core::Result<std::string> Commands::RemoveVersion(const Reference& version) {
  RETURN_IF_ERROR(Call(HttpRequest{.method = "DELETE",
                                   .path = "/api/v1/models/" + version.repository +
                                           "/versions/" + version.tag})
                      .status());
  if (json_) return Output(nlohmann::json{{"removed", version.ToString()}}, true);
  return "removed version " + version.ToString() + "\n";
}

core::Result<std::string> Commands::CollectGarbage() {
  ASSIGN_OR_RETURN(nlohmann::json g, CallJson(HttpRequest{.method = "POST", .path = "/api/v1/gc"}));
  if (json_) return Output(g, true);
  return "scanned " + std::to_string(Uint(g, "blobs_scanned")) + " blobs, deleted " +
         std::to_string(Uint(g, "blobs_deleted")) + " (" + FormatBytes(Uint(g, "bytes_freed")) +
         " freed), kept " + std::to_string(Uint(g, "blobs_kept_young")) + " young\n";
}

}  // namespace sigil::cli
