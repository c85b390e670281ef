#include "tests/support/fault_blob_store.h"

#include <algorithm>
#include <string>

namespace sigil::testing {

void FaultBlobStore::Fail(Op op, int err, size_t partial_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  Slot& slot = slots_[static_cast<size_t>(op)];
  slot.err = err;
  slot.partial_bytes = partial_bytes;
}

void FaultBlobStore::Clear(Op op) { Fail(op, 0, 0); }

std::pair<int, size_t> FaultBlobStore::Armed(Op op) {
  std::lock_guard<std::mutex> lock(mu_);
  Slot& slot = slots_[static_cast<size_t>(op)];
  if (slot.err != 0) ++slot.failures;
  return {slot.err, slot.partial_bytes};
}

core::Status FaultBlobStore::Put(const core::Digest& digest, std::string_view bytes) {
  auto [err, partial] = Armed(Op::kPut);
  if (err != 0) return core::ErrnoStatus(err, "injected fault: put " + digest.ToString());
  return base_->Put(digest, bytes);
}

core::Status FaultBlobStore::WriteStaging(const std::string& id, uint64_t offset, std::string_view data) {
  auto [err, partial] = Armed(Op::kWriteStaging);
  if (err == 0) return base_->WriteStaging(id, offset, data);
  size_t n = std::min(partial, data.size());
  if (n > 0) RETURN_IF_ERROR(base_->WriteStaging(id, offset, data.substr(0, n)));
  return core::ErrnoStatus(err, "injected fault: write staging " + id);
}

core::Status FaultBlobStore::SyncStaging(const std::string& id) {
  auto [err, partial] = Armed(Op::kSyncStaging);
  if (err != 0) return core::ErrnoStatus(err, "injected fault: sync staging " + id);
  return base_->SyncStaging(id);
}

core::Status FaultBlobStore::CommitStaging(const std::string& id, const core::Digest& digest) {
  auto [err, partial] = Armed(Op::kCommitStaging);
  if (err != 0) return core::ErrnoStatus(err, "injected fault: commit staging " + id);
  return base_->CommitStaging(id, digest);
}

}  // namespace sigil::testing
