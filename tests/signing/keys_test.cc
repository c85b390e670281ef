#include "signing/keys.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "core/digest.h"
#include "core/fs.h"
#include "signing/base64.h"
#include "tests/support/temp_dir.h"

namespace sigil::signing {
namespace {

using core::Code;

const Algorithm kAll[] = {Algorithm::kEcdsaP256Sha256, Algorithm::kEcdsaP384Sha384,
                          Algorithm::kEd25519};

TEST_CASE("algorithm names round-trip", "[signing]") {
  for (Algorithm a : kAll) {
    auto parsed = ParseAlgorithm(AlgorithmName(a));
    REQUIRE(parsed.ok());
    CHECK(*parsed == a);
  }
  auto bad = ParseAlgorithm("rsa-2048");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().reason() == "KEY_ALGORITHM");
}

TEST_CASE("generated keys sign and verify and other messages and keys fail", "[signing]") {
  for (Algorithm a : kAll) {
    INFO(AlgorithmName(a));
    auto key = PrivateKey::Generate(a);
    REQUIRE(key.ok());
    CHECK(key->algorithm() == a);
    CHECK(key->public_key().algorithm() == a);
    CHECK(key->key_id() == core::Sha256::Of(key->public_key().pem()).Hex());
    CHECK(key->public_key().pem().rfind("-----BEGIN PUBLIC KEY-----\n", 0) == 0);

    auto sig = key->Sign("message");
    REQUIRE(sig.ok());
    if (a == Algorithm::kEd25519) CHECK(sig->size() == 64);
    if (a != Algorithm::kEd25519) CHECK(static_cast<unsigned char>((*sig)[0]) == 0x30);  // DER
    CHECK(key->public_key().Verify("message", *sig).ok());

    auto wrong_msg = key->public_key().Verify("messagE", *sig);
    CHECK(wrong_msg.code() == Code::kUnauthenticated);
    CHECK(wrong_msg.reason() == "SIGNATURE_INVALID");

    auto other = PrivateKey::Generate(a);
    REQUIRE(other.ok());
    CHECK(other->key_id() != key->key_id());
    CHECK(other->public_key().Verify("message", *sig).code() == Code::kUnauthenticated);

    std::string flipped = *sig;
    flipped[flipped.size() / 2] ^= 0x01;
    CHECK(key->public_key().Verify("message", flipped).code() == Code::kUnauthenticated);
    CHECK(key->public_key().Verify("message", "").code() == Code::kUnauthenticated);
  }
}

TEST_CASE("public key PEM round-trips with a stable key id", "[signing]") {
  for (Algorithm a : kAll) {
    auto key = PrivateKey::Generate(a);
    REQUIRE(key.ok());
    auto pub = PublicKey::FromPem(key->public_key().pem());
    REQUIRE(pub.ok());
    CHECK(pub->key_id() == key->key_id());
    CHECK(pub->raw() == key->public_key().raw());
  }
}

// RFC 8032 section 7.1, TEST 1: the seed wrapped as PKCS#8 (RFC 8410).
TEST_CASE("Ed25519 matches the RFC 8032 known answer", "[signing]") {
  auto seed = core::HexDecode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  REQUIRE(seed.ok());
  auto prefix = core::HexDecode("302e020100300506032b657004220420");
  REQUIRE(prefix.ok());
  std::string pem = "-----BEGIN PRIVATE KEY-----\n" + Base64Encode(*prefix + *seed) +
                    "\n-----END PRIVATE KEY-----\n";
  auto key = PrivateKey::FromPem(pem);
  REQUIRE(key.ok());
  CHECK(key->algorithm() == Algorithm::kEd25519);
  CHECK(core::HexEncode(key->public_key().raw().data(), 32) ==
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  auto sig = key->Sign("");
  REQUIRE(sig.ok());
  CHECK(core::HexEncode(sig->data(), sig->size()) ==
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39"
        "701cf9b46bd25bf5f0595bbe24655141438e7a100b");
  auto raw_pub = PublicKey::FromRawEd25519(key->public_key().raw());
  REQUIRE(raw_pub.ok());
  CHECK(raw_pub->key_id() == key->key_id());
  CHECK(raw_pub->Verify("", *sig).ok());
}

TEST_CASE("ECDSA public keys from uncompressed points", "[signing]") {
  for (Algorithm a : {Algorithm::kEcdsaP256Sha256, Algorithm::kEcdsaP384Sha384}) {
    auto key = PrivateKey::Generate(a);
    REQUIRE(key.ok());
    auto sig = key->Sign("point");
    REQUIRE(sig.ok());
    auto pub = PublicKey::FromEcPoint(a, key->public_key().raw());
    REQUIRE(pub.ok());
    CHECK(pub->algorithm() == a);
    CHECK(pub->key_id() == key->key_id());
    CHECK(pub->Verify("point", *sig).ok());
  }
  auto p256 = PrivateKey::Generate(Algorithm::kEcdsaP256Sha256);
  REQUIRE(p256.ok());
  std::string point = p256->public_key().raw();
  std::string off_curve = point;
  off_curve[64] = static_cast<char>(off_curve[64] ^ 0x01);
  std::string compressed = point;
  compressed[0] = 0x02;
  for (const std::string& bad : {off_curve, compressed, point.substr(0, 64), point + "x",
                                 std::string()}) {
    auto r = PublicKey::FromEcPoint(Algorithm::kEcdsaP256Sha256, bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK(r.status().reason() == "KEY_INVALID");
  }
  // A P-256 point is not a P-384 key.
  CHECK(PublicKey::FromEcPoint(Algorithm::kEcdsaP384Sha384, point).status().reason() == "KEY_INVALID");
  CHECK(PublicKey::FromEcPoint(Algorithm::kEd25519, point).status().reason() == "KEY_UNSUPPORTED");
}

TEST_CASE("malformed PEM is refused", "[signing]") {
  auto key = PrivateKey::Generate();
  REQUIRE(key.ok());
  std::string pem = key->public_key().pem();
  std::string corrupt = pem;
  corrupt[40] = corrupt[40] == 'A' ? 'B' : 'A';
  std::string truncated = pem.substr(0, pem.size() / 2) + "\n-----END PUBLIC KEY-----\n";
  for (const std::string& bad :
       {std::string(), std::string("hello"), std::string("-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----\n"),
        truncated, corrupt}) {
    INFO(bad);
    auto r = PublicKey::FromPem(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK(r.status().reason() == "KEY_INVALID");
  }
  auto priv = PrivateKey::FromPem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
  REQUIRE_FALSE(priv.ok());
  CHECK(priv.status().reason() == "KEY_INVALID");
  CHECK(PrivateKey::FromPem(pem).status().reason() == "KEY_INVALID");
  // Valid keys of other kinds: X25519, and ECDSA on P-521.
  const char* unsupported[] = {
      "-----BEGIN PUBLIC KEY-----\n"
      "MCowBQYDK2VuAyEAUVwV/F98sm0DFFs6jR5EH6Y6iizIC3YlNf2/eCRQ/Do=\n"
      "-----END PUBLIC KEY-----\n",
      "-----BEGIN PUBLIC KEY-----\n"
      "MIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQAjmUeAhTyqYvUDHvx5kp5gpAbrZGO\n"
      "Nz1KS4fTx/JWRa1uX9fU23LrD0TweSSmCF6g/YXRLrarp3/lfG3mHPS3HDUA+YRa\n"
      "4QeYa+I+neY3mvX7Ll70vA1DPPsH5ebn+rTVPD0Ikmh6pEE0hKq1i2Sx2PjtlSat\n"
      "G3PNcR3On4lRs7YymVk=\n"
      "-----END PUBLIC KEY-----\n",
  };
  for (const char* pem_text : unsupported) {
    auto r = PublicKey::FromPem(pem_text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK(r.status().reason() == "KEY_UNSUPPORTED");
  }
}

TEST_CASE("encrypted private key files need the right passphrase", "[signing]") {
  testing::TempDir dir;
  for (Algorithm a : kAll) {
    INFO(AlgorithmName(a));
    auto key = PrivateKey::Generate(a);
    REQUIRE(key.ok());
    std::string path = dir.Sub(std::string(AlgorithmName(a)) + ".pem");
    REQUIRE(SavePrivateKey(*key, path, "correct horse").ok());

    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    auto text = core::ReadFile(path);
    REQUIRE(text.ok());
    CHECK(text->find("-----BEGIN ENCRYPTED PRIVATE KEY-----") == 0);

    // Encrypted keys load even when the mode is loose.
    REQUIRE(::chmod(path.c_str(), 0644) == 0);
    auto loaded = LoadPrivateKey(path, "correct horse");
    REQUIRE(loaded.ok());
    CHECK(loaded->key_id() == key->key_id());
    auto sig = loaded->Sign("x");
    REQUIRE(sig.ok());
    CHECK(key->public_key().Verify("x", *sig).ok());

    auto wrong = LoadPrivateKey(path, "wrong horse");
    REQUIRE_FALSE(wrong.ok());
    CHECK(wrong.status().code() == Code::kUnauthenticated);
    CHECK(wrong.status().reason() == "PASSPHRASE_WRONG");

    auto none = LoadPrivateKey(path, "");
    REQUIRE_FALSE(none.ok());
    CHECK(none.status().code() == Code::kFailedPrecondition);
    CHECK(none.status().reason() == "PASSPHRASE_REQUIRED");
  }
}

TEST_CASE("unencrypted private key files must be private to the owner", "[signing]") {
  testing::TempDir dir;
  auto key = PrivateKey::Generate();
  REQUIRE(key.ok());
  std::string path = dir.Sub("key.pem");
  REQUIRE(SavePrivateKey(*key, path, "").ok());
  auto text = core::ReadFile(path);
  REQUIRE(text.ok());
  CHECK(text->find("-----BEGIN PRIVATE KEY-----") == 0);

  auto loaded = LoadPrivateKey(path, "");
  REQUIRE(loaded.ok());
  CHECK(loaded->key_id() == key->key_id());

  for (unsigned mode : {0640u, 0604u, 0644u, 0660u}) {
    INFO(mode);
    REQUIRE(::chmod(path.c_str(), mode) == 0);
    auto refused = LoadPrivateKey(path, "");
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.status().code() == Code::kPermissionDenied);
    CHECK(refused.status().reason() == "KEY_FILE_MODE");
  }
  auto missing = LoadPrivateKey(dir.Sub("absent.pem"), "");
  CHECK(missing.status().code() == Code::kNotFound);
}

TEST_CASE("public key files round-trip", "[signing]") {
  testing::TempDir dir;
  auto key = PrivateKey::Generate(Algorithm::kEcdsaP384Sha384);
  REQUIRE(key.ok());
  REQUIRE(SavePublicKey(key->public_key(), dir.Sub("pub.pem")).ok());
  auto pub = LoadPublicKey(dir.Sub("pub.pem"));
  REQUIRE(pub.ok());
  CHECK(pub->key_id() == key->key_id());
  REQUIRE(core::WriteFileAtomic(dir.Sub("junk.pem"), "not a key").ok());
  CHECK(LoadPublicKey(dir.Sub("junk.pem")).status().reason() == "KEY_INVALID");
}

TEST_CASE("passphrase comes from the environment and then the file", "[signing]") {
  testing::TempDir dir;
  REQUIRE(core::WriteFileAtomic(dir.Sub("pass"), "from file\n").ok());
  ::unsetenv(kPassphraseEnv);
  auto none = ReadPassphrase();
  REQUIRE(none.ok());
  CHECK(none->empty());
  auto file = ReadPassphrase(dir.Sub("pass"));
  REQUIRE(file.ok());
  CHECK(*file == "from file");
  ::setenv(kPassphraseEnv, "from env", 1);
  auto env = ReadPassphrase(dir.Sub("pass"));
  ::unsetenv(kPassphraseEnv);
  REQUIRE(env.ok());
  CHECK(*env == "from env");
  CHECK(ReadPassphrase(dir.Sub("absent")).status().code() == Code::kNotFound);
}

}  // namespace
}  // namespace sigil::signing
