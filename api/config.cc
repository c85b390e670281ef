#include "api/config.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/fs.h"
#include "core/json.h"

namespace sigil::api {
namespace {

core::Result<uint64_t> ParseSize(const std::string& name, const std::string& text) {
  if (text.empty() || text.size() > 19) return core::InvalidArgument(name + " must be a byte count");
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return core::InvalidArgument(name + " must be a byte count: " + text);
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

// A decimal number in [min, max] ("0.5", "50").
core::Result<double> ParseNumber(const std::string& name, const std::string& text, double min, double max) {
  char* end = nullptr;
  double v = text.empty() || text.size() > 32 ? -1 : std::strtod(text.c_str(), &end);
  if (end == nullptr || *end != '\0' || !std::isfinite(v) || v < min || v > max) {
    return core::InvalidArgument(name + " must be a number in [" + core::DumpJson(min) + ", " +
                                 core::DumpJson(max) + "], got '" + text + "'");
  }
  return v;
}

// Applies one setting by its config-file name.
core::Status Apply(Config* c, const std::string& key, const std::string& value) {
  if (key == "data") {
    if (value.empty()) return core::InvalidArgument("data directory must not be empty");
    c->data_dir = value;
  } else if (key == "listen") {
    return ParseListen(value, &c->host, &c->port);
  } else if (key == "max_connections") {
    ASSIGN_OR_RETURN(uint64_t n, ParseSize("max_connections", value));
    if (n < 1 || n > 1'000'000) return core::InvalidArgument("max_connections must be in [1, 1000000]");
    c->max_connections = static_cast<size_t>(n);
  } else if (key == "chunk_max") {
    ASSIGN_OR_RETURN(uint64_t n, ParseSize("chunk_max", value));
    if (n < 4096 || n > (256ull << 20)) {
      return core::InvalidArgument("chunk_max must be in [4096, 268435456]");
    }
    c->chunk_max = n;
  } else if (key == "min_free_space") {
    ASSIGN_OR_RETURN(c->min_free_space, ParseSize("min_free_space", value));
  } else if (key == "session_max") {
    ASSIGN_OR_RETURN(c->session_max, ParseSize("session_max", value));
  } else if (key == "upload_expiry") {
    ASSIGN_OR_RETURN(c->upload_expiry_micros, core::ParseDuration(value));
  } else if (key == "gc_grace") {
    ASSIGN_OR_RETURN(c->gc_grace_micros, core::ParseDuration(value));
  } else if (key == "log_origin") {
    if (value.empty() || value.find_first_of(" +\n") != std::string::npos) {
      return core::InvalidArgument("log_origin must be non-empty without spaces or '+'");
    }
    c->log_origin = value;
  } else if (key == "eval_jobs") {
    ASSIGN_OR_RETURN(uint64_t n, ParseSize("eval_jobs", value));
    if (n < 1 || n > 64) return core::InvalidArgument("eval_jobs must be in [1, 64]");
    c->eval_jobs = static_cast<int>(n);
  } else if (key == "validator") {
    if (value.empty()) return core::InvalidArgument("validator must name a program");
    c->validator = value;
  } else if (key == "stats_backend") {
    if (value != "auto" && value != "cpu" && value != "cuda") {
      return core::InvalidArgument("stats_backend must be auto, cpu or cuda");
    }
    c->stats_backend = value;
  } else if (key == "tls_cert" || key == "tls_key") {
    if (value.empty()) return core::InvalidArgument(key + " must name a PEM file");
    (key == "tls_cert" ? c->tls_cert : c->tls_key) = value;
  } else if (key == "rate_limit") {
    ASSIGN_OR_RETURN(c->rate_limit, ParseNumber("rate_limit", value, 0, 1e6));
  } else if (key == "rate_burst") {
    ASSIGN_OR_RETURN(c->rate_burst, ParseNumber("rate_burst", value, 1, 1e9));
  } else if (key == "uploads_per_token") {
    ASSIGN_OR_RETURN(c->uploads_per_token, ParseSize("uploads_per_token", value));
  } else if (key == "auth") {
    if (value != "on" && value != "off") return core::InvalidArgument("auth must be on or off");
    c->auth = value;
  } else if (key == "bootstrap_token_file") {
    if (value.empty()) return core::InvalidArgument("bootstrap_token_file must name a file");
    c->bootstrap_token_file = value;
  } else if (key == "site" || key == "region") {
    if (value.empty() || value.size() > 128 ||
        value.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_.") != std::string::npos) {
      return core::InvalidArgument(key + " must be 1-128 of a-z 0-9 - _ .");
    }
    (key == "site" ? c->site : c->region) = value;
  } else if (key == "git_mirrors" || key == "peer_logs") {
    if (value.empty()) return core::InvalidArgument(key + " must name a path");
    (key == "git_mirrors" ? c->git_mirrors : c->peer_logs) = value;
  } else {
    return core::InvalidArgument("unknown setting '" + key + "'");
  }
  return core::OkStatus();
}

const std::map<std::string, std::string>& EnvNames() {
  static const std::map<std::string, std::string> kNames = {
      {"SIGIL_DATA", "data"},           {"SIGIL_LISTEN", "listen"},
      {"SIGIL_MAX_CONNECTIONS", "max_connections"},     {"SIGIL_CHUNK_MAX", "chunk_max"},
      {"SIGIL_SESSION_MAX", "session_max"}, {"SIGIL_MIN_FREE_SPACE", "min_free_space"}, {"SIGIL_UPLOAD_EXPIRY", "upload_expiry"},
      {"SIGIL_GC_GRACE", "gc_grace"},       {"SIGIL_LOG_ORIGIN", "log_origin"},
      {"SIGIL_EVAL_JOBS", "eval_jobs"},     {"SIGIL_VALIDATOR", "validator"},
      {"SIGIL_STATS_BACKEND", "stats_backend"},
      {"SIGIL_AUTH", "auth"},               {"SIGIL_BOOTSTRAP_TOKEN_FILE", "bootstrap_token_file"},
      {"SIGIL_TLS_CERT", "tls_cert"},       {"SIGIL_TLS_KEY", "tls_key"},
      {"SIGIL_RATE_LIMIT", "rate_limit"},   {"SIGIL_RATE_BURST", "rate_burst"},
      {"SIGIL_UPLOADS_PER_TOKEN", "uploads_per_token"},
      {"SIGIL_SITE", "site"},               {"SIGIL_REGION", "region"},
      {"SIGIL_GIT_MIRRORS", "git_mirrors"}, {"SIGIL_PEER_LOGS", "peer_logs"},
  };
  return kNames;
}

core::Status ApplyFile(Config* c, const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, core::ReadFile(path, 1 << 20));
  ASSIGN_OR_RETURN(core::Json doc, core::ParseJson(text));
  if (!doc.is_object()) return core::InvalidArgument("config file must hold a JSON object");
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    std::string value;
    if (it.value().is_string()) {
      value = it.value().get<std::string>();
    } else if (it.value().is_number_unsigned()) {
      value = std::to_string(it.value().get<uint64_t>());
    } else if (it.value().is_number_float()) {
      value = core::DumpJson(it.value());
    } else {
      return core::InvalidArgument("config '" + it.key() + "' must be a string or a number");
    }
    RETURN_IF_ERROR(Apply(c, it.key(), value).Annotate(path));
  }
  return core::OkStatus();
}

}  // namespace

core::Status ParseListen(const std::string& text, std::string* host, uint16_t* port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return core::InvalidArgument("listen address must be HOST:PORT, got '" + text + "'");
  }
  std::string h = text.substr(0, colon);
  if (h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  auto p = ParseSize("port", text.substr(colon + 1));
  if (!p.ok() || *p > 65535) return core::InvalidArgument("bad port in '" + text + "'");
  *host = h;
  *port = static_cast<uint16_t>(*p);
  return core::OkStatus();
}

core::Result<Config> LoadConfig(const std::vector<std::string>& args,
                                const std::map<std::string, std::string>& env) {
  Config c;
  // The config file first, wherever it is named.
  std::string config_file;
  if (auto it = env.find("SIGIL_CONFIG"); it != env.end()) config_file = it->second;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) config_file = args[i + 1];
    if (args[i].rfind("--config=", 0) == 0) config_file = args[i].substr(9);
  }
  if (!config_file.empty()) RETURN_IF_ERROR(ApplyFile(&c, config_file));
  for (const auto& [var, key] : EnvNames()) {
    auto it = env.find(var);
    if (it != env.end() && !it->second.empty()) {
      RETURN_IF_ERROR(Apply(&c, key, it->second).Annotate(var));
    }
  }
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (arg == "-h" || arg == "--help") {
      c.show_help = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) return core::InvalidArgument("unexpected argument '" + arg + "'");
    std::string name = arg.substr(2);
    std::string value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else {
      if (i + 1 >= args.size()) return core::InvalidArgument("--" + name + " needs a value");
      value = args[++i];
    }
    if (name == "config") continue;
    std::string key = name;
    std::replace(key.begin(), key.end(), '-', '_');
    core::Status s = Apply(&c, key, value);
    if (!s.ok()) return core::InvalidArgument("--" + name + ": " + s.message());
  }
  if (c.tls_cert.empty() != c.tls_key.empty()) {
    return core::InvalidArgument("tls_cert and tls_key go together: set both (HTTPS) or neither");
  }
  return c;
}

std::string UsageText() {
  return R"(usage: sigild [options]

Serves the sigil model registry over HTTP.

options (each also from the environment variable shown, or a JSON config file):
  --config FILE           JSON object of the settings below   SIGIL_CONFIG
  --data DIR              data directory (default ./sigil-data) SIGIL_DATA
  --listen HOST:PORT      address (default 127.0.0.1:7070)     SIGIL_LISTEN
  --max-connections N     open client connections (default 16384) SIGIL_MAX_CONNECTIONS
  --chunk-max BYTES       largest upload chunk (default 33554432) SIGIL_CHUNK_MAX
  --session-max BYTES     largest blob one upload may build    SIGIL_SESSION_MAX
  --min-free-space BYTES  blob writes leave this much of the disk free, for
                          metadata (default 67108864; 0: none) SIGIL_MIN_FREE_SPACE
  --upload-expiry DUR     idle upload sessions expire (default 24h) SIGIL_UPLOAD_EXPIRY
  --gc-grace DUR          keep unreferenced blobs this young (default 1h) SIGIL_GC_GRACE
  --log-origin NAME       transparency log origin (default sigil/<hostname>) SIGIL_LOG_ORIGIN
  --eval-jobs N           evaluation/statistics jobs at once (default 1) SIGIL_EVAL_JOBS
  --validator PATH        the sigil-validator worker program (default: beside sigild,
                          or ../validator/ in a build tree)    SIGIL_VALIDATOR
  --stats-backend B       weight statistics on auto|cpu|cuda (default auto) SIGIL_STATS_BACKEND
  --tls-cert FILE         serve HTTPS with this PEM certificate (chain) SIGIL_TLS_CERT
  --tls-key FILE          and this PEM private key (both or neither) SIGIL_TLS_KEY
  --rate-limit N          requests per second per token or anonymous IP
                          (default 50; 0: no limit)            SIGIL_RATE_LIMIT
  --rate-burst N          requests allowed at once (default 100) SIGIL_RATE_BURST
  --uploads-per-token N   open upload sessions per token or anonymous IP
                          (default 8; 0: no limit)             SIGIL_UPLOADS_PER_TOKEN
  --auth on|off           require API tokens (default on; off: no
                          authentication at all, single user)  SIGIL_AUTH
  --bootstrap-token-file F  the first admin token (imported when no admin
                          token exists); without it one is made, printed once
                          and written to DATA/bootstrap-token  SIGIL_BOOTSTRAP_TOKEN_FILE
  --site NAME             this server's site, for residency rules SIGIL_SITE
  --region NAME           this server's region                 SIGIL_REGION
  --git-mirrors DIR       local git mirrors of training code, for provenance
                          commit rules                         SIGIL_GIT_MIRRORS
  --peer-logs FILE        log keys (C2SP note verifier keys, one per line) of
                          the sites whose bundles are imported SIGIL_PEER_LOGS
  -h, --help              this text

Config file keys: data, listen, max_connections, chunk_max, session_max, min_free_space,
upload_expiry, gc_grace, log_origin, eval_jobs, validator, stats_backend,
tls_cert, tls_key, rate_limit, rate_burst, uploads_per_token, auth,
bootstrap_token_file, site, region, git_mirrors, peer_logs. Durations look like 30s, 15m, 24h, 7d.
Later sources win: defaults < config file < environment < flags.
Server keys live in DATA/keys (created on first start; encrypted when
SIGIL_KEY_PASSPHRASE is set), the trust store in DATA/trust.json.
SIGHUP reloads the trust store; SIGTERM or SIGINT shut down cleanly.
)";
}

}  // namespace sigil::api
