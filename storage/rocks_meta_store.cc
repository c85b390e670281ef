// The only file that includes RocksDB: its types and its Status stay here.
#include "storage/rocks_meta_store.h"

#include <rocksdb/db.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <sys/statvfs.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <chrono>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <set>

#include "core/fs.h"
#include "core/log.h"

namespace sigil::storage {
namespace {

core::Status FromRocks(const rocksdb::Status& s, std::string_view context) {
  if (s.ok()) return core::OkStatus();
  std::string message = std::string(context) + ": " + s.ToString();
  if (s.IsNoSpace()) return core::ResourceExhausted(std::move(message), "INSUFFICIENT_STORAGE");
  if (s.IsNotFound()) return core::NotFound(std::move(message));
  if (s.IsCorruption()) return core::DataLoss(std::move(message));
  if (s.IsInvalidArgument()) return core::InvalidArgument(std::move(message));
  if (s.IsNotSupported()) return core::Unimplemented(std::move(message));
  if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) return core::Unavailable(std::move(message));
  if (s.IsAborted()) return core::Aborted(std::move(message));
  if (s.IsIncomplete() || s.IsShutdownInProgress()) return core::Unavailable(std::move(message));
  return core::Internal(std::move(message));
}

// RocksDB reports a held LOCK file as a plain IOError ("While lock file:
// <path>/LOCK: ..." from another process, "lock hold by current process ...:
// <path>/LOCK: ..." from this one); the file name in the message is the only
// way to tell it from a broken disk.
bool IsLockError(const rocksdb::Status& s) {
  return s.IsIOError() && s.ToString().find("/LOCK: ") != std::string::npos;
}

// After a failed WAL append, RocksDB 7.8 (Debian bookworm) may go on writing
// to the failed WAL writer even once DB::Resume succeeds: Resume starts a new
// WAL only when it has a memtable to flush, and the failed writer's next
// append trips an assertion that aborts the process (RocksDB issues 11643
// and 12998, fixed upstream in 9.x). So the store never lets RocksDB resume
// in place: after a failed write it closes the database and opens it again,
// which always starts a fresh WAL, once the disk has room. The listener stops
// RocksDB's automatic recovery from a full disk, which would resume it.
class NoAutoRecovery : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status, bool* auto_recovery) override {
    *auto_recovery = false;
  }
};

// RocksDB's info log goes to sigild's log (warnings and errors only), not to
// a LOG file in the database directory: in RocksDB 7.8 the LOG file's writer
// aborts the process on the line after one that failed to append, and on a
// full disk the line reporting the failed write is such a line.
class ForwardingLogger : public rocksdb::Logger {
 public:
  ForwardingLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}

  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel() || level == rocksdb::InfoLogLevel::HEADER_LEVEL) return;
    char line[2048];
    std::vsnprintf(line, sizeof(line), format, ap);
    core::LogLine(level >= rocksdb::InfoLogLevel::ERROR_LEVEL ? core::LogLevel::kError : core::LogLevel::kWarn,
                  std::string("rocksdb: ") + line);
  }
  void Logv(const char* format, va_list ap) override { Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap); }
};

// Reopening needs room for a new WAL, a MANIFEST record and the flush of what
// the old WAL held.
constexpr uint64_t kReopenFreeBytes = 4ull << 20;
// A reopen that failed is not tried again sooner than this.
constexpr auto kReopenBackoff = std::chrono::milliseconds(500);

uint64_t FreeBytes(const std::string& path) {
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

struct OpenDb {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::map<std::string, rocksdb::ColumnFamilyHandle*, std::less<>> families;

  ~OpenDb() {
    if (db == nullptr) return;
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    // Close flushes nothing we rely on (every write was synced to the WAL),
    // but it releases the LOCK before the object goes away.
    db->Close().PermitUncheckedError();
  }
};

rocksdb::Options StoreOptions() {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.listeners.push_back(std::make_shared<NoAutoRecovery>());
  options.info_log = std::make_shared<ForwardingLogger>();
  // Closing after a failed write must not try to flush memtables: the WAL
  // holds them, and the reopen replays it.
  options.avoid_flush_during_shutdown = true;
  return options;
}

core::Result<std::unique_ptr<OpenDb>> OpenDatabase(const std::string& path) {
  rocksdb::Options options = StoreOptions();
  // RocksDB refuses to open unless every family on disk is named, so the
  // list is what is there plus what sigil needs now.
  std::set<std::string> names(DefaultColumnFamilies().begin(), DefaultColumnFamilies().end());
  names.insert(rocksdb::kDefaultColumnFamilyName);
  std::vector<std::string> on_disk;
  rocksdb::Status listed = rocksdb::DB::ListColumnFamilies(options, path, &on_disk);
  if (listed.ok()) {
    names.insert(on_disk.begin(), on_disk.end());
  } else if (core::PathExists(core::JoinPath(path, "CURRENT"))) {
    // A database is there but cannot be listed: opening it with a guessed
    // family list would fail later with a less useful message.
    return FromRocks(listed, "listing column families of " + path);
  }

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& name : names) descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions(options));
  auto opened = std::make_unique<OpenDb>();
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, descriptors, &opened->handles, &raw);
  if (!s.ok()) {
    if (IsLockError(s)) {
      return core::Unavailable("metadata store at " + path +
                               " is already open (its LOCK is held by this or another process): " +
                               s.ToString());
    }
    return FromRocks(s, "opening metadata store at " + path);
  }
  opened->db.reset(raw);
  for (auto* h : opened->handles) opened->families[h->GetName()] = h;
  return opened;
}

class RocksMetaStore : public MetaStore {
 public:
  RocksMetaStore(std::string path, std::unique_ptr<OpenDb> db) : path_(std::move(path)), db_(std::move(db)) {}

  core::Result<std::string> Get(std::string_view cf, std::string_view key) override {
    return Read([&]() -> core::Result<std::string> {
      ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * h, Family(cf));
      std::string value;
      rocksdb::Status s = db_->db->Get(rocksdb::ReadOptions(), h, rocksdb::Slice(key.data(), key.size()), &value);
      if (s.IsNotFound()) return core::NotFound("key not found in " + std::string(cf));
      if (!s.ok()) return FromRocks(s, "reading " + std::string(cf));
      return value;
    });
  }

  core::Status Write(const WriteBatch& batch) override {
    if (batch.empty()) return core::OkStatus();
    rocksdb::Status failed;
    uint64_t failed_generation = 0;
    {
      std::shared_lock lock(mu_);
      if (!needs_reopen_) {
        ASSIGN_OR_RETURN(rocksdb::WriteBatch wb, Build(batch));
        rocksdb::Status s = db_->db->Write(SyncWrite(), &wb);
        if (s.ok() || !s.IsIOError()) return FromRocks(s, "writing metadata");
        failed = s;
        failed_generation = generation_;
      }
    }
    std::unique_lock lock(mu_);
    // Another writer may have reopened the database since this one failed.
    if (!failed.ok() && failed_generation == generation_) MarkFailed(failed);
    if (needs_reopen_) RETURN_IF_ERROR(Reopen());
    // A failed WAL append acknowledged nothing; after the reopen the batch is
    // written whole (its puts and deletes are idempotent).
    ASSIGN_OR_RETURN(rocksdb::WriteBatch wb, Build(batch));
    rocksdb::Status s = db_->db->Write(SyncWrite(), &wb);
    if (s.IsIOError()) MarkFailed(s);
    return FromRocks(s, "writing metadata");
  }

  core::Status Scan(std::string_view cf, std::string_view prefix,
                    const std::function<bool(std::string_view, std::string_view)>& fn,
                    std::string_view start_after) override {
    return Read([&]() -> core::Status {
      ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * h, Family(cf));
      std::unique_ptr<rocksdb::Iterator> it(db_->db->NewIterator(rocksdb::ReadOptions(), h));
      std::string_view seek = std::max(prefix, start_after);
      for (it->Seek(rocksdb::Slice(seek.data(), seek.size())); it->Valid(); it->Next()) {
        std::string_view key(it->key().data(), it->key().size());
        if (!start_after.empty() && key == start_after) continue;
        if (key.substr(0, prefix.size()) != prefix) break;
        if (!fn(key, std::string_view(it->value().data(), it->value().size()))) break;
      }
      return FromRocks(it->status(), "scanning " + std::string(cf));
    });
  }

  core::Status CheckHealth() override {
    // A point read proves the database answers; a failed write not yet
    // recovered from means it cannot take the writes requests make.
    auto r = Get("meta", "health");
    if (!r.ok() && r.status().code() != core::Code::kNotFound) return r.status();
    std::shared_lock lock(mu_);
    if (needs_reopen_) return core::Unavailable("metadata store refuses writes since: " + last_error_);
    uint64_t stopped = 0;
    if (db_->db->GetIntProperty("rocksdb.is-write-stopped", &stopped) && stopped != 0) {
      return core::Unavailable("metadata store has stopped accepting writes");
    }
    return core::OkStatus();
  }

 private:
  static rocksdb::WriteOptions SyncWrite() {
    rocksdb::WriteOptions options;
    options.sync = true;
    return options;
  }

  // Runs fn under the shared lock with the database open, reopening it first
  // when an earlier reopen failed.
  template <typename F>
  auto Read(F fn) -> decltype(fn()) {
    {
      std::shared_lock lock(mu_);
      if (db_ != nullptr) return fn();
    }
    {
      std::unique_lock lock(mu_);
      if (db_ == nullptr) RETURN_IF_ERROR(Reopen());
    }
    std::shared_lock lock(mu_);
    if (db_ == nullptr) return core::Unavailable("metadata store is closed: " + last_error_);
    return fn();
  }

  // Callers hold mu_ exclusively.
  void MarkFailed(const rocksdb::Status& s) {
    needs_reopen_ = true;
    no_space_ = s.IsNoSpace();
    last_error_ = s.ToString();
  }

  // Callers hold mu_ with the database open.
  core::Result<rocksdb::ColumnFamilyHandle*> Family(std::string_view cf) const {
    auto it = db_->families.find(cf);
    if (it == db_->families.end()) return core::InvalidArgument("unknown column family " + std::string(cf));
    return it->second;
  }

  core::Result<rocksdb::WriteBatch> Build(const WriteBatch& batch) const {
    rocksdb::WriteBatch wb;
    for (const auto& op : batch.ops()) {
      ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * h, Family(op.cf));
      rocksdb::Status s = op.is_delete ? wb.Delete(h, op.key) : wb.Put(h, op.key, op.value);
      if (!s.ok()) return FromRocks(s, "building write batch");
    }
    return wb;
  }

  // Closes the database and opens it again, once the disk has room for it.
  // Until then writes are refused (507 for a full disk) and reads go on from
  // the database still open. Callers hold mu_ exclusively.
  core::Status Reopen() {
    auto refuse = [&](const std::string& why) {
      std::string message = "writing metadata: " + last_error_ + "; " + why;
      if (no_space_) return core::ResourceExhausted(std::move(message), "INSUFFICIENT_STORAGE");
      return core::Unavailable(std::move(message));
    };
    uint64_t free = FreeBytes(path_);
    if (free < kReopenFreeBytes) {
      no_space_ = true;
      return refuse("writes resume once " + std::to_string(kReopenFreeBytes) + " bytes are free (" +
                    std::to_string(free) + " now)");
    }
    auto now = std::chrono::steady_clock::now();
    if (now < next_reopen_) return refuse("the metadata store is reopened shortly");
    next_reopen_ = now + kReopenBackoff;
    db_.reset();
    auto opened = OpenDatabase(path_);
    if (!opened.ok()) {
      last_error_ = opened.status().ToString();
      no_space_ = opened.status().code() == core::Code::kResourceExhausted;
      return refuse("reopening it failed");
    }
    db_ = std::move(*opened);
    needs_reopen_ = false;
    ++generation_;
    return core::OkStatus();
  }

  const std::string path_;
  // Shared for every read and write; exclusive to mark a failure and reopen.
  std::shared_mutex mu_;
  std::unique_ptr<OpenDb> db_;  // null only after a reopen failed
  bool needs_reopen_ = false;
  bool no_space_ = false;
  std::string last_error_;
  uint64_t generation_ = 0;  // reopens so far
  std::chrono::steady_clock::time_point next_reopen_{};
};

}  // namespace

core::Result<std::unique_ptr<MetaStore>> OpenRocksMetaStore(const std::string& path) {
  RETURN_IF_ERROR(core::MakeDirs(path));
  ASSIGN_OR_RETURN(std::unique_ptr<OpenDb> db, OpenDatabase(path));
  return std::unique_ptr<MetaStore>(new RocksMetaStore(path, std::move(db)));
}

}  // namespace sigil::storage
