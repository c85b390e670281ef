// sigild's configuration: defaults, then a JSON config file, then SIGIL_*
// environment variables, then command-line flags (later wins).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace sigil::api {

struct Config {
  std::string data_dir = "./sigil-data";
  std::string host = "127.0.0.1";
  uint16_t port = 7070;
  size_t max_connections = 16384;  // one thread each
  uint64_t chunk_max = 32ull << 20;
  uint64_t session_max = 1ull << 40;
  // Bytes of the data directory's filesystem that blob writes leave free, so
  // metadata (deletes included) can still be written on a full disk.
  uint64_t min_free_space = 64ull << 20;
  int64_t upload_expiry_micros = 24ll * 3600 * 1'000'000;
  int64_t gc_grace_micros = 3600ll * 1'000'000;
  // Transparency log origin (also the checkpoint signer's name); empty
  // means "sigil/<hostname>".
  std::string log_origin;
  // Evaluation and statistics jobs run at once.
  int eval_jobs = 1;
  // The sigil-validator program; empty: the one installed beside sigild.
  std::string validator;
  // Weight statistics: "auto" (CUDA when a GPU is present), "cpu", "cuda".
  std::string stats_backend = "auto";
  // HTTPS: a PEM certificate (chain) and its private key; both or neither.
  std::string tls_cert;
  std::string tls_key;
  // Per-caller limits (api/rate_limit.h): requests per second (0: off),
  // burst, and open upload sessions (0: off).
  double rate_limit = 50;
  double rate_burst = 100;
  uint64_t uploads_per_token = 8;
  // Authentication: "on" (every request needs a token, except health,
  // metrics, the log checkpoint and the server keys) or "off" (none at all:
  // a single-user laptop).
  std::string auth = "on";
  // A file holding the first admin token, imported as "bootstrap" when no
  // live admin token exists; without it sigild makes one, prints it once
  // and writes it to DATA/bootstrap-token (0600).
  std::string bootstrap_token_file;
  // Where this server is (residency rules match either): a site name such
  // as "eu-health-1" and a region such as "eu-west". Empty: unplaced, and
  // every residency store rule refuses pushes here.
  std::string site;
  std::string region;
  // Root of the local git mirrors provenance commit rules are checked in
  // (attest/git_mirror.h); empty: commit rules fail.
  std::string git_mirrors;
  // A file of C2SP note verifier keys ("origin+hash+base64", one per line,
  // '#' comments): the transparency logs of sites whose bundles this server
  // imports. Empty: no bundle imports.
  std::string peer_logs;
  bool show_help = false;
};

// "host:port" ("[::1]:7070" for IPv6).
core::Status ParseListen(const std::string& text, std::string* host, uint16_t* port);

// args excludes argv[0]; env maps SIGIL_* names to values.
core::Result<Config> LoadConfig(const std::vector<std::string>& args,
                                const std::map<std::string, std::string>& env);

std::string UsageText();

}  // namespace sigil::api
