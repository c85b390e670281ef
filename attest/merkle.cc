#include "attest/merkle.h"

#include <bit>

#include "core/digest.h"

namespace sigil::attest {

using core::Result;
using core::Status;

namespace {

MerkleHash ToHash(const core::Digest& d) { return d.bytes(); }

Status ProofInvalid(std::string message) {
  return core::Unauthenticated("Merkle proof: " + std::move(message), "MERKLE_PROOF_INVALID");
}

// Largest power of two strictly smaller than n. REQUIRES: n >= 2.
uint64_t SplitPoint(uint64_t n) { return std::bit_floor(n - 1); }

// MTH of leaves [begin, end), a range that arises in RFC 9162's recursion.
Result<MerkleHash> SubtreeHash(const TreeSource& source, uint64_t begin, uint64_t end) {
  uint64_t n = end - begin;
  if (n == 0) return MerkleEmptyRoot();
  if (std::has_single_bit(n) && begin % n == 0) {
    return source.PerfectSubtreeHash(std::countr_zero(n), begin / n);
  }
  uint64_t k = SplitPoint(n);
  ASSIGN_OR_RETURN(MerkleHash left, SubtreeHash(source, begin, begin + k));
  ASSIGN_OR_RETURN(MerkleHash right, SubtreeHash(source, begin + k, end));
  return MerkleNodeHash(left, right);
}

// PATH(m, D[begin:end]), appended to out deepest first.
Status Path(const TreeSource& source, uint64_t m, uint64_t begin, uint64_t end,
            std::vector<MerkleHash>* out) {
  uint64_t n = end - begin;
  if (n <= 1) return core::OkStatus();
  uint64_t k = SplitPoint(n);
  if (m < k) {
    RETURN_IF_ERROR(Path(source, m, begin, begin + k, out));
    ASSIGN_OR_RETURN(MerkleHash sibling, SubtreeHash(source, begin + k, end));
    out->push_back(sibling);
  } else {
    RETURN_IF_ERROR(Path(source, m - k, begin + k, end, out));
    ASSIGN_OR_RETURN(MerkleHash sibling, SubtreeHash(source, begin, begin + k));
    out->push_back(sibling);
  }
  return core::OkStatus();
}

// SUBPROOF(m, D[begin:end], b), appended deepest first.
Status SubProof(const TreeSource& source, uint64_t m, uint64_t begin, uint64_t end, bool whole,
                std::vector<MerkleHash>* out) {
  uint64_t n = end - begin;
  if (m == n) {
    if (whole) return core::OkStatus();
    ASSIGN_OR_RETURN(MerkleHash h, SubtreeHash(source, begin, end));
    out->push_back(h);
    return core::OkStatus();
  }
  uint64_t k = SplitPoint(n);
  if (m <= k) {
    RETURN_IF_ERROR(SubProof(source, m, begin, begin + k, whole, out));
    ASSIGN_OR_RETURN(MerkleHash right, SubtreeHash(source, begin + k, end));
    out->push_back(right);
  } else {
    RETURN_IF_ERROR(SubProof(source, m - k, begin + k, end, false, out));
    ASSIGN_OR_RETURN(MerkleHash left, SubtreeHash(source, begin, begin + k));
    out->push_back(left);
  }
  return core::OkStatus();
}

// HASH(0x01 || left || right) over byte strings already checked to be 32 long.
std::string NodeBytes(std::string_view left, std::string_view right) {
  core::Sha256 h;
  const uint8_t prefix = 0x01;
  h.Update(&prefix, 1);
  h.Update(left);
  h.Update(right);
  return HashBytes(h.Finish().bytes());
}

Status CheckNodes(const std::vector<std::string>& proof) {
  for (size_t i = 0; i < proof.size(); ++i) {
    if (proof[i].size() != 32) {
      return ProofInvalid("node " + std::to_string(i) + " is " + std::to_string(proof[i].size()) +
                          " bytes, not 32");
    }
  }
  return core::OkStatus();
}

}  // namespace

MerkleHash MerkleLeafHash(std::string_view data) {
  core::Sha256 h;
  const uint8_t prefix = 0x00;
  h.Update(&prefix, 1);
  h.Update(data);
  return ToHash(h.Finish());
}

MerkleHash MerkleNodeHash(const MerkleHash& left, const MerkleHash& right) {
  core::Sha256 h;
  const uint8_t prefix = 0x01;
  h.Update(&prefix, 1);
  h.Update(left.data(), left.size());
  h.Update(right.data(), right.size());
  return ToHash(h.Finish());
}

MerkleHash MerkleEmptyRoot() { return ToHash(core::Sha256::Of("")); }

std::string HashBytes(const MerkleHash& hash) {
  return std::string(reinterpret_cast<const char*>(hash.data()), hash.size());
}

Result<MerkleHash> TreeSource::PerfectSubtreeHash(int level, uint64_t index) const {
  if (level == 0) return LeafHash(index);
  ASSIGN_OR_RETURN(MerkleHash left, PerfectSubtreeHash(level - 1, 2 * index));
  ASSIGN_OR_RETURN(MerkleHash right, PerfectSubtreeHash(level - 1, 2 * index + 1));
  return MerkleNodeHash(left, right);
}

uint64_t MemoryTree::Append(std::string_view data) { return AppendLeafHash(MerkleLeafHash(data)); }

uint64_t MemoryTree::AppendLeafHash(const MerkleHash& leaf_hash) {
  if (levels_.empty()) levels_.emplace_back();
  uint64_t index = levels_[0].size();
  levels_[0].push_back(leaf_hash);
  // Each completed pair at one level completes a node at the next.
  for (size_t l = 0; levels_[l].size() % 2 == 0; ++l) {
    const auto& level = levels_[l];
    MerkleHash parent = MerkleNodeHash(level[level.size() - 2], level[level.size() - 1]);
    if (levels_.size() == l + 1) levels_.emplace_back();
    levels_[l + 1].push_back(parent);
  }
  return index;
}

uint64_t MemoryTree::Size() const { return levels_.empty() ? 0 : levels_[0].size(); }

Result<MerkleHash> MemoryTree::LeafHash(uint64_t index) const { return PerfectSubtreeHash(0, index); }

Result<MerkleHash> MemoryTree::PerfectSubtreeHash(int level, uint64_t index) const {
  if (level < 0 || static_cast<size_t>(level) >= levels_.size() ||
      index >= levels_[static_cast<size_t>(level)].size()) {
    return core::OutOfRange("no complete subtree at level " + std::to_string(level) + " index " +
                            std::to_string(index));
  }
  return levels_[static_cast<size_t>(level)][index];
}

Result<MerkleHash> RootHash(const TreeSource& source, uint64_t size) {
  if (size > source.Size()) {
    return core::OutOfRange("tree size " + std::to_string(size) + " beyond the log's " +
                            std::to_string(source.Size()));
  }
  return SubtreeHash(source, 0, size);
}

Result<std::vector<MerkleHash>> InclusionProof(const TreeSource& source, uint64_t index,
                                               uint64_t size) {
  if (index >= size || size > source.Size()) {
    return core::OutOfRange("no inclusion proof for leaf " + std::to_string(index) +
                            " in a tree of " + std::to_string(size) + " (log has " +
                            std::to_string(source.Size()) + ")");
  }
  std::vector<MerkleHash> proof;
  RETURN_IF_ERROR(Path(source, index, 0, size, &proof));
  return proof;
}

Result<std::vector<MerkleHash>> ConsistencyProof(const TreeSource& source, uint64_t size1,
                                                 uint64_t size2) {
  if (size1 == 0 || size1 > size2 || size2 > source.Size()) {
    return core::OutOfRange("no consistency proof from " + std::to_string(size1) + " to " +
                            std::to_string(size2) + " (log has " + std::to_string(source.Size()) +
                            ")");
  }
  std::vector<MerkleHash> proof;
  RETURN_IF_ERROR(SubProof(source, size1, 0, size2, true, &proof));
  return proof;
}

Status VerifyInclusion(uint64_t index, uint64_t size, std::string_view leaf_hash,
                       const std::vector<std::string>& proof, std::string_view root) {
  if (index >= size) {
    return ProofInvalid("leaf index " + std::to_string(index) + " not below tree size " +
                        std::to_string(size));
  }
  if (leaf_hash.size() != 32) return ProofInvalid("leaf hash is not 32 bytes");
  RETURN_IF_ERROR(CheckNodes(proof));
  uint64_t fn = index;
  uint64_t sn = size - 1;
  std::string r(leaf_hash);
  for (const std::string& p : proof) {
    if (sn == 0) return ProofInvalid("proof longer than the path");
    if ((fn & 1) != 0 || fn == sn) {
      r = NodeBytes(p, r);
      if ((fn & 1) == 0) {
        while ((fn & 1) == 0 && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = NodeBytes(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return ProofInvalid("proof shorter than the path");
  if (r != root) return ProofInvalid("computed root does not match");
  return core::OkStatus();
}

Status VerifyConsistency(uint64_t size1, uint64_t size2, const std::vector<std::string>& proof,
                         std::string_view root1, std::string_view root2) {
  if (size1 == 0) return ProofInvalid("consistency with the empty tree proves nothing");
  if (size2 < size1) {
    return ProofInvalid("size2 " + std::to_string(size2) + " below size1 " + std::to_string(size1));
  }
  if (size1 == size2) {
    if (!proof.empty()) return ProofInvalid("equal sizes need an empty proof");
    if (root1 != root2) return ProofInvalid("equal sizes but different roots");
    return core::OkStatus();
  }
  if (proof.empty()) return ProofInvalid("empty proof for different sizes");
  RETURN_IF_ERROR(CheckNodes(proof));
  if (root1.size() != 32 || root2.size() != 32) return ProofInvalid("roots must be 32 bytes");

  std::vector<std::string_view> path;
  if (std::has_single_bit(size1)) path.push_back(root1);
  for (const std::string& p : proof) path.push_back(p);

  uint64_t fn = size1 - 1;
  uint64_t sn = size2 - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  std::string fr(path[0]);
  std::string sr(path[0]);
  for (size_t i = 1; i < path.size(); ++i) {
    std::string_view c = path[i];
    if (sn == 0) return ProofInvalid("proof longer than needed");
    if ((fn & 1) != 0 || fn == sn) {
      fr = NodeBytes(c, fr);
      sr = NodeBytes(c, sr);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = NodeBytes(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return ProofInvalid("proof shorter than needed");
  if (fr != root1) return ProofInvalid("computed first root does not match");
  if (sr != root2) return ProofInvalid("computed second root does not match");
  return core::OkStatus();
}

}  // namespace sigil::attest
