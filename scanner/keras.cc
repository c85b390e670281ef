// Keras model configs (config.json of a .keras archive, or a bare config):
// Lambda layers carry marshalled Python bytecode, and modules outside Keras
// are imported when the model is built.
#include <string>

#include <nlohmann/json.hpp>

#include "scanner/context.h"

namespace sigil::scanner {
namespace {

bool KerasModule(const std::string& m) { return m == "keras" || m.rfind("keras.", 0) == 0; }

void Walk(const nlohmann::json& v, const Context& ctx, int depth) {
  if (depth > 64 || ctx.state().findings.size() >= ctx.options().max_findings) return;
  if (v.is_array()) {
    for (const auto& item : v) Walk(item, ctx, depth + 1);
    return;
  }
  if (!v.is_object()) return;
  auto class_name = v.find("class_name");
  if (class_name != v.end() && class_name->is_string()) {
    const std::string& cls = class_name->get_ref<const std::string&>();
    if (cls == "Lambda" || cls == "__lambda__") {
      ctx.Add(Severity::kHigh, "keras.lambda",
              "Keras '" + cls + "' object: carries Python code that runs when the model loads", 0,
              cls);
    }
  }
  if (v.contains("__lambda__")) {
    ctx.Add(Severity::kHigh, "keras.lambda", "serialized Python lambda in the Keras config", 0);
  }
  auto module = v.find("module");
  if (module != v.end() && module->is_string() && class_name != v.end() &&
      !KerasModule(module->get_ref<const std::string&>())) {
    const std::string& m = module->get_ref<const std::string&>();
    std::string cls = class_name->is_string() ? class_name->get<std::string>() : "?";
    ctx.Add(Severity::kMedium, "keras.custom_module",
            "Keras config imports '" + cls + "' from module '" + m + "', outside Keras", 0,
            m + "." + cls);
  }
  auto registered = v.find("registered_name");
  if (registered != v.end() && registered->is_string() &&
      registered->get_ref<const std::string&>().find('>') != std::string::npos) {
    ctx.Add(Severity::kMedium, "keras.custom_object",
            "Keras config needs the registered custom object '" +
                registered->get_ref<const std::string&>() + "'",
            0, registered->get<std::string>());
  }
  for (const auto& [key, child] : v.items()) Walk(child, ctx, depth + 1);
}

}  // namespace

void AnalyzeKerasConfig(const ByteSource& src, const Context& ctx) {
  if (src.size() > ctx.options().max_json_bytes) {
    ctx.Malformed("limit.keras_config", "Keras config larger than max_json_bytes", 0);
    return;
  }
  std::string text;
  if (!ReadRange(src, 0, src.size(), &text)) return;
  core::JsonLimits limits;
  limits.max_bytes = ctx.options().max_json_bytes;
  auto json = core::ParseJson(text, limits);
  if (!json.ok()) {
    ctx.Malformed("keras.bad_config", json.status().message(), 0);
    return;
  }
  Walk(*json, ctx, 0);
}

}  // namespace sigil::scanner
