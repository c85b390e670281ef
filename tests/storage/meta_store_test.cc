// The MetaStore contract, run against the memory and the RocksDB store, then
// what only RocksDB promises (reopening, the LOCK).
#include "storage/meta_store.h"

#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "storage/rocks_meta_store.h"
#include "tests/support/temp_dir.h"

namespace sigil::storage {
namespace {

using core::Code;

struct StoreUnderTest {
  testing::TempDir dir;
  std::unique_ptr<MetaStore> store;

  explicit StoreUnderTest(const std::string& kind) {
    if (kind == "memory") {
      store = NewMemoryMetaStore();
    } else {
      auto opened = OpenRocksMetaStore(dir.Sub("meta"));
      REQUIRE(opened.ok());
      store = std::move(opened).value();
    }
  }
};

using Rows = std::vector<std::pair<std::string, std::string>>;

Rows ScanAll(MetaStore& store, std::string_view cf, std::string_view prefix, std::string_view start_after = {},
             size_t limit = 1000) {
  Rows rows;
  core::Status s = store.Scan(
      cf, prefix,
      [&](std::string_view k, std::string_view v) {
        rows.emplace_back(std::string(k), std::string(v));
        return rows.size() < limit;
      },
      start_after);
  REQUIRE(s.ok());
  return rows;
}

TEST_CASE("meta store: put get delete in every default family", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "rocksdb");
  INFO(kind);
  StoreUnderTest t(kind);
  MetaStore& store = *t.store;
  for (const auto& cf : DefaultColumnFamilies()) {
    INFO(cf);
    CHECK(store.Get(cf, "k").status().code() == Code::kNotFound);
    REQUIRE(store.Put(cf, "k", "value of " + cf).ok());
    CHECK(store.Get(cf, "k").value() == "value of " + cf);
  }
  // Families are separate key spaces.
  REQUIRE(store.Delete("tags", "k").ok());
  CHECK(store.Get("tags", "k").status().code() == Code::kNotFound);
  CHECK(store.Get("repos", "k").value() == "value of repos");
  REQUIRE(store.Delete("tags", "never-there").ok());
  // Binary keys and values round-trip.
  const std::string key("a\0b\xff", 4), value("\0\1\2", 3);
  REQUIRE(store.Put("meta", key, value).ok());
  CHECK(store.Get("meta", key).value() == value);
  CHECK(store.CheckHealth().ok());
}

TEST_CASE("meta store: an unknown family is an invalid argument and writes nothing", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "rocksdb");
  INFO(kind);
  StoreUnderTest t(kind);
  MetaStore& store = *t.store;
  CHECK(store.Get("nope", "k").status().code() == Code::kInvalidArgument);
  CHECK(store.Put("nope", "k", "v").code() == Code::kInvalidArgument);
  CHECK(store.Scan("nope", "", [](std::string_view, std::string_view) { return true; }).code() ==
        Code::kInvalidArgument);
  WriteBatch batch;
  batch.Put("repos", "a", "1");
  batch.Put("nope", "b", "2");
  CHECK(store.Write(batch).code() == Code::kInvalidArgument);
  CHECK(store.Get("repos", "a").status().code() == Code::kNotFound);
}

TEST_CASE("meta store: a batch spans families and applies in order", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "rocksdb");
  INFO(kind);
  StoreUnderTest t(kind);
  MetaStore& store = *t.store;
  REQUIRE(store.Put("tags", "old", "x").ok());
  WriteBatch batch;
  batch.Put("repos", "health/triage", "{}");
  batch.Put("tags", "health/triage:1.0", "sha256:aa");
  batch.Delete("tags", "old");
  batch.Put("audit", "0001", "first");
  batch.Put("audit", "0001", "second");  // later ops win
  REQUIRE(store.Write(batch).ok());
  CHECK(store.Get("repos", "health/triage").value() == "{}");
  CHECK(store.Get("tags", "health/triage:1.0").value() == "sha256:aa");
  CHECK(store.Get("tags", "old").status().code() == Code::kNotFound);
  CHECK(store.Get("audit", "0001").value() == "second");
  CHECK(store.Write(WriteBatch()).ok());
}

TEST_CASE("meta store: scans by prefix in byte order after a key", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "rocksdb");
  INFO(kind);
  StoreUnderTest t(kind);
  MetaStore& store = *t.store;
  const std::vector<std::string> keys = {"a", "a/1", "a/2", "a/10", "a/b/1", "a0", "b/1", "b/2", "c"};
  WriteBatch batch;
  for (const auto& k : keys) batch.Put("tags", k, "v" + k);
  batch.Put("repos", "a/9", "other family");
  REQUIRE(store.Write(batch).ok());

  struct Case {
    std::string prefix;
    std::string start_after;
    std::vector<std::string> want;
  };
  const Case cases[] = {
      {"", "", {"a", "a/1", "a/10", "a/2", "a/b/1", "a0", "b/1", "b/2", "c"}},
      {"a/", "", {"a/1", "a/10", "a/2", "a/b/1"}},
      {"a/", "a/10", {"a/2", "a/b/1"}},
      {"a/", "a/11", {"a/2", "a/b/1"}},  // start_after need not exist
      {"a/", "a", {"a/1", "a/10", "a/2", "a/b/1"}},  // before the prefix
      {"a/", "a/b/1", {}},
      {"a/", "b", {}},  // past the prefix
      {"b/", "", {"b/1", "b/2"}},
      {"", "b/1", {"b/2", "c"}},
      {"z", "", {}},
      {"a/b/1", "", {"a/b/1"}},
  };
  for (const auto& c : cases) {
    INFO("prefix '" << c.prefix << "' after '" << c.start_after << "'");
    std::vector<std::string> got;
    for (const auto& [k, v] : ScanAll(store, "tags", c.prefix, c.start_after)) {
      CHECK(v == "v" + k);
      got.push_back(k);
    }
    CHECK(got == c.want);
  }
  CHECK(ScanAll(store, "tags", "", "", 3).size() == 3);
}

TEST_CASE("meta store: concurrent writers all land", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "rocksdb");
  INFO(kind);
  StoreUnderTest t(kind);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < 25; ++j) {
        WriteBatch b;
        b.Put("jobs", std::to_string(i) + "/" + std::to_string(j), "x");
        b.Put("log", std::to_string(i) + "/" + std::to_string(j), "y");
        CHECK(t.store->Write(b).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(ScanAll(*t.store, "jobs", "").size() == 100);
  CHECK(ScanAll(*t.store, "log", "").size() == 100);
}

TEST_CASE("rocksdb meta store: reopening keeps data in every family", "[storage]") {
  testing::TempDir dir;
  const std::string path = dir.Sub("meta");
  {
    auto store = std::move(OpenRocksMetaStore(path)).value();
    WriteBatch batch;
    for (const auto& cf : DefaultColumnFamilies()) batch.Put(cf, "key", cf);
    REQUIRE(store->Write(batch).ok());
    REQUIRE(store->Delete("meta", "key").ok());
  }
  for (int round = 0; round < 2; ++round) {
    auto store = OpenRocksMetaStore(path);
    REQUIRE(store.ok());
    for (const auto& cf : DefaultColumnFamilies()) {
      INFO(cf);
      if (cf == "meta") {
        CHECK((*store)->Get(cf, "key").status().code() == Code::kNotFound);
      } else {
        CHECK((*store)->Get(cf, "key").value() == cf);
      }
    }
    CHECK((*store)->CheckHealth().ok());
  }
}

TEST_CASE("rocksdb meta store: a second open of one path is unavailable", "[storage]") {
  testing::TempDir dir;
  const std::string path = dir.Sub("meta");
  auto first = OpenRocksMetaStore(path);
  REQUIRE(first.ok());
  REQUIRE((*first)->Put("repos", "r", "1").ok());
  auto second = OpenRocksMetaStore(path);
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == Code::kUnavailable);
  CHECK(second.status().message().find("already open") != std::string::npos);
  // The first handle is unharmed, and once closed the path opens again.
  CHECK((*first)->Get("repos", "r").value() == "1");
  first = core::Unavailable("closed");
  auto third = OpenRocksMetaStore(path);
  REQUIRE(third.ok());
  CHECK((*third)->Get("repos", "r").value() == "1");
}

TEST_CASE("rocksdb meta store: a path under a regular file cannot be opened", "[storage]") {
  testing::TempDir dir;
  REQUIRE(OpenRocksMetaStore(dir.Sub("meta")).ok());
  auto bad = OpenRocksMetaStore(dir.Sub("meta/CURRENT/db"));
  CHECK_FALSE(bad.ok());
}

}  // namespace
}  // namespace sigil::storage
