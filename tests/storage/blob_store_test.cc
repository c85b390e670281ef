// The BlobStore contract, run against the memory and the filesystem store,
// then what only the filesystem store promises (layout, fds, recovery).
#include "storage/blob_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <thread>
#include <vector>

#include "core/fs.h"
#include "core/random.h"
#include "storage/fs_blob_store.h"
#include "tests/support/temp_dir.h"

namespace sigil::storage {
namespace {

using core::Code;

std::string RandomBytes(size_t n) {
  std::string s(n, '\0');
  core::RandomBytes(s.data(), n);
  return s;
}

// One store under test, with the directory it lives in.
struct StoreUnderTest {
  std::string kind;
  testing::TempDir dir;
  std::unique_ptr<BlobStore> store;

  explicit StoreUnderTest(std::string k) : kind(std::move(k)) {
    if (kind == "memory") {
      store = NewMemoryBlobStore();
    } else {
      auto opened = OpenFsBlobStore(dir.Sub("root"));
      REQUIRE(opened.ok());
      store = std::move(opened).value();
    }
  }
};

std::string ReadAll(BlobReader& reader) {
  std::string out(reader.size(), '\0');
  uint64_t pos = 0;
  while (pos < out.size()) {
    auto n = reader.ReadAt(pos, out.data() + pos, out.size() - pos);
    REQUIRE(n.ok());
    REQUIRE(*n > 0);
    pos += *n;
  }
  return out;
}

size_t CountBlobs(BlobStore& store) {
  size_t n = 0;
  REQUIRE(store.ForEach([&](const BlobInfo&) {
    ++n;
    return true;
  }).ok());
  return n;
}

size_t CountStaging(BlobStore& store) {
  size_t n = 0;
  REQUIRE(store.ForEachStaging([&](const std::string&) {
    ++n;
    return true;
  }).ok());
  return n;
}

TEST_CASE("blob store: put stat read delete", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "fs");
  INFO(kind);
  StoreUnderTest t(kind);
  BlobStore& store = *t.store;

  std::string data = RandomBytes(10000);
  core::Digest digest = core::Sha256::Of(data);
  CHECK(store.Stat(digest).status().code() == Code::kNotFound);
  CHECK(store.Open(digest).status().code() == Code::kNotFound);

  REQUIRE(store.Put(digest, data).ok());
  REQUIRE(store.Put(digest, data).ok());  // idempotent
  auto info = store.Stat(digest);
  REQUIRE(info.ok());
  CHECK(info->digest == digest);
  CHECK(info->size == data.size());
  CHECK(info->mtime_micros > 0);

  auto reader = store.Open(digest);
  REQUIRE(reader.ok());
  CHECK((*reader)->size() == data.size());
  CHECK(ReadAll(**reader) == data);
  CHECK(CountBlobs(store) == 1);

  REQUIRE(store.Delete(digest).ok());
  CHECK(store.Stat(digest).status().code() == Code::kNotFound);
  CHECK(store.Delete(digest).code() == Code::kNotFound);
  // An open reader keeps the bytes readable after the delete.
  CHECK(ReadAll(**reader) == data);
  CHECK(CountBlobs(store) == 0);
}

TEST_CASE("blob store: the empty blob is a blob", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "fs");
  INFO(kind);
  StoreUnderTest t(kind);
  core::Digest digest = core::Sha256::Of("");
  REQUIRE(t.store->Put(digest, "").ok());
  CHECK(t.store->Stat(digest)->size == 0);
  char c;
  CHECK(t.store->Open(digest).value()->ReadAt(0, &c, 1).value() == 0);
}

TEST_CASE("blob store: range reads at arbitrary offsets", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "fs");
  INFO(kind);
  StoreUnderTest t(kind);
  const std::string data = RandomBytes(300'000);
  core::Digest digest = core::Sha256::Of(data);
  REQUIRE(t.store->Put(digest, data).ok());
  auto reader = std::move(t.store->Open(digest)).value();

  struct Case {
    uint64_t offset;
    size_t n;
  };
  const Case cases[] = {
      {0, 1}, {0, 300'000}, {1, 10}, {4095, 2}, {65'536, 65'536}, {123'457, 99'999},
      {299'999, 1}, {299'990, 100}, {150'000, 1'000'000},
  };
  for (const auto& c : cases) {
    INFO("offset " << c.offset << " n " << c.n);
    std::string buf(c.n, '\0');
    size_t want = std::min<uint64_t>(c.n, data.size() - c.offset);
    size_t got = 0;
    while (got < want) {
      auto n = reader->ReadAt(c.offset + got, buf.data() + got, c.n - got);
      REQUIRE(n.ok());
      REQUIRE(*n > 0);
      got += *n;
    }
    CHECK(got == want);
    CHECK(buf.substr(0, got) == data.substr(c.offset, want));
  }
  char c;
  CHECK(reader->ReadAt(data.size(), &c, 1).value() == 0);
  CHECK(reader->ReadAt(data.size() + 100, &c, 1).value() == 0);
}

TEST_CASE("blob store: a digest mismatch stores nothing", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "fs");
  INFO(kind);
  StoreUnderTest t(kind);
  std::string data = RandomBytes(5000);
  core::Digest wrong = core::Sha256::Of("something else");
  core::Status s = t.store->Put(wrong, data);
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(s.reason() == "DIGEST_MISMATCH");
  CHECK(t.store->Stat(wrong).status().code() == Code::kNotFound);
  CHECK(t.store->Stat(core::Sha256::Of(data)).status().code() == Code::kNotFound);
  CHECK(CountBlobs(*t.store) == 0);
}

TEST_CASE("blob store: ForEach visits every blob and stops when told", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "fs");
  INFO(kind);
  StoreUnderTest t(kind);
  std::map<core::Digest, size_t> want;
  for (int i = 0; i < 20; ++i) {
    std::string data = RandomBytes(static_cast<size_t>(i) * 37);
    want[core::Sha256::Of(data)] = data.size();
    REQUIRE(t.store->Put(core::Sha256::Of(data), data).ok());
  }
  std::map<core::Digest, size_t> seen;
  REQUIRE(t.store->ForEach([&](const BlobInfo& info) {
    seen[info.digest] = info.size;
    return true;
  }).ok());
  CHECK(seen == want);

  int visited = 0;
  REQUIRE(t.store->ForEach([&](const BlobInfo&) { return ++visited < 3; }).ok());
  CHECK(visited == 3);
}

TEST_CASE("blob store: concurrent puts of one blob all succeed with one copy", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "fs");
  INFO(kind);
  StoreUnderTest t(kind);
  const std::string data = RandomBytes(2 << 20);
  const core::Digest digest = core::Sha256::Of(data);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int round = 0; round < 5; ++round) {
        if (t.store->Put(digest, data).ok()) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(ok == 40);
  CHECK(CountBlobs(*t.store) == 1);
  CHECK(ReadAll(*t.store->Open(digest).value()) == data);
}

TEST_CASE("blob store: staging builds a blob", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "fs");
  INFO(kind);
  StoreUnderTest t(kind);
  BlobStore& store = *t.store;
  const std::string data = RandomBytes(100'000);
  const core::Digest digest = core::Sha256::Of(data);

  REQUIRE(store.CreateStaging("up-1").ok());
  CHECK(store.CreateStaging("up-1").code() == Code::kAlreadyExists);
  CHECK(store.StagingSize("up-1").value() == 0);
  REQUIRE(store.WriteStaging("up-1", 0, std::string_view(data).substr(0, 40'000)).ok());
  REQUIRE(store.WriteStaging("up-1", 40'000, std::string_view(data).substr(40'000)).ok());
  REQUIRE(store.SyncStaging("up-1").ok());
  CHECK(store.StagingSize("up-1").value() == data.size());
  CHECK(ReadAll(*store.OpenStaging("up-1").value()) == data);
  CHECK(CountStaging(store) == 1);
  // Staged bytes are not a blob yet.
  CHECK(store.Stat(digest).status().code() == Code::kNotFound);

  REQUIRE(store.CommitStaging("up-1", digest).ok());
  CHECK(store.Stat(digest)->size == data.size());
  CHECK(ReadAll(*store.Open(digest).value()) == data);
  CHECK(store.StagingSize("up-1").status().code() == Code::kNotFound);
  CHECK(CountStaging(store) == 0);
}

TEST_CASE("blob store: truncating staging drops the tail only", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "fs");
  INFO(kind);
  StoreUnderTest t(kind);
  REQUIRE(t.store->CreateStaging("t").ok());
  REQUIRE(t.store->WriteStaging("t", 0, "hello, world").ok());
  REQUIRE(t.store->TruncateStaging("t", 5).ok());
  CHECK(ReadAll(*t.store->OpenStaging("t").value()) == "hello");
  REQUIRE(t.store->TruncateStaging("t", 50).ok());  // never grows
  CHECK(t.store->StagingSize("t").value() == 5);
}

TEST_CASE("blob store: committing a digest that exists keeps one copy and drops the staging", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "fs");
  INFO(kind);
  StoreUnderTest t(kind);
  const std::string data = RandomBytes(4096);
  const core::Digest digest = core::Sha256::Of(data);
  REQUIRE(t.store->Put(digest, data).ok());
  REQUIRE(t.store->CreateStaging("again").ok());
  REQUIRE(t.store->WriteStaging("again", 0, data).ok());
  REQUIRE(t.store->CommitStaging("again", digest).ok());
  CHECK(CountBlobs(*t.store) == 1);
  CHECK(CountStaging(*t.store) == 0);
  CHECK(ReadAll(*t.store->Open(digest).value()) == data);
}

TEST_CASE("blob store: unknown and malformed staging ids", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "fs");
  INFO(kind);
  StoreUnderTest t(kind);
  BlobStore& store = *t.store;
  const core::Digest digest = core::Sha256::Of("x");

  CHECK(store.StagingSize("nope").status().code() == Code::kNotFound);
  CHECK(store.WriteStaging("nope", 0, "x").code() == Code::kNotFound);
  CHECK(store.TruncateStaging("nope", 0).code() == Code::kNotFound);
  CHECK(store.SyncStaging("nope").code() == Code::kNotFound);
  CHECK(store.OpenStaging("nope").status().code() == Code::kNotFound);
  CHECK(store.CommitStaging("nope", digest).code() == Code::kNotFound);
  CHECK(store.RemoveStaging("nope").ok());

  const std::string bad[] = {"", "..", "../blobs", "a/b", "UPPER", "with space", "dot.ted",
                             std::string(65, 'a'), std::string("nul\0x", 5)};
  for (const auto& id : bad) {
    INFO("id '" << id << "'");
    CHECK(store.CreateStaging(id).code() == Code::kInvalidArgument);
    CHECK(store.StagingSize(id).status().code() == Code::kInvalidArgument);
    CHECK(store.WriteStaging(id, 0, "x").code() == Code::kInvalidArgument);
    CHECK(store.TruncateStaging(id, 0).code() == Code::kInvalidArgument);
    CHECK(store.SyncStaging(id).code() == Code::kInvalidArgument);
    CHECK(store.OpenStaging(id).status().code() == Code::kInvalidArgument);
    CHECK(store.CommitStaging(id, digest).code() == Code::kInvalidArgument);
    CHECK(store.RemoveStaging(id).code() == Code::kInvalidArgument);
  }
  CHECK(store.CreateStaging(std::string(64, 'a')).ok());
  CHECK(store.CreateStaging("0123456789-abcdefghijklmnopqrstuvwxyz").ok());
  CHECK(CountStaging(store) == 2);
  CHECK(store.CheckHealth().ok());
}

// Filesystem-only promises below.

std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(name);
  }
  ::closedir(d);
  return out;
}

TEST_CASE("fs blob store: on-disk layout fd readers and reopening", "[storage]") {
  testing::TempDir dir;
  const std::string root = dir.Sub("root");
  const std::string data = RandomBytes(70'000);
  const core::Digest digest = core::Sha256::Of(data);
  {
    auto store = std::move(OpenFsBlobStore(root)).value();
    REQUIRE(store->Put(digest, data).ok());
    REQUIRE(store->CreateStaging("kept").ok());
    REQUIRE(store->WriteStaging("kept", 0, "partial").ok());
  }
  const std::string path = root + "/blobs/sha256/" + digest.Hex().substr(0, 2) + "/" + digest.Hex();
  CHECK(core::ReadFile(path).value() == data);
  CHECK(core::ReadFile(root + "/uploads/kept").value() == "partial");

  auto store = std::move(OpenFsBlobStore(root)).value();
  CHECK(store->Stat(digest)->size == data.size());
  CHECK(ReadAll(*store->OpenStaging("kept").value()) == "partial");
  auto reader = std::move(store->Open(digest)).value();
  REQUIRE(reader->fd() >= 0);
  std::string buf(100, '\0');
  REQUIRE(::pread(reader->fd(), buf.data(), buf.size(), 1000) == 100);
  CHECK(buf == data.substr(1000, 100));
}

TEST_CASE("fs blob store: walks past stray files and clears interrupted writes", "[storage]") {
  testing::TempDir dir;
  const std::string root = dir.Sub("root");
  const std::string data = RandomBytes(1000);
  const core::Digest digest = core::Sha256::Of(data);
  {
    auto store = std::move(OpenFsBlobStore(root)).value();
    REQUIRE(store->Put(digest, data).ok());
  }
  const std::string hex = core::Sha256::Of("other").Hex();
  // A put interrupted by a crash, and files no store would write.
  REQUIRE(core::WriteFileAtomic(root + "/tmp/" + hex + ".0123abcd", "half").ok());
  REQUIRE(core::WriteFileAtomic(root + "/blobs/sha256/" + hex.substr(0, 2) + "/" + hex + ".tmp", "x").ok());
  REQUIRE(core::WriteFileAtomic(root + "/blobs/sha256/00/" + hex, "wrong prefix").ok());
  REQUIRE(core::WriteFileAtomic(root + "/uploads/Not.An.Id", "x").ok());

  auto store = std::move(OpenFsBlobStore(root)).value();
  CHECK(FilesUnder(root + "/tmp").empty());
  std::vector<core::Digest> seen;
  REQUIRE(store->ForEach([&](const BlobInfo& info) {
    seen.push_back(info.digest);
    return true;
  }).ok());
  CHECK(seen == std::vector<core::Digest>{digest});
  CHECK(CountStaging(*store) == 0);
}

TEST_CASE("fs blob store: concurrent puts leave no temp files", "[storage]") {
  testing::TempDir dir;
  auto store = std::move(OpenFsBlobStore(dir.Sub("root"))).value();
  const std::string data = RandomBytes(1 << 20);
  const core::Digest digest = core::Sha256::Of(data);
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) threads.emplace_back([&] { CHECK(store->Put(digest, data).ok()); });
  for (auto& th : threads) th.join();
  CHECK(FilesUnder(dir.Sub("root/tmp")).empty());
  CHECK(FilesUnder(dir.Sub("root/blobs/sha256/" + digest.Hex().substr(0, 2))) ==
        std::vector<std::string>{digest.Hex()});
}

TEST_CASE("fs blob store: health fails when a directory is gone", "[storage]") {
  testing::TempDir dir;
  auto store = std::move(OpenFsBlobStore(dir.Sub("root"))).value();
  REQUIRE(store->CheckHealth().ok());
  CHECK(FilesUnder(dir.Sub("root/uploads")).empty());  // the probe cleans up
  REQUIRE(core::RemoveTree(dir.Sub("root/uploads")).ok());
  CHECK_FALSE(store->CheckHealth().ok());
}

TEST_CASE("fs blob store: a root that is a file cannot be opened", "[storage]") {
  testing::TempDir dir;
  REQUIRE(core::WriteFileAtomic(dir.Sub("file"), "x").ok());
  CHECK_FALSE(OpenFsBlobStore(dir.Sub("file")).ok());
}

TEST_CASE("fs blob store: writes that would eat into the reserve are refused before they start", "[storage]") {
  testing::TempDir dir;
  // A reserve no disk has: every write of blob bytes is refused.
  auto store = std::move(OpenFsBlobStore(dir.Sub("root"), {.reserve_bytes = uint64_t{1} << 62})).value();
  const std::string bytes = "model weights";
  const core::Digest digest = core::Sha256::Of(bytes);
  core::Status s = store->Put(digest, bytes);
  CHECK(s.code() == core::Code::kResourceExhausted);
  CHECK(s.reason() == "INSUFFICIENT_STORAGE");
  CHECK(store->Stat(digest).status().code() == core::Code::kNotFound);
  CHECK(FilesUnder(dir.Sub("root/tmp")).empty());
  REQUIRE(store->CreateStaging("s1").ok());
  CHECK(store->WriteStaging("s1", 0, bytes).code() == core::Code::kResourceExhausted);
  CHECK(store->StagingSize("s1").value() == 0);
  // Reads, deletes and commits of what is already there need no room.
  REQUIRE(store->CommitStaging("s1", core::Sha256::Of("")).ok());
  CHECK(store->Stat(core::Sha256::Of("")).ok());
  REQUIRE(store->Delete(core::Sha256::Of("")).ok());

  // Without a reserve the same write goes through.
  auto open = std::move(OpenFsBlobStore(dir.Sub("root"))).value();
  REQUIRE(open->Put(digest, bytes).ok());
}

}  // namespace
}  // namespace sigil::storage
