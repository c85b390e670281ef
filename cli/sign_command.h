// Signing on the client: model signatures (offline, or over a version's
// files on the server), signed in-toto statements attached to versions, and
// the offline check of a model-signing bundle.
//
//   sigil sign DIR --key K --out model.sig     offline OpenSSF model signature
//   sigil sign REF --key K                     model signature over the version's
//                                              files, computed from the manifest
//                                              (no download), POSTed as an attestation
//   sigil attest REF --predicate-type T --predicate FILE --key K
//   sigil push ... --provenance FILE --key K   (AttachProvenance after the push)
//   sigil verify DIR --signature model.sig --key PUB.pem [--ignore-paths P]...
//
// Remote errors are the server's (ErrorFromResponse), kUnavailable when it
// cannot be reached.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "attest/model_signing.h"
#include "cli/http_client.h"
#include "cli/refs.h"
#include "cli/verify.h"
#include "core/status.h"
#include "registry/manifest.h"
#include "signing/keys.h"

namespace sigil::cli {

struct RemoteVersion {
  core::Digest digest;         // of the manifest
  std::string manifest_bytes;  // exact, hash checked
  registry::Manifest manifest;
};

// GET the version and its manifest bytes by digest; checks the hash.
core::Result<RemoteVersion> FetchVersion(HttpClient& http, const Reference& ref,
                                         std::chrono::milliseconds retry_budget);

// The OpenSSF model-signing manifest ("files" method) of a version's files:
// one resource per layer title with the layer digest, the default ignored
// paths left out; model name = the last repository component.
core::Result<attest::ModelManifest> ModelManifestOf(const std::string& repository,
                                                    const registry::Manifest& manifest);

// POSTs a document to .../attestations; returns the server's JSON answer.
core::Result<std::string> PostAttestation(HttpClient& http, const Reference& ref, const std::string& document,
                                          std::chrono::milliseconds retry_budget);

// sigil sign REF: returns the server's attestation JSON.
core::Result<std::string> SignRemoteModel(HttpClient& http, const Reference& ref,
                                          const signing::PrivateKey& key,
                                          std::chrono::milliseconds retry_budget);

// sigil attest REF: an in-toto statement about the manifest digest, signed
// as DSSE. predicate_json must be a JSON object. With file_subjects, each of
// the version's files is a subject too (its path and digest), as SLSA
// provenance names a build's outputs.
core::Result<std::string> AttestRemote(HttpClient& http, const Reference& ref,
                                       const std::string& predicate_type, const std::string& predicate_json,
                                       const signing::PrivateKey& key,
                                       std::chrono::milliseconds retry_budget, bool file_subjects = false);

// push --provenance: reads the SLSA provenance v1 predicate and validates
// it (attest::ParseProvenance) before the push starts.
core::Result<std::string> LoadProvenance(const std::string& predicate_path);
// Then attests it for the pushed manifest digest.
core::Result<std::string> AttachProvenance(HttpClient& http, const std::string& repository,
                                           const std::string& manifest_digest,
                                           const std::string& predicate_json, const signing::PrivateKey& key,
                                           std::chrono::milliseconds retry_budget);

// sigil verify DIR --signature F --key PUB: bundle, key, signature,
// statement, root and files checks, the first failing one named.
VerifyReport VerifyModelSignature(const std::string& model_dir, const std::string& signature_path,
                                  const signing::PublicKey& key,
                                  const std::vector<std::string>& ignore_paths);

}  // namespace sigil::cli
