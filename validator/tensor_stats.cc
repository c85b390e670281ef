#include "validator/tensor_stats.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <mutex>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "validator/stats_internal.h"
#if SIGIL_HAVE_CUDA
#include "validator/cuda/stats_kernels.h"
#endif

namespace sigil::validator {
namespace {

using internal::DiffAcc;
using internal::Elem;
using internal::StatsAcc;

// ---------------------------------------------------------------------------
// CPU kernels. GCC vector extensions fix the lane layout (eight independent
// float lanes, double accumulators in two halves) so that the loops are
// vectorised without -ffast-math, which would be needed for the compiler to
// reorder the reductions itself. Finiteness comes from the exponent bits as
// a lane mask, so there is no branch per element. The kernels are forced
// inline into an AVX2 entry point and a portable one, so each is compiled
// for its target.

using U32x8 = uint32_t __attribute__((vector_size(32)));
using I32x8 = int32_t __attribute__((vector_size(32)));
using F32x8 = float __attribute__((vector_size(32)));
using U16x8 = uint16_t __attribute__((vector_size(16)));
using F64x4 = double __attribute__((vector_size(32)));
using F64x8 = double __attribute__((vector_size(64)));
using U64x4 = uint64_t __attribute__((vector_size(32)));
using I64x4 = int64_t __attribute__((vector_size(32)));

#if defined(__x86_64__) && defined(__GNUC__)
#define SIGIL_X86 1
#else
#define SIGIL_X86 0
#endif
#define SIGIL_INLINE [[gnu::always_inline]] inline

constexpr uint32_t kAbs32 = 0x7fffffffu;
constexpr uint32_t kExp32 = 0x7f800000u;
constexpr uint64_t kAbs64 = 0x7fffffffffffffffull;
constexpr uint64_t kExp64 = 0x7ff0000000000000ull;
constexpr float kInfF = std::numeric_limits<float>::infinity();
constexpr double kInfD = std::numeric_limits<double>::infinity();
// Elements per block: vector lanes sum a block, blocks sum into the
// accumulator, which keeps rounding error small without compensation.
constexpr size_t kBlock = 4096;

// F16 -> F32 bits, exact (F. Giesen's method): shift exponent and mantissa
// into place and rebias; Inf/NaN get the F32 maximum exponent; zero and
// subnormals are renormalised by a float subtraction, which is exact.
SIGIL_INLINE uint32_t HalfToFloatBits(uint32_t h) {
  uint32_t o = (h & 0x7fffu) << 13;
  const uint32_t exp = o & (0x7c00u << 13);
  o += (127 - 15) << 23;
  if (exp == (0x7c00u << 13)) {
    o += (128 - 16) << 23;
  } else if (exp == 0) {
    o += 1 << 23;
    float f;
    std::memcpy(&f, &o, 4);
    f -= 6.103515625e-05f;  // 2^-14
    std::memcpy(&o, &f, 4);
  }
  return o | ((h & 0x8000u) << 16);
}

SIGIL_INLINE void HalfToFloatBits(const U16x8& h16, U32x8& out) {
  const U32x8 h = __builtin_convertvector(h16, U32x8);
  U32x8 o = (h & 0x7fffu) << 13;
  const U32x8 exp = o & (0x7c00u << 13);
  o += (127 - 15) << 23;
  const I32x8 special = exp == (0x7c00u << 13);
  const I32x8 small = exp == 0u;
  o += (U32x8)special & ((128 - 16) << 23);
  o += (U32x8)small & (1u << 23);
  const F32x8 renorm = (F32x8)o - 6.103515625e-05f;
  o = small ? (U32x8)renorm : o;
  out = o | ((h & 0x8000u) << 16);
}

// Loads element i (scalar) or elements i..i+7 (vector) as F32 bits.
template <Elem T>
SIGIL_INLINE uint32_t LoadBits(const char* p, size_t i) {
  if constexpr (T == Elem::kF32) {
    uint32_t v;
    std::memcpy(&v, p + 4 * i, 4);
    return v;
  } else {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    if constexpr (T == Elem::kBF16) return static_cast<uint32_t>(h) << 16;
    return HalfToFloatBits(h);
  }
}

template <Elem T>
SIGIL_INLINE void LoadBits8(const char* p, size_t i, U32x8& out) {
  if constexpr (T == Elem::kF32) {
    std::memcpy(&out, p + 4 * i, 32);
  } else {
    U16x8 h;
    std::memcpy(&h, p + 2 * i, 16);
    if constexpr (T == Elem::kBF16) {
      out = __builtin_convertvector(h, U32x8) << 16;
    } else {
      HalfToFloatBits(h, out);
    }
  }
}

// Through eight doubles: GCC 12 lowers a conversion of four floats to four
// doubles two lanes at a time, but this one to whole vector instructions.
SIGIL_INLINE void Widen(const F32x8& x, F64x4& lo, F64x4& hi) {
  const F64x8 d = __builtin_convertvector(x, F64x8);
  lo = __builtin_shufflevector(d, d, 0, 1, 2, 3);
  hi = __builtin_shufflevector(d, d, 4, 5, 6, 7);
}

SIGIL_INLINE double Sum4(const F64x4& v) { return (v[0] + v[1]) + (v[2] + v[3]); }

SIGIL_INLINE void AddScalar(uint32_t bits, StatsAcc* acc) {
  const uint32_t a = bits & kAbs32;
  if (a > kExp32) {
    ++acc->nan;
  } else if (a == kExp32) {
    ++acc->inf;
  } else {
    float f;
    std::memcpy(&f, &bits, 4);
    const double d = f;
    acc->min = std::min(acc->min, d);
    acc->max = std::max(acc->max, d);
    acc->sum += d;
    acc->sumsq += d * d;
  }
}

// Lane accumulators of one stream of eight elements.
struct Lanes8 {
  F32x8 mn = F32x8{} + kInfF;
  F32x8 mx = F32x8{} - kInfF;
  F64x4 s = {}, q = {};
};

SIGIL_INLINE void Step(const U32x8& bits, I32x8& nan, I32x8& inf, Lanes8& l) {
  const U32x8 a = bits & kAbs32;
  const I32x8 finite = a < kExp32;
  nan -= a > kExp32;
  inf -= a == kExp32;
  const F32x8 x = (F32x8)bits;
  // Non-finite lanes are replaced before the comparison, so that the
  // loop-carried chain is a single min (max) instruction.
  const F32x8 lo_x = finite ? x : kInfF, hi_x = finite ? x : -kInfF;
  l.mn = lo_x < l.mn ? lo_x : l.mn;
  l.mx = hi_x > l.mx ? hi_x : l.mx;
  const F32x8 xz = (F32x8)(bits & (U32x8)finite);
  F64x4 lo, hi;
  Widen(xz, lo, hi);
  // Halves added first: one accumulator each, so that two streams' worth
  // fit in the sixteen vector registers.
  l.s += lo + hi;
  l.q += lo * lo + hi * hi;
}

template <Elem T>
SIGIL_INLINE void StatsFloat(const char* p, size_t n, StatsAcc* acc) {
  size_t i = 0;
  while (n - i >= 8) {
    const size_t end = i + std::min(kBlock, (n - i) / 8 * 8);
    I32x8 nan = {}, inf = {};
    // Two independent streams halve the length of the dependency chains.
    Lanes8 a, b;
    for (; i + 16 <= end; i += 16) {
      U32x8 bits_a, bits_b;
      LoadBits8<T>(p, i, bits_a);
      LoadBits8<T>(p, i + 8, bits_b);
      Step(bits_a, nan, inf, a);
      Step(bits_b, nan, inf, b);
    }
    if (i < end) {
      U32x8 bits;
      LoadBits8<T>(p, i, bits);
      Step(bits, nan, inf, a);
      i += 8;
    }
    for (int k = 0; k < 8; ++k) {
      acc->nan += static_cast<uint64_t>(nan[k]);
      acc->inf += static_cast<uint64_t>(inf[k]);
      acc->min = std::min({acc->min, static_cast<double>(a.mn[k]), static_cast<double>(b.mn[k])});
      acc->max = std::max({acc->max, static_cast<double>(a.mx[k]), static_cast<double>(b.mx[k])});
    }
    acc->sum += Sum4(a.s + b.s);
    acc->sumsq += Sum4(a.q + b.q);
  }
  for (; i < n; ++i) AddScalar(LoadBits<T>(p, i), acc);
}

SIGIL_INLINE void StatsDouble(const char* p, size_t n, StatsAcc* acc) {
  size_t i = 0;
  while (n - i >= 8) {
    const size_t end = i + std::min(kBlock, (n - i) / 8 * 8);
    I64x4 nan = {}, inf = {};
    F64x4 mn0 = F64x4{} + kInfD, mn1 = mn0, mx0 = F64x4{} - kInfD, mx1 = mx0;
    F64x4 s0 = {}, s1 = {}, q0 = {}, q1 = {};
    for (; i < end; i += 8) {
      U64x4 b0, b1;
      std::memcpy(&b0, p + 8 * i, 32);
      std::memcpy(&b1, p + 8 * i + 32, 32);
      const U64x4 a0 = b0 & kAbs64, a1 = b1 & kAbs64;
      const I64x4 f0 = a0 < kExp64, f1 = a1 < kExp64;
      nan -= (a0 > kExp64) + (a1 > kExp64);
      inf -= (a0 == kExp64) + (a1 == kExp64);
      const F64x4 x0 = (F64x4)b0, x1 = (F64x4)b1;
      const F64x4 l0 = f0 ? x0 : kInfD, l1 = f1 ? x1 : kInfD, h0 = f0 ? x0 : -kInfD, h1 = f1 ? x1 : -kInfD;
      mn0 = l0 < mn0 ? l0 : mn0;
      mn1 = l1 < mn1 ? l1 : mn1;
      mx0 = h0 > mx0 ? h0 : mx0;
      mx1 = h1 > mx1 ? h1 : mx1;
      const F64x4 z0 = (F64x4)(b0 & (U64x4)f0), z1 = (F64x4)(b1 & (U64x4)f1);
      s0 += z0;
      s1 += z1;
      q0 += z0 * z0;
      q1 += z1 * z1;
    }
    for (int k = 0; k < 4; ++k) {
      acc->nan += static_cast<uint64_t>(nan[k]);
      acc->inf += static_cast<uint64_t>(inf[k]);
      acc->min = std::min({acc->min, mn0[k], mn1[k]});
      acc->max = std::max({acc->max, mx0[k], mx1[k]});
    }
    acc->sum += Sum4(s0 + s1);
    acc->sumsq += Sum4(q0 + q1);
  }
  for (; i < n; ++i) {
    uint64_t bits;
    std::memcpy(&bits, p + 8 * i, 8);
    const uint64_t a = bits & kAbs64;
    if (a > kExp64) {
      ++acc->nan;
    } else if (a == kExp64) {
      ++acc->inf;
    } else {
      double d;
      std::memcpy(&d, &bits, 8);
      acc->min = std::min(acc->min, d);
      acc->max = std::max(acc->max, d);
      acc->sum += d;
      acc->sumsq += d * d;
    }
  }
}

SIGIL_INLINE void StatsDispatch(const char* p, Elem t, size_t n, StatsAcc* acc) {
  switch (t) {
    case Elem::kF32: return StatsFloat<Elem::kF32>(p, n, acc);
    case Elem::kF16: return StatsFloat<Elem::kF16>(p, n, acc);
    case Elem::kBF16: return StatsFloat<Elem::kBF16>(p, n, acc);
    case Elem::kF64: return StatsDouble(p, n, acc);
  }
}

SIGIL_INLINE void AddPair(double a, double b, DiffAcc* acc) {
  if (!std::isfinite(a) || !std::isfinite(b)) return;
  acc->max_abs = std::max(acc->max_abs, std::fabs(a - b));
  acc->dot += a * b;
  acc->sumsq_a += a * a;
  acc->sumsq_b += b * b;
}

SIGIL_INLINE void DiffLanes(const F64x4& a, const F64x4& b, F64x4& mx, F64x4& dot, F64x4& qa, F64x4& qb) {
  const F64x4 d = (F64x4)((U64x4)(a - b) & kAbs64);
  mx = d > mx ? d : mx;
  dot += a * b;
  qa += a * a;
  qb += b * b;
}

template <Elem A, Elem B>
SIGIL_INLINE void DiffFloat(const char* pa, const char* pb, size_t n, DiffAcc* acc) {
  size_t i = 0;
  while (n - i >= 8) {
    const size_t end = i + std::min(kBlock, (n - i) / 8 * 8);
    F64x4 mx0 = {}, mx1 = {}, d0 = {}, d1 = {}, a0 = {}, a1 = {}, b0 = {}, b1 = {};
    for (; i < end; i += 8) {
      U32x8 ba, bb;
      LoadBits8<A>(pa, i, ba);
      LoadBits8<B>(pb, i, bb);
      const U32x8 finite = (U32x8)(((ba & kAbs32) < kExp32) & ((bb & kAbs32) < kExp32));
      F64x4 alo, ahi, blo, bhi;
      Widen((F32x8)(ba & finite), alo, ahi);
      Widen((F32x8)(bb & finite), blo, bhi);
      DiffLanes(alo, blo, mx0, d0, a0, b0);
      DiffLanes(ahi, bhi, mx1, d1, a1, b1);
    }
    for (int k = 0; k < 4; ++k) acc->max_abs = std::max({acc->max_abs, mx0[k], mx1[k]});
    acc->dot += Sum4(d0 + d1);
    acc->sumsq_a += Sum4(a0 + a1);
    acc->sumsq_b += Sum4(b0 + b1);
  }
  for (; i < n; ++i) {
    const uint32_t ba = LoadBits<A>(pa, i), bb = LoadBits<B>(pb, i);
    float fa, fb;
    std::memcpy(&fa, &ba, 4);
    std::memcpy(&fb, &bb, 4);
    AddPair(fa, fb, acc);
  }
}

SIGIL_INLINE double LoadDouble(const char* p, Elem t, size_t i) {
  uint32_t bits = 0;
  switch (t) {
    case Elem::kF64: {
      double d;
      std::memcpy(&d, p + 8 * i, 8);
      return d;
    }
    case Elem::kF32: bits = LoadBits<Elem::kF32>(p, i); break;
    case Elem::kF16: bits = LoadBits<Elem::kF16>(p, i); break;
    case Elem::kBF16: bits = LoadBits<Elem::kBF16>(p, i); break;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Pairs with an F64 side: rare, so widened one element at a time.
SIGIL_INLINE void DiffDouble(const char* pa, Elem ta, const char* pb, Elem tb, size_t n, DiffAcc* acc) {
  for (size_t start = 0; start < n; start += kBlock) {
    DiffAcc block;
    const size_t end = std::min(n, start + kBlock);
    for (size_t i = start; i < end; ++i) AddPair(LoadDouble(pa, ta, i), LoadDouble(pb, tb, i), &block);
    acc->Merge(block);
  }
}

template <Elem A>
SIGIL_INLINE void DiffFloatA(const char* pa, const char* pb, Elem tb, size_t n, DiffAcc* acc) {
  switch (tb) {
    case Elem::kF32: return DiffFloat<A, Elem::kF32>(pa, pb, n, acc);
    case Elem::kF16: return DiffFloat<A, Elem::kF16>(pa, pb, n, acc);
    case Elem::kBF16: return DiffFloat<A, Elem::kBF16>(pa, pb, n, acc);
    case Elem::kF64: return DiffDouble(pa, A, pb, tb, n, acc);
  }
}

SIGIL_INLINE void DiffDispatch(const char* pa, Elem ta, const char* pb, Elem tb, size_t n, DiffAcc* acc) {
  switch (ta) {
    case Elem::kF32: return DiffFloatA<Elem::kF32>(pa, pb, tb, n, acc);
    case Elem::kF16: return DiffFloatA<Elem::kF16>(pa, pb, tb, n, acc);
    case Elem::kBF16: return DiffFloatA<Elem::kBF16>(pa, pb, tb, n, acc);
    case Elem::kF64: return DiffDouble(pa, ta, pb, tb, n, acc);
  }
}

// Entry points: an AVX2 build of the kernels where the CPU has it (x86-64
// as compiled targets SSE2 only), the portable one elsewhere.
#if SIGIL_X86
[[gnu::target("avx2")]] void StatsAvx2(const char* p, Elem t, size_t n, StatsAcc* acc) {
  StatsDispatch(p, t, n, acc);
}
[[gnu::target("avx2")]] void DiffAvx2(const char* pa, Elem ta, const char* pb, Elem tb, size_t n, DiffAcc* acc) {
  DiffDispatch(pa, ta, pb, tb, n, acc);
}
const bool kHaveAvx2 = __builtin_cpu_supports("avx2");
#endif

void StatsCpu(const char* p, Elem t, size_t n, StatsAcc* acc) {
#if SIGIL_X86
  if (kHaveAvx2) return StatsAvx2(p, t, n, acc);
#endif
  StatsDispatch(p, t, n, acc);
}

void DiffCpu(const char* pa, Elem ta, const char* pb, Elem tb, size_t n, DiffAcc* acc) {
#if SIGIL_X86
  if (kHaveAvx2) return DiffAvx2(pa, ta, pb, tb, n, acc);
#endif
  DiffDispatch(pa, ta, pb, tb, n, acc);
}

// ---------------------------------------------------------------------------
// Backends: where pieces of tensors are reduced.

class Reducer {
 public:
  virtual ~Reducer() = default;
  virtual std::string Name() const = 0;
  // Buffers of kHeadroom + chunk bytes: two for the child's window (0, 1),
  // two for the parent's (2, 3).
  virtual char* Buffer(int i) = 0;
  virtual core::Status Stats(const char* p, Elem t, size_t n, StatsAcc* acc) = 0;
  virtual core::Status Diff(const char* a, Elem ta, const char* b, Elem tb, size_t n, StatsAcc* stats_a,
                            DiffAcc* diff) = 0;
};

class CpuReducer : public Reducer {
 public:
  // Uninitialised: pages are touched only when a window is read into them.
  explicit CpuReducer(size_t bytes) {
    for (auto& b : buffers_) b.reset(new char[bytes]);
  }
  std::string Name() const override { return "cpu"; }
  char* Buffer(int i) override { return buffers_[i].get(); }
  core::Status Stats(const char* p, Elem t, size_t n, StatsAcc* acc) override {
    StatsCpu(p, t, n, acc);
    return core::OkStatus();
  }
  core::Status Diff(const char* a, Elem ta, const char* b, Elem tb, size_t n, StatsAcc* stats_a,
                    DiffAcc* diff) override {
    StatsCpu(a, ta, n, stats_a);
    DiffCpu(a, ta, b, tb, n, diff);
    return core::OkStatus();
  }

 private:
  std::unique_ptr<char[]> buffers_[4];
};

#if SIGIL_HAVE_CUDA
class CudaReducer : public Reducer {
 public:
  explicit CudaReducer(std::unique_ptr<cuda::Session> session) : session_(std::move(session)) {}
  std::string Name() const override { return "cuda:" + cuda::DeviceName(); }
  char* Buffer(int i) override { return session_->HostBuffer(i); }
  core::Status Stats(const char* p, Elem t, size_t n, StatsAcc* acc) override {
    std::string error;
    if (!session_->Stats(p, t, n, acc, &error)) return core::Internal("CUDA: " + error, "CUDA_ERROR");
    return core::OkStatus();
  }
  core::Status Diff(const char* a, Elem ta, const char* b, Elem tb, size_t n, StatsAcc* stats_a,
                    DiffAcc* diff) override {
    std::string error;
    if (!session_->Diff(a, ta, b, tb, n, stats_a, diff, &error)) return core::Internal("CUDA: " + error, "CUDA_ERROR");
    return core::OkStatus();
  }

 private:
  std::unique_ptr<cuda::Session> session_;
};
#endif

// Chunk bytes: at least one element of the widest type.
size_t ChunkBytes(const StatsOptions& options) { return std::max<size_t>(options.chunk_bytes, 8); }

// Room before each window buffer for the tail of the previous window, so an
// element that straddles two reads becomes contiguous (see Window::Get).
constexpr size_t kHeadroom = 8;

core::Result<std::unique_ptr<Reducer>> MakeCpuReducer(const StatsOptions& options) {
  try {
    return std::unique_ptr<Reducer>(new CpuReducer(kHeadroom + ChunkBytes(options)));
  } catch (const std::bad_alloc&) {
    return core::ResourceExhausted("no memory for buffers of " + std::to_string(options.chunk_bytes) + " bytes");
  }
}

// kAuto falls back to the CPU when the device refuses the session; kCuda
// reports why.
core::Result<std::unique_ptr<Reducer>> MakeReducer(const StatsOptions& options) {
  const bool cuda = options.backend == Backend::kCuda || (options.backend == Backend::kAuto && CudaAvailable());
  if (!cuda) return MakeCpuReducer(options);
  if (!CudaAvailable()) return core::Unavailable("no CUDA device is available", "NO_CUDA_DEVICE");
#if SIGIL_HAVE_CUDA
  std::string error;
  std::unique_ptr<cuda::Session> session = cuda::Session::Open(kHeadroom + ChunkBytes(options), &error);
  if (session != nullptr) return std::unique_ptr<Reducer>(new CudaReducer(std::move(session)));
  if (options.backend == Backend::kAuto) return MakeCpuReducer(options);
  return core::Unavailable("CUDA: " + error, "NO_CUDA_DEVICE");
#else
  return core::Unavailable("built without CUDA", "NO_CUDA_DEVICE");
#endif
}

// ---------------------------------------------------------------------------
// Streaming.

// Reads on a thread of its own, one request at a time, so that the next
// chunk is read while this one is reduced.
class Prefetcher {
 public:
  explicit Prefetcher(const ReadAtFn& read) : read_(read) {}
  ~Prefetcher() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // Returns false, and reads nothing, when no thread can be started.
  // REQUIRES: no request pending (Wait() was called since the last Start).
  bool Start(uint64_t offset, size_t n, char* out) {
    if (!thread_.joinable()) {
      try {
        thread_ = std::thread([this] { Loop(); });
      } catch (const std::system_error&) {
        return false;
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      offset_ = offset;
      n_ = n;
      out_ = out;
      queued_ = true;
      pending_ = true;
    }
    cv_.notify_all();
    return true;
  }
  bool pending() const { return pending_; }
  // Waits for the request and returns what the read returned.
  core::Status Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return !queued_ && !busy_; });
    pending_ = false;
    return status_;
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return queued_ || stop_; });
      if (stop_) return;
      queued_ = false;
      busy_ = true;
      const uint64_t offset = offset_;
      const size_t n = n_;
      char* out = out_;
      lock.unlock();
      core::Status s = read_(offset, n, out);
      lock.lock();
      status_ = std::move(s);
      busy_ = false;
      cv_.notify_all();
    }
  }

  const ReadAtFn& read_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool queued_ = false;
  bool busy_ = false;
  bool pending_ = false;  // used by the calling thread only
  uint64_t offset_ = 0;
  size_t n_ = 0;
  char* out_ = nullptr;
  core::Status status_;
};

// One chunk of a file held in memory, and the next one being read ahead.
// Tensors are visited in offset order, so consecutive small tensors come
// from one read, and a large one from consecutive reads. A tensor that
// starts outside the window (overlapping tensors, gaps, pairs out of order
// in the parent) reloads it there, which keeps every answer exact at the
// price of re-reading. The ReadAtFn is called from one other thread, never
// concurrently with itself.
class Window {
 public:
  // buffers: two of kHeadroom + capacity bytes. limit: nothing at or past
  // it is ever asked for, so nothing there is read ahead.
  Window(const ReadAtFn& read, uint64_t size, char* buffer0, char* buffer1, size_t capacity, uint64_t limit)
      : size_(std::min(size, limit)), capacity_(capacity), read_(read), prefetch_(read) {
    buffers_[0] = buffer0 + kHeadroom;
    buffers_[1] = buffer1 + kHeadroom;
  }
  ~Window() {
    if (prefetch_.pending()) prefetch_.Wait().IgnoreError();
  }

  // Points *data at the bytes from off, and sets *avail to how many of them
  // up to end are in memory: at least min(need, end - off).
  // REQUIRES: off < end <= the limit; need <= kHeadroom, need <= capacity.
  core::Status Get(uint64_t off, uint64_t end, size_t need, const char** data, size_t* avail) {
    const uint64_t want = std::min<uint64_t>(need, end - off);
    const uint64_t window_end = start_ + length_;
    if (off < start_ || off >= window_end || window_end - off < want) {
      core::Status s = Load(off, want);
      if (!s.ok()) return s;
    }
    *data = buffers_[current_] + (off - start_);
    *avail = static_cast<size_t>(std::min(start_ + length_, end) - off);
    return core::OkStatus();
  }

 private:
  core::Status Load(uint64_t off, uint64_t want) {
    const uint64_t window_end = start_ + length_;
    const int other = 1 - current_;
    bool loaded = false;
    if (prefetch_.pending()) {
      core::Status s = prefetch_.Wait();
      // The read ahead starts where the window ends: usable when off is in
      // it, or just before it with the straddling bytes still in the window.
      if (off >= next_start_ && off < next_start_ + next_length_ && next_start_ + next_length_ - off >= want) {
        if (!s.ok()) return s;
        current_ = other;
        start_ = next_start_;
        length_ = next_length_;
        loaded = true;
      } else if (off >= start_ && off < window_end && window_end - off <= kHeadroom && next_start_ == window_end) {
        if (!s.ok()) return s;
        const size_t tail = static_cast<size_t>(window_end - off);
        std::memcpy(buffers_[other] - tail, buffers_[current_] + (off - start_), tail);
        buffers_[other] -= tail;  // moved back below, once the window moves on
        current_ = other;
        start_ = off;
        length_ = next_length_ + tail;
        shifted_[current_] = tail;
        loaded = true;
      }
    }
    if (!loaded) {
      const size_t length = static_cast<size_t>(std::min<uint64_t>(capacity_, size_ - off));
      start_ = off;
      length_ = 0;
      Unshift(current_);
      core::Status s = read_(off, length, buffers_[current_]);
      if (!s.ok()) return s;
      length_ = length;
    }
    // Read the next chunk while this one is reduced.
    next_start_ = start_ + length_;
    if (next_start_ < size_) {
      const int ahead = 1 - current_;
      Unshift(ahead);
      next_length_ = static_cast<size_t>(std::min<uint64_t>(capacity_, size_ - next_start_));
      // Without a thread to read on, Load reads the chunk when it is needed.
      prefetch_.Start(next_start_, next_length_, buffers_[ahead]);
    }
    return core::OkStatus();
  }

  void Unshift(int i) {
    buffers_[i] += shifted_[i];
    shifted_[i] = 0;
  }

  uint64_t size_;
  size_t capacity_;
  const ReadAtFn& read_;
  Prefetcher prefetch_;
  char* buffers_[2];
  size_t shifted_[2] = {0, 0};
  int current_ = 0;
  uint64_t start_ = 0;
  uint64_t length_ = 0;
  uint64_t next_start_ = 0;
  size_t next_length_ = 0;
};

Elem ToElem(DType d) {
  switch (d) {
    case DType::kF64: return Elem::kF64;
    case DType::kF16: return Elem::kF16;
    case DType::kBF16: return Elem::kBF16;
    default: return Elem::kF32;
  }
}

core::Status CheckBounds(const std::vector<TensorRef>& tensors, uint64_t size, std::string_view file) {
  for (const TensorRef& t : tensors) {
    const uint64_t count = t.Count();
    const uint64_t esize = DTypeSize(t.dtype);
    // Division, not t.Bytes(): the product may wrap around.
    if (t.offset > size || count > (size - t.offset) / esize) {
      return core::InvalidArgument(std::string(file) + " tensor '" + t.name + "' lies outside the file (offset " +
                                       std::to_string(t.offset) + ", " + std::to_string(count) + " elements of " +
                                       std::string(DTypeName(t.dtype)) + ", file size " + std::to_string(size) + ")",
                                   "TENSOR_OUT_OF_BOUNDS");
    }
  }
  return core::OkStatus();
}

TensorStats Finish(const TensorRef& t, const StatsAcc& acc) {
  TensorStats s;
  s.name = t.name;
  s.dtype = t.dtype;
  s.shape = t.shape;
  s.count = t.Count();
  s.nan = acc.nan;
  s.inf = acc.inf;
  const uint64_t finite = s.count - s.nan - s.inf;
  if (finite > 0) {
    s.min = acc.min;
    s.max = acc.max;
    s.mean = acc.sum / static_cast<double>(finite);
    s.l2 = std::sqrt(acc.sumsq);
  }
  return s;
}

void FinishDiff(const DiffAcc& acc, TensorDiff* d) {
  d->comparable = true;
  d->max_abs_diff = acc.max_abs;
  if (acc.sumsq_a == 0 && acc.sumsq_b == 0) {
    d->cosine = 1;
  } else if (acc.sumsq_a == 0 || acc.sumsq_b == 0) {
    d->cosine = 0;
  } else {
    // Norms multiplied after the square roots, so that the product cannot
    // overflow where each sum does not.
    d->cosine = std::clamp(acc.dot / (std::sqrt(acc.sumsq_a) * std::sqrt(acc.sumsq_b)), -1.0, 1.0);
  }
}

std::string ShapeText(const std::vector<uint64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? "," : "") + std::to_string(shape[i]);
  return out + "]";
}

struct Job {
  size_t child;                        // index into the child tensors
  const TensorRef* parent = nullptr;   // the tensor to compare with, if any
  size_t diff = 0;                     // index into report.diffs
};

core::Result<StatsReport> Run(const ReadAtFn& child, uint64_t child_size, const std::vector<TensorRef>& child_tensors,
                              const ReadAtFn* parent, uint64_t parent_size,
                              const std::vector<TensorRef>* parent_tensors, const StatsOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  core::Status s = CheckBounds(child_tensors, child_size, "child");
  if (!s.ok()) return s;
  if (parent != nullptr) {
    s = CheckBounds(*parent_tensors, parent_size, "parent");
    if (!s.ok()) return s;
  }
  core::Result<std::unique_ptr<Reducer>> made = MakeReducer(options);
  if (!made.ok()) return made.status();
  Reducer& reducer = **made;

  StatsReport report;
  report.backend = reducer.Name();
  std::vector<Job> jobs;
  std::vector<size_t> stats_slot(child_tensors.size(), SIZE_MAX);
  for (size_t i = 0; i < child_tensors.size(); ++i) {
    const TensorRef& t = child_tensors[i];
    if (IsFloat(t.dtype)) {
      stats_slot[i] = report.tensors.size();
      report.tensors.emplace_back();
      jobs.push_back({i});
    } else {
      report.skipped.push_back(t.name);
    }
  }

  if (parent != nullptr) {
    std::unordered_map<std::string_view, const TensorRef*> by_name;
    for (const TensorRef& t : *parent_tensors) by_name.emplace(t.name, &t);
    std::unordered_map<std::string_view, size_t> child_names;
    for (size_t i = 0; i < child_tensors.size(); ++i) child_names.emplace(child_tensors[i].name, i);
    std::vector<size_t> job_of(child_tensors.size(), SIZE_MAX);
    for (size_t j = 0; j < jobs.size(); ++j) job_of[jobs[j].child] = j;
    for (size_t i = 0; i < child_tensors.size(); ++i) {
      const TensorRef& c = child_tensors[i];
      auto it = by_name.find(c.name);
      if (it == by_name.end()) {
        report.only_in_child.push_back(c.name);
        continue;
      }
      const TensorRef& p = *it->second;
      TensorDiff d;
      d.name = c.name;
      if (!IsFloat(c.dtype) || !IsFloat(p.dtype)) {
        d.why = "not a float tensor: child " + std::string(DTypeName(c.dtype)) + ", parent " +
                std::string(DTypeName(p.dtype));
      } else if (c.shape != p.shape) {
        d.why = "shapes differ: child " + ShapeText(c.shape) + ", parent " + ShapeText(p.shape);
      } else {
        jobs[job_of[i]].parent = &p;
        jobs[job_of[i]].diff = report.diffs.size();
      }
      report.diffs.push_back(std::move(d));
    }
    for (const TensorRef& p : *parent_tensors) {
      if (child_names.find(p.name) == child_names.end()) report.only_in_parent.push_back(p.name);
    }
  }

  std::stable_sort(jobs.begin(), jobs.end(), [&](const Job& a, const Job& b) {
    return child_tensors[a.child].offset < child_tensors[b.child].offset;
  });
  const size_t chunk = ChunkBytes(options);
  uint64_t child_limit = 0, parent_limit = 0;
  for (const Job& job : jobs) {
    const TensorRef& t = child_tensors[job.child];
    child_limit = std::max(child_limit, t.offset + t.Count() * DTypeSize(t.dtype));
    if (job.parent != nullptr) {
      parent_limit = std::max(parent_limit, job.parent->offset + job.parent->Count() * DTypeSize(job.parent->dtype));
    }
  }
  Window child_window(child, child_size, reducer.Buffer(0), reducer.Buffer(1), chunk, child_limit);
  std::unique_ptr<Window> parent_window;
  if (parent != nullptr) {
    parent_window = std::make_unique<Window>(*parent, parent_size, reducer.Buffer(2), reducer.Buffer(3), chunk,
                                             parent_limit);
  }

  for (const Job& job : jobs) {
    const TensorRef& t = child_tensors[job.child];
    const Elem te = ToElem(t.dtype);
    const uint64_t es = DTypeSize(t.dtype);
    const uint64_t n = t.Count();
    const uint64_t end = t.offset + n * es;
    StatsAcc acc;
    if (job.parent == nullptr) {
      for (uint64_t i = 0; i < n;) {
        const char* data = nullptr;
        size_t avail = 0;
        s = child_window.Get(t.offset + i * es, end, es, &data, &avail);
        if (!s.ok()) return s;
        const size_t k = avail / es;
        s = reducer.Stats(data, te, k, &acc);
        if (!s.ok()) return s;
        i += k;
      }
      report.bytes += n * es;
    } else {
      const TensorRef& p = *job.parent;
      const Elem pe = ToElem(p.dtype);
      const uint64_t pes = DTypeSize(p.dtype);
      const uint64_t pend = p.offset + n * pes;
      DiffAcc diff;
      for (uint64_t i = 0; i < n;) {
        const char *cdata = nullptr, *pdata = nullptr;
        size_t cavail = 0, pavail = 0;
        s = child_window.Get(t.offset + i * es, end, es, &cdata, &cavail);
        if (!s.ok()) return s;
        s = parent_window->Get(p.offset + i * pes, pend, pes, &pdata, &pavail);
        if (!s.ok()) return s;
        const size_t k = std::min(cavail / es, pavail / pes);
        s = reducer.Diff(cdata, te, pdata, pe, k, &acc, &diff);
        if (!s.ok()) return s;
        i += k;
      }
      report.bytes += n * (es + pes);
      FinishDiff(diff, &report.diffs[job.diff]);
    }
    TensorStats& out = report.tensors[stats_slot[job.child]];
    out = Finish(t, acc);
    report.total_nan += out.nan;
    report.total_inf += out.inf;
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return report;
}

// JSON has no NaN or Inf; an F64 sum can overflow.
double Finite(double v) {
  if (std::isnan(v)) return 0;
  return std::clamp(v, -std::numeric_limits<double>::max(), std::numeric_limits<double>::max());
}

}  // namespace

core::Result<StatsReport> ComputeStats(const ReadAtFn& read, uint64_t size, const std::vector<TensorRef>& tensors,
                                       const StatsOptions& options) {
  return Run(read, size, tensors, nullptr, 0, nullptr, options);
}

core::Result<StatsReport> CompareWithParent(const ReadAtFn& child, uint64_t child_size,
                                            const std::vector<TensorRef>& child_tensors, const ReadAtFn& parent,
                                            uint64_t parent_size, const std::vector<TensorRef>& parent_tensors,
                                            const StatsOptions& options) {
  return Run(child, child_size, child_tensors, &parent, parent_size, &parent_tensors, options);
}

bool CudaAvailable() {
#if SIGIL_HAVE_CUDA
  static const bool available = cuda::DeviceAvailable();
  return available;
#else
  return false;
#endif
}

std::string CudaDeviceName() {
#if SIGIL_HAVE_CUDA
  if (CudaAvailable()) return cuda::DeviceName();
#endif
  return {};
}

core::Json StatsReportToJson(const StatsReport& report) {
  core::Json tensors = core::Json::array();
  for (const TensorStats& t : report.tensors) {
    tensors.push_back({{"name", t.name},
                       {"dtype", std::string(DTypeName(t.dtype))},
                       {"shape", t.shape},
                       {"count", t.count},
                       {"nan", t.nan},
                       {"inf", t.inf},
                       {"min", Finite(t.min)},
                       {"max", Finite(t.max)},
                       {"mean", Finite(t.mean)},
                       {"l2", Finite(t.l2)}});
  }
  core::Json diffs = core::Json::array();
  for (const TensorDiff& d : report.diffs) {
    core::Json j = {{"name", d.name},
                    {"comparable", d.comparable},
                    {"max_abs_diff", Finite(d.max_abs_diff)},
                    {"cosine", Finite(d.cosine)}};
    if (!d.why.empty()) j["why"] = d.why;
    diffs.push_back(std::move(j));
  }
  return {{"backend", report.backend},
          {"bytes", report.bytes},
          {"seconds", Finite(report.seconds)},
          {"total_nan", report.total_nan},
          {"total_inf", report.total_inf},
          {"tensors", std::move(tensors)},
          {"skipped", report.skipped},
          {"diffs", std::move(diffs)},
          {"only_in_child", report.only_in_child},
          {"only_in_parent", report.only_in_parent}};
}

}  // namespace sigil::validator
