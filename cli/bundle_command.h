// `sigil export` and `sigil import`: air-gap bundle files (registry/bundles.h
// describes the plan; cli/bundle_file.h the tar format).
//
// A bundle file is a tar in OCI image layout:
//   oci-layout            {"imageLayoutVersion": "1.0.0"}
//   index.json            an OCI image index: the plan's descriptor (artifactType
//                         registry::kBundleArtifactType) and one descriptor per
//                         carried version manifest, annotated
//                         org.opencontainers.image.ref.name = "repo:version"
//   blobs/sha256/<hex>    every carried blob: manifests, configs, layers,
//                         attestation documents, and the plan itself
//
// Export: POST /api/v1/exports {"refs", "to", "since"} (since: every digest
// the previous bundle carried or omitted), then each carried blob is
// downloaded straight into the tar entry (never whole in memory), its
// SHA-256 and size checked; the file is written as FILE.tmp, synced, then
// renamed to FILE. A failed export leaves no FILE (a download is not
// resumed: rerun the export).
//
// Import: the file is read and checked whole before anything is sent
// (ReadBundle: the tar's own checks, the layout, the index, the plan's
// digest, and every blob's digest and size against the plan; no entry the
// plan does not name); then every blob the server lacks (HEAD) is uploaded
// (one PUT under 1 MiB, else an upload session in chunks), and the plan is
// POSTed to /api/v1/bundles, which verifies everything again.
//
// Errors: kInvalidArgument BUNDLE_FILE_INVALID (the file), DIGEST_MISMATCH (a
// blob's bytes); those of the HTTP calls (the server's reasons).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/bundle_file.h"
#include "core/digest.h"
#include "core/json.h"
#include "core/status.h"

namespace sigil::cli {

struct BundleExportOptions {
  std::string server;
  std::vector<std::string> refs;  // "repo:ref"
  std::string to_region;
  std::string out;           // FILE
  std::string since_bundle;  // a previous bundle file, or ""
  std::chrono::milliseconds retry_budget{60000};
};

struct BundleExportResult {
  core::Digest plan_digest;
  size_t versions = 0;
  size_t attestations = 0;
  size_t aliases = 0;
  uint64_t blobs = 0;    // carried
  uint64_t bytes = 0;    // carried
  uint64_t omitted = 0;  // left out by --since
  std::vector<std::string> notes;
};

core::Result<BundleExportResult> ExportBundle(const BundleExportOptions& options);

// A bundle file read and checked whole (ImportBundle's first step).
struct BundleContents {
  TarReader tar;
  std::string plan_bytes;
  core::Digest plan_digest;
  core::Json plan;
  // The carried blobs: digest -> entry.
  std::vector<std::pair<core::Digest, const TarEntry*>> blobs;
};
core::Result<BundleContents> ReadBundle(const std::string& path);

struct BundleImportOptions {
  std::string server;
  std::string file;
  std::chrono::milliseconds retry_budget{60000};
};

struct BundleImportResult {
  uint64_t blobs_uploaded = 0;
  uint64_t blobs_skipped = 0;  // the server had them
  uint64_t bytes_uploaded = 0;
  core::Json summary;  // the server's answer
};

core::Result<BundleImportResult> ImportBundle(const BundleImportOptions& options);

}  // namespace sigil::cli
