#include "scanner/globals.h"

#include <algorithm>
#include <array>
#include <iterator>
#include <vector>

namespace sigil::scanner {
namespace {

std::vector<std::string_view> Split(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    parts.push_back(s.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

template <size_t N>
bool In(const std::string_view (&set)[N], std::string_view s) {
  return std::find(std::begin(set), std::end(set), s) != std::end(set);
}

// Exact allow-list entries (module, name).
constexpr std::string_view kAllowedExact[] = {
    "collections.OrderedDict",
    "torch.Size",
    "torch.device",
    "torch.nn.parameter.Parameter",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.ndarray",
    "numpy.dtype",
    "_codecs.encode",
    "torch.storage.UntypedStorage",
    "torch.storage.TypedStorage",
    "torch._utils._rebuild_tensor",
};

// torch dtypes (and the quantization schemes _rebuild_qtensor takes), all
// plain enum-like objects reached as attributes of the torch module.
constexpr std::string_view kTorchDtypes[] = {
    "float32", "float", "float64", "double", "float16", "half", "bfloat16",
    "complex32", "chalf", "complex64", "cfloat", "complex128", "cdouble",
    "uint8", "int8", "int16", "short", "int32", "int", "int64", "long", "bool",
    "uint16", "uint32", "uint64",
    "qint8", "quint8", "qint32", "quint4x2", "quint2x4",
    "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
    "per_tensor_affine", "per_channel_affine", "per_tensor_symmetric", "per_channel_symmetric",
};

// TorchScript's own pickler writes these list builders (torch/jit/_pickle.py).
constexpr std::string_view kTorchScriptPickle[] = {
    "build_intlist", "build_tensorlist", "build_doublelist", "build_boollist",
    "build_tensor_from_id", "restore_type_tag", "build_complexlist",
};

// Modules whose every member is critical: code execution, process, file,
// network or interpreter access (REFERENCE.md plus their close relatives).
constexpr std::string_view kCriticalModules[] = {
    "os", "posix", "nt", "subprocess", "runpy", "pty", "socket", "shutil", "ctypes",
    "importlib", "marshal", "types", "pickle", "_pickle", "cPickle", "pip", "webbrowser",
    "pkgutil", "operator", "_operator", "functools", "_functools", "sys", "code", "codeop",
    "commands", "multiprocessing", "asyncio", "http", "urllib", "urllib2", "requests",
    "httplib", "ftplib", "telnetlib", "smtplib", "poplib", "imaplib", "socketserver", "ssl",
    "select", "signal", "tempfile", "io", "_io", "codecs", "pathlib", "glob", "fileinput",
    "linecache", "zipfile", "tarfile", "sqlite3", "shelve", "dbm", "timeit", "doctest", "pdb",
    "bdb", "trace", "profile", "cProfile", "dill", "cloudpickle", "yaml", "site", "imp",
    "zipimport", "platform", "threading", "_thread", "thread", "atexit", "gc", "inspect",
    "_posixsubprocess",
};

// Dotted prefixes that are critical though their root module is not.
constexpr std::string_view kCriticalPrefixes[] = {
    "torch.load", "torch.serialization", "torch.hub", "torch.jit.load",
    "torch.utils.cpp_extension", "torch.ops.load_library", "torch.classes.load_library",
    "numpy.load", "numpy.testing", "numpy.f2py", "numpy.distutils",
};

// builtins reaching code, attributes or files.
constexpr std::string_view kCriticalBuiltins[] = {
    "eval", "exec", "execfile", "compile", "open", "file", "__import__", "getattr", "setattr",
    "delattr", "globals", "locals", "vars", "input", "raw_input", "breakpoint", "reload",
    "apply",
};

// Attribute names that are dangerous wherever they appear in a dotted path.
constexpr std::string_view kCriticalAttributes[] = {
    "os", "sys", "subprocess", "builtins", "system", "popen", "eval", "exec", "getattr",
    "__import__", "__builtins__", "import_module",
};

}  // namespace

std::string CanonicalModule(std::string_view module) {
  // Python 3 _compat_pickle.IMPORT_MAPPING, the entries that matter here.
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 9> kMap = {{
      {"__builtin__", "builtins"},
      {"copy_reg", "copyreg"},
      {"cPickle", "pickle"},
      {"exceptions", "builtins"},
      {"UserDict", "collections"},
      {"commands", "subprocess"},
      {"urllib2", "urllib.request"},
      {"httplib", "http.client"},
      {"thread", "_thread"},
  }};
  for (const auto& [from, to] : kMap) {
    if (module == from) return std::string(to);
  }
  return std::string(module);
}

bool IsDottedIdentifier(std::string_view s) {
  if (s.empty()) return false;
  bool at_start = true;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '.') {
      if (at_start) return false;
      at_start = true;
      continue;
    }
    bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
    bool digit = c >= '0' && c <= '9';
    if (at_start ? !letter : !(letter || digit)) return false;
    at_start = false;
  }
  return !at_start;
}

Judgement JudgeGlobal(std::string_view raw_module, std::string_view name, PickleKind kind) {
  std::string module = CanonicalModule(raw_module);
  std::string full = module + "." + std::string(name);
  bool dotted_name = name.find('.') != std::string_view::npos;
  Judgement j;

  // Allow-list first; a dotted name never matches it (attribute walks such
  // as collections.OrderedDict.__init__ reach further than the class).
  if (!dotted_name) {
    if (In(kAllowedExact, full)) return {true, Severity::kInfo, "allow-listed"};
    if (module == "torch._utils" && name.substr(0, 9) == "_rebuild_") {
      return {true, Severity::kInfo, "allow-listed tensor rebuild"};
    }
    if ((module == "torch" || module == "torch.cuda") && name.size() > 7 &&
        name.substr(name.size() - 7) == "Storage") {
      return {true, Severity::kInfo, "allow-listed storage type"};
    }
    if (module == "torch" && In(kTorchDtypes, name)) {
      return {true, Severity::kInfo, "allow-listed dtype"};
    }
    if (kind == PickleKind::kTorchScript && module == "torch.jit._pickle" &&
        In(kTorchScriptPickle, name)) {
      return {true, Severity::kInfo, "TorchScript list builder"};
    }
  }

  std::vector<std::string_view> parts = Split(full);
  std::vector<std::string_view> raw_parts = Split(raw_module);
  std::string_view root = parts.front();
  if (In(kCriticalModules, root) || In(kCriticalModules, raw_parts.front())) {
    return {false, Severity::kCritical, "module '" + std::string(root) +
                                            "' gives code execution or file/network access"};
  }
  for (std::string_view prefix : kCriticalPrefixes) {
    if (full.size() >= prefix.size() && full.compare(0, prefix.size(), prefix) == 0 &&
        (full.size() == prefix.size() || full[prefix.size()] == '.')) {
      return {false, Severity::kCritical, "'" + std::string(prefix) + "' loads or runs code"};
    }
  }
  if (root == "builtins") {
    std::string_view member = parts.size() > 1 ? parts[1] : std::string_view();
    if (In(kCriticalBuiltins, member)) {
      return {false, Severity::kCritical,
              "builtin '" + std::string(member) + "' reaches code, attributes or files"};
    }
  }
  for (size_t i = 1; i < parts.size(); ++i) {
    std::string_view p = parts[i];
    if (In(kCriticalAttributes, p)) {
      return {false, Severity::kCritical,
              "attribute path reaches '" + std::string(p) + "'"};
    }
    if (p.size() > 4 && p.substr(0, 2) == "__" && p.substr(p.size() - 2) == "__") {
      return {false, Severity::kCritical,
              "attribute path reaches Python internals ('" + std::string(p) + "')"};
    }
  }
  j.allowed = false;
  j.severity = Severity::kMedium;
  j.reason = "not on the allow-list for model data";
  return j;
}

}  // namespace sigil::scanner
