// The filesystem BlobStore: blobs at <root>/blobs/sha256/<2 hex>/<64 hex>,
// staging areas at <root>/uploads/<id>. Commits fsync the file, rename it
// into place, and fsync the directory.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "storage/blob_store.h"

namespace sigil::storage {

struct FsBlobStoreOptions {
  // Bytes of the filesystem kept free: a write that would leave less is
  // refused (kResourceExhausted, INSUFFICIENT_STORAGE) before it starts, so a
  // disk filled by blobs still has room for metadata, including the deletes
  // that free space. 0: no reserve.
  uint64_t reserve_bytes = 0;
};

// Creates the directories when missing.
core::Result<std::unique_ptr<BlobStore>> OpenFsBlobStore(const std::string& root,
                                                         const FsBlobStoreOptions& options = {});

}  // namespace sigil::storage
