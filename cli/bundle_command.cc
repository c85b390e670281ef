#include "cli/bundle_command.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <map>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "cli/http_client.h"
#include "core/fs.h"
#include "registry/bundles.h"

namespace sigil::cli {
namespace {

using core::Json;

constexpr std::string_view kRefName = "org.opencontainers.image.ref.name";
constexpr std::string_view kIndexMediaType = "application/vnd.oci.image.index.v1+json";
constexpr std::string_view kManifestMediaType = "application/vnd.oci.image.manifest.v1+json";
constexpr uint64_t kSmallBlob = 1 << 20;
constexpr uint64_t kChunk = 8 << 20;

core::Status Bad(std::string message) {
  return core::InvalidArgument("bundle file: " + std::move(message), "BUNDLE_FILE_INVALID");
}

std::string BlobPath(const core::Digest& d) { return "blobs/sha256/" + d.Hex(); }

// The carried blobs of a plan, in its order: digest -> size.
core::Result<std::vector<std::pair<core::Digest, uint64_t>>> PlanBlobs(const Json& plan) {
  std::vector<std::pair<core::Digest, uint64_t>> out;
  auto blobs = plan.find("blobs");
  if (blobs == plan.end() || !blobs->is_array()) return Bad("the plan has no \"blobs\" array");
  for (const Json& b : *blobs) {
    if (!b.is_object() || !b.contains("digest") || !b["digest"].is_string() || !b.contains("size") ||
        !b["size"].is_number_unsigned()) {
      return Bad("the plan names a blob without digest and size");
    }
    auto d = core::Digest::Parse(b["digest"].get<std::string>());
    if (!d.ok()) return Bad("the plan names a bad digest");
    out.emplace_back(*d, b["size"].get<uint64_t>());
  }
  return out;
}

std::vector<std::string> Strings(const Json& plan, const char* key) {
  std::vector<std::string> out;
  auto it = plan.find(key);
  if (it == plan.end() || !it->is_array()) return out;
  for (const Json& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace

core::Result<BundleContents> ReadBundle(const std::string& path) {
  BundleContents c;
  ASSIGN_OR_RETURN(c.tar, TarReader::Open(path));
  const TarEntry* layout = c.tar.Find("oci-layout");
  if (layout == nullptr) return Bad("no oci-layout entry");
  ASSIGN_OR_RETURN(std::string layout_bytes, c.tar.ReadAll(*layout, 4096));
  auto layout_json = core::ParseJson(layout_bytes);
  if (!layout_json.ok() || !layout_json->is_object() ||
      layout_json->value("imageLayoutVersion", "") != "1.0.0") {
    return Bad("oci-layout is not {\"imageLayoutVersion\": \"1.0.0\"}");
  }
  const TarEntry* index_entry = c.tar.Find("index.json");
  if (index_entry == nullptr) return Bad("no index.json entry");
  ASSIGN_OR_RETURN(std::string index_bytes, c.tar.ReadAll(*index_entry, registry::kMaxBundlePlanBytes));
  auto index = core::ParseJson(index_bytes);
  if (!index.ok() || !index->is_object() || !index->contains("manifests") || !(*index)["manifests"].is_array()) {
    return Bad("index.json is not an OCI image index");
  }
  std::optional<core::Digest> plan_digest;
  std::vector<std::pair<core::Digest, uint64_t>> described;
  for (const Json& m : (*index)["manifests"]) {
    if (!m.is_object() || !m.contains("digest") || !m["digest"].is_string() || !m.contains("size") ||
        !m["size"].is_number_unsigned()) {
      return Bad("index.json holds a descriptor without digest and size");
    }
    auto d = core::Digest::Parse(m["digest"].get<std::string>());
    if (!d.ok()) return Bad("index.json holds a bad digest");
    if (m.value("artifactType", "") == registry::kBundleArtifactType) {
      if (plan_digest.has_value()) return Bad("index.json names two plans");
      plan_digest = *d;
    }
    described.emplace_back(*d, m["size"].get<uint64_t>());
  }
  if (!plan_digest.has_value()) return Bad("index.json names no bundle plan");
  c.plan_digest = *plan_digest;
  const TarEntry* plan_entry = c.tar.Find(BlobPath(c.plan_digest));
  if (plan_entry == nullptr) return Bad("the plan " + c.plan_digest.ToString() + " is not in the file");
  ASSIGN_OR_RETURN(c.plan_bytes, c.tar.ReadAll(*plan_entry, registry::kMaxBundlePlanBytes));
  if (core::Sha256::Of(c.plan_bytes) != c.plan_digest) {
    return core::InvalidArgument("bundle file: the plan's bytes do not hash to " + c.plan_digest.ToString(),
                                 "DIGEST_MISMATCH");
  }
  core::JsonLimits limits;
  limits.max_bytes = registry::kMaxBundlePlanBytes;
  auto plan = core::ParseJson(c.plan_bytes, limits);
  if (!plan.ok() || !plan->is_object()) return Bad("the plan is not a JSON object");
  c.plan = std::move(*plan);
  ASSIGN_OR_RETURN(auto blobs, PlanBlobs(c.plan));

  // Every entry is the layout, the index, the plan or a blob the plan names.
  std::set<std::string> expected{"oci-layout", "index.json", BlobPath(c.plan_digest)};
  for (const auto& [d, size] : blobs) expected.insert(BlobPath(d));
  for (const TarEntry& e : c.tar.entries()) {
    if (expected.count(e.name) == 0) return Bad("entry '" + e.name + "' is not named by the plan");
  }
  for (const auto& [d, size] : described) {
    const TarEntry* e = c.tar.Find(BlobPath(d));
    if (e == nullptr || e->size != size) return Bad("index.json describes " + d.ToString() + ", not in the file");
  }
  // Every blob: present, its size, its digest (streamed).
  std::vector<char> buf(1 << 20);
  for (const auto& [d, size] : blobs) {
    const TarEntry* e = c.tar.Find(BlobPath(d));
    if (e == nullptr) return Bad("blob " + d.ToString() + " is not in the file");
    if (e->size != size) {
      return Bad("blob " + d.ToString() + " has " + std::to_string(e->size) + " bytes, the plan says " +
                 std::to_string(size));
    }
    core::Sha256 hash;
    for (uint64_t off = 0; off < e->size;) {
      ASSIGN_OR_RETURN(size_t n, c.tar.ReadAt(*e, off, buf.data(), buf.size()));
      hash.Update(std::string_view(buf.data(), n));
      off += n;
    }
    if (hash.Finish() != d) {
      return core::InvalidArgument("bundle file: the bytes of " + BlobPath(d) + " do not hash to " + d.ToString(),
                                   "DIGEST_MISMATCH");
    }
    c.blobs.emplace_back(d, e);
  }
  return c;
}

core::Result<BundleExportResult> ExportBundle(const BundleExportOptions& options) {
  if (options.refs.empty() || options.to_region.empty() || options.out.empty()) {
    return core::InvalidArgument("export needs refs, a destination region and an output file");
  }
  Json since = Json::array();
  if (!options.since_bundle.empty()) {
    ASSIGN_OR_RETURN(BundleContents previous, ReadBundle(options.since_bundle));
    ASSIGN_OR_RETURN(auto blobs, PlanBlobs(previous.plan));
    for (const auto& [d, size] : blobs) since.push_back(d.ToString());
    for (const std::string& d : Strings(previous.plan, "omitted")) since.push_back(d);
  }
  HttpClient http(options.server);
  std::string body = core::DumpJson(Json{{"refs", options.refs}, {"to", options.to_region}, {"since", since}});
  HttpRequest post{.method = "POST", .path = "/api/v1/exports",
                   .headers = {"Content-Type: application/json"}, .body = body};
  ASSIGN_OR_RETURN(HttpResponse r, PerformWithRetry(http, post, options.retry_budget));
  if (!r.ok()) return ErrorFromResponse(r).Annotate("export");
  const std::string plan_bytes = r.body;
  core::JsonLimits limits;
  limits.max_bytes = registry::kMaxBundlePlanBytes;
  ASSIGN_OR_RETURN(Json plan, core::ParseJson(plan_bytes, limits));
  if (!plan.is_object()) return core::Internal("the server's export plan is not a JSON object");
  ASSIGN_OR_RETURN(auto blobs, PlanBlobs(plan));

  BundleExportResult result;
  result.plan_digest = core::Sha256::Of(plan_bytes);
  result.versions = plan.value("versions", Json::array()).size();
  result.attestations = plan.value("attestations", Json::array()).size();
  result.aliases = plan.value("aliases", Json::array()).size();
  result.omitted = Strings(plan, "omitted").size();
  result.notes = Strings(plan, "notes");

  std::map<core::Digest, uint64_t> sizes(blobs.begin(), blobs.end());
  Json manifests = Json::array();
  manifests.push_back({{"mediaType", "application/vnd.sigil.bundle.v1+json"},
                       {"artifactType", registry::kBundleArtifactType},
                       {"digest", result.plan_digest.ToString()},
                       {"size", plan_bytes.size()}});
  for (const Json& v : plan.value("versions", Json::array())) {
    auto d = core::Digest::Parse(v.value("digest", ""));
    if (!d.ok()) return core::Internal("the server's export plan names a bad version digest");
    auto size = sizes.find(*d);
    if (size == sizes.end()) continue;  // omitted: the other side has it
    manifests.push_back({{"mediaType", kManifestMediaType},
                         {"digest", d->ToString()},
                         {"size", size->second},
                         {"annotations",
                          {{std::string(kRefName), v.value("repository", "") + ":" + v.value("version", "")}}}});
  }
  Json index = {{"schemaVersion", 2}, {"mediaType", kIndexMediaType}, {"manifests", manifests}};

  const std::string tmp = options.out + ".tmp";
  auto write = [&]() -> core::Status {
    ASSIGN_OR_RETURN(TarWriter tar, TarWriter::Create(tmp));
    RETURN_IF_ERROR(tar.Add("oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}"));
    RETURN_IF_ERROR(tar.Add("index.json", core::DumpJson(index)));
    RETURN_IF_ERROR(tar.Add(BlobPath(result.plan_digest), plan_bytes));
    for (const auto& blob : blobs) {
      const core::Digest digest = blob.first;
      const uint64_t size = blob.second;
      if (digest == result.plan_digest) continue;
      RETURN_IF_ERROR(tar.Begin(BlobPath(digest), size));
      core::Sha256 hash;
      uint64_t got = 0;
      HttpRequest get{.method = "GET", .path = "/api/v1/blobs/" + digest.ToString()};
      get.sink = [&](long status, const char* data, size_t n) -> core::Status {
        if (status != 200) return core::Internal("unexpected HTTP status " + std::to_string(status));
        if (n > size - got) {
          return core::DataLoss("blob " + digest.ToString() + " is longer than its size", "DIGEST_MISMATCH");
        }
        hash.Update(std::string_view(data, n));
        got += n;
        return tar.Write(std::string_view(data, n));
      };
      ASSIGN_OR_RETURN(HttpResponse br, http.Perform(get));
      if (!br.ok()) return ErrorFromResponse(br).Annotate("download " + digest.ToString());
      if (got != size || hash.Finish() != digest) {
        return core::DataLoss("blob " + digest.ToString() + " did not match its digest and size",
                              "DIGEST_MISMATCH");
      }
      RETURN_IF_ERROR(tar.End());
      result.blobs++;
      result.bytes += size;
    }
    return tar.Finish();
  };
  core::Status s = write();
  if (!s.ok()) {
    std::remove(tmp.c_str());
    return s;
  }
  if (std::rename(tmp.c_str(), options.out.c_str()) != 0) {
    core::Status err = core::ErrnoStatus(errno, "rename " + tmp);
    std::remove(tmp.c_str());
    return err;
  }
  std::string dir = options.out.find('/') == std::string::npos ? "." : options.out.substr(0, options.out.rfind('/'));
  if (dir.empty()) dir = "/";
  core::FsyncDir(dir).IgnoreError();
  return result;
}

core::Result<BundleImportResult> ImportBundle(const BundleImportOptions& options) {
  ASSIGN_OR_RETURN(BundleContents bundle, ReadBundle(options.file));
  HttpClient http(options.server);
  BundleImportResult result;
  std::string buf;
  for (const auto& [digest, entry] : bundle.blobs) {
    const std::string path = "/api/v1/blobs/" + digest.ToString();
    HttpRequest head{.method = "HEAD", .path = path};
    ASSIGN_OR_RETURN(HttpResponse hr, PerformWithRetry(http, head, options.retry_budget));
    if (hr.status == 200) {
      result.blobs_skipped++;
      continue;
    }
    if (hr.status != 404) return ErrorFromResponse(hr).Annotate("HEAD " + digest.ToString());
    if (entry->size < kSmallBlob) {
      buf.resize(entry->size);
      ASSIGN_OR_RETURN(size_t n, bundle.tar.ReadAt(*entry, 0, buf.data(), buf.size()));
      if (n != entry->size) return Bad("short read of " + entry->name);
      HttpRequest put{.method = "PUT", .path = path, .body = buf};
      ASSIGN_OR_RETURN(HttpResponse pr, PerformWithRetry(http, put, options.retry_budget));
      if (!pr.ok()) return ErrorFromResponse(pr).Annotate("upload " + digest.ToString());
    } else {
      HttpRequest open{.method = "POST", .path = "/api/v1/uploads"};
      ASSIGN_OR_RETURN(HttpResponse orr, PerformWithRetry(http, open, options.retry_budget));
      if (!orr.ok()) return ErrorFromResponse(orr).Annotate("open upload session");
      ASSIGN_OR_RETURN(Json session, core::ParseJson(orr.body));
      ASSIGN_OR_RETURN(std::string id, core::GetString(session, "id"));
      ASSIGN_OR_RETURN(uint64_t chunk_max, core::GetUint(session, "chunk_max"));
      if (id.empty() || chunk_max == 0) return core::Internal("an upload session without id or chunk_max");
      uint64_t chunk = std::min(chunk_max, kChunk);
      for (uint64_t off = 0; off < entry->size;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(chunk, entry->size - off));
        buf.resize(n);
        ASSIGN_OR_RETURN(size_t got, bundle.tar.ReadAt(*entry, off, buf.data(), n));
        if (got != n) return Bad("short read of " + entry->name);
        HttpRequest patch{.method = "PATCH",
                          .path = "/api/v1/uploads/" + id,
                          .headers = {"Content-Range: bytes " + std::to_string(off) + "-" +
                                      std::to_string(off + n - 1)},
                          .body = buf};
        ASSIGN_OR_RETURN(HttpResponse pr, http.Perform(patch));
        if (!pr.ok()) return ErrorFromResponse(pr).Annotate("upload " + digest.ToString());
        off += n;
      }
      HttpRequest commit{.method = "PUT", .path = "/api/v1/uploads/" + id + "?digest=" + digest.ToString()};
      ASSIGN_OR_RETURN(HttpResponse cr, PerformWithRetry(http, commit, options.retry_budget));
      if (!cr.ok()) return ErrorFromResponse(cr).Annotate("commit " + digest.ToString());
    }
    result.blobs_uploaded++;
    result.bytes_uploaded += entry->size;
  }
  HttpRequest post{.method = "POST", .path = "/api/v1/bundles",
                   .headers = {"Content-Type: application/json"}, .body = bundle.plan_bytes};
  ASSIGN_OR_RETURN(HttpResponse r, PerformWithRetry(http, post, options.retry_budget));
  if (!r.ok()) return ErrorFromResponse(r).Annotate("import");
  ASSIGN_OR_RETURN(result.summary, core::ParseJson(r.body));
  return result;
}

}  // namespace sigil::cli
