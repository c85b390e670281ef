// The persistent transparency log: an RFC 6962 Merkle tree kept in the
// MetaStore column family "log", with signed checkpoints (C2SP signed note,
// Ed25519).
//
// Keys in "log" (indexes and levels as fixed-width lowercase hex, so byte
// order is numeric order):
//   s                         -> the size, decimal
//   d/<16 hex index>          -> the leaf's bytes
//   n/<2 hex level>/<16 hex i> -> the 32-byte root of the complete subtree of
//                                2^level leaves starting at leaf i << level
//                                (level 0: the leaf hash)
//   h/<64 hex leaf hash>      -> the first index with that leaf hash, decimal
//
// An append writes the leaf, its hash, every complete subtree it completes
// (O(log n) records, from O(log n) reads), the leaf-hash index and the new
// size in the caller's WriteBatch, so the log entry and whatever the caller
// accepted are one atomic, durable write: either both exist or neither.
// Proofs read complete-subtree hashes (PerfectSubtreeHash is one read).
//
// Thread-safety: all methods may be called concurrently. Appends are
// serialized by an internal mutex held across the batch write; readers see
// a size only after its records are durable.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "attest/checkpoint.h"
#include "attest/merkle.h"
#include "core/status.h"
#include "signing/keys.h"
#include "storage/meta_store.h"

namespace sigil::attest {

inline constexpr std::string_view kLogCf = "log";
// The largest leaf the log takes.
inline constexpr size_t kMaxLeafBytes = 1 << 20;

struct TransparencyLogOptions {
  storage::MetaStore* meta = nullptr;  // borrowed; must outlive the log
  // The checkpoint origin, also the note signer's name: no spaces, '+' or
  // newlines (e.g. "sigil/host.example").
  std::string origin;
  // REQUIRES: an Ed25519 key.
  std::optional<signing::PrivateKey> key;
};

struct SignedCheckpoint {
  Checkpoint checkpoint;
  std::string note;  // the signed note text
};

class TransparencyLog : public TreeSource {
 public:
  // Reads the size from the store (an empty log when absent).
  // Errors: kInvalidArgument for bad options (missing store, a key that is
  // not Ed25519, a bad origin); kDataLoss for a damaged size record.
  static core::Result<std::unique_ptr<TransparencyLog>> Open(TransparencyLogOptions options);

  // Adds the records of a new leaf to batch and writes the batch; returns
  // the leaf's index. stage, when given, is called first with the index the
  // leaf will take (under the append mutex) to add records that name it.
  // When stage or the write fails nothing of the batch is applied and the
  // log is unchanged. Errors: kInvalidArgument "LOG_LEAF_INVALID" (empty or
  // over kMaxLeafBytes); those of stage; those of the store.
  using StageFn = std::function<core::Status(uint64_t index, storage::WriteBatch* batch)>;
  core::Result<uint64_t> AppendWith(storage::WriteBatch batch, std::string_view leaf,
                                    const StageFn& stage = {});

  uint64_t Size() const override { return size_.load(); }
  core::Result<MerkleHash> LeafHash(uint64_t index) const override;
  core::Result<MerkleHash> PerfectSubtreeHash(int level, uint64_t index) const override;

  // The leaf's bytes. Errors: kNotFound "LOG_INDEX_UNKNOWN" beyond the size.
  core::Result<std::string> Leaf(uint64_t index) const;
  // The first index whose leaf hash is leaf_hash.
  // Errors: kNotFound "LOG_ENTRY_UNKNOWN".
  core::Result<uint64_t> IndexOf(const MerkleHash& leaf_hash) const;

  // A checkpoint of the current size, signed; cached until the log grows.
  core::Result<SignedCheckpoint> Checkpoint();

  const std::string& origin() const { return options_.origin; }
  const signing::PublicKey& public_key() const { return options_.key->public_key(); }
  // "<origin>+<hex key id>+<base64(0x01 || key)>".
  const std::string& verifier_key() const { return verifier_key_; }

 private:
  explicit TransparencyLog(TransparencyLogOptions options) : options_(std::move(options)) {}

  TransparencyLogOptions options_;
  std::string verifier_key_;
  std::atomic<uint64_t> size_{0};
  std::mutex append_mu_;  // held across an append's batch write
  std::mutex checkpoint_mu_;
  std::optional<SignedCheckpoint> cached_;
};

}  // namespace sigil::attest
