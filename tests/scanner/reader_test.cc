#include <cstring>
#include <string>

#include <catch2/catch.hpp>

#include "scanner/scanner.h"
#include "tests/scanner/corpus.h"

namespace sigil::scanner {
namespace {

using testing::Pickle;

// A read function over bytes in memory that counts what it was asked for.
struct CountingReader {
  std::string data;
  uint64_t bytes_read = 0;
  uint64_t highest_end = 0;

  ReadAtFn Fn() {
    return [this](uint64_t offset, size_t n, char* out) {
      std::memcpy(out, data.data() + offset, n);
      bytes_read += n;
      if (offset + n > highest_end) highest_end = offset + n;
      return core::OkStatus();
    };
  }
};

TEST_CASE("ScanReader reports what ScanBytes reports", "[scanner][reader]") {
  CountingReader r;
  r.data = Pickle().Call("os", "system", "echo pwned").Stop().bytes();
  auto report = ScanReader(r.Fn(), r.data.size(), {}, "model.pkl");
  REQUIRE(report.ok());
  FileReport expected = ScanBytes(r.data, {}, "model.pkl");
  CHECK(report->path == "model.pkl");
  CHECK(report->verdict == Verdict::kBlocked);
  CHECK(report->format == expected.format);
  CHECK(testing::Rules(*report) == testing::Rules(expected));
  CHECK(report->globals == expected.globals);
}

TEST_CASE("ScanReader skips safetensors tensor data", "[scanner][reader]") {
  CountingReader r;
  constexpr uint64_t kData = 64ull << 20;
  std::string header = R"({"w":{"dtype":"F32","shape":[4194304,4],"data_offsets":[0,67108864]}})";
  r.data = testing::Safetensors(header, kData);
  REQUIRE(r.data.size() > kData);
  auto report = ScanReader(r.Fn(), r.data.size(), {}, "model.safetensors");
  REQUIRE(report.ok());
  CHECK(report->format == Format::kSafetensors);
  CHECK(report->verdict == Verdict::kClean);
  // The header and a small sniff, never the 64 MiB of weights.
  CHECK(r.bytes_read < (1u << 20));
}

TEST_CASE("ScanReader returns the read error", "[scanner][reader]") {
  std::string data = Pickle().Global("collections", "OrderedDict").EmptyTuple().Reduce().Stop().bytes();
  ReadAtFn failing = [](uint64_t, size_t, char*) { return core::DataLoss("disk on fire"); };
  auto report = ScanReader(failing, data.size(), {}, "x.pkl");
  REQUIRE_FALSE(report.ok());
  CHECK(report.status().code() == core::Code::kDataLoss);
  CHECK(report.status().message().find("disk on fire") != std::string::npos);
  CHECK(report.status().message().find("x.pkl") != std::string::npos);
}

}  // namespace
}  // namespace sigil::scanner
