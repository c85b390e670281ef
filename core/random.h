// Cryptographically secure random bytes (OpenSSL RAND).
#pragma once

#include <cstddef>
#include <string>

namespace sigil::core {

// n random bytes as 2n lowercase hex characters.
std::string RandomHex(size_t n);
// Fills buf with random bytes.
void RandomBytes(void* buf, size_t n);

}  // namespace sigil::core
