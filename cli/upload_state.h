// Resume state of pushes: which upload session on which server holds the
// bytes of which blob, so that running an interrupted push again continues
// where the server's committed offset stands instead of starting over.
//
// One small file per (server, blob digest) in a 0700 directory, written
// atomically with mode 0600: {"server", "digest", "upload_id"}. Distinct
// blobs never share a file, so threads pushing different blobs need no
// locking. A file that is unreadable or names another server or digest is
// treated as absent (the server is asked anyway, and a stale id only costs a
// 404 and a new session).
#pragma once

#include <optional>
#include <string>

#include "core/digest.h"
#include "core/status.h"

namespace sigil::cli {

class UploadState {
 public:
  explicit UploadState(std::string dir) : dir_(std::move(dir)) {}

  // $XDG_STATE_HOME/sigil when set and absolute, else $HOME/.local/state/sigil;
  // "" when neither can be found.
  static std::string DefaultDir();

  const std::string& dir() const { return dir_; }
  // The file that holds the entry for (server, digest).
  std::string PathFor(const std::string& server, const core::Digest& digest) const;

  std::optional<std::string> Find(const std::string& server, const core::Digest& digest) const;
  // Creates the directory (0700) when needed.
  core::Status Save(const std::string& server, const core::Digest& digest,
                    const std::string& upload_id);
  // A missing entry is not an error.
  core::Status Remove(const std::string& server, const core::Digest& digest);

 private:
  std::string dir_;
};

}  // namespace sigil::cli
