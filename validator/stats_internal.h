// Internal to validator/: the per-tensor accumulators that the CPU kernels
// (tensor_stats.cc) and the CUDA kernels (cuda/stats_kernels.cu) fill, and
// how partial results merge. Plain C++ only, so nvcc and g++ share it.
#pragma once

#include <cstdint>
#include <limits>

namespace sigil::validator::internal {

// The float element types, numbered alike on host and device.
enum class Elem : int { kF64 = 0, kF32 = 1, kF16 = 2, kBF16 = 3 };

inline int ElemSize(Elem e) { return e == Elem::kF64 ? 8 : e == Elem::kF32 ? 4 : 2; }

// Over the elements seen so far: NaN and Inf counts; min, max, sum and sum
// of squares of the finite ones (min > max while there are none).
struct StatsAcc {
  uint64_t nan = 0;
  uint64_t inf = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  double sum = 0;
  double sumsq = 0;

  void Merge(const StatsAcc& o) {
    nan += o.nan;
    inf += o.inf;
    if (o.min < min) min = o.min;
    if (o.max > max) max = o.max;
    sum += o.sum;
    sumsq += o.sumsq;
  }
};

// Over the element pairs finite on both sides: the largest |a - b|, the dot
// product and each side's sum of squares.
struct DiffAcc {
  double max_abs = 0;
  double dot = 0;
  double sumsq_a = 0;
  double sumsq_b = 0;

  void Merge(const DiffAcc& o) {
    if (o.max_abs > max_abs) max_abs = o.max_abs;
    dot += o.dot;
    sumsq_a += o.sumsq_a;
    sumsq_b += o.sumsq_b;
  }
};

}  // namespace sigil::validator::internal
