// `sigil push`: files -> blobs -> manifest -> version.
//
//   1. list the files (model_files.h) and hash each, streaming, in parallel;
//   2. build the config blob and the OCI manifest (BuildConfig/BuildManifest);
//   3. for every distinct blob: HEAD it and skip it when the server has it;
//      send a small one (< kSmallBlobMax) with one PUT; send a larger one
//      through an upload session in chunks of the server's chunk_max, read
//      with pread into one buffer per worker, recording the session id in
//      UploadState so that a rerun asks the server for the committed offset
//      and continues from there;
//   4. PUT the manifest as the version (and its labels) and return its digest.
//
// Transient failures (no answer, 5xx, 429) are retried with backoff for up to
// `retry_budget` without progress per chunk or request, which lets a push
// ride out a server restart. Workers run `jobs` threads, each with its own
// HttpClient (one kept-alive connection each).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "cli/model_files.h"
#include "cli/refs.h"
#include "core/digest.h"
#include "core/status.h"
#include "registry/manifest.h"

namespace sigil::cli {

// Blobs smaller than this go as a single PUT.
inline constexpr uint64_t kSmallBlobMax = 1 << 20;
// The client never buffers more than this per worker, whatever chunk_max the
// server advertises.
inline constexpr uint64_t kMaxChunkBuffer = uint64_t{256} << 20;

struct PushOptions {
  std::string server;                         // base URL
  std::map<std::string, std::string> labels;  // --label k=v
  int jobs = 3;
  std::chrono::milliseconds retry_budget{60000};
  std::string state_dir;  // UploadState directory; "" disables resume state
  bool progress = false;  // draw a progress bar on stderr
};

struct PushResult {
  std::string repository;
  std::string version;
  std::string digest;  // of the manifest
  uint64_t files = 0;
  uint64_t blobs = 0;            // distinct blobs, config included
  uint64_t bytes_total = 0;      // of the distinct blobs
  uint64_t bytes_uploaded = 0;   // acknowledged by the server in this run
  uint64_t bytes_skipped = 0;    // blobs the server already had
  uint64_t bytes_resumed = 0;    // committed in earlier runs' sessions
  uint64_t blobs_uploaded = 0;
  uint64_t blobs_skipped = 0;
  uint64_t blobs_resumed = 0;    // sessions continued from UploadState
};

struct HashedFile {
  LocalFile file;
  core::Digest digest;
};

// The config blob's bytes: {"files": n, "format": f, "labels": {...}}, keys
// sorted, compact.
std::string BuildConfig(const std::string& format, size_t files,
                        const std::map<std::string, std::string>& labels);

// The manifest: model artifact type, the config descriptor, one layer per
// file in the given order, titled with the file's title.
registry::Manifest BuildManifest(const std::vector<HashedFile>& files,
                                 const std::string& config_bytes);

// Hashes files with `jobs` threads, reporting hashed bytes to on_bytes
// (called from those threads; may be empty).
core::Result<std::vector<HashedFile>> HashFiles(const std::vector<LocalFile>& files, int jobs,
                                                const std::function<void(uint64_t)>& on_bytes);

// Parses "k=v" (for --label); the key and value follow registry::ValidateLabel.
core::Status ParseLabel(std::string_view text, std::map<std::string, std::string>* labels);

// The whole push of path as ref (a tag reference).
core::Result<PushResult> Push(const std::string& path, const Reference& ref,
                              const PushOptions& options);

}  // namespace sigil::cli
