// The files a push sends: one layer per regular file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace sigil::cli {

struct LocalFile {
  std::string path;   // where to read it on this machine
  std::string title;  // the layer title: a relative path with '/' separators
  uint64_t size = 0;
};

// Lists what `sigil push PATH` sends.
// - PATH is a regular file (or a symlink to one): that file, titled with its
//   base name.
// - PATH is a directory: every regular file below it, titled with its path
//   relative to PATH, sorted by title (byte order). A symlink is followed
//   only when it resolves to a regular file inside the directory; one that
//   escapes the directory, dangles, or names a directory is refused, as are
//   sockets, FIFOs and devices.
// Titles must be valid file paths (registry::ValidateFilePath).
// Errors: kInvalidArgument (refused entries, an empty directory, a bad
// title), kNotFound (PATH missing), errno-derived codes for I/O.
core::Result<std::vector<LocalFile>> ListModelFiles(const std::string& path);

// The model format for the config blob: the sniffed format of the largest
// file whose format is recognised, else "unknown".
core::Result<std::string> GuessModelFormat(const std::vector<LocalFile>& files);

}  // namespace sigil::cli
