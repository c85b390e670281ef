// A real full disk: the filesystem blob store on a 1 MiB tmpfs. Mounting
// needs root (CAP_SYS_ADMIN); where that is not available the test says so
// and checks nothing, and the fault-injection tests in uploads_test.cc
// still cover the same paths.
#include <sys/mount.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>

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
  explicit SmallTmpfs(const std::string& path) : path_(path) {
    REQUIRE(core::MakeDirs(path_).ok());
    mounted_ = ::mount("tmpfs", path_.c_str(), "tmpfs", 0, "size=1m") == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~SmallTmpfs() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
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

}  // namespace
}  // namespace sigil::storage
