// Measures the server-side ceilings of a push without HTTP in the way:
// SHA-256 over memory, and an upload session (append chunks, fsync, record
// the offset, commit) into the real filesystem blob store and RocksDB.
//
//   storage_bench [--size-mib N] [--chunk-mib N] [--dir DIR]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/digest.h"
#include "core/fs.h"
#include "core/random.h"
#include "storage/fs_blob_store.h"
#include "storage/rocks_meta_store.h"
#include "storage/uploads.h"

namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

int Fail(const sigil::core::Status& s) {
  std::fprintf(stderr, "storage_bench: %s\n", s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sigil;
  uint64_t size_mib = 1024, chunk_mib = 32;
  std::string dir = "/tmp/sigil-storage-bench";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--size-mib") == 0) size_mib = std::strtoull(argv[i + 1], nullptr, 10);
    if (std::strcmp(argv[i], "--chunk-mib") == 0) chunk_mib = std::strtoull(argv[i + 1], nullptr, 10);
    if (std::strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
  }
  const uint64_t chunk = chunk_mib << 20;
  const uint64_t total = size_mib << 20;
  std::string buf(chunk, '\0');
  core::RandomBytes(buf.data(), buf.size());

  // 1. SHA-256 over memory: the ceiling of any push.
  {
    core::Sha256 h;
    auto start = std::chrono::steady_clock::now();
    for (uint64_t done = 0; done < total; done += chunk) h.Update(buf.data(), chunk);
    h.Finish();
    double s = Seconds(start);
    std::printf("sha256 (core::Sha256, 1 core)      %8.0f MiB/s\n", size_mib / s);
  }

  // 2. An upload session into the real stores.
  core::RemoveTree(dir).IgnoreError();
  auto meta = storage::OpenRocksMetaStore(dir + "/meta");
  if (!meta.ok()) return Fail(meta.status());
  auto blobs = storage::OpenFsBlobStore(dir);
  if (!blobs.ok()) return Fail(blobs.status());
  storage::UploadOptions options;
  options.chunk_max = chunk;
  storage::UploadManager uploads(blobs->get(), meta->get(), core::Clock::Real(), options);
  auto session = uploads.Create();
  if (!session.ok()) return Fail(session.status());
  core::Sha256 expected;
  auto start = std::chrono::steady_clock::now();
  uint64_t offset = 0;
  for (; offset < total; offset += chunk) {
    buf[0] = static_cast<char>(offset >> 20);  // distinct chunks
    expected.Update(buf.data(), chunk);
    auto r = uploads.Append(session->id, offset, buf);
    if (!r.ok()) return Fail(r.status());
  }
  double append_s = Seconds(start);
  auto commit_start = std::chrono::steady_clock::now();
  auto blob = uploads.Commit(session->id, expected.Finish());
  if (!blob.ok()) return Fail(blob.status());
  double commit_s = Seconds(commit_start);
  std::printf("upload session append (hash+write+fsync+record, %llu MiB chunks) %8.0f MiB/s\n",
              static_cast<unsigned long long>(chunk_mib), size_mib / append_s);
  std::printf("upload session commit                 %8.3f s\n", commit_s);
  std::printf("upload session total                  %8.0f MiB/s\n", size_mib / (append_s + commit_s));
  core::RemoveTree(dir).IgnoreError();
  return 0;
}
