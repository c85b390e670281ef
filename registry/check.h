// Offline consistency check of a sigild data directory (sigil-fsck).
//
// With sigild stopped, CheckDataDir reads everything the server keeps and
// reports each place where the stores disagree with each other or with
// themselves:
//   blob        a file under blobs/sha256 that does not hash to its name, or
//               that is not named like a blob (a temp or partial file)
//   version     a version whose manifest blob is missing, does not parse, or
//               names a config or layer blob that is missing or of another
//               size; a manifest index record that does not list it
//   alias       an alias naming a version that does not exist or has another
//               digest; a history whose newest event is not the alias's
//               current target, or whose events do not chain (each event's
//               previous_version is the version of the event before it)
//   attestation an attestation's referrer record (scan and evaluation records
//               in the same family are not attestations) whose document blob is missing, or whose
//               log index is past the log's size or names a leaf about
//               another document
//   log         a missing or damaged leaf or subtree hash, a stored hash
//               that does not match the leaves below it, records past the
//               size, or a checkpoint given in CheckOptions whose size is
//               past the log's or whose root is not the tree's at its size
//   upload      a session whose recorded offset exceeds its staged data
//                (a session with no staged file at all is a commit cut
//                short after its rename, which sigild drops on first use)
//
// The check only reads, but it opens the RocksDB database read-write (to
// replay its WAL like sigild would): sigild must not be running (kUnavailable
// otherwise, from RocksDB's lock). Errors other than problems found (an
// unreadable directory, a database that does not open) come back as Status.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace sigil::registry {

struct CheckOptions {
  std::string data_dir;
  // Checkpoints the log must still be consistent with: signed notes as
  // GET /api/v1/log/checkpoint returns them, or bare bodies. Signatures are
  // not verified here (the note key is the server's; clients verify it).
  std::vector<std::string> checkpoints;
};

struct CheckProblem {
  std::string kind;     // "blob", "version", "alias", "attestation", "log", "upload"
  std::string message;  // names the record and what does not hold
};

struct CheckReport {
  uint64_t blobs = 0;
  uint64_t blob_bytes = 0;
  uint64_t versions = 0;
  uint64_t aliases = 0;
  uint64_t alias_events = 0;
  uint64_t attestations = 0;
  uint64_t log_size = 0;
  uint64_t uploads = 0;
  std::vector<CheckProblem> problems;

  bool ok() const { return problems.empty(); }
};

core::Result<CheckReport> CheckDataDir(const CheckOptions& options);

}  // namespace sigil::registry
