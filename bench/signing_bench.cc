// Measures signing: OpenSSF model signing of a 10-file model beside the
// single-core SHA-256 limit, raw signatures and verifications per second per
// algorithm over a DSSE-sized message, and the transparency log over RocksDB
// (synced appends, then inclusion and consistency proofs at the full size).
//
//   signing_bench [--size-mib N] [--log-size N] [--append-seconds S] [--dir DIR]
//
// The log is grown in two ways, both printed: a timed sample of real
// TransparencyLog::AppendWith calls (one synced WriteBatch each) gives the
// append rate; the rest, up to --log-size, is written straight into the
// "log" column family in the layout transparency_log.h documents, 16384
// leaves per synced batch, because one fsync per leaf would take hours. The
// reopened log's root is then checked against an in-memory tree of the same
// leaves, so the proofs below run over a log the real code accepts.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "attest/merkle.h"
#include "attest/model_signing.h"
#include "attest/transparency_log.h"
#include "core/digest.h"
#include "core/fs.h"
#include "core/random.h"
#include "signing/keys.h"
#include "storage/rocks_meta_store.h"

namespace {

using namespace sigil;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

int Fail(const core::Status& s) {
  std::fprintf(stderr, "signing_bench: %s\n", s.ToString().c_str());
  return 1;
}

std::string Hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string NodeKey(int level, uint64_t index) {
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%02x", level);
  return "n/" + std::string(buf) + "/" + Hex16(index);
}

// A DSSE-envelope-sized leaf that names its index, so every leaf hash differs.
std::string Leaf(uint64_t index) {
  std::string leaf = "{\"index\":" + std::to_string(index) + ",\"payload\":\"";
  leaf.append(256, 'a' + static_cast<char>(index % 26));
  leaf += "\"}";
  return leaf;
}

// Forwards to a log and counts the hash reads a proof makes.
class CountingSource : public attest::TreeSource {
 public:
  explicit CountingSource(const attest::TreeSource* inner) : inner_(inner) {}
  uint64_t Size() const override { return inner_->Size(); }
  core::Result<attest::MerkleHash> LeafHash(uint64_t index) const override {
    ++reads_;
    return inner_->LeafHash(index);
  }
  core::Result<attest::MerkleHash> PerfectSubtreeHash(int level, uint64_t index) const override {
    ++reads_;
    return inner_->PerfectSubtreeHash(level, index);
  }
  uint64_t reads() const { return reads_; }

 private:
  const attest::TreeSource* inner_;
  mutable uint64_t reads_ = 0;
};

std::vector<std::string> Strings(const std::vector<attest::MerkleHash>& hashes) {
  std::vector<std::string> out;
  out.reserve(hashes.size());
  for (const auto& h : hashes) out.push_back(attest::HashBytes(h));
  return out;
}

int ModelSigning(const std::string& dir, uint64_t size_mib) {
  const uint64_t total = size_mib << 20;
  const uint64_t per_file = total / 10;
  const uint64_t chunk = 16 << 20;
  std::string buf(chunk, '\0');
  core::RandomBytes(buf.data(), buf.size());
  const std::string model = dir + "/model";
  if (auto s = core::MakeDirs(model); !s.ok()) return Fail(s);
  for (int f = 0; f < 10; ++f) {
    std::ofstream out(model + "/shard-" + std::to_string(f) + ".bin", std::ios::binary);
    for (uint64_t done = 0; done < per_file; done += chunk) {
      buf[0] = static_cast<char>(f);
      buf[1] = static_cast<char>(done >> 24);
      out.write(buf.data(), static_cast<std::streamsize>(std::min(chunk, per_file - done)));
    }
    if (!out) return Fail(core::Internal("cannot write the model"));
  }
  const double mib = static_cast<double>(per_file * 10) / (1 << 20);

  core::Sha256 h;
  auto start = Clock::now();
  for (uint64_t done = 0; done < per_file * 10; done += chunk) h.Update(buf.data(), std::min(chunk, per_file * 10 - done));
  h.Finish();
  double sha_s = Seconds(start);

  auto key = signing::PrivateKey::Generate(signing::Algorithm::kEcdsaP256Sha256);
  if (!key.ok()) return Fail(key.status());
  attest::SerializationOptions options;
  options.threads = 2;
  const std::string bundle = dir + "/model.sig";
  start = Clock::now();
  if (auto s = attest::SignModel(model, *key, bundle, options); !s.ok()) return Fail(s);
  double sign_s = Seconds(start);
  start = Clock::now();
  auto verified = attest::VerifyModelFile(model, bundle, key->public_key());
  double verify_s = Seconds(start);
  if (!verified.ok()) return Fail(verified.status());

  std::printf("== model signing (10 files, %.0f MiB, page cache, files method, 2 threads)\n", mib);
  std::printf("sha256 (core::Sha256, 1 core, memory)  %8.0f MiB/s  (%6.2f s)\n", mib / sha_s, sha_s);
  std::printf("attest::SignModel                      %8.0f MiB/s  (%6.2f s)\n", mib / sign_s, sign_s);
  std::printf("attest::VerifyModelFile                %8.0f MiB/s  (%6.2f s)  %zu resources, root %s\n",
              mib / verify_s, verify_s, verified->resources.size(), verified->root.Hex().substr(0, 16).c_str());
  return 0;
}

int Signatures() {
  std::printf("== signatures over a 1 KiB message (1 core, ~1 s each)\n");
  std::string message(1024, '\0');
  core::RandomBytes(message.data(), message.size());
  for (auto algorithm : {signing::Algorithm::kEcdsaP256Sha256, signing::Algorithm::kEcdsaP384Sha384,
                         signing::Algorithm::kEd25519}) {
    auto key = signing::PrivateKey::Generate(algorithm);
    if (!key.ok()) return Fail(key.status());
    std::string signature;
    uint64_t signs = 0;
    auto start = Clock::now();
    double sign_s = 0;
    do {
      auto sig = key->Sign(message);
      if (!sig.ok()) return Fail(sig.status());
      signature = std::move(*sig);
      ++signs;
    } while ((sign_s = Seconds(start)) < 1.0);
    uint64_t verifies = 0;
    start = Clock::now();
    double verify_s = 0;
    do {
      if (auto s = key->public_key().Verify(message, signature); !s.ok()) return Fail(s);
      ++verifies;
    } while ((verify_s = Seconds(start)) < 1.0);
    std::printf("%-18s sign %8.0f /s   verify %8.0f /s\n", std::string(signing::AlgorithmName(algorithm)).c_str(),
                signs / sign_s, verifies / verify_s);
  }
  return 0;
}

int Log(const std::string& dir, uint64_t log_size, double append_seconds) {
  auto meta = storage::OpenRocksMetaStore(dir + "/meta");
  if (!meta.ok()) return Fail(meta.status());
  auto key = signing::PrivateKey::Generate(signing::Algorithm::kEd25519);
  if (!key.ok()) return Fail(key.status());
  auto open = [&]() {
    attest::TransparencyLogOptions options;
    options.meta = meta->get();
    options.origin = "sigil/bench";
    options.key = *key;
    return attest::TransparencyLog::Open(std::move(options));
  };
  auto log = open();
  if (!log.ok()) return Fail(log.status());

  std::printf("== transparency log (RocksDB, %s)\n", dir.c_str());
  attest::MemoryTree mirror;
  auto start = Clock::now();
  double append_s = 0;
  uint64_t appended = 0;
  while (appended < log_size && (append_s = Seconds(start)) < append_seconds) {
    std::string leaf = Leaf(appended);
    auto index = (*log)->AppendWith(storage::WriteBatch(), leaf);
    if (!index.ok()) return Fail(index.status());
    mirror.Append(leaf);
    ++appended;
  }
  append_s = Seconds(start);
  std::printf("AppendWith (one synced WriteBatch each) %8.0f appends/s  (%llu appends in %.2f s)\n",
              appended / append_s, static_cast<unsigned long long>(appended), append_s);

  // The rest of the log, written directly in the documented layout.
  const uint64_t kBatch = 16384;
  start = Clock::now();
  for (uint64_t first = appended; first < log_size; first += kBatch) {
    storage::WriteBatch batch;
    const uint64_t end = std::min(log_size, first + kBatch);
    for (uint64_t i = first; i < end; ++i) {
      std::string leaf = Leaf(i);
      attest::MerkleHash hash = attest::MerkleLeafHash(leaf);
      mirror.AppendLeafHash(hash);
      batch.Put(attest::kLogCf, "d/" + Hex16(i), leaf);
      batch.Put(attest::kLogCf, NodeKey(0, i), attest::HashBytes(hash));
      uint64_t node = i;
      for (int level = 1; (node & 1) == 1; ++level) {
        node >>= 1;
        auto sub = mirror.PerfectSubtreeHash(level, node);
        if (!sub.ok()) return Fail(sub.status());
        batch.Put(attest::kLogCf, NodeKey(level, node), attest::HashBytes(*sub));
      }
      batch.Put(attest::kLogCf, "h/" + core::HexEncode(hash.data(), hash.size()), std::to_string(i));
    }
    batch.Put(attest::kLogCf, "s", std::to_string(end));
    if (auto s = (*meta)->Write(batch); !s.ok()) return Fail(s);
  }
  double fill_s = Seconds(start);
  log->reset();
  log = open();
  if (!log.ok()) return Fail(log.status());
  const uint64_t n = (*log)->Size();
  auto root = attest::RootHash(**log, n);
  auto want = attest::RootHash(mirror, n);
  if (!root.ok()) return Fail(root.status());
  if (!want.ok() || *root != *want) return Fail(core::Internal("bulk-built log root differs from the mirror"));
  std::printf("bulk fill to %llu leaves (%llu leaves per synced batch)  %8.0f leaves/s  (%.2f s); "
              "reopened root matches\n",
              static_cast<unsigned long long>(n), static_cast<unsigned long long>(kBatch),
              (n - appended) / fill_s, fill_s);

  std::mt19937_64 rng(42);
  const std::string root_bytes = attest::HashBytes(*root);
  CountingSource counted(log->get());
  uint64_t proofs = 0, nodes = 0;
  start = Clock::now();
  double s = 0;
  do {
    const uint64_t index = rng() % n;
    auto proof = attest::InclusionProof(counted, index, n);
    if (!proof.ok()) return Fail(proof.status());
    auto leaf = mirror.LeafHash(index);
    if (auto v = attest::VerifyInclusion(index, n, attest::HashBytes(*leaf), Strings(*proof), root_bytes); !v.ok()) {
      return Fail(v);
    }
    nodes += proof->size();
    ++proofs;
  } while ((s = Seconds(start)) < 3.0);
  std::printf("inclusion proof at %llu (generate + verify)  %8.0f proofs/s  %.1f hash reads, %.1f nodes per proof\n",
              static_cast<unsigned long long>(n), proofs / s, double(counted.reads()) / proofs, double(nodes) / proofs);

  // Older roots come from the mirror, as a client holds them from an
  // earlier checkpoint; only proof generation reads the log.
  CountingSource counted2(log->get());
  proofs = nodes = 0;
  start = Clock::now();
  double untimed = 0;
  do {
    auto t0 = Clock::now();
    const uint64_t size1 = 1 + rng() % (n - 1);
    auto root1 = attest::RootHash(mirror, size1);
    if (!root1.ok()) return Fail(root1.status());
    untimed += Seconds(t0);
    auto proof = attest::ConsistencyProof(counted2, size1, n);
    if (!proof.ok()) return Fail(proof.status());
    if (auto v = attest::VerifyConsistency(size1, n, Strings(*proof), attest::HashBytes(*root1), root_bytes); !v.ok()) {
      return Fail(v);
    }
    nodes += proof->size();
    ++proofs;
  } while ((s = Seconds(start)) < 3.0);
  s -= untimed;
  std::printf("consistency proof to %llu (generate + verify)  %8.0f proofs/s  %.1f hash reads, %.1f nodes per proof\n",
              static_cast<unsigned long long>(n), proofs / s, double(counted2.reads()) / proofs, double(nodes) / proofs);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t size_mib = 1024, log_size = 1'000'000;
  double append_seconds = 20;
  std::string dir = "/tmp/sigil-signing-bench";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--size-mib") == 0) size_mib = std::strtoull(argv[i + 1], nullptr, 10);
    if (std::strcmp(argv[i], "--log-size") == 0) log_size = std::strtoull(argv[i + 1], nullptr, 10);
    if (std::strcmp(argv[i], "--append-seconds") == 0) append_seconds = std::strtod(argv[i + 1], nullptr);
    if (std::strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
  }
  if (log_size < 2) log_size = 2;
  core::RemoveTree(dir).IgnoreError();
  int rc = ModelSigning(dir, size_mib);
  if (rc == 0) rc = Signatures();
  if (rc == 0) rc = Log(dir, log_size, append_seconds);
  core::RemoveTree(dir).IgnoreError();
  return rc;
}
