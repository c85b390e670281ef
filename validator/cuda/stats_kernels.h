// Internal to validator/: CUDA reductions behind a plain C++ interface (no
// CUDA types), compiled only when nvcc was found (SIGIL_HAVE_CUDA).
//
// A Session owns device memory, four pinned host buffers and a stream; it is
// used by one thread at a time. Each call copies the given elements to the
// device, reduces them there into per-block partials and merges those on
// the host, so results carry no state between calls other than `acc`.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "validator/stats_internal.h"

namespace sigil::validator::cuda {

// Whether the runtime sees at least one device; any CUDA error (no driver,
// cudaErrorInsufficientDriver, no device) counts as none.
bool DeviceAvailable();
// The name of device 0, or empty.
std::string DeviceName();

class Session {
 public:
  // Reserves room for pieces of up to max_bytes bytes a side. Returns null
  // with *error set when the device refuses.
  static std::unique_ptr<Session> Open(size_t max_bytes, std::string* error);
  virtual ~Session() = default;

  // Pinned host memory of max_bytes, i in [0, 4): read pieces into these so
  // copies to the device run at full speed.
  virtual char* HostBuffer(int i) = 0;

  // Adds n elements of type t at host to acc.
  // REQUIRES: n * ElemSize(t) <= max_bytes.
  virtual bool Stats(const char* host, internal::Elem t, size_t n, internal::StatsAcc* acc, std::string* error) = 0;
  // Adds n element pairs to diff, and side a's elements to stats_a.
  virtual bool Diff(const char* a, internal::Elem ta, const char* b, internal::Elem tb, size_t n,
                    internal::StatsAcc* stats_a, internal::DiffAcc* diff, std::string* error) = 0;
};

}  // namespace sigil::validator::cuda
