#include "registry/registry.h"
#include "registry/internal/keys.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/json.h"
#include "registry/access.h"
#include "registry/names.h"

namespace sigil::registry {
namespace {

using core::Json;

constexpr std::string_view kReposCf = "repos";
constexpr std::string_view kTagsCf = "tags";
constexpr std::string_view kManifestsCf = "manifests";
constexpr size_t kMaxPageLimit = 1000;

std::string Join(std::initializer_list<std::string_view> parts) { return internal::JoinKey(parts); }
std::string VersionPrefix(std::string_view repo) { return Join({repo, "v", ""}); }
std::string AliasPrefix(std::string_view repo) { return Join({repo, "a", ""}); }
std::string VersionKey(std::string_view repo, std::string_view v) { return VersionPrefix(repo).append(v); }
std::string AliasKey(std::string_view repo, std::string_view a) { return AliasPrefix(repo).append(a); }
std::string IndexKey(std::string_view repo, const core::Digest& d) { return Join({repo, d.ToString()}); }
// "<repo>\0h\0<alias>\0": the alias's history; each event's key ends in 16
// hex digits of ~sequence, so an ascending scan yields the newest first.
std::string HistoryPrefix(std::string_view repo, std::string_view a) { return Join({repo, "h", a, ""}); }

core::Status RepoUnknown(std::string_view repo) {
  return core::NotFound("repository '" + std::string(repo) + "' not found", "REPO_UNKNOWN");
}
core::Status VersionUnknown(std::string_view repo, std::string_view ref) {
  return core::NotFound("version '" + std::string(ref) + "' of '" + std::string(repo) + "' not found",
                        "VERSION_UNKNOWN");
}
core::Status AliasUnknown(std::string_view repo, std::string_view alias) {
  return core::NotFound("alias '" + std::string(alias) + "' of '" + std::string(repo) + "' not found",
                        "ALIAS_UNKNOWN");
}
core::Status Corrupt(std::string_view cf, std::string_view what, const std::string& why) {
  return core::DataLoss("corrupt " + std::string(cf) + " record for " + std::string(what) + ": " + why);
}

core::Result<VersionState> ParseState(std::string_view name) {
  for (VersionState s : {VersionState::kPending, VersionState::kQuarantined, VersionState::kAvailable}) {
    if (VersionStateName(s) == name) return s;
  }
  return core::InvalidArgument("unknown version state '" + std::string(name) + "'");
}

// Records are read back with the same checks as any input: a damaged value
// becomes kDataLoss instead of an exception or a default.
struct Reader {
  std::string_view cf;
  std::string_view what;

  core::Result<Json> Object(std::string_view text) const {
    auto v = core::ParseJson(text);
    if (!v.ok()) return Corrupt(cf, what, v.status().message());
    if (!v->is_object()) return Corrupt(cf, what, "not an object");
    return v;
  }
  core::Result<std::string> String(const Json& o, std::string_view field) const {
    auto r = core::GetString(o, field);
    if (!r.ok()) return Corrupt(cf, what, r.status().message());
    return r;
  }
  core::Result<int64_t> Int(const Json& o, std::string_view field) const {
    auto r = core::GetInt(o, field);
    if (!r.ok()) return Corrupt(cf, what, r.status().message());
    return r;
  }
  core::Result<uint64_t> Uint(const Json& o, std::string_view field) const {
    auto r = core::GetUint(o, field);
    if (!r.ok()) return Corrupt(cf, what, r.status().message());
    return r;
  }
  core::Result<core::Digest> Digest(const Json& o, std::string_view field) const {
    ASSIGN_OR_RETURN(std::string text, String(o, field));
    auto d = core::Digest::Parse(text);
    if (!d.ok()) return Corrupt(cf, what, d.status().message());
    return d;
  }
  core::Result<std::map<std::string, std::string>> StringMap(const Json& o, std::string_view field) const {
    auto it = o.find(std::string(field));
    if (it == o.end() || !it->is_object())
      return Corrupt(cf, what, "'" + std::string(field) + "' is not an object");
    std::map<std::string, std::string> out;
    for (const auto& [k, v] : it->items()) {
      if (!v.is_string()) return Corrupt(cf, what, "'" + std::string(field) + "' holds a non-string");
      out[k] = v.get<std::string>();
    }
    return out;
  }
};

struct RepoRecord {
  int64_t created = 0;
  std::map<std::string, std::string> labels;
  Residency residency;
  bool anonymous_read = false;

  std::string Dump() const {
    return core::DumpJson(
        {{"created", created},
         {"labels", labels},
         {"residency", {{"region", residency.region}, {"classification", residency.classification}}},
         {"anonymous_read", anonymous_read}});
  }
  static core::Result<RepoRecord> Parse(std::string_view repo, std::string_view text) {
    Reader r{kReposCf, repo};
    ASSIGN_OR_RETURN(Json o, r.Object(text));
    RepoRecord rec;
    ASSIGN_OR_RETURN(rec.created, r.Int(o, "created"));
    ASSIGN_OR_RETURN(rec.labels, r.StringMap(o, "labels"));
    ASSIGN_OR_RETURN(auto residency, r.StringMap(o, "residency"));
    rec.residency.region = residency["region"];
    rec.residency.classification = residency["classification"];
    // Records written before anonymous access existed have no field.
    if (auto it = o.find("anonymous_read"); it != o.end()) {
      if (!it->is_boolean()) return Corrupt(kReposCf, repo, "'anonymous_read' is not a boolean");
      rec.anonymous_read = it->get<bool>();
    }
    return rec;
  }
};

// A version's tag record. size and total_size are kept so that listing does
// not read every manifest.
struct TagRecord {
  core::Digest digest;
  int64_t created = 0;
  VersionState state = VersionState::kAvailable;
  std::map<std::string, std::string> labels;
  uint64_t size = 0;
  uint64_t total_size = 0;

  std::string Dump() const {
    return core::DumpJson({{"digest", digest.ToString()},
                           {"created", created},
                           {"state", VersionStateName(state)},
                           {"labels", labels},
                           {"size", size},
                           {"total_size", total_size}});
  }
  static core::Result<TagRecord> Parse(std::string_view version, std::string_view text) {
    Reader r{kTagsCf, version};
    ASSIGN_OR_RETURN(Json o, r.Object(text));
    TagRecord rec;
    ASSIGN_OR_RETURN(rec.digest, r.Digest(o, "digest"));
    ASSIGN_OR_RETURN(rec.created, r.Int(o, "created"));
    ASSIGN_OR_RETURN(std::string state, r.String(o, "state"));
    auto parsed_state = ParseState(state);
    if (!parsed_state.ok()) return Corrupt(kTagsCf, version, parsed_state.status().message());
    rec.state = *parsed_state;
    ASSIGN_OR_RETURN(rec.labels, r.StringMap(o, "labels"));
    ASSIGN_OR_RETURN(rec.size, r.Uint(o, "size"));
    ASSIGN_OR_RETURN(rec.total_size, r.Uint(o, "total_size"));
    return rec;
  }
};

// An alias record also names the version it was resolved to, because one
// digest may be several versions.
struct AliasRecord {
  core::Digest digest;
  std::string version;
  int64_t updated = 0;

  std::string Dump() const {
    return core::DumpJson({{"digest", digest.ToString()}, {"version", version}, {"updated", updated}});
  }
  static core::Result<AliasRecord> Parse(std::string_view alias, std::string_view text) {
    Reader r{kTagsCf, alias};
    ASSIGN_OR_RETURN(Json o, r.Object(text));
    AliasRecord rec;
    ASSIGN_OR_RETURN(rec.digest, r.Digest(o, "digest"));
    ASSIGN_OR_RETURN(rec.version, r.String(o, "version"));
    ASSIGN_OR_RETURN(rec.updated, r.Int(o, "updated"));
    return rec;
  }
  AliasInfo ToInfo(std::string_view name) const { return {std::string(name), digest, version, updated}; }
};

// One event of an alias's history (AliasEvent without the alias name).
struct HistoryRecord {
  AliasEvent event;

  std::string Dump() const {
    const AliasEvent& e = event;
    Json o = {{"version", e.version}, {"digest", e.version.empty() ? "" : e.digest.ToString()},
              {"previous_version", e.previous_version}, {"micros", e.micros}, {"by", e.by},
              {"via", e.via}, {"job_id", e.job_id}};
    if (e.previous_digest) o["previous_digest"] = e.previous_digest->ToString();
    if (e.vsa) o["vsa"] = e.vsa->ToString();
    return core::DumpJson(o);
  }
  static core::Result<HistoryRecord> Parse(std::string_view alias, std::string_view text) {
    Reader r{kTagsCf, alias};
    ASSIGN_OR_RETURN(Json o, r.Object(text));
    HistoryRecord rec;
    AliasEvent& e = rec.event;
    e.alias = std::string(alias);
    ASSIGN_OR_RETURN(e.version, r.String(o, "version"));
    if (!e.version.empty()) {
      ASSIGN_OR_RETURN(e.digest, r.Digest(o, "digest"));
    }
    ASSIGN_OR_RETURN(e.previous_version, r.String(o, "previous_version"));
    if (o.contains("previous_digest")) {
      ASSIGN_OR_RETURN(e.previous_digest, r.Digest(o, "previous_digest"));
    }
    ASSIGN_OR_RETURN(e.micros, r.Int(o, "micros"));
    ASSIGN_OR_RETURN(e.by, r.String(o, "by"));
    ASSIGN_OR_RETURN(e.via, r.String(o, "via"));
    ASSIGN_OR_RETURN(e.job_id, r.String(o, "job_id"));
    if (o.contains("vsa")) {
      ASSIGN_OR_RETURN(e.vsa, r.Digest(o, "vsa"));
    }
    return rec;
  }
};

// The name recorded as "by" when the caller gives none: the calling
// thread's principal, or the server itself.
std::string CurrentName() {
  const Principal* p = PrincipalScope::Current();
  return p == nullptr ? "sigild" : p->name;
}

// The key the alias's next history event goes under. REQUIRES: write_mu_ held.
core::Result<std::string> NextHistoryKey(storage::MetaStore* meta, std::string_view repo,
                                         std::string_view alias) {
  std::string prefix = HistoryPrefix(repo, alias);
  uint64_t last = 0;
  core::Status bad;
  RETURN_IF_ERROR(meta->Scan(kTagsCf, prefix, [&](std::string_view key, std::string_view) {
    std::string_view hex = key.substr(prefix.size());
    uint64_t inverted = 0;
    auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), inverted, 16);
    if (hex.size() != 16 || ec != std::errc() || end != hex.data() + hex.size()) {
      bad = Corrupt(kTagsCf, alias, "malformed history key");
    } else {
      last = ~inverted;
    }
    return false;  // the first key is the newest
  }));
  RETURN_IF_ERROR(bad);
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(~(last + 1)));
  return prefix + buf;
}

// Adds the alias's deletion to batch. REQUIRES: write_mu_ held.
core::Status RecordDeletion(storage::MetaStore* meta, core::Clock* clock, std::string_view repo,
                            std::string_view alias, const AliasRecord& was, storage::WriteBatch* batch) {
  HistoryRecord h;
  h.event.alias = std::string(alias);
  h.event.previous_version = was.version;
  h.event.previous_digest = was.digest;
  h.event.micros = clock->NowMicros();
  h.event.by = CurrentName();
  h.event.via = "delete";
  ASSIGN_OR_RETURN(std::string key, NextHistoryKey(meta, repo, alias));
  batch->Put(kTagsCf, key, h.Dump());
  return core::OkStatus();
}

// Manifest index: "version" is the oldest version still holding the digest
// (what a digest ref resolves to); "versions" lists all of them in push order.
struct IndexRecord {
  std::string version;
  int64_t created = 0;
  std::vector<std::string> versions;

  std::string Dump() const {
    return core::DumpJson({{"version", version}, {"created", created}, {"versions", versions}});
  }
  static core::Result<IndexRecord> Parse(std::string_view digest, std::string_view text) {
    Reader r{kManifestsCf, digest};
    ASSIGN_OR_RETURN(Json o, r.Object(text));
    IndexRecord rec;
    ASSIGN_OR_RETURN(rec.version, r.String(o, "version"));
    ASSIGN_OR_RETURN(rec.created, r.Int(o, "created"));
    auto it = o.find("versions");
    if (it == o.end() || !it->is_array()) return Corrupt(kManifestsCf, digest, "'versions' is not an array");
    for (const auto& v : *it) {
      if (!v.is_string()) return Corrupt(kManifestsCf, digest, "'versions' holds a non-string");
      rec.versions.push_back(v.get<std::string>());
    }
    return rec;
  }
};

core::Result<RepoRecord> LoadRepo(storage::MetaStore* meta, std::string_view repo) {
  auto text = meta->Get(kReposCf, repo);
  if (!text.ok()) return text.status().code() == core::Code::kNotFound ? RepoUnknown(repo) : text.status();
  return RepoRecord::Parse(repo, *text);
}

core::Status RequireRepo(storage::MetaStore* meta, std::string_view repo) {
  return LoadRepo(meta, repo).status();
}

core::Result<TagRecord> LoadVersion(storage::MetaStore* meta, std::string_view repo,
                                    std::string_view version) {
  auto text = meta->Get(kTagsCf, VersionKey(repo, version));
  if (!text.ok()) {
    return text.status().code() == core::Code::kNotFound ? VersionUnknown(repo, version) : text.status();
  }
  return TagRecord::Parse(version, *text);
}

// Whether version may name digest in repo: an alias of that name is
// NAME_TAKEN, a version holding another digest is TAG_IMMUTABLE. Returns the
// stored record when the version already holds digest.
core::Result<std::optional<TagRecord>> CheckVersionName(storage::MetaStore* meta, std::string_view repo,
                                                        std::string_view version,
                                                        const core::Digest& digest) {
  auto alias = meta->Get(kTagsCf, AliasKey(repo, version));
  if (alias.ok()) {
    return core::AlreadyExists("'" + std::string(version) + "' is an alias of '" + std::string(repo) + "'",
                               "NAME_TAKEN");
  }
  if (alias.status().code() != core::Code::kNotFound) return alias.status();
  auto existing = LoadVersion(meta, repo, version);
  if (existing.ok()) {
    if (existing->digest != digest) {
      return core::AlreadyExists("version '" + std::string(version) + "' of '" + std::string(repo) +
                                     "' already holds " + existing->digest.ToString(),
                                 "TAG_IMMUTABLE");
    }
    return std::optional<TagRecord>(std::move(existing).value());
  }
  if (existing.status().code() != core::Code::kNotFound) return existing.status();
  return std::optional<TagRecord>();
}

// All aliases of a repository, by name.
core::Result<std::map<std::string, AliasRecord>> LoadAliases(storage::MetaStore* meta,
                                                             std::string_view repo) {
  std::map<std::string, AliasRecord> out;
  core::Status bad;
  std::string prefix = AliasPrefix(repo);
  RETURN_IF_ERROR(meta->Scan(kTagsCf, prefix, [&](std::string_view key, std::string_view value) {
    std::string_view name = key.substr(prefix.size());
    auto rec = AliasRecord::Parse(name, value);
    if (!rec.ok()) {
      bad = rec.status();
      return false;
    }
    out.emplace(std::string(name), std::move(rec).value());
    return true;
  }));
  RETURN_IF_ERROR(bad);
  return out;
}

std::vector<std::string> AliasesOf(const std::map<std::string, AliasRecord>& aliases,
                                   std::string_view version) {
  std::vector<std::string> out;
  for (const auto& [name, rec] : aliases) {
    if (rec.version == version) out.push_back(name);
  }
  return out;
}

core::Result<uint64_t> CountVersions(storage::MetaStore* meta, std::string_view repo) {
  uint64_t n = 0;
  RETURN_IF_ERROR(meta->Scan(kTagsCf, VersionPrefix(repo), [&](std::string_view, std::string_view) {
    ++n;
    return true;
  }));
  return n;
}

VersionInfo MakeInfo(std::string_view repo, std::string_view version, const TagRecord& rec,
                     std::vector<std::string> aliases) {
  VersionInfo info;
  info.repo = std::string(repo);
  info.version = std::string(version);
  info.digest = rec.digest;
  info.manifest_size = rec.size;
  info.created_micros = rec.created;
  info.state = rec.state;
  info.labels = rec.labels;
  info.aliases = std::move(aliases);
  info.total_size = rec.total_size;
  return info;
}

core::Result<std::string> ReadBlob(storage::BlobStore* blobs, const core::Digest& digest, uint64_t max) {
  ASSIGN_OR_RETURN(auto reader, blobs->Open(digest));
  if (reader->size() > max) {
    return core::DataLoss("blob " + digest.ToString() + " is larger than " + std::to_string(max) + " bytes");
  }
  std::string out(reader->size(), '\0');
  size_t done = 0;
  while (done < out.size()) {
    ASSIGN_OR_RETURN(size_t n, reader->ReadAt(done, out.data() + done, out.size() - done));
    if (n == 0) return core::DataLoss("blob " + digest.ToString() + " is shorter than its size");
    done += n;
  }
  return out;
}

core::Result<Manifest> ReadManifest(storage::BlobStore* blobs, const core::Digest& digest,
                                    std::string* bytes_out = nullptr) {
  ASSIGN_OR_RETURN(std::string bytes, ReadBlob(blobs, digest, kMaxManifestBytes));
  auto m = ParseManifest(bytes);
  if (!m.ok()) return core::DataLoss("stored manifest " + digest.ToString() + ": " + m.status().message());
  if (bytes_out) *bytes_out = std::move(bytes);
  return m;
}

core::Status ValidateLabels(const std::map<std::string, std::string>& labels) {
  for (const auto& [k, v] : labels) RETURN_IF_ERROR(ValidateLabel(k, v));
  return core::OkStatus();
}

struct Resolved {
  std::string version;
  TagRecord tag;
};

// ref: a version, an alias or a manifest digest. REQUIRES: repo is valid.
core::Result<Resolved> ResolveRef(storage::MetaStore* meta, std::string_view repo, std::string_view ref) {
  if (ref.starts_with("sha256:")) {
    auto digest = core::Digest::Parse(ref);
    if (!digest.ok()) return core::InvalidArgument(digest.status().message(), "DIGEST_INVALID");
    auto text = meta->Get(kManifestsCf, IndexKey(repo, *digest));
    if (!text.ok()) {
      return text.status().code() == core::Code::kNotFound ? VersionUnknown(repo, ref) : text.status();
    }
    ASSIGN_OR_RETURN(IndexRecord index, IndexRecord::Parse(ref, *text));
    ASSIGN_OR_RETURN(TagRecord tag, LoadVersion(meta, repo, index.version));
    return Resolved{index.version, std::move(tag)};
  }
  RETURN_IF_ERROR(ValidateTag(ref));
  auto tag = LoadVersion(meta, repo, ref);
  if (tag.ok()) return Resolved{std::string(ref), std::move(tag).value()};
  if (tag.status().code() != core::Code::kNotFound) return tag.status();
  auto text = meta->Get(kTagsCf, AliasKey(repo, ref));
  if (!text.ok()) {
    return text.status().code() == core::Code::kNotFound ? VersionUnknown(repo, ref) : text.status();
  }
  ASSIGN_OR_RETURN(AliasRecord alias, AliasRecord::Parse(ref, *text));
  ASSIGN_OR_RETURN(TagRecord target, LoadVersion(meta, repo, alias.version));
  return Resolved{alias.version, std::move(target)};
}

// Version page tokens: hex of "<created>:<version>" of the last item shown.
std::string VersionToken(int64_t created, std::string_view version) {
  std::string plain = std::to_string(created) + ":" + std::string(version);
  return core::HexEncode(plain.data(), plain.size());
}

core::Status BadToken() { return core::InvalidArgument("invalid page token", "PAGE_TOKEN_INVALID"); }

core::Result<std::pair<int64_t, std::string>> ParseVersionToken(std::string_view token) {
  auto plain = core::HexDecode(token);
  if (!plain.ok()) return BadToken();
  size_t colon = plain->find(':');
  if (colon == std::string::npos) return BadToken();
  int64_t created = 0;
  const char* begin = plain->data();
  auto [end, ec] = std::from_chars(begin, begin + colon, created);
  if (ec != std::errc() || end != begin + colon) return BadToken();
  std::string version = plain->substr(colon + 1);
  if (!ValidateTag(version).ok()) return BadToken();
  return std::make_pair(created, version);
}

core::Status CheckLimit(size_t limit) {
  if (limit < 1 || limit > kMaxPageLimit) {
    return core::InvalidArgument("limit must be between 1 and " + std::to_string(kMaxPageLimit),
                                 "LIMIT_INVALID");
  }
  return core::OkStatus();
}

}  // namespace

std::string_view VersionStateName(VersionState state) {
  switch (state) {
    case VersionState::kPending:
      return "pending";
    case VersionState::kQuarantined:
      return "quarantined";
    case VersionState::kAvailable:
      return "available";
  }
  return "unknown";
}

Registry::Registry(RegistryOptions options) : options_(std::move(options)) {}

core::Result<VersionInfo> Registry::PutVersion(std::string_view repo, std::string_view version,
                                               std::string_view manifest_bytes,
                                               const std::map<std::string, std::string>& labels) {
  RETURN_IF_ERROR(RequireAccess(Action::kPush, repo));
  RETURN_IF_ERROR(ValidateRepoName(repo));
  RETURN_IF_ERROR(ValidateTag(version));
  RETURN_IF_ERROR(ValidateLabels(labels));
  if (manifest_bytes.size() > kMaxManifestBytes) {
    return core::ResourceExhausted("manifest larger than " + std::to_string(kMaxManifestBytes) + " bytes",
                                   "MANIFEST_TOO_LARGE");
  }
  ASSIGN_OR_RETURN(Manifest manifest, ParseManifest(manifest_bytes));
  core::Digest digest = core::Sha256::Of(manifest_bytes);
  // Checked again under write_mu_ below; this early look only makes a
  // conflicting push fail as a conflict, not as a list of blobs to upload.
  RETURN_IF_ERROR(CheckVersionName(options_.meta, repo, version, digest).status());

  // Shared with other pushes, exclusive with GC: blobs seen here cannot be
  // swept before the records below make them referenced.
  std::shared_lock gc_lock(gc_mu_);

  std::vector<const Descriptor*> refs = {&manifest.config};
  uint64_t total_size = 0;
  for (const auto& layer : manifest.layers) {
    refs.push_back(&layer);
    total_size += layer.size;
  }
  std::map<core::Digest, std::optional<uint64_t>> stored;  // nullopt: absent
  std::vector<std::string> missing;
  for (const Descriptor* d : refs) {
    auto [it, fresh] = stored.try_emplace(d->digest);
    if (fresh) {
      auto stat = options_.blobs->Stat(d->digest);
      if (stat.ok()) {
        it->second = stat->size;
      } else if (stat.status().code() == core::Code::kNotFound) {
        missing.push_back(d->digest.ToString());
      } else {
        return stat.status();
      }
    }
    if (it->second && *it->second != d->size) {
      return core::InvalidArgument("manifest: blob " + d->digest.ToString() + " has " +
                                       std::to_string(*it->second) + " bytes, the manifest says " +
                                       std::to_string(d->size),
                                   "MANIFEST_INVALID");
    }
  }
  if (!missing.empty()) {
    return core::Status(core::Code::kInvalidArgument,
                        std::to_string(missing.size()) + " blob(s) referenced by the manifest do not exist",
                        "BLOB_UNKNOWN", core::DumpJson(Json{{"missing", missing}}));
  }

  std::lock_guard write_lock(write_mu_);
  ASSIGN_OR_RETURN(std::optional<TagRecord> existing, CheckVersionName(options_.meta, repo, version, digest));
  if (existing) {
    ASSIGN_OR_RETURN(auto aliases, LoadAliases(options_.meta, repo));
    return MakeInfo(repo, version, *existing, AliasesOf(aliases, version));
  }

  RETURN_IF_ERROR(options_.blobs->Put(digest, manifest_bytes));

  int64_t now = options_.clock->NowMicros();
  storage::WriteBatch batch;
  auto repo_text = options_.meta->Get(kReposCf, repo);
  if (!repo_text.ok()) {
    if (repo_text.status().code() != core::Code::kNotFound) return repo_text.status();
    RepoRecord rec;
    rec.created = now;
    batch.Put(kReposCf, repo, rec.Dump());
  }

  TagRecord tag;
  tag.digest = digest;
  tag.created = now;
  tag.state = options_.new_version_state;
  tag.labels = labels;
  tag.size = manifest_bytes.size();
  tag.total_size = total_size;
  batch.Put(kTagsCf, VersionKey(repo, version), tag.Dump());

  IndexRecord index;
  std::string index_key = IndexKey(repo, digest);
  auto index_text = options_.meta->Get(kManifestsCf, index_key);
  if (index_text.ok()) {
    ASSIGN_OR_RETURN(index, IndexRecord::Parse(digest.ToString(), *index_text));
  } else if (index_text.status().code() != core::Code::kNotFound) {
    return index_text.status();
  } else {
    index.version = std::string(version);
    index.created = now;
  }
  index.versions.emplace_back(version);
  batch.Put(kManifestsCf, index_key, index.Dump());

  RETURN_IF_ERROR(options_.meta->Write(batch));
  return MakeInfo(repo, version, tag, {});
}

core::Result<ResolvedVersion> Registry::Resolve(std::string_view repo, std::string_view ref) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  RETURN_IF_ERROR(RequireRepo(options_.meta, repo));
  ASSIGN_OR_RETURN(Resolved r, ResolveRef(options_.meta, repo, ref));
  ResolvedVersion out;
  auto manifest = ReadManifest(options_.blobs, r.tag.digest, &out.manifest_bytes);
  if (!manifest.ok()) {
    // The version may have been deleted (and its manifest collected) since
    // the lookup; that is an unknown version, not lost data.
    if (manifest.status().code() == core::Code::kNotFound &&
        LoadVersion(options_.meta, repo, r.version).status().code() == core::Code::kNotFound) {
      return VersionUnknown(repo, ref);
    }
    return manifest.status().code() == core::Code::kNotFound
               ? core::DataLoss("manifest " + r.tag.digest.ToString() + " of '" + std::string(repo) + ":" +
                                r.version + "' is missing")
               : manifest.status();
  }
  out.manifest = std::move(manifest).value();
  ASSIGN_OR_RETURN(auto aliases, LoadAliases(options_.meta, repo));
  out.info = MakeInfo(repo, r.version, r.tag, AliasesOf(aliases, r.version));
  return out;
}

core::Result<Page<VersionInfo>> Registry::ListVersions(std::string_view repo, std::string_view page_token,
                                                       size_t limit) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  RETURN_IF_ERROR(CheckLimit(limit));
  std::optional<std::pair<int64_t, std::string>> after;
  if (!page_token.empty()) {
    ASSIGN_OR_RETURN(after, ParseVersionToken(page_token));
  }
  RETURN_IF_ERROR(RequireRepo(options_.meta, repo));

  // Versions are keyed by name, so ordering by time means reading the
  // repository's tag records: cheap next to a push, and it keeps one record
  // per version with nothing to fall out of step.
  std::vector<std::pair<std::string, TagRecord>> all;
  core::Status bad;
  std::string prefix = VersionPrefix(repo);
  RETURN_IF_ERROR(options_.meta->Scan(kTagsCf, prefix, [&](std::string_view key, std::string_view value) {
    std::string_view name = key.substr(prefix.size());
    auto rec = TagRecord::Parse(name, value);
    if (!rec.ok()) {
      bad = rec.status();
      return false;
    }
    all.emplace_back(std::string(name), std::move(rec).value());
    return true;
  }));
  RETURN_IF_ERROR(bad);

  // Newest first; equal times by name, descending, so the order is total.
  auto newer = [](int64_t ca, std::string_view va, int64_t cb, std::string_view vb) {
    return ca != cb ? ca > cb : va > vb;
  };
  std::sort(all.begin(), all.end(), [&](const auto& a, const auto& b) {
    return newer(a.second.created, a.first, b.second.created, b.first);
  });
  auto begin = all.begin();
  if (after) {
    begin = std::find_if(all.begin(), all.end(), [&](const auto& e) {
      return newer(after->first, after->second, e.second.created, e.first);
    });
  }
  ASSIGN_OR_RETURN(auto aliases, LoadAliases(options_.meta, repo));
  Page<VersionInfo> page;
  for (auto it = begin; it != all.end() && page.items.size() < limit; ++it) {
    page.items.push_back(MakeInfo(repo, it->first, it->second, AliasesOf(aliases, it->first)));
    if (page.items.size() == limit && std::next(it) != all.end()) {
      page.next = VersionToken(it->second.created, it->first);
    }
  }
  return page;
}

core::Result<Page<RepoInfo>> Registry::ListRepos(std::string_view page_token, size_t limit) {
  RETURN_IF_ERROR(CheckLimit(limit));
  std::string after;
  if (!page_token.empty()) {
    auto decoded = core::HexDecode(page_token);
    if (!decoded.ok() || !ValidateRepoName(*decoded).ok()) return BadToken();
    after = std::move(decoded).value();
  }
  std::vector<std::pair<std::string, std::string>> rows;
  RETURN_IF_ERROR(options_.meta->Scan(
      kReposCf, "",
      [&](std::string_view key, std::string_view value) {
        rows.emplace_back(std::string(key), std::string(value));
        return rows.size() <= limit;  // one more than a page tells whether there is a next
      },
      after));
  Page<RepoInfo> page;
  for (size_t i = 0; i < rows.size() && i < limit; ++i) {
    const auto& [name, text] = rows[i];
    ASSIGN_OR_RETURN(RepoRecord rec, RepoRecord::Parse(name, text));
    ASSIGN_OR_RETURN(uint64_t count, CountVersions(options_.meta, name));
    page.items.push_back({name, rec.created, rec.labels, rec.residency, count, rec.anonymous_read});
  }
  if (rows.size() > limit)
    page.next = core::HexEncode(rows[limit - 1].first.data(), rows[limit - 1].first.size());
  return page;
}

core::Result<RepoInfo> Registry::GetRepo(std::string_view repo) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  ASSIGN_OR_RETURN(RepoRecord rec, LoadRepo(options_.meta, repo));
  ASSIGN_OR_RETURN(uint64_t count, CountVersions(options_.meta, repo));
  return RepoInfo{std::string(repo), rec.created, rec.labels, rec.residency, count, rec.anonymous_read};
}

core::Status Registry::SetAnonymousRead(std::string_view repo, bool allowed) {
  RETURN_IF_ERROR(RequireAccess(Action::kAdmin, repo));
  RETURN_IF_ERROR(ValidateRepoName(repo));
  std::lock_guard write_lock(write_mu_);
  RepoRecord rec;
  auto existing = LoadRepo(options_.meta, repo);
  if (existing.ok()) {
    rec = std::move(existing).value();
  } else if (existing.status().code() == core::Code::kNotFound) {
    rec.created = options_.clock->NowMicros();
  } else {
    return existing.status();
  }
  rec.anonymous_read = allowed;
  return options_.meta->Put(kReposCf, repo, rec.Dump());
}

core::Status Registry::SetRepoMetadata(std::string_view repo,
                                       const std::map<std::string, std::string>& labels,
                                       const Residency& residency) {
  RETURN_IF_ERROR(RequireAccess(Action::kPush, repo));
  RETURN_IF_ERROR(ValidateRepoName(repo));
  RETURN_IF_ERROR(ValidateLabels(labels));
  // Residency values follow the label value rules (printable, bounded).
  auto check = [](std::string_view field, const std::string& value) {
    if (ValidateLabel(field, value).ok()) return core::OkStatus();
    return core::InvalidArgument(
        "residency '" + std::string(field) + "' must be printable and at most 1024 bytes",
        "RESIDENCY_INVALID");
  };
  RETURN_IF_ERROR(check("region", residency.region));
  RETURN_IF_ERROR(check("classification", residency.classification));
  std::lock_guard write_lock(write_mu_);
  RepoRecord rec;
  auto existing = LoadRepo(options_.meta, repo);
  if (existing.ok()) {
    rec = std::move(existing).value();
  } else if (existing.status().code() == core::Code::kNotFound) {
    rec.created = options_.clock->NowMicros();
  } else {
    return existing.status();
  }
  rec.labels = labels;
  rec.residency = residency;
  return options_.meta->Put(kReposCf, repo, rec.Dump());
}

core::Status Registry::SetVersionLabels(std::string_view repo, std::string_view version,
                                        const std::map<std::string, std::string>& labels) {
  RETURN_IF_ERROR(RequireAccess(Action::kPush, repo));
  RETURN_IF_ERROR(ValidateRepoName(repo));
  RETURN_IF_ERROR(ValidateTag(version));
  RETURN_IF_ERROR(ValidateLabels(labels));
  std::lock_guard write_lock(write_mu_);
  RETURN_IF_ERROR(RequireRepo(options_.meta, repo));
  ASSIGN_OR_RETURN(TagRecord tag, LoadVersion(options_.meta, repo, version));
  tag.labels = labels;
  return options_.meta->Put(kTagsCf, VersionKey(repo, version), tag.Dump());
}

core::Status Registry::SetVersionState(std::string_view repo, std::string_view version, VersionState state) {
  RETURN_IF_ERROR(RequireAccess(Action::kAdmin, repo));
  RETURN_IF_ERROR(ValidateRepoName(repo));
  RETURN_IF_ERROR(ValidateTag(version));
  std::lock_guard write_lock(write_mu_);
  RETURN_IF_ERROR(RequireRepo(options_.meta, repo));
  ASSIGN_OR_RETURN(TagRecord tag, LoadVersion(options_.meta, repo, version));
  tag.state = state;
  return options_.meta->Put(kTagsCf, VersionKey(repo, version), tag.Dump());
}

core::Result<AliasInfo> Registry::SetAlias(std::string_view repo, std::string_view alias,
                                           std::string_view ref) {
  AliasMove move;
  move.by = CurrentName();
  move.via = "override";
  return MoveAlias(repo, alias, ref, move);
}

core::Result<AliasInfo> Registry::MoveAlias(std::string_view repo, std::string_view alias,
                                            std::string_view ref, const AliasMove& move) {
  Action action;
  if (move.via == "promotion") {
    action = Action::kPromote;
  } else if (move.via == "override" || move.via == "import") {
    action = Action::kAdmin;
  } else {
    return core::InvalidArgument("an alias moves via \"promotion\", \"override\" or \"import\", not \"" +
                                     move.via + "\"",
                                 "ALIAS_VIA_INVALID");
  }
  RETURN_IF_ERROR(RequireAccess(action, repo));
  RETURN_IF_ERROR(ValidateRepoName(repo));
  RETURN_IF_ERROR(ValidateTag(alias));
  std::lock_guard write_lock(write_mu_);
  RETURN_IF_ERROR(RequireRepo(options_.meta, repo));
  auto clash = options_.meta->Get(kTagsCf, VersionKey(repo, alias));
  if (clash.ok()) {
    return core::AlreadyExists("'" + std::string(alias) + "' is a version of '" + std::string(repo) + "'",
                               "NAME_TAKEN");
  }
  if (clash.status().code() != core::Code::kNotFound) return clash.status();
  // An alias given as ref is followed now: aliases always name a version.
  ASSIGN_OR_RETURN(Resolved target, ResolveRef(options_.meta, repo, ref));

  std::optional<AliasRecord> current;
  auto current_text = options_.meta->Get(kTagsCf, AliasKey(repo, alias));
  if (current_text.ok()) {
    ASSIGN_OR_RETURN(current, AliasRecord::Parse(alias, *current_text));
  } else if (current_text.status().code() != core::Code::kNotFound) {
    return current_text.status();
  }
  if (move.expect_current) {
    std::optional<core::Digest> now;
    if (current) now = current->digest;
    if (now != *move.expect_current) {
      std::string where = current ? "'" + current->version + "' (" + current->digest.ToString() + ")" : "nothing";
      Json detail = {{"alias", alias}, {"current_version", current ? current->version : ""}};
      if (current) detail["current_digest"] = current->digest.ToString();
      return core::Aborted("alias '" + std::string(alias) + "' of '" + std::string(repo) +
                               "' moved meanwhile: it points at " + where + " now",
                           "ALIAS_MOVED")
          .WithDetail(core::DumpJson(detail));
    }
  }

  AliasRecord rec{target.tag.digest, target.version, options_.clock->NowMicros()};
  HistoryRecord h;
  h.event.alias = std::string(alias);
  h.event.version = target.version;
  h.event.digest = target.tag.digest;
  if (current) {
    h.event.previous_version = current->version;
    h.event.previous_digest = current->digest;
  }
  h.event.micros = rec.updated;
  h.event.by = move.by.empty() ? CurrentName() : move.by;
  h.event.via = move.via;
  h.event.job_id = move.job_id;
  h.event.vsa = move.vsa;
  ASSIGN_OR_RETURN(std::string history_key, NextHistoryKey(options_.meta, repo, alias));
  storage::WriteBatch batch;
  batch.Put(kTagsCf, AliasKey(repo, alias), rec.Dump());
  batch.Put(kTagsCf, history_key, h.Dump());
  RETURN_IF_ERROR(options_.meta->Write(batch));
  return rec.ToInfo(alias);
}

core::Result<std::vector<AliasEvent>> Registry::AliasHistory(std::string_view repo, std::string_view alias,
                                                             size_t limit) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  RETURN_IF_ERROR(ValidateTag(alias));
  if (limit < 1 || limit > kMaxPageLimit) {
    return core::InvalidArgument("limit must be in [1, " + std::to_string(kMaxPageLimit) + "]", "LIMIT_INVALID");
  }
  RETURN_IF_ERROR(RequireRepo(options_.meta, repo));
  std::vector<AliasEvent> out;
  core::Status bad;
  RETURN_IF_ERROR(options_.meta->Scan(kTagsCf, HistoryPrefix(repo, alias),
                                      [&](std::string_view, std::string_view value) {
                                        auto rec = HistoryRecord::Parse(alias, value);
                                        if (!rec.ok()) {
                                          bad = rec.status();
                                          return false;
                                        }
                                        out.push_back(std::move(rec->event));
                                        return out.size() < limit;
                                      }));
  RETURN_IF_ERROR(bad);
  return out;
}

core::Result<AliasInfo> Registry::GetAlias(std::string_view repo, std::string_view alias) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  RETURN_IF_ERROR(ValidateTag(alias));
  RETURN_IF_ERROR(RequireRepo(options_.meta, repo));
  auto text = options_.meta->Get(kTagsCf, AliasKey(repo, alias));
  if (!text.ok()) {
    return text.status().code() == core::Code::kNotFound ? AliasUnknown(repo, alias) : text.status();
  }
  ASSIGN_OR_RETURN(AliasRecord rec, AliasRecord::Parse(alias, *text));
  return rec.ToInfo(alias);
}

core::Status Registry::DeleteAlias(std::string_view repo, std::string_view alias) {
  RETURN_IF_ERROR(RequireAccess(Action::kDelete, repo));
  RETURN_IF_ERROR(ValidateRepoName(repo));
  RETURN_IF_ERROR(ValidateTag(alias));
  std::lock_guard write_lock(write_mu_);
  RETURN_IF_ERROR(RequireRepo(options_.meta, repo));
  auto text = options_.meta->Get(kTagsCf, AliasKey(repo, alias));
  if (!text.ok()) {
    return text.status().code() == core::Code::kNotFound ? AliasUnknown(repo, alias) : text.status();
  }
  ASSIGN_OR_RETURN(AliasRecord was, AliasRecord::Parse(alias, *text));
  storage::WriteBatch batch;
  batch.Delete(kTagsCf, AliasKey(repo, alias));
  RETURN_IF_ERROR(RecordDeletion(options_.meta, options_.clock, repo, alias, was, &batch));
  return options_.meta->Write(batch);
}

core::Result<std::vector<AliasInfo>> Registry::ListAliases(std::string_view repo) {
  RETURN_IF_ERROR(ValidateRepoName(repo));
  RETURN_IF_ERROR(RequireRepo(options_.meta, repo));
  ASSIGN_OR_RETURN(auto aliases, LoadAliases(options_.meta, repo));
  std::vector<AliasInfo> out;
  for (const auto& [name, rec] : aliases) out.push_back(rec.ToInfo(name));
  return out;
}

core::Status Registry::DeleteVersion(std::string_view repo, std::string_view version) {
  RETURN_IF_ERROR(RequireAccess(Action::kDelete, repo));
  RETURN_IF_ERROR(ValidateRepoName(repo));
  RETURN_IF_ERROR(ValidateTag(version));
  std::lock_guard write_lock(write_mu_);
  RETURN_IF_ERROR(RequireRepo(options_.meta, repo));
  ASSIGN_OR_RETURN(TagRecord tag, LoadVersion(options_.meta, repo, version));
  ASSIGN_OR_RETURN(auto aliases, LoadAliases(options_.meta, repo));

  storage::WriteBatch batch;
  batch.Delete(kTagsCf, VersionKey(repo, version));
  for (const std::string& alias : AliasesOf(aliases, version)) {
    batch.Delete(kTagsCf, AliasKey(repo, alias));
    RETURN_IF_ERROR(RecordDeletion(options_.meta, options_.clock, repo, alias, aliases.at(alias), &batch));
  }

  std::string index_key = IndexKey(repo, tag.digest);
  auto index_text = options_.meta->Get(kManifestsCf, index_key);
  if (index_text.ok()) {
    ASSIGN_OR_RETURN(IndexRecord index, IndexRecord::Parse(tag.digest.ToString(), *index_text));
    std::erase(index.versions, std::string(version));
    if (index.versions.empty()) {
      batch.Delete(kManifestsCf, index_key);
    } else {
      index.version = index.versions.front();
      batch.Put(kManifestsCf, index_key, index.Dump());
    }
  } else if (index_text.status().code() != core::Code::kNotFound) {
    return index_text.status();
  }
  return options_.meta->Write(batch);
}

core::Result<GcReport> Registry::CollectGarbage() {
  RETURN_IF_ERROR(RequireAccess(Action::kAdmin, ""));
  // Exclusive: no push is between its blob check and its records, so every
  // blob a version will reference is either referenced already or unchecked.
  std::unique_lock gc_lock(gc_mu_);

  // Mark. Manifest digests come from both the version records and the
  // manifest index, so a half-written or damaged index cannot hide one.
  std::set<core::Digest> manifests;
  core::Status bad;
  RETURN_IF_ERROR(options_.meta->Scan(kTagsCf, "", [&](std::string_view key, std::string_view value) {
    size_t sep = key.find('\0');
    if (sep == std::string_view::npos || key.substr(sep, 3) != std::string_view("\0v\0", 3)) return true;
    auto rec = TagRecord::Parse(key.substr(sep + 3), value);
    if (!rec.ok()) {
      bad = rec.status();
      return false;
    }
    manifests.insert(rec->digest);
    return true;
  }));
  RETURN_IF_ERROR(bad);
  RETURN_IF_ERROR(options_.meta->Scan(kManifestsCf, "", [&](std::string_view key, std::string_view) {
    size_t sep = key.find('\0');
    auto digest = core::Digest::Parse(sep == std::string_view::npos ? key : key.substr(sep + 1));
    if (!digest.ok()) {
      bad = Corrupt(kManifestsCf, key.substr(0, sep), digest.status().message());
      return false;
    }
    manifests.insert(*digest);
    return true;
  }));
  RETURN_IF_ERROR(bad);

  std::set<core::Digest> live = manifests;
  // Attestation documents are blobs named by the last part of their
  // referrer key (registry/attestations.h).
  // Evaluation specs are blobs named by "spec_digest" in evaluation records
  // and in the requests of jobs (registry/evaluations.h).
  auto keep_spec = [&](std::string_view value, bool in_request) {
    if (value.find("spec_digest") == std::string_view::npos) return;
    auto j = core::ParseJson(value, {64 << 20, 64});
    if (!j.ok() || !j->is_object()) return;
    const core::Json* holder = &*j;
    if (in_request) {
      if (!j->contains("request") || !(*j)["request"].is_object()) return;
      holder = &(*j)["request"];
    }
    auto it = holder->find("spec_digest");
    if (it == holder->end() || !it->is_string()) return;
    auto digest = core::Digest::Parse(it->get<std::string>());
    if (digest.ok()) live.insert(*digest);
  };
  RETURN_IF_ERROR(options_.meta->Scan("referrers", "", [&](std::string_view key, std::string_view value) {
    size_t sep = key.rfind('\0');
    auto digest = core::Digest::Parse(sep == std::string_view::npos ? key : key.substr(sep + 1));
    if (!digest.ok()) {
      bad = Corrupt("referrers", key.substr(0, key.find('\0')), digest.status().message());
      return false;
    }
    live.insert(*digest);
    keep_spec(value, false);
    return true;
  }));
  RETURN_IF_ERROR(bad);
  RETURN_IF_ERROR(options_.meta->Scan("jobs", std::string_view("job\0", 4), [&](std::string_view, std::string_view value) {
    keep_spec(value, true);
    return true;
  }));
  for (const core::Digest& digest : manifests) {
    // A manifest that cannot be read hides what it references: sweeping
    // then could delete a live layer, so GC stops instead.
    auto manifest = ReadManifest(options_.blobs, digest);
    if (!manifest.ok()) {
      if (manifest.status().code() == core::Code::kNotFound) {
        return core::DataLoss("garbage collection stopped: manifest " + digest.ToString() +
                              " of a recorded version is missing");
      }
      return manifest.status().Annotate("garbage collection stopped");
    }
    live.insert(manifest->config.digest);
    for (const auto& layer : manifest->layers) live.insert(layer.digest);
    if (manifest->subject) live.insert(manifest->subject->digest);
  }

  // Sweep. Deletions happen after the walk so a store iterating a directory
  // never sees it change underneath.
  GcReport report;
  int64_t cutoff = options_.clock->NowMicros() - options_.gc_grace_micros;
  std::vector<storage::BlobInfo> doomed;
  RETURN_IF_ERROR(options_.blobs->ForEach([&](const storage::BlobInfo& info) {
    ++report.blobs_scanned;
    if (live.count(info.digest)) return true;
    if (info.mtime_micros > cutoff) {
      ++report.blobs_kept_young;
    } else {
      doomed.push_back(info);
    }
    return true;
  }));
  for (const auto& info : doomed) {
    core::Status s = options_.blobs->Delete(info.digest);
    if (s.code() == core::Code::kNotFound) continue;
    RETURN_IF_ERROR(s);
    ++report.blobs_deleted;
    report.bytes_freed += info.size;
  }
  return report;
}

}  // namespace sigil::registry
