// CUDA reductions for tensor statistics. Each launch reduces one piece of a
// tensor into per-block partials with a grid-stride loop and a shared-memory
// tree; the host merges the partials in double, so no floating-point atomics
// are needed and the result does not depend on block scheduling.
#include "validator/cuda/stats_kernels.h"

#include <cuda_runtime.h>
#include <math_constants.h>

#include <algorithm>
#include <vector>

namespace sigil::validator::cuda {
namespace {

using internal::DiffAcc;
using internal::Elem;
using internal::StatsAcc;

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 1024;

struct StatsPartial {
  unsigned long long nan;
  unsigned long long inf;
  double min;
  double max;
  double sum;
  double sumsq;
};

struct DiffPartial {
  double max_abs;
  double dot;
  double sumsq_a;
  double sumsq_b;
};

// F16 bits to float, exact: the same method as the CPU path.
__device__ __forceinline__ float HalfToFloat(unsigned int h) {
  unsigned int o = (h & 0x7fffu) << 13;
  const unsigned int exp = o & (0x7c00u << 13);
  o += (127u - 15u) << 23;
  if (exp == (0x7c00u << 13)) {
    o += (128u - 16u) << 23;
  } else if (exp == 0) {
    o += 1u << 23;
    o = __float_as_uint(__uint_as_float(o) - 6.103515625e-05f);
  }
  return __uint_as_float(o | ((h & 0x8000u) << 16));
}

template <int T>
__device__ __forceinline__ double Load(const void* p, size_t i) {
  if constexpr (T == static_cast<int>(Elem::kF64)) {
    return static_cast<const double*>(p)[i];
  } else if constexpr (T == static_cast<int>(Elem::kF32)) {
    return static_cast<const float*>(p)[i];
  } else if constexpr (T == static_cast<int>(Elem::kF16)) {
    return HalfToFloat(static_cast<const unsigned short*>(p)[i]);
  } else {
    return __uint_as_float(static_cast<unsigned int>(static_cast<const unsigned short*>(p)[i]) << 16);
  }
}

template <int T>
__global__ void StatsKernel(const void* p, size_t n, StatsPartial* out) {
  __shared__ StatsPartial shared[kThreads];
  StatsPartial acc = {0, 0, CUDART_INF, -CUDART_INF, 0, 0};
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const double v = Load<T>(p, i);
    if (isnan(v)) {
      ++acc.nan;
    } else if (isinf(v)) {
      ++acc.inf;
    } else {
      acc.min = v < acc.min ? v : acc.min;
      acc.max = v > acc.max ? v : acc.max;
      acc.sum += v;
      acc.sumsq += v * v;
    }
  }
  shared[threadIdx.x] = acc;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      StatsPartial& a = shared[threadIdx.x];
      const StatsPartial& b = shared[threadIdx.x + stride];
      a.nan += b.nan;
      a.inf += b.inf;
      a.min = b.min < a.min ? b.min : a.min;
      a.max = b.max > a.max ? b.max : a.max;
      a.sum += b.sum;
      a.sumsq += b.sumsq;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = shared[0];
}

template <int A, int B>
__global__ void DiffKernel(const void* pa, const void* pb, size_t n, DiffPartial* out) {
  __shared__ DiffPartial shared[kThreads];
  DiffPartial acc = {0, 0, 0, 0};
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const double a = Load<A>(pa, i);
    const double b = Load<B>(pb, i);
    if (isfinite(a) && isfinite(b)) {
      const double d = fabs(a - b);
      acc.max_abs = d > acc.max_abs ? d : acc.max_abs;
      acc.dot += a * b;
      acc.sumsq_a += a * a;
      acc.sumsq_b += b * b;
    }
  }
  shared[threadIdx.x] = acc;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      DiffPartial& a = shared[threadIdx.x];
      const DiffPartial& b = shared[threadIdx.x + stride];
      a.max_abs = b.max_abs > a.max_abs ? b.max_abs : a.max_abs;
      a.dot += b.dot;
      a.sumsq_a += b.sumsq_a;
      a.sumsq_b += b.sumsq_b;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = shared[0];
}

int Blocks(size_t n) {
  return static_cast<int>(std::min<size_t>(kMaxBlocks, (n + kThreads - 1) / kThreads));
}

void LaunchStats(Elem t, const void* p, size_t n, StatsPartial* out, cudaStream_t stream) {
  switch (t) {
    case Elem::kF64: StatsKernel<0><<<Blocks(n), kThreads, 0, stream>>>(p, n, out); break;
    case Elem::kF32: StatsKernel<1><<<Blocks(n), kThreads, 0, stream>>>(p, n, out); break;
    case Elem::kF16: StatsKernel<2><<<Blocks(n), kThreads, 0, stream>>>(p, n, out); break;
    case Elem::kBF16: StatsKernel<3><<<Blocks(n), kThreads, 0, stream>>>(p, n, out); break;
  }
}

template <int A>
void LaunchDiffA(Elem tb, const void* pa, const void* pb, size_t n, DiffPartial* out, cudaStream_t stream) {
  switch (tb) {
    case Elem::kF64: DiffKernel<A, 0><<<Blocks(n), kThreads, 0, stream>>>(pa, pb, n, out); break;
    case Elem::kF32: DiffKernel<A, 1><<<Blocks(n), kThreads, 0, stream>>>(pa, pb, n, out); break;
    case Elem::kF16: DiffKernel<A, 2><<<Blocks(n), kThreads, 0, stream>>>(pa, pb, n, out); break;
    case Elem::kBF16: DiffKernel<A, 3><<<Blocks(n), kThreads, 0, stream>>>(pa, pb, n, out); break;
  }
}

void LaunchDiff(Elem ta, Elem tb, const void* pa, const void* pb, size_t n, DiffPartial* out, cudaStream_t stream) {
  switch (ta) {
    case Elem::kF64: return LaunchDiffA<0>(tb, pa, pb, n, out, stream);
    case Elem::kF32: return LaunchDiffA<1>(tb, pa, pb, n, out, stream);
    case Elem::kF16: return LaunchDiffA<2>(tb, pa, pb, n, out, stream);
    case Elem::kBF16: return LaunchDiffA<3>(tb, pa, pb, n, out, stream);
  }
}

bool Check(cudaError_t e, const char* what, std::string* error) {
  if (e == cudaSuccess) return true;
  *error = std::string(what) + ": " + cudaGetErrorString(e);
  return false;
}

class SessionImpl : public Session {
 public:
  ~SessionImpl() override {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
    for (void* p : {device_[0], device_[1], device_partials_}) {
      if (p != nullptr) cudaFree(p);
    }
    for (void* p : {host_[0], host_[1], host_[2], host_[3], host_partials_}) {
      if (p != nullptr) cudaFreeHost(p);
    }
  }

  bool Init(size_t max_bytes, std::string* error) {
    const size_t partials = kMaxBlocks * (sizeof(StatsPartial) + sizeof(DiffPartial));
    return Check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate", error) &&
           Check(cudaMalloc(&device_[0], max_bytes), "cudaMalloc", error) &&
           Check(cudaMalloc(&device_[1], max_bytes), "cudaMalloc", error) &&
           Check(cudaMalloc(&device_partials_, partials), "cudaMalloc", error) &&
           Check(cudaMallocHost(&host_[0], max_bytes), "cudaMallocHost", error) &&
           Check(cudaMallocHost(&host_[1], max_bytes), "cudaMallocHost", error) &&
           Check(cudaMallocHost(&host_[2], max_bytes), "cudaMallocHost", error) &&
           Check(cudaMallocHost(&host_[3], max_bytes), "cudaMallocHost", error) &&
           Check(cudaMallocHost(&host_partials_, partials), "cudaMallocHost", error);
  }

  char* HostBuffer(int i) override { return static_cast<char*>(host_[i]); }

  bool Stats(const char* host, Elem t, size_t n, StatsAcc* acc, std::string* error) override {
    if (n == 0) return true;
    if (!Check(cudaMemcpyAsync(device_[0], host, n * internal::ElemSize(t), cudaMemcpyHostToDevice, stream_),
               "copy to device", error)) {
      return false;
    }
    LaunchStats(t, device_[0], n, StatsPartials(device_partials_), stream_);
    if (!Check(cudaGetLastError(), "stats kernel", error)) return false;
    if (!FetchPartials(Blocks(n), false, error)) return false;
    MergeStats(StatsPartials(host_partials_), Blocks(n), acc);
    return true;
  }

  bool Diff(const char* a, Elem ta, const char* b, Elem tb, size_t n, StatsAcc* stats_a, DiffAcc* diff,
            std::string* error) override {
    if (n == 0) return true;
    if (!Check(cudaMemcpyAsync(device_[0], a, n * internal::ElemSize(ta), cudaMemcpyHostToDevice, stream_),
               "copy to device", error) ||
        !Check(cudaMemcpyAsync(device_[1], b, n * internal::ElemSize(tb), cudaMemcpyHostToDevice, stream_),
               "copy to device", error)) {
      return false;
    }
    LaunchStats(ta, device_[0], n, StatsPartials(device_partials_), stream_);
    LaunchDiff(ta, tb, device_[0], device_[1], n, DiffPartials(device_partials_), stream_);
    if (!Check(cudaGetLastError(), "diff kernel", error)) return false;
    if (!FetchPartials(Blocks(n), true, error)) return false;
    MergeStats(StatsPartials(host_partials_), Blocks(n), stats_a);
    const DiffPartial* parts = DiffPartials(host_partials_);
    for (int i = 0; i < Blocks(n); ++i) {
      DiffAcc d;
      d.max_abs = parts[i].max_abs;
      d.dot = parts[i].dot;
      d.sumsq_a = parts[i].sumsq_a;
      d.sumsq_b = parts[i].sumsq_b;
      diff->Merge(d);
    }
    return true;
  }

 private:
  static StatsPartial* StatsPartials(void* base) { return static_cast<StatsPartial*>(base); }
  static DiffPartial* DiffPartials(void* base) {
    return reinterpret_cast<DiffPartial*>(static_cast<char*>(base) + kMaxBlocks * sizeof(StatsPartial));
  }

  // Copies the first `blocks` partials of the stats (and diff) kernels back
  // and waits for the stream.
  bool FetchPartials(int blocks, bool diff, std::string* error) {
    if (!Check(cudaMemcpyAsync(host_partials_, device_partials_, blocks * sizeof(StatsPartial),
                               cudaMemcpyDeviceToHost, stream_),
               "copy from device", error)) {
      return false;
    }
    if (diff && !Check(cudaMemcpyAsync(DiffPartials(host_partials_), DiffPartials(device_partials_),
                                       blocks * sizeof(DiffPartial), cudaMemcpyDeviceToHost, stream_),
                       "copy from device", error)) {
      return false;
    }
    return Check(cudaStreamSynchronize(stream_), "synchronize", error);
  }

  static void MergeStats(const StatsPartial* parts, int blocks, StatsAcc* acc) {
    for (int i = 0; i < blocks; ++i) {
      StatsAcc s;
      s.nan = parts[i].nan;
      s.inf = parts[i].inf;
      s.min = parts[i].min;
      s.max = parts[i].max;
      s.sum = parts[i].sum;
      s.sumsq = parts[i].sumsq;
      acc->Merge(s);
    }
  }

  cudaStream_t stream_ = nullptr;
  void* device_[2] = {nullptr, nullptr};
  void* device_partials_ = nullptr;
  void* host_[4] = {nullptr, nullptr, nullptr, nullptr};
  void* host_partials_ = nullptr;
};

}  // namespace

bool DeviceAvailable() {
  int count = 0;  // left untouched when there is no driver
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();  // clears the sticky error for later calls
    return false;
  }
  return count > 0;
}

std::string DeviceName() {
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    cudaGetLastError();
    return {};
  }
  return prop.name;
}

std::unique_ptr<Session> Session::Open(size_t max_bytes, std::string* error) {
  auto session = std::make_unique<SessionImpl>();
  if (!session->Init(max_bytes, error)) return nullptr;
  return session;
}

}  // namespace sigil::validator::cuda
