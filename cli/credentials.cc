#include "cli/credentials.h"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <cctype>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "core/json.h"

namespace sigil::cli {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

core::Status Invalid(const std::string& path, const std::string& why) {
  return core::InvalidArgument(path + ": " + why + " (expected {\"servers\": {URL: {\"token\": ...}}})",
                               "CREDENTIALS_INVALID");
}

// The file's JSON, or an empty object when there is no file.
core::Result<core::Json> LoadCredentials(const std::string& path) {
  if (path.empty() || !core::PathExists(path)) return core::Json::object();
  ASSIGN_OR_RETURN(std::string text, core::ReadFile(path, 1 << 20));
  auto doc = core::ParseJson(text);
  if (!doc.ok()) return Invalid(path, doc.status().message());
  if (!doc->is_object()) return Invalid(path, "not a JSON object");
  if (doc->contains("servers") && !(*doc)["servers"].is_object()) return Invalid(path, "'servers' is not an object");
  return *doc;
}

std::string Normalize(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

// The host of "scheme://[userinfo@]host[:port][/...]", brackets removed.
std::string UrlHost(const std::string& url) {
  size_t start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  size_t end = url.find_first_of("/?#", start);
  std::string authority = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (size_t at = authority.rfind('@'); at != std::string::npos) authority = authority.substr(at + 1);
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    return close == std::string::npos ? authority : authority.substr(1, close - 1);
  }
  return authority.substr(0, authority.find(':'));
}

}  // namespace

std::string CredentialsPath() {
  std::string base = Env("XDG_CONFIG_HOME");
  if (base.empty()) {
    std::string home = Env("HOME");
    if (home.empty()) return "";
    base = core::JoinPath(home, ".config");
  }
  return core::JoinPath(core::JoinPath(base, "sigil"), "credentials.json");
}

core::Result<std::string> ResolveToken(const std::string& server) {
  std::string env = Env("SIGIL_TOKEN");
  if (!env.empty()) return env;
  std::string path = CredentialsPath();
  ASSIGN_OR_RETURN(core::Json doc, LoadCredentials(path));
  if (!doc.contains("servers")) return std::string();
  const core::Json& servers = doc["servers"];
  auto it = servers.find(Normalize(server));
  if (it == servers.end()) return std::string();
  if (!it->is_object() || !it->contains("token") || !(*it)["token"].is_string()) {
    return Invalid(path, "the entry for " + Normalize(server) + " has no string 'token'");
  }
  return (*it)["token"].get<std::string>();
}

core::Status SaveToken(const std::string& server, const std::string& token) {
  std::string path = CredentialsPath();
  if (path.empty()) return core::FailedPrecondition("neither XDG_CONFIG_HOME nor HOME is set");
  std::string dir = core::DirName(path);
  RETURN_IF_ERROR(core::MakeDirs(dir, 0700));
  // An existing directory keeps its mode unless it is too open.
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0 && (st.st_mode & 077) != 0) ::chmod(dir.c_str(), 0700);
  ASSIGN_OR_RETURN(core::Json doc, LoadCredentials(path));
  if (!doc.contains("servers")) doc["servers"] = core::Json::object();
  doc["servers"][Normalize(server)] = {{"token", token}};
  return core::WriteFileAtomic(path, doc.dump(2) + "\n", 0600);
}

bool IsLoopbackUrl(const std::string& url) {
  std::string host = UrlHost(url);
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (host == "localhost") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

core::Status CheckTokenTransport(const std::string& url) {
  if (url.rfind("http://", 0) != 0 || IsLoopbackUrl(url)) return core::OkStatus();
  return core::InvalidArgument("refusing to send an API token over plain http:// to " + UrlHost(url) +
                                   " (not loopback): use https://, or a loopback address",
                               "INSECURE_TRANSPORT");
}

}  // namespace sigil::cli
