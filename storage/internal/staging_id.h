// The staging id grammar shared by every BlobStore: [a-z0-9-]{1,64}. Ids end
// up in file names, so anything else ("..", "/", empty) is refused before it
// reaches the filesystem. Internal to storage/.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace sigil::storage {

inline bool IsValidStagingId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

inline core::Status CheckStagingId(std::string_view id) {
  if (IsValidStagingId(id)) return core::OkStatus();
  return core::InvalidArgument("staging id must match [a-z0-9-]{1,64}", "STAGING_ID_INVALID");
}

}  // namespace sigil::storage
