// Random-access byte sources the analyzers read from, and a buffered
// sequential cursor over a range of one. Internal to the scanner.
//
// Files are read with pread on a descriptor, never loaded whole; archive
// members stored without compression are windows into their archive; only
// decompressed members live in memory.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sigil::scanner {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual uint64_t size() const = 0;
  // Reads exactly n bytes at offset. REQUIRES: offset + n <= size().
  // Returns false on an I/O error (recorded by the source).
  virtual bool ReadAt(uint64_t offset, size_t n, char* out) const = 0;
};

class MemorySource : public ByteSource {
 public:
  explicit MemorySource(std::string_view data) : data_(data) {}
  uint64_t size() const override { return data_.size(); }
  bool ReadAt(uint64_t offset, size_t n, char* out) const override;

 private:
  std::string_view data_;
};

// Owns the bytes (decompressed archive members).
class OwnedSource : public ByteSource {
 public:
  explicit OwnedSource(std::string data) : data_(std::move(data)) {}
  uint64_t size() const override { return data_.size(); }
  bool ReadAt(uint64_t offset, size_t n, char* out) const override;
  const std::string& data() const { return data_; }

 private:
  std::string data_;
};

class FileSource : public ByteSource {
 public:
  // The descriptor stays owned by the caller and must outlive the source.
  FileSource(int fd, uint64_t size) : fd_(fd), size_(size) {}
  uint64_t size() const override { return size_; }
  bool ReadAt(uint64_t offset, size_t n, char* out) const override;
  // The first read error, if any.
  const core::Status& io_status() const { return io_status_; }

 private:
  int fd_;
  uint64_t size_;
  mutable core::Status io_status_;
};

// A window [offset, offset + size) of another source.
class SliceSource : public ByteSource {
 public:
  SliceSource(const ByteSource& parent, uint64_t offset, uint64_t size)
      : parent_(parent), offset_(offset), size_(size) {}
  uint64_t size() const override { return size_; }
  bool ReadAt(uint64_t offset, size_t n, char* out) const override {
    return parent_.ReadAt(offset_ + offset, n, out);
  }

 private:
  const ByteSource& parent_;
  uint64_t offset_;
  uint64_t size_;
};

// Reads [offset, offset + n) into a string, or fails (nullopt-like false)
// when the range is outside the source. Never allocates more than the range.
bool ReadRange(const ByteSource& src, uint64_t offset, uint64_t n, std::string* out);

// Sequential little-endian reads over [begin, end) of a source, through a
// small buffer. Every read fails cleanly (returns false) at the end.
class Cursor {
 public:
  Cursor(const ByteSource& src, uint64_t begin, uint64_t end);
  explicit Cursor(const ByteSource& src) : Cursor(src, 0, src.size()) {}

  uint64_t pos() const { return pos_; }
  uint64_t end() const { return end_; }
  uint64_t remaining() const { return end_ - pos_; }
  bool AtEnd() const { return pos_ >= end_; }

  bool ReadU8(uint8_t* v);
  bool ReadU16(uint16_t* v);
  bool ReadU32(uint32_t* v);
  bool ReadU64(uint64_t* v);
  // Reads n bytes; fails without allocating when fewer than n remain.
  bool ReadBytes(uint64_t n, std::string* out);
  bool Skip(uint64_t n);
  // Reads up to and excluding '\n' (consumed); fails when no '\n' comes
  // within max bytes.
  bool ReadLine(size_t max, std::string* out);
  // Peeks one byte without consuming it.
  bool Peek(uint8_t* v);
  void Seek(uint64_t pos) { pos_ = pos < end_ ? pos : end_; }

 private:
  bool Fill(size_t want);
  bool ReadRaw(size_t n, char* out);

  const ByteSource& src_;
  uint64_t pos_;
  uint64_t end_;
  std::string buf_;
  uint64_t buf_pos_ = 0;  // source offset of buf_[0]
};

}  // namespace sigil::scanner
