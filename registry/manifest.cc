#include "registry/manifest.h"

#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/json.h"
#include "registry/names.h"

namespace sigil::registry {
namespace {

using core::Json;

// Manifests are a few levels deep; anything deeper is not a manifest.
constexpr int kMaxManifestDepth = 16;

core::Status Invalid(const std::string& message) {
  return core::InvalidArgument("manifest: " + message, "MANIFEST_INVALID");
}

// nlohmann keeps the last of duplicate keys while other parsers keep the
// first: a manifest with duplicates could mean different things to sigil and
// to another OCI tool reading the same bytes, so it is refused.
class DuplicateKeyFinder : public nlohmann::json_sax<Json> {
 public:
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    keys_.emplace_back();
    return true;
  }
  bool key(string_t& k) override {
    if (!keys_.back().insert(k).second) {
      duplicate_ = k;
      return false;
    }
    return true;
  }
  bool end_object() override {
    keys_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

  const std::optional<std::string>& duplicate() const { return duplicate_; }

 private:
  std::vector<std::set<std::string>> keys_;
  std::optional<std::string> duplicate_;
};

core::Result<std::map<std::string, std::string>> ParseAnnotations(const Json& v, const std::string& where) {
  if (!v.is_object()) return Invalid(where + " must be an object");
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : v.items()) {
    if (!value.is_string()) return Invalid(where + "['" + key + "'] must be a string");
    out[key] = value.get<std::string>();
  }
  return out;
}

core::Result<Descriptor> ParseDescriptor(const Json& v, const std::string& where) {
  if (!v.is_object()) return Invalid(where + " must be an object");
  Descriptor d;
  auto media_type = v.find("mediaType");
  if (media_type == v.end() || !media_type->is_string() || media_type->get<std::string>().empty()) {
    return Invalid(where + ".mediaType must be a non-empty string");
  }
  d.media_type = media_type->get<std::string>();

  auto digest = v.find("digest");
  if (digest == v.end() || !digest->is_string()) return Invalid(where + ".digest must be a string");
  auto parsed = core::Digest::Parse(digest->get<std::string>());
  if (!parsed.ok()) return Invalid(where + ".digest: " + parsed.status().message());
  d.digest = *parsed;

  auto size = v.find("size");
  if (size == v.end() || !size->is_number_integer() ||
      (!size->is_number_unsigned() && size->get<int64_t>() < 0)) {
    return Invalid(where + ".size must be a non-negative integer");
  }
  d.size = size->get<uint64_t>();
  // Sizes travel as int64 in HTTP headers and file offsets.
  if (d.size > static_cast<uint64_t>(INT64_MAX)) return Invalid(where + ".size is too large");

  auto annotations = v.find("annotations");
  if (annotations != v.end()) {
    ASSIGN_OR_RETURN(d.annotations, ParseAnnotations(*annotations, where + ".annotations"));
  }
  return d;
}

// Titles become paths on the puller's disk: each must be a valid relative
// path, unique, and no title may be a directory holding another ("a" and
// "a/b" cannot both be files).
core::Status CheckTitles(const Manifest& m) {
  bool needs_titles = m.artifact_type == kModelArtifactType || m.artifact_type == kToolArtifactType;
  std::set<std::string_view> titles;
  for (size_t i = 0; i < m.layers.size(); ++i) {
    std::string where = "layers[" + std::to_string(i) + "]";
    auto it = m.layers[i].annotations.find(std::string(kTitleAnnotation));
    if (it == m.layers[i].annotations.end()) {
      if (needs_titles) return Invalid(where + " has no " + std::string(kTitleAnnotation) + " annotation");
      continue;
    }
    core::Status s = ValidateFilePath(it->second);
    if (!s.ok()) return Invalid(where + " title: " + s.message());
    if (!titles.insert(it->second).second) return Invalid(where + " repeats the title '" + it->second + "'");
  }
  for (std::string_view title : titles) {
    for (size_t slash = title.find('/'); slash != std::string_view::npos;
         slash = title.find('/', slash + 1)) {
      if (titles.count(title.substr(0, slash))) {
        return Invalid("title '" + std::string(title.substr(0, slash)) + "' is a directory of '" +
                       std::string(title) + "'");
      }
    }
  }
  return core::OkStatus();
}

Json DescriptorJson(const Descriptor& d) {
  Json out = {{"mediaType", d.media_type}, {"digest", d.digest.ToString()}, {"size", d.size}};
  if (!d.annotations.empty()) out["annotations"] = d.annotations;
  return out;
}

}  // namespace

const Descriptor* Manifest::FindFile(std::string_view path) const {
  for (const auto& layer : layers) {
    auto it = layer.annotations.find(std::string(kTitleAnnotation));
    if (it != layer.annotations.end() && it->second == path) return &layer;
  }
  return nullptr;
}

core::Result<Manifest> ParseManifest(std::string_view bytes) {
  if (bytes.size() > kMaxManifestBytes) {
    return Invalid("larger than " + std::to_string(kMaxManifestBytes) + " bytes");
  }
  core::JsonLimits limits;
  limits.max_bytes = kMaxManifestBytes;
  limits.max_depth = kMaxManifestDepth;
  auto parsed = core::ParseJson(bytes, limits);
  if (!parsed.ok()) return Invalid(parsed.status().message());
  const Json& doc = *parsed;
  DuplicateKeyFinder finder;
  Json::sax_parse(bytes.begin(), bytes.end(), &finder);
  if (finder.duplicate()) return Invalid("key '" + *finder.duplicate() + "' appears twice in one object");

  if (!doc.is_object()) return Invalid("must be a JSON object");
  auto schema = doc.find("schemaVersion");
  if (schema == doc.end() || !schema->is_number_integer() || schema->get<int64_t>() != 2) {
    return Invalid("schemaVersion must be 2");
  }
  auto media_type = doc.find("mediaType");
  if (media_type == doc.end() || !media_type->is_string() ||
      media_type->get<std::string>() != kOciManifestMediaType) {
    return Invalid("mediaType must be " + std::string(kOciManifestMediaType));
  }

  Manifest m;
  auto artifact_type = doc.find("artifactType");
  if (artifact_type != doc.end()) {
    if (!artifact_type->is_string()) return Invalid("artifactType must be a string");
    m.artifact_type = artifact_type->get<std::string>();
  }

  auto config = doc.find("config");
  if (config == doc.end()) return Invalid("config is missing");
  ASSIGN_OR_RETURN(m.config, ParseDescriptor(*config, "config"));

  auto layers = doc.find("layers");
  if (layers == doc.end() || !layers->is_array()) return Invalid("layers must be an array");
  if (layers->size() > kMaxLayers) {
    return Invalid("more than " + std::to_string(kMaxLayers) + " layers");
  }
  m.layers.reserve(layers->size());
  for (size_t i = 0; i < layers->size(); ++i) {
    ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor((*layers)[i], "layers[" + std::to_string(i) + "]"));
    m.layers.push_back(std::move(d));
  }

  auto subject = doc.find("subject");
  if (subject != doc.end()) {
    ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor(*subject, "subject"));
    m.subject = std::move(d);
  }
  auto annotations = doc.find("annotations");
  if (annotations != doc.end()) {
    ASSIGN_OR_RETURN(m.annotations, ParseAnnotations(*annotations, "annotations"));
  }
  RETURN_IF_ERROR(CheckTitles(m));
  return m;
}

std::string SerializeManifest(const Manifest& manifest) {
  // nlohmann's default object keeps keys sorted, so equal manifests always
  // serialize to the same bytes and therefore the same digest.
  Json out = {{"schemaVersion", 2},
              {"mediaType", kOciManifestMediaType},
              {"config", DescriptorJson(manifest.config)},
              {"layers", Json::array()}};
  if (!manifest.artifact_type.empty()) out["artifactType"] = manifest.artifact_type;
  for (const auto& layer : manifest.layers) out["layers"].push_back(DescriptorJson(layer));
  if (manifest.subject) out["subject"] = DescriptorJson(*manifest.subject);
  if (!manifest.annotations.empty()) out["annotations"] = manifest.annotations;
  return core::DumpJson(out);
}

}  // namespace sigil::registry
