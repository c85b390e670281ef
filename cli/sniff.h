// Guessing a model's format from its files' first bytes and names, for the
// "format" field of the config blob. Only a label: the server's scanner does
// the real structural checks.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace sigil::cli {

// Bytes of a file's head that SniffFormat looks at.
inline constexpr size_t kSniffBytes = 16;

// One of "safetensors", "gguf", "pytorch", "pickle", "onnx", "numpy",
// "keras", "unknown". head is the start of the file (up to kSniffBytes),
// name its file name (the extension decides where the bytes cannot).
std::string SniffFormat(std::string_view head, std::string_view name);

// Reads the head of the file at path and sniffs it.
core::Result<std::string> SniffFile(const std::string& path, std::string_view name);

}  // namespace sigil::cli
