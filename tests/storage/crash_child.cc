// The process the crash test kills: uploads crash::Chunk(0..) into a new
// session over real stores at argv[1], printing "id <id>" and then
// "ack <offset>" after every acknowledged append, until it is killed.
#include <cstdio>
#include <string>

#include "core/clock.h"
#include "storage/fs_blob_store.h"
#include "storage/rocks_meta_store.h"
#include "storage/uploads.h"
#include "tests/storage/crash_data.h"

int main(int argc, char** argv) {
  using namespace sigil;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  auto blobs = storage::OpenFsBlobStore(dir + "/data");
  auto meta = storage::OpenRocksMetaStore(dir + "/meta");
  if (!blobs.ok() || !meta.ok()) {
    std::fprintf(stderr, "open: %s %s\n", blobs.status().ToString().c_str(), meta.status().ToString().c_str());
    return 1;
  }
  storage::UploadManager uploads(blobs->get(), meta->get(), core::Clock::Real(), storage::UploadOptions{});
  auto created = uploads.Create();
  if (!created.ok()) {
    std::fprintf(stderr, "create: %s\n", created.status().ToString().c_str());
    return 1;
  }
  std::printf("id %s\n", created->id.c_str());
  std::fflush(stdout);
  uint64_t offset = 0;
  for (int k = 0; k < storage::crash::kChunks; ++k) {
    auto info = uploads.Append(created->id, offset, storage::crash::Chunk(k));
    if (!info.ok()) {
      std::fprintf(stderr, "append: %s\n", info.status().ToString().c_str());
      return 1;
    }
    offset = info->offset;
    std::printf("ack %llu\n", static_cast<unsigned long long>(offset));
    std::fflush(stdout);
  }
  return 0;
}
