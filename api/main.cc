// sigild: the sigil registry server.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/config.h"
#include "api/metrics.h"
#include "api/rate_limit.h"
#include "api/server.h"
#include "api/server_keys.h"
#include "api/service.h"
#include "core/clock.h"
#include "core/fs.h"
#include "core/log.h"
#include "attest/transparency_log.h"
#include "registry/access.h"
#include "registry/attestations.h"
#include "registry/bundles.h"
#include "registry/policy_store.h"
#include "registry/registry.h"
#include "registry/evaluations.h"
#include "registry/promotions.h"
#include "registry/scanning.h"
#include "validator/worker.h"
#include "signing/keys.h"
#include "storage/fs_blob_store.h"
#include "storage/rocks_meta_store.h"
#include "storage/uploads.h"

extern char** environ;

namespace sigil::api {
namespace {

std::map<std::string, std::string> SigilEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    if (entry.rfind("SIGIL_", 0) != 0) continue;
    auto eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return env;
}

// Periodic upkeep: expires idle upload sessions and refreshes the blob
// totals shown by /metrics. Stops promptly when asked.
class Housekeeper {
 public:
  Housekeeper(storage::UploadManager* uploads, storage::BlobStore* blobs, Metrics* metrics)
      : uploads_(uploads), blobs_(blobs), metrics_(metrics), thread_([this] { Run(); }) {}
  ~Housekeeper() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void Run() {
    int tick = 0;
    while (true) {
      RefreshBlobTotals();
      if (tick % 2 == 0) {
        auto expired = uploads_->ExpireIdle();
        if (!expired.ok()) {
          SIGIL_LOG(kWarn) << "expiring upload sessions: " << expired.status().ToString();
        } else if (*expired > 0) {
          SIGIL_LOG(kInfo) << "expired " << *expired << " idle upload sessions";
        }
      }
      ++tick;
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, std::chrono::seconds(30), [this] { return stop_; })) return;
    }
  }

  void RefreshBlobTotals() {
    uint64_t count = 0, bytes = 0;
    core::Status s = blobs_->ForEach([&](const storage::BlobInfo& info) {
      ++count;
      bytes += info.size;
      std::lock_guard<std::mutex> lock(mu_);
      return !stop_;
    });
    if (s.ok()) metrics_->SetBlobTotals(count, bytes);
  }

  storage::UploadManager* uploads_;
  storage::BlobStore* blobs_;
  Metrics* metrics_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// The first admin token, when no live admin token exists: the one in
// bootstrap_token_file, else a new one, shown once on stderr and written to
// DATA/bootstrap-token (0600) for an operator who started sigild in the
// background.
core::Status BootstrapAdmin(registry::AccessControl* access, const Config& config) {
  ASSIGN_OR_RETURN(bool has_admin, access->HasAdmin());
  if (has_admin) return core::OkStatus();
  if (!config.bootstrap_token_file.empty()) {
    ASSIGN_OR_RETURN(std::string text, core::ReadFile(config.bootstrap_token_file, 4096));
    size_t b = text.find_first_not_of(" \t\r\n");
    size_t e = text.find_last_not_of(" \t\r\n");
    std::string token = b == std::string::npos ? std::string() : text.substr(b, e - b + 1);
    auto imported = access->ImportToken("bootstrap", token);
    if (!imported.ok()) return imported.status().Annotate(config.bootstrap_token_file);
    SIGIL_LOG(kInfo) << "admin token 'bootstrap' imported from " << config.bootstrap_token_file;
    return core::OkStatus();
  }
  registry::NewToken spec;
  spec.name = "bootstrap";
  spec.role = registry::Role::kAdmin;
  spec.repos = {"**"};
  ASSIGN_OR_RETURN(registry::CreatedToken created, access->CreateToken(spec, "bootstrap"));
  std::string path = core::JoinPath(config.data_dir, "bootstrap-token");
  RETURN_IF_ERROR(core::WriteFileAtomic(path, created.token + "\n", 0600));
  std::fprintf(stderr,
               "bootstrap admin token (shown once): %s\n"
               "  also written to %s (mode 0600): store it elsewhere, then delete that file\n",
               created.token.c_str(), path.c_str());
  return core::OkStatus();
}

// The peer logs file (Config::peer_logs): one note verifier key per line
// ("origin+hex id+base64", as GET /api/v1/keys/server gives it under
// log.verifier), blank lines and '#' comments ignored.
core::Result<std::vector<attest::NoteVerifier>> LoadPeerLogs(const std::string& path) {
  std::vector<attest::NoteVerifier> out;
  if (path.empty()) return out;
  ASSIGN_OR_RETURN(std::string text, core::ReadFile(path, 1 << 20));
  size_t start = 0;
  int line_no = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    auto key = attest::ParseNoteVerifierKey(line.substr(first));
    if (!key.ok()) return key.status().Annotate(path + " line " + std::to_string(line_no));
    out.push_back(std::move(*key));
  }
  return out;
}

int Run(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto config = LoadConfig(args, SigilEnvironment());
  if (!config.ok()) {
    std::fprintf(stderr, "sigild: %s\n\n%s", config.status().message().c_str(), UsageText().c_str());
    return 2;
  }
  if (config->show_help) {
    std::fputs(UsageText().c_str(), stdout);
    return 0;
  }

  // A client that hangs up mid-download must not kill the server, and the
  // shutdown signals are taken synchronously by the main thread below: block
  // them before any thread starts so every thread inherits the mask.
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Every connection holds a descriptor (and a download a second one): the
  // usual soft limit of 1024 would refuse clients long before the host must.
  struct rlimit files {};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }

  const std::string& data = config->data_dir;
  core::Status s = core::MakeDirs(data, 0700);
  if (!s.ok()) {
    std::fprintf(stderr, "sigild: %s\n", s.ToString().c_str());
    return 1;
  }
  auto meta = storage::OpenRocksMetaStore(core::JoinPath(data, "meta"));
  if (!meta.ok()) {
    std::fprintf(stderr, "sigild: opening metadata: %s\n", meta.status().ToString().c_str());
    return 1;
  }
  storage::FsBlobStoreOptions blob_options;
  blob_options.reserve_bytes = config->min_free_space;
  auto blobs = storage::OpenFsBlobStore(data, blob_options);
  if (!blobs.ok()) {
    std::fprintf(stderr, "sigild: opening blob store: %s\n", blobs.status().ToString().c_str());
    return 1;
  }
  storage::UploadOptions upload_options;
  upload_options.chunk_max = config->chunk_max;
  upload_options.session_max = config->session_max;
  upload_options.expiry_micros = config->upload_expiry_micros;
  storage::UploadManager uploads(blobs->get(), meta->get(), core::Clock::Real(), upload_options);

  registry::RegistryOptions registry_options;
  registry_options.blobs = blobs->get();
  registry_options.meta = meta->get();
  registry_options.gc_grace_micros = config->gc_grace_micros;
  // New versions wait for their scan (registry/scanning.h).
  registry_options.new_version_state = registry::VersionState::kPending;
  registry::Registry registry(registry_options);

  auto passphrase = signing::ReadPassphrase();
  if (!passphrase.ok()) {
    std::fprintf(stderr, "sigild: key passphrase: %s\n", passphrase.status().ToString().c_str());
    return 1;
  }
  auto keys = LoadOrCreateServerKeys(core::JoinPath(data, "keys"), *passphrase);
  if (!keys.ok()) {
    std::fprintf(stderr, "sigild: server keys: %s\n", keys.status().ToString().c_str());
    return 1;
  }
  attest::TransparencyLogOptions log_options;
  log_options.meta = meta->get();
  log_options.origin = config->log_origin;
  if (log_options.origin.empty()) {
    char host[256] = {};
    if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof(host), "localhost");
    log_options.origin = std::string("sigil/") + host;
  }
  log_options.key = keys->log;
  auto log = attest::TransparencyLog::Open(log_options);
  if (!log.ok()) {
    std::fprintf(stderr, "sigild: transparency log: %s\n", log.status().ToString().c_str());
    return 1;
  }
  registry::AttestationOptions attestation_options;
  attestation_options.registry = &registry;
  attestation_options.blobs = blobs->get();
  attestation_options.meta = meta->get();
  attestation_options.log = log->get();
  attestation_options.server_key = keys->attestation;
  attestation_options.trust_path = core::JoinPath(data, "trust.json");
  auto attestations = registry::Attestations::Open(attestation_options);
  if (!attestations.ok()) {
    std::fprintf(stderr, "sigild: trust store: %s\n", attestations.status().ToString().c_str());
    return 1;
  }

  registry::ScanningOptions scanning_options;
  scanning_options.registry = &registry;
  scanning_options.blobs = blobs->get();
  scanning_options.meta = meta->get();
  scanning_options.attestations = attestations->get();
  scanning_options.server_key = keys->attestation;
  auto scanning = registry::Scanning::Start(std::move(scanning_options));
  if (!scanning.ok()) {
    std::fprintf(stderr, "sigild: scanning: %s\n", scanning.status().ToString().c_str());
    return 1;
  }

  registry::EvaluationsOptions evaluation_options;
  evaluation_options.registry = &registry;
  evaluation_options.blobs = blobs->get();
  evaluation_options.meta = meta->get();
  evaluation_options.attestations = attestations->get();
  evaluation_options.server_key = keys->attestation;
  evaluation_options.concurrency = static_cast<size_t>(config->eval_jobs);
  evaluation_options.worker_executable =
      config->validator.empty() ? validator::FindWorkerExecutable() : config->validator;
  evaluation_options.scratch_dir = core::JoinPath(data, "scratch");
  evaluation_options.stats.backend = config->stats_backend == "cpu"    ? validator::Backend::kCpu
                                     : config->stats_backend == "cuda" ? validator::Backend::kCuda
                                                                       : validator::Backend::kAuto;
  if (evaluation_options.worker_executable.empty()) {
    SIGIL_LOG(kWarn) << "no sigil-validator program found: evaluations will fail (set --validator)";
  }
  // Scratch directories of workers that died with the last run.
  core::RemoveTree(evaluation_options.scratch_dir).IgnoreError();
  auto evaluations = registry::Evaluations::Start(std::move(evaluation_options));
  if (!evaluations.ok()) {
    std::fprintf(stderr, "sigild: evaluations: %s\n", evaluations.status().ToString().c_str());
    return 1;
  }

  // The operator's policies: promotion gates and residency (store, pull,
  // export) against this server's site and region.
  registry::PolicyStoreOptions policy_options;
  policy_options.meta = meta->get();
  registry::PolicyStore policies(policy_options);

  // Promotion jobs: a version moves to a stage when the policies pass.
  registry::PromotionsOptions promotion_options;
  promotion_options.sources.registry = &registry;
  promotion_options.sources.blobs = blobs->get();
  promotion_options.sources.attestations = attestations->get();
  promotion_options.sources.scanning = scanning->get();
  promotion_options.sources.evaluations = evaluations->get();
  promotion_options.sources.git_mirror_root = config->git_mirrors;
  promotion_options.meta = meta->get();
  promotion_options.policies = &policies;
  promotion_options.origin = log->get()->origin();
  promotion_options.server_key = keys->attestation;
  auto promotions = registry::Promotions::Start(std::move(promotion_options));
  if (!promotions.ok()) {
    std::fprintf(stderr, "sigild: promotions: %s\n", promotions.status().ToString().c_str());
    return 1;
  }

  auto peer_logs = LoadPeerLogs(config->peer_logs);
  if (!peer_logs.ok()) {
    std::fprintf(stderr, "sigild: peer logs: %s\n", peer_logs.status().ToString().c_str());
    return 1;
  }
  registry::BundlesOptions bundle_options;
  bundle_options.registry = &registry;
  bundle_options.blobs = blobs->get();
  bundle_options.meta = meta->get();
  bundle_options.attestations = attestations->get();
  bundle_options.log = log->get();
  bundle_options.policies = &policies;
  bundle_options.origin = log->get()->origin();
  bundle_options.site = config->site;
  bundle_options.region = config->region;
  bundle_options.peer_logs = std::move(*peer_logs);
  registry::Bundles bundles(std::move(bundle_options));
  // Imports a kill -9 cut short are completed before anything is served.
  auto recovered = bundles.Recover();
  if (!recovered.ok()) {
    std::fprintf(stderr, "sigild: bundle imports: %s\n", recovered.status().ToString().c_str());
    return 1;
  }
  for (const registry::VersionInfo& v : recovered->added) {
    if (v.state != registry::VersionState::kPending) continue;
    auto queued = scanning->get()->Enqueue(v.repo, v.version);
    if (!queued.ok()) SIGIL_LOG(kWarn) << "scan of imported " << v.repo << ":" << v.version << ": " << queued.status().ToString();
  }

  std::unique_ptr<registry::AccessControl> access;
  if (config->auth == "off") {
    SIGIL_LOG(kWarn) << "auth is off: every request is served without a token (single-user setups only)";
  } else {
    registry::AccessOptions access_options;
    access_options.meta = meta->get();
    access_options.log = log->get();
    auto opened = registry::AccessControl::Open(access_options);
    if (!opened.ok()) {
      std::fprintf(stderr, "sigild: access control: %s\n", opened.status().ToString().c_str());
      return 1;
    }
    access = std::move(*opened);
    s = BootstrapAdmin(access.get(), *config);
    if (!s.ok()) {
      std::fprintf(stderr, "sigild: bootstrap token: %s\n", s.ToString().c_str());
      return 1;
    }
  }

  Metrics metrics;
  ServiceOptions service_options;
  service_options.registry = &registry;
  service_options.uploads = &uploads;
  service_options.blobs = blobs->get();
  service_options.meta = meta->get();
  service_options.metrics = &metrics;
  service_options.attestations = attestations->get();
  service_options.log = log->get();
  service_options.scanning = scanning->get();
  service_options.evaluations = evaluations->get();
  service_options.access = access.get();
  service_options.bundles = &bundles;
  service_options.policies = &policies;
  service_options.promotions = promotions->get();
  service_options.site = config->site;
  service_options.region = config->region;
  LimitOptions limit_options;
  limit_options.requests_per_second = config->rate_limit;
  limit_options.burst = config->rate_burst;
  limit_options.uploads_per_token = static_cast<size_t>(config->uploads_per_token);
  // Sessions also end by expiring; only an unknown id proves it.
  limit_options.upload_alive = [&uploads](const std::string& id) {
    auto info = uploads.Get(id);
    return info.ok() || info.status().code() != core::Code::kNotFound;
  };
  RateLimiter limiter(limit_options);
  service_options.limiter = &limiter;
  service_options.admit = [&limiter](const registry::Principal& principal, const HttpRequest& request) {
    return limiter.Admit(LimitKey(principal.token_id, request.remote_address));
  };
  Service service(service_options);

  ServerOptions server_options;
  server_options.host = config->host;
  server_options.port = config->port;
  // Upload bodies stream; others (JSON, and chunks sent with chunked
  // transfer coding) are buffered up to this.
  server_options.max_body = std::max<size_t>(config->chunk_max, 16 << 20);
  server_options.max_connections = config->max_connections;
  server_options.tls_cert = config->tls_cert;
  server_options.tls_key = config->tls_key;
  Server server(&service, &metrics, server_options);
  s = server.Start();
  if (!s.ok()) {
    std::fprintf(stderr, "sigild: %s\n", s.message().c_str());
    return 1;
  }
  Housekeeper housekeeper(&uploads, blobs->get(), &metrics);
  SIGIL_LOG(kInfo) << "sigild listening on " << (config->tls_cert.empty() ? "http" : "https") << "://"
                   << config->host << ":" << server.port()
                   << " with data in " << data;

  SIGIL_LOG(kInfo) << "transparency log " << (*log)->origin() << " at size " << (*log)->Size()
                   << "; attestation key " << keys->attestation.key_id();

  int sig = 0;
  while (true) {
    sigwait(&signals, &sig);
    if (sig != SIGHUP) break;
    core::Status reloaded = (*attestations)->ReloadTrust();
    if (reloaded.ok()) {
      SIGIL_LOG(kInfo) << "SIGHUP: trust store reloaded (" << (*attestations)->trust()->keys().size()
                       << " keys)";
    } else {
      SIGIL_LOG(kWarn) << "SIGHUP: trust store not reloaded: " << reloaded.ToString();
    }
  }
  SIGIL_LOG(kInfo) << "signal " << sig << ": shutting down";
  server.Shutdown();
  return 0;
}

}  // namespace
}  // namespace sigil::api

int main(int argc, char** argv) { return sigil::api::Run(argc, argv); }
