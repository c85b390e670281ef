#include "attest/model_signing.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>

#include <nlohmann/json.hpp>

#include "attest/internal/json_fields.h"
#include "attest/statement.h"
#include "core/fs.h"
#include "core/json.h"
#include "signing/dsse.h"

namespace sigil::attest {

namespace fs = std::filesystem;
using core::Json;
using core::Result;
using core::Status;

namespace {

constexpr size_t kReadBuffer = 1 << 20;
constexpr size_t kMaxResources = 1'000'000;
constexpr uint64_t kMaxBundleBytes = 64 << 20;

Status BundleInvalid(std::string message) {
  return core::InvalidArgument("model signature bundle: " + std::move(message), "BUNDLE_INVALID");
}

// ---- resource names and order

struct ResourceKey {
  std::vector<std::string_view> components;
  uint64_t start = 0;
  uint64_t end = 0;
};

bool ParseDecimal(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

// The file path of a resource name: "a/b" or, for shards, "a/b:start:end".
std::string_view ResourcePath(std::string_view name, bool sharded, uint64_t* start, uint64_t* end) {
  *start = *end = 0;
  if (!sharded) return name;
  size_t c2 = name.rfind(':');
  if (c2 == std::string_view::npos || c2 == 0) return name;
  size_t c1 = name.rfind(':', c2 - 1);
  if (c1 == std::string_view::npos) return name;
  if (!ParseDecimal(name.substr(c1 + 1, c2 - c1 - 1), start) ||
      !ParseDecimal(name.substr(c2 + 1), end)) {
    *start = *end = 0;
    return name;
  }
  return name.substr(0, c1);
}

ResourceKey KeyOf(const ModelResource& r) {
  bool sharded = r.algorithm.rfind("sha256-sharded-", 0) == 0;
  ResourceKey key;
  std::string_view path = ResourcePath(r.name, sharded, &key.start, &key.end);
  size_t begin = 0;
  while (true) {
    size_t slash = path.find('/', begin);
    key.components.push_back(path.substr(begin, slash - begin));
    if (slash == std::string_view::npos) break;
    begin = slash + 1;
  }
  return key;
}

bool KeyLess(const ResourceKey& a, const ResourceKey& b) {
  if (a.components != b.components) {
    return std::lexicographical_compare(a.components.begin(), a.components.end(),
                                        b.components.begin(), b.components.end());
  }
  if (a.start != b.start) return a.start < b.start;
  return a.end < b.end;
}

bool ValidUtf8(std::string_view s) {
  static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t extra;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= extra) return false;
    for (size_t k = 1; k <= extra; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

// Names must stay inside the model: relative, no empty or '..' components.
Status CheckResourceName(std::string_view path) {
  auto bad = [&](const char* why) {
    return core::InvalidArgument("resource name '" + std::string(path) + "' " + why,
                                 "MODEL_RESOURCE_NAME");
  };
  if (path.empty()) return bad("is empty");
  if (path == ".") return core::OkStatus();
  if (path.front() == '/') return bad("is absolute");
  size_t begin = 0;
  while (true) {
    size_t slash = path.find('/', begin);
    std::string_view c = path.substr(begin, slash - begin);
    if (c == "..") return bad("climbs out of the model with '..'");
    if (c.empty() || c == ".") return bad("has an empty or '.' component");
    if (slash == std::string_view::npos) break;
    begin = slash + 1;
  }
  if (path.find('\0') != std::string_view::npos) return bad("holds a NUL byte");
  if (!ValidUtf8(path)) return bad("is not valid UTF-8");
  return core::OkStatus();
}

// ---- listing

struct FileEntry {
  std::string path;  // on disk
  std::string name;  // relative, '/'-separated; "." for a single-file model
  uint64_t size = 0;
};

Result<std::vector<std::string>> NormalizeIgnores(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (std::string p : paths) {
    while (p.rfind("./", 0) == 0) p.erase(0, 2);
    while (!p.empty() && p.back() == '/') p.pop_back();
    if (p.empty()) continue;
    Status s = CheckResourceName(p);
    if (!s.ok()) return core::InvalidArgument("ignore path: " + s.message());
    out.push_back(std::move(p));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool Ignored(const std::vector<std::string>& ignores, std::string_view rel) {
  for (const std::string& ig : ignores) {
    if (rel == ig || (rel.size() > ig.size() && rel.substr(0, ig.size()) == ig && rel[ig.size()] == '/')) {
      return true;
    }
  }
  return false;
}

Status FsError(const std::error_code& ec, const std::string& what) {
  return core::ErrnoStatus(ec.value(), what);
}

Result<std::vector<FileEntry>> ListModel(const std::string& model_path, bool allow_symlinks,
                                         const std::vector<std::string>& ignores) {
  std::error_code ec;
  fs::file_status top = fs::status(model_path, ec);
  if (ec) return FsError(ec, "model " + model_path);
  std::vector<FileEntry> files;
  if (fs::is_regular_file(top)) {
    uint64_t size = fs::file_size(model_path, ec);
    if (ec) return FsError(ec, "stat " + model_path);
    files.push_back({model_path, ".", size});
    return files;
  }
  if (!fs::is_directory(top)) {
    return core::FailedPrecondition("model " + model_path + " is neither a file nor a directory",
                                    "MODEL_FILE_TYPE");
  }
  fs::recursive_directory_iterator it(model_path, fs::directory_options::none, ec);
  if (ec) return FsError(ec, "reading " + model_path);
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return FsError(ec, "reading " + model_path);
    const fs::directory_entry& entry = *it;
    std::string rel = entry.path().lexically_relative(model_path).generic_string();
    if (Ignored(ignores, rel)) {
      if (entry.is_directory(ec) && !entry.is_symlink(ec)) it.disable_recursion_pending();
      continue;
    }
    fs::file_status st = entry.symlink_status(ec);
    if (ec) return FsError(ec, "stat " + entry.path().string());
    if (fs::is_symlink(st)) {
      if (!allow_symlinks) {
        return core::FailedPrecondition("model contains a symlink: " + rel +
                                            " (serialize with allow_symlinks to follow it)",
                                        "MODEL_SYMLINK");
      }
      st = entry.status(ec);
      if (ec) return FsError(ec, "following symlink " + rel);
      if (!fs::is_regular_file(st)) {
        return core::FailedPrecondition("symlink " + rel + " does not point at a regular file",
                                        "MODEL_SYMLINK");
      }
    } else if (fs::is_directory(st)) {
      continue;
    } else if (!fs::is_regular_file(st)) {
      return core::FailedPrecondition("model contains " + rel + ", which is not a regular file",
                                      "MODEL_FILE_TYPE");
    }
    uint64_t size = fs::file_size(entry.path(), ec);
    if (ec) return FsError(ec, "stat " + rel);
    RETURN_IF_ERROR(CheckResourceName(rel));
    files.push_back({entry.path().string(), rel, size});
    if (files.size() > kMaxResources) return core::ResourceExhausted("model has too many files");
  }
  return files;
}

// ---- hashing

struct WorkItem {
  size_t file;
  uint64_t start;
  uint64_t end;    // exclusive
  bool to_eof;     // files method: hash whatever the file holds
  std::string name;
};

Status HashRange(const FileEntry& file, const WorkItem& item, std::vector<char>* buf,
                 std::string* hex) {
  core::UniqueFd fd(::open(file.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return core::ErrnoStatus(errno, "open " + file.name);
  core::Sha256 h;
  uint64_t offset = item.start;
  while (item.to_eof || offset < item.end) {
    size_t want = buf->size();
    if (!item.to_eof) want = static_cast<size_t>(std::min<uint64_t>(want, item.end - offset));
    ASSIGN_OR_RETURN(size_t n, core::PreadSome(fd.get(), buf->data(), want, offset));
    if (n == 0) {
      if (item.to_eof) break;
      return core::Aborted("file " + file.name + " shrank while it was hashed", "MODEL_CHANGED");
    }
    h.Update(buf->data(), n);
    offset += n;
  }
  *hex = h.Finish().Hex();
  return core::OkStatus();
}

Result<std::vector<std::string>> HashAll(const std::vector<FileEntry>& files,
                                         const std::vector<WorkItem>& items, int threads) {
  std::vector<std::string> digests(items.size());
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status first_error;
  auto worker = [&] {
    std::vector<char> buf(kReadBuffer);
    while (true) {
      size_t i = next.fetch_add(1);
      if (i >= items.size()) return;
      Status s = HashRange(files[items[i].file], items[i], &buf, &digests[i]);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.ok()) first_error = s;
        next.store(items.size());
        return;
      }
    }
  };
  size_t n = static_cast<size_t>(std::max(1, threads));
  n = std::min(n, std::max<size_t>(1, items.size()));
  std::vector<std::thread> pool;
  try {
    for (size_t t = 1; t < n; ++t) pool.emplace_back(worker);
  } catch (const std::system_error&) {
    // No more threads to be had: the ones started (and this one) share the work.
  }
  worker();
  for (std::thread& t : pool) t.join();
  if (!first_error.ok()) return first_error;
  return digests;
}

std::string MethodName(SerializationMethod m) {
  return m == SerializationMethod::kShards ? "shards" : "files";
}

std::string ModelName(const std::string& model_path) {
  std::error_code ec;
  fs::path p = fs::absolute(model_path, ec).lexically_normal();
  if (ec) p = fs::path(model_path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

// Accepts 8, 8.0, "8": proto-JSON writers differ.
bool TolerantUint(const Json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer()) {
    if (v.get<int64_t>() < 0) return false;
    *out = static_cast<uint64_t>(v.get<int64_t>());
    return true;
  }
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (!(d >= 0) || d > 9007199254740992.0 || std::floor(d) != d) return false;
    *out = static_cast<uint64_t>(d);
    return true;
  }
  if (v.is_string()) return ParseDecimal(v.get_ref<const std::string&>(), out);
  return false;
}

// Relative path of inner under model, if inner lies inside it ("" otherwise).
std::string RelativeInside(const std::string& model_path, const std::string& inner) {
  std::error_code ec;
  fs::path model = fs::weakly_canonical(model_path, ec);
  if (ec) return {};
  fs::path file = fs::weakly_canonical(inner, ec);
  if (ec) return {};
  fs::path rel = file.lexically_relative(model);
  std::string s = rel.generic_string();
  if (s.empty() || s == "." || s.rfind("..", 0) == 0) return {};
  return s;
}

// Display form of a resource for error messages: the file, and the range
// for shards.
std::string Describe(const std::string& name, bool sharded) {
  uint64_t start, end;
  std::string_view path = ResourcePath(name, sharded, &start, &end);
  // Built by appending: GCC 12 at -O3 misreads "'" + std::string(...) as an
  // overlapping memcpy (-Wrestrict).
  std::string out = "'";
  if (!sharded || path == name) {
    out.append(name).append("'");
    return out;
  }
  out.append(path).append("' (bytes ").append(std::to_string(start)).append("-");
  out.append(std::to_string(end)).append(")");
  return out;
}

}  // namespace

void SortResources(std::vector<ModelResource>* resources) {
  std::vector<std::pair<ResourceKey, size_t>> keys;
  keys.reserve(resources->size());
  for (size_t i = 0; i < resources->size(); ++i) keys.emplace_back(KeyOf((*resources)[i]), i);
  std::stable_sort(keys.begin(), keys.end(),
                   [](const auto& a, const auto& b) { return KeyLess(a.first, b.first); });
  std::vector<ModelResource> sorted;
  sorted.reserve(resources->size());
  for (const auto& k : keys) sorted.push_back((*resources)[k.second]);
  *resources = std::move(sorted);
}

Result<core::Digest> ResourcesRoot(const std::vector<ModelResource>& resources) {
  core::Sha256 h;
  for (const ModelResource& r : resources) {
    ASSIGN_OR_RETURN(core::Digest d, core::Digest::FromHex(r.digest_hex));
    h.Update(d.bytes().data(), d.bytes().size());
  }
  return h.Finish();
}

Result<ModelManifest> SerializeModel(const std::string& model_path,
                                     const SerializationOptions& options) {
  if (options.method == SerializationMethod::kShards && options.shard_size == 0) {
    return core::InvalidArgument("shard size must be positive");
  }
  ModelManifest m;
  m.model_name = ModelName(model_path);
  m.method = options.method;
  m.shard_size = options.method == SerializationMethod::kShards ? options.shard_size : kDefaultShardSize;
  m.allow_symlinks = options.allow_symlinks;
  ASSIGN_OR_RETURN(m.ignore_paths, NormalizeIgnores(options.ignore_paths));
  std::vector<std::string> all_ignores = m.ignore_paths;
  for (std::string_view d : kDefaultIgnoredPaths) all_ignores.emplace_back(d);

  ASSIGN_OR_RETURN(std::vector<FileEntry> files, ListModel(model_path, options.allow_symlinks, all_ignores));
  std::vector<WorkItem> items;
  const std::string sharded_alg = "sha256-sharded-" + std::to_string(m.shard_size);
  for (size_t i = 0; i < files.size(); ++i) {
    if (options.method == SerializationMethod::kFiles) {
      items.push_back({i, 0, 0, true, files[i].name});
      continue;
    }
    for (uint64_t start = 0; start < files[i].size; start += m.shard_size) {
      uint64_t end = std::min(files[i].size, start + m.shard_size);
      items.push_back({i, start, end, false,
                       files[i].name + ":" + std::to_string(start) + ":" + std::to_string(end)});
      if (items.size() > kMaxResources) return core::ResourceExhausted("model has too many shards");
    }
  }
  ASSIGN_OR_RETURN(std::vector<std::string> digests, HashAll(files, items, options.threads));
  for (size_t i = 0; i < items.size(); ++i) {
    m.resources.push_back({items[i].name,
                           options.method == SerializationMethod::kFiles ? "sha256" : sharded_alg,
                           digests[i]});
  }
  SortResources(&m.resources);
  ASSIGN_OR_RETURN(m.root, ResourcesRoot(m.resources));
  return m;
}

Result<std::string> ModelStatement(const ModelManifest& m) {
  Json serialization = {{"method", MethodName(m.method)},
                        {"hash_type", "sha256"},
                        {"allow_symlinks", m.allow_symlinks}};
  if (m.method == SerializationMethod::kShards) serialization["shard_size"] = m.shard_size;
  if (!m.ignore_paths.empty()) serialization["ignore_paths"] = m.ignore_paths;
  Json resources = Json::array();
  for (const ModelResource& r : m.resources) {
    resources.push_back({{"name", r.name}, {"algorithm", r.algorithm}, {"digest", r.digest_hex}});
  }
  Statement st;
  st.subjects.push_back({m.model_name.empty() ? "model" : m.model_name, {{"sha256", m.root.Hex()}}});
  st.predicate_type = std::string(kModelSigningV1);
  st.predicate_json =
      core::DumpJson(Json{{"serialization", std::move(serialization)}, {"resources", std::move(resources)}});
  return SerializeStatement(st);
}

Result<std::string> SignModelManifest(const ModelManifest& manifest, const signing::PrivateKey& key) {
  if (key.algorithm() == signing::Algorithm::kEd25519) {
    return core::InvalidArgument("model signatures need an ECDSA key (OpenSSF verifiers accept only EC)",
                                 "KEY_UNSUPPORTED");
  }
  ASSIGN_OR_RETURN(std::string payload, ModelStatement(manifest));
  ASSIGN_OR_RETURN(signing::Envelope env, signing::SignEnvelope(kInTotoPayloadType, payload, {key}));
  // The reference signer leaves keyid empty; the key travels as the hint.
  env.signatures[0].keyid.clear();
  Json bundle = {{"mediaType", kBundleMediaTypeV03},
                 {"verificationMaterial",
                  {{"publicKey", {{"hint", key.key_id()}}}, {"tlogEntries", Json::array()}}},
                 {"dsseEnvelope", signing::EnvelopeToJson(env)}};
  return bundle.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

Status SignModel(const std::string& model_path, const signing::PrivateKey& key,
                 const std::string& signature_path, SerializationOptions options) {
  std::string rel = RelativeInside(model_path, signature_path);
  if (!rel.empty()) options.ignore_paths.push_back(rel);
  ASSIGN_OR_RETURN(ModelManifest manifest, SerializeModel(model_path, options));
  ASSIGN_OR_RETURN(std::string bundle, SignModelManifest(manifest, key));
  return core::WriteFileAtomic(signature_path, bundle, 0644);
}

Result<ModelManifest> VerifyModel(const std::string& model_path, std::string_view bundle_json,
                                  const signing::PublicKey& key, const ModelVerifyOptions& options) {
  core::JsonLimits limits;
  limits.max_bytes = kMaxBundleBytes;
  auto parsed = core::ParseJson(bundle_json, limits);
  if (!parsed.ok()) return BundleInvalid(parsed.status().message());
  const Json& bundle = *parsed;
  if (!bundle.is_object()) return BundleInvalid("not a JSON object");

  // 1. mediaType.
  auto media = bundle.find("mediaType");
  static const std::set<std::string, std::less<>> kMediaTypes = {
      std::string(kBundleMediaTypeV03),
      "application/vnd.dev.sigstore.bundle+json;version=0.1",
      "application/vnd.dev.sigstore.bundle+json;version=0.2",
      "application/vnd.dev.sigstore.bundle+json;version=0.3"};
  if (media == bundle.end() || !media->is_string() || kMediaTypes.count(media->get<std::string>()) == 0) {
    return core::InvalidArgument("bundle mediaType is not a Sigstore bundle v0.1-0.3", "BUNDLE_MEDIA_TYPE");
  }
  // 2. Public-key hint.
  auto material = bundle.find("verificationMaterial");
  if (material == bundle.end() || !material->is_object()) return BundleInvalid("no verificationMaterial");
  auto pub = material->find("publicKey");
  if (pub != material->end() && pub->is_object()) {
    auto hint = pub->find("hint");
    if (hint != pub->end() && !hint->is_null()) {
      if (!hint->is_string()) return BundleInvalid("publicKey.hint must be a string");
      const std::string& h = hint->get_ref<const std::string&>();
      if (!h.empty() && h != key.key_id()) {
        return core::Unauthenticated("bundle names key " + h + ", not " + key.key_id(),
                                     "BUNDLE_KEY_MISMATCH");
      }
    }
  }
  // 3. Exactly one signature; 4. over PAE; 5. payloadType.
  auto dsse = bundle.find("dsseEnvelope");
  if (dsse == bundle.end()) return BundleInvalid("no dsseEnvelope");
  auto env = signing::EnvelopeFromJson(*dsse);
  if (!env.ok()) return BundleInvalid(env.status().message());
  if (env->signatures.size() != 1) {
    return BundleInvalid("expected exactly one signature, found " + std::to_string(env->signatures.size()));
  }
  ASSIGN_OR_RETURN(signing::VerifiedEnvelope verified,
                   signing::VerifyEnvelope(*env, {key}, 1, kInTotoPayloadType));
  // 6. _type and predicateType; 7. one subject.
  ASSIGN_OR_RETURN(Statement st, ParseStatement(verified.payload));
  if (st.predicate_type != kModelSigningV1) {
    return core::InvalidArgument("predicateType is '" + st.predicate_type + "', not " +
                                     std::string(kModelSigningV1),
                                 "STATEMENT_INVALID");
  }
  if (st.subjects.size() != 1) return BundleInvalid("model statement must have exactly one subject");
  auto subject_digest = st.subjects[0].digest.find("sha256");
  if (subject_digest == st.subjects[0].digest.end()) return BundleInvalid("subject has no sha256 digest");

  // The predicate.
  auto predicate = core::ParseJson(st.predicate_json);
  if (!predicate.ok()) return BundleInvalid(predicate.status().message());
  auto ser = predicate->find("serialization");
  if (ser == predicate->end() || !ser->is_object()) return BundleInvalid("predicate has no serialization");
  ModelManifest claimed;
  claimed.model_name = st.subjects[0].name;
  auto method = ser->find("method");
  if (method == ser->end() || !method->is_string()) return BundleInvalid("serialization.method missing");
  if (*method == "files") {
    claimed.method = SerializationMethod::kFiles;
  } else if (*method == "shards") {
    claimed.method = SerializationMethod::kShards;
  } else {
    return BundleInvalid("unknown serialization method " + method->dump());
  }
  auto hash_type = ser->find("hash_type");
  if (hash_type == ser->end() || *hash_type != "sha256") return BundleInvalid("hash_type must be sha256");
  auto symlinks = ser->find("allow_symlinks");
  if (symlinks != ser->end() && !symlinks->is_null()) {
    if (!symlinks->is_boolean()) return BundleInvalid("allow_symlinks must be a boolean");
    claimed.allow_symlinks = symlinks->get<bool>();
  }
  if (claimed.method == SerializationMethod::kShards) {
    auto size = ser->find("shard_size");
    if (size != ser->end() && !size->is_null()) {
      if (!TolerantUint(*size, &claimed.shard_size) || claimed.shard_size == 0) {
        return BundleInvalid("shard_size must be a positive integer");
      }
    }
  }
  auto ignores = ser->find("ignore_paths");
  if (ignores != ser->end() && !ignores->is_null()) {
    if (!ignores->is_array()) return BundleInvalid("ignore_paths must be an array");
    for (const Json& p : *ignores) {
      if (!p.is_string()) return BundleInvalid("ignore_paths must hold strings");
      claimed.ignore_paths.push_back(p.get<std::string>());
    }
  }
  auto resources = predicate->find("resources");
  if (resources == predicate->end() || !resources->is_array()) return BundleInvalid("predicate has no resources");
  if (resources->size() > kMaxResources) return BundleInvalid("too many resources");
  const bool sharded = claimed.method == SerializationMethod::kShards;
  std::map<std::string, std::string> claimed_map;
  for (const Json& r : *resources) {
    if (!r.is_object()) return BundleInvalid("each resource must be an object");
    ModelResource res;
    auto name = r.find("name");
    auto alg = r.find("algorithm");
    auto digest = r.find("digest");
    if (name == r.end() || !name->is_string() || alg == r.end() || !alg->is_string() ||
        digest == r.end() || !digest->is_string()) {
      return BundleInvalid("each resource needs string name, algorithm and digest");
    }
    res.name = name->get<std::string>();
    res.algorithm = alg->get<std::string>();
    res.digest_hex = digest->get<std::string>();
    uint64_t start, end;
    std::string_view path = ResourcePath(res.name, sharded, &start, &end);
    if (sharded && path == res.name) return BundleInvalid("shard resource '" + res.name + "' lacks :start:end");
    RETURN_IF_ERROR(CheckResourceName(path));
    if (!core::Digest::FromHex(res.digest_hex).ok()) {
      return BundleInvalid("resource '" + res.name + "' digest is not 64 lowercase hex");
    }
    if (!claimed_map.emplace(res.name, res.digest_hex).second) {
      return BundleInvalid("resource '" + res.name + "' listed twice");
    }
    claimed.resources.push_back(std::move(res));
  }
  // 8. ROOT from the resources in the order listed, as the reference
  // verifier computes it; signers list them in canonical order.
  ASSIGN_OR_RETURN(claimed.root, ResourcesRoot(claimed.resources));
  if (claimed.root.Hex() != subject_digest->second) {
    return core::Unauthenticated("the resources listed do not hash to the signed subject digest",
                                 "MODEL_ROOT_MISMATCH");
  }
  SortResources(&claimed.resources);

  // 9. Rehash the model with the same serialization.
  SerializationOptions local;
  local.method = claimed.method;
  local.shard_size = claimed.shard_size;
  local.allow_symlinks = claimed.allow_symlinks;
  local.ignore_paths = claimed.ignore_paths;
  for (const std::string& p : options.ignore_paths) local.ignore_paths.push_back(p);
  local.threads = options.threads;
  auto actual = SerializeModel(model_path, local);
  if (!actual.ok()) return actual.status();

  // 10. The maps must be equal.
  auto mismatch = [&](const std::string& name, const char* problem, const std::string& what) {
    Json detail = {{"resource", name}, {"problem", problem}};
    return core::Unauthenticated("model does not match its signature: " + Describe(name, sharded) + " " + what,
                                 "MODEL_MISMATCH")
        .WithDetail(core::DumpJson(detail));
  };
  std::map<std::string, std::string> actual_map;
  for (const ModelResource& r : actual->resources) actual_map.emplace(r.name, r.digest_hex);
  for (const ModelResource& r : actual->resources) {
    auto it = claimed_map.find(r.name);
    if (it == claimed_map.end()) return mismatch(r.name, "unexpected", "is not in the signed manifest");
    if (it->second != r.digest_hex) return mismatch(r.name, "modified", "was modified (digest differs)");
  }
  for (const ModelResource& r : claimed.resources) {
    if (actual_map.count(r.name) == 0) return mismatch(r.name, "missing", "is missing from the model");
  }
  return claimed;
}

Result<ModelManifest> VerifyModelFile(const std::string& model_path, const std::string& signature_path,
                                      const signing::PublicKey& key) {
  ASSIGN_OR_RETURN(std::string bundle, core::ReadFile(signature_path, kMaxBundleBytes));
  ModelVerifyOptions options;
  std::string rel = RelativeInside(model_path, signature_path);
  if (!rel.empty()) options.ignore_paths.push_back(rel);
  return VerifyModel(model_path, bundle, key, options);
}

std::vector<std::string> IgnorePathsOfPredicate(const std::string& predicate_json) {
  std::vector<std::string> out;
  auto predicate = core::ParseJson(predicate_json);
  if (!predicate.ok() || !predicate->is_object()) return out;
  auto ser = predicate->find("serialization");
  if (ser == predicate->end() || !ser->is_object()) return out;
  auto ignore = ser->find("ignore_paths");
  if (ignore == ser->end() || !ignore->is_array()) return out;
  for (const core::Json& p : *ignore) {
    if (p.is_string()) out.push_back(p.get<std::string>());
  }
  return out;
}

}  // namespace sigil::attest
