// OpenSSF model signing (sigstore/model-transparency), format v1.0.
//
// A model (a directory, or a single file) is serialized into a list of
// resources, each a file ("files" method) or a byte range of a file
// ("shards" method) with its SHA-256. Resources are ordered by path
// components, then start and end as integers; ROOT = SHA-256 over their raw
// digests in that order. The DSSE payload is an in-toto Statement with
// predicateType https://model_signing/signature/v1.0 and one subject
// {name: model basename, digest: {sha256: ROOT}}, written as a Sigstore
// bundle v0.3 with a public-key hint (the key id).
//
// Hashing reads files with several threads (options.threads, default 2);
// everything else is single-threaded. Functions are reentrant.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/digest.h"
#include "core/status.h"
#include "signing/keys.h"

namespace sigil::attest {

enum class SerializationMethod { kFiles, kShards };

inline constexpr uint64_t kDefaultShardSize = 1'000'000'000;
inline constexpr std::string_view kBundleMediaTypeV03 = "application/vnd.dev.sigstore.bundle.v0.3+json";
// Always ignored at the top of a model directory (path-component prefix).
inline constexpr std::string_view kDefaultIgnoredPaths[] = {".git", ".gitattributes", ".github",
                                                            ".gitignore"};

struct SerializationOptions {
  SerializationMethod method = SerializationMethod::kFiles;
  uint64_t shard_size = kDefaultShardSize;  // shards method only; > 0
  // Follow symlinks to regular files; otherwise a symlink is an error.
  // Symlinks to directories are always refused.
  bool allow_symlinks = false;
  // Paths relative to the model root, '/'-separated; a path ignores itself
  // and everything below it. The defaults above are added.
  std::vector<std::string> ignore_paths;
  int threads = 2;
};

struct ModelResource {
  std::string name;       // "dir/file", "." for a single-file model, "path:start:end" for shards
  std::string algorithm;  // "sha256" or "sha256-sharded-<shard size>"
  std::string digest_hex;
};

struct ModelManifest {
  std::string model_name;
  SerializationMethod method = SerializationMethod::kFiles;
  uint64_t shard_size = kDefaultShardSize;
  bool allow_symlinks = false;
  std::vector<std::string> ignore_paths;  // as recorded in the predicate (no defaults)
  std::vector<ModelResource> resources;   // canonical order
  core::Digest root;
};

// Orders resources canonically (path components, then start, end).
void SortResources(std::vector<ModelResource>* resources);
// SHA-256 over the raw digests in the given order.
// Errors: kInvalidArgument when a digest is not 64 lowercase hex.
core::Result<core::Digest> ResourcesRoot(const std::vector<ModelResource>& resources);

// Serializes the model at model_path (a directory or a regular file).
// Errors: kNotFound; kFailedPrecondition "MODEL_SYMLINK" / "MODEL_FILE_TYPE"
// naming the path; kInvalidArgument for bad options; I/O errors.
core::Result<ModelManifest> SerializeModel(const std::string& model_path,
                                           const SerializationOptions& options);

// The in-toto Statement (JSON text) for a manifest.
core::Result<std::string> ModelStatement(const ModelManifest& manifest);

// Signs a manifest into a Sigstore bundle (JSON text). ECDSA keys only, as
// the OpenSSF verifier accepts only EC keys: kInvalidArgument
// "KEY_UNSUPPORTED" otherwise.
core::Result<std::string> SignModelManifest(const ModelManifest& manifest,
                                            const signing::PrivateKey& key);

// Serializes model_path, ignoring signature_path when it lies inside the
// model, signs, and writes the bundle to signature_path atomically.
core::Status SignModel(const std::string& model_path, const signing::PrivateKey& key,
                       const std::string& signature_path, SerializationOptions options = {});

struct ModelVerifyOptions {
  // Extra paths to ignore when rehashing, relative to the model root (the
  // signature file when it sits inside the model).
  std::vector<std::string> ignore_paths;
  int threads = 2;
};

// Verifies a bundle against a public key and the model on disk, in the
// order of REFERENCE.md: mediaType, hint, exactly one signature, signature
// over PAE, payloadType, _type, predicateType, one subject, ROOT recomputed
// from the resources in the order listed (as the reference verifier does),
// local model rehashed with the same serialization, name -> digest maps
// equal. The returned manifest lists the resources in canonical order.
// Errors (reasons): kInvalidArgument "BUNDLE_INVALID" (structure, JSON,
// signature count, serialization), "BUNDLE_MEDIA_TYPE",
// "MODEL_RESOURCE_NAME" (absolute, empty or '..' names);
// kUnauthenticated "BUNDLE_KEY_MISMATCH" (hint), "SIGNATURE_INVALID",
// "MODEL_ROOT_MISMATCH", "MODEL_MISMATCH" (a file changed, missing or
// unexpected; the message and detail name the file);
// kInvalidArgument "DSSE_PAYLOAD_TYPE", "STATEMENT_INVALID"; and the
// errors of SerializeModel.
core::Result<ModelManifest> VerifyModel(const std::string& model_path, std::string_view bundle_json,
                                        const signing::PublicKey& key,
                                        const ModelVerifyOptions& options = {});

// Reads signature_path and verifies, ignoring signature_path when inside
// the model.
core::Result<ModelManifest> VerifyModelFile(const std::string& model_path,
                                            const std::string& signature_path,
                                            const signing::PublicKey& key);

// The serialization.ignore_paths of a model-signing predicate (JSON text);
// empty when absent or malformed.
std::vector<std::string> IgnorePathsOfPredicate(const std::string& predicate_json);

}  // namespace sigil::attest
