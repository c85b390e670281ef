#include "attest/merkle.h"

#include <bit>
#include <filesystem>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/digest.h"
#include "core/fs.h"
#include "core/json.h"
#include "signing/base64.h"

namespace sigil::attest {
namespace {

using core::Json;

std::string B64(const Json& v) {
  if (v.is_null()) return {};
  auto bytes = signing::Base64Decode(v.get<std::string>());
  REQUIRE(bytes.ok());
  return *bytes;
}

std::vector<std::string> Proof(const Json& v) {
  std::vector<std::string> out;
  if (v.is_null()) return out;
  for (const Json& p : v) out.push_back(B64(p));
  return out;
}

std::vector<std::string> ToStrings(const std::vector<MerkleHash>& proof) {
  std::vector<std::string> out;
  for (const MerkleHash& h : proof) out.push_back(HashBytes(h));
  return out;
}

std::vector<std::pair<std::string, Json>> LoadVectors(const std::string& dir) {
  std::vector<std::pair<std::string, Json>> out;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".json") continue;
    auto text = core::ReadFile(entry.path().string());
    REQUIRE(text.ok());
    auto doc = core::ParseJson(*text);
    REQUIRE(doc.ok());
    out.emplace_back(entry.path().lexically_relative(dir).string(), *doc);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

// The eight leaves behind the vectors (RFC 6962 test data, as used by
// transparency-dev/merkle).
MemoryTree ReferenceTree() {
  const std::string leaves[] = {
      "",
      std::string("\x00", 1),
      "\x10",
      "\x20\x21",
      "\x30\x31",
      "\x40\x41\x42\x43",
      "\x50\x51\x52\x53\x54\x55\x56\x57",
      "\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
  };
  MemoryTree tree;
  for (const std::string& l : leaves) tree.Append(l);
  return tree;
}

TEST_CASE("Merkle hashing primitives", "[attest][merkle]") {
  CHECK(core::HexEncode(MerkleEmptyRoot().data(), 32) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(core::HexEncode(MerkleLeafHash("").data(), 32) ==
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
  MemoryTree tree = ReferenceTree();
  auto root = RootHash(tree, 8);
  REQUIRE(root.ok());
  CHECK(core::HexEncode(root->data(), 32) ==
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328");
  auto empty = RootHash(tree, 0);
  REQUIRE(empty.ok());
  CHECK(*empty == MerkleEmptyRoot());
  CHECK(RootHash(tree, 9).status().code() == core::Code::kOutOfRange);
}

TEST_CASE("every inclusion vector gives the expected verdict", "[attest][merkle]") {
  MemoryTree tree = ReferenceTree();
  auto vectors = LoadVectors(SIGIL_VECTORS_DIR "/merkle/inclusion");
  REQUIRE(vectors.size() >= 80);
  int happy = 0;
  for (const auto& [name, v] : vectors) {
    INFO(name << ": " << v["desc"].get<std::string>());
    uint64_t index = v["leafIdx"].get<uint64_t>();
    uint64_t size = v["treeSize"].get<uint64_t>();
    std::vector<std::string> proof = Proof(v["proof"]);
    core::Status s = VerifyInclusion(index, size, B64(v["leafHash"]), proof, B64(v["root"]));
    bool want_err = v["wantErr"].get<bool>();
    CHECK(s.ok() == !want_err);
    if (!s.ok()) {
      CHECK(s.code() == core::Code::kUnauthenticated);
      CHECK(s.reason() == "MERKLE_PROOF_INVALID");
    }
    // Our generator must produce exactly the happy paths over the same leaves.
    if (!want_err && size <= tree.Size() && index < size &&
        B64(v["leafHash"]) == HashBytes(tree.LeafHash(index).value())) {
      auto generated = InclusionProof(tree, index, size);
      REQUIRE(generated.ok());
      CHECK(ToStrings(*generated) == proof);
      CHECK(HashBytes(RootHash(tree, size).value()) == B64(v["root"]));
      ++happy;
    }
  }
  CHECK(happy >= 5);
}

TEST_CASE("every consistency vector gives the expected verdict", "[attest][merkle]") {
  MemoryTree tree = ReferenceTree();
  auto vectors = LoadVectors(SIGIL_VECTORS_DIR "/merkle/consistency");
  REQUIRE(vectors.size() >= 80);
  int happy = 0;
  for (const auto& [name, v] : vectors) {
    INFO(name << ": " << v["desc"].get<std::string>());
    uint64_t size1 = v["size1"].get<uint64_t>();
    uint64_t size2 = v["size2"].get<uint64_t>();
    std::vector<std::string> proof = Proof(v["proof"]);
    core::Status s = VerifyConsistency(size1, size2, proof, B64(v["root1"]), B64(v["root2"]));
    bool want_err = v["wantErr"].get<bool>();
    CHECK(s.ok() == !want_err);
    if (!s.ok()) CHECK(s.reason() == "MERKLE_PROOF_INVALID");
    if (!want_err && size1 > 0 && size2 <= tree.Size() &&
        B64(v["root2"]) == HashBytes(RootHash(tree, size2).value())) {
      auto generated = ConsistencyProof(tree, size1, size2);
      REQUIRE(generated.ok());
      CHECK(ToStrings(*generated) == proof);
      CHECK(HashBytes(RootHash(tree, size1).value()) == B64(v["root1"]));
      ++happy;
    }
  }
  CHECK(happy >= 4);
}

TEST_CASE("generated proofs verify for every index and size up to 70", "[attest][merkle]") {
  MemoryTree tree;
  for (int i = 0; i < 70; ++i) tree.Append("leaf " + std::to_string(i));
  for (uint64_t n = 1; n <= 70; ++n) {
    std::string root = HashBytes(RootHash(tree, n).value());
    for (uint64_t i = 0; i < n; ++i) {
      INFO("inclusion " << i << " in " << n);
      auto proof = InclusionProof(tree, i, n);
      REQUIRE(proof.ok());
      std::vector<std::string> p = ToStrings(*proof);
      std::string leaf = HashBytes(tree.LeafHash(i).value());
      REQUIRE(VerifyInclusion(i, n, leaf, p, root).ok());
      if (!p.empty()) {
        std::vector<std::string> truncated(p.begin(), p.end() - 1);
        CHECK_FALSE(VerifyInclusion(i, n, leaf, truncated, root).ok());
        std::vector<std::string> flipped = p;
        flipped[0][5] ^= 0x20;
        CHECK_FALSE(VerifyInclusion(i, n, leaf, flipped, root).ok());
      }
      // The size is authenticated by the signed root, not by the path: a
      // proof checked against another size's root must fail.
      if (n > 1) CHECK_FALSE(VerifyInclusion(i, n, leaf, p, HashBytes(RootHash(tree, n - 1).value())).ok());
      CHECK_FALSE(VerifyInclusion(i, n, HashBytes(MerkleLeafHash("other")), p, root).ok());
    }
    for (uint64_t m = 1; m <= n; ++m) {
      INFO("consistency " << m << " to " << n);
      auto proof = ConsistencyProof(tree, m, n);
      REQUIRE(proof.ok());
      std::vector<std::string> p = ToStrings(*proof);
      std::string root1 = HashBytes(RootHash(tree, m).value());
      REQUIRE(VerifyConsistency(m, n, p, root1, root).ok());
      if (!p.empty()) {
        std::vector<std::string> truncated(p.begin(), p.end() - 1);
        CHECK_FALSE(VerifyConsistency(m, n, truncated, root1, root).ok());
        std::vector<std::string> short_node = p;
        short_node.back().pop_back();
        CHECK_FALSE(VerifyConsistency(m, n, short_node, root1, root).ok());
      }
    }
  }
  CHECK(InclusionProof(tree, 70, 70).status().code() == core::Code::kOutOfRange);
  CHECK(InclusionProof(tree, 0, 71).status().code() == core::Code::kOutOfRange);
  CHECK(ConsistencyProof(tree, 0, 5).status().code() == core::Code::kOutOfRange);
  CHECK(ConsistencyProof(tree, 6, 5).status().code() == core::Code::kOutOfRange);
}

// Only leaves: every complete subtree is recomputed by TreeSource's default.
class LeafOnlySource : public TreeSource {
 public:
  explicit LeafOnlySource(const MemoryTree& tree) : tree_(tree) {}
  uint64_t Size() const override { return tree_.Size(); }
  core::Result<MerkleHash> LeafHash(uint64_t index) const override { return tree_.LeafHash(index); }

 private:
  const MemoryTree& tree_;
};

// Counts reads, to hold proofs to their logarithmic cost.
class CountingSource : public TreeSource {
 public:
  explicit CountingSource(const MemoryTree& tree) : tree_(tree) {}
  uint64_t Size() const override { return tree_.Size(); }
  core::Result<MerkleHash> LeafHash(uint64_t index) const override {
    ++reads;
    return tree_.LeafHash(index);
  }
  core::Result<MerkleHash> PerfectSubtreeHash(int level, uint64_t index) const override {
    ++reads;
    return tree_.PerfectSubtreeHash(level, index);
  }
  mutable uint64_t reads = 0;

 private:
  const MemoryTree& tree_;
};

TEST_CASE("proofs from stored subtrees cost O(log^2 n) reads and match a leaf-only source",
          "[attest][merkle]") {
  MemoryTree tree;
  const uint64_t n = 100'003;
  for (uint64_t i = 0; i < n; ++i) tree.Append(std::to_string(i));
  CountingSource counting(tree);
  LeafOnlySource leaves(tree);
  const uint64_t log_n = std::bit_width(n);
  for (uint64_t index : {uint64_t{0}, uint64_t{1}, n / 2, n - 2, n - 1}) {
    counting.reads = 0;
    auto proof = InclusionProof(counting, index, n);
    REQUIRE(proof.ok());
    CHECK(counting.reads <= log_n * log_n);
    CHECK(VerifyInclusion(index, n, HashBytes(tree.LeafHash(index).value()), ToStrings(*proof),
                          HashBytes(RootHash(tree, n).value()))
              .ok());
  }
  for (uint64_t m : {uint64_t{1}, uint64_t{7}, n / 3, n - 1}) {
    counting.reads = 0;
    auto proof = ConsistencyProof(counting, m, n);
    REQUIRE(proof.ok());
    CHECK(counting.reads <= log_n * log_n);
  }
  // Small sizes: the default subtree computation agrees with stored nodes.
  for (uint64_t size : {uint64_t{1}, uint64_t{2}, uint64_t{3}, uint64_t{1000}, uint64_t{1025}}) {
    CHECK(RootHash(leaves, size).value() == RootHash(tree, size).value());
    CHECK(InclusionProof(leaves, size - 1, size).value() == InclusionProof(tree, size - 1, size).value());
    CHECK(ConsistencyProof(leaves, 1, size).value() == ConsistencyProof(tree, 1, size).value());
  }
}

}  // namespace
}  // namespace sigil::attest
