// A real full disk: the filesystem blob store on a 1 MiB tmpfs. Mounting
// needs root (CAP_SYS_ADMIN); where that is not available the test says so
// and checks nothing, and the fault-injection tests in uploads_test.cc
// still cover the same paths.
#include <sys/mount.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <thread>

#include "core/fs.h"
#include "core/random.h"
#include "storage/fs_blob_store.h"
#include "storage/rocks_meta_store.h"
#include "storage/uploads.h"
#include "tests/support/temp_dir.h"

namespace sigil::storage {
namespace {

using core::Code;

class SmallTmpfs {
 public:
  explicit SmallTmpfs(const std::string& path, const std::string& size = "1m") : path_(path) {
    REQUIRE(core::MakeDirs(path_).ok());
    mounted_ = ::mount("tmpfs", path_.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~SmallTmpfs() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  bool Resize(const std::string& size) {
    return ::mount("tmpfs", path_.c_str(), "tmpfs", MS_REMOUNT, ("size=" + size).c_str()) == 0;
  }
  const std::string& error() const { return error_; }

 private:
  std::string path_;
  bool mounted_ = false;
  std::string error_;
};

std::string RandomBytes(size_t n) {
  std::string s(n, '\0');
  core::RandomBytes(s.data(), n);
  return s;
}

TEST_CASE("fs blob store: a really full disk fails cleanly and recovers", "[storage]") {
  testing::TempDir dir;
  SmallTmpfs fs(dir.Sub("small"));
  if (!fs.mounted()) {
    WARN("cannot mount a tmpfs here (" << fs.error() << "); disk-full test skipped");
    return;
  }
  auto blobs = std::move(OpenFsBlobStore(dir.Sub("small/root"))).value();
  auto meta = std::move(OpenRocksMetaStore(dir.Sub("meta"))).value();

  // A blob bigger than the disk: refused, and nothing is left behind.
  const std::string big = RandomBytes(2 << 20);
  core::Status s = blobs->Put(core::Sha256::Of(big), big);
  CHECK(s.code() == Code::kResourceExhausted);
  CHECK(s.reason() == "INSUFFICIENT_STORAGE");
  CHECK(blobs->Stat(core::Sha256::Of(big)).status().code() == Code::kNotFound);
  size_t leftovers = 0;
  REQUIRE(blobs->ForEach([&](const BlobInfo&) {
    ++leftovers;
    return true;
  }).ok());
  CHECK(leftovers == 0);
  // The failed write's space came back.
  const std::string small = RandomBytes(300'000);
  REQUIRE(blobs->Put(core::Sha256::Of(small), small).ok());
  REQUIRE(blobs->Delete(core::Sha256::Of(small)).ok());

  UploadManager uploads(blobs.get(), meta.get(), core::Clock::Real(), UploadOptions{});
  const std::string data = RandomBytes(700'000);
  auto id = uploads.Create().value().id;
  REQUIRE(uploads.Append(id, 0, std::string_view(data).substr(0, 500'000)).ok());
  auto r = uploads.Append(id, 500'000, RandomBytes(600'000));
  CHECK(r.status().code() == Code::kResourceExhausted);
  CHECK(r.status().reason() == "INSUFFICIENT_STORAGE");
  CHECK(uploads.Get(id)->offset == 500'000);
  CHECK(blobs->StagingSize(id).value() == 500'000);

  REQUIRE(uploads.Append(id, 500'000, std::string_view(data).substr(500'000)).ok());
  auto blob = uploads.Commit(id, core::Sha256::Of(data));
  REQUIRE(blob.ok());
  CHECK(blob->size == data.size());
}

TEST_CASE("fs blob store: the free-space reserve refuses blob bytes before the disk is full", "[storage]") {
  testing::TempDir dir;
  SmallTmpfs fs(dir.Sub("small"), "16m");
  if (!fs.mounted()) {
    WARN("cannot mount a tmpfs here (" << fs.error() << "); disk-full test skipped");
    return;
  }
  auto blobs = std::move(OpenFsBlobStore(dir.Sub("small/root"), {.reserve_bytes = 4 << 20})).value();
  auto meta = std::move(OpenRocksMetaStore(dir.Sub("small/meta"))).value();  // takes about 4 MiB
  const std::string first = RandomBytes(6 << 20);
  core::Status stored = blobs->Put(core::Sha256::Of(first), first);
  INFO(stored.ToString());
  REQUIRE(stored.ok());
  const std::string second = RandomBytes(3 << 20);
  core::Status s = blobs->Put(core::Sha256::Of(second), second);
  INFO(s.ToString());
  CHECK(s.code() == Code::kResourceExhausted);
  CHECK(s.reason() == "INSUFFICIENT_STORAGE");
  CHECK(s.message().find("kept free") != std::string::npos);
  CHECK(blobs->Stat(core::Sha256::Of(second)).status().code() == Code::kNotFound);

  UploadManager uploads(blobs.get(), meta.get(), core::Clock::Real(), UploadOptions{});
  auto id = uploads.Create().value().id;
  auto r = uploads.Append(id, 0, second);
  CHECK(r.status().code() == Code::kResourceExhausted);
  CHECK(uploads.Get(id)->offset == 0);
  // The reserve is there for metadata: it still takes writes.
  for (int i = 0; i < 100; ++i) REQUIRE(meta->Put("meta", "k" + std::to_string(i), RandomBytes(4096)).ok());
  // Freeing space lets blobs in again.
  REQUIRE(blobs->Delete(core::Sha256::Of(first)).ok());
  REQUIRE(blobs->Put(core::Sha256::Of(second), second).ok());
}

TEST_CASE("rocks meta store: a full disk refuses writes cleanly, reads go on, writes resume without a restart",
          "[storage]") {
  testing::TempDir dir;
  SmallTmpfs fs(dir.Sub("small"), "2m");
  if (!fs.mounted()) {
    WARN("cannot mount a tmpfs here (" << fs.error() << "); disk-full test skipped");
    return;
  }
  const std::string path = dir.Sub("small/meta");
  auto meta = std::move(OpenRocksMetaStore(path)).value();
  auto key = [](int i) { return "k" + std::to_string(i); };
  std::map<std::string, std::string> acknowledged;
  int next = 0;
  core::Status refused;
  for (; next < 2000; ++next) {
    std::string value = RandomBytes(4096);
    core::Status s = meta->Put("meta", key(next), value);
    if (!s.ok()) {
      refused = s;
      break;
    }
    acknowledged[key(next)] = value;
  }
  INFO(refused.ToString());
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.code() == Code::kResourceExhausted);
  CHECK(refused.reason() == "INSUFFICIENT_STORAGE");
  REQUIRE(acknowledged.size() > 10);

  // Later writes are refused the same way, reads go on, health says why.
  for (int i = 0; i < 5; ++i) {
    core::Status s = meta->Put("meta", key(++next), "x");
    INFO(s.ToString());
    CHECK(s.code() == Code::kResourceExhausted);
  }
  for (const auto& [k, v] : acknowledged) {
    auto got = meta->Get("meta", k);
    REQUIRE(got.ok());
    CHECK(*got == v);
  }
  CHECK_FALSE(meta->CheckHealth().ok());

  // Space comes back: the same store takes writes again.
  REQUIRE(fs.Resize("64m"));
  core::Status resumed;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    resumed = meta->Put("meta", key(++next), "back");
    if (resumed.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (std::chrono::steady_clock::now() < until);
  INFO(resumed.ToString());
  REQUIRE(resumed.ok());
  acknowledged[key(next)] = "back";
  for (int i = 0; i < 20; ++i) {
    std::string value = RandomBytes(4096);
    REQUIRE(meta->Put("meta", key(++next), value).ok());
    acknowledged[key(next)] = value;
  }
  CHECK(meta->CheckHealth().ok());

  // Every acknowledged write is there, now and after a restart.
  for (int round = 0; round < 2; ++round) {
    for (const auto& [k, v] : acknowledged) {
      auto got = meta->Get("meta", k);
      REQUIRE(got.ok());
      CHECK(*got == v);
    }
    meta.reset();
    meta = std::move(OpenRocksMetaStore(path)).value();
  }
}

}  // namespace
}  // namespace sigil::storage
