// Fuzzes the transparency log's outside inputs (attest/checkpoint.h,
// attest/merkle.h): signed notes and checkpoints, note verifier keys, and
// inclusion and consistency proofs as a pulling client or an importing
// server receives them. The first byte picks the parser.
//
// Invariants: a checkpoint body that parses is canonical (it serializes to
// exactly the bytes read); unsigned notes never verify; a note the harness
// signs verifies to its body; against a real tree, a proof verifies only if
// it is the one proof the tree gives, and the tree's own proofs verify.
#include <cstring>
#include <string>
#include <vector>

#include "attest/checkpoint.h"
#include "attest/merkle.h"
#include "signing/base64.h"
#include "signing/keys.h"
#include "tests/fuzz/check.h"

namespace sigil::fuzz {
namespace {

constexpr std::string_view kOrigin = "fuzz.example/log";
constexpr uint64_t kTreeSize = 37;

struct Fixture {
  signing::PrivateKey key;
  std::vector<attest::NoteVerifier> verifiers;
  attest::MemoryTree tree;
};

const Fixture& GetFixture() {
  static const Fixture* fixture = [] {
    auto key = signing::PrivateKey::Generate(signing::Algorithm::kEd25519);
    Check(key.ok());
    auto* f = new Fixture{*key, {{std::string(kOrigin), key->public_key()}}, {}};
    for (uint64_t i = 0; i < kTreeSize; ++i) f->tree.Append("leaf " + std::to_string(i));
    return f;
  }();
  return *fixture;
}

// Reads bytes off the front of the input.
struct Reader {
  std::string_view in;
  uint64_t Byte() {
    if (in.empty()) return 0;
    uint8_t b = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    return b;
  }
  uint64_t U64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | Byte();
    return v;
  }
  std::vector<std::string> Nodes() {
    std::vector<std::string> nodes;
    // A short last node stays short: verifiers must refuse it.
    while (!in.empty() && nodes.size() < 80) {
      size_t n = std::min<size_t>(32, in.size());
      nodes.emplace_back(in.substr(0, n));
      in.remove_prefix(n);
    }
    return nodes;
  }
};

std::vector<std::string> AsStrings(const std::vector<attest::MerkleHash>& hashes) {
  std::vector<std::string> out;
  for (const auto& h : hashes) out.push_back(attest::HashBytes(h));
  return out;
}

std::string Root(uint64_t size) {
  auto root = attest::RootHash(GetFixture().tree, size);
  Check(root.ok());
  return attest::HashBytes(*root);
}

std::string Leaf(uint64_t index) {
  auto leaf = GetFixture().tree.LeafHash(index);
  Check(leaf.ok());
  return attest::HashBytes(*leaf);
}

void FuzzBody(std::string_view in) {
  auto cp = attest::ParseCheckpointBody(in);
  if (!cp.ok()) return;
  auto body = attest::CheckpointBody(*cp);
  Check(body.ok() && *body == in);
}

void FuzzNote(std::string_view in) {
  const Fixture& f = GetFixture();
  Check(!attest::VerifyNote(in, f.verifiers).ok());
  Check(!attest::VerifyCheckpoint(in, kOrigin, f.verifiers).ok());
}

// The input as a note body, signed here.
void FuzzSignedNote(std::string_view in) {
  const Fixture& f = GetFixture();
  auto sig = f.key.Sign(in);
  Check(sig.ok());
  auto id = attest::NoteKeyId(kOrigin, f.key.public_key());
  std::string blob(reinterpret_cast<const char*>(id.data()), id.size());
  std::string note = std::string(in) + "\n\xE2\x80\x94 " + std::string(kOrigin) + " " +
                     signing::Base64Encode(blob + *sig) + "\n";
  auto text = attest::VerifyNote(note, f.verifiers);
  if (text.ok()) Check(*text == in);
  auto cp = attest::VerifyCheckpoint(note, kOrigin, f.verifiers);
  if (!cp.ok()) return;
  Check(cp->origin == kOrigin);
  auto body = attest::CheckpointBody(*cp);
  Check(body.ok() && *body == in);
}

void FuzzVerifierKey(std::string_view in) {
  auto v = attest::ParseNoteVerifierKey(in);
  if (!v.ok()) return;
  auto text = attest::NoteVerifierKey(v->name, v->key);
  Check(text.ok());
  auto again = attest::ParseNoteVerifierKey(*text);
  Check(again.ok() && again->name == v->name && again->key == v->key);
}

// Proofs against the real tree, sizes within it.
void FuzzProofs(std::string_view in) {
  Reader r{in};
  uint64_t a = r.Byte() % (kTreeSize + 2);
  uint64_t b = r.Byte() % (kTreeSize + 2);
  bool consistency = r.Byte() & 1;
  std::vector<std::string> proof = r.Nodes();
  const Fixture& f = GetFixture();
  if (!consistency) {
    uint64_t index = a, size = b;
    std::string leaf = index < kTreeSize ? Leaf(index) : std::string(32, '\0');
    std::string root = size <= kTreeSize ? Root(size) : std::string(32, '\0');
    // Beyond the tree the leaf and root are zeros, which no proof reaches.
    if (attest::VerifyInclusion(index, size, leaf, proof, root).ok()) {
      auto real = attest::InclusionProof(f.tree, index, size);
      Check(real.ok() && AsStrings(*real) == proof);
    }
  } else {
    uint64_t size1 = a, size2 = b;
    std::string root1 = size1 <= kTreeSize ? Root(size1) : std::string(32, '\0');
    std::string root2 = size2 <= kTreeSize ? Root(size2) : std::string(32, '\0');
    if (attest::VerifyConsistency(size1, size2, proof, root1, root2).ok()) {
      if (size2 > kTreeSize) {
        // Two equal sizes beyond the tree have equal (zero) roots, which an
        // empty proof rightly joins.
        Check(size1 == size2 && proof.empty());
        return;
      }
      auto real = attest::ConsistencyProof(f.tree, size1, size2);
      Check(real.ok() && AsStrings(*real) == proof);
    }
  }
}

// The tree's own proofs verify; with one bit flipped they do not.
void FuzzRealProofs(std::string_view in) {
  Reader r{in};
  uint64_t a = r.Byte() % kTreeSize;
  uint64_t b = r.Byte() % kTreeSize;
  uint64_t flip = r.Byte() | (r.Byte() << 8);
  const Fixture& f = GetFixture();
  uint64_t index = std::min(a, b), size = std::max(a, b) + 1;
  auto inclusion = attest::InclusionProof(f.tree, index, size);
  Check(inclusion.ok());
  std::vector<std::string> proof = AsStrings(*inclusion);
  Check(attest::VerifyInclusion(index, size, Leaf(index), proof, Root(size)).ok());
  if (!proof.empty()) {
    uint64_t bit = flip % (proof.size() * 256);
    proof[bit / 256][(bit % 256) / 8] ^= static_cast<char>(1 << (bit % 8));
    Check(!attest::VerifyInclusion(index, size, Leaf(index), proof, Root(size)).ok());
  }
  uint64_t size1 = std::min(a, b) + 1, size2 = std::max(a, b) + 1;
  auto consistency = attest::ConsistencyProof(f.tree, size1, size2);
  Check(consistency.ok());
  proof = AsStrings(*consistency);
  Check(attest::VerifyConsistency(size1, size2, proof, Root(size1), Root(size2)).ok());
  if (!proof.empty()) {
    uint64_t bit = flip % (proof.size() * 256);
    proof[bit / 256][(bit % 256) / 8] ^= static_cast<char>(1 << (bit % 8));
    Check(!attest::VerifyConsistency(size1, size2, proof, Root(size1), Root(size2)).ok());
  }
}

// Proofs with any sizes: only that nothing crashes or runs long.
void FuzzWildProofs(std::string_view in) {
  Reader r{in};
  uint64_t a = r.U64(), b = r.U64();
  std::string h1(r.in.substr(0, std::min<size_t>(32, r.in.size())));
  std::vector<std::string> proof = r.Nodes();
  (void)attest::VerifyInclusion(a, b, h1, proof, h1);
  (void)attest::VerifyConsistency(a, b, proof, h1, h1);
}

}  // namespace
}  // namespace sigil::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sigil::fuzz;
  if (size == 0) return 0;
  std::string_view in = AsText(data + 1, size - 1);
  switch (data[0] % 7) {
    case 0: FuzzBody(in); break;
    case 1: FuzzNote(in); break;
    case 2: FuzzSignedNote(in); break;
    case 3: FuzzVerifierKey(in); break;
    case 4: FuzzProofs(in); break;
    case 5: FuzzRealProofs(in); break;
    case 6: FuzzWildProofs(in); break;
  }
  return 0;
}
