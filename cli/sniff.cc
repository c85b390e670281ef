#include "cli/sniff.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdint>

#include "core/fs.h"

namespace sigil::cli {
namespace {

std::string Extension(std::string_view name) {
  size_t slash = name.rfind('/');
  if (slash != std::string_view::npos) name = name.substr(slash + 1);
  size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return "";
  std::string ext(name.substr(dot + 1));
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool IsTorchExtension(const std::string& ext) {
  return ext == "pt" || ext == "pth" || ext == "bin" || ext == "ckpt";
}

}  // namespace

std::string SniffFormat(std::string_view head, std::string_view name) {
  const std::string ext = Extension(name);
  if (StartsWith(head, "GGUF")) return "gguf";
  if (StartsWith(head, "\x93NUMPY")) return "numpy";
  if (StartsWith(head, "\x89HDF\r\n\x1a\n")) return "keras";
  // safetensors: an 8-byte little-endian header length, then a JSON object.
  if (head.size() >= 9 && head[8] == '{') {
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(head[i]);
    if (n >= 2 && n < (uint64_t{100} << 20)) return "safetensors";
  }
  if (StartsWith(head, std::string_view("PK\x03\x04", 4))) {
    // torch.save writes a zip; numpy's savez too.
    if (IsTorchExtension(ext)) return "pytorch";
    if (ext == "npz") return "numpy";
    if (ext == "keras") return "keras";
    return "unknown";
  }
  // A pickle stream (protocol 2 and later start with PROTO).
  if (head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0x80 &&
      head[1] >= 2 && head[1] <= 5) {
    return IsTorchExtension(ext) ? "pytorch" : "pickle";
  }
  // ONNX is a protobuf ModelProto without magic bytes; its first field is
  // ir_version (field 1, varint: tag byte 0x08).
  if (ext == "onnx" && !head.empty() && head[0] == 0x08) return "onnx";
  return "unknown";
}

core::Result<std::string> SniffFile(const std::string& path, std::string_view name) {
  core::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return core::ErrnoStatus(errno, "open " + path);
  char buf[kSniffBytes];
  size_t got = 0;
  while (got < sizeof(buf)) {
    ASSIGN_OR_RETURN(size_t n, core::PreadSome(fd.get(), buf + got, sizeof(buf) - got, got));
    if (n == 0) break;
    got += n;
  }
  return SniffFormat(std::string_view(buf, got), name);
}

}  // namespace sigil::cli
