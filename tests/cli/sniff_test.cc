#include "cli/sniff.h"

#include <catch2/catch.hpp>

#include "core/fs.h"
#include "tests/support/temp_dir.h"

namespace sigil::cli {
namespace {

std::string SafetensorsHead(uint64_t n) {
  std::string h(8, '\0');
  for (int i = 0; i < 8; ++i) h[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return h + "{\"__metadata__\"";
}

TEST_CASE("formats are sniffed from the first bytes and the name", "[cli]") {
  struct Case {
    std::string head, name, format;
  };
  const Case cases[] = {
      {SafetensorsHead(120), "model.safetensors", "safetensors"},
      {SafetensorsHead(120), "weights", "safetensors"},
      {SafetensorsHead(0), "model.safetensors", "unknown"},  // implausible header length
      {std::string("GGUF\x03\0\0\0", 8), "m.gguf", "gguf"},
      {std::string("PK\x03\x04", 4) + "rest", "pytorch_model.bin", "pytorch"},
      {std::string("PK\x03\x04", 4) + "rest", "model.PT", "pytorch"},
      {std::string("PK\x03\x04", 4) + "rest", "arrays.npz", "numpy"},
      {std::string("PK\x03\x04", 4) + "rest", "archive.zip", "unknown"},
      {std::string("\x80\x02}q\0", 5), "model.pth", "pytorch"},
      {std::string("\x80\x04\x95", 3), "data.pkl", "pickle"},
      {std::string("\x08\x07\x12\x07pytorch", 11), "model.onnx", "onnx"},
      {std::string("\x08\x07\x12", 3), "model.bin", "unknown"},
      {"\x93NUMPY\x01\x00", "a.npy", "numpy"},
      {"\x89HDF\r\n\x1a\n", "model.h5", "keras"},
      {"{\"a\": 1}", "config.json", "unknown"},
      {"", "empty", "unknown"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    CHECK(SniffFormat(c.head, c.name) == c.format);
  }
}

TEST_CASE("files are sniffed from disk, short ones included", "[cli]") {
  testing::TempDir dir;
  REQUIRE(core::WriteFileAtomic(dir.Sub("m.gguf"), "GGUF").ok());
  REQUIRE(core::WriteFileAtomic(dir.Sub("empty"), "").ok());
  auto gguf = SniffFile(dir.Sub("m.gguf"), "m.gguf");
  REQUIRE(gguf.ok());
  CHECK(*gguf == "gguf");
  auto empty = SniffFile(dir.Sub("empty"), "empty");
  REQUIRE(empty.ok());
  CHECK(*empty == "unknown");
  CHECK(SniffFile(dir.Sub("missing"), "missing").status().code() == core::Code::kNotFound);
}

}  // namespace
}  // namespace sigil::cli
