#include "signing/keys.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "core/digest.h"
#include "core/fs.h"
#include "signing/internal/openssl.h"

namespace sigil::signing {

struct internal::KeyAccess {
  static core::Result<PrivateKey> FromEd25519Seed(const unsigned char* seed);
  static core::Result<PrivateKey> FromEcPkey(internal::EvpPkeyPtr pkey);
};

using core::Result;
using core::Status;
using internal::BioPtr;
using internal::EvpPkeyPtr;
using internal::OpenSslError;

struct PublicKey::Impl {
  Algorithm algorithm;
  EvpPkeyPtr pkey;  // ECDSA only
  std::string pem;
  std::string key_id;
  std::string raw;
};

struct PrivateKey::Impl {
  Impl(Algorithm a, PublicKey pub) : algorithm(a), public_key(std::move(pub)) {}
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  Algorithm algorithm;
  PublicKey public_key;
  EvpPkeyPtr pkey;                                   // ECDSA only
  std::array<unsigned char, crypto_sign_SECRETKEYBYTES> sodium_sk{};  // Ed25519 only

  ~Impl() { sodium_memzero(sodium_sk.data(), sodium_sk.size()); }
};

namespace {

constexpr size_t kMaxPemBytes = 64 << 10;

void EnsureSodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) std::abort();  // no secure randomness: nothing safe to do
  });
}

Status KeyInvalid(std::string message) {
  return core::InvalidArgument(std::move(message), "KEY_INVALID");
}

// The algorithm of an OpenSSL key, or KEY_UNSUPPORTED.
Result<Algorithm> AlgorithmOf(EVP_PKEY* pkey) {
  int id = EVP_PKEY_get_base_id(pkey);
  if (id == EVP_PKEY_ED25519) return Algorithm::kEd25519;
  if (id == EVP_PKEY_EC) {
    char group[64] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &len) != 1) {
      return OpenSslError("reading EC curve", core::Code::kInvalidArgument, "KEY_INVALID");
    }
    std::string_view name(group, len);
    if (name == "prime256v1" || name == "P-256") return Algorithm::kEcdsaP256Sha256;
    if (name == "secp384r1" || name == "P-384") return Algorithm::kEcdsaP384Sha384;
    return core::InvalidArgument("unsupported EC curve " + std::string(name), "KEY_UNSUPPORTED");
  }
  return core::InvalidArgument("unsupported key type " + std::to_string(id), "KEY_UNSUPPORTED");
}

const EVP_MD* DigestFor(Algorithm algorithm) {
  return algorithm == Algorithm::kEcdsaP384Sha384 ? EVP_sha384() : EVP_sha256();
}

size_t ScalarBytes(Algorithm algorithm) {
  return algorithm == Algorithm::kEcdsaP384Sha384 ? 48 : 32;
}

Result<std::string> SpkiPem(EVP_PKEY* pkey) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), pkey) != 1) return OpenSslError("writing public key");
  return internal::BioContents(bio.get());
}

Result<std::string> RawPublic(EVP_PKEY* pkey, Algorithm algorithm) {
  if (algorithm == Algorithm::kEd25519) {
    std::string raw(32, '\0');
    size_t len = raw.size();
    if (EVP_PKEY_get_raw_public_key(pkey, reinterpret_cast<unsigned char*>(raw.data()), &len) != 1 ||
        len != 32) {
      return OpenSslError("reading Ed25519 public key", core::Code::kInvalidArgument, "KEY_INVALID");
    }
    return raw;
  }
  std::string raw(1 + 2 * ScalarBytes(algorithm), '\0');
  size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                      reinterpret_cast<unsigned char*>(raw.data()), raw.size(),
                                      &len) != 1) {
    return OpenSslError("reading EC public point", core::Code::kInvalidArgument, "KEY_INVALID");
  }
  raw.resize(len);
  return raw;
}

// Builds the public half from any OpenSSL key (public or private).
Result<PublicKey> PublicFromPkey(EVP_PKEY* pkey);

// Raw r||s (each left-padded to the scalar size) to DER.
Result<std::string> RawEcdsaToDer(std::string_view sig) {
  size_t half = sig.size() / 2;
  internal::BnPtr r(BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()),
                              static_cast<int>(half), nullptr));
  internal::BnPtr s(BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()) + half,
                              static_cast<int>(half), nullptr));
  internal::EcdsaSigPtr ecdsa(ECDSA_SIG_new());
  if (!r || !s || !ecdsa) return OpenSslError("building ECDSA signature");
  if (ECDSA_SIG_set0(ecdsa.get(), r.get(), s.get()) != 1) return OpenSslError("building ECDSA signature");
  r.release();
  s.release();
  int len = i2d_ECDSA_SIG(ecdsa.get(), nullptr);
  if (len <= 0) return OpenSslError("encoding ECDSA signature");
  std::string der(static_cast<size_t>(len), '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(ecdsa.get(), &p) != len) return OpenSslError("encoding ECDSA signature");
  return der;
}

bool EcdsaVerifyDer(EVP_PKEY* pkey, Algorithm algorithm, std::string_view message,
                    std::string_view der) {
  internal::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return false;
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, DigestFor(algorithm), nullptr, pkey) != 1) return false;
  int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(der.data()), der.size(),
                            reinterpret_cast<const unsigned char*>(message.data()), message.size());
  return rc == 1;
}

int PassphraseCallback(char* buf, int size, int /*rwflag*/, void* user) {
  auto* pass = static_cast<std::string_view*>(user);
  if (pass == nullptr || pass->empty() || pass->size() > static_cast<size_t>(size)) return -1;
  std::memcpy(buf, pass->data(), pass->size());
  return static_cast<int>(pass->size());
}

Result<PublicKey> PublicFromPkey(EVP_PKEY* pkey) {
  // Through the SPKI PEM, so that a PublicKey never holds private material.
  ASSIGN_OR_RETURN(std::string pem, SpkiPem(pkey));
  return PublicKey::FromPem(pem);
}

}  // namespace

std::string_view AlgorithmName(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::kEcdsaP256Sha256: return "ecdsa-p256-sha256";
    case Algorithm::kEcdsaP384Sha384: return "ecdsa-p384-sha384";
    case Algorithm::kEd25519: return "ed25519";
  }
  return "unknown";
}

Result<Algorithm> ParseAlgorithm(std::string_view name) {
  for (Algorithm a : {Algorithm::kEcdsaP256Sha256, Algorithm::kEcdsaP384Sha384, Algorithm::kEd25519}) {
    if (AlgorithmName(a) == name) return a;
  }
  return core::InvalidArgument("unknown key algorithm '" + std::string(name) + "'", "KEY_ALGORITHM");
}

// ---- PublicKey

Result<PublicKey> PublicKey::FromPem(std::string_view pem) {
  if (pem.size() > kMaxPemBytes) return KeyInvalid("public key PEM too large");
  if (pem.find("-----BEGIN PUBLIC KEY-----") == std::string_view::npos) {
    return KeyInvalid("not a PEM public key (expected BEGIN PUBLIC KEY)");
  }
  BioPtr bio = internal::MemoryBio(pem);
  EvpPkeyPtr pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!pkey) return OpenSslError("parsing public key PEM", core::Code::kInvalidArgument, "KEY_INVALID");
  auto impl = std::make_shared<Impl>();
  ASSIGN_OR_RETURN(impl->algorithm, AlgorithmOf(pkey.get()));
  ASSIGN_OR_RETURN(impl->pem, SpkiPem(pkey.get()));
  ASSIGN_OR_RETURN(impl->raw, RawPublic(pkey.get(), impl->algorithm));
  impl->key_id = core::Sha256::Of(impl->pem).Hex();
  if (impl->algorithm != Algorithm::kEd25519) impl->pkey = std::move(pkey);
  return PublicKey(std::move(impl));
}

Result<PublicKey> PublicKey::FromRawEd25519(std::string_view raw) {
  if (raw.size() != crypto_sign_PUBLICKEYBYTES) return KeyInvalid("Ed25519 public key must be 32 bytes");
  EvpPkeyPtr pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                              reinterpret_cast<const unsigned char*>(raw.data()),
                                              raw.size()));
  if (!pkey) return OpenSslError("building Ed25519 key", core::Code::kInvalidArgument, "KEY_INVALID");
  ASSIGN_OR_RETURN(std::string pem, SpkiPem(pkey.get()));
  return FromPem(pem);
}

Result<PublicKey> PublicKey::FromEcPoint(Algorithm algorithm, std::string_view point) {
  if (algorithm == Algorithm::kEd25519) {
    return core::InvalidArgument("FromEcPoint needs an ECDSA algorithm", "KEY_UNSUPPORTED");
  }
  if (point.size() != 1 + 2 * ScalarBytes(algorithm) || point[0] != 0x04) {
    return KeyInvalid("EC public key must be an uncompressed point of " +
                      std::to_string(1 + 2 * ScalarBytes(algorithm)) + " bytes");
  }
  char group[] = "P-256";
  char group384[] = "P-384";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                       algorithm == Algorithm::kEcdsaP384Sha384 ? group384 : group, 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                        const_cast<char*>(point.data()), point.size()),
      OSSL_PARAM_construct_end(),
  };
  internal::EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw_pkey = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw_pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    return OpenSslError("building EC public key", core::Code::kInvalidArgument, "KEY_INVALID");
  }
  EvpPkeyPtr pkey(raw_pkey);
  // fromdata does not check that the point lies on the curve.
  internal::EvpPkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    return OpenSslError("EC public key is not a point on the curve", core::Code::kInvalidArgument,
                        "KEY_INVALID");
  }
  ASSIGN_OR_RETURN(std::string pem, SpkiPem(pkey.get()));
  return FromPem(pem);
}

Algorithm PublicKey::algorithm() const { return impl_->algorithm; }
const std::string& PublicKey::pem() const { return impl_->pem; }
const std::string& PublicKey::key_id() const { return impl_->key_id; }
const std::string& PublicKey::raw() const { return impl_->raw; }

Status PublicKey::Verify(std::string_view message, std::string_view signature) const {
  auto invalid = [&] {
    return core::Unauthenticated("signature does not verify with key " + impl_->key_id,
                                 "SIGNATURE_INVALID");
  };
  if (impl_->algorithm == Algorithm::kEd25519) {
    EnsureSodium();
    if (signature.size() != crypto_sign_BYTES) return invalid();
    int rc = crypto_sign_verify_detached(
        reinterpret_cast<const unsigned char*>(signature.data()),
        reinterpret_cast<const unsigned char*>(message.data()), message.size(),
        reinterpret_cast<const unsigned char*>(impl_->raw.data()));
    return rc == 0 ? core::OkStatus() : invalid();
  }
  // Raw r||s has exactly twice the scalar size; DER never starts otherwise
  // than with SEQUENCE, but a 64-byte DER is possible, so try both.
  bool ok = EcdsaVerifyDer(impl_->pkey.get(), impl_->algorithm, message, signature);
  if (!ok && signature.size() == 2 * ScalarBytes(impl_->algorithm)) {
    auto der = RawEcdsaToDer(signature);
    ok = der.ok() && EcdsaVerifyDer(impl_->pkey.get(), impl_->algorithm, message, *der);
  }
  internal::ClearOpenSslErrors();
  return ok ? core::OkStatus() : invalid();
}

// ---- PrivateKey

Result<PrivateKey> PrivateKey::Generate(Algorithm algorithm) {
  if (algorithm == Algorithm::kEd25519) {
    EnsureSodium();
    std::array<unsigned char, crypto_sign_SEEDBYTES> seed{};
    randombytes_buf(seed.data(), seed.size());
    auto key = internal::KeyAccess::FromEd25519Seed(seed.data());
    sodium_memzero(seed.data(), seed.size());
    return key;
  }
  const char* curve = algorithm == Algorithm::kEcdsaP384Sha384 ? "P-384" : "P-256";
  EvpPkeyPtr pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
  if (!pkey) return OpenSslError("generating EC key");
  return internal::KeyAccess::FromEcPkey(std::move(pkey));
}

Result<PrivateKey> internal::KeyAccess::FromEd25519Seed(const unsigned char* seed) {
  std::array<unsigned char, crypto_sign_PUBLICKEYBYTES> pk{};
  std::array<unsigned char, crypto_sign_SECRETKEYBYTES> sk{};
  crypto_sign_seed_keypair(pk.data(), sk.data(), seed);
  auto pub = PublicKey::FromRawEd25519(std::string_view(reinterpret_cast<char*>(pk.data()), pk.size()));
  if (!pub.ok()) {
    sodium_memzero(sk.data(), sk.size());
    return pub.status();
  }
  auto impl = std::make_shared<PrivateKey::Impl>(Algorithm::kEd25519, std::move(pub).value());
  impl->sodium_sk = sk;
  sodium_memzero(sk.data(), sk.size());
  return PrivateKey(std::move(impl));
}

Result<PrivateKey> internal::KeyAccess::FromEcPkey(EvpPkeyPtr pkey) {
  ASSIGN_OR_RETURN(Algorithm algorithm, AlgorithmOf(pkey.get()));
  ASSIGN_OR_RETURN(PublicKey pub, PublicFromPkey(pkey.get()));
  auto impl = std::make_shared<PrivateKey::Impl>(algorithm, std::move(pub));
  impl->pkey = std::move(pkey);
  return PrivateKey(std::move(impl));
}

Result<PrivateKey> PrivateKey::FromPem(std::string_view pem, std::string_view passphrase) {
  if (pem.size() > kMaxPemBytes) return KeyInvalid("private key PEM too large");
  bool encrypted = pem.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") != std::string_view::npos;
  if (!encrypted && pem.find("-----BEGIN PRIVATE KEY-----") == std::string_view::npos) {
    return KeyInvalid("not a PKCS#8 PEM private key");
  }
  if (encrypted && passphrase.empty()) {
    return core::FailedPrecondition("private key is encrypted and no passphrase was given",
                                    "PASSPHRASE_REQUIRED");
  }
  BioPtr bio = internal::MemoryBio(pem);
  std::string_view pass = passphrase;
  EvpPkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, PassphraseCallback, &pass));
  if (!pkey) {
    if (encrypted) {
      return OpenSslError("decrypting private key (wrong passphrase?)", core::Code::kUnauthenticated,
                          "PASSPHRASE_WRONG");
    }
    return OpenSslError("parsing private key PEM", core::Code::kInvalidArgument, "KEY_INVALID");
  }
  ASSIGN_OR_RETURN(Algorithm algorithm, AlgorithmOf(pkey.get()));
  if (algorithm == Algorithm::kEd25519) {
    EnsureSodium();
    std::array<unsigned char, crypto_sign_SEEDBYTES> seed{};
    size_t len = seed.size();
    if (EVP_PKEY_get_raw_private_key(pkey.get(), seed.data(), &len) != 1 || len != seed.size()) {
      return OpenSslError("reading Ed25519 seed", core::Code::kInvalidArgument, "KEY_INVALID");
    }
    auto key = internal::KeyAccess::FromEd25519Seed(seed.data());
    sodium_memzero(seed.data(), seed.size());
    return key;
  }
  return internal::KeyAccess::FromEcPkey(std::move(pkey));
}

Algorithm PrivateKey::algorithm() const { return impl_->algorithm; }
const PublicKey& PrivateKey::public_key() const { return impl_->public_key; }

Result<std::string> PrivateKey::Sign(std::string_view message) const {
  if (impl_->algorithm == Algorithm::kEd25519) {
    std::string sig(crypto_sign_BYTES, '\0');
    crypto_sign_detached(reinterpret_cast<unsigned char*>(sig.data()), nullptr,
                         reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                         impl_->sodium_sk.data());
    return sig;
  }
  internal::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx ||
      EVP_DigestSignInit(ctx.get(), nullptr, DigestFor(impl_->algorithm), nullptr, impl_->pkey.get()) != 1) {
    return OpenSslError("initialising signature");
  }
  size_t len = 0;
  const auto* msg = reinterpret_cast<const unsigned char*>(message.data());
  if (EVP_DigestSign(ctx.get(), nullptr, &len, msg, message.size()) != 1) return OpenSslError("signing");
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, msg, message.size()) != 1) {
    return OpenSslError("signing");
  }
  sig.resize(len);
  return sig;
}

// ---- files

Status SavePrivateKey(const PrivateKey& key, const std::string& path, std::string_view passphrase) {
  const PrivateKey::Impl& impl = *key.impl_;
  EvpPkeyPtr ed;
  EVP_PKEY* pkey = impl.pkey.get();
  if (impl.algorithm == Algorithm::kEd25519) {
    // libsodium's secret key is seed || public key; PKCS#8 stores the seed.
    ed.reset(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, impl.sodium_sk.data(),
                                          crypto_sign_SEEDBYTES));
    if (!ed) return OpenSslError("encoding Ed25519 key");
    pkey = ed.get();
  }
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio) return OpenSslError("allocating buffer");
  const EVP_CIPHER* cipher = passphrase.empty() ? nullptr : EVP_aes_256_cbc();
  if (PEM_write_bio_PKCS8PrivateKey(bio.get(), pkey, cipher, passphrase.data(),
                                    static_cast<int>(passphrase.size()), nullptr, nullptr) != 1) {
    return OpenSslError("encoding private key");
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  if (n <= 0 || data == nullptr) return core::Internal("encoding private key produced nothing");
  return core::WriteFileAtomic(path, std::string_view(data, static_cast<size_t>(n)), 0600);
}

Result<PrivateKey> LoadPrivateKey(const std::string& path, std::string_view passphrase) {
  // One descriptor for the mode check and the read, so the file checked is
  // the file read.
  core::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return core::ErrnoStatus(errno, "open " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return core::ErrnoStatus(errno, "stat " + path);
  if (static_cast<uint64_t>(st.st_size) > kMaxPemBytes) return KeyInvalid(path + " is too large for a key");
  std::string pem(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < pem.size()) {
    ASSIGN_OR_RETURN(size_t n, core::PreadSome(fd.get(), pem.data() + got, pem.size() - got, got));
    if (n == 0) break;
    got += n;
  }
  pem.resize(got);
  bool encrypted = pem.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") != std::string::npos;
  if (!encrypted && (st.st_mode & 077) != 0) {
    std::fill(pem.begin(), pem.end(), '\0');
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return core::PermissionDenied("unencrypted private key " + path + " has mode " + mode +
                                      "; it must not be readable by group or others (chmod 600)",
                                  "KEY_FILE_MODE");
  }
  auto key = PrivateKey::FromPem(pem, passphrase);
  std::fill(pem.begin(), pem.end(), '\0');
  if (!key.ok()) return key.status().Annotate(path);
  return key;
}

Status SavePublicKey(const PublicKey& key, const std::string& path) {
  return core::WriteFileAtomic(path, key.pem(), 0644);
}

Result<PublicKey> LoadPublicKey(const std::string& path) {
  ASSIGN_OR_RETURN(std::string pem, core::ReadFile(path, kMaxPemBytes));
  auto key = PublicKey::FromPem(pem);
  if (!key.ok()) return key.status().Annotate(path);
  return key;
}

Result<std::string> ReadPassphrase(const std::string& passphrase_file) {
  if (const char* env = std::getenv(kPassphraseEnv); env != nullptr) return std::string(env);
  if (passphrase_file.empty()) return std::string();
  ASSIGN_OR_RETURN(std::string pass, core::ReadFile(passphrase_file, 4096));
  if (!pass.empty() && pass.back() == '\n') pass.pop_back();
  if (!pass.empty() && pass.back() == '\r') pass.pop_back();
  return pass;
}

}  // namespace sigil::signing
