// BlobStore: immutable, content-addressed bytes named by their SHA-256.
//
// A blob either exists whole and correct, or not at all. New blobs are built
// in a staging area (one per upload session, named by the caller) and moved
// into place by CommitStaging once the caller has checked the digest; a blob
// that already exists makes the commit a cheap no-op that drops the staging.
//
// Thread-safety: all methods may be called concurrently. Operations on one
// staging id must not race with each other (the caller serializes them).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/digest.h"
#include "core/status.h"

namespace sigil::storage {

// Positional reads of one blob. The blob stays readable while a reader is
// open, even if it is deleted meanwhile.
class BlobReader {
 public:
  virtual ~BlobReader() = default;
  virtual uint64_t size() const = 0;
  // Reads up to n bytes at offset; 0 only at or past the end.
  virtual core::Result<size_t> ReadAt(uint64_t offset, void* buf, size_t n) = 0;
  // A file descriptor for zero-copy sending, or -1 when not file-backed.
  // Owned by the reader.
  virtual int fd() const { return -1; }
};

struct BlobInfo {
  core::Digest digest;
  uint64_t size = 0;
  int64_t mtime_micros = 0;  // when it was committed
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;

  // kNotFound when absent.
  virtual core::Result<BlobInfo> Stat(const core::Digest& digest) = 0;
  virtual core::Result<std::unique_ptr<BlobReader>> Open(const core::Digest& digest) = 0;
  // Stores bytes whole after checking that they hash to digest
  // (kInvalidArgument, reason DIGEST_MISMATCH, otherwise). Idempotent.
  virtual core::Status Put(const core::Digest& digest, std::string_view bytes) = 0;
  // kNotFound when absent.
  virtual core::Status Delete(const core::Digest& digest) = 0;
  // Calls fn for every blob; stops early when fn returns false.
  virtual core::Status ForEach(const std::function<bool(const BlobInfo&)>& fn) = 0;

  // Staging for chunked uploads. Ids are [a-z0-9-]{1,64}, chosen by the caller.
  virtual core::Status CreateStaging(const std::string& id) = 0;
  // Size of the staged bytes; kNotFound for an unknown id.
  virtual core::Result<uint64_t> StagingSize(const std::string& id) = 0;
  // Writes data at offset (the caller keeps offsets contiguous).
  virtual core::Status WriteStaging(const std::string& id, uint64_t offset,
                                    std::string_view data) = 0;
  // Drops everything past size (recovery from a torn last chunk).
  virtual core::Status TruncateStaging(const std::string& id, uint64_t size) = 0;
  // Makes the staged bytes durable (fsync).
  virtual core::Status SyncStaging(const std::string& id) = 0;
  virtual core::Result<std::unique_ptr<BlobReader>> OpenStaging(const std::string& id) = 0;
  // Moves the staged bytes into place as digest. REQUIRES: the caller checked
  // that the bytes hash to digest. Durable when it returns.
  virtual core::Status CommitStaging(const std::string& id, const core::Digest& digest) = 0;
  // Removes a staging area; an unknown id is not an error.
  virtual core::Status RemoveStaging(const std::string& id) = 0;
  virtual core::Status ForEachStaging(const std::function<bool(const std::string& id)>& fn) = 0;

  // Usable for reads and writes (for /readyz).
  virtual core::Status CheckHealth() = 0;
};

// In memory; for tests.
std::unique_ptr<BlobStore> NewMemoryBlobStore();

}  // namespace sigil::storage
