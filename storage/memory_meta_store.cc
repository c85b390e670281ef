#include <map>
#include <mutex>

#include "storage/meta_store.h"

namespace sigil::storage {

const std::vector<std::string>& DefaultColumnFamilies() {
  static const std::vector<std::string> kFamilies = {
      "repos", "tags", "manifests", "referrers", "uploads", "jobs", "log", "audit", "meta",
  };
  return kFamilies;
}

namespace {

class MemoryMetaStore : public MetaStore {
 public:
  explicit MemoryMetaStore(const std::vector<std::string>& families) {
    for (const auto& f : families) data_[f];
  }

  core::Result<std::string> Get(std::string_view cf, std::string_view key) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto family = data_.find(std::string(cf));
    if (family == data_.end()) return core::InvalidArgument("unknown column family " + std::string(cf));
    auto it = family->second.find(std::string(key));
    if (it == family->second.end()) return core::NotFound("key not found");
    return it->second;
  }

  core::Status Write(const WriteBatch& batch) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& op : batch.ops()) {
      if (!data_.count(op.cf)) return core::InvalidArgument("unknown column family " + op.cf);
    }
    for (const auto& op : batch.ops()) {
      if (op.is_delete) {
        data_[op.cf].erase(op.key);
      } else {
        data_[op.cf][op.key] = op.value;
      }
    }
    return core::OkStatus();
  }

  core::Status Scan(std::string_view cf, std::string_view prefix,
                    const std::function<bool(std::string_view, std::string_view)>& fn,
                    std::string_view start_after) override {
    std::vector<std::pair<std::string, std::string>> rows;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto family = data_.find(std::string(cf));
      if (family == data_.end()) return core::InvalidArgument("unknown column family " + std::string(cf));
      auto it = start_after.empty() ? family->second.lower_bound(std::string(prefix))
                                    : family->second.upper_bound(std::string(start_after));
      for (; it != family->second.end(); ++it) {
        if (it->first.compare(0, prefix.size(), prefix) != 0) {
          if (it->first < std::string(prefix)) continue;
          break;
        }
        rows.emplace_back(it->first, it->second);
      }
    }
    for (const auto& [k, v] : rows) {
      if (!fn(k, v)) break;
    }
    return core::OkStatus();
  }

  core::Status CheckHealth() override { return core::OkStatus(); }

 private:
  std::mutex mu_;
  std::map<std::string, std::map<std::string, std::string>> data_;
};

}  // namespace

std::unique_ptr<MetaStore> NewMemoryMetaStore(const std::vector<std::string>& column_families) {
  return std::make_unique<MemoryMetaStore>(column_families);
}

}  // namespace sigil::storage
