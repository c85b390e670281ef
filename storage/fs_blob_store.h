// The filesystem BlobStore: blobs at <root>/blobs/sha256/<2 hex>/<64 hex>,
// staging areas at <root>/uploads/<id>. Commits fsync the file, rename it
// into place, and fsync the directory.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "storage/blob_store.h"

namespace sigil::storage {

// Creates the directories when missing.
core::Result<std::unique_ptr<BlobStore>> OpenFsBlobStore(const std::string& root);

}  // namespace sigil::storage
