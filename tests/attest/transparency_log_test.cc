#include "attest/transparency_log.h"

#include <atomic>
#include <bit>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "attest/checkpoint.h"
#include "attest/merkle.h"
#include "signing/keys.h"
#include "storage/meta_store.h"
#include "storage/rocks_meta_store.h"
#include "tests/support/temp_dir.h"

namespace sigil::attest {
namespace {

// Counts reads, so tests can bound what a proof costs.
class CountingMetaStore : public storage::MetaStore {
 public:
  explicit CountingMetaStore(storage::MetaStore* base) : base_(base) {}
  core::Result<std::string> Get(std::string_view cf, std::string_view key) override {
    ++gets;
    return base_->Get(cf, key);
  }
  core::Status Write(const storage::WriteBatch& batch) override { return base_->Write(batch); }
  core::Status Scan(std::string_view cf, std::string_view prefix,
                    const std::function<bool(std::string_view, std::string_view)>& fn,
                    std::string_view start_after) override {
    return base_->Scan(cf, prefix, fn, start_after);
  }
  core::Status CheckHealth() override { return base_->CheckHealth(); }

  std::atomic<uint64_t> gets{0};

 private:
  storage::MetaStore* base_;
};

signing::PrivateKey LogKey() {
  static const signing::PrivateKey key = *signing::PrivateKey::Generate(signing::Algorithm::kEd25519);
  return key;
}

std::unique_ptr<TransparencyLog> OpenLog(storage::MetaStore* meta) {
  TransparencyLogOptions o;
  o.meta = meta;
  o.origin = "sigil/test.example";
  o.key = LogKey();
  auto log = TransparencyLog::Open(o);
  REQUIRE(log.ok());
  return std::move(log).value();
}

std::string LeafData(uint64_t i) { return "entry-" + std::to_string(i); }

std::vector<std::string> Strings(const std::vector<MerkleHash>& hashes) {
  std::vector<std::string> out;
  for (const auto& h : hashes) out.push_back(HashBytes(h));
  return out;
}

void CheckAllProofs(TransparencyLog& log, const MemoryTree& expected) {
  REQUIRE(log.Size() == expected.Size());
  for (uint64_t size = 1; size <= log.Size(); ++size) {
    auto root = RootHash(log, size);
    REQUIRE(root.ok());
    REQUIRE(*root == *RootHash(expected, size));
    for (uint64_t i = 0; i < size; ++i) {
      auto proof = InclusionProof(log, i, size);
      REQUIRE(proof.ok());
      INFO("index " << i << " size " << size);
      REQUIRE(
          VerifyInclusion(i, size, HashBytes(MerkleLeafHash(LeafData(i))), Strings(*proof), HashBytes(*root))
              .ok());
    }
    for (uint64_t from = 1; from <= size; ++from) {
      auto proof = ConsistencyProof(log, from, size);
      REQUIRE(proof.ok());
      REQUIRE(VerifyConsistency(from, size, Strings(*proof), HashBytes(*RootHash(expected, from)),
                                HashBytes(*root))
                  .ok());
    }
  }
}

TEST_CASE("log appends survive reopening RocksDB and proofs verify against the root", "[attest][log]") {
  testing::TempDir dir;
  MemoryTree expected;
  {
    auto meta = storage::OpenRocksMetaStore(dir.Sub("meta"));
    REQUIRE(meta.ok());
    auto log = OpenLog(meta->get());
    REQUIRE(log->Size() == 0);
    for (uint64_t i = 0; i < 21; ++i) {
      storage::WriteBatch batch;
      batch.Put("referrers", "k" + std::to_string(i), "v");
      auto index = log->AppendWith(std::move(batch), LeafData(i));
      REQUIRE(index.ok());
      REQUIRE(*index == i);
      expected.Append(LeafData(i));
    }
  }
  auto meta = storage::OpenRocksMetaStore(dir.Sub("meta"));
  REQUIRE(meta.ok());
  auto log = OpenLog(meta->get());
  REQUIRE(log->Size() == 21);
  for (uint64_t i = 0; i < 21; ++i) {
    REQUIRE(*log->Leaf(i) == LeafData(i));
    REQUIRE(*log->IndexOf(MerkleLeafHash(LeafData(i))) == i);
    // The caller's records were written with the entry.
    REQUIRE((*meta)->Get("referrers", "k" + std::to_string(i)).ok());
  }
  CheckAllProofs(*log, expected);
  REQUIRE(log->Leaf(21).status().reason() == "LOG_INDEX_UNKNOWN");
  REQUIRE(log->IndexOf(MerkleLeafHash("never")).status().reason() == "LOG_ENTRY_UNKNOWN");

  // Appending after the reopen continues the same tree.
  REQUIRE(*log->AppendWith({}, LeafData(21)) == 21);
  expected.Append(LeafData(21));
  CheckAllProofs(*log, expected);
}

TEST_CASE("a batch that fails to write leaves no log entry", "[attest][log]") {
  testing::TempDir dir;
  auto meta = storage::OpenRocksMetaStore(dir.Sub("meta"));
  REQUIRE(meta.ok());
  {
    auto log = OpenLog(meta->get());
    REQUIRE(log->AppendWith({}, LeafData(0)).ok());
    auto before = log->Checkpoint();
    REQUIRE(before.ok());

    storage::WriteBatch bad;
    bad.Put("referrers", "accepted", "x");
    bad.Put("no-such-family", "k", "v");
    auto failed = log->AppendWith(std::move(bad), LeafData(1));
    REQUIRE(failed.status().code() == core::Code::kInvalidArgument);
    REQUIRE(log->Size() == 1);
    REQUIRE(log->Leaf(1).status().reason() == "LOG_INDEX_UNKNOWN");
    REQUIRE(log->IndexOf(MerkleLeafHash(LeafData(1))).status().code() == core::Code::kNotFound);
    REQUIRE((*meta)->Get("referrers", "accepted").status().code() == core::Code::kNotFound);

    // A stage function that fails stops the append as well.
    auto staged = log->AppendWith({}, LeafData(1), [](uint64_t, storage::WriteBatch*) {
      return core::Aborted("caller changed its mind");
    });
    REQUIRE(staged.status().code() == core::Code::kAborted);
    REQUIRE(log->Size() == 1);
    REQUIRE(log->Checkpoint()->note == before->note);

    // The next good append takes the index the failed ones did not.
    uint64_t seen = 99;
    auto ok = log->AppendWith({}, LeafData(1), [&](uint64_t index, storage::WriteBatch* b) {
      seen = index;
      b->Put("referrers", "accepted", std::to_string(index));
      return core::OkStatus();
    });
    REQUIRE(ok.ok());
    REQUIRE(*ok == 1);
    REQUIRE(seen == 1);
    REQUIRE(*(*meta)->Get("referrers", "accepted") == "1");
  }
  meta->reset();
  meta = storage::OpenRocksMetaStore(dir.Sub("meta"));
  REQUIRE(meta.ok());
  auto log = OpenLog(meta->get());
  REQUIRE(log->Size() == 2);
  MemoryTree expected;
  expected.Append(LeafData(0));
  expected.Append(LeafData(1));
  CheckAllProofs(*log, expected);
}

TEST_CASE("log refuses empty and oversized leaves and bad options", "[attest][log]") {
  auto meta = storage::NewMemoryMetaStore();
  auto log = OpenLog(meta.get());
  REQUIRE(log->AppendWith({}, "").status().reason() == "LOG_LEAF_INVALID");
  REQUIRE(log->AppendWith({}, std::string(kMaxLeafBytes + 1, 'x')).status().reason() == "LOG_LEAF_INVALID");
  REQUIRE(log->Size() == 0);

  TransparencyLogOptions o;
  o.meta = meta.get();
  o.origin = "sigil/test";
  REQUIRE(TransparencyLog::Open(o).status().code() == core::Code::kInvalidArgument);  // no key
  o.key = *signing::PrivateKey::Generate(signing::Algorithm::kEcdsaP256Sha256);
  REQUIRE(TransparencyLog::Open(o).status().code() == core::Code::kInvalidArgument);  // not Ed25519
  o.key = LogKey();
  o.origin = "has space";
  REQUIRE(TransparencyLog::Open(o).status().code() == core::Code::kInvalidArgument);
  o.origin = "";
  REQUIRE(TransparencyLog::Open(o).status().code() == core::Code::kInvalidArgument);

  REQUIRE(meta->Put("log", "s", "12x").ok());
  o.origin = "sigil/test";
  REQUIRE(TransparencyLog::Open(o).status().code() == core::Code::kDataLoss);
}

TEST_CASE("log checkpoints verify with the published note key and are cached", "[attest][log]") {
  auto meta = storage::NewMemoryMetaStore();
  auto log = OpenLog(meta.get());
  auto verifier = ParseNoteVerifierKey(log->verifier_key());
  REQUIRE(verifier.ok());

  auto empty = log->Checkpoint();
  REQUIRE(empty.ok());
  auto parsed = VerifyCheckpoint(empty->note, "sigil/test.example", {*verifier});
  REQUIRE(parsed.ok());
  REQUIRE(parsed->size == 0);
  REQUIRE(parsed->root == MerkleEmptyRoot());

  for (uint64_t i = 0; i < 5; ++i) REQUIRE(log->AppendWith({}, LeafData(i)).ok());
  auto cp = log->Checkpoint();
  REQUIRE(cp.ok());
  parsed = VerifyCheckpoint(cp->note, "sigil/test.example", {*verifier});
  REQUIRE(parsed.ok());
  REQUIRE(parsed->size == 5);
  REQUIRE(parsed->root == *RootHash(*log, 5));

  // Cached: no store reads while the size is unchanged.
  CountingMetaStore counting(meta.get());
  auto counted = OpenLog(&counting);
  REQUIRE(counted->Checkpoint().ok());
  uint64_t after_first = counting.gets.load();
  REQUIRE(counted->Checkpoint()->note == cp->note);
  REQUIRE(counting.gets.load() == after_first);

  // Another key's verifier does not accept it.
  auto other = *signing::PrivateKey::Generate(signing::Algorithm::kEd25519);
  auto other_verifier = ParseNoteVerifierKey(*NoteVerifierKey("sigil/test.example", other.public_key()));
  REQUIRE(other_verifier.ok());
  REQUIRE(VerifyCheckpoint(cp->note, "sigil/test.example", {*other_verifier}).status().reason() ==
          "CHECKPOINT_UNKNOWN_KEY");
}

TEST_CASE("log of 10000 entries answers proofs with a bounded number of reads", "[attest][log]") {
  auto base = storage::NewMemoryMetaStore();
  CountingMetaStore meta(base.get());
  auto log = OpenLog(&meta);
  constexpr uint64_t kN = 10000;
  uint64_t max_append_reads = 0;
  for (uint64_t i = 0; i < kN; ++i) {
    uint64_t before = meta.gets.load();
    REQUIRE(log->AppendWith({}, LeafData(i)).ok());
    max_append_reads = std::max(max_append_reads, meta.gets.load() - before);
  }
  // One read per completed subtree level plus the leaf-hash index check.
  REQUIRE(max_append_reads <= 15);

  // O(log^2 n) at worst (merkle.h); log2(10000) < 14.
  constexpr uint64_t kBound = 14 * 14;
  auto root = RootHash(*log, kN);
  REQUIRE(root.ok());
  for (uint64_t index :
       {uint64_t{0}, uint64_t{1}, uint64_t{4095}, uint64_t{4096}, uint64_t{8191}, uint64_t{9998}, kN - 1}) {
    uint64_t before = meta.gets.load();
    auto proof = InclusionProof(*log, index, kN);
    REQUIRE(proof.ok());
    uint64_t reads = meta.gets.load() - before;
    INFO("index " << index << " took " << reads << " reads");
    REQUIRE(reads <= kBound);
    REQUIRE(VerifyInclusion(index, kN, HashBytes(MerkleLeafHash(LeafData(index))), Strings(*proof),
                            HashBytes(*root))
                .ok());
  }
  for (uint64_t from : {uint64_t{1}, uint64_t{777}, uint64_t{4096}, uint64_t{9999}}) {
    uint64_t before = meta.gets.load();
    auto proof = ConsistencyProof(*log, from, kN);
    REQUIRE(proof.ok());
    REQUIRE(meta.gets.load() - before <= kBound);
    REQUIRE(VerifyConsistency(from, kN, Strings(*proof), HashBytes(*RootHash(*log, from)), HashBytes(*root))
                .ok());
  }
  // A wrong leaf does not verify with a right proof.
  auto proof = InclusionProof(*log, 5, kN);
  REQUIRE(VerifyInclusion(5, kN, HashBytes(MerkleLeafHash(LeafData(6))), Strings(*proof), HashBytes(*root))
              .reason() == "MERKLE_PROOF_INVALID");
}

TEST_CASE("concurrent appends take distinct indexes and keep the tree whole", "[attest][log]") {
  auto meta = storage::NewMemoryMetaStore();
  auto log = OpenLog(meta.get());
  constexpr int kThreads = 4;
  constexpr int kEach = 50;
  std::vector<std::vector<uint64_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        std::string leaf = "t" + std::to_string(t) + "-" + std::to_string(i);
        storage::WriteBatch batch;
        auto index = log->AppendWith(std::move(batch), leaf, [&](uint64_t index, storage::WriteBatch* b) {
          b->Put("referrers", leaf, std::to_string(index));
          return core::OkStatus();
        });
        if (index.ok()) got[t].push_back(*index);
        (void)log->Checkpoint();
      }
    });
  }
  for (auto& th : threads) th.join();
  REQUIRE(log->Size() == kThreads * kEach);
  std::vector<bool> seen(kThreads * kEach, false);
  for (int t = 0; t < kThreads; ++t) {
    REQUIRE(got[t].size() == kEach);
    for (int i = 0; i < kEach; ++i) {
      uint64_t index = got[t][i];
      std::string leaf = "t" + std::to_string(t) + "-" + std::to_string(i);
      REQUIRE_FALSE(seen[index]);
      seen[index] = true;
      REQUIRE(*log->Leaf(index) == leaf);
      REQUIRE(*meta->Get("referrers", leaf) == std::to_string(index));
    }
  }
  MemoryTree expected;
  for (uint64_t i = 0; i < log->Size(); ++i) expected.Append(*log->Leaf(i));
  REQUIRE(*RootHash(*log, log->Size()) == *RootHash(expected, expected.Size()));
  auto verifier = ParseNoteVerifierKey(log->verifier_key());
  auto cp = VerifyCheckpoint(log->Checkpoint()->note, "sigil/test.example", {*verifier});
  REQUIRE(cp.ok());
  REQUIRE(cp->size == kThreads * kEach);
}

}  // namespace
}  // namespace sigil::attest
