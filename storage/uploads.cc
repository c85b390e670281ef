#include "storage/uploads.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <future>
#include <vector>

#include "core/json.h"
#include "core/log.h"
#include "core/random.h"
#include "storage/internal/staging_id.h"

namespace sigil::storage {

namespace {

core::Status UnknownUpload(const std::string& id) {
  return core::NotFound("upload " + id + " not found", "UPLOAD_UNKNOWN");
}

core::Status ChunkTooLarge(size_t size, uint64_t max) {
  return core::ResourceExhausted(
      "chunk of " + std::to_string(size) + " bytes is larger than " + std::to_string(max), "CHUNK_TOO_LARGE");
}

// Drops a dead session's bytes and record. Errors are logged, not returned:
// callers report why the session ended, and ExpireIdle collects leftovers.
void Forget(BlobStore* blobs, MetaStore* meta, const std::string& id) {
  core::Status s = blobs->RemoveStaging(id);
  if (!s.ok()) {
    SIGIL_LOG(kWarn) << "upload " << id << ": removing staged bytes: " << s.ToString();
  }
  s = meta->Delete(kUploadsCf, id);
  if (!s.ok()) {
    SIGIL_LOG(kWarn) << "upload " << id << ": removing session record: " << s.ToString();
  }
}

}  // namespace

// One upload session. `mu` serializes every operation on it; the fields are
// only touched with `mu` held. Being a nested class, it reaches the manager's
// private state, which keeps the helpers out of the public header.
struct UploadManager::Session {
  explicit Session(std::string session_id) : id(std::move(session_id)) {}

  // The live object for id, created empty (not loaded) when there is none.
  static std::shared_ptr<Session> Acquire(UploadManager& m, const std::string& id) {
    std::lock_guard<std::mutex> lock(m.mu_);
    auto& slot = m.live_[id];
    if (!slot) slot = std::make_shared<Session>(id);
    return slot;
  }

  // Marks the session dead and forgets the object. REQUIRES: mu held.
  void Retire(UploadManager& m) {
    gone = true;
    std::lock_guard<std::mutex> lock(m.mu_);
    auto it = m.live_.find(id);
    if (it != m.live_.end() && it->second.get() == this) m.live_.erase(it);
  }

  bool Expired(const UploadManager& m) const {
    return m.clock_->NowMicros() - updated > m.options_.expiry_micros;
  }

  UploadInfo Info() const { return UploadInfo{id, offset, created, updated}; }

  // Reads the durable record the first time the session is used in this
  // process, and drops the tail of a chunk that was written but never
  // acknowledged. REQUIRES: mu held, !gone.
  core::Status LoadLocked(UploadManager& m) {
    if (loaded) return core::OkStatus();
    auto text = m.meta_->Get(kUploadsCf, id);
    if (!text.ok()) {
      Retire(m);
      if (text.status().code() == core::Code::kNotFound) return UnknownUpload(id);
      return text.status();
    }
    auto record = core::ParseJson(*text);
    core::Result<uint64_t> rec_offset = record.ok() ? core::GetUint(*record, "offset") : record.status();
    core::Result<int64_t> rec_created = record.ok() ? core::GetInt(*record, "created") : record.status();
    core::Result<int64_t> rec_updated = record.ok() ? core::GetInt(*record, "updated") : record.status();
    if (!rec_offset.ok() || !rec_created.ok() || !rec_updated.ok()) {
      Retire(m);
      return core::DataLoss("upload " + id + " has a malformed session record");
    }
    auto staged = m.blobs_->StagingSize(id);
    if (!staged.ok() && staged.status().code() != core::Code::kNotFound) {
      Retire(m);
      return staged.status();
    }
    if (!staged.ok() || *staged < *rec_offset) {
      // Acknowledged bytes are fsynced before their offset is recorded, so
      // this means a commit moved the bytes into place and stopped before
      // deleting the record. There is nothing left to resume.
      SIGIL_LOG(kWarn) << "upload " << id << ": staged bytes missing or shorter than the recorded offset "
                       << *rec_offset << "; dropping the session";
      Forget(m.blobs_, m.meta_, id);
      Retire(m);
      return UnknownUpload(id);
    }
    if (*staged > *rec_offset) {
      core::Status s = m.blobs_->TruncateStaging(id, *rec_offset);
      if (!s.ok()) {
        Retire(m);
        return s.Annotate("upload " + id + ": dropping an unacknowledged chunk");
      }
    }
    offset = *rec_offset;
    created = *rec_created;
    updated = *rec_updated;
    hash_valid = false;
    loaded = true;
    return core::OkStatus();
  }

  // Brings the running hash up to offset by reading the staged bytes.
  // REQUIRES: mu held.
  core::Status EnsureHash(BlobStore* blobs) {
    if (hash_valid) return core::OkStatus();
    ASSIGN_OR_RETURN(std::unique_ptr<BlobReader> reader, blobs->OpenStaging(id));
    hash.Reset();
    std::vector<char> buf(1 << 20);
    uint64_t pos = 0;
    while (pos < offset) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), offset - pos));
      ASSIGN_OR_RETURN(size_t got, reader->ReadAt(pos, buf.data(), want));
      if (got == 0) {
        return core::DataLoss("upload " + id + ": staged bytes end at " + std::to_string(pos) +
                              ", before the recorded offset " + std::to_string(offset));
      }
      hash.Update(buf.data(), got);
      pos += got;
    }
    hash_valid = true;
    return core::OkStatus();
  }

  // Writes one chunk at start and records the new offset durably before
  // returning. On failure the session is as it was. REQUIRES: mu held.
  core::Status AppendLocked(UploadManager& m, uint64_t start, std::string_view bytes) {
    if (start != offset) {
      core::Json detail = {{"offset", offset}};
      return core::OutOfRange("upload " + id + " is at offset " + std::to_string(offset) + ", not " +
                                  std::to_string(start),
                              "UPLOAD_OFFSET_MISMATCH")
          .WithDetail(core::DumpJson(detail));
    }
    const uint64_t max = m.options_.session_max;
    if (bytes.size() > max || offset > max - bytes.size()) {
      return core::ResourceExhausted("upload " + id + " would exceed " + std::to_string(max) +
                                           " bytes, the largest blob this server accepts (its session_max setting)",
                                     "UPLOAD_TOO_LARGE");
    }
    if (bytes.empty()) return core::OkStatus();
    RETURN_IF_ERROR(EnsureHash(m.blobs_));
    const uint64_t old_offset = offset;
    const int64_t old_updated = updated;
    auto undo = [&](const core::Status& s) {
      offset = old_offset;
      updated = old_updated;
      // Best effort: a restart truncates to the recorded offset anyway, and
      // the next Append at this offset overwrites whatever is left.
      m.blobs_->TruncateStaging(id, old_offset).IgnoreError();
      return s.Annotate("upload " + id);
    };
    core::Status s = m.blobs_->WriteStaging(id, old_offset, bytes);
    if (s.ok()) s = m.blobs_->SyncStaging(id);
    if (!s.ok()) return undo(s);
    offset = old_offset + bytes.size();
    updated = m.clock_->NowMicros();
    s = m.Persist(*this);
    if (!s.ok()) return undo(s);
    hash.Update(bytes);
    return core::OkStatus();
  }

  // Writes what `source` yields at start, then records the new offset
  // durably. Reading the next piece overlaps writing and hashing the last
  // one (a second thread), so a fast client is held up by whichever is
  // slower, not by their sum. On failure the session is as it was.
  // REQUIRES: mu held.
  core::Status AppendFromLocked(UploadManager& m, uint64_t start, ChunkSource& source) {
    if (start != offset) return AppendLocked(m, start, {});  // the offset mismatch
    RETURN_IF_ERROR(EnsureHash(m.blobs_));
    const uint64_t old_offset = offset;
    const uint64_t max = m.options_.session_max;
    std::vector<char> pieces[2] = {std::vector<char>(kStreamPiece), std::vector<char>(kStreamPiece)};
    std::future<core::Status> storing;  // the previous piece's write and hash
    auto fail = [&](const core::Status& s) {
      if (storing.valid()) storing.get().IgnoreError();  // the first error is the one reported
      // The running hash took bytes that are now dropped: rebuild it.
      hash_valid = false;
      m.blobs_->TruncateStaging(id, old_offset).IgnoreError();
      return s.Annotate("upload " + id);
    };
    uint64_t end = old_offset;
    for (int cur = 0;; cur ^= 1) {
      // Fill the piece before storing it: reads from a socket come in small
      // bursts, and one write per piece keeps the syscalls few.
      std::vector<char>& buf = pieces[cur];
      size_t filled = 0;
      bool done = false;
      while (filled < buf.size()) {
        core::Result<size_t> n = source.Read(buf.data() + filled, buf.size() - filled);
        if (!n.ok()) return fail(n.status());
        if (*n == 0) {
          done = true;
          break;
        }
        filled += *n;
      }
      if (storing.valid()) {
        core::Status s = storing.get();
        if (!s.ok()) return fail(s);
      }
      if (filled > 0) {
        if (filled > max || end > max - filled) {
          return fail(core::ResourceExhausted("upload " + id + " would exceed " + std::to_string(max) +
                                                  " bytes, the largest blob this server accepts (its "
                                                  "session_max setting)",
                                              "UPLOAD_TOO_LARGE"));
        }
        storing = std::async(std::launch::async, [this, &m, &buf, filled, at = end] {
          core::Status s = m.blobs_->WriteStaging(id, at, std::string_view(buf.data(), filled));
          if (s.ok()) hash.Update(buf.data(), filled);
          return s;
        });
        end += filled;
      }
      if (done) break;
    }
    if (storing.valid()) {
      core::Status s = storing.get();
      if (!s.ok()) return fail(s);
    }
    if (end == old_offset) return core::OkStatus();
    core::Status s = m.blobs_->SyncStaging(id);
    if (!s.ok()) return fail(s);
    const int64_t old_updated = updated;
    offset = end;
    updated = m.clock_->NowMicros();
    s = recorded ? m.Persist(*this) : core::OkStatus();
    if (!s.ok()) {
      offset = old_offset;
      updated = old_updated;
      return fail(s);
    }
    return core::OkStatus();
  }

  static constexpr size_t kStreamPiece = 4 << 20;

  std::mutex mu;
  const std::string id;
  bool recorded = true;  // false: a single-request upload, with no session record
  bool loaded = false;  // the fields below reflect the durable record
  bool gone = false;    // committed, aborted or expired: the object is dead
  uint64_t offset = 0;
  int64_t created = 0;
  int64_t updated = 0;
  // The hash of bytes [0, offset) when hash_valid. After a restart, or after
  // a commit attempt consumed it, it is rebuilt from the staged bytes.
  bool hash_valid = false;
  core::Sha256 hash;
};

UploadManager::UploadManager(BlobStore* blobs, MetaStore* meta, core::Clock* clock, UploadOptions options)
    : blobs_(blobs), meta_(meta), clock_(clock), options_(options) {}

UploadManager::~UploadManager() = default;

core::Status UploadManager::Persist(const Session& session) {
  core::Json record = {{"offset", session.offset}, {"created", session.created}, {"updated", session.updated}};
  return meta_->Put(kUploadsCf, session.id, core::DumpJson(record));
}

core::Result<std::shared_ptr<UploadManager::Session>> UploadManager::Load(const std::string& id) {
  if (!IsValidStagingId(id)) return UnknownUpload(id);
  std::shared_ptr<Session> session = Session::Acquire(*this, id);
  // Only the session's own lock is held while it loads, so recovering one
  // upload does not stall the others.
  std::lock_guard<std::mutex> lock(session->mu);
  if (session->gone) return UnknownUpload(id);
  RETURN_IF_ERROR(session->LoadLocked(*this));
  if (session->Expired(*this)) {
    Forget(blobs_, meta_, id);
    session->Retire(*this);
    return UnknownUpload(id);
  }
  return session;
}

core::Result<UploadInfo> UploadManager::Create() {
  auto session = std::make_shared<Session>(core::RandomHex(16));
  std::lock_guard<std::mutex> session_lock(session->mu);
  {
    // Registered before its staging exists, so ExpireIdle never takes the
    // staging for a crash leftover while the record is being written.
    std::lock_guard<std::mutex> lock(mu_);
    live_[session->id] = session;
  }
  session->created = session->updated = clock_->NowMicros();
  session->loaded = true;
  session->hash_valid = true;
  core::Status s = blobs_->CreateStaging(session->id);
  if (s.ok()) {
    s = Persist(*session);
    if (!s.ok()) blobs_->RemoveStaging(session->id).IgnoreError();
  }
  if (!s.ok()) {
    session->Retire(*this);
    return s.Annotate("creating upload");
  }
  return session->Info();
}

core::Result<UploadInfo> UploadManager::Get(const std::string& id) {
  ASSIGN_OR_RETURN(std::shared_ptr<Session> session, Load(id));
  std::lock_guard<std::mutex> lock(session->mu);
  if (session->gone) return UnknownUpload(id);
  return session->Info();
}

core::Result<UploadInfo> UploadManager::Append(const std::string& id, uint64_t start, std::string_view bytes) {
  if (bytes.size() > options_.chunk_max) return ChunkTooLarge(bytes.size(), options_.chunk_max);
  ASSIGN_OR_RETURN(std::shared_ptr<Session> session, Load(id));
  std::lock_guard<std::mutex> lock(session->mu);
  if (session->gone) return UnknownUpload(id);
  RETURN_IF_ERROR(session->AppendLocked(*this, start, bytes));
  return session->Info();
}

core::Result<BlobInfo> UploadManager::PutFrom(const core::Digest& digest, ChunkSource& source) {
  auto session = std::make_shared<Session>(core::RandomHex(16));
  std::lock_guard<std::mutex> session_lock(session->mu);
  {
    // Registered before its staging exists, so ExpireIdle leaves it alone.
    std::lock_guard<std::mutex> lock(mu_);
    live_[session->id] = session;
  }
  session->recorded = false;
  session->loaded = true;
  session->hash_valid = true;
  session->created = session->updated = clock_->NowMicros();
  auto finish = [&](core::Status s) {
    blobs_->RemoveStaging(session->id).IgnoreError();
    session->Retire(*this);
    return s;
  };
  core::Status s = blobs_->CreateStaging(session->id);
  if (!s.ok()) return finish(s.Annotate("single-request upload"));
  s = session->AppendFromLocked(*this, 0, source);
  if (!s.ok()) return finish(s);
  core::Digest actual = session->hash.Finish();
  if (actual != digest) {
    core::Json detail = {{"expected", digest.ToString()}, {"actual", actual.ToString()}};
    return finish(core::InvalidArgument("uploaded bytes hash to " + actual.ToString() + ", not " + digest.ToString(),
                                        "DIGEST_MISMATCH")
                      .WithDetail(core::DumpJson(detail)));
  }
  s = blobs_->CommitStaging(session->id, digest);
  if (!s.ok()) return finish(s);
  session->Retire(*this);
  return blobs_->Stat(digest);
}

core::Result<UploadInfo> UploadManager::AppendFrom(const std::string& id, uint64_t start, ChunkSource& source) {
  ASSIGN_OR_RETURN(std::shared_ptr<Session> session, Load(id));
  std::lock_guard<std::mutex> lock(session->mu);
  if (session->gone) return UnknownUpload(id);
  RETURN_IF_ERROR(session->AppendFromLocked(*this, start, source));
  return session->Info();
}

core::Result<BlobInfo> UploadManager::Commit(const std::string& id, const core::Digest& digest,
                                             std::string_view last_chunk) {
  if (last_chunk.size() > options_.chunk_max) return ChunkTooLarge(last_chunk.size(), options_.chunk_max);
  ASSIGN_OR_RETURN(std::shared_ptr<Session> session, Load(id));
  std::lock_guard<std::mutex> lock(session->mu);
  if (session->gone) return UnknownUpload(id);
  RETURN_IF_ERROR(session->AppendLocked(*this, session->offset, last_chunk));
  RETURN_IF_ERROR(session->EnsureHash(blobs_));
  // Finish consumes the running hash; should the commit fail below, the next
  // attempt rebuilds it from the staged bytes.
  core::Digest actual = session->hash.Finish();
  session->hash_valid = false;
  if (actual != digest) {
    Forget(blobs_, meta_, id);
    session->Retire(*this);
    core::Json detail = {{"expected", digest.ToString()}, {"actual", actual.ToString()}};
    return core::InvalidArgument("uploaded bytes hash to " + actual.ToString() + ", not " + digest.ToString(),
                                 "DIGEST_MISMATCH")
        .WithDetail(core::DumpJson(detail));
  }
  RETURN_IF_ERROR(blobs_->CommitStaging(id, digest));
  // The blob is in place from here on. A record that cannot be deleted now
  // is dropped by the next Load or ExpireIdle, since its staging is gone.
  core::Status s = meta_->Delete(kUploadsCf, id);
  if (!s.ok()) {
    SIGIL_LOG(kWarn) << "upload " << id << ": removing session record: " << s.ToString();
  }
  session->Retire(*this);
  auto info = blobs_->Stat(digest);
  if (!info.ok()) return info.status().Annotate("upload " + id + " committed as " + digest.ToString());
  return *info;
}

core::Status UploadManager::Abort(const std::string& id) {
  ASSIGN_OR_RETURN(std::shared_ptr<Session> session, Load(id));
  std::lock_guard<std::mutex> lock(session->mu);
  if (session->gone) return UnknownUpload(id);
  // The record goes first: without it the session is over even if its bytes
  // cannot be removed now (ExpireIdle removes them later).
  RETURN_IF_ERROR(meta_->Delete(kUploadsCf, id));
  core::Status s = blobs_->RemoveStaging(id);
  if (!s.ok()) {
    SIGIL_LOG(kWarn) << "upload " << id << ": removing staged bytes: " << s.ToString();
  }
  session->Retire(*this);
  return core::OkStatus();
}

core::Result<size_t> UploadManager::ExpireIdle() {
  size_t removed = 0;
  const int64_t now = clock_->NowMicros();

  // Candidates from the records; each is decided again under its own lock,
  // since an Append may have touched it since the scan.
  std::vector<std::string> candidates;
  RETURN_IF_ERROR(meta_->Scan(kUploadsCf, "", [&](std::string_view key, std::string_view value) {
    auto record = core::ParseJson(value);
    core::Result<int64_t> updated = record.ok() ? core::GetInt(*record, "updated") : record.status();
    if (!updated.ok() || now - *updated > options_.expiry_micros) candidates.emplace_back(key);
    return true;
  }));
  for (const auto& id : candidates) {
    if (!IsValidStagingId(id)) {
      // No upload ever gets such an id; the record can only be garbage.
      RETURN_IF_ERROR(meta_->Delete(kUploadsCf, id));
      ++removed;
      continue;
    }
    std::shared_ptr<Session> session = Session::Acquire(*this, id);
    std::lock_guard<std::mutex> lock(session->mu);
    if (session->gone) continue;
    core::Status s = session->LoadLocked(*this);
    if (s.code() == core::Code::kDataLoss) {
      // An unreadable record can never be resumed.
      Forget(blobs_, meta_, id);
      ++removed;
      continue;
    }
    if (!s.ok()) {
      if (s.code() == core::Code::kNotFound) continue;  // ended meanwhile
      return s;
    }
    if (session->Expired(*this)) {
      Forget(blobs_, meta_, id);
      session->Retire(*this);
      ++removed;
    }
  }

  // Staging areas without a record: a crash between creating one and
  // recording the session, or an abort whose removal failed.
  std::vector<std::string> staged;
  RETURN_IF_ERROR(blobs_->ForEachStaging([&](const std::string& id) {
    staged.push_back(id);
    return true;
  }));
  for (const auto& id : staged) {
    std::lock_guard<std::mutex> lock(mu_);
    if (live_.count(id)) continue;
    auto record = meta_->Get(kUploadsCf, id);
    if (record.ok()) continue;
    if (record.status().code() != core::Code::kNotFound) return record.status();
    RETURN_IF_ERROR(blobs_->RemoveStaging(id));
    ++removed;
  }
  return removed;
}

size_t UploadManager::OpenCount() {
  size_t count = 0;
  core::Status s = meta_->Scan(kUploadsCf, "", [&](std::string_view, std::string_view) {
    ++count;
    return true;
  });
  if (!s.ok()) {
    SIGIL_LOG(kWarn) << "counting uploads: " << s.ToString();
  }
  return count;
}

}  // namespace sigil::storage
