// Bundle files: a minimal, strict ustar tar writer and reader for air-gap
// bundles (registry/bundles.h describes the layout inside: oci-layout,
// index.json, blobs/sha256/<hex>).
//
// The writer writes regular files only, names up to 99 bytes in the name
// field (no prefix), mode 0644, mtime 0, owner 0, sizes in octal (GNU
// base-256 above 8 GiB - 1), then two zero blocks and zero padding to a
// 10240-byte record. File contents are streamed: a caller declares the size,
// writes the bytes in pieces and finishes the entry, so no blob is ever held
// whole in memory.
//
// The reader indexes the whole archive before anything is used and refuses
// (kInvalidArgument, reason BUNDLE_FILE_INVALID, the message naming the
// entry): a truncated file; a header whose checksum does not match; magic
// other than "ustar\0" "00" (POSIX) or "ustar  \0" (GNU); an entry type other
// than a regular file ('0', '\0') or a directory ('5', size 0, skipped); a
// non-empty prefix field; names that are empty, absolute, hold "." or ".."
// or empty components, backslashes or control characters, or are longer
// than 99 bytes; duplicate names; a size field that does not parse or
// exceeds TarLimits::max_entry_bytes or the file; non-zero padding after an
// entry's data; more than max_entries entries; a missing end-of-archive
// (two zero blocks) or anything but zero bytes after it.
//
// Thread-safety: a TarWriter is used by one thread; a TarReader's const
// methods may be called concurrently (pread).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/fs.h"
#include "core/status.h"

namespace sigil::cli {

inline constexpr size_t kTarBlock = 512;
inline constexpr size_t kTarMaxName = 99;

struct TarLimits {
  size_t max_entries = 100000;
  uint64_t max_entry_bytes = uint64_t{1} << 40;  // 1 TiB
};

class TarWriter {
 public:
  // Creates (or truncates) path, mode 0644.
  static core::Result<TarWriter> Create(const std::string& path);
  TarWriter(TarWriter&&) = default;
  TarWriter& operator=(TarWriter&&) = default;

  // Starts a regular file entry of exactly size bytes. The previous entry
  // must be finished. Errors: kInvalidArgument for a bad or duplicate name.
  core::Status Begin(std::string_view name, uint64_t size);
  // Appends bytes to the current entry; more than its size is an error.
  core::Status Write(std::string_view bytes);
  // Pads the entry; kFailedPrecondition unless exactly its size was written.
  core::Status End();
  // Begin, Write, End.
  core::Status Add(std::string_view name, std::string_view bytes);
  // Writes the end-of-archive, syncs and closes the file.
  core::Status Finish();

 private:
  TarWriter() = default;
  core::Status WriteRaw(const char* data, size_t n);

  std::string path_;
  core::UniqueFd fd_;
  uint64_t offset_ = 0;
  bool in_entry_ = false;
  uint64_t entry_size_ = 0;
  uint64_t entry_written_ = 0;
  std::map<std::string, bool> names_;
};

struct TarEntry {
  std::string name;
  uint64_t offset = 0;  // of the data in the file
  uint64_t size = 0;
};

class TarReader {
 public:
  TarReader() = default;  // empty, until assigned an opened reader
  // Opens and indexes the archive (every check above).
  static core::Result<TarReader> Open(const std::string& path, const TarLimits& limits = {});
  TarReader(TarReader&&) = default;
  TarReader& operator=(TarReader&&) = default;

  const std::vector<TarEntry>& entries() const { return entries_; }
  // nullptr when there is no such entry.
  const TarEntry* Find(std::string_view name) const;
  // The whole entry; kInvalidArgument BUNDLE_FILE_INVALID when over max_bytes.
  core::Result<std::string> ReadAll(const TarEntry& entry, uint64_t max_bytes) const;
  // Up to n bytes of the entry from offset (short only at its end).
  core::Result<size_t> ReadAt(const TarEntry& entry, uint64_t offset, char* buf, size_t n) const;

 private:
  std::string path_;
  core::UniqueFd fd_;
  std::vector<TarEntry> entries_;
  std::map<std::string, size_t, std::less<>> by_name_;
};

// Checks a member name as the reader does (without the duplicate check).
core::Status CheckTarName(std::string_view name);

}  // namespace sigil::cli
