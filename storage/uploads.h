// Upload sessions: chunked, resumable uploads of one blob.
//
//   Create -> {id}; Append(id, start, bytes) repeatedly; Commit(id, digest).
//
// The committed offset of a session is durable (MetaStore, sync) before
// Append returns, so after kill -9 a client asks Offset() and resumes from
// the last acknowledged chunk. Bytes are hashed as they arrive; after a
// restart the hash is rebuilt from the staged bytes on first use.
//
// Thread-safety: all methods may be called concurrently; calls on the same
// session are serialized internally.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/clock.h"
#include "core/digest.h"
#include "core/status.h"
#include "storage/blob_store.h"
#include "storage/meta_store.h"

namespace sigil::storage {

struct UploadOptions {
  uint64_t chunk_max = 32ull << 20;            // largest Append accepted
  uint64_t session_max = 1ull << 40;           // largest blob one session may build
  int64_t expiry_micros = 24ll * 3600 * 1'000'000;  // idle sessions older than this expire
};

// Where a streamed chunk's bytes come from (an HTTP request body read as it
// arrives, so a chunk of any size costs a fixed buffer, not its size).
class ChunkSource {
 public:
  virtual ~ChunkSource() = default;
  // Reads up to n bytes into buf: the count, 0 at the end of the chunk, or
  // an error (the client stalled or went away).
  virtual core::Result<size_t> Read(char* buf, size_t n) = 0;
};

struct UploadInfo {
  std::string id;
  uint64_t offset = 0;           // committed bytes
  int64_t created_micros = 0;
  int64_t updated_micros = 0;
};

class UploadManager {
 public:
  UploadManager(BlobStore* blobs, MetaStore* meta, core::Clock* clock, UploadOptions options);
  ~UploadManager();

  const UploadOptions& options() const { return options_; }

  core::Result<UploadInfo> Create();
  // kNotFound for an unknown (or expired) id.
  core::Result<UploadInfo> Get(const std::string& id);
  // Appends bytes at start. A start other than the committed offset gives
  // kOutOfRange (reason UPLOAD_OFFSET_MISMATCH) with detail {"offset": N};
  // more than chunk_max bytes gives kResourceExhausted (reason CHUNK_TOO_LARGE).
  core::Result<UploadInfo> Append(const std::string& id, uint64_t start, std::string_view bytes);
  // Appends everything `source` yields at start, writing and hashing it as
  // it is read; the new offset is recorded (durably, as for Append) only
  // after the last byte. Not limited by chunk_max, only by session_max. On
  // any failure, the source's included, the session is as it was. Other
  // calls on the same session wait until it returns.
  core::Result<UploadInfo> AppendFrom(const std::string& id, uint64_t start, ChunkSource& source);
  // A single-request upload: streams `source` into staging, checks the
  // digest (DIGEST_MISMATCH) and moves the bytes into the blob store. No
  // session record is written, so a full metadata store does not stop it,
  // and nothing is left behind on failure.
  core::Result<BlobInfo> PutFrom(const core::Digest& digest, ChunkSource& source);
  // Checks the digest (kInvalidArgument, reason DIGEST_MISMATCH, and the
  // session's data is deleted), then moves the bytes into the blob store.
  // Optionally appends a last chunk first (start = committed offset).
  core::Result<BlobInfo> Commit(const std::string& id, const core::Digest& digest,
                                std::string_view last_chunk = {});
  // Deletes the session and its bytes. kNotFound for an unknown id.
  core::Status Abort(const std::string& id);
  // Removes sessions idle longer than the expiry, and staging areas with no
  // session record (left by a crash between the two). Returns how many.
  core::Result<size_t> ExpireIdle();
  size_t OpenCount();

 private:
  struct Session;
  core::Result<std::shared_ptr<Session>> Load(const std::string& id);
  core::Status Persist(const Session& session);

  BlobStore* blobs_;
  MetaStore* meta_;
  core::Clock* clock_;
  UploadOptions options_;
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Session>> live_;
};

// The column family upload sessions live in.
inline constexpr std::string_view kUploadsCf = "uploads";

}  // namespace sigil::storage
