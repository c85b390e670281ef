// File helpers with the durability rules of DESIGN.md: data is written to a
// temporary file, fsynced, renamed into place, and the directory fsynced, so
// a file either exists whole or not at all, even after kill -9 or power loss.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sigil::core {

// Owns a file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.Release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) { Reset(); fd_ = o.Release(); }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() { int fd = fd_; fd_ = -1; return fd; }
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Creates the directory and its parents (mode 0755 unless given).
Status MakeDirs(const std::string& path, unsigned mode = 0755);
// fsync of a directory, so that renames and creations in it are durable.
Status FsyncDir(const std::string& path);
// Writes all bytes, retrying on EINTR and short writes.
Status WriteAll(int fd, const void* data, size_t n, std::string_view what);
// Positional variant.
Status PwriteAll(int fd, const void* data, size_t n, uint64_t offset, std::string_view what);
// Reads up to n bytes at offset; returns the count (0 at end of file).
Result<size_t> PreadSome(int fd, void* buf, size_t n, uint64_t offset);
// Atomically replaces path with data: temp file, fsync, rename, fsync dir.
Status WriteFileAtomic(const std::string& path, std::string_view data, unsigned mode = 0644);
// Reads a whole file; fails with kResourceExhausted when larger than max_bytes.
Result<std::string> ReadFile(const std::string& path, uint64_t max_bytes = 64 << 20);
// Removes a file; a missing file is not an error.
Status RemoveFile(const std::string& path);
// Removes a directory tree; a missing one is not an error.
Status RemoveTree(const std::string& path);
bool PathExists(const std::string& path);
// The directory part of a path ("a/b/c" -> "a/b", "c" -> ".").
std::string DirName(const std::string& path);
std::string JoinPath(std::string_view a, std::string_view b);

}  // namespace sigil::core
