// Range (RFC 9110 14.2) and upload Content-Range headers.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "core/status.h"

namespace sigil::api {

struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
};

// Parses one "bytes=a-b", "bytes=a-" or "bytes=-n" against a resource of
// size bytes. Returns nullopt-free results:
//   kInvalidArgument (RANGE_INVALID) for a malformed header or several ranges,
//   kOutOfRange (RANGE_NOT_SATISFIABLE) when it selects nothing.
core::Result<ByteRange> ParseRange(std::string_view header, uint64_t size);

struct UploadRange {
  uint64_t start = 0;
  std::optional<uint64_t> end;  // inclusive; absent for "<start>-"
};

// Upload chunk position: "<start>-<end>" or "bytes <start>-<end>[/<total|*>]"
// (inclusive end). kInvalidArgument (RANGE_INVALID) when malformed.
core::Result<UploadRange> ParseContentRange(std::string_view header);

}  // namespace sigil::api
