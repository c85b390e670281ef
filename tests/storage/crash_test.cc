// kill -9 in the middle of an upload: a child process (crash_child.cc)
// appends chunks over real stores and is SIGKILLed at a random moment; the
// parent reopens the stores and checks that every acknowledged chunk is
// there, that the recorded offset's bytes are exactly the uploaded prefix,
// and that the upload resumes and commits to the right digest.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "storage/fs_blob_store.h"
#include "storage/rocks_meta_store.h"
#include "storage/uploads.h"
#include "tests/storage/crash_data.h"
#include "tests/support/temp_dir.h"

namespace sigil::storage {
namespace {

struct ChildRun {
  std::string id;
  uint64_t last_ack = 0;
  int acks = 0;
};

// Runs the child until it has acknowledged `kill_after` appends (plus a
// random few milliseconds), then SIGKILLs it and collects what it printed.
ChildRun RunAndKill(const std::string& dir, int kill_after, int extra_micros) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const std::string child = std::string(SIGIL_BINARY_DIR) + "/tests/storage/storage_crash_child";
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    ::execl(child.c_str(), child.c_str(), dir.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  FILE* out = ::fdopen(fds[0], "r");
  REQUIRE(out != nullptr);

  ChildRun run;
  char line[256];
  bool killed = false;
  auto kill_child = [&] {
    if (killed) return;
    std::this_thread::sleep_for(std::chrono::microseconds(extra_micros));
    ::kill(pid, SIGKILL);
    killed = true;
  };
  // After the kill, lines already in the pipe are still acknowledgements.
  while (std::fgets(line, sizeof(line), out) != nullptr) {
    std::string text(line);
    if (text.rfind("id ", 0) == 0) {
      run.id = text.substr(3, text.size() - 4);
    } else if (text.rfind("ack ", 0) == 0) {
      run.last_ack = std::stoull(text.substr(4));
      if (run.acks == 0) {
        // The child holds the database: another process cannot open it.
        auto second = OpenRocksMetaStore(dir + "/meta");
        CHECK(second.status().code() == core::Code::kUnavailable);
      }
      if (++run.acks >= kill_after) kill_child();
    }
  }
  std::fclose(out);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  // Either the kill landed, or the child finished every chunk first.
  if (killed && WIFSIGNALED(status)) {
    CHECK(WTERMSIG(status) == SIGKILL);
  } else {
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
  }
  return run;
}

TEST_CASE("uploads: kill -9 mid-upload loses at most the unacknowledged chunk", "[storage]") {
  std::vector<uint64_t> boundaries = {0};
  std::string all;
  for (int k = 0; k < crash::kChunks; ++k) {
    all += crash::Chunk(k);
    boundaries.push_back(all.size());
  }
  const core::Digest digest = core::Sha256::Of(all);

  std::mt19937 rng(std::random_device{}());
  for (int attempt = 0; attempt < 3; ++attempt) {
    const int kill_after = std::uniform_int_distribution<int>(1, 40)(rng);
    const int extra_micros = std::uniform_int_distribution<int>(0, 3000)(rng);
    INFO("attempt " << attempt << ": kill after " << kill_after << " acks + " << extra_micros << " us");
    testing::TempDir dir;
    ChildRun run = RunAndKill(dir.path(), kill_after, extra_micros);
    REQUIRE(run.id.size() == 32);
    REQUIRE(run.acks >= kill_after);

    auto blobs = std::move(OpenFsBlobStore(dir.Sub("data"))).value();
    auto meta = std::move(OpenRocksMetaStore(dir.Sub("meta"))).value();
    UploadManager uploads(blobs.get(), meta.get(), core::Clock::Real(), UploadOptions{});
    auto info = uploads.Get(run.id);
    REQUIRE(info.ok());
    const uint64_t offset = info->offset;
    INFO("last ack " << run.last_ack << ", recorded " << offset);
    // Every acknowledged byte survived; at most one more chunk was recorded
    // whose acknowledgement the kill swallowed.
    CHECK(offset >= run.last_ack);
    auto at = std::find(boundaries.begin(), boundaries.end(), offset);
    REQUIRE(at != boundaries.end());
    CHECK(at - std::find(boundaries.begin(), boundaries.end(), run.last_ack) <= 1);

    // The staged bytes are exactly the uploaded prefix, torn tail removed.
    REQUIRE(blobs->StagingSize(run.id).value() == offset);
    std::string staged(offset, '\0');
    auto reader = std::move(blobs->OpenStaging(run.id)).value();
    uint64_t pos = 0;
    while (pos < offset) pos += reader->ReadAt(pos, staged.data() + pos, offset - pos).value();
    CHECK(core::Sha256::Of(staged) == core::Sha256::Of(std::string_view(all).substr(0, offset)));

    // Resume from the recorded offset and commit.
    for (size_t k = static_cast<size_t>(at - boundaries.begin()); k < static_cast<size_t>(crash::kChunks); ++k) {
      REQUIRE(uploads.Append(run.id, boundaries[k], crash::Chunk(static_cast<int>(k))).ok());
    }
    auto blob = uploads.Commit(run.id, digest);
    REQUIRE(blob.ok());
    CHECK(blob->size == all.size());
    CHECK(core::HashFile(dir.Sub("data/blobs/sha256/" + digest.Hex().substr(0, 2) + "/" + digest.Hex())).value() ==
          digest);
  }
}

}  // namespace
}  // namespace sigil::storage
