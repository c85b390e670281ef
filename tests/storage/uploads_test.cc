// Upload sessions over the memory stores and over the real ones (filesystem
// blobs, RocksDB metadata), including restarts, torn chunks, expiry and a
// full disk.
#include "storage/uploads.h"

#include <catch2/catch.hpp>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "core/fs.h"
#include "core/json.h"
#include "core/random.h"
#include "storage/fs_blob_store.h"
#include "storage/rocks_meta_store.h"
#include "tests/support/fault_blob_store.h"
#include "tests/support/temp_dir.h"

namespace sigil::storage {
namespace {

using core::Code;

std::string RandomBytes(size_t n) {
  std::string s(n, '\0');
  core::RandomBytes(s.data(), n);
  return s;
}

// Stores, a manual clock and an UploadManager that can be torn down and
// reopened over the same directory, as a restarted server would.
class Harness {
 public:
  explicit Harness(std::string kind, UploadOptions options = {}) : kind_(std::move(kind)), options_(options) {
    Open();
  }

  void Open() {
    if (kind_ == "memory") {
      blobs_ = NewMemoryBlobStore();
      meta_ = NewMemoryMetaStore();
    } else {
      auto blobs = OpenFsBlobStore(dir_.Sub("data"));
      REQUIRE(blobs.ok());
      blobs_ = std::move(blobs).value();
      auto meta = OpenRocksMetaStore(dir_.Sub("meta"));
      REQUIRE(meta.ok());
      meta_ = std::move(meta).value();
    }
    fault_ = std::make_unique<testing::FaultBlobStore>(blobs_.get());
    uploads_ = std::make_unique<UploadManager>(fault_.get(), meta_.get(), &clock_, options_);
  }

  // Everything goes away, as in a process exit; the disk stays.
  void Restart() {
    uploads_.reset();
    fault_.reset();
    meta_.reset();
    blobs_.reset();
    Open();
  }

  UploadManager& uploads() { return *uploads_; }
  BlobStore& blobs() { return *blobs_; }
  MetaStore& meta() { return *meta_; }
  testing::FaultBlobStore& fault() { return *fault_; }
  core::ManualClock& clock() { return clock_; }
  const testing::TempDir& dir() const { return dir_; }

 private:
  std::string kind_;
  UploadOptions options_;
  testing::TempDir dir_;
  core::ManualClock clock_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<MetaStore> meta_;
  std::unique_ptr<testing::FaultBlobStore> fault_;
  std::unique_ptr<UploadManager> uploads_;
};

std::string ReadBlob(BlobStore& blobs, const core::Digest& digest) {
  auto reader = std::move(blobs.Open(digest)).value();
  std::string out(reader->size(), '\0');
  uint64_t pos = 0;
  while (pos < out.size()) pos += reader->ReadAt(pos, out.data() + pos, out.size() - pos).value();
  return out;
}

size_t CountStaging(BlobStore& blobs) {
  size_t n = 0;
  REQUIRE(blobs.ForEachStaging([&](const std::string&) {
    ++n;
    return true;
  }).ok());
  return n;
}

size_t CountBlobs(BlobStore& blobs) {
  size_t n = 0;
  REQUIRE(blobs.ForEach([&](const BlobInfo&) {
    ++n;
    return true;
  }).ok());
  return n;
}

TEST_CASE("uploads: create append in chunks commit", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "disk");
  INFO(kind);
  Harness h(kind);
  UploadManager& up = h.uploads();
  const std::string data = RandomBytes(250'000);
  const core::Digest digest = core::Sha256::Of(data);

  auto created = up.Create();
  REQUIRE(created.ok());
  const std::string id = created->id;
  CHECK(id.size() == 32);
  CHECK(created->offset == 0);
  CHECK(created->created_micros == h.clock().NowMicros());
  CHECK(up.OpenCount() == 1);

  uint64_t offset = 0;
  for (size_t chunk : {100'000, 1, 99'999, 50'000}) {
    h.clock().Advance(1000);
    auto info = up.Append(id, offset, std::string_view(data).substr(offset, chunk));
    REQUIRE(info.ok());
    offset += chunk;
    CHECK(info->offset == offset);
    CHECK(info->updated_micros == h.clock().NowMicros());
    CHECK(up.Get(id)->offset == offset);
  }
  // An empty append changes nothing.
  CHECK(up.Append(id, offset, "").value().offset == offset);

  auto blob = up.Commit(id, digest);
  REQUIRE(blob.ok());
  CHECK(blob->digest == digest);
  CHECK(blob->size == data.size());
  CHECK(ReadBlob(h.blobs(), digest) == data);
  CHECK(up.OpenCount() == 0);
  CHECK(CountStaging(h.blobs()) == 0);
  CHECK(up.Get(id).status().reason() == "UPLOAD_UNKNOWN");
  CHECK(up.Commit(id, digest).status().code() == Code::kNotFound);
}

TEST_CASE("uploads: commit may carry the last chunk and an empty blob commits", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "disk");
  INFO(kind);
  Harness h(kind);
  UploadManager& up = h.uploads();
  const std::string data = RandomBytes(9000);
  auto id = up.Create().value().id;
  REQUIRE(up.Append(id, 0, std::string_view(data).substr(0, 4000)).ok());
  auto blob = up.Commit(id, core::Sha256::Of(data), std::string_view(data).substr(4000));
  REQUIRE(blob.ok());
  CHECK(ReadBlob(h.blobs(), blob->digest) == data);

  auto empty = up.Create().value().id;
  auto none = up.Commit(empty, core::Sha256::Of(""));
  REQUIRE(none.ok());
  CHECK(none->size == 0);
  CHECK(up.OpenCount() == 0);
}

TEST_CASE("uploads: a wrong start reports the committed offset", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "disk");
  INFO(kind);
  Harness h(kind);
  UploadManager& up = h.uploads();
  auto id = up.Create().value().id;
  REQUIRE(up.Append(id, 0, "0123456789").ok());

  for (uint64_t start : {0ull, 5ull, 11ull, 1000ull}) {
    INFO("start " << start);
    auto r = up.Append(id, start, "abc");
    CHECK(r.status().code() == Code::kOutOfRange);
    CHECK(r.status().reason() == "UPLOAD_OFFSET_MISMATCH");
    auto detail = core::ParseJson(r.status().detail());
    REQUIRE(detail.ok());
    CHECK(core::GetUint(*detail, "offset").value() == 10);
  }
  // Nothing was written by the refused appends.
  CHECK(up.Get(id)->offset == 10);
  CHECK(h.blobs().StagingSize(id).value() == 10);
  CHECK(up.Commit(id, core::Sha256::Of("0123456789")).ok());
}

TEST_CASE("uploads: size limits per chunk and per session", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "disk");
  INFO(kind);
  UploadOptions options;
  options.chunk_max = 100;
  options.session_max = 250;
  Harness h(kind, options);
  UploadManager& up = h.uploads();
  auto id = up.Create().value().id;

  auto big = up.Append(id, 0, std::string(101, 'x'));
  CHECK(big.status().code() == Code::kResourceExhausted);
  CHECK(big.status().reason() == "CHUNK_TOO_LARGE");
  CHECK(up.Commit(id, core::Sha256::Of(""), std::string(101, 'x')).status().reason() == "CHUNK_TOO_LARGE");
  CHECK(up.Get(id)->offset == 0);

  REQUIRE(up.Append(id, 0, std::string(100, 'x')).ok());
  REQUIRE(up.Append(id, 100, std::string(100, 'x')).ok());
  auto over = up.Append(id, 200, std::string(51, 'x'));
  CHECK(over.status().code() == Code::kResourceExhausted);
  CHECK(over.status().reason() == "UPLOAD_TOO_LARGE");
  CHECK(up.Get(id)->offset == 200);
  REQUIRE(up.Append(id, 200, std::string(50, 'x')).ok());  // exactly the limit
  CHECK(up.Commit(id, core::Sha256::Of(std::string(250, 'x'))).ok());
}

TEST_CASE("uploads: a digest mismatch deletes the session and its bytes", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "disk");
  INFO(kind);
  Harness h(kind);
  UploadManager& up = h.uploads();
  const std::string data = RandomBytes(5000);
  const core::Digest expected = core::Sha256::Of("not the data");
  auto id = up.Create().value().id;
  REQUIRE(up.Append(id, 0, data).ok());

  auto r = up.Commit(id, expected);
  CHECK(r.status().code() == Code::kInvalidArgument);
  CHECK(r.status().reason() == "DIGEST_MISMATCH");
  auto detail = core::ParseJson(r.status().detail());
  REQUIRE(detail.ok());
  CHECK(core::GetString(*detail, "expected").value() == expected.ToString());
  CHECK(core::GetString(*detail, "actual").value() == core::Sha256::Of(data).ToString());

  CHECK(up.Get(id).status().reason() == "UPLOAD_UNKNOWN");
  CHECK(up.OpenCount() == 0);
  CHECK(CountStaging(h.blobs()) == 0);
  CHECK(CountBlobs(h.blobs()) == 0);
  CHECK(h.meta().Get(kUploadsCf, id).status().code() == Code::kNotFound);
}

TEST_CASE("uploads: a failed commit can be retried", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "disk");
  INFO(kind);
  Harness h(kind);
  UploadManager& up = h.uploads();
  const std::string data = RandomBytes(3000);
  auto id = up.Create().value().id;
  REQUIRE(up.Append(id, 0, data).ok());
  h.fault().Fail(testing::FaultBlobStore::Op::kCommitStaging, EIO);
  CHECK(up.Commit(id, core::Sha256::Of(data)).status().code() == Code::kInternal);
  h.fault().Clear(testing::FaultBlobStore::Op::kCommitStaging);
  // The session survived, and its hash is rebuilt for the second attempt.
  CHECK(up.Get(id)->offset == data.size());
  auto blob = up.Commit(id, core::Sha256::Of(data));
  REQUIRE(blob.ok());
  CHECK(ReadBlob(h.blobs(), blob->digest) == data);
}

TEST_CASE("uploads: abort and ids that name no session", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "disk");
  INFO(kind);
  Harness h(kind);
  UploadManager& up = h.uploads();
  auto id = up.Create().value().id;
  REQUIRE(up.Append(id, 0, "some bytes").ok());
  REQUIRE(up.Abort(id).ok());
  CHECK(up.OpenCount() == 0);
  CHECK(CountStaging(h.blobs()) == 0);
  CHECK(up.Abort(id).code() == Code::kNotFound);

  const std::string unknown[] = {id, "0123456789abcdef0123456789abcdef", "", "../../etc", "A", std::string(65, 'a')};
  for (const auto& u : unknown) {
    INFO("id '" << u << "'");
    CHECK(up.Get(u).status().code() == Code::kNotFound);
    CHECK(up.Get(u).status().reason() == "UPLOAD_UNKNOWN");
    CHECK(up.Append(u, 0, "x").status().reason() == "UPLOAD_UNKNOWN");
    CHECK(up.Commit(u, core::Sha256::Of("x")).status().reason() == "UPLOAD_UNKNOWN");
    CHECK(up.Abort(u).reason() == "UPLOAD_UNKNOWN");
  }
}

TEST_CASE("uploads: committing a blob that already exists", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "disk");
  INFO(kind);
  Harness h(kind);
  const std::string data = RandomBytes(20'000);
  const core::Digest digest = core::Sha256::Of(data);
  REQUIRE(h.blobs().Put(digest, data).ok());
  for (int i = 0; i < 2; ++i) {
    auto id = h.uploads().Create().value().id;
    REQUIRE(h.uploads().Append(id, 0, data).ok());
    auto blob = h.uploads().Commit(id, digest);
    REQUIRE(blob.ok());
    CHECK(blob->size == data.size());
  }
  CHECK(CountBlobs(h.blobs()) == 1);
  CHECK(CountStaging(h.blobs()) == 0);
  CHECK(ReadBlob(h.blobs(), digest) == data);
}

TEST_CASE("uploads: sessions run in parallel and one session's appends serialize", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "disk");
  INFO(kind);
  Harness h(kind);
  UploadManager& up = h.uploads();

  std::vector<std::string> datas;
  for (int i = 0; i < 4; ++i) datas.push_back(RandomBytes(40'000 + static_cast<size_t>(i)));
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto id = up.Create().value().id;
      const std::string& data = datas[static_cast<size_t>(i)];
      for (uint64_t off = 0; off < data.size(); off += 7000) {
        CHECK(up.Append(id, off, std::string_view(data).substr(off, 7000)).ok());
      }
      CHECK(up.Commit(id, core::Sha256::Of(data)).ok());
    });
  }
  for (auto& t : threads) t.join();
  threads.clear();
  for (const auto& data : datas) CHECK(ReadBlob(h.blobs(), core::Sha256::Of(data)) == data);

  // Racing appends at the same offset: exactly one wins each round.
  auto id = up.Create().value().id;
  std::atomic<int> wins{0}, mismatches{0};
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      for (int round = 0; round < 10; ++round) {
        auto r = up.Append(id, static_cast<uint64_t>(round) * 10, std::string(10, static_cast<char>('a' + i)));
        if (r.ok()) {
          ++wins;
        } else if (r.status().reason() == "UPLOAD_OFFSET_MISMATCH") {
          ++mismatches;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const uint64_t offset = up.Get(id)->offset;
  CHECK(offset == static_cast<uint64_t>(wins) * 10);
  CHECK(wins + mismatches == 60);
  // Whatever interleaving happened, the staged bytes and the hash agree.
  auto reader = std::move(h.blobs().OpenStaging(id)).value();
  std::string staged(offset, '\0');
  REQUIRE(reader->ReadAt(0, staged.data(), staged.size()).value() == offset);
  CHECK(up.Commit(id, core::Sha256::Of(staged)).ok());
}

TEST_CASE("uploads: an upload resumes after a restart", "[storage]") {
  Harness h("disk");
  const std::string data = RandomBytes(300'000);
  const core::Digest digest = core::Sha256::Of(data);
  std::string id;
  {
    auto created = h.uploads().Create();
    REQUIRE(created.ok());
    id = created->id;
    REQUIRE(h.uploads().Append(id, 0, std::string_view(data).substr(0, 100'000)).ok());
    REQUIRE(h.uploads().Append(id, 100'000, std::string_view(data).substr(100'000, 100'000)).ok());
  }
  h.Restart();
  UploadManager& up = h.uploads();
  CHECK(up.OpenCount() == 1);
  auto info = up.Get(id);
  REQUIRE(info.ok());
  CHECK(info->offset == 200'000);
  CHECK(up.Append(id, 100'000, "x").status().reason() == "UPLOAD_OFFSET_MISMATCH");
  REQUIRE(up.Append(id, 200'000, std::string_view(data).substr(200'000)).ok());
  auto blob = up.Commit(id, digest);
  REQUIRE(blob.ok());
  CHECK(ReadBlob(h.blobs(), digest) == data);

  // A wrong digest after a restart is still caught: the rebuilt hash is real.
  auto id2 = up.Create().value().id;
  REQUIRE(up.Append(id2, 0, "abc").ok());
  h.Restart();
  CHECK(h.uploads().Commit(id2, core::Sha256::Of("abd")).status().reason() == "DIGEST_MISMATCH");
}

TEST_CASE("uploads: a torn chunk past the recorded offset is dropped on reload", "[storage]") {
  Harness h("disk");
  const std::string data = RandomBytes(50'000);
  std::string id = h.uploads().Create().value().id;
  REQUIRE(h.uploads().Append(id, 0, std::string_view(data).substr(0, 30'000)).ok());
  h.Restart();
  // A chunk the server wrote but never acknowledged before it died.
  REQUIRE(h.blobs().WriteStaging(id, 30'000, RandomBytes(12'345)).ok());
  REQUIRE(h.blobs().StagingSize(id).value() == 42'345);

  CHECK(h.uploads().Get(id)->offset == 30'000);
  CHECK(h.blobs().StagingSize(id).value() == 30'000);
  REQUIRE(h.uploads().Append(id, 30'000, std::string_view(data).substr(30'000)).ok());
  auto blob = h.uploads().Commit(id, core::Sha256::Of(data));
  REQUIRE(blob.ok());
  CHECK(ReadBlob(h.blobs(), blob->digest) == data);
}

TEST_CASE("uploads: a record whose bytes were already committed is dropped", "[storage]") {
  Harness h("disk");
  const std::string data = RandomBytes(1000);
  const core::Digest digest = core::Sha256::Of(data);
  std::string id = h.uploads().Create().value().id;
  REQUIRE(h.uploads().Append(id, 0, data).ok());
  // A crash after the bytes moved into place, before the record was deleted.
  REQUIRE(h.blobs().CommitStaging(id, digest).ok());
  h.Restart();
  CHECK(h.uploads().Get(id).status().reason() == "UPLOAD_UNKNOWN");
  CHECK(h.uploads().OpenCount() == 0);
  CHECK(ReadBlob(h.blobs(), digest) == data);
}

TEST_CASE("uploads: idle sessions and orphaned staging expire", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "disk");
  INFO(kind);
  UploadOptions options;
  options.expiry_micros = 3600ll * 1'000'000;
  Harness h(kind, options);
  UploadManager& up = h.uploads();
  auto idle = up.Create().value().id;
  auto busy = up.Create().value().id;
  REQUIRE(up.Append(idle, 0, "idle bytes").ok());
  // Staging with no record: a crash between the two steps of Create.
  REQUIRE(h.blobs().CreateStaging("orphan").ok());

  CHECK(up.ExpireIdle().value() == 1);  // only the orphan
  CHECK(up.OpenCount() == 2);
  CHECK(CountStaging(h.blobs()) == 2);

  h.clock().Advance(options.expiry_micros - 1'000'000);
  REQUIRE(up.Append(busy, 0, "still here").ok());
  CHECK(up.ExpireIdle().value() == 0);
  h.clock().Advance(2'000'000);  // idle is now past the expiry, busy is not
  CHECK(up.ExpireIdle().value() == 1);
  CHECK(up.OpenCount() == 1);
  CHECK(up.Get(idle).status().reason() == "UPLOAD_UNKNOWN");
  CHECK(h.blobs().StagingSize(idle).status().code() == Code::kNotFound);
  CHECK(up.Get(busy)->offset == 10);

  // Past its expiry a session is gone even before a sweep runs.
  h.clock().Advance(options.expiry_micros + 1);
  CHECK(up.Append(busy, 10, "late").status().reason() == "UPLOAD_UNKNOWN");
  CHECK(up.OpenCount() == 0);
  CHECK(CountStaging(h.blobs()) == 0);
  CHECK(up.ExpireIdle().value() == 0);
}

TEST_CASE("uploads: sessions not yet loaded after a restart expire too", "[storage]") {
  UploadOptions options;
  options.expiry_micros = 1'000'000;
  Harness h("disk", options);
  for (int i = 0; i < 3; ++i) {
    auto id = h.uploads().Create().value().id;
    REQUIRE(h.uploads().Append(id, 0, "bytes").ok());
  }
  h.Restart();
  h.clock().Advance(2'000'000);
  CHECK(h.uploads().ExpireIdle().value() == 3);
  CHECK(h.uploads().OpenCount() == 0);
  CHECK(CountStaging(h.blobs()) == 0);
}

TEST_CASE("uploads: a full disk is reported and leaves no half-state", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "disk");
  INFO(kind);
  Harness h(kind);
  UploadManager& up = h.uploads();
  using Op = testing::FaultBlobStore::Op;
  const std::string data = RandomBytes(60'000);
  const core::Digest digest = core::Sha256::Of(data);
  auto id = up.Create().value().id;
  REQUIRE(up.Append(id, 0, std::string_view(data).substr(0, 20'000)).ok());

  SECTION("a staging write that runs out of space part way") {
    h.fault().Fail(Op::kWriteStaging, ENOSPC, 7'000);
    auto r = up.Append(id, 20'000, std::string_view(data).substr(20'000, 20'000));
    CHECK(r.status().code() == Code::kResourceExhausted);
    CHECK(r.status().reason() == "INSUFFICIENT_STORAGE");
    CHECK(h.fault().failures(Op::kWriteStaging) == 1);
  }
  SECTION("an fsync that runs out of space") {
    h.fault().Fail(Op::kSyncStaging, ENOSPC);
    auto r = up.Append(id, 20'000, std::string_view(data).substr(20'000, 20'000));
    CHECK(r.status().code() == Code::kResourceExhausted);
    CHECK(r.status().reason() == "INSUFFICIENT_STORAGE");
  }
  SECTION("a commit whose last chunk runs out of space") {
    h.fault().Fail(Op::kWriteStaging, EDQUOT, 100);
    auto r = up.Commit(id, digest, std::string_view(data).substr(20'000, 20'000));
    CHECK(r.status().code() == Code::kResourceExhausted);
    CHECK(r.status().reason() == "INSUFFICIENT_STORAGE");
  }
  // The acknowledged offset stands and the partial tail is gone.
  CHECK(up.Get(id)->offset == 20'000);
  CHECK(h.blobs().StagingSize(id).value() == 20'000);
  CHECK(h.blobs().Stat(digest).status().code() == Code::kNotFound);
  CHECK(CountBlobs(h.blobs()) == 0);

  // Space comes back: the client resumes and the blob is exact.
  h.fault().Clear(Op::kWriteStaging);
  h.fault().Clear(Op::kSyncStaging);
  REQUIRE(up.Append(id, 20'000, std::string_view(data).substr(20'000, 20'000)).ok());
  auto blob = up.Commit(id, digest, std::string_view(data).substr(40'000));
  REQUIRE(blob.ok());
  CHECK(ReadBlob(h.blobs(), digest) == data);
}

// A chunk source handing out a string in uneven pieces, optionally failing
// (as a client that goes away) after a number of bytes.
class PieceSource : public ChunkSource {
 public:
  PieceSource(std::string_view data, size_t piece, size_t fail_after = SIZE_MAX)
      : data_(data), piece_(piece), fail_after_(fail_after) {}
  core::Result<size_t> Read(char* buf, size_t n) override {
    if (pos_ >= fail_after_) return core::Unavailable("the client went away", "BODY_INCOMPLETE");
    size_t k = std::min({n, piece_, data_.size() - pos_, fail_after_ - pos_});
    std::memcpy(buf, data_.data() + pos_, k);
    pos_ += k;
    return k;
  }

 private:
  std::string_view data_;
  size_t piece_;
  size_t fail_after_;
  size_t pos_ = 0;
};

TEST_CASE("uploads: a streamed chunk is written and hashed as it arrives", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "disk");
  INFO(kind);
  // chunk_max does not bound a streamed chunk; session_max does.
  Harness h(kind, UploadOptions{.chunk_max = 1000, .session_max = 12'000'000});
  UploadManager& up = h.uploads();
  const std::string data = RandomBytes(10'000'000);  // more than one 4 MiB piece
  const core::Digest digest = core::Sha256::Of(data);
  auto id = up.Create().value().id;
  // A buffered chunk, then a streamed one in odd pieces, then a commit.
  REQUIRE(up.Append(id, 0, std::string_view(data).substr(0, 777)).ok());
  PieceSource source(std::string_view(data).substr(777), 4093);
  auto info = up.AppendFrom(id, 777, source);
  REQUIRE(info.ok());
  CHECK(info->offset == data.size());
  auto blob = up.Commit(id, digest);
  REQUIRE(blob.ok());
  CHECK(ReadBlob(h.blobs(), digest) == data);
}

TEST_CASE("uploads: a streamed chunk that fails leaves the session as it was", "[storage]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "disk");
  INFO(kind);
  Harness h(kind, UploadOptions{.chunk_max = 1000, .session_max = 6'000'000});
  UploadManager& up = h.uploads();
  const std::string data = RandomBytes(5'000'000);
  const core::Digest digest = core::Sha256::Of(data);
  auto id = up.Create().value().id;
  REQUIRE(up.Append(id, 0, std::string_view(data).substr(0, 1000)).ok());

  SECTION("the client goes away after a full piece was written") {
    PieceSource source(std::string_view(data).substr(1000), 65536, 4'500'000);
    CHECK(up.AppendFrom(id, 1000, source).status().reason() == "BODY_INCOMPLETE");
  }
  SECTION("a start that is not the offset") {
    PieceSource source(std::string_view(data).substr(1000), 65536);
    CHECK(up.AppendFrom(id, 999, source).status().reason() == "UPLOAD_OFFSET_MISMATCH");
  }
  SECTION("more than session_max") {
    const std::string more = RandomBytes(5'999'500);
    PieceSource source(more, 1 << 20);
    CHECK(up.AppendFrom(id, 1000, source).status().reason() == "UPLOAD_TOO_LARGE");
  }
  SECTION("the disk fills part way") {
    h.fault().Fail(testing::FaultBlobStore::Op::kWriteStaging, ENOSPC, 1000);
    PieceSource source(std::string_view(data).substr(1000), 65536);
    CHECK(up.AppendFrom(id, 1000, source).status().reason() == "INSUFFICIENT_STORAGE");
    h.fault().Clear(testing::FaultBlobStore::Op::kWriteStaging);
  }
  CHECK(up.Get(id)->offset == 1000);
  CHECK(h.blobs().StagingSize(id).value() == 1000);
  // The running hash was rebuilt: the rest streams in and the blob is exact.
  PieceSource rest(std::string_view(data).substr(1000), 100'000);
  REQUIRE(up.AppendFrom(id, 1000, rest).ok());
  REQUIRE(up.Commit(id, digest).ok());
  CHECK(ReadBlob(h.blobs(), digest) == data);
}

}  // namespace
}  // namespace sigil::storage
