// RAII handles for OpenSSL objects and the error-queue-to-Status bridge.
// Internal to signing/: nothing outside this module includes OpenSSL.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "core/status.h"

namespace sigil::signing::internal {

struct EvpPkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct EvpPkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct EvpMdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};

using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, EvpPkeyCtxFree>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, EvpMdCtxFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, EcdsaSigFree>;
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

// Drains OpenSSL's thread-local error queue into one Status:
// "<context>: <first error>; <second error>...". Always non-OK.
core::Status OpenSslError(std::string_view context, core::Code code = core::Code::kInternal,
                          std::string reason = {});

// Discards whatever OpenSSL left in the error queue (after an expected
// failure, such as a signature that does not verify).
void ClearOpenSslErrors();

// A read-only memory BIO over text; the text must outlive the BIO.
BioPtr MemoryBio(std::string_view text);
// Everything written to a memory BIO.
std::string BioContents(BIO* bio);

}  // namespace sigil::signing::internal
