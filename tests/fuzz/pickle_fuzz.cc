// Fuzzes the scanner on pickle streams (protocols 0-5, legacy torch.save); the corpus keeps the inputs in that format.
// See scan_target.h for the invariants.
#include "tests/fuzz/scan_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return sigil::fuzz::ScanOneInput(data, size);
}
