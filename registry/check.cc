#include "registry/check.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>

#include "attest/checkpoint.h"
#include "attest/merkle.h"
#include "core/digest.h"
#include "core/fs.h"
#include "core/json.h"
#include "registry/manifest.h"
#include "storage/rocks_meta_store.h"

namespace sigil::registry {
namespace {

using core::Json;
namespace fs = std::filesystem;

class Checker {
 public:
  Checker(std::string root, storage::MetaStore* meta, CheckReport* report)
      : root_(std::move(root)), meta_(meta), report_(report) {}

  void Problem(std::string kind, std::string message) {
    report_->problems.push_back({std::move(kind), std::move(message)});
  }

  core::Status Blobs();
  core::Status Versions();
  core::Status Aliases();
  core::Status Log(const std::vector<std::string>& checkpoints);
  core::Status Attestations();
  core::Status Uploads();

 private:
  std::string BlobPath(const core::Digest& d) const {
    std::string hex = d.Hex();
    return root_ + "/blobs/sha256/" + hex.substr(0, 2) + "/" + hex;
  }
  // The blob's size, or nullopt when it is absent.
  std::optional<uint64_t> BlobSize(const core::Digest& d) const {
    struct stat st {};
    if (::stat(BlobPath(d).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    return static_cast<uint64_t>(st.st_size);
  }
  core::Result<attest::MerkleHash> StoredHash(int level, uint64_t index);

  std::string root_;
  storage::MetaStore* meta_;
  CheckReport* report_;
  uint64_t log_size_ = 0;
  bool log_ok_ = false;
};

// Key parts joined by '\0' (registry/internal/keys.h).
std::vector<std::string_view> SplitKey(std::string_view key) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t z = key.find('\0', start);
    if (z == std::string_view::npos) {
      parts.push_back(key.substr(start));
      return parts;
    }
    parts.push_back(key.substr(start, z - start));
    start = z + 1;
  }
}

std::string Printable(std::string_view key) {
  std::string out(key);
  for (char& c : out) {
    if (c == '\0') c = ':';
  }
  return out;
}

bool IsHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

core::Result<core::Digest> HashFile(const std::string& path) {
  core::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return core::ErrnoStatus(errno, "open " + path);
  core::Sha256 sha;
  std::string buf(1 << 20, '\0');
  while (true) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return core::ErrnoStatus(errno, "read " + path);
    }
    if (n == 0) break;
    sha.Update(buf.data(), static_cast<size_t>(n));
  }
  return sha.Finish();
}

std::string Hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string NodeKey(int level, uint64_t index) {
  char buf[4];
  std::snprintf(buf, sizeof buf, "%02x", level);
  return "n/" + std::string(buf) + "/" + Hex16(index);
}

core::Status Checker::Blobs() {
  const std::string dir = root_ + "/blobs/sha256";
  if (!core::PathExists(dir)) return core::OkStatus();
  std::error_code ec;
  for (const auto& prefix : fs::directory_iterator(dir, ec)) {
    std::string p = prefix.path().filename().string();
    if (!prefix.is_directory() || p.size() != 2 || !IsHex(p)) {
      Problem("blob", "stray entry blobs/sha256/" + p);
      continue;
    }
    for (const auto& entry : fs::directory_iterator(prefix.path(), ec)) {
      std::string name = entry.path().filename().string();
      std::string rel = "blobs/sha256/" + p + "/" + name;
      if (!entry.is_regular_file() || name.size() != 64 || !IsHex(name) || name.compare(0, 2, p) != 0) {
        Problem("blob", "stray file " + rel + " is not named like a blob (a temp or partial file?)");
        continue;
      }
      auto got = HashFile(entry.path().string());
      if (!got.ok()) return got.status();
      ++report_->blobs;
      report_->blob_bytes += entry.file_size(ec);
      if (got->Hex() != name) Problem("blob", rel + " hashes to " + got->ToString());
    }
    if (ec) return core::Internal("listing " + prefix.path().string() + ": " + ec.message());
  }
  if (ec) return core::Internal("listing " + dir + ": " + ec.message());
  return core::OkStatus();
}

core::Status Checker::Versions() {
  return meta_->Scan("tags", "", [&](std::string_view key, std::string_view value) {
    std::vector<std::string_view> parts = SplitKey(key);
    if (parts.size() != 3 || parts[1] != "v") return true;
    ++report_->versions;
    std::string name = std::string(parts[0]) + ":" + std::string(parts[2]);
    auto rec = core::ParseJson(value);
    auto digest_text = rec.ok() ? core::GetString(*rec, "digest") : rec.status();
    auto digest = digest_text.ok() ? core::Digest::Parse(*digest_text) : digest_text.status();
    if (!digest.ok()) {
      Problem("version", name + ": damaged tag record: " + digest.status().message());
      return true;
    }
    auto index = meta_->Get("manifests", std::string(parts[0]) + '\0' + digest->ToString());
    if (!index.ok()) {
      Problem("version", name + ": no manifest index record for " + digest->ToString());
    } else {
      auto idx = core::ParseJson(*index);
      bool listed = false;
      if (idx.ok() && idx->is_object() && idx->contains("versions") && (*idx)["versions"].is_array()) {
        for (const Json& v : (*idx)["versions"]) listed = listed || (v.is_string() && v.get<std::string>() == parts[2]);
      }
      if (!listed) Problem("version", name + ": the manifest index of " + digest->ToString() + " does not list it");
    }
    auto bytes = core::ReadFile(BlobPath(*digest), kMaxManifestBytes);
    if (!bytes.ok()) {
      Problem("version", name + ": manifest blob " + digest->ToString() + " unreadable: " + bytes.status().message());
      return true;
    }
    if (core::Sha256::Of(*bytes) != *digest) {
      Problem("version", name + ": manifest blob " + digest->ToString() + " has other content");
      return true;
    }
    auto manifest = ParseManifest(*bytes);
    if (!manifest.ok()) {
      Problem("version", name + ": manifest does not parse: " + manifest.status().message());
      return true;
    }
    std::vector<const Descriptor*> refs = {&manifest->config};
    for (const Descriptor& d : manifest->layers) refs.push_back(&d);
    for (const Descriptor* d : refs) {
      std::optional<uint64_t> size = BlobSize(d->digest);
      if (!size) {
        Problem("version", name + ": blob " + d->digest.ToString() + " is missing");
      } else if (*size != d->size) {
        Problem("version", name + ": blob " + d->digest.ToString() + " holds " + std::to_string(*size) +
                               " bytes, the manifest says " + std::to_string(d->size));
      }
    }
    return true;
  });
}

core::Status Checker::Aliases() {
  struct Event {
    std::string version, digest, previous_version;
  };
  std::map<std::pair<std::string, std::string>, std::vector<Event>> history;  // newest first
  std::map<std::pair<std::string, std::string>, std::pair<std::string, std::string>> aliases;
  std::map<std::pair<std::string, std::string>, std::string> versions;  // -> digest
  RETURN_IF_ERROR(meta_->Scan("tags", "", [&](std::string_view key, std::string_view value) {
    std::vector<std::string_view> parts = SplitKey(key);
    auto rec = core::ParseJson(value);
    std::string what = Printable(key);
    if (!rec.ok() || !rec->is_object()) {
      Problem("alias", what + ": damaged record");
      return true;
    }
    auto str = [&](std::string_view field) -> std::string {
      auto it = rec->find(std::string(field));
      return it != rec->end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (parts.size() == 3 && parts[1] == "v") {
      versions[{std::string(parts[0]), std::string(parts[2])}] = str("digest");
    } else if (parts.size() == 3 && parts[1] == "a") {
      aliases[{std::string(parts[0]), std::string(parts[2])}] = {str("version"), str("digest")};
    } else if (parts.size() == 4 && parts[1] == "h") {
      history[{std::string(parts[0]), std::string(parts[2])}].push_back(
          {str("version"), str("digest"), str("previous_version")});
    } else {
      Problem("alias", "unknown tags record " + what);
    }
    return true;
  }));
  for (const auto& [key, target] : aliases) {
    ++report_->aliases;
    std::string name = key.first + ":" + key.second;
    auto v = versions.find({key.first, target.first});
    if (v == versions.end()) {
      Problem("alias", name + " names version '" + target.first + "', which does not exist");
    } else if (v->second != target.second) {
      Problem("alias", name + " records digest " + target.second + " but version '" + target.first + "' is " +
                           v->second);
    }
    auto h = history.find(key);
    if (h == history.end()) {
      Problem("alias", name + " has no history");
    } else if (h->second.front().version != target.first || h->second.front().digest != target.second) {
      Problem("alias", name + " points at '" + target.first + "' but its newest history event moved it to '" +
                           h->second.front().version + "'");
    }
  }
  for (const auto& [key, events] : history) {
    report_->alias_events += events.size();
    std::string name = key.first + ":" + key.second;
    if (aliases.count(key) == 0 && !events.front().version.empty()) {
      Problem("alias", name + " does not exist but its newest history event moved it to '" +
                           events.front().version + "'");
    }
    for (size_t i = 0; i + 1 < events.size(); ++i) {
      if (events[i].previous_version != events[i + 1].version) {
        Problem("alias", name + ": history event " + std::to_string(i) + " says it moved from '" +
                             events[i].previous_version + "' but the event before moved it to '" +
                             events[i + 1].version + "'");
      }
    }
    if (!events.back().previous_version.empty()) {
      Problem("alias", name + ": its oldest history event moved it from '" + events.back().previous_version +
                           "', so an earlier event is missing");
    }
  }
  return core::OkStatus();
}

core::Result<attest::MerkleHash> Checker::StoredHash(int level, uint64_t index) {
  auto v = meta_->Get("log", NodeKey(level, index));
  if (!v.ok()) {
    if (v.status().code() == core::Code::kNotFound) return core::DataLoss(NodeKey(level, index) + " is missing");
    return v.status();
  }
  if (v->size() != 32) return core::DataLoss(NodeKey(level, index) + " is not 32 bytes");
  attest::MerkleHash h;
  for (size_t k = 0; k < 32; ++k) h[k] = static_cast<uint8_t>((*v)[k]);
  return h;
}

// The log's tree read from the records Checker::Log has verified.
class StoredTree : public attest::TreeSource {
 public:
  StoredTree(storage::MetaStore* meta, uint64_t size) : meta_(meta), size_(size) {}
  uint64_t Size() const override { return size_; }
  core::Result<attest::MerkleHash> LeafHash(uint64_t index) const override { return PerfectSubtreeHash(0, index); }
  core::Result<attest::MerkleHash> PerfectSubtreeHash(int level, uint64_t index) const override {
    ASSIGN_OR_RETURN(std::string v, meta_->Get("log", NodeKey(level, index)));
    if (v.size() != 32) return core::DataLoss(NodeKey(level, index) + " is not 32 bytes");
    attest::MerkleHash h;
    for (size_t k = 0; k < 32; ++k) h[k] = static_cast<uint8_t>(v[k]);
    return h;
  }

 private:
  storage::MetaStore* meta_;
  uint64_t size_;
};

core::Status Checker::Log(const std::vector<std::string>& checkpoints) {
  auto size_text = meta_->Get("log", "s");
  if (!size_text.ok() && size_text.status().code() != core::Code::kNotFound) return size_text.status();
  if (size_text.ok()) {
    auto n = core::ParseJson(*size_text);
    if (!n.ok() || !n->is_number_unsigned()) {
      Problem("log", "damaged size record '" + *size_text + "'");
      return core::OkStatus();
    }
    log_size_ = n->get<uint64_t>();
  }
  report_->log_size = log_size_;
  size_t before = report_->problems.size();
  // Leaves against their hashes, then every complete subtree against its
  // two halves: together they prove each stored hash is the tree's.
  for (uint64_t i = 0; i < log_size_; ++i) {
    auto leaf = meta_->Get("log", "d/" + Hex16(i));
    if (!leaf.ok()) {
      Problem("log", "leaf " + std::to_string(i) + " is missing");
      continue;
    }
    auto stored = StoredHash(0, i);
    if (!stored.ok()) {
      Problem("log", "leaf " + std::to_string(i) + ": " + stored.status().message());
    } else if (*stored != attest::MerkleLeafHash(*leaf)) {
      Problem("log", "leaf " + std::to_string(i) + "'s stored hash is not its data's");
    }
  }
  for (int level = 1; level < 64 && (uint64_t{1} << level) <= log_size_; ++level) {
    for (uint64_t i = 0; ((i + 1) << level) <= log_size_; ++i) {
      auto node = StoredHash(level, i);
      auto left = StoredHash(level - 1, 2 * i);
      auto right = StoredHash(level - 1, 2 * i + 1);
      if (!node.ok()) {
        Problem("log", "subtree " + node.status().message());
      } else if (left.ok() && right.ok() && *node != attest::MerkleNodeHash(*left, *right)) {
        Problem("log", "subtree " + NodeKey(level, i) + " is not the hash of its two halves");
      }
    }
  }
  // Nothing past the size: an append writes its records and the size in one batch.
  RETURN_IF_ERROR(meta_->Scan("log", "d/", [&](std::string_view key, std::string_view) {
    Problem("log", "leaf record " + std::string(key) + " is past the size " + std::to_string(log_size_));
    return true;
  }, "d/" + (log_size_ == 0 ? std::string() : Hex16(log_size_ - 1))));
  RETURN_IF_ERROR(meta_->Scan("log", "h/", [&](std::string_view key, std::string_view value) {
    auto idx = core::ParseJson(value);
    if (!idx.ok() || !idx->is_number_unsigned() || idx->get<uint64_t>() >= log_size_) {
      Problem("log", "leaf-hash index " + std::string(key) + " names '" + std::string(value) +
                         "', not a leaf below the size");
      return true;
    }
    auto h = StoredHash(0, idx->get<uint64_t>());
    if (h.ok() && "h/" + core::HexEncode(h->data(), h->size()) != key) {
      Problem("log", "leaf-hash index " + std::string(key) + " names leaf " + std::string(value) +
                         ", which has another hash");
    }
    return true;
  }));
  log_ok_ = report_->problems.size() == before;
  for (const std::string& note : checkpoints) {
    size_t blank = note.find("\n\n");
    std::string body = blank == std::string::npos ? note : note.substr(0, blank + 1);
    auto cp = attest::ParseCheckpointBody(body);
    if (!cp.ok()) return cp.status().Annotate("checkpoint given to the check");
    if (cp->size > log_size_) {
      Problem("log", "a checkpoint of size " + std::to_string(cp->size) + " was issued but the log holds " +
                         std::to_string(log_size_) + " leaves");
      continue;
    }
    if (!log_ok_) continue;  // a damaged tree was reported above
    StoredTree tree(meta_, log_size_);
    auto root = attest::RootHash(tree, cp->size);
    if (!root.ok()) return root.status();
    if (*root != cp->root) {
      Problem("log", "the tree's root at size " + std::to_string(cp->size) + " is not the checkpoint's");
    }
  }
  return core::OkStatus();
}

core::Status Checker::Attestations() {
  return meta_->Scan("referrers", "", [&](std::string_view key, std::string_view value) {
    std::vector<std::string_view> parts = SplitKey(key);
    // Scan and evaluation records share the family under their own prefix
    // ("scan\0<repo>\0<digest>\0<micros>\0<report>"): attestations are the
    // three-part keys <repo>\0<manifest digest>\0<content digest>.
    if (parts.size() != 3) return true;
    ++report_->attestations;
    std::string what = "referrer " + Printable(key);
    auto version = parts.size() == 3 ? core::Digest::Parse(parts[1]) : core::InvalidArgument("key");
    auto content = parts.size() == 3 ? core::Digest::Parse(parts[2]) : core::InvalidArgument("key");
    auto rec = core::ParseJson(value);
    auto index = rec.ok() ? core::GetUint(*rec, "log_index") : rec.status();
    if (!version.ok() || !content.ok() || !index.ok()) {
      Problem("attestation", what + ": damaged key or record");
      return true;
    }
    if (!BlobSize(*content)) Problem("attestation", what + ": document blob " + content->ToString() + " is missing");
    if (*index >= log_size_) {
      Problem("attestation", what + ": log index " + std::to_string(*index) + " is past the log's size " +
                                 std::to_string(log_size_));
      return true;
    }
    auto leaf_text = meta_->Get("log", "d/" + Hex16(*index));
    auto leaf = leaf_text.ok() ? core::ParseJson(*leaf_text) : leaf_text.status();
    auto leaf_content = leaf.ok() ? core::GetString(*leaf, "content_digest") : leaf.status();
    auto leaf_version = leaf.ok() ? core::GetString(*leaf, "version_digest") : leaf.status();
    auto leaf_repo = leaf.ok() ? core::GetString(*leaf, "repository") : leaf.status();
    if (!leaf_content.ok() || !leaf_version.ok() || !leaf_repo.ok()) {
      Problem("attestation", what + ": log leaf " + std::to_string(*index) + " is not an attestation entry");
    } else if (*leaf_content != content->ToString() || *leaf_version != version->ToString() ||
               *leaf_repo != parts[0]) {
      Problem("attestation", what + ": log leaf " + std::to_string(*index) + " is about another document");
    }
    return true;
  });
}

core::Status Checker::Uploads() {
  return meta_->Scan("uploads", "", [&](std::string_view key, std::string_view value) {
    ++report_->uploads;
    std::string id(key);
    auto rec = core::ParseJson(value);
    auto offset = rec.ok() ? core::GetUint(*rec, "offset") : rec.status();
    if (!offset.ok()) {
      Problem("upload", "session " + id + ": damaged record");
      return true;
    }
    struct stat st {};
    if (::stat((root_ + "/uploads/" + id).c_str(), &st) != 0) return true;  // committed, record not yet dropped
    if (static_cast<uint64_t>(st.st_size) < *offset) {
      Problem("upload", "session " + id + " records offset " + std::to_string(*offset) + " but its data file holds " +
                            std::to_string(st.st_size) + " bytes");
    }
    return true;
  });
}

}  // namespace

core::Result<CheckReport> CheckDataDir(const CheckOptions& options) {
  if (!core::PathExists(core::JoinPath(options.data_dir, "meta"))) {
    return core::NotFound("no sigild data directory at " + options.data_dir + " (no meta/)");
  }
  auto meta = storage::OpenRocksMetaStore(core::JoinPath(options.data_dir, "meta"));
  if (!meta.ok()) return meta.status().Annotate("opening " + options.data_dir + "/meta");
  CheckReport report;
  Checker c(options.data_dir, meta->get(), &report);
  RETURN_IF_ERROR(c.Blobs());
  RETURN_IF_ERROR(c.Versions());
  RETURN_IF_ERROR(c.Aliases());
  RETURN_IF_ERROR(c.Log(options.checkpoints));
  RETURN_IF_ERROR(c.Attestations());
  RETURN_IF_ERROR(c.Uploads());
  return report;
}

}  // namespace sigil::registry
