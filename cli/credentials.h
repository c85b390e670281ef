// API tokens on the client: where they come from, where `sigil login` keeps
// them, and where they may be sent.
//
// A token comes from $SIGIL_TOKEN, else from the credentials file
// ($XDG_CONFIG_HOME/sigil/credentials.json, else
// ~/.config/sigil/credentials.json), keyed by server URL:
//   {"servers": {"http://127.0.0.1:7070": {"token": "sgl_..."}}}
// The file is created 0600 (written whole to a 0600 temporary and renamed),
// its directory 0700.
//
// A token is never sent over plain http:// to a host that is not loopback
// (127.0.0.0/8, ::1, localhost): such a request fails before anything is
// sent, with kInvalidArgument reason INSECURE_TRANSPORT.
#pragma once

#include <string>

#include "core/status.h"

namespace sigil::cli {

// The credentials file's path ("" when neither XDG_CONFIG_HOME nor HOME is set).
std::string CredentialsPath();

// The token for server: $SIGIL_TOKEN, else the credentials file's entry, else
// "". Errors: kInvalidArgument CREDENTIALS_INVALID for a file that is not
// the JSON above.
core::Result<std::string> ResolveToken(const std::string& server);

// Stores token for server in the credentials file (other servers' entries
// are kept). Errors: the file system's; CREDENTIALS_INVALID as above.
core::Status SaveToken(const std::string& server, const std::string& token);

// Whether the URL's host is loopback: 127.0.0.0/8, ::1, or localhost.
bool IsLoopbackUrl(const std::string& url);

// OK unless a token would go over plain http to a non-loopback host.
core::Status CheckTokenTransport(const std::string& url);

}  // namespace sigil::cli
