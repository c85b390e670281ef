// The token hash comparison of registry/access.cc, exposed for its tests.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

namespace sigil::registry::internal {

// Whether a and b are equal, in time that depends only on their lengths.
bool ConstantTimeEqual(std::string_view a, std::string_view b);
// How often ConstantTimeEqual ran: tests check that an unknown token id pays
// for a comparison as a known one does.
extern std::atomic<uint64_t> token_hash_comparisons;

}  // namespace sigil::registry::internal
