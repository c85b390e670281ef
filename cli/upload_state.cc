#include "cli/upload_state.h"

#include <sys/stat.h>

#include <cstdlib>

#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "core/json.h"

namespace sigil::cli {

std::string UploadState::DefaultDir() {
  const char* xdg = std::getenv("XDG_STATE_HOME");
  if (xdg != nullptr && xdg[0] == '/') return core::JoinPath(xdg, "sigil");
  const char* home = std::getenv("HOME");
  if (home != nullptr && home[0] == '/') return core::JoinPath(home, ".local/state/sigil");
  return "";
}

std::string UploadState::PathFor(const std::string& server, const core::Digest& digest) const {
  // The server URL is hashed into the name: any characters, fixed length.
  std::string server_hash = core::Sha256::Of(server).Hex().substr(0, 16);
  return core::JoinPath(core::JoinPath(dir_, "uploads"), server_hash + "-" + digest.Hex());
}

std::optional<std::string> UploadState::Find(const std::string& server,
                                             const core::Digest& digest) const {
  auto text = core::ReadFile(PathFor(server, digest), 64 << 10);
  if (!text.ok()) return std::nullopt;
  auto json = core::ParseJson(*text);
  if (!json.ok()) return std::nullopt;
  auto s = core::GetString(*json, "server");
  auto d = core::GetString(*json, "digest");
  auto id = core::GetString(*json, "upload_id");
  if (!s.ok() || !d.ok() || !id.ok()) return std::nullopt;
  if (*s != server || *d != digest.ToString() || id->empty()) return std::nullopt;
  return *id;
}

core::Status UploadState::Save(const std::string& server, const core::Digest& digest,
                               const std::string& upload_id) {
  if (dir_.empty()) {
    return core::FailedPrecondition("no state directory (set XDG_STATE_HOME or HOME)");
  }
  std::string uploads = core::JoinPath(dir_, "uploads");
  RETURN_IF_ERROR(core::MakeDirs(dir_, 0700));
  RETURN_IF_ERROR(core::MakeDirs(uploads, 0700));
  core::Json entry = {{"server", server}, {"digest", digest.ToString()}, {"upload_id", upload_id}};
  return core::WriteFileAtomic(PathFor(server, digest), core::DumpJson(entry), 0600);
}

core::Status UploadState::Remove(const std::string& server, const core::Digest& digest) {
  return core::RemoveFile(PathFor(server, digest));
}

}  // namespace sigil::cli
