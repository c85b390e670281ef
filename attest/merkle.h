// RFC 6962 / RFC 9162 Merkle tree hashing, proofs and proof verification.
//
// Leaf hash = SHA-256(0x00 || data); node hash = SHA-256(0x01 || left ||
// right); the empty tree's root is SHA-256(""). A tree of n leaves splits at
// k, the largest power of two smaller than n.
//
// Proof generation reads hashes through a TreeSource so the log may live in
// memory (MemoryTree, for tests and small logs) or in a database. A source
// that stores interior nodes of complete subtrees answers
// PerfectSubtreeHash in one read, and then every proof costs O(log^2 n)
// reads at worst (O(log n) subtrees, each a right-edge subtree of O(log n)
// complete pieces); the default implementation computes complete subtrees
// from their leaves.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sigil::attest {

using MerkleHash = std::array<uint8_t, 32>;

MerkleHash MerkleLeafHash(std::string_view data);
MerkleHash MerkleNodeHash(const MerkleHash& left, const MerkleHash& right);
MerkleHash MerkleEmptyRoot();
// The 32 bytes as a string (for comparing with proof input).
std::string HashBytes(const MerkleHash& hash);

// Read access to a log's hashes. Implementations must be safe for concurrent
// const calls if proofs are generated concurrently.
class TreeSource {
 public:
  virtual ~TreeSource() = default;
  // Number of leaves.
  virtual uint64_t Size() const = 0;
  // REQUIRES: index < Size().
  virtual core::Result<MerkleHash> LeafHash(uint64_t index) const = 0;
  // Root of the complete subtree of 2^level leaves starting at leaf
  // index << level. REQUIRES: (index + 1) << level <= Size().
  // The default computes it from the leaves (2^level reads).
  virtual core::Result<MerkleHash> PerfectSubtreeHash(int level, uint64_t index) const;
};

// A log in memory that keeps every complete subtree's root, so each
// PerfectSubtreeHash is one lookup. Append is amortised O(1) hashes.
// Not thread-safe for Append; const calls may run concurrently.
class MemoryTree : public TreeSource {
 public:
  // Appends a leaf with the given data; returns its index.
  uint64_t Append(std::string_view data);
  // Appends an already hashed leaf.
  uint64_t AppendLeafHash(const MerkleHash& leaf_hash);

  uint64_t Size() const override;
  core::Result<MerkleHash> LeafHash(uint64_t index) const override;
  core::Result<MerkleHash> PerfectSubtreeHash(int level, uint64_t index) const override;

 private:
  // levels_[l][i]: root of the complete subtree of 2^l leaves at i << l.
  std::vector<std::vector<MerkleHash>> levels_;
};

// Root of the first `size` leaves of source (RFC 9162 MTH).
// Errors: kOutOfRange when size > source.Size(); those of the source.
core::Result<MerkleHash> RootHash(const TreeSource& source, uint64_t size);

// Audit path for leaf `index` in the tree of the first `size` leaves
// (RFC 9162 2.1.3.1). Errors: kOutOfRange unless index < size <= Size().
core::Result<std::vector<MerkleHash>> InclusionProof(const TreeSource& source, uint64_t index,
                                                     uint64_t size);
// Consistency proof between the trees of size1 and size2 leaves
// (RFC 9162 2.1.4.1). Errors: kOutOfRange unless 0 < size1 <= size2 <= Size().
core::Result<std::vector<MerkleHash>> ConsistencyProof(const TreeSource& source, uint64_t size1,
                                                       uint64_t size2);

// Verifiers take raw byte strings so that wrong-length input is rejected,
// not truncated. Every failure is kUnauthenticated with reason
// "MERKLE_PROOF_INVALID" and a message saying what did not hold.
//
// RFC 9162 2.1.3.2. Requires index < size, a 32-byte leaf hash and 32-byte
// proof nodes.
core::Status VerifyInclusion(uint64_t index, uint64_t size, std::string_view leaf_hash,
                             const std::vector<std::string>& proof, std::string_view root);
// RFC 9162 2.1.4.2. size1 == 0 is an error (a proof from the empty tree
// proves nothing); size1 == size2 needs an empty proof and equal roots.
core::Status VerifyConsistency(uint64_t size1, uint64_t size2,
                               const std::vector<std::string>& proof, std::string_view root1,
                               std::string_view root2);

}  // namespace sigil::attest
