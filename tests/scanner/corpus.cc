#include "tests/scanner/corpus.h"

#include <zlib.h>

#include <cstdio>
#include <stdexcept>

namespace sigil::scanner::testing {

std::string Le16(uint16_t v) {
  return std::string{static_cast<char>(v & 0xff), static_cast<char>(v >> 8)};
}

std::string Le32(uint32_t v) { return Le16(v & 0xffff) + Le16(static_cast<uint16_t>(v >> 16)); }

std::string Le64(uint64_t v) {
  return Le32(static_cast<uint32_t>(v)) + Le32(static_cast<uint32_t>(v >> 32));
}

Pickle& Pickle::Str(const std::string& v) {
  if (v.size() < 256) return Raw("\x8c" + std::string(1, static_cast<char>(v.size())) + v);
  return Raw("X" + Le32(static_cast<uint32_t>(v.size())) + v);
}

std::string TorchDataPkl(int tensors) {
  Pickle p(2);
  p.Global("collections", "OrderedDict").EmptyTuple().Reduce().Put(0).Mark();
  for (int i = 0; i < tensors; ++i) {
    p.Str("layer" + std::to_string(i) + ".weight");
    p.Global("torch._utils", "_rebuild_tensor_v2");
    p.Mark();
    p.Mark().Str("storage").Global("torch", "FloatStorage").Str(std::to_string(i)).Str("cpu")
        .Int(4).Tuple().Raw("Q");
    p.Int(0).Int(2).Int(2).Tuple2().Int(2).Int(1).Tuple2().Raw("\x89");
    p.Global("collections", "OrderedDict").EmptyTuple().Reduce();
    p.Tuple().Reduce();
  }
  p.Raw("u").Stop();
  return p.bytes();
}

namespace {

std::string RawDeflate(const std::string& data) {
  z_stream z{};
  if (deflateInit2(&z, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2");
  }
  std::string out(deflateBound(&z, data.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("deflate");
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace

std::string BuildZip(const std::vector<ZipMember>& members, bool zip64) {
  std::string out;
  std::string central;
  uint16_t count = 0;
  for (const ZipMember& m : members) {
    std::string stored = m.deflate ? RawDeflate(m.data) : m.data;
    uint32_t crc = static_cast<uint32_t>(
        crc32(0, reinterpret_cast<const Bytef*>(m.data.data()), static_cast<uInt>(m.data.size())));
    if (m.bad_crc) crc ^= 0xdeadbeef;
    uint64_t size = m.declared_size >= 0 ? static_cast<uint64_t>(m.declared_size) : m.data.size();
    uint16_t method = m.deflate ? 8 : 0;
    std::string local_name = m.local_name.empty() ? m.name : m.local_name;
    uint64_t offset = out.size();
    uint32_t size32 = zip64 ? 0xffffffff : static_cast<uint32_t>(size);
    uint32_t comp32 = zip64 ? 0xffffffff : static_cast<uint32_t>(stored.size());
    std::string local_extra = zip64 ? Le16(1) + Le16(16) + Le64(size) + Le64(stored.size()) : "";
    out += Le32(0x04034b50) + Le16(zip64 ? 45 : 20) + Le16(m.flags) + Le16(method) + Le16(0) +
           Le16(0x21) + Le32(crc) + Le32(comp32) + Le32(size32) +
           Le16(static_cast<uint16_t>(local_name.size())) +
           Le16(static_cast<uint16_t>(local_extra.size())) + local_name + local_extra + stored;
    if (m.hidden) continue;
    std::string extra =
        zip64 ? Le16(1) + Le16(24) + Le64(size) + Le64(stored.size()) + Le64(offset) : "";
    central += Le32(0x02014b50) + Le16(0x031e) + Le16(zip64 ? 45 : 20) + Le16(m.flags) +
               Le16(method) + Le16(0) + Le16(0x21) + Le32(crc) + Le32(comp32) + Le32(size32) +
               Le16(static_cast<uint16_t>(m.name.size())) +
               Le16(static_cast<uint16_t>(extra.size())) + Le16(0) + Le16(0) + Le16(0) +
               Le32(0100644u << 16) + Le32(zip64 ? 0xffffffff : static_cast<uint32_t>(offset)) +
               m.name + extra;
    ++count;
  }
  uint64_t cd_offset = out.size();
  out += central;
  if (zip64) {
    uint64_t record = out.size();
    out += Le32(0x06064b50) + Le64(44) + Le16(45) + Le16(45) + Le32(0) + Le32(0) + Le64(count) +
           Le64(count) + Le64(central.size()) + Le64(cd_offset);
    out += Le32(0x07064b50) + Le32(0) + Le64(record) + Le32(1);
    out += Le32(0x06054b50) + Le16(0) + Le16(0) + Le16(0xffff) + Le16(0xffff) +
           Le32(0xffffffff) + Le32(0xffffffff) + Le16(0);
    return out;
  }
  out += Le32(0x06054b50) + Le16(0) + Le16(0) + Le16(count) + Le16(count) +
         Le32(static_cast<uint32_t>(central.size())) + Le32(static_cast<uint32_t>(cd_offset)) +
         Le16(0);
  return out;
}

std::string TorchZip(const std::string& root, const std::string& data_pkl,
                     std::vector<ZipMember> extra) {
  std::vector<ZipMember> members;
  members.push_back({root + "/data.pkl", data_pkl});
  members.push_back({root + "/data/0", std::string(16, '\0')});
  members.push_back({root + "/version", "3\n"});
  for (auto& m : extra) members.push_back(std::move(m));
  return BuildZip(members);
}

std::string BuildTar(const std::vector<TarMember>& members) {
  std::string out;
  for (const TarMember& m : members) {
    std::string h(512, '\0');
    auto put = [&](size_t at, const std::string& v) { h.replace(at, v.size(), v); };
    char size[13];
    std::snprintf(size, sizeof(size), "%011llo", static_cast<unsigned long long>(m.data.size()));
    put(0, m.name.substr(0, 100));
    put(100, "0000644");
    put(108, "0000000");
    put(116, "0000000");
    put(124, size);
    put(136, "00000000000");
    put(148, "        ");
    h[156] = m.type;
    put(257, std::string("ustar\0" "00", 8));
    unsigned sum = 0;
    for (char c : h) sum += static_cast<unsigned char>(c);
    char chk[8];
    std::snprintf(chk, sizeof(chk), "%06o", sum);
    put(148, std::string(chk, 6) + std::string("\0 ", 2));
    out += h + m.data + std::string((512 - m.data.size() % 512) % 512, '\0');
  }
  return out + std::string(1024, '\0');
}

std::string Safetensors(const std::string& header_json, uint64_t data_size) {
  std::string header = header_json;
  while (header.size() % 8 != 0) header.push_back(' ');
  return Le64(header.size()) + header + std::string(data_size, '\x01');
}

std::string GgufString(const std::string& s) { return Le64(s.size()) + s; }

Gguf& Gguf::KvU32(const std::string& key, uint32_t v) {
  kv_ += GgufString(key) + Le32(4) + Le32(v);
  ++kv_count_;
  return *this;
}

Gguf& Gguf::KvString(const std::string& key, const std::string& v) {
  kv_ += GgufString(key) + Le32(8) + GgufString(v);
  ++kv_count_;
  return *this;
}

Gguf& Gguf::KvStringArray(const std::string& key, const std::vector<std::string>& v) {
  kv_ += GgufString(key) + Le32(9) + Le32(8) + Le64(v.size());
  for (const auto& s : v) kv_ += GgufString(s);
  ++kv_count_;
  return *this;
}

Gguf& Gguf::Tensor(const std::string& name, std::vector<uint64_t> dims, uint32_t type,
                   int64_t offset) {
  tensors_.push_back({name, std::move(dims), type, offset});
  return *this;
}

std::string Gguf::Build(int64_t tensor_count, int64_t kv_count, uint64_t alignment) const {
  std::string out = "GGUF" + Le32(3);
  out += Le64(tensor_count >= 0 ? static_cast<uint64_t>(tensor_count) : tensors_.size());
  out += Le64(kv_count >= 0 ? static_cast<uint64_t>(kv_count) : kv_count_);
  out += kv_;
  uint64_t next = 0;
  uint64_t data_size = 0;
  for (const Info& t : tensors_) {
    uint64_t elements = 1;
    for (uint64_t d : t.dims) elements *= d;
    uint64_t bytes = t.type == 0 ? elements * 4 : t.type == 1 ? elements * 2 : elements / 32 * 34;
    uint64_t offset = t.offset >= 0 ? static_cast<uint64_t>(t.offset) : next;
    out += GgufString(t.name) + Le32(static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) out += Le64(d);
    out += Le32(t.type) + Le64(offset);
    next = offset + (bytes + alignment - 1) / alignment * alignment;
    data_size = offset + bytes;
  }
  while (out.size() % alignment != 0) out.push_back('\0');
  out += std::string(data_size, '\x02');
  return out;
}

std::string Npy(const std::string& header_dict, const std::string& data) {
  std::string header = header_dict;
  while ((10 + header.size() + 1) % 64 != 0) header.push_back(' ');
  header.push_back('\n');
  return std::string("\x93NUMPY\x01\x00", 8) + Le16(static_cast<uint16_t>(header.size())) + header +
         data;
}

const Finding* FindRule(const FileReport& r, const std::string& rule) {
  for (const Finding& f : r.findings) {
    if (f.rule == rule) return &f;
  }
  return nullptr;
}

std::string Rules(const FileReport& r) {
  std::string out = std::string(FormatName(r.format)) + "/" + std::string(VerdictName(r.verdict)) + ":";
  for (const Finding& f : r.findings) {
    out += " [" + std::string(SeverityName(f.severity)) + " " + f.rule + " @" + f.location + ":" +
           std::to_string(f.offset) + " " + f.message + "]";
  }
  return out;
}

}  // namespace sigil::scanner::testing
