#include "validator/tensor_stats.h"

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "tests/support/temp_dir.h"

namespace sigil::validator {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// ---------------------------------------------------------------------------
// Reference conversions and statistics, written from the format definitions
// and naive loops, independent of the code under test.

// IEEE binary16: sign, 5-bit exponent (bias 15), 10-bit mantissa.
double RefHalf(uint16_t h) {
  const int e = (h >> 10) & 31;
  const int m = h & 1023;
  double v;
  if (e == 0) {
    v = std::ldexp(m, -24);
  } else if (e == 31) {
    v = m != 0 ? kNaN : kInf;
  } else {
    v = std::ldexp(1024 + m, e - 25);
  }
  return (h & 0x8000) ? -v : v;
}

// bfloat16: the high half of a binary32, decoded field by field.
double RefBf16(uint16_t h) {
  const int e = (h >> 7) & 255;
  const int m = h & 127;
  double v;
  if (e == 0) {
    v = std::ldexp(m, -133);
  } else if (e == 255) {
    v = m != 0 ? kNaN : kInf;
  } else {
    v = std::ldexp(128 + m, e - 134);
  }
  return (h & 0x8000) ? -v : v;
}

struct Ref {
  uint64_t count = 0, nan = 0, inf = 0;
  double min = 0, max = 0, mean = 0, l2 = 0;
  double mean_abs = 0;  // scale of the rounding error of the mean
};

Ref RefStats(const std::vector<double>& v) {
  Ref r;
  r.count = v.size();
  long double sum = 0, sumsq = 0, sum_abs = 0;
  uint64_t finite = 0;
  double mn = kInf, mx = -kInf;
  for (double x : v) {
    if (std::isnan(x)) {
      ++r.nan;
    } else if (std::isinf(x)) {
      ++r.inf;
    } else {
      ++finite;
      mn = std::min(mn, x);
      mx = std::max(mx, x);
      sum += x;
      sum_abs += std::fabs(x);
      sumsq += static_cast<long double>(x) * x;
    }
  }
  if (finite > 0) {
    r.min = mn;
    r.max = mx;
    r.mean = static_cast<double>(sum / finite);
    r.mean_abs = static_cast<double>(sum_abs / finite);
    r.l2 = static_cast<double>(std::sqrt(sumsq));
  }
  return r;
}

bool Close(double a, double b, double rel) {
  if (a == b || (std::isnan(a) && std::isnan(b))) return true;
  return std::fabs(a - b) <= rel * std::max(std::fabs(a), std::fabs(b));
}

void CheckStats(const TensorStats& s, const Ref& r, double rel) {
  INFO("tensor " << s.name);
  CHECK(s.count == r.count);
  CHECK(s.nan == r.nan);
  CHECK(s.inf == r.inf);
  CHECK(s.min == r.min);
  CHECK(s.max == r.max);
  // Sums cancel: the error of a mean scales with the mean of |x|.
  CHECK(std::fabs(s.mean - r.mean) <= rel * r.mean_abs);
  CHECK(Close(s.l2, r.l2, rel));
}

// ---------------------------------------------------------------------------
// Building files in memory.

// Encodes a double as the dtype, rounding to nearest for F32; F16 and BF16
// values must be given as bit patterns (see AddBits).
void Encode(DType d, double v, std::string* out) {
  if (d == DType::kF64) {
    out->append(reinterpret_cast<const char*>(&v), 8);
  } else {
    const float f = static_cast<float>(v);
    out->append(reinterpret_cast<const char*>(&f), 4);
  }
}

class FileBuilder {
 public:
  // Adds a tensor after `pad` bytes of filler (to misalign it); returns its
  // index. Values are as stored (F32 values rounded to float).
  size_t Add(const std::string& name, DType d, const std::vector<double>& values, size_t pad = 0) {
    data_.append(pad, '\x5a');
    TensorRef t{name, d, {values.size()}, data_.size()};
    for (double v : values) Encode(d, v, &data_);
    tensors_.push_back(t);
    return tensors_.size() - 1;
  }
  size_t AddBits(const std::string& name, DType d, const std::vector<uint16_t>& bits, size_t pad = 0) {
    data_.append(pad, '\x5a');
    TensorRef t{name, d, {bits.size()}, data_.size()};
    data_.append(reinterpret_cast<const char*>(bits.data()), 2 * bits.size());
    tensors_.push_back(t);
    return tensors_.size() - 1;
  }
  size_t AddRaw(const TensorRef& t) {
    tensors_.push_back(t);
    return tensors_.size() - 1;
  }
  void Pad(size_t n) { data_.append(n, '\x5a'); }

  std::vector<TensorRef>& tensors() { return tensors_; }
  const std::string& data() const { return data_; }
  uint64_t size() const { return data_.size(); }
  ReadAtFn Reader() const {
    auto data = std::make_shared<std::string>(data_);
    // Called on the read-ahead thread, where Catch2 assertions must not be.
    return [data](uint64_t offset, size_t n, char* out) {
      if (offset > data->size() || n > data->size() - offset) {
        return core::Internal("read past the end: the documented precondition is broken");
      }
      std::memcpy(out, data->data() + offset, n);
      return core::OkStatus();
    };
  }

 private:
  std::string data_;
  std::vector<TensorRef> tensors_;
};

StatsOptions Cpu(size_t chunk = 16u << 20) { return StatsOptions{Backend::kCpu, chunk}; }

// Values that stress the classification: NaN, both infinities, subnormal
// floats, negative zero, the largest finite float, and random ones.
std::vector<double> Specials(size_t n, uint32_t seed, bool f64, bool huge = true) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 3.0);
  const std::vector<double> special = {kNaN,
                                       kInf,
                                       -kInf,
                                       -0.0,
                                       0.0,
                                       std::numeric_limits<float>::denorm_min(),
                                       -std::numeric_limits<float>::denorm_min() * 7,
                                       huge ? std::numeric_limits<float>::max() : 1e3,
                                       huge ? -std::numeric_limits<float>::max() : -1e3,
                                       f64 ? 1e150 : 1e30,
                                       f64 ? std::numeric_limits<double>::denorm_min() : 1e-40};
  std::vector<double> v(n);
  for (double& x : v) {
    x = (rng() % 5 == 0) ? special[rng() % special.size()] : normal(rng);
    if (!f64) x = static_cast<float>(x);
  }
  return v;
}

// ---------------------------------------------------------------------------

TEST_CASE("dtype names, sizes and element counts", "[validator]") {
  const std::vector<std::pair<std::string, size_t>> table = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2},
                                                             {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
                                                             {"U8", 1},  {"BOOL", 1}};
  for (const auto& [name, size] : table) {
    auto d = ParseDType(name);
    REQUIRE(d.ok());
    CHECK(DTypeName(*d) == name);
    CHECK(DTypeSize(*d) == size);
    CHECK(IsFloat(*d) == (name[0] == 'F' || name == "BF16"));
  }
  auto bad = ParseDType("F8_E4M3");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == core::Code::kInvalidArgument);
  CHECK(bad.status().reason() == "UNSUPPORTED_DTYPE");

  CHECK(TensorRef{"s", DType::kF32, {}, 0}.Count() == 1);
  CHECK(TensorRef{"t", DType::kF32, {2, 3, 4}, 0}.Count() == 24);
  CHECK(TensorRef{"z", DType::kF32, {1ull << 40, 0, 1ull << 40}, 0}.Count() == 0);
  CHECK(TensorRef{"o", DType::kF32, {1ull << 40, 1ull << 40}, 0}.Count() == UINT64_MAX);
}

TEST_CASE("F32 and F64 statistics match a naive double loop", "[validator]") {
  for (DType d : {DType::kF32, DType::kF64}) {
    FileBuilder b;
    std::vector<std::vector<double>> values;
    const size_t lengths[] = {0, 1, 7, 8, 9, 15, 17, 100, 4095, 4096, 4097, 20000};
    uint32_t seed = 1;
    for (size_t n : lengths) {
      values.push_back(Specials(n, seed++, d == DType::kF64));
      b.Add("t" + std::to_string(n), d, values.back(), seed % 7);  // odd paddings: unaligned tensors
    }
    auto report = ComputeStats(b.Reader(), b.size(), b.tensors(), Cpu());
    REQUIRE(report.ok());
    CHECK(report->backend == "cpu");
    REQUIRE(report->tensors.size() == values.size());
    uint64_t nan = 0, inf = 0, bytes = 0;
    for (size_t i = 0; i < values.size(); ++i) {
      const Ref r = RefStats(values[i]);
      CheckStats(report->tensors[i], r, 1e-12);
      CHECK(report->tensors[i].name == b.tensors()[i].name);
      CHECK(report->tensors[i].dtype == d);
      CHECK(report->tensors[i].shape == b.tensors()[i].shape);
      nan += r.nan;
      inf += r.inf;
      bytes += b.tensors()[i].Bytes();
    }
    CHECK(report->total_nan == nan);
    CHECK(report->total_inf == inf);
    CHECK(report->bytes == bytes);
    CHECK(report->skipped.empty());
  }
}

TEST_CASE("a tensor of known values", "[validator]") {
  FileBuilder b;
  b.Add("w", DType::kF32, {1, -2, 3, kNaN, kInf, -kInf, -0.0, 4, 5, 6});
  auto report = ComputeStats(b.Reader(), b.size(), b.tensors(), Cpu());
  REQUIRE(report.ok());
  const TensorStats& s = report->tensors.at(0);
  CHECK(s.count == 10);
  CHECK(s.nan == 1);
  CHECK(s.inf == 2);
  CHECK(s.min == -2);
  CHECK(s.max == 6);
  CHECK(s.mean == 17.0 / 7);
  CHECK(s.l2 == std::sqrt(91.0));
}

TEST_CASE("every F16 and BF16 bit pattern widens exactly", "[validator]") {
  for (DType d : {DType::kF16, DType::kBF16}) {
    INFO(DTypeName(d));
    const auto ref = d == DType::kF16 ? RefHalf : RefBf16;
    std::vector<uint16_t> all(65536);
    std::vector<double> widened(65536);
    for (uint32_t i = 0; i < 65536; ++i) {
      all[i] = static_cast<uint16_t>(i);
      widened[i] = ref(static_cast<uint16_t>(i));
    }
    FileBuilder b;
    // One tensor per pattern goes through the scalar path.
    for (uint32_t i = 0; i < 65536; ++i) b.AddBits("p" + std::to_string(i), d, {all[i]});
    // All patterns at once go through the vector path; compared with F32
    // holding the reference values, every finite pair must be equal.
    const size_t whole = b.AddBits("all", d, all, 1);
    const size_t exact = b.Add("exact", DType::kF32, widened, 3);
    auto report = ComputeStats(b.Reader(), b.size(), b.tensors(), Cpu());
    REQUIRE(report.ok());
    for (uint32_t i = 0; i < 65536; ++i) {
      const TensorStats& s = report->tensors[i];
      const double v = widened[i];
      if (std::isnan(v)) {
        REQUIRE(s.nan == 1);
      } else if (std::isinf(v)) {
        REQUIRE(s.inf == 1);
      } else {
        INFO("pattern " << i);
        REQUIRE(s.nan + s.inf == 0);
        REQUIRE(s.min == v);
        REQUIRE(s.max == v);
        REQUIRE(std::signbit(s.min) == std::signbit(v));  // -0 stays -0
      }
    }
    CheckStats(report->tensors[whole], RefStats(widened), 1e-12);

    // The same file as its own parent, with "all" renamed to match "exact".
    std::vector<TensorRef> child = {b.tensors()[whole]};
    std::vector<TensorRef> parent = {b.tensors()[exact]};
    parent[0].name = child[0].name;
    auto cmp = CompareWithParent(b.Reader(), b.size(), child, b.Reader(), b.size(), parent, Cpu());
    REQUIRE(cmp.ok());
    REQUIRE(cmp->diffs.size() == 1);
    CHECK(cmp->diffs[0].comparable);
    CHECK(cmp->diffs[0].max_abs_diff == 0);
    CHECK(cmp->diffs[0].cosine == Approx(1.0).epsilon(1e-15));
  }
  // A few patterns spelled out.
  CHECK(RefHalf(0x3c00) == 1.0);
  CHECK(RefHalf(0x0001) == std::ldexp(1.0, -24));
  CHECK(RefHalf(0x7bff) == 65504.0);
  CHECK(RefBf16(0x3f80) == 1.0);
  CHECK(RefBf16(0xc000) == -2.0);
  CHECK(RefBf16(0x0001) == std::ldexp(1.0, -133));
  FileBuilder b;
  b.AddBits("h", DType::kF16, {0x3c00, 0x0001, 0x03ff, 0x7bff, 0xfbff, 0x8000, 0x7e00, 0xfc00, 0x3555});
  b.AddBits("bf", DType::kBF16, {0x3f80, 0xc000, 0x0001, 0x7f7f, 0x7f80, 0xffc1, 0x8000, 0x4049});
  auto report = ComputeStats(b.Reader(), b.size(), b.tensors(), Cpu());
  REQUIRE(report.ok());
  const TensorStats& h = report->tensors[0];
  CHECK(h.nan == 1);
  CHECK(h.inf == 1);
  CHECK(h.min == -65504.0);
  CHECK(h.max == 65504.0);
  CHECK(h.mean == (1.0 + std::ldexp(1.0, -24) + std::ldexp(1023.0, -24) + 0.333251953125) / 7);
  const TensorStats& bf = report->tensors[1];
  CHECK(bf.nan == 1);
  CHECK(bf.inf == 1);
  CHECK(bf.min == -2.0);
  CHECK(bf.max == std::ldexp(255.0, 120));  // 0x7f7f, the largest finite bfloat16
}

// Values on a 1/8 grid: every sum is exact, so any order of additions gives
// the same bits and results can be compared with ==.
std::vector<double> Grid(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<double> v(n);
  for (double& x : v) {
    const uint32_t r = rng();
    x = (r % 41 == 0) ? kNaN : (r % 43 == 0) ? -kInf : (r % 47 == 0) ? -0.0 : (static_cast<int>(r % 2001) - 1000) / 8.0;
  }
  return v;
}

std::vector<uint16_t> GridBits(size_t n, uint32_t seed, DType d) {
  std::vector<uint16_t> bits(n);
  std::mt19937 rng(seed);
  for (uint16_t& h : bits) {
    // Small integers and halves are exact in both formats.
    const int k = static_cast<int>(rng() % 129) - 64;
    const float f = k / 2.0f;
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if (d == DType::kBF16) {
      h = static_cast<uint16_t>(u >> 16);
    } else {
      // binary16 of f: rebias the exponent; f is normal or zero here.
      const uint32_t sign = (u >> 16) & 0x8000;
      const int e = static_cast<int>((u >> 23) & 255);
      h = f == 0 ? static_cast<uint16_t>(sign)
                 : static_cast<uint16_t>(sign | ((e - 127 + 15) << 10) | ((u >> 13) & 1023));
    }
    if (rng() % 50 == 0) h = 0x7e00;  // NaN in both
  }
  return bits;
}

TEST_CASE("results do not depend on the chunk size", "[validator]") {
  FileBuilder b;
  b.Add("a", DType::kF32, Grid(1000, 1), 1);
  b.Add("b", DType::kF64, Grid(333, 2), 3);
  b.AddBits("c", DType::kF16, GridBits(777, 3, DType::kF16), 1);
  b.AddBits("d", DType::kBF16, GridBits(5000, 4, DType::kBF16), 0);
  b.Add("e", DType::kF32, Grid(3, 5), 2);
  b.AddRaw({"ints", DType::kI32, {10}, 0});
  b.Add("f", DType::kF32, Grid(9, 6), 0);
  b.Pad(5);
  // Given out of file order: reports keep the given order.
  std::swap(b.tensors()[0], b.tensors()[4]);
  auto base = ComputeStats(b.Reader(), b.size(), b.tensors(), Cpu());
  REQUIRE(base.ok());
  REQUIRE(base->tensors.size() == 6);
  CHECK(base->tensors[0].name == "e");
  CHECK(base->tensors[4].name == "a");
  CHECK(base->skipped == std::vector<std::string>{"ints"});
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{64}, size_t{1000}, size_t{4096}}) {
    INFO("chunk " << chunk);
    auto r = ComputeStats(b.Reader(), b.size(), b.tensors(), Cpu(chunk));
    REQUIRE(r.ok());
    REQUIRE(r->tensors.size() == base->tensors.size());
    for (size_t i = 0; i < r->tensors.size(); ++i) {
      const TensorStats &x = r->tensors[i], &y = base->tensors[i];
      CHECK(x.name == y.name);
      CHECK(x.count == y.count);
      CHECK(x.nan == y.nan);
      CHECK(x.inf == y.inf);
      CHECK(x.min == y.min);
      CHECK(x.max == y.max);
      CHECK(x.mean == y.mean);
      CHECK(x.l2 == y.l2);
    }
    CHECK(r->bytes == base->bytes);
  }
}

TEST_CASE("overlapping tensors are each computed in full", "[validator]") {
  FileBuilder b;
  const std::vector<double> v = Specials(3000, 9, false);
  b.Add("whole", DType::kF32, v, 4);
  const uint64_t off = b.tensors()[0].offset;
  // Inside, sharing bytes, and one reading the same bytes as F16 pairs.
  b.AddRaw({"inner", DType::kF32, {1000}, off + 4 * 500});
  b.AddRaw({"tail", DType::kF32, {2000}, off + 4 * 1000});
  b.AddRaw({"again", DType::kF32, {3000}, off});
  for (size_t chunk : {size_t{16}, size_t{4000}, size_t{1} << 20}) {
    auto r = ComputeStats(b.Reader(), b.size(), b.tensors(), Cpu(chunk));
    REQUIRE(r.ok());
    CheckStats(r->tensors[0], RefStats(v), 1e-12);
    CheckStats(r->tensors[1], RefStats(std::vector<double>(v.begin() + 500, v.begin() + 1500)), 1e-12);
    CheckStats(r->tensors[2], RefStats(std::vector<double>(v.begin() + 1000, v.end())), 1e-12);
    CheckStats(r->tensors[3], RefStats(v), 1e-12);
  }
}

TEST_CASE("tensors outside the file are rejected", "[validator]") {
  FileBuilder b;
  b.Add("ok", DType::kF32, {1, 2, 3});
  const uint64_t size = b.size();  // 12
  const std::vector<TensorRef> bad = {
      {"past_end", DType::kF32, {4}, 0},
      {"offset", DType::kF32, {1}, size},
      {"far", DType::kF16, {1}, UINT64_MAX - 1},
      {"overflow", DType::kF32, {1ull << 40, 1ull << 40}, 0},
      {"wraps", DType::kF64, {1ull << 61}, 0},  // 2^61 * 8 wraps to 0 bytes
      {"ints_too", DType::kI64, {2}, 0},
  };
  for (const TensorRef& t : bad) {
    INFO(t.name);
    std::vector<TensorRef> tensors = b.tensors();
    tensors.push_back(t);
    auto r = ComputeStats(b.Reader(), size, tensors, Cpu());
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == core::Code::kInvalidArgument);
    CHECK(r.status().reason() == "TENSOR_OUT_OF_BOUNDS");
    // The same tensor in a parent file.
    auto c = CompareWithParent(b.Reader(), size, b.tensors(), b.Reader(), size, tensors, Cpu());
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().reason() == "TENSOR_OUT_OF_BOUNDS");
  }
  // An empty tensor at the very end is inside.
  std::vector<TensorRef> tensors = {{"empty", DType::kF32, {0}, size}};
  auto r = ComputeStats(b.Reader(), size, tensors, Cpu());
  REQUIRE(r.ok());
  CHECK(r->tensors.at(0).count == 0);
  CHECK(r->tensors.at(0).mean == 0);
}

TEST_CASE("comparison with a parent", "[validator]") {
  const std::vector<double> v = Specials(5000, 21, false);
  std::vector<double> scaled = v, negated = v, zeros(5000, 0.0), shifted = v;
  for (size_t i = 0; i < v.size(); ++i) {
    scaled[i] = static_cast<float>(v[i] * 2);  // as stored: float max doubles to Inf
    negated[i] = -v[i];
    shifted[i] = static_cast<float>(v[i] + 0.25);
  }
  FileBuilder child, parent;
  child.Add("same", DType::kF32, v, 1);
  child.Add("scaled", DType::kF32, scaled);
  child.Add("negated", DType::kF32, negated, 3);
  child.Add("zeros", DType::kF32, zeros);
  child.Add("one_zero", DType::kF32, zeros);
  child.Add("shifted", DType::kF64, shifted);
  child.Add("shape", DType::kF32, {1, 2, 3, 4});
  child.AddRaw({"ints", DType::kI8, {4}, 0});
  child.Add("child_only", DType::kF32, {1});
  parent.Add("parent_only", DType::kF32, {1});
  parent.Add("shifted", DType::kF32, v);  // F64 child against F32 parent
  parent.Add("one_zero", DType::kF32, v);
  parent.Add("zeros", DType::kF32, zeros);
  parent.Add("negated", DType::kF32, v);
  parent.Add("scaled", DType::kF32, v, 2);
  parent.Add("same", DType::kF32, v);
  parent.Add("shape", DType::kF32, {1, 2, 3, 4});
  parent.tensors().back().shape = {2, 2};
  parent.AddRaw({"ints", DType::kI8, {4}, 0});

  // Reference over pairs finite on both sides.
  auto ref = [&](const std::vector<double>& a, const std::vector<double>& b, double* max_abs) {
    long double dot = 0, qa = 0, qb = 0;
    *max_abs = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!std::isfinite(a[i]) || !std::isfinite(b[i])) continue;
      *max_abs = std::max(*max_abs, std::fabs(a[i] - b[i]));
      dot += static_cast<long double>(a[i]) * b[i];
      qa += static_cast<long double>(a[i]) * a[i];
      qb += static_cast<long double>(b[i]) * b[i];
    }
    return static_cast<double>(dot / (std::sqrt(qa) * std::sqrt(qb)));
  };

  for (size_t chunk : {size_t{7}, size_t{256}, size_t{16} << 20}) {
    INFO("chunk " << chunk);
    auto r = CompareWithParent(child.Reader(), child.size(), child.tensors(), parent.Reader(), parent.size(),
                               parent.tensors(), Cpu(chunk));
    REQUIRE(r.ok());
    // The child's own statistics come along.
    REQUIRE(r->tensors.size() == 8);
    CheckStats(r->tensors[0], RefStats(v), 1e-12);
    CheckStats(r->tensors[2], RefStats(negated), 1e-12);
    CHECK(r->skipped == std::vector<std::string>{"ints"});
    CHECK(r->only_in_child == std::vector<std::string>{"child_only"});
    CHECK(r->only_in_parent == std::vector<std::string>{"parent_only"});
    REQUIRE(r->diffs.size() == 8);
    std::vector<std::string> names;
    for (const TensorDiff& d : r->diffs) names.push_back(d.name);
    CHECK(names == std::vector<std::string>{"same", "scaled", "negated", "zeros", "one_zero", "shifted", "shape",
                                            "ints"});
    const TensorDiff& same = r->diffs[0];
    CHECK(same.comparable);
    CHECK(same.max_abs_diff == 0);
    CHECK(same.cosine == Approx(1.0).epsilon(1e-12));
    double max_abs;
    const double cos_scaled = ref(scaled, v, &max_abs);
    CHECK(r->diffs[1].comparable);
    CHECK(r->diffs[1].max_abs_diff == max_abs);
    CHECK(r->diffs[1].cosine == Approx(cos_scaled).epsilon(1e-12));
    ref(negated, v, &max_abs);
    CHECK(r->diffs[2].max_abs_diff == max_abs);
    CHECK(r->diffs[2].cosine == Approx(-1.0).epsilon(1e-12));
    CHECK(r->diffs[3].comparable);
    CHECK(r->diffs[3].cosine == 1);  // both all zero
    CHECK(r->diffs[3].max_abs_diff == 0);
    CHECK(r->diffs[4].cosine == 0);  // one side zero
    const double cos_shifted = ref(shifted, v, &max_abs);
    CHECK(r->diffs[5].comparable);
    CHECK(r->diffs[5].max_abs_diff == max_abs);
    CHECK(r->diffs[5].cosine == Approx(cos_shifted).epsilon(1e-12));
    CHECK_FALSE(r->diffs[6].comparable);
    CHECK(r->diffs[6].why.find("shape") != std::string::npos);
    CHECK(r->diffs[6].cosine == 0);
    CHECK_FALSE(r->diffs[7].comparable);
    CHECK(r->diffs[7].why.find("float") != std::string::npos);
    uint64_t bytes = 0;
    for (const TensorRef& t : child.tensors()) {
      if (IsFloat(t.dtype)) bytes += t.Bytes();
    }
    // Compared tensors are also read from the parent.
    for (const char* name : {"same", "scaled", "negated", "zeros", "one_zero", "shifted"}) {
      for (const TensorRef& t : parent.tensors()) {
        if (t.name == name) bytes += t.Bytes();
      }
    }
    CHECK(r->bytes == bytes);
  }
}

// Fails the nth read (counting from 1) and every read after it.
ReadAtFn FailingReader(ReadAtFn inner, int nth) {
  auto calls = std::make_shared<int>(0);
  return [inner, nth, calls](uint64_t offset, size_t n, char* out) {
    if (++*calls >= nth) return core::DataLoss("injected read failure");
    return inner(offset, n, out);
  };
}

TEST_CASE("read errors are returned", "[validator]") {
  FileBuilder b;
  b.Add("a", DType::kF32, Specials(100, 1, false));
  b.Add("b", DType::kF32, Specials(100, 2, false));
  for (int nth : {1, 2, 5}) {
    INFO("failing read " << nth);
    auto r = ComputeStats(FailingReader(b.Reader(), nth), b.size(), b.tensors(), Cpu(64));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == core::Code::kDataLoss);
    auto c = CompareWithParent(b.Reader(), b.size(), b.tensors(), FailingReader(b.Reader(), nth), b.size(),
                               b.tensors(), Cpu(64));
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().code() == core::Code::kDataLoss);
  }
}

TEST_CASE("FileReader reads a local file with pread", "[validator]") {
  testing::TempDir dir;
  FileBuilder b;
  b.Add("w", DType::kF32, Specials(10000, 5, false), 3);
  REQUIRE(core::WriteFileAtomic(dir.Sub("m.bin"), b.data()).ok());
  uint64_t size = 0;
  auto reader = FileReader(dir.Sub("m.bin"), &size);
  REQUIRE(reader.ok());
  CHECK(size == b.size());
  auto from_file = ComputeStats(*reader, size, b.tensors(), Cpu(1000));
  auto from_memory = ComputeStats(b.Reader(), b.size(), b.tensors(), Cpu(1000));
  REQUIRE(from_file.ok());
  REQUIRE(from_memory.ok());
  CHECK(from_file->tensors[0].mean == from_memory->tensors[0].mean);
  CHECK(from_file->tensors[0].nan == from_memory->tensors[0].nan);
  // A size larger than the file: the short read is an error, not garbage.
  std::vector<TensorRef> beyond = {{"x", DType::kF32, {4}, size}};
  auto short_read = ComputeStats(*reader, size + 16, beyond, Cpu());
  REQUIRE_FALSE(short_read.ok());
  CHECK(short_read.status().code() == core::Code::kDataLoss);

  auto missing = FileReader(dir.Sub("absent"), &size);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == core::Code::kNotFound);
}

TEST_CASE("the JSON report holds only finite numbers", "[validator]") {
  FileBuilder b;
  b.Add("huge", DType::kF64, {1e308, 1e308, kNaN});  // sum and l2 overflow
  b.AddRaw({"ints", DType::kU8, {1}, 0});
  auto r = ComputeStats(b.Reader(), b.size(), b.tensors(), Cpu());
  REQUIRE(r.ok());
  CHECK(std::isinf(r->tensors[0].l2));
  const core::Json j = StatsReportToJson(*r);
  for (const char* key : {"backend", "bytes", "seconds", "total_nan", "total_inf", "tensors", "skipped", "diffs",
                          "only_in_child", "only_in_parent"}) {
    CHECK(j.contains(key));
  }
  CHECK(j["backend"] == "cpu");
  CHECK(j["total_nan"] == 1);
  const core::Json& t = j["tensors"][0];
  CHECK(t["name"] == "huge");
  CHECK(t["dtype"] == "F64");
  CHECK(t["shape"] == core::Json::array({3}));
  CHECK(t["count"] == 3);
  CHECK(t["max"] == 1e308);
  CHECK(t["l2"] == std::numeric_limits<double>::max());
  CHECK(j["skipped"] == core::Json::array({"ints"}));
  const std::string text = core::DumpJson(j);
  CHECK(text.find("null") == std::string::npos);  // nlohmann writes NaN/Inf as null
}

TEST_CASE("backend choice", "[validator]") {
  FileBuilder b;
  b.Add("w", DType::kF32, {1, 2});
  auto cpu = ComputeStats(b.Reader(), b.size(), b.tensors(), Cpu());
  REQUIRE(cpu.ok());
  CHECK(cpu->backend == "cpu");
  auto cuda = ComputeStats(b.Reader(), b.size(), b.tensors(), StatsOptions{Backend::kCuda});
  auto automatic = ComputeStats(b.Reader(), b.size(), b.tensors(), StatsOptions{Backend::kAuto});
  REQUIRE(automatic.ok());
  if (CudaAvailable()) {
    REQUIRE(cuda.ok());
    CHECK(cuda->backend == "cuda:" + CudaDeviceName());
    CHECK(automatic->backend == cuda->backend);
  } else {
    REQUIRE_FALSE(cuda.ok());
    CHECK(cuda.status().code() == core::Code::kUnavailable);
    CHECK(cuda.status().reason() == "NO_CUDA_DEVICE");
    CHECK(automatic->backend == "cpu");
    CHECK(CudaDeviceName().empty());
  }
}

// Tolerance: counts, min, max and max_abs_diff exact; mean, l2 and cosine
// to a relative 1e-6 (sums in double, added in another order).
TEST_CASE("CUDA and CPU agree on random data of every float type", "[validator][cuda]") {
  if (!CudaAvailable()) {
    WARN("no CUDA device: the GPU agreement test did not run");
    return;
  }
  FileBuilder child, parent;
  std::mt19937 rng(77);
  for (DType d : {DType::kF32, DType::kF64}) {
    for (size_t n : {size_t{1}, size_t{1000}, size_t{300000}}) {
      const std::string name = std::string(DTypeName(d)) + "_" + std::to_string(n);
      std::vector<double> a = Specials(n, static_cast<uint32_t>(rng()), d == DType::kF64, false);
      std::vector<double> p = a;
      for (double& x : p) x = static_cast<float>(x * 1.001 + 0.01);
      child.Add(name, d, a, rng() % 5);
      parent.Add(name, DType::kF32, p, rng() % 5);
    }
  }
  for (DType d : {DType::kF16, DType::kBF16}) {
    // Moderate exponents (sums of wildly different magnitudes would make
    // the order of additions matter beyond 1e-6), some subnormals, zeros,
    // NaN and Inf.
    std::vector<uint16_t> bits(200001);
    const int bias = d == DType::kF16 ? 15 : 127, shift = d == DType::kF16 ? 10 : 7;
    for (uint16_t& h : bits) {
      const uint32_t r = rng();
      const int e = (r % 100 == 0) ? 0 : (r % 101 == 0) ? (d == DType::kF16 ? 31 : 255) : bias - 6 + (r >> 8) % 12;
      h = static_cast<uint16_t>((r & 0x8000) | (e << shift) | ((r >> 16) & ((1 << shift) - 1)));
    }
    const std::string name = std::string(DTypeName(d));
    child.AddBits(name, d, bits, 1);
    for (uint16_t& h : bits) h ^= static_cast<uint16_t>(rng() & 3);
    parent.AddBits(name, d == DType::kF16 ? DType::kBF16 : DType::kF16, bits);
  }
  for (size_t chunk : {size_t{4096}, size_t{16} << 20}) {
    auto cpu = CompareWithParent(child.Reader(), child.size(), child.tensors(), parent.Reader(), parent.size(),
                                 parent.tensors(), Cpu(chunk));
    auto gpu = CompareWithParent(child.Reader(), child.size(), child.tensors(), parent.Reader(), parent.size(),
                                 parent.tensors(), StatsOptions{Backend::kCuda, chunk});
    REQUIRE(cpu.ok());
    REQUIRE(gpu.ok());
    CHECK(gpu->backend.rfind("cuda:", 0) == 0);
    REQUIRE(gpu->tensors.size() == cpu->tensors.size());
    for (size_t i = 0; i < cpu->tensors.size(); ++i) {
      const TensorStats &g = gpu->tensors[i], &c = cpu->tensors[i];
      INFO(c.name);
      CHECK(g.nan == c.nan);
      CHECK(g.inf == c.inf);
      CHECK(g.min == c.min);
      CHECK(g.max == c.max);
      CHECK(Close(g.mean, c.mean, 1e-6));
      CHECK(Close(g.l2, c.l2, 1e-6));
    }
    REQUIRE(gpu->diffs.size() == cpu->diffs.size());
    for (size_t i = 0; i < cpu->diffs.size(); ++i) {
      INFO(cpu->diffs[i].name);
      CHECK(gpu->diffs[i].comparable == cpu->diffs[i].comparable);
      CHECK(gpu->diffs[i].max_abs_diff == cpu->diffs[i].max_abs_diff);
      CHECK(Close(gpu->diffs[i].cosine, cpu->diffs[i].cosine, 1e-6));
    }
  }
}

}  // namespace
}  // namespace sigil::validator
