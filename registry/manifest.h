// Model version manifests: OCI image manifests (DESIGN.md "Data model").
//
//   {"schemaVersion": 2,
//    "mediaType": "application/vnd.oci.image.manifest.v1+json",
//    "artifactType": "application/vnd.cncf.model.manifest.v1+json",
//    "config": {descriptor of a JSON blob},
//    "layers": [{"mediaType", "digest", "size",
//                "annotations": {"org.opencontainers.image.title": "<path>"}}],
//    "subject": {descriptor}?, "annotations": {...}?}
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/digest.h"
#include "core/status.h"

namespace sigil::registry {

inline constexpr std::string_view kOciManifestMediaType =
    "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kModelArtifactType =
    "application/vnd.cncf.model.manifest.v1+json";
inline constexpr std::string_view kToolArtifactType = "application/vnd.sigil.tool.manifest.v1+json";
inline constexpr std::string_view kModelConfigMediaType =
    "application/vnd.cncf.model.config.v1+json";
inline constexpr std::string_view kLayerMediaType = "application/octet-stream";
inline constexpr std::string_view kTitleAnnotation = "org.opencontainers.image.title";
inline constexpr size_t kMaxManifestBytes = 4 << 20;
inline constexpr size_t kMaxLayers = 10000;

struct Descriptor {
  std::string media_type;
  core::Digest digest;
  uint64_t size = 0;
  std::map<std::string, std::string> annotations;
};

struct Manifest {
  std::string artifact_type;
  Descriptor config;
  std::vector<Descriptor> layers;
  std::optional<Descriptor> subject;
  std::map<std::string, std::string> annotations;

  // The layer whose title is path, or nullptr.
  const Descriptor* FindFile(std::string_view path) const;
};

// Parses and validates: schemaVersion 2, the OCI media type, well-formed
// descriptors (digest grammar, sizes), at most kMaxLayers layers, model
// layers titled with valid, distinct relative paths.
// kInvalidArgument, reason MANIFEST_INVALID, with a message naming the field.
core::Result<Manifest> ParseManifest(std::string_view bytes);

// Builds the canonical manifest bytes sigil's client pushes.
std::string SerializeManifest(const Manifest& manifest);

}  // namespace sigil::registry
