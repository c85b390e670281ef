#include "attest/checkpoint.h"

#include <catch2/catch.hpp>

#include "core/digest.h"
#include "signing/base64.h"

namespace sigil::attest {
namespace {

using core::Code;

constexpr char kOrigin[] = "sigil.example/log";

Checkpoint Sample() {
  MemoryTree tree;
  for (int i = 0; i < 5; ++i) tree.Append("entry " + std::to_string(i));
  return Checkpoint{kOrigin, 5, RootHash(tree, 5).value(), {}};
}

// From golang.org/x/mod/sumdb/note's documentation: a verifier key and a
// note it signed, checked independently before use here.
TEST_CASE("signed-note known answer (Go sumdb/note example)", "[attest][checkpoint]") {
  auto verifier = ParseNoteVerifierKey("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");
  REQUIRE(verifier.ok());
  CHECK(verifier->name == "PeterNeumann");
  auto id = NoteKeyId("PeterNeumann", verifier->key);
  CHECK(core::HexEncode(id.data(), id.size()) == "c74f20a3");
  auto text_form = NoteVerifierKey("PeterNeumann", verifier->key);
  REQUIRE(text_form.ok());
  CHECK(*text_form == "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");

  std::string note =
      "If you think cryptography is the answer to your problem,\n"
      "then you don't know what your problem is.\n"
      "\n"
      "\xE2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
  auto body = VerifyNote(note, {*verifier});
  REQUIRE(body.ok());
  CHECK(*body ==
        "If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n");
  std::string altered = note;
  altered[3] = 'X';
  CHECK(VerifyNote(altered, {*verifier}).status().reason() == "SIGNATURE_INVALID");

  CHECK(ParseNoteVerifierKey("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
            .status()
            .reason() == "NOTE_KEY_INVALID");
  CHECK(ParseNoteVerifierKey("PeterNeumann+c74f20a3").status().reason() == "NOTE_KEY_INVALID");
}

TEST_CASE("checkpoint signs and verifies", "[attest][checkpoint]") {
  auto key = signing::PrivateKey::Generate(signing::Algorithm::kEd25519);
  REQUIRE(key.ok());
  Checkpoint cp = Sample();
  cp.extensions = {"timestamp 1700000000"};
  auto note = SignCheckpoint(cp, "sigil-log", *key);
  REQUIRE(note.ok());

  // The exact shape: body, blank line, one em-dash signature line.
  auto body = CheckpointBody(cp);
  REQUIRE(body.ok());
  CHECK(*body == std::string(kOrigin) + "\n5\n" + signing::Base64Encode(HashBytes(cp.root)) +
                     "\ntimestamp 1700000000\n");
  REQUIRE(note->rfind(*body + "\n\xE2\x80\x94 sigil-log ", 0) == 0);
  std::string line = note->substr(body->size() + 1);
  auto blob = signing::Base64Decode(line.substr(line.find(' ', 4) + 1, line.size() - line.find(' ', 4) - 2));
  REQUIRE(blob.ok());
  REQUIRE(blob->size() == 68);
  auto id = NoteKeyId("sigil-log", key->public_key());
  CHECK(blob->substr(0, 4) == std::string(reinterpret_cast<const char*>(id.data()), 4));
  // Key id by hand: SHA-256(name || 0x0A || 0x01 || key)[:4].
  std::string preimage = "sigil-log\n\x01" + key->public_key().raw();
  CHECK(core::Sha256::Of(preimage).Hex().substr(0, 8) == core::HexEncode(id.data(), 4));

  auto verified = VerifyCheckpoint(*note, kOrigin, {{"sigil-log", key->public_key()}});
  REQUIRE(verified.ok());
  CHECK(verified->origin == kOrigin);
  CHECK(verified->size == 5);
  CHECK(verified->root == cp.root);
  CHECK(verified->extensions == cp.extensions);

  // Unknown extra signers are ignored as long as one known key signed.
  auto other = signing::PrivateKey::Generate(signing::Algorithm::kEd25519);
  REQUIRE(other.ok());
  auto cosigned = SignCheckpoint(cp, "witness", *other);
  REQUIRE(cosigned.ok());
  std::string two = *note + cosigned->substr(body->size() + 1);
  CHECK(VerifyCheckpoint(two, kOrigin, {{"sigil-log", key->public_key()}}).ok());
  CHECK(VerifyCheckpoint(two, kOrigin, {{"witness", other->public_key()}}).ok());
}

TEST_CASE("checkpoint from another origin is refused", "[attest][checkpoint]") {
  auto key = signing::PrivateKey::Generate(signing::Algorithm::kEd25519);
  REQUIRE(key.ok());
  Checkpoint cp = Sample();
  cp.origin = "other.example/log";
  auto note = SignCheckpoint(cp, "sigil-log", *key);
  REQUIRE(note.ok());
  auto r = VerifyCheckpoint(*note, kOrigin, {{"sigil-log", key->public_key()}});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kUnauthenticated);
  CHECK(r.status().reason() == "CHECKPOINT_ORIGIN");
}

TEST_CASE("checkpoint signed by an unknown key is refused", "[attest][checkpoint]") {
  auto key = signing::PrivateKey::Generate(signing::Algorithm::kEd25519);
  auto stranger = signing::PrivateKey::Generate(signing::Algorithm::kEd25519);
  REQUIRE((key.ok() && stranger.ok()));
  auto note = SignCheckpoint(Sample(), "sigil-log", *stranger);
  REQUIRE(note.ok());
  // Same name, different key: the key id does not match, so the line is not ours.
  auto r = VerifyCheckpoint(*note, kOrigin, {{"sigil-log", key->public_key()}});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kUnauthenticated);
  CHECK(r.status().reason() == "CHECKPOINT_UNKNOWN_KEY");
  CHECK(VerifyCheckpoint(*note, kOrigin, {}).status().reason() == "CHECKPOINT_UNKNOWN_KEY");
}

TEST_CASE("tampered checkpoints are refused", "[attest][checkpoint]") {
  auto key = signing::PrivateKey::Generate(signing::Algorithm::kEd25519);
  REQUIRE(key.ok());
  auto note = SignCheckpoint(Sample(), "sigil-log", *key);
  REQUIRE(note.ok());
  std::vector<NoteVerifier> verifiers = {{"sigil-log", key->public_key()}};

  std::string bigger = *note;
  bigger.replace(bigger.find("\n5\n"), 3, "\n6\n");
  CHECK(VerifyCheckpoint(bigger, kOrigin, verifiers).status().reason() == "SIGNATURE_INVALID");

  const std::pair<std::string, const char*> malformed[] = {
      {"", "NOTE_INVALID"},
      {std::string(kOrigin) + "\n5\n", "NOTE_INVALID"},
      {note->substr(0, note->size() - 1), "NOTE_INVALID"},
      {std::string(kOrigin) + "\n5\nAAAA\n\n- sigil-log AAAA\n", "NOTE_INVALID"},
      {std::string(kOrigin) + "\n5\nAAAA\n\n\xE2\x80\x94 sigil-log !!!!\n", "NOTE_INVALID"},
  };
  for (const auto& [text, reason] : malformed) {
    INFO(text);
    auto r = VerifyCheckpoint(text, kOrigin, verifiers);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK(r.status().reason() == reason);
  }
}

TEST_CASE("checkpoint bodies are parsed strictly", "[attest][checkpoint]") {
  std::string root = signing::Base64Encode(std::string(32, '\x07'));
  CHECK(ParseCheckpointBody("o\n0\n" + root + "\n").ok());
  const std::string bad[] = {
      "o\n5\n" + root,                    // no final newline
      "\n5\n" + root + "\n",              // empty origin
      "o\n05\n" + root + "\n",            // leading zero
      "o\n-5\n" + root + "\n",            // sign
      "o\n18446744073709551616\n" + root + "\n",  // overflow
      "o\n5\nAAAA\n",                     // short root
      "o\n5\n" + root.substr(0, 43) + "\n",  // unpadded root
      "o\n5\n",                           // no root
  };
  for (const std::string& b : bad) {
    INFO(b);
    CHECK(ParseCheckpointBody(b).status().reason() == "CHECKPOINT_INVALID");
  }
  auto p256 = signing::PrivateKey::Generate();
  REQUIRE(p256.ok());
  CHECK(SignCheckpoint(Sample(), "sigil-log", *p256).status().code() == Code::kInvalidArgument);
}

}  // namespace
}  // namespace sigil::attest
