// Builds a model manifest for API tests: stores a config blob and one blob
// per file (path -> content) in the blob store, and returns the manifest's
// serialized bytes.
#pragma once

#include <map>
#include <string>

#include <catch2/catch.hpp>

#include "core/digest.h"
#include "registry/manifest.h"
#include "storage/blob_store.h"

namespace sigil::testing {

inline core::Digest PutTestBlob(storage::BlobStore* blobs, const std::string& data) {
  core::Digest d = core::Sha256::Of(data);
  REQUIRE(blobs->Put(d, data).ok());
  return d;
}

inline std::string StoreModelManifest(storage::BlobStore* blobs,
                                      const std::map<std::string, std::string>& files) {
  registry::Manifest m;
  m.artifact_type = std::string(registry::kModelArtifactType);
  std::string config = R"({"format":"test"})";
  m.config.media_type = std::string(registry::kModelConfigMediaType);
  m.config.digest = PutTestBlob(blobs, config);
  m.config.size = config.size();
  for (const auto& [path, content] : files) {
    registry::Descriptor d;
    d.media_type = std::string(registry::kLayerMediaType);
    d.digest = PutTestBlob(blobs, content);
    d.size = content.size();
    d.annotations[std::string(registry::kTitleAnnotation)] = path;
    m.layers.push_back(d);
  }
  return registry::SerializeManifest(m);
}

}  // namespace sigil::testing
