#include "core/random.h"

#include <cstdlib>
#include <vector>

#include <openssl/rand.h>

#include "core/digest.h"

namespace sigil::core {

void RandomBytes(void* buf, size_t n) {
  // RAND_bytes only fails when the system entropy source is unusable; there
  // is no safe way to continue without randomness.
  if (RAND_bytes(static_cast<unsigned char*>(buf), static_cast<int>(n)) != 1) std::abort();
}

std::string RandomHex(size_t n) {
  std::vector<unsigned char> bytes(n);
  RandomBytes(bytes.data(), n);
  return HexEncode(bytes.data(), n);
}

}  // namespace sigil::core
