// Versions for registry tests: blobs uploaded into a store, a model
// manifest over them, and the version pushed.
#pragma once

#include <catch2/catch.hpp>
#include <map>
#include <string>

#include "core/digest.h"
#include "registry/manifest.h"
#include "registry/registry.h"
#include "storage/blob_store.h"

namespace sigil::registry::fixtures {

// Stores content and describes it as a layer titled `title` (untitled when
// empty).
inline Descriptor UploadLayer(storage::BlobStore& blobs, const std::string& content, const std::string& title) {
  Descriptor d;
  d.media_type = std::string(kLayerMediaType);
  d.digest = core::Sha256::Of(content);
  d.size = content.size();
  if (!title.empty()) d.annotations[std::string(kTitleAnnotation)] = title;
  REQUIRE(blobs.Put(d.digest, content).ok());
  return d;
}

// Pushes a model version whose layers are files {title: content}, with an
// empty JSON config.
inline VersionInfo PushModel(Registry& reg, storage::BlobStore& blobs, const std::string& repo,
                             const std::string& version, const std::map<std::string, std::string>& files) {
  Manifest m;
  m.artifact_type = std::string(kModelArtifactType);
  m.config = UploadLayer(blobs, "{}", "");
  m.config.media_type = std::string(kModelConfigMediaType);
  for (const auto& [title, content] : files) m.layers.push_back(UploadLayer(blobs, content, title));
  auto r = reg.PutVersion(repo, version, SerializeManifest(m));
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return *r;
}

}  // namespace sigil::registry::fixtures
