// A BlobStore that forwards to another and makes chosen operations fail with
// an errno, the way LevelDB's FaultInjectionTestEnv wraps the real Env. A
// fault stays armed until cleared (a full disk stays full), and may let part
// of a staging write through first, as a real short write before ENOSPC does.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>

#include "storage/blob_store.h"

namespace sigil::testing {

class FaultBlobStore : public storage::BlobStore {
 public:
  enum class Op { kPut, kWriteStaging, kSyncStaging, kCommitStaging, kCount };

  // Does not own base, which must outlive this object.
  explicit FaultBlobStore(storage::BlobStore* base) : base_(base) {}

  // From now on, op fails with ErrnoStatus(err). For kWriteStaging the first
  // partial_bytes of the data are written before failing.
  void Fail(Op op, int err, size_t partial_bytes = 0);
  void Clear(Op op);
  // How many calls of op failed because of a fault.
  int failures(Op op) const { return slots_[static_cast<size_t>(op)].failures.load(); }

  core::Result<storage::BlobInfo> Stat(const core::Digest& digest) override { return base_->Stat(digest); }
  core::Result<std::unique_ptr<storage::BlobReader>> Open(const core::Digest& digest) override {
    return base_->Open(digest);
  }
  core::Status Put(const core::Digest& digest, std::string_view bytes) override;
  core::Status Delete(const core::Digest& digest) override { return base_->Delete(digest); }
  core::Status ForEach(const std::function<bool(const storage::BlobInfo&)>& fn) override {
    return base_->ForEach(fn);
  }
  core::Status CreateStaging(const std::string& id) override { return base_->CreateStaging(id); }
  core::Result<uint64_t> StagingSize(const std::string& id) override { return base_->StagingSize(id); }
  core::Status WriteStaging(const std::string& id, uint64_t offset, std::string_view data) override;
  core::Status TruncateStaging(const std::string& id, uint64_t size) override {
    return base_->TruncateStaging(id, size);
  }
  core::Status SyncStaging(const std::string& id) override;
  core::Result<std::unique_ptr<storage::BlobReader>> OpenStaging(const std::string& id) override {
    return base_->OpenStaging(id);
  }
  core::Status CommitStaging(const std::string& id, const core::Digest& digest) override;
  core::Status RemoveStaging(const std::string& id) override { return base_->RemoveStaging(id); }
  core::Status ForEachStaging(const std::function<bool(const std::string& id)>& fn) override {
    return base_->ForEachStaging(fn);
  }
  core::Status CheckHealth() override { return base_->CheckHealth(); }

 private:
  struct Slot {
    int err = 0;  // 0: no fault
    size_t partial_bytes = 0;
    std::atomic<int> failures{0};
  };
  // The armed fault for op, or err 0.
  std::pair<int, size_t> Armed(Op op);

  storage::BlobStore* base_;
  std::mutex mu_;
  Slot slots_[static_cast<size_t>(Op::kCount)];
};

}  // namespace sigil::testing
