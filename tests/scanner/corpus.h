// Builders for the scanner's test corpus: pickle opcode streams, zip
// archives (with deliberate inconsistencies), safetensors, GGUF and NumPy
// files, assembled byte by byte. Nothing here is ever loaded.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "scanner/scanner.h"

namespace sigil::scanner::testing {

std::string Le16(uint16_t v);
std::string Le32(uint32_t v);
std::string Le64(uint64_t v);

// Pickle opcodes, appended in order.
class Pickle {
 public:
  explicit Pickle(int protocol = 2) {
    if (protocol >= 2) Proto(protocol);
  }
  Pickle& Proto(int p) { return Op("\x80").Raw(std::string(1, static_cast<char>(p))); }
  Pickle& Op(const std::string& bytes) { return Raw(bytes); }
  Pickle& Raw(const std::string& bytes) {
    s_ += bytes;
    return *this;
  }
  Pickle& Global(const std::string& module, const std::string& name) {
    return Raw("c" + module + "\n" + name + "\n");
  }
  Pickle& Inst(const std::string& module, const std::string& name) {
    return Raw("i" + module + "\n" + name + "\n");
  }
  Pickle& Str(const std::string& v);  // SHORT_BINUNICODE or BINUNICODE
  Pickle& Bytes(const std::string& v) { return Raw("C" + std::string(1, static_cast<char>(v.size())) + v); }
  Pickle& Int(uint8_t v) { return Raw("K" + std::string(1, static_cast<char>(v))); }
  Pickle& Mark() { return Raw("("); }
  Pickle& Tuple() { return Raw("t"); }
  Pickle& Tuple1() { return Raw("\x85"); }
  Pickle& Tuple2() { return Raw("\x86"); }
  Pickle& EmptyTuple() { return Raw(")"); }
  Pickle& EmptyDict() { return Raw("}"); }
  Pickle& Reduce() { return Raw("R"); }
  Pickle& Build() { return Raw("b"); }
  Pickle& NewObj() { return Raw("\x81"); }
  Pickle& Obj() { return Raw("o"); }
  Pickle& StackGlobal() { return Raw("\x93"); }
  Pickle& Memoize() { return Raw("\x94"); }
  Pickle& Put(uint8_t i) { return Raw("q" + std::string(1, static_cast<char>(i))); }
  Pickle& Get(uint8_t i) { return Raw("h" + std::string(1, static_cast<char>(i))); }
  Pickle& Pop() { return Raw("0"); }
  Pickle& None() { return Raw("N"); }
  Pickle& Frame(uint64_t n) { return Raw("\x95" + Le64(n)); }
  Pickle& Stop() { return Raw("."); }
  // The classic payload: callable(*('echo pwned',)).
  Pickle& Call(const std::string& module, const std::string& name, const std::string& arg) {
    return Global(module, name).Str(arg).Tuple1().Reduce();
  }
  const std::string& bytes() const { return s_; }
  size_t size() const { return s_.size(); }

 private:
  std::string s_;
};

// A state dict the way torch.save writes data.pkl (protocol 2), for
// `tensors` float tensors stored under persistent keys "0", "1", ...
std::string TorchDataPkl(int tensors);

struct ZipMember {
  ZipMember(std::string n, std::string d) : name(std::move(n)), data(std::move(d)) {}
  std::string name;
  std::string data;
  bool deflate = false;
  // Deliberate inconsistencies.
  std::string local_name;        // local header name when not empty
  uint16_t flags = 0;            // general purpose flags (both headers)
  bool bad_crc = false;          // store a wrong CRC (both headers)
  int64_t declared_size = -1;    // uncompressed size to declare when >= 0
  bool hidden = false;           // local header and data only, no central entry
};

// Writes a zip with local headers, a central directory and an end record;
// with zip64, sizes and offsets live in zip64 extra fields and the end
// record points to a zip64 end record, as large torch.save archives do.
std::string BuildZip(const std::vector<ZipMember>& members, bool zip64 = false);

// A torch.save-style archive: <root>/data.pkl, data/<i>, version.
std::string TorchZip(const std::string& root, const std::string& data_pkl,
                     std::vector<ZipMember> extra = {});

// A ustar archive of (name, data, typeflag) members, with end blocks.
struct TarMember {
  std::string name;
  std::string data;
  char type = '0';
};
std::string BuildTar(const std::vector<TarMember>& members);

// safetensors bytes: 8-byte length, the header padded with spaces to a
// multiple of 8 (as the Rust writer does), then data_size bytes.
std::string Safetensors(const std::string& header_json, uint64_t data_size);

// GGUF writer (version 3), following gguf-py's layout.
class Gguf {
 public:
  Gguf& KvU32(const std::string& key, uint32_t v);
  Gguf& KvString(const std::string& key, const std::string& v);
  Gguf& KvStringArray(const std::string& key, const std::vector<std::string>& v);
  // A tensor of ggml type (0 = F32, 1 = F16, 8 = Q8_0) with dims; its offset
  // follows the previous one (padded) unless given.
  Gguf& Tensor(const std::string& name, std::vector<uint64_t> dims, uint32_t type,
               int64_t offset = -1);
  // REQUIRES: counts override the real ones only for hostile tests.
  std::string Build(int64_t tensor_count = -1, int64_t kv_count = -1,
                    uint64_t alignment = 32) const;

 private:
  struct Info {
    std::string name;
    std::vector<uint64_t> dims;
    uint32_t type;
    int64_t offset;
  };
  std::string kv_;
  uint64_t kv_count_ = 0;
  std::vector<Info> tensors_;
};

std::string GgufString(const std::string& s);

// .npy version 1.0 with the header dict literal padded to a multiple of 64.
std::string Npy(const std::string& header_dict, const std::string& data);

// Finds a finding by rule (nullptr if none).
const Finding* FindRule(const FileReport& r, const std::string& rule);
// Every rule, for failure messages.
std::string Rules(const FileReport& r);

}  // namespace sigil::scanner::testing
