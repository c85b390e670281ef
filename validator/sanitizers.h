// Sanitizer builds (cmake -DSIGIL_SANITIZE=ON, for tests) and the worker.
//
// AddressSanitizer reserves terabytes of shadow address space when a process
// starts, so a sanitized sigil-validator cannot start under any RLIMIT_AS a
// spec may ask for. In ASan builds RunInWorker therefore sets no RLIMIT_AS and
// passes the memory limit to ASan instead (soft_rss_limit_mb with
// allocator_may_return_null): once the worker's resident memory reaches it,
// its allocations fail, and the outcome says "out of memory" as it does at
// RLIMIT_AS. ASan samples RSS about every 100 ms, so there the limit can be
// passed by what the model allocates in that time.
//
// In sanitizer builds RunInWorker also copies a sanitizer report from the
// worker's stderr to its own stderr (sigild's log), where tests look for one.
#pragma once

#include <string_view>

namespace sigil::validator {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizerBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizerBuild = true;
#else
inline constexpr bool kAddressSanitizerBuild = false;
#endif
#else
inline constexpr bool kAddressSanitizerBuild = false;
#endif

// GCC has no macro for UBSan; SIGIL_SANITIZE turns on ASan and UBSan together.
#if defined(__has_feature)
#if __has_feature(undefined_behavior_sanitizer)
inline constexpr bool kSanitizerBuild = true;
#else
inline constexpr bool kSanitizerBuild = kAddressSanitizerBuild;
#endif
#else
inline constexpr bool kSanitizerBuild = kAddressSanitizerBuild;
#endif

// Whether text (a worker's stderr, an outcome's error) holds an ASan, LSan
// or UBSan report: a bug, unlike ASan's out-of-memory, which in ASan builds is
// how the memory limit stops a worker.
bool HoldsSanitizerReport(std::string_view text);

}  // namespace sigil::validator
