#include "cli/bundle_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace sigil::cli {
namespace {

constexpr size_t kRecord = 10240;

core::Status Bad(std::string message) {
  return core::InvalidArgument("bundle file: " + std::move(message), "BUNDLE_FILE_INVALID");
}

uint64_t Padded(uint64_t n) { return (n + kTarBlock - 1) / kTarBlock * kTarBlock; }

// Octal, zero-padded to width - 1 digits and a NUL.
void PutOctal(char* field, size_t width, uint64_t value) {
  std::memset(field, '0', width - 1);
  field[width - 1] = '\0';
  for (size_t i = width - 1; i-- > 0 && value != 0;) {
    field[i] = static_cast<char>('0' + (value & 7));
    value >>= 3;
  }
}

uint32_t Checksum(const unsigned char* block) {
  uint32_t sum = 0;
  for (size_t i = 0; i < kTarBlock; ++i) sum += (i >= 148 && i < 156) ? ' ' : block[i];
  return sum;
}

// An octal field: optional leading spaces, digits, then NUL or space to the
// end. Or (size field only) GNU base-256: 0x80 then big-endian bytes.
core::Result<uint64_t> ParseNumber(const unsigned char* field, size_t width, bool base256_ok,
                                   const std::string& what) {
  if (base256_ok && field[0] == 0x80) {
    uint64_t v = 0;
    for (size_t i = 1; i < width; ++i) {
      if (v >> 56 != 0) return Bad(what + " is too large");
      v = (v << 8) | field[i];
    }
    return v;
  }
  size_t i = 0;
  while (i < width && field[i] == ' ') ++i;
  size_t digits = 0;
  uint64_t v = 0;
  while (i < width && field[i] >= '0' && field[i] <= '7') {
    if (v >> 60 != 0) return Bad(what + " is too large");
    v = v * 8 + (field[i] - '0');
    ++i;
    ++digits;
  }
  if (digits == 0) return Bad(what + " is not an octal number");
  for (; i < width; ++i) {
    if (field[i] != '\0' && field[i] != ' ') return Bad(what + " is not an octal number");
  }
  return v;
}

bool AllZero(const unsigned char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

core::Status PreadExactly(int fd, void* buf, size_t n, uint64_t offset, const std::string& what) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, static_cast<char*>(buf) + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return core::ErrnoStatus(errno, "read " + what);
    }
    if (r == 0) return Bad("truncated in " + what);
    got += static_cast<size_t>(r);
  }
  return core::OkStatus();
}

}  // namespace

core::Status CheckTarName(std::string_view name) {
  std::string shown(name.substr(0, 120));
  if (name.empty()) return Bad("an entry has an empty name");
  if (name.size() > kTarMaxName) return Bad("name '" + shown + "' is longer than 99 bytes");
  if (name.front() == '/') return Bad("name '" + shown + "' is absolute");
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\') {
      return Bad("name '" + shown + "' holds a control character or backslash");
    }
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t slash = name.find('/', start);
    if (slash == std::string_view::npos) slash = name.size();
    std::string_view part = name.substr(start, slash - start);
    if (part.empty() || part == "." || part == "..") {
      return Bad("name '" + shown + "' has an empty, '.' or '..' component");
    }
    start = slash + 1;
  }
  return core::OkStatus();
}

// ---- writer

core::Result<TarWriter> TarWriter::Create(const std::string& path) {
  TarWriter w;
  w.path_ = path;
  w.fd_.Reset(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!w.fd_.valid()) return core::ErrnoStatus(errno, "create " + path);
  return w;
}

core::Status TarWriter::WriteRaw(const char* data, size_t n) {
  RETURN_IF_ERROR(core::WriteAll(fd_.get(), data, n, path_));
  offset_ += n;
  return core::OkStatus();
}

core::Status TarWriter::Begin(std::string_view name, uint64_t size) {
  if (!fd_.valid()) return core::FailedPrecondition("tar writer is closed");
  if (in_entry_) return core::FailedPrecondition("tar entry not finished");
  RETURN_IF_ERROR(CheckTarName(name));
  if (!names_.emplace(std::string(name), true).second) return Bad("duplicate name " + std::string(name));
  unsigned char h[kTarBlock] = {};
  std::memcpy(h, name.data(), name.size());
  PutOctal(reinterpret_cast<char*>(h + 100), 8, 0644);
  PutOctal(reinterpret_cast<char*>(h + 108), 8, 0);
  PutOctal(reinterpret_cast<char*>(h + 116), 8, 0);
  if (size < (uint64_t{1} << 33)) {
    PutOctal(reinterpret_cast<char*>(h + 124), 12, size);
  } else {
    h[124] = 0x80;
    for (int i = 0; i < 8; ++i) h[135 - i] = static_cast<unsigned char>(size >> (8 * i));
  }
  PutOctal(reinterpret_cast<char*>(h + 136), 12, 0);
  h[156] = '0';
  std::memcpy(h + 257, "ustar", 6);
  std::memcpy(h + 263, "00", 2);
  uint32_t sum = Checksum(h);
  PutOctal(reinterpret_cast<char*>(h + 148), 7, sum);
  h[155] = ' ';
  RETURN_IF_ERROR(WriteRaw(reinterpret_cast<const char*>(h), kTarBlock));
  in_entry_ = true;
  entry_size_ = size;
  entry_written_ = 0;
  return core::OkStatus();
}

core::Status TarWriter::Write(std::string_view bytes) {
  if (!in_entry_) return core::FailedPrecondition("no tar entry begun");
  if (bytes.size() > entry_size_ - entry_written_) {
    return core::FailedPrecondition("more bytes than the tar entry's declared size");
  }
  RETURN_IF_ERROR(WriteRaw(bytes.data(), bytes.size()));
  entry_written_ += bytes.size();
  return core::OkStatus();
}

core::Status TarWriter::End() {
  if (!in_entry_) return core::FailedPrecondition("no tar entry begun");
  if (entry_written_ != entry_size_) {
    return core::FailedPrecondition("tar entry got " + std::to_string(entry_written_) + " of " +
                                    std::to_string(entry_size_) + " bytes");
  }
  static const char zeros[kTarBlock] = {};
  size_t pad = Padded(entry_size_) - entry_size_;
  if (pad > 0) RETURN_IF_ERROR(WriteRaw(zeros, pad));
  in_entry_ = false;
  return core::OkStatus();
}

core::Status TarWriter::Add(std::string_view name, std::string_view bytes) {
  RETURN_IF_ERROR(Begin(name, bytes.size()));
  RETURN_IF_ERROR(Write(bytes));
  return End();
}

core::Status TarWriter::Finish() {
  if (in_entry_) return core::FailedPrecondition("tar entry not finished");
  if (!fd_.valid()) return core::FailedPrecondition("tar writer is closed");
  std::string tail(2 * kTarBlock, '\0');
  uint64_t end = offset_ + tail.size();
  tail.resize(tail.size() + (kRecord - end % kRecord) % kRecord, '\0');
  RETURN_IF_ERROR(WriteRaw(tail.data(), tail.size()));
  if (::fsync(fd_.get()) != 0) return core::ErrnoStatus(errno, "fsync " + path_);
  fd_.Reset();
  return core::OkStatus();
}

// ---- reader

core::Result<TarReader> TarReader::Open(const std::string& path, const TarLimits& limits) {
  TarReader r;
  r.path_ = path;
  r.fd_.Reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!r.fd_.valid()) return core::ErrnoStatus(errno, "open " + path);
  struct stat st;
  if (::fstat(r.fd_.get(), &st) != 0) return core::ErrnoStatus(errno, "stat " + path);
  if (!S_ISREG(st.st_mode)) return Bad(path + " is not a regular file");
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);

  uint64_t offset = 0;
  unsigned char h[kTarBlock];
  while (true) {
    if (offset + kTarBlock > file_size) return Bad("truncated: no end-of-archive marker");
    RETURN_IF_ERROR(PreadExactly(r.fd_.get(), h, kTarBlock, offset, "header at " + std::to_string(offset)));
    if (AllZero(h, kTarBlock)) {
      // End of archive: a second zero block, and only zeros after it.
      if (offset + 2 * kTarBlock > file_size) return Bad("truncated end-of-archive marker");
      uint64_t pos = offset + kTarBlock;
      unsigned char buf[8192];
      while (pos < file_size) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(sizeof(buf), file_size - pos));
        RETURN_IF_ERROR(PreadExactly(r.fd_.get(), buf, n, pos, "end-of-archive"));
        if (!AllZero(buf, n)) return Bad("data after the end-of-archive marker");
        pos += n;
      }
      break;
    }
    std::string where = "header at offset " + std::to_string(offset);
    ASSIGN_OR_RETURN(uint64_t sum, ParseNumber(h + 148, 8, false, where + ": checksum"));
    if (sum != Checksum(h)) return Bad(where + ": checksum does not match");
    bool posix = std::memcmp(h + 257, "ustar\0" "00", 8) == 0;
    bool gnu = std::memcmp(h + 257, "ustar  \0", 8) == 0;
    if (!posix && !gnu) return Bad(where + ": not a ustar header");
    if (posix && h[345] != 0) return Bad(where + ": a prefix field is not supported");
    const char* name_field = reinterpret_cast<const char*>(h);
    std::string name(name_field, strnlen(name_field, 100));
    if (name.size() == 100) return Bad(where + ": name is longer than 99 bytes");
    ASSIGN_OR_RETURN(uint64_t size, ParseNumber(h + 124, 12, true, where + ": size"));
    char type = static_cast<char>(h[156]);
    bool dir = type == '5';
    if (dir) {
      if (size != 0) return Bad(where + ": a directory entry with data");
      if (!name.empty() && name.back() == '/') name.pop_back();
    } else if (type != '0' && type != '\0') {
      return Bad("entry '" + name.substr(0, 120) + "': type '" + std::string(1, type) +
                 "' is not a regular file (links and devices are refused)");
    }
    RETURN_IF_ERROR(CheckTarName(name));
    if (size > limits.max_entry_bytes) {
      return Bad("entry '" + name + "' is larger than " + std::to_string(limits.max_entry_bytes) + " bytes");
    }
    uint64_t data = offset + kTarBlock;
    if (size > file_size || data + Padded(size) > file_size) return Bad("truncated in entry '" + name + "'");
    uint64_t pad = Padded(size) - size;
    if (pad > 0) {
      unsigned char buf[kTarBlock];
      RETURN_IF_ERROR(PreadExactly(r.fd_.get(), buf, pad, data + size, "padding of " + name));
      if (!AllZero(buf, pad)) return Bad("entry '" + name + "': non-zero padding");
    }
    offset = data + Padded(size);
    if (dir) continue;
    if (r.entries_.size() >= limits.max_entries) {
      return Bad("more than " + std::to_string(limits.max_entries) + " entries");
    }
    if (r.by_name_.count(name) != 0) return Bad("duplicate entry '" + name + "'");
    r.by_name_.emplace(name, r.entries_.size());
    r.entries_.push_back({name, data, size});
  }
  return r;
}

const TarEntry* TarReader::Find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

core::Result<std::string> TarReader::ReadAll(const TarEntry& entry, uint64_t max_bytes) const {
  if (entry.size > max_bytes) {
    return Bad("entry '" + entry.name + "' is larger than " + std::to_string(max_bytes) + " bytes");
  }
  std::string out(entry.size, '\0');
  RETURN_IF_ERROR(PreadExactly(fd_.get(), out.data(), out.size(), entry.offset, entry.name));
  return out;
}

core::Result<size_t> TarReader::ReadAt(const TarEntry& entry, uint64_t offset, char* buf, size_t n) const {
  if (offset >= entry.size) return size_t{0};
  n = static_cast<size_t>(std::min<uint64_t>(n, entry.size - offset));
  RETURN_IF_ERROR(PreadExactly(fd_.get(), buf, n, entry.offset + offset, entry.name));
  return n;
}

}  // namespace sigil::cli
