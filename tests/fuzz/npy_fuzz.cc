// Fuzzes the scanner on NumPy .npy headers (and object arrays' pickles); the corpus keeps the inputs in that format.
// See scan_target.h for the invariants.
#include "tests/fuzz/scan_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return sigil::fuzz::ScanOneInput(data, size);
}
