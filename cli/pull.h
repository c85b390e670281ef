// `sigil pull`: version -> manifest -> verified files in a directory.
//
//   1. GET the version for the reference, then the manifest's exact bytes by
//      digest, and check that they hash to that digest;
//   2. check every layer title (CheckTitles) before anything is written;
//   3. download each distinct blob into DIR/.sigil-partial/<hex>, resuming a
//      partial file with `Range: bytes=N-`, in `jobs` threads; verify each
//      file's SHA-256 (a resumed partial that fails is fetched whole once);
//   4. only when every blob verified, rename each into DIR/<title> (creating
//      subdirectories; one rename per file, so each file appears whole), and
//      remove the partial directory.
// A failed pull leaves DIR's model files untouched and keeps the partial
// directory so that the next pull resumes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cli/refs.h"
#include "core/digest.h"
#include "core/status.h"

namespace sigil::cli {

inline constexpr std::string_view kPartialDir = ".sigil-partial";

struct PullOptions {
  std::string server;
  int jobs = 3;
  std::chrono::milliseconds retry_budget{60000};
  bool progress = false;
  // Called once the manifest's bytes matched its digest and the titles were
  // checked, before anything is downloaded or written into DIR; an error
  // stops the pull there (pull --verify checks the evidence here).
  std::function<core::Status(const std::string& manifest_bytes)> before_download = nullptr;
};

struct PullResult {
  std::string repository;
  std::string version;  // as the server reports it
  std::string digest;   // of the manifest
  uint64_t files = 0;
  uint64_t bytes_total = 0;       // of the distinct blobs
  uint64_t bytes_downloaded = 0;  // transferred in this run
  uint64_t bytes_reused = 0;      // found in partial files from earlier runs
};

struct PullFile {
  std::string title;
  core::Digest digest;
  uint64_t size = 0;
};

// Refuses titles that could write outside DIR or clash: absolute paths,
// "..", "." or empty components, backslashes, control characters
// (registry::ValidateFilePath), the partial directory, duplicates, and a
// title that is a directory of another ("a" and "a/b").
// kInvalidArgument, reason PATH_INVALID.
core::Status CheckTitles(const std::vector<PullFile>& files);

core::Result<PullResult> Pull(const Reference& ref, const std::string& dir,
                              const PullOptions& options);

}  // namespace sigil::cli
