#include "scanner/source.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sigil::scanner {
namespace {

constexpr size_t kBufferSize = 64 << 10;

}  // namespace

bool MemorySource::ReadAt(uint64_t offset, size_t n, char* out) const {
  if (offset > data_.size() || n > data_.size() - offset) return false;
  std::memcpy(out, data_.data() + offset, n);
  return true;
}

bool OwnedSource::ReadAt(uint64_t offset, size_t n, char* out) const {
  if (offset > data_.size() || n > data_.size() - offset) return false;
  std::memcpy(out, data_.data() + offset, n);
  return true;
}

bool FileSource::ReadAt(uint64_t offset, size_t n, char* out) const {
  if (offset > size_ || n > size_ - offset) return false;
  while (n > 0) {
    ssize_t got = ::pread(fd_, out, n, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      if (io_status_.ok()) io_status_ = core::ErrnoStatus(errno, "reading file");
      return false;
    }
    if (got == 0) {
      // The file shrank under us.
      if (io_status_.ok()) io_status_ = core::Internal("file shrank while being scanned");
      return false;
    }
    out += got;
    n -= static_cast<size_t>(got);
    offset += static_cast<uint64_t>(got);
  }
  return true;
}

bool ReadRange(const ByteSource& src, uint64_t offset, uint64_t n, std::string* out) {
  if (offset > src.size() || n > src.size() - offset) return false;
  out->resize(n);
  return n == 0 || src.ReadAt(offset, n, out->data());
}

Cursor::Cursor(const ByteSource& src, uint64_t begin, uint64_t end)
    : src_(src), pos_(begin), end_(end < src.size() ? end : src.size()) {
  if (pos_ > end_) pos_ = end_;
}

bool Cursor::Fill(size_t want) {
  // Makes [pos_, pos_ + want) available in buf_; want <= kBufferSize.
  if (pos_ >= buf_pos_ && pos_ + want <= buf_pos_ + buf_.size()) return true;
  if (want > end_ - pos_) return false;
  uint64_t n = end_ - pos_;
  if (n > kBufferSize) n = kBufferSize;
  buf_.resize(n);
  buf_pos_ = pos_;
  if (!src_.ReadAt(pos_, n, buf_.data())) {
    buf_.clear();
    return false;
  }
  return true;
}

bool Cursor::ReadRaw(size_t n, char* out) {
  if (n > end_ - pos_) return false;
  if (n > kBufferSize) {
    if (!src_.ReadAt(pos_, n, out)) return false;
    pos_ += n;
    return true;
  }
  if (!Fill(n)) return false;
  std::memcpy(out, buf_.data() + (pos_ - buf_pos_), n);
  pos_ += n;
  return true;
}

bool Cursor::ReadU8(uint8_t* v) { return ReadRaw(1, reinterpret_cast<char*>(v)); }

bool Cursor::ReadU16(uint16_t* v) {
  unsigned char b[2];
  if (!ReadRaw(2, reinterpret_cast<char*>(b))) return false;
  *v = static_cast<uint16_t>(b[0] | (b[1] << 8));
  return true;
}

bool Cursor::ReadU32(uint32_t* v) {
  unsigned char b[4];
  if (!ReadRaw(4, reinterpret_cast<char*>(b))) return false;
  *v = static_cast<uint32_t>(b[0]) | (static_cast<uint32_t>(b[1]) << 8) |
       (static_cast<uint32_t>(b[2]) << 16) | (static_cast<uint32_t>(b[3]) << 24);
  return true;
}

bool Cursor::ReadU64(uint64_t* v) {
  uint32_t lo = 0;
  uint32_t hi = 0;
  if (remaining() < 8 || !ReadU32(&lo) || !ReadU32(&hi)) return false;
  *v = (static_cast<uint64_t>(hi) << 32) | lo;
  return true;
}

bool Cursor::ReadBytes(uint64_t n, std::string* out) {
  if (n > end_ - pos_) return false;
  out->resize(n);
  return n == 0 || ReadRaw(n, out->data());
}

bool Cursor::Skip(uint64_t n) {
  if (n > end_ - pos_) return false;
  pos_ += n;
  return true;
}

bool Cursor::Peek(uint8_t* v) {
  if (!Fill(1)) return false;
  *v = static_cast<uint8_t>(buf_[pos_ - buf_pos_]);
  return true;
}

bool Cursor::ReadLine(size_t max, std::string* out) {
  out->clear();
  uint64_t start = pos_;
  while (true) {
    uint8_t c = 0;
    if (!ReadU8(&c)) {
      pos_ = start;
      return false;
    }
    if (c == '\n') return true;
    if (out->size() >= max) {
      pos_ = start;
      return false;
    }
    out->push_back(static_cast<char>(c));
  }
}

}  // namespace sigil::scanner
