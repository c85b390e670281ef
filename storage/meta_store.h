// MetaStore: the metadata key-value store (RocksDB in production), organised
// in named column families. Every multi-key change is one WriteBatch, applied
// atomically and durably (sync) before Write returns.
//
// Thread-safety: all methods may be called concurrently. Read-modify-write
// sequences need the caller's own lock.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sigil::storage {

class WriteBatch {
 public:
  struct Op {
    std::string cf;
    std::string key;
    std::string value;
    bool is_delete = false;
  };

  void Put(std::string_view cf, std::string_view key, std::string_view value) {
    ops_.push_back({std::string(cf), std::string(key), std::string(value), false});
  }
  void Delete(std::string_view cf, std::string_view key) {
    ops_.push_back({std::string(cf), std::string(key), {}, true});
  }
  const std::vector<Op>& ops() const { return ops_; }
  bool empty() const { return ops_.empty(); }

 private:
  std::vector<Op> ops_;
};

class MetaStore {
 public:
  virtual ~MetaStore() = default;

  // kNotFound when the key is absent; kInvalidArgument for an unknown family.
  virtual core::Result<std::string> Get(std::string_view cf, std::string_view key) = 0;
  virtual core::Status Write(const WriteBatch& batch) = 0;
  // Visits keys starting with prefix in ascending byte order, from start_after
  // (exclusive) when given; stops when fn returns false.
  virtual core::Status Scan(
      std::string_view cf, std::string_view prefix,
      const std::function<bool(std::string_view key, std::string_view value)>& fn,
      std::string_view start_after = {}) = 0;
  virtual core::Status CheckHealth() = 0;

  // Convenience for a single key.
  core::Status Put(std::string_view cf, std::string_view key, std::string_view value) {
    WriteBatch b;
    b.Put(cf, key, value);
    return Write(b);
  }
  core::Status Delete(std::string_view cf, std::string_view key) {
    WriteBatch b;
    b.Delete(cf, key);
    return Write(b);
  }
};

// The column families every sigil MetaStore has.
const std::vector<std::string>& DefaultColumnFamilies();

// In memory; for tests. Knows the given families.
std::unique_ptr<MetaStore> NewMemoryMetaStore(
    const std::vector<std::string>& column_families = DefaultColumnFamilies());

}  // namespace sigil::storage
