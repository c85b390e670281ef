// Fuzzes the Range and upload Content-Range header parsers (api/range.h).
// Input: 8 bytes of resource size (big-endian; the first byte's top bits
// pick a small size so that satisfiable ranges are common), then the header.
// Invariants: a range that parses is non-empty and lies within the size;
// written back as "bytes=<first>-<last>" it parses to itself; errors are
// RANGE_INVALID or RANGE_NOT_SATISFIABLE; an upload range's end is not
// before its start, and written back it parses to itself.
#include <string>

#include "api/range.h"
#include "tests/fuzz/check.h"

using sigil::fuzz::Check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  uint64_t resource = 0;
  for (int i = 0; i < 8; ++i) resource = (resource << 8) | data[i];
  if ((data[0] & 0xc0) == 0) resource %= 1000;
  std::string_view header = sigil::fuzz::AsText(data + 8, size - 8);

  auto range = sigil::api::ParseRange(header, resource);
  if (range.ok()) {
    Check(range->length >= 1);
    Check(range->offset < resource && range->length <= resource - range->offset);
    std::string again = "bytes=" + std::to_string(range->offset) + "-" +
                        std::to_string(range->offset + range->length - 1);
    auto reparsed = sigil::api::ParseRange(again, resource);
    // Written back, the numbers may need 20 digits, which the parser refuses.
    if (range->offset + range->length - 1 < 10'000'000'000'000'000'000ull) {
      Check(reparsed.ok() && reparsed->offset == range->offset && reparsed->length == range->length);
    }
  } else {
    auto code = range.status().code();
    Check(code == sigil::core::Code::kInvalidArgument || code == sigil::core::Code::kOutOfRange);
    Check(range.status().reason() == (code == sigil::core::Code::kOutOfRange ? "RANGE_NOT_SATISFIABLE"
                                                                             : "RANGE_INVALID"));
  }

  auto upload = sigil::api::ParseContentRange(header);
  if (upload.ok()) {
    std::string again = "bytes " + std::to_string(upload->start) + "-";
    if (upload->end) {
      Check(*upload->end >= upload->start);
      again += std::to_string(*upload->end);
    }
    auto reparsed = sigil::api::ParseContentRange(again);
    Check(reparsed.ok() && reparsed->start == upload->start && reparsed->end == upload->end);
  } else {
    Check(upload.status().reason() == "RANGE_INVALID");
  }
  return 0;
}
