#include <cstring>
#include <map>
#include <mutex>

#include "core/clock.h"
#include "storage/blob_store.h"
#include "storage/internal/staging_id.h"

namespace sigil::storage {
namespace {

class StringReader : public BlobReader {
 public:
  explicit StringReader(std::shared_ptr<const std::string> data) : data_(std::move(data)) {}
  uint64_t size() const override { return data_->size(); }
  core::Result<size_t> ReadAt(uint64_t offset, void* buf, size_t n) override {
    if (offset >= data_->size()) return size_t{0};
    size_t count = std::min<uint64_t>(n, data_->size() - offset);
    std::memcpy(buf, data_->data() + offset, count);
    return count;
  }

 private:
  std::shared_ptr<const std::string> data_;
};

class MemoryBlobStore : public BlobStore {
 public:
  core::Result<BlobInfo> Stat(const core::Digest& digest) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = blobs_.find(digest);
    if (it == blobs_.end()) return core::NotFound("blob " + digest.ToString() + " not found", "BLOB_UNKNOWN");
    return BlobInfo{digest, it->second.data->size(), it->second.mtime};
  }

  core::Result<std::unique_ptr<BlobReader>> Open(const core::Digest& digest) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = blobs_.find(digest);
    if (it == blobs_.end()) return core::NotFound("blob " + digest.ToString() + " not found", "BLOB_UNKNOWN");
    return std::unique_ptr<BlobReader>(new StringReader(it->second.data));
  }

  core::Status Put(const core::Digest& digest, std::string_view bytes) override {
    if (core::Sha256::Of(bytes) != digest) {
      return core::InvalidArgument("content does not hash to " + digest.ToString(), "DIGEST_MISMATCH");
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (!blobs_.count(digest)) {
      blobs_[digest] = {std::make_shared<const std::string>(bytes), core::Clock::Real()->NowMicros()};
    }
    return core::OkStatus();
  }

  core::Status Delete(const core::Digest& digest) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (blobs_.erase(digest) == 0) return core::NotFound("blob " + digest.ToString() + " not found", "BLOB_UNKNOWN");
    return core::OkStatus();
  }

  core::Status ForEach(const std::function<bool(const BlobInfo&)>& fn) override {
    std::vector<BlobInfo> all;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [d, e] : blobs_) all.push_back({d, e.data->size(), e.mtime});
    }
    for (const auto& info : all) {
      if (!fn(info)) break;
    }
    return core::OkStatus();
  }

  core::Status CreateStaging(const std::string& id) override {
    RETURN_IF_ERROR(CheckStagingId(id));
    std::lock_guard<std::mutex> lock(mu_);
    if (staging_.count(id)) return core::AlreadyExists("staging " + id + " exists");
    staging_[id] = std::string();
    return core::OkStatus();
  }

  core::Result<uint64_t> StagingSize(const std::string& id) override {
    RETURN_IF_ERROR(CheckStagingId(id));
    std::lock_guard<std::mutex> lock(mu_);
    auto it = staging_.find(id);
    if (it == staging_.end()) return core::NotFound("no staging " + id);
    return uint64_t{it->second.size()};
  }

  core::Status WriteStaging(const std::string& id, uint64_t offset, std::string_view data) override {
    RETURN_IF_ERROR(CheckStagingId(id));
    std::lock_guard<std::mutex> lock(mu_);
    auto it = staging_.find(id);
    if (it == staging_.end()) return core::NotFound("no staging " + id);
    if (it->second.size() < offset + data.size()) it->second.resize(offset + data.size());
    it->second.replace(offset, data.size(), data);
    return core::OkStatus();
  }

  core::Status TruncateStaging(const std::string& id, uint64_t size) override {
    RETURN_IF_ERROR(CheckStagingId(id));
    std::lock_guard<std::mutex> lock(mu_);
    auto it = staging_.find(id);
    if (it == staging_.end()) return core::NotFound("no staging " + id);
    if (it->second.size() > size) it->second.resize(size);
    return core::OkStatus();
  }

  core::Status SyncStaging(const std::string& id) override {
    RETURN_IF_ERROR(CheckStagingId(id));
    std::lock_guard<std::mutex> lock(mu_);
    if (!staging_.count(id)) return core::NotFound("no staging " + id);
    return core::OkStatus();
  }

  core::Result<std::unique_ptr<BlobReader>> OpenStaging(const std::string& id) override {
    RETURN_IF_ERROR(CheckStagingId(id));
    std::lock_guard<std::mutex> lock(mu_);
    auto it = staging_.find(id);
    if (it == staging_.end()) return core::NotFound("no staging " + id);
    return std::unique_ptr<BlobReader>(new StringReader(std::make_shared<const std::string>(it->second)));
  }

  core::Status CommitStaging(const std::string& id, const core::Digest& digest) override {
    RETURN_IF_ERROR(CheckStagingId(id));
    std::lock_guard<std::mutex> lock(mu_);
    auto it = staging_.find(id);
    if (it == staging_.end()) return core::NotFound("no staging " + id);
    if (!blobs_.count(digest)) {
      blobs_[digest] = {std::make_shared<const std::string>(std::move(it->second)),
                        core::Clock::Real()->NowMicros()};
    }
    staging_.erase(it);
    return core::OkStatus();
  }

  core::Status RemoveStaging(const std::string& id) override {
    RETURN_IF_ERROR(CheckStagingId(id));
    std::lock_guard<std::mutex> lock(mu_);
    staging_.erase(id);
    return core::OkStatus();
  }

  core::Status ForEachStaging(const std::function<bool(const std::string&)>& fn) override {
    std::vector<std::string> ids;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [id, _] : staging_) ids.push_back(id);
    }
    for (const auto& id : ids) {
      if (!fn(id)) break;
    }
    return core::OkStatus();
  }

  core::Status CheckHealth() override { return core::OkStatus(); }

 private:
  struct Entry {
    std::shared_ptr<const std::string> data;
    int64_t mtime = 0;
  };
  std::mutex mu_;
  std::map<core::Digest, Entry> blobs_;
  std::map<std::string, std::string> staging_;
};

}  // namespace

std::unique_ptr<BlobStore> NewMemoryBlobStore() { return std::make_unique<MemoryBlobStore>(); }

}  // namespace sigil::storage
