// Measures weight statistics against the ceilings that bound them: reading
// the file from the page cache with pread and no computation, and memory
// bandwidth (a sum over an in-memory buffer, and memcpy). The statistics
// should come close to the read ceiling.
//
//   stats_bench [--size-mib N] [--runs N] [--chunk-kib N] [--dir DIR] [--file PATH.safetensors]
//
// Chunks are 1 MiB unless --chunk-kib says otherwise (StatsOptions's
// default is 16 MiB). Without --file it writes a safetensors file of F32
// tensors (N MiB, default 1024) and a quarter-size BF16 one into a temporary
// directory. The files are read once before timing, so every figure is from
// the page cache.
// The parent comparison compares a file with itself: twice the bytes read.
// The CPU path reduces on one thread while a second reads the next chunk.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "core/json.h"
#include "validator/tensor_stats.h"

namespace {

using namespace sigil;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

int Fail(const core::Status& s) {
  std::fprintf(stderr, "stats_bench: %s\n", s.ToString().c_str());
  return 1;
}

// Best of `runs` timings of fn, which returns the bytes it processed.
struct Timing {
  double gbps = 0;
  double seconds = 0;
  uint64_t bytes = 0;
};

core::Status Best(int runs, const std::function<core::Result<uint64_t>()>& fn, Timing* out) {
  for (int i = 0; i < runs; ++i) {
    const auto start = Clock::now();
    core::Result<uint64_t> bytes = fn();
    const double s = Seconds(start);
    if (!bytes.ok()) return bytes.status();
    const double gbps = static_cast<double>(*bytes) / s / 1e9;
    if (gbps > out->gbps) *out = {gbps, s, *bytes};
  }
  return core::OkStatus();
}

void Print(const char* what, const Timing& t) {
  std::printf("%-34s %7.2f GB/s  (%.0f MiB in %.3f s)\n", what, t.gbps, static_cast<double>(t.bytes) / (1 << 20),
              t.seconds);
}

// Writes a safetensors file of tensors of `dtype` (F32 or BF16) holding
// normally distributed values, `total` bytes of data in tensors of 16 MiB.
core::Status WriteSafetensors(const std::string& path, validator::DType dtype, uint64_t total) {
  const uint64_t tensor_bytes = 16u << 20;
  const uint64_t n = std::max<uint64_t>(1, total / tensor_bytes);
  const size_t esize = validator::DTypeSize(dtype);
  nlohmann::json header = nlohmann::json::object();
  for (uint64_t i = 0; i < n; ++i) {
    header["layer." + std::to_string(i) + ".weight"] = {{"dtype", std::string(validator::DTypeName(dtype))},
                                                        {"shape", {4096, tensor_bytes / esize / 4096}},
                                                        {"data_offsets", {i * tensor_bytes, (i + 1) * tensor_bytes}}};
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string prefix(8, '\0');
  const uint64_t len = text.size();
  std::memcpy(prefix.data(), &len, 8);

  core::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return core::ErrnoStatus(errno, "create " + path);
  core::Status s = core::WriteAll(fd.get(), (prefix + text).data(), 8 + text.size(), path);
  if (!s.ok()) return s;
  std::vector<float> values(tensor_bytes / 4);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  for (float& v : values) v = normal(rng);
  std::vector<char> data(tensor_bytes);
  if (dtype == validator::DType::kF32) {
    std::memcpy(data.data(), values.data(), tensor_bytes);
  } else {
    for (size_t i = 0; i < tensor_bytes / 2; ++i) {
      uint32_t bits;
      std::memcpy(&bits, &values[i], 4);
      const uint16_t h = static_cast<uint16_t>(bits >> 16);
      std::memcpy(data.data() + 2 * i, &h, 2);
    }
  }
  for (uint64_t i = 0; i < n; ++i) {
    s = core::WriteAll(fd.get(), data.data(), data.size(), path);
    if (!s.ok()) return s;
  }
  return core::OkStatus();
}

// The tensors of a safetensors file, from its JSON header.
core::Result<std::vector<validator::TensorRef>> ReadHeader(const validator::ReadAtFn& read, uint64_t size) {
  uint64_t len = 0;
  if (size < 8) return core::InvalidArgument("not a safetensors file");
  core::Status s = read(0, 8, reinterpret_cast<char*>(&len));
  if (!s.ok()) return s;
  if (len > size - 8 || len > (100u << 20)) return core::InvalidArgument("bad safetensors header length");
  std::string text(len, '\0');
  s = read(8, len, text.data());
  if (!s.ok()) return s;
  core::JsonLimits limits;
  limits.max_bytes = 100u << 20;
  core::Result<core::Json> header = core::ParseJson(text, limits);
  if (!header.ok()) return header.status();
  std::vector<validator::TensorRef> tensors;
  try {
    for (const auto& [name, info] : header->items()) {
      if (name == "__metadata__") continue;
      core::Result<validator::DType> dtype = validator::ParseDType(info.at("dtype").get<std::string>());
      if (!dtype.ok()) return dtype.status();
      tensors.push_back({name, *dtype, info.at("shape").get<std::vector<uint64_t>>(),
                         8 + len + info.at("data_offsets").at(0).get<uint64_t>()});
    }
  } catch (const nlohmann::json::exception& e) {
    return core::InvalidArgument(std::string("bad safetensors header: ") + e.what());
  }
  std::sort(tensors.begin(), tensors.end(), [](const auto& a, const auto& b) { return a.offset < b.offset; });
  return tensors;
}

// Plain sequential pread of the whole file in chunks as ComputeStats reads
// it: the I/O ceiling.
core::Result<uint64_t> ReadAll(const std::string& path, size_t chunk) {
  core::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return core::ErrnoStatus(errno, "open " + path);
  std::vector<char> buffer(chunk);
  uint64_t total = 0;
  while (true) {
    core::Result<size_t> got = core::PreadSome(fd.get(), buffer.data(), buffer.size(), total);
    if (!got.ok()) return got.status();
    if (*got == 0) return total;
    total += *got;
  }
}

core::Status BenchFile(const std::string& path, int runs, size_t chunk) {
  uint64_t size = 0;
  core::Result<validator::ReadAtFn> read = validator::FileReader(path, &size);
  if (!read.ok()) return read.status();
  core::Result<std::vector<validator::TensorRef>> tensors = ReadHeader(*read, size);
  if (!tensors.ok()) return tensors.status();
  std::printf("\n%s: %zu tensors, %.0f MiB, chunks of %zu KiB\n", path.c_str(), tensors->size(),
              static_cast<double>(size) / (1 << 20), chunk >> 10);
  core::Result<uint64_t> warm = ReadAll(path, chunk);  // into the page cache
  if (!warm.ok()) return warm.status();

  Timing t;
  core::Status s = Best(runs, [&] { return ReadAll(path, chunk); }, &t);
  if (!s.ok()) return s;
  Print("pread, no compute (I/O ceiling)", t);

  auto stats = [&](validator::Backend backend, bool compare) -> core::Result<uint64_t> {
    validator::StatsOptions options;
    options.backend = backend;
    options.chunk_bytes = chunk;
    core::Result<validator::StatsReport> r =
        compare ? validator::CompareWithParent(*read, size, *tensors, *read, size, *tensors, options)
                : validator::ComputeStats(*read, size, *tensors, options);
    if (!r.ok()) return r.status();
    if (r->total_nan != 0 || r->tensors.empty()) return core::Internal("unexpected statistics");
    return r->bytes;
  };
  std::vector<std::pair<std::string, validator::Backend>> backends = {{"cpu", validator::Backend::kCpu}};
  if (validator::CudaAvailable()) backends.push_back({"cuda", validator::Backend::kCuda});
  for (const auto& [name, backend] : backends) {
    Timing c, d;
    s = Best(runs, [&, backend = backend] { return stats(backend, false); }, &c);
    if (!s.ok()) return s;
    Print(("ComputeStats " + name).c_str(), c);
    s = Best(runs, [&, backend = backend] { return stats(backend, true); }, &d);
    if (!s.ok()) return s;
    Print(("CompareWithParent " + name + " (2 files)").c_str(), d);
  }
  return core::OkStatus();
}

void BenchMemory(int runs) {
  const size_t bytes = size_t{1} << 30;
  std::vector<uint64_t> a(bytes / 8, 1), b(bytes / 8, 2);
  volatile uint64_t sink = 0;
  Timing sum, copy;
  core::Status s = Best(runs,
                        [&]() -> core::Result<uint64_t> {
                          uint64_t acc[4] = {0, 0, 0, 0};
                          for (size_t i = 0; i < a.size(); i += 4) {
                            for (int k = 0; k < 4; ++k) acc[k] += a[i + k];
                          }
                          sink = acc[0] + acc[1] + acc[2] + acc[3];
                          return bytes;
                        },
                        &sum);
  s.IgnoreError();  // cannot fail
  Print("memory: sum over 1 GiB", sum);
  s = Best(runs,
           [&]() -> core::Result<uint64_t> {
             std::memcpy(b.data(), a.data(), bytes);
             sink = b[12345];
             return bytes;
           },
           &copy);
  s.IgnoreError();
  Print("memory: memcpy 1 GiB (bytes copied)", copy);
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t size_mib = 1024;
  int runs = 3;
  size_t chunk = 1u << 20;  // see StatsOptions::chunk_bytes
  std::string dir, file;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 < argc && arg == "--size-mib") {
      size_mib = std::strtoull(argv[++i], nullptr, 10);
    } else if (i + 1 < argc && arg == "--runs") {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (i + 1 < argc && arg == "--chunk-kib") {
      chunk = std::strtoull(argv[++i], nullptr, 10) << 10;
    } else if (i + 1 < argc && arg == "--dir") {
      dir = argv[++i];
    } else if (i + 1 < argc && arg == "--file") {
      file = argv[++i];
    } else {
      std::fprintf(stderr, "usage: stats_bench [--size-mib N] [--runs N] [--chunk-kib N] [--dir DIR] [--file PATH]\n");
      return 2;
    }
  }
  std::printf("threads: CPU path reduces on 1 thread, reads ahead on 1 more (%u hardware threads); CUDA %s\n",
              std::thread::hardware_concurrency(),
              validator::CudaAvailable() ? ("available: " + validator::CudaDeviceName()).c_str() : "not available");
  BenchMemory(runs);

  if (!file.empty()) {
    core::Status s = BenchFile(file, runs, chunk);
    return s.ok() ? 0 : Fail(s);
  }
  bool made_dir = false;
  if (dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp != nullptr ? tmp : "/tmp") + "/stats_bench.XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) return Fail(core::ErrnoStatus(errno, "mkdtemp"));
    dir = templ;
    made_dir = true;
  }
  const std::string f32 = core::JoinPath(dir, "f32.safetensors");
  const std::string bf16 = core::JoinPath(dir, "bf16.safetensors");
  core::Status s = WriteSafetensors(f32, validator::DType::kF32, size_mib << 20);
  if (s.ok()) s = WriteSafetensors(bf16, validator::DType::kBF16, (size_mib << 20) / 4);
  if (s.ok()) s = BenchFile(f32, runs, chunk);
  if (s.ok()) s = BenchFile(bf16, runs, chunk);
  if (made_dir) core::RemoveTree(dir).IgnoreError();
  return s.ok() ? 0 : Fail(s);
}
