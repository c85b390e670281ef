// Weight statistics: per tensor the count of NaN and Inf, min, max, mean and
// L2 norm, and against a parent checkpoint the largest absolute difference
// and the cosine similarity of each tensor present in both.
//
// Files are streamed in chunks; a tensor may span many chunks and a chunk
// many tensors. The next chunk is read on a second thread while one is
// reduced, so a ReadAtFn is called from a thread other than the caller's
// (one call at a time per file). Tensors may overlap; each is computed in
// full. Two implementations give the same answers: a vectorised CPU
// path, and CUDA kernels (validator/cuda/) built when nvcc is found and used
// when a device is present. Counts, min and max are exact on both; sums are
// accumulated in double, so mean, L2 norm and cosine agree to a relative
// 1e-6 (the order of additions differs).
//
// Min, max, mean and L2 norm are over the finite values; a tensor with none
// reports them as 0. F16 and BF16 are widened to float exactly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "validator/tensor.h"

namespace sigil::validator {

enum class Backend { kAuto, kCpu, kCuda };

struct StatsOptions {
  Backend backend = Backend::kAuto;  // kAuto: CUDA when available, else CPU
  // Read size; bounds memory use (four buffers of this size). 1 MiB stays in
  // a core's cache between the read and the reduction: on F32 from the page
  // cache it measured up to twice the speed of 16 MiB (bench/stats_bench
  // --chunk-kib).
  size_t chunk_bytes = 1u << 20;
};

struct TensorStats {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<uint64_t> shape;
  uint64_t count = 0;
  uint64_t nan = 0;
  uint64_t inf = 0;
  double min = 0;
  double max = 0;
  double mean = 0;
  double l2 = 0;
};

struct TensorDiff {
  std::string name;
  // False when the shapes differ or a side is not a float tensor; the
  // figures are then 0 and `why` says which.
  bool comparable = false;
  std::string why;
  double max_abs_diff = 0;  // over elements finite on both sides
  double cosine = 0;        // 1 for two all-zero tensors
};

struct StatsReport {
  std::string backend;  // "cpu" or "cuda:<device name>"
  uint64_t bytes = 0;   // tensor bytes read (both files when comparing)
  double seconds = 0;
  std::vector<TensorStats> tensors;  // float tensors, in the order given
  std::vector<std::string> skipped;  // tensors of other types, by name
  uint64_t total_nan = 0;
  uint64_t total_inf = 0;
  // With a parent: one diff per name present in both, then the names
  // present on one side only.
  std::vector<TensorDiff> diffs;
  std::vector<std::string> only_in_child;
  std::vector<std::string> only_in_parent;
};

// Statistics of `tensors`, read from a file of `size` bytes.
// Errors: kInvalidArgument TENSOR_OUT_OF_BOUNDS when a tensor lies outside
// the file; kUnavailable NO_CUDA_DEVICE when kCuda is asked for without one;
// the first error `read` returns.
core::Result<StatsReport> ComputeStats(const ReadAtFn& read, uint64_t size, const std::vector<TensorRef>& tensors,
                                       const StatsOptions& options = {});

// ComputeStats of the child, plus a TensorDiff per tensor name in both.
core::Result<StatsReport> CompareWithParent(const ReadAtFn& child, uint64_t child_size,
                                            const std::vector<TensorRef>& child_tensors, const ReadAtFn& parent,
                                            uint64_t parent_size, const std::vector<TensorRef>& parent_tensors,
                                            const StatsOptions& options = {});

// Whether CUDA kernels were built and a device is present, and its name.
bool CudaAvailable();
std::string CudaDeviceName();

// {"backend", "bytes", "seconds", "total_nan", "total_inf", "tensors": [...],
//  "skipped", "diffs", "only_in_child", "only_in_parent"}
core::Json StatsReportToJson(const StatsReport& report);

}  // namespace sigil::validator
