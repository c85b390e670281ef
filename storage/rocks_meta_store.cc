// The only file that includes RocksDB: its types and its Status stay here.
#include "storage/rocks_meta_store.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include "core/fs.h"

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

class RocksMetaStore : public MetaStore {
 public:
  RocksMetaStore(std::unique_ptr<rocksdb::DB> db, std::vector<rocksdb::ColumnFamilyHandle*> handles)
      : db_(std::move(db)), handles_(std::move(handles)) {
    for (auto* h : handles_) families_[h->GetName()] = h;
  }

  ~RocksMetaStore() override {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    // Close flushes nothing we rely on (every write was synced to the WAL),
    // but it releases the LOCK before the object goes away.
    db_->Close().PermitUncheckedError();
  }

  core::Result<std::string> Get(std::string_view cf, std::string_view key) override {
    ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * h, Family(cf));
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), h, rocksdb::Slice(key.data(), key.size()), &value);
    if (s.IsNotFound()) return core::NotFound("key not found in " + std::string(cf));
    if (!s.ok()) return FromRocks(s, "reading " + std::string(cf));
    return value;
  }

  core::Status Write(const WriteBatch& batch) override {
    if (batch.empty()) return core::OkStatus();
    rocksdb::WriteBatch wb;
    for (const auto& op : batch.ops()) {
      ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * h, Family(op.cf));
      rocksdb::Status s = op.is_delete ? wb.Delete(h, op.key) : wb.Put(h, op.key, op.value);
      if (!s.ok()) return FromRocks(s, "building write batch");
    }
    rocksdb::WriteOptions options;
    options.sync = true;
    rocksdb::Status s = db_->Write(options, &wb);
    if (!s.ok() && s.IsIOError()) {
      // A write that failed for lack of space (or any I/O error) leaves the
      // database refusing every later write until it is resumed. Resuming
      // fails while the disk is still full; once space is back it succeeds
      // and this write goes through, without a restart. A failed WAL write
      // applied nothing, so writing the batch again is safe.
      std::lock_guard<std::mutex> lock(resume_mu_);
      rocksdb::Status resumed = db_->Resume();
      if (resumed.ok()) {
        s = db_->Write(options, &wb);
      } else {
        return FromRocks(s, "writing metadata (resume: " + resumed.ToString() + ")");
      }
    }
    return FromRocks(s, "writing metadata");
  }

  core::Status Scan(std::string_view cf, std::string_view prefix,
                    const std::function<bool(std::string_view, std::string_view)>& fn,
                    std::string_view start_after) override {
    ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * h, Family(cf));
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), h));
    std::string_view seek = std::max(prefix, start_after);
    for (it->Seek(rocksdb::Slice(seek.data(), seek.size())); it->Valid(); it->Next()) {
      std::string_view key(it->key().data(), it->key().size());
      if (!start_after.empty() && key == start_after) continue;
      if (key.substr(0, prefix.size()) != prefix) break;
      if (!fn(key, std::string_view(it->value().data(), it->value().size()))) break;
    }
    return FromRocks(it->status(), "scanning " + std::string(cf));
  }

  core::Status CheckHealth() override {
    // A point read proves the database answers; a write stop (background
    // error, disk full) means it cannot take the writes every request makes.
    auto r = Get("meta", "health");
    if (!r.ok() && r.status().code() != core::Code::kNotFound) return r.status();
    uint64_t stopped = 0;
    if (db_->GetIntProperty("rocksdb.is-write-stopped", &stopped) && stopped != 0) {
      return core::Unavailable("metadata store has stopped accepting writes");
    }
    return core::OkStatus();
  }

 private:
  core::Result<rocksdb::ColumnFamilyHandle*> Family(std::string_view cf) const {
    auto it = families_.find(cf);
    if (it == families_.end()) return core::InvalidArgument("unknown column family " + std::string(cf));
    return it->second;
  }

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::mutex resume_mu_;
  std::map<std::string, rocksdb::ColumnFamilyHandle*, std::less<>> families_;
};

}  // namespace

core::Result<std::unique_ptr<MetaStore>> OpenRocksMetaStore(const std::string& path) {
  RETURN_IF_ERROR(core::MakeDirs(path));
  rocksdb::Options options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;

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
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, descriptors, &handles, &raw);
  if (!s.ok()) {
    if (IsLockError(s)) {
      return core::Unavailable("metadata store at " + path +
                               " is already open (its LOCK is held by this or another process): " +
                               s.ToString());
    }
    return FromRocks(s, "opening metadata store at " + path);
  }
  return std::unique_ptr<MetaStore>(new RocksMetaStore(std::unique_ptr<rocksdb::DB>(raw), std::move(handles)));
}

}  // namespace sigil::storage
