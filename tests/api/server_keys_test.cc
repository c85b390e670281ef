#include "api/server_keys.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "core/fs.h"
#include "signing/keys.h"
#include "tests/support/temp_dir.h"

namespace sigil::api {
namespace {

unsigned Mode(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

TEST_CASE("server keys are created once with private files mode 0600 and then reused", "[api]") {
  testing::TempDir dir;
  std::string keys_dir = dir.Sub("keys");
  auto first = LoadOrCreateServerKeys(keys_dir, "");
  REQUIRE(first.ok());
  CHECK(first->attestation.algorithm() == signing::Algorithm::kEcdsaP256Sha256);
  CHECK(first->log.algorithm() == signing::Algorithm::kEd25519);
  CHECK(Mode(keys_dir) == 0700);
  CHECK(Mode(dir.Sub("keys/attestation.key")) == 0600);
  CHECK(Mode(dir.Sub("keys/log.key")) == 0600);
  auto pub = signing::LoadPublicKey(dir.Sub("keys/attestation.pub"));
  REQUIRE(pub.ok());
  CHECK(pub->key_id() == first->attestation.key_id());

  auto second = LoadOrCreateServerKeys(keys_dir, "");
  REQUIRE(second.ok());
  CHECK(second->attestation.key_id() == first->attestation.key_id());
  CHECK(second->log.key_id() == first->log.key_id());
}

TEST_CASE("server keys are encrypted under a passphrase and refused without it", "[api]") {
  testing::TempDir dir;
  std::string keys_dir = dir.Sub("keys");
  auto created = LoadOrCreateServerKeys(keys_dir, "correct horse");
  REQUIRE(created.ok());
  auto pem = core::ReadFile(dir.Sub("keys/attestation.key"));
  REQUIRE(pem.ok());
  CHECK(pem->rfind("-----BEGIN ENCRYPTED PRIVATE KEY-----", 0) == 0);

  CHECK(LoadOrCreateServerKeys(keys_dir, "").status().reason() == "PASSPHRASE_REQUIRED");
  CHECK(LoadOrCreateServerKeys(keys_dir, "wrong").status().reason() == "PASSPHRASE_WRONG");
  auto again = LoadOrCreateServerKeys(keys_dir, "correct horse");
  REQUIRE(again.ok());
  CHECK(again->log.key_id() == created->log.key_id());
}

TEST_CASE("a server key file of the wrong algorithm is refused", "[api]") {
  testing::TempDir dir;
  std::string keys_dir = dir.Sub("keys");
  REQUIRE(core::MakeDirs(keys_dir, 0700).ok());
  auto ed = signing::PrivateKey::Generate(signing::Algorithm::kEd25519);
  REQUIRE(ed.ok());
  REQUIRE(signing::SavePrivateKey(*ed, dir.Sub("keys/attestation.key"), "").ok());
  CHECK(LoadOrCreateServerKeys(keys_dir, "").status().code() == core::Code::kInvalidArgument);
}

}  // namespace
}  // namespace sigil::api
