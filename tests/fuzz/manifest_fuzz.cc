// Fuzzes the version manifest parser (registry/manifest.h), which reads
// manifests as clients push them.
// Invariant: a manifest that parses serializes to canonical bytes that parse
// back to a manifest with the same canonical bytes.
#include <string>

#include "registry/manifest.h"
#include "tests/fuzz/check.h"

using sigil::fuzz::Check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto manifest = sigil::registry::ParseManifest(sigil::fuzz::AsText(data, size));
  if (!manifest.ok()) {
    Check(manifest.status().code() == sigil::core::Code::kInvalidArgument);
    return 0;
  }
  Check(manifest->layers.size() <= sigil::registry::kMaxLayers);
  std::string canonical = sigil::registry::SerializeManifest(*manifest);
  auto again = sigil::registry::ParseManifest(canonical);
  Check(again.ok());
  Check(sigil::registry::SerializeManifest(*again) == canonical);
  for (const auto& layer : manifest->layers) {
    auto title = layer.annotations.find(std::string(sigil::registry::kTitleAnnotation));
    if (title != layer.annotations.end()) Check(again->FindFile(title->second) != nullptr);
  }
  return 0;
}
