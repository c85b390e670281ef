// Positional reads of a blob as the scanner and the validator take them.
#pragma once

#include <functional>

#include "core/status.h"
#include "storage/blob_store.h"

namespace sigil::registry::internal {

// Fills out with exactly n bytes at offset of the blob `reader` reads
// (borrowed: it must outlive the function).
inline std::function<core::Status(uint64_t, size_t, char*)> ReadAtOf(storage::BlobReader* reader) {
  return [reader](uint64_t offset, size_t n, char* out) -> core::Status {
    while (n > 0) {
      ASSIGN_OR_RETURN(size_t got, reader->ReadAt(offset, out, n));
      if (got == 0) return core::DataLoss("blob shorter than its size");
      out += got;
      offset += got;
      n -= got;
    }
    return core::OkStatus();
  };
}

}  // namespace sigil::registry::internal
