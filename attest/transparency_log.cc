#include "attest/transparency_log.h"

#include <cstdio>
#include <utility>

#include "core/digest.h"

namespace sigil::attest {
namespace {

constexpr std::string_view kSizeKey = "s";
constexpr int kMaxLevel = 63;

std::string Hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string LeafKey(uint64_t index) { return "d/" + Hex16(index); }

std::string NodeKey(int level, uint64_t index) {
  char buf[4];
  std::snprintf(buf, sizeof(buf), "%02x", level);
  return "n/" + std::string(buf) + "/" + Hex16(index);
}

std::string HashIndexKey(const MerkleHash& hash) { return "h/" + core::HexEncode(hash.data(), hash.size()); }

core::Result<uint64_t> ParseDecimal(std::string_view text, std::string_view what) {
  if (text.empty() || text.size() > 20) return core::DataLoss("log: damaged " + std::string(what));
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return core::DataLoss("log: damaged " + std::string(what));
    uint64_t next = v * 10 + static_cast<uint64_t>(c - '0');
    if (next / 10 != v) return core::DataLoss("log: damaged " + std::string(what));
    v = next;
  }
  return v;
}

bool ValidOrigin(std::string_view origin) {
  if (origin.empty()) return false;
  for (char c : origin) {
    if (c == ' ' || c == '+' || c == '\n' || static_cast<unsigned char>(c) < 0x20) return false;
  }
  return true;
}

}  // namespace

core::Result<std::unique_ptr<TransparencyLog>> TransparencyLog::Open(TransparencyLogOptions options) {
  if (options.meta == nullptr) return core::InvalidArgument("transparency log needs a metadata store");
  if (!options.key.has_value() || options.key->algorithm() != signing::Algorithm::kEd25519) {
    return core::InvalidArgument("transparency log checkpoints need an Ed25519 key");
  }
  if (!ValidOrigin(options.origin)) {
    return core::InvalidArgument("log origin '" + options.origin +
                                 "' must be non-empty without spaces, '+' or control characters");
  }
  std::unique_ptr<TransparencyLog> log(new TransparencyLog(std::move(options)));
  ASSIGN_OR_RETURN(log->verifier_key_,
                   NoteVerifierKey(log->options_.origin, log->options_.key->public_key()));
  auto size = log->options_.meta->Get(kLogCf, kSizeKey);
  if (size.ok()) {
    ASSIGN_OR_RETURN(uint64_t n, ParseDecimal(*size, "size record"));
    log->size_ = n;
  } else if (size.status().code() != core::Code::kNotFound) {
    return size.status();
  }
  return log;
}

core::Result<uint64_t> TransparencyLog::AppendWith(storage::WriteBatch batch, std::string_view leaf,
                                                   const StageFn& stage) {
  if (leaf.empty() || leaf.size() > kMaxLeafBytes) {
    return core::InvalidArgument("a log leaf must hold 1 to " + std::to_string(kMaxLeafBytes) + " bytes",
                                 "LOG_LEAF_INVALID");
  }
  std::lock_guard<std::mutex> lock(append_mu_);
  const uint64_t index = size_.load();
  if (stage) RETURN_IF_ERROR(stage(index, &batch));
  MerkleHash hash = MerkleLeafHash(leaf);
  batch.Put(kLogCf, LeafKey(index), leaf);
  batch.Put(kLogCf, NodeKey(0, index), HashBytes(hash));
  // Every complete subtree whose last leaf this is: its left sibling is
  // already stored, the right one was just computed.
  uint64_t i = index;
  for (int level = 1; level <= kMaxLevel && (i & 1) == 1; ++level) {
    ASSIGN_OR_RETURN(MerkleHash left, PerfectSubtreeHash(level - 1, i - 1));
    hash = MerkleNodeHash(left, hash);
    i >>= 1;
    batch.Put(kLogCf, NodeKey(level, i), HashBytes(hash));
  }
  std::string hash_key = HashIndexKey(MerkleLeafHash(leaf));
  auto existing = options_.meta->Get(kLogCf, hash_key);
  if (!existing.ok()) {
    if (existing.status().code() != core::Code::kNotFound) return existing.status();
    batch.Put(kLogCf, hash_key, std::to_string(index));
  }
  batch.Put(kLogCf, kSizeKey, std::to_string(index + 1));
  RETURN_IF_ERROR(options_.meta->Write(batch));
  size_ = index + 1;
  return index;
}

core::Result<MerkleHash> TransparencyLog::LeafHash(uint64_t index) const {
  return PerfectSubtreeHash(0, index);
}

core::Result<MerkleHash> TransparencyLog::PerfectSubtreeHash(int level, uint64_t index) const {
  if (level < 0 || level > kMaxLevel) return core::OutOfRange("log: no subtree at that level");
  auto value = options_.meta->Get(kLogCf, NodeKey(level, index));
  if (!value.ok()) {
    if (value.status().code() == core::Code::kNotFound) {
      return core::DataLoss("log: subtree hash " + NodeKey(level, index) + " is missing");
    }
    return value.status();
  }
  if (value->size() != 32) return core::DataLoss("log: damaged hash record " + NodeKey(level, index));
  MerkleHash out;
  for (size_t k = 0; k < 32; ++k) out[k] = static_cast<uint8_t>((*value)[k]);
  return out;
}

core::Result<std::string> TransparencyLog::Leaf(uint64_t index) const {
  if (index >= Size()) {
    return core::NotFound(
        "log has no entry " + std::to_string(index) + " (size " + std::to_string(Size()) + ")",
        "LOG_INDEX_UNKNOWN");
  }
  auto value = options_.meta->Get(kLogCf, LeafKey(index));
  if (!value.ok() && value.status().code() == core::Code::kNotFound) {
    return core::DataLoss("log: leaf " + std::to_string(index) + " is missing");
  }
  return value;
}

core::Result<uint64_t> TransparencyLog::IndexOf(const MerkleHash& leaf_hash) const {
  auto value = options_.meta->Get(kLogCf, HashIndexKey(leaf_hash));
  if (!value.ok()) {
    if (value.status().code() == core::Code::kNotFound) {
      return core::NotFound("no log entry has that leaf hash", "LOG_ENTRY_UNKNOWN");
    }
    return value.status();
  }
  ASSIGN_OR_RETURN(uint64_t index, ParseDecimal(*value, "leaf hash index"));
  // An index written by a batch that is durable is always below the size.
  if (index >= Size()) return core::NotFound("no log entry has that leaf hash", "LOG_ENTRY_UNKNOWN");
  return index;
}

core::Result<SignedCheckpoint> TransparencyLog::Checkpoint() {
  std::lock_guard<std::mutex> lock(checkpoint_mu_);
  uint64_t size = Size();
  if (cached_.has_value() && cached_->checkpoint.size == size) return *cached_;
  SignedCheckpoint out;
  out.checkpoint.origin = options_.origin;
  out.checkpoint.size = size;
  ASSIGN_OR_RETURN(out.checkpoint.root, RootHash(*this, size));
  ASSIGN_OR_RETURN(out.note, SignCheckpoint(out.checkpoint, options_.origin, *options_.key));
  cached_ = out;
  return out;
}

}  // namespace sigil::attest
