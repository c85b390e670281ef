// sigil: the command-line client of sigild. Parses arguments, runs one
// command from sigil_cli, prints its result, and maps failures to exit codes.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attest/model_signing.h"
#include "cli/access_command.h"
#include "cli/commands.h"
#include "cli/eval_command.h"
#include "cli/promote_command.h"
#include "cli/http_client.h"
#include "cli/keys_command.h"
#include "cli/progress.h"
#include "cli/pull.h"
#include "cli/push.h"
#include "cli/policy_command.h"
#include "cli/refs.h"
#include "cli/scan_command.h"
#include "cli/bundle_command.h"
#include "cli/sign_command.h"
#include "cli/upload_state.h"
#include "cli/verify_command.h"
#include "core/fs.h"
#include "core/json.h"

namespace sigil::cli {
namespace {

constexpr const char* kVersion = "0.1.0";

enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,
  kExitUsage = 2,
  kExitNotFound = 3,
  kExitConflict = 4,
  kExitUnreachable = 5,
};

constexpr const char* kHelp = R"(usage: sigil [OPTIONS] COMMAND [ARGS]

Commands:
  push PATH REPO:VERSION [--label KEY=VALUE]...
                          push a file or a directory (every regular file a
                          layer) as a new version; prints the manifest digest.
                          An interrupted push resumes when run again.
  pull REF DIR            download a version into DIR; every file is verified
                          before any is moved into place
  ls [REPO]               list repositories, or the versions of REPO
  inspect REF             print a version's JSON
  alias set REPO:ALIAS VERSION|DIGEST
                          point an alias at a version (admin: an override,
                          recorded in the alias's history; promoters use
                          `promote`)
  alias rm REPO:ALIAS     remove an alias
  rm REPO:VERSION         delete a version (and the aliases pointing at it)
  gc                      run garbage collection on the server
  scan PATH...            scan files or directories locally (offline) with
                          the server's checks; exit 1 if any file is blocked
                          or invalid

Evaluation (before promotion):
  eval REF --spec FILE [--wait] [--timeout SECONDS]
                          run the version's model on the spec's dataset on
                          the server (a sandboxed LibTorch worker, CUDA when
                          there is a GPU); with --wait print the checks and
                          metrics and exit 1 when a check fails
  stats FILE|REF [--parent FILE|REF]
                          weight statistics (NaN/Inf, min, max, mean, L2;
                          cosine and largest difference against a parent) of
                          a local safetensors/PyTorch file, or of a version's
                          weight files on the server; exit 1 on NaN or Inf

Promotion (a version moves to a stage when every policy passes):
  promote REF --to STAGE [--wait] [--timeout SECONDS]
                          request a promotion; with --wait print every
                          policy's rule table and, on PASS, the verification
                          summary (VSA) and its log index; exit 1 unless PASS
  history REPO --alias ALIAS [--limit N]
                          the alias's moves, newest first: when, by whom,
                          the version, via promotion/override/import/delete,
                          and the VSA

Signing and verification (keys: --passphrase-file F or $SIGIL_KEY_PASSPHRASE):
  key generate --type ecdsa-p256|ecdsa-p384|ed25519 --out NAME
                          write NAME.key (PKCS#8, 0600; encrypted with a
                          passphrase) and NAME.pub; prints the key id
  key server --trusted-keys FILE
                          add the server's attestation key and log key
                          (GET /api/v1/keys/server) to a trusted-keys file
  key trust PUB.pem --trusted-keys FILE [--name N] [--predicate-type T]...
            [--repository GLOB]...
                          add a public key to a trusted-keys file
  sign DIR --key K --out model.sig
                          OpenSSF model signature of a local model (offline)
  sign REF --key K        model signature over the version's files, attached
  attest REF --predicate-type T --predicate FILE --key K
                          attach a signed in-toto statement about the version
  push ... --provenance FILE --key K
                          after the push, attach FILE (SLSA provenance v1
                          predicate) signed with K
  pull REF DIR --verify --trusted-keys FILE
                          verify the version's evidence (signatures,
                          subjects, transparency log) before writing; keeps
                          it in DIR/.sigil/
  verify DIR --signature model.sig --key PUB.pem [--ignore-paths P]...
                          check a model signature offline
  verify DIR|REF --trusted-keys FILE
                          re-check a pulled DIR offline, or a version on the
                          server; exit 1 naming the failed check

Access control (tokens: $SIGIL_TOKEN, else the one `sigil login` stored for
the server in $XDG_CONFIG_HOME/sigil/credentials.json, mode 0600; never sent
over plain http:// to a host that is not loopback):
  login [--token-file F]  check a token (read from stdin, or F) against the
                          server and store it for that server
  token create --name N --role reader|pusher|promoter|admin --repos GLOB
               [--repos GLOB]... [--site S] [--region R] [--expires 30d]
                          make a token (admin); prints it once
  token ls                list tokens (never their secrets)
  token revoke NAME       revoke a token at once
  audit [--repo R] [--since RFC3339] [--action A]
                          the audit log (admin): every change and refusal
  access set REPO --anonymous-read true|false
                          allow or refuse pulls without a token (admin)

Air gap (bundle files: a tar in OCI image layout):
  export REF... --to REGION --out FILE [--since PREVIOUS_BUNDLE]
                          write the versions (an alias with the verification
                          summary that moved it), their attestations with
                          log proofs and every blob into FILE; --since leaves
                          out the blobs PREVIOUS_BUNDLE carried
  import FILE             check every blob of FILE, upload those the server
                          lacks and submit the bundle (admin); the server
                          verifies everything before it stores anything

Policies (JSON documents, stored in versions; docs/api.md "Policies"):
  policy put FILE         store FILE as a new version of the policy it names
                          (admin); the same bytes again store nothing
  policy get NAME [--version N]
                          print the policy's document (the latest version,
                          or version N); --json prints its record
  policy ls               the policies in force (the latest of each name)
  policy rm NAME          stop applying a policy (admin); its versions stay
  policy test FILE REF --stage STAGE
                          dry run: FILE's rules against the version's
                          evidence for STAGE, without storing FILE; prints
                          the rule table and exits 1 unless every rule passes

REF is REPO:VERSION, REPO:ALIAS or REPO@sha256:<hex>. A repository may
contain '/' and '.'; the ':' after the last '/' starts the tag.

Options (anywhere on the line):
  --server URL            server address (default $SIGIL_SERVER, else
                          http://127.0.0.1:7070)
  --cacert FILE           PEM CA certificate(s) to verify an https:// server
                          with instead of the system's (default $SIGIL_CACERT);
                          verification is never turned off
  --json                  machine-readable output on stdout
  --jobs N                parallel transfers (default 3)
  --retry-time SECONDS    how long to retry an unreachable or failing (5xx)
                          server without progress (default 60 for push and
                          pull, 5 for the other commands)
  --help                  this text
  --version               the client's version

Resume state of pushes is kept in $XDG_STATE_HOME/sigil (else
~/.local/state/sigil). A progress bar is drawn on stderr when it is a terminal.

Exit codes:
  0  success
  1  failure (including a digest that did not verify)
  2  usage error (bad arguments, malformed reference or label)
  3  not found (repository, version, alias, blob, local path)
  4  conflict (e.g. a version that already exists with other content)
  5  server unreachable (after retrying)
)";

struct Args {
  std::string server;
  bool json = false;
  int jobs = 3;
  int retry_seconds = -1;  // -1: the command's default
  std::vector<std::string> labels;
  std::vector<std::string> positional;
  bool verify = false;  // pull --verify
  bool wait = false;    // eval --wait
  // Options of the signing commands (--key, --out, ...), each given value.
  std::map<std::string, std::vector<std::string>> values;

  std::string Value(const std::string& name) const {
    auto it = values.find(name);
    return it == values.end() ? std::string() : it->second.back();
  }
  std::vector<std::string> All(const std::string& name) const {
    auto it = values.find(name);
    return it == values.end() ? std::vector<std::string>() : it->second;
  }
};

constexpr const char* kValueOptions[] = {
    "--type",      "--out",        "--passphrase-file", "--key",          "--predicate-type",
    "--predicate", "--provenance", "--signature",       "--ignore-paths", "--trusted-keys",
    "--name",      "--repository", "--spec",            "--parent",       "--timeout",
    "--role",      "--repos",      "--site",            "--region",       "--expires",
    "--token-file", "--repo",      "--since",           "--action",       "--anonymous-read",
    "--to",        "--stage",      "--alias",           "--limit"};

struct UsageError {
  std::string message;
};

int ExitFor(const core::Status& s) {
  if (s.reason() == "REFERENCE_INVALID" || s.reason() == "LABEL_INVALID" ||
      s.reason() == "INSECURE_TRANSPORT") {
    return kExitUsage;
  }
  switch (s.code()) {
    case core::Code::kOk: return kExitOk;
    case core::Code::kNotFound: return kExitNotFound;
    case core::Code::kAlreadyExists: return kExitConflict;
    case core::Code::kUnavailable: return kExitUnreachable;
    default: return kExitFailure;
  }
}

int Fail(const core::Status& s) {
  std::fprintf(stderr, "sigil: %s: %s\n", s.reason().c_str(), s.message().c_str());
  if (!s.detail().empty()) std::fprintf(stderr, "  detail: %s\n", s.detail().c_str());
  return ExitFor(s);
}

int Usage(const std::string& message) {
  std::fprintf(stderr, "sigil: %s\nRun 'sigil --help' for usage.\n", message.c_str());
  return kExitUsage;
}

std::optional<int> ParseInt(const std::string& text, int min, int max) {
  try {
    size_t used = 0;
    int v = std::stoi(text, &used);
    if (used != text.size() || v < min || v > max) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// Returns an exit code when the command line is already settled (--help,
// --version, a usage error).
std::optional<int> ParseArgs(int argc, char** argv, Args* args) {
  const char* env = std::getenv("SIGIL_SERVER");
  args->server = env != nullptr && env[0] != '\0' ? env : std::string(kDefaultServer);
  const char* cacert_env = std::getenv("SIGIL_CACERT");
  std::string cacert = cacert_env != nullptr ? cacert_env : "";
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const std::string& name) -> std::optional<std::string> {
      size_t eq = a.find('=');
      if (eq != std::string::npos) return a.substr(eq + 1);
      if (i + 1 >= argc) return std::nullopt;
      (void)name;
      return std::string(argv[++i]);
    };
    auto is = [&](const char* name) {
      return a == name || a.rfind(std::string(name) + "=", 0) == 0;
    };
    if (options_done || a.empty() || a[0] != '-' || a == "-") {
      args->positional.push_back(a);
    } else if (a == "--") {
      options_done = true;
    } else if (a == "--help" || a == "-h") {
      std::fputs(kHelp, stdout);
      return kExitOk;
    } else if (is("--version") && !args->positional.empty() && args->positional[0] == "policy") {
      // `policy get NAME --version N`: a policy's version, not the client's.
      auto v = value("--version");
      if (!v || v->empty()) return Usage("--version needs a policy version number");
      args->values["--version"].push_back(*v);
    } else if (a == "--version") {
      std::printf("sigil %s\n", kVersion);
      return kExitOk;
    } else if (a == "--json") {
      args->json = true;
    } else if (is("--server")) {
      auto v = value("--server");
      if (!v || v->empty()) return Usage("--server needs a URL");
      args->server = *v;
    } else if (is("--cacert")) {
      auto v = value("--cacert");
      if (!v || v->empty()) return Usage("--cacert needs a PEM file");
      cacert = *v;
    } else if (is("--label")) {
      auto v = value("--label");
      if (!v) return Usage("--label needs KEY=VALUE");
      args->labels.push_back(*v);
    } else if (is("--jobs")) {
      auto v = value("--jobs");
      auto n = v ? ParseInt(*v, 1, 64) : std::nullopt;
      if (!n) return Usage("--jobs needs a number from 1 to 64");
      args->jobs = *n;
    } else if (is("--retry-time")) {
      auto v = value("--retry-time");
      auto n = v ? ParseInt(*v, 0, 86400) : std::nullopt;
      if (!n) return Usage("--retry-time needs seconds (0 to 86400)");
      args->retry_seconds = *n;
    } else if (a == "--verify") {
      args->verify = true;
    } else if (a == "--wait") {
      args->wait = true;
    } else if (auto known = std::find_if(std::begin(kValueOptions), std::end(kValueOptions),
                                         [&](const char* o) { return is(o); });
               known != std::end(kValueOptions)) {
      auto v = value(*known);
      if (!v || v->empty()) return Usage(std::string(*known) + " needs a value");
      args->values[*known].push_back(*v);
    } else {
      return Usage("unknown option " + a);
    }
  }
  if (args->server.rfind("http://", 0) != 0 && args->server.rfind("https://", 0) != 0) {
    return Usage("--server must start with http:// or https://");
  }
  while (!args->server.empty() && args->server.back() == '/') args->server.pop_back();
  if (!cacert.empty()) {
    if (::access(cacert.c_str(), R_OK) != 0) {
      return Usage("--cacert " + cacert + ": " + std::strerror(errno));
    }
    SetDefaultCaFile(cacert);
  }
  return std::nullopt;
}

int PrintOut(const core::Result<std::string>& out) {
  if (!out.ok()) return Fail(out.status());
  std::fputs(out->c_str(), stdout);
  return kExitOk;
}

int RunPush(const Args& args) {
  const auto& p = args.positional;
  if (p.size() != 3) return Usage("push needs PATH REPO:VERSION");
  auto ref = ParseTagReference(p[2]);
  if (!ref.ok()) return Fail(ref.status());
  PushOptions options;
  options.server = args.server;
  options.jobs = args.jobs;
  options.retry_budget = std::chrono::seconds(args.retry_seconds < 0 ? 60 : args.retry_seconds);
  options.state_dir = UploadState::DefaultDir();
  options.progress = Progress::StderrIsTerminal();
  for (const std::string& l : args.labels) {
    core::Status s = ParseLabel(l, &options.labels);
    if (!s.ok()) return Fail(s);
  }
  std::optional<signing::PrivateKey> key;
  std::string provenance;
  if (!args.Value("--provenance").empty()) {
    if (args.Value("--key").empty()) return Usage("--provenance needs --key");
    auto k = LoadSigningKey(args.Value("--key"), args.Value("--passphrase-file"));
    if (!k.ok()) return Fail(k.status());
    key = std::move(*k);
    auto predicate = LoadProvenance(args.Value("--provenance"));
    if (!predicate.ok()) return Fail(predicate.status());
    provenance = std::move(*predicate);
  }
  auto r = Push(p[1], *ref, options);
  if (!r.ok()) return Fail(r.status());
  if (key) {
    HttpClient http(args.server);
    auto attached =
        AttachProvenance(http, ref->repository, r->digest, provenance, *key, options.retry_budget);
    if (!attached.ok()) return Fail(attached.status().Annotate("provenance of " + r->digest));
    std::fputs(attached->c_str(), stderr);
  }
  if (args.json) {
    nlohmann::json j = {{"repository", r->repository},     {"version", r->version},
                        {"digest", r->digest},             {"files", r->files},
                        {"blobs", r->blobs},               {"bytes_total", r->bytes_total},
                        {"bytes_uploaded", r->bytes_uploaded},
                        {"bytes_skipped", r->bytes_skipped},
                        {"bytes_resumed", r->bytes_resumed},
                        {"blobs_uploaded", r->blobs_uploaded},
                        {"blobs_skipped", r->blobs_skipped},
                        {"blobs_resumed", r->blobs_resumed}};
    std::printf("%s\n", core::DumpJson(j).c_str());
  } else {
    std::printf("%s\n", r->digest.c_str());
    if (options.progress) {
      std::fprintf(stderr, "pushed %s:%s: %llu files, %s sent, %s already there, %s resumed\n",
                   r->repository.c_str(), r->version.c_str(),
                   static_cast<unsigned long long>(r->files),
                   FormatBytes(r->bytes_uploaded).c_str(), FormatBytes(r->bytes_skipped).c_str(),
                   FormatBytes(r->bytes_resumed).c_str());
    }
  }
  return kExitOk;
}

int RunPull(const Args& args) {
  const auto& p = args.positional;
  if (p.size() != 3) return Usage("pull needs REF DIR");
  if (!args.labels.empty()) return Usage("--label is for push");
  auto ref = ParseReference(p[1]);
  if (!ref.ok()) return Fail(ref.status());
  PullOptions options;
  options.server = args.server;
  options.jobs = args.jobs;
  options.retry_budget = std::chrono::seconds(args.retry_seconds < 0 ? 60 : args.retry_seconds);
  options.progress = Progress::StderrIsTerminal();
  std::optional<TrustedKeys> trusted;
  std::string evidence, manifest;
  if (args.verify) {
    if (args.Value("--trusted-keys").empty())
      return Usage("pull --verify needs --trusted-keys FILE");
    auto t = TrustedKeys::Load(args.Value("--trusted-keys"));
    if (!t.ok()) return Fail(t.status());
    trusted = std::move(*t);
    options.before_download = [&](const std::string& manifest_bytes) -> core::Status {
      RETURN_IF_ERROR(RefuseEvidenceTitles(manifest_bytes));
      HttpClient http(args.server);
      ASSIGN_OR_RETURN(OnlineVerification v,
                       VerifyOnline(http, ref->repository, manifest_bytes, *trusted,
                                    DefaultCheckpointDir(), options.retry_budget));
      std::fputs(v.report.Format().c_str(), stderr);
      RETURN_IF_ERROR(v.report.ToStatus());
      evidence = std::move(v.evidence_json);
      manifest = manifest_bytes;
      return core::OkStatus();
    };
  }
  auto r = Pull(*ref, p[2], options);
  if (!r.ok()) return Fail(r.status());
  if (args.verify) {
    core::Status s = StoreEvidence(p[2], evidence, manifest);
    if (!s.ok()) return Fail(s);
  }
  if (args.json) {
    nlohmann::json j = {{"repository", r->repository},
                        {"version", r->version},
                        {"digest", r->digest},
                        {"files", r->files},
                        {"bytes_total", r->bytes_total},
                        {"bytes_downloaded", r->bytes_downloaded},
                        {"bytes_reused", r->bytes_reused}};
    std::printf("%s\n", core::DumpJson(j).c_str());
  } else {
    std::printf("pulled %s:%s (%s) into %s: %llu files, %s\n", r->repository.c_str(),
                r->version.c_str(), r->digest.c_str(), p[2].c_str(),
                static_cast<unsigned long long>(r->files), FormatBytes(r->bytes_total).c_str());
  }
  return kExitOk;
}

int PrintReport(const VerifyReport& report) {
  std::fputs(report.Format().c_str(), stdout);
  if (report.ok()) return kExitOk;
  const Check* failed = report.FirstFailure();
  std::fprintf(stderr, "sigil: VERIFY_FAILED: check '%s' failed: %s\n", failed->name.c_str(),
               failed->detail.c_str());
  return kExitFailure;
}

int RunKey(const Args& args) {
  const auto& p = args.positional;
  if (p.size() >= 2 && p[1] == "generate") {
    if (p.size() != 2 || args.Value("--out").empty()) return Usage("key generate needs --out NAME");
    auto type = ParseKeyType(args.Value("--type").empty() ? "ecdsa-p256" : args.Value("--type"));
    if (!type.ok()) return Fail(type.status());
    auto id = GenerateKeyFiles(*type, args.Value("--out"), args.Value("--passphrase-file"));
    if (!id.ok()) return Fail(id.status());
    std::printf("%s\n", id->c_str());
    return kExitOk;
  }
  if (p.size() >= 2 && p[1] == "server") {
    if (p.size() != 2 || args.Value("--trusted-keys").empty())
      return Usage("key server needs --trusted-keys FILE");
    HttpClient http(args.server);
    return PrintOut(
        TrustServerKeys(http, std::chrono::seconds(args.retry_seconds < 0 ? 5 : args.retry_seconds),
                        args.Value("--trusted-keys")));
  }
  if (p.size() >= 2 && p[1] == "trust") {
    if (p.size() != 3 || args.Value("--trusted-keys").empty()) {
      return Usage("key trust needs PUB.pem --trusted-keys FILE");
    }
    auto types = args.All("--predicate-type");
    auto repos = args.All("--repository");
    return PrintOut(TrustPublicKey(
        p[2], args.Value("--name"), types.empty() ? std::vector<std::string>{"*"} : types,
        repos.empty() ? std::vector<std::string>{"**"} : repos, args.Value("--trusted-keys")));
  }
  return Usage("key needs 'generate', 'server' or 'trust'");
}

int RunSign(const Args& args) {
  const auto& p = args.positional;
  if (p.size() != 2 || args.Value("--key").empty()) return Usage("sign needs DIR|REF --key K");
  auto key = LoadSigningKey(args.Value("--key"), args.Value("--passphrase-file"));
  if (!key.ok()) return Fail(key.status());
  if (!args.Value("--out").empty()) {
    core::Status s = attest::SignModel(p[1], *key, args.Value("--out"));
    if (!s.ok()) return Fail(s);
    std::printf("signed %s into %s with key %s\n", p[1].c_str(), args.Value("--out").c_str(),
                key->key_id().c_str());
    return kExitOk;
  }
  auto ref = ParseReference(p[1]);
  if (!ref.ok()) return Fail(ref.status());
  HttpClient http(args.server);
  return PrintOut(SignRemoteModel(
      http, *ref, *key, std::chrono::seconds(args.retry_seconds < 0 ? 5 : args.retry_seconds)));
}

int RunAttest(const Args& args) {
  const auto& p = args.positional;
  if (p.size() != 2 || args.Value("--key").empty() || args.Value("--predicate").empty() ||
      args.Value("--predicate-type").empty()) {
    return Usage("attest needs REF --predicate-type T --predicate FILE --key K");
  }
  auto ref = ParseReference(p[1]);
  if (!ref.ok()) return Fail(ref.status());
  auto key = LoadSigningKey(args.Value("--key"), args.Value("--passphrase-file"));
  if (!key.ok()) return Fail(key.status());
  auto predicate = core::ReadFile(args.Value("--predicate"), 4 << 20);
  if (!predicate.ok()) return Fail(predicate.status());
  HttpClient http(args.server);
  return PrintOut(
      AttestRemote(http, *ref, args.Value("--predicate-type"), *predicate, *key,
                   std::chrono::seconds(args.retry_seconds < 0 ? 5 : args.retry_seconds)));
}

int RunVerify(const Args& args) {
  const auto& p = args.positional;
  if (p.size() != 2) return Usage("verify needs DIR or REF");
  if (!args.Value("--signature").empty()) {
    if (args.Value("--key").empty()) return Usage("verify --signature needs --key PUB.pem");
    auto key = signing::LoadPublicKey(args.Value("--key"));
    if (!key.ok()) return Fail(key.status());
    return PrintReport(
        VerifyModelSignature(p[1], args.Value("--signature"), *key, args.All("--ignore-paths")));
  }
  if (args.Value("--trusted-keys").empty())
    return Usage("verify needs --trusted-keys FILE (or --signature)");
  auto trusted = TrustedKeys::Load(args.Value("--trusted-keys"));
  if (!trusted.ok()) return Fail(trusted.status());
  struct stat st {};
  if (::stat(p[1].c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return PrintReport(VerifyPulledDir(p[1], *trusted, DefaultCheckpointDir()));
  }
  auto ref = ParseReference(p[1]);
  if (!ref.ok()) return Fail(ref.status());
  HttpClient http(args.server);
  auto v = VerifyReference(http, *ref, *trusted, DefaultCheckpointDir(),
                           std::chrono::seconds(args.retry_seconds < 0 ? 5 : args.retry_seconds));
  if (!v.ok()) return Fail(v.status());
  return PrintReport(v->report);
}

int RunScan(const Args& args) {
  const auto& p = args.positional;
  if (p.size() < 2) return Usage("scan needs at least one PATH");
  auto r = ScanPaths(std::vector<std::string>(p.begin() + 1, p.end()));
  if (!r.ok()) return Fail(r.status());
  std::fputs((args.json ? FormatScanJson(*r) : FormatScanTable(*r)).c_str(), stdout);
  return r->clean ? kExitOk : kExitFailure;
}

// How a job command follows its job; nullopt when --timeout is not seconds.
std::optional<JobWait> WaitOptions(const Args& args) {
  JobWait w;
  w.json = args.json;
  w.wait = args.wait;
  w.retry_budget = std::chrono::seconds(args.retry_seconds < 0 ? 5 : args.retry_seconds);
  if (!args.Value("--timeout").empty()) {
    auto n = ParseInt(args.Value("--timeout"), 1, 7 * 86400);
    if (!n) return std::nullopt;
    w.limit = std::chrono::seconds(*n);
  }
  return w;
}

int RunEval(const Args& args) {
  const auto& p = args.positional;
  if (p.size() != 2 || args.Value("--spec").empty()) return Usage("eval needs REF --spec FILE");
  auto ref = ParseReference(p[1]);
  if (!ref.ok()) return Fail(ref.status());
  std::optional<JobWait> wait = WaitOptions(args);
  if (!wait) return Usage("--timeout needs seconds");
  HttpClient http(args.server);
  auto out = EvaluateRemote(http, *ref, args.Value("--spec"), *wait);
  if (!out.ok()) return Fail(out.status());
  std::fputs(out->output.c_str(), stdout);
  return !out->finished || out->passed ? kExitOk : kExitFailure;
}

int RunPromote(const Args& args) {
  const auto& p = args.positional;
  if (p.size() != 2 || args.Value("--to").empty()) return Usage("promote needs REF --to STAGE");
  auto ref = ParseReference(p[1]);
  if (!ref.ok()) return Fail(ref.status());
  std::optional<JobWait> wait = WaitOptions(args);
  if (!wait) return Usage("--timeout needs seconds");
  HttpClient http(args.server);
  auto out = PromoteRemote(http, *ref, args.Value("--to"), *wait);
  if (!out.ok()) return Fail(out.status());
  std::fputs(out->output.c_str(), stdout);
  if (out->finished && !out->passed) std::fprintf(stderr, "sigil: PROMOTION_FAILED: the alias did not move\n");
  return !out->finished || out->passed ? kExitOk : kExitFailure;
}

int RunHistory(const Args& args) {
  const auto& p = args.positional;
  if (p.size() != 2 || args.Value("--alias").empty()) return Usage("history needs REPO --alias ALIAS");
  core::Status valid = ValidateRepository(p[1]);
  if (!valid.ok()) return Fail(valid);
  int limit = 20;
  if (!args.Value("--limit").empty()) {
    auto n = ParseInt(args.Value("--limit"), 1, 1000);
    if (!n) return Usage("--limit needs a number from 1 to 1000");
    limit = *n;
  }
  HttpClient http(args.server);
  return PrintOut(AliasHistoryRemote(http, p[1], args.Value("--alias"), limit, args.json,
                                     std::chrono::seconds(args.retry_seconds < 0 ? 5 : args.retry_seconds)));
}

int RunStats(const Args& args) {
  const auto& p = args.positional;
  if (p.size() != 2) return Usage("stats needs FILE or REF");
  std::string parent = args.Value("--parent");
  core::Result<JobOutcome> out = core::Internal("unset");
  struct stat st {};
  if (::stat(p[1].c_str(), &st) == 0) {
    out = StatsLocal(p[1], parent, args.json);
  } else {
    auto ref = ParseReference(p[1]);
    if (!ref.ok()) {
      return Fail(core::NotFound(p[1] + " is neither a local file nor a reference: " + ref.status().message()));
    }
    HttpClient http(args.server);
    std::optional<JobWait> wait = WaitOptions(args);
    if (!wait) return Usage("--timeout needs seconds");
    wait->wait = true;
    out = StatsRemote(http, *ref, parent, *wait);
  }
  if (!out.ok()) return Fail(out.status());
  std::fputs(out->output.c_str(), stdout);
  if (!out->passed) std::fprintf(stderr, "sigil: the weights hold NaN or Inf values\n");
  return out->passed ? kExitOk : kExitFailure;
}

int RunAccess(const Args& args) {
  const auto& p = args.positional;
  const std::string& cmd = p[0];
  auto budget = std::chrono::seconds(args.retry_seconds < 0 ? 5 : args.retry_seconds);
  if (cmd == "login") {
    if (p.size() != 1) return Usage("login takes no arguments (the token comes on stdin or --token-file)");
    std::string token;
    if (!args.Value("--token-file").empty()) {
      auto text = core::ReadFile(args.Value("--token-file"), 4096);
      if (!text.ok()) return Fail(text.status());
      token = *text;
    } else {
      if (::isatty(0)) std::fprintf(stderr, "token for %s: ", args.server.c_str());
      std::getline(std::cin, token);
    }
    return PrintOut(Login(args.server, token, budget));
  }
  HttpClient http(args.server);
  AccessCommands commands(&http, budget, args.json);
  if (cmd == "token") {
    if (p.size() == 2 && p[1] == "create") {
      TokenSpec spec;
      spec.name = args.Value("--name");
      spec.role = args.Value("--role");
      spec.repos = args.All("--repos");
      spec.site = args.Value("--site");
      spec.region = args.Value("--region");
      spec.expires = args.Value("--expires");
      if (spec.name.empty() || spec.role.empty() || spec.repos.empty()) {
        return Usage("token create needs --name N --role R --repos GLOB");
      }
      return PrintOut(commands.CreateToken(spec));
    }
    if (p.size() == 2 && p[1] == "ls") return PrintOut(commands.ListTokens());
    if (p.size() == 3 && p[1] == "revoke") return PrintOut(commands.RevokeToken(p[2]));
    return Usage("token needs 'create', 'ls' or 'revoke NAME'");
  }
  if (cmd == "audit") {
    if (p.size() != 1) return Usage("audit takes only --repo, --since and --action");
    return PrintOut(commands.Audit(args.Value("--repo"), args.Value("--since"), args.Value("--action")));
  }
  // access set REPO --anonymous-read true|false
  std::string value = args.Value("--anonymous-read");
  if (p.size() != 3 || p[1] != "set" || (value != "true" && value != "false")) {
    return Usage("access needs 'set REPO --anonymous-read true|false'");
  }
  core::Status s = ValidateRepository(p[2]);
  if (!s.ok()) return Fail(s);
  return PrintOut(commands.SetAnonymousRead(p[2], value == "true"));
}

int RunBundle(const Args& args) {
  const auto& p = args.positional;
  auto budget = std::chrono::seconds(args.retry_seconds < 0 ? 60 : args.retry_seconds);
  if (p[0] == "export") {
    BundleExportOptions o;
    o.server = args.server;
    o.to_region = args.Value("--to");
    o.out = args.Value("--out");
    o.since_bundle = args.Value("--since");
    o.retry_budget = budget;
    if (p.size() < 2 || o.to_region.empty() || o.out.empty()) {
      return Usage("export needs REF... --to REGION --out FILE");
    }
    // The server takes "repo:ref" (a digest ref as "repo:sha256:...").
    for (size_t i = 1; i < p.size(); ++i) {
      auto ref = ParseReference(p[i]);
      if (!ref.ok()) return Fail(ref.status());
      o.refs.push_back(ref->repository + ":" + ref->ref());
    }
    auto r = ExportBundle(o);
    if (!r.ok()) return Fail(r.status());
    if (args.json) {
      core::Json j = {{"file", o.out},           {"plan", r->plan_digest.ToString()},
                      {"versions", r->versions}, {"attestations", r->attestations},
                      {"aliases", r->aliases},   {"blobs", r->blobs},
                      {"bytes", r->bytes},       {"omitted", r->omitted},
                      {"notes", r->notes}};
      std::printf("%s\n", core::DumpJson(j).c_str());
    } else {
      std::printf("wrote %s: %zu version(s), %zu attestation(s), %zu alias(es), %llu blob(s) (%llu bytes), %llu omitted\n",
                  o.out.c_str(), r->versions, r->attestations, r->aliases,
                  static_cast<unsigned long long>(r->blobs), static_cast<unsigned long long>(r->bytes),
                  static_cast<unsigned long long>(r->omitted));
      for (const std::string& n : r->notes) std::printf("note: %s\n", n.c_str());
    }
    return kExitOk;
  }
  if (p.size() != 2) return Usage("import needs FILE");
  BundleImportOptions o;
  o.server = args.server;
  o.file = p[1];
  o.retry_budget = budget;
  auto r = ImportBundle(o);
  if (!r.ok()) return Fail(r.status());
  if (args.json) {
    core::Json j = r->summary;
    j["blobs_uploaded"] = r->blobs_uploaded;
    j["blobs_skipped"] = r->blobs_skipped;
    std::printf("%s\n", core::DumpJson(j).c_str());
  } else {
    std::printf("imported %s: %llu version(s), %llu attestation(s), %llu alias(es) moved%s; uploaded %llu blob(s), %llu already there\n",
                o.file.c_str(), static_cast<unsigned long long>(r->summary.value("versions_added", 0)),
                static_cast<unsigned long long>(r->summary.value("attestations_added", 0)),
                static_cast<unsigned long long>(r->summary.value("aliases_moved", 0)),
                r->summary.value("changed", false) ? "" : " (nothing new)",
                static_cast<unsigned long long>(r->blobs_uploaded),
                static_cast<unsigned long long>(r->blobs_skipped));
  }
  return kExitOk;
}

int RunPolicy(const Args& args) {
  const auto& p = args.positional;
  HttpClient http(args.server);
  PolicyCommands commands(&http, std::chrono::seconds(args.retry_seconds < 0 ? 5 : args.retry_seconds),
                          args.json);
  const std::string sub = p.size() >= 2 ? p[1] : "";
  if (sub != "get" && !args.Value("--version").empty()) return Usage("--version N is for policy get");
  if (sub != "test" && !args.Value("--stage").empty()) return Usage("--stage is for policy test");
  if (sub == "put") {
    if (p.size() != 3) return Usage("policy put needs FILE");
    return PrintOut(commands.Put(p[2]));
  }
  if (sub == "get") {
    if (p.size() != 3) return Usage("policy get needs NAME");
    uint64_t version = 0;
    if (!args.Value("--version").empty()) {
      auto n = ParseInt(args.Value("--version"), 1, 1'000'000'000);
      if (!n) return Usage("--version needs a policy version number (1 or more)");
      version = static_cast<uint64_t>(*n);
    }
    return PrintOut(commands.Get(p[2], version));
  }
  if (sub == "ls") {
    if (p.size() != 2) return Usage("policy ls takes no arguments");
    return PrintOut(commands.List());
  }
  if (sub == "rm") {
    if (p.size() != 3) return Usage("policy rm needs NAME");
    return PrintOut(commands.Remove(p[2]));
  }
  if (sub == "test") {
    if (p.size() != 4 || args.Value("--stage").empty()) return Usage("policy test needs FILE REF --stage STAGE");
    auto ref = ParseReference(p[3]);
    if (!ref.ok()) return Fail(ref.status());
    auto out = commands.Test(p[2], *ref, args.Value("--stage"));
    if (!out.ok()) return Fail(out.status());
    std::fputs(out->output.c_str(), stdout);
    if (!out->passed) std::fprintf(stderr, "sigil: POLICY_FAILED: the version does not pass the policy\n");
    return out->passed ? kExitOk : kExitFailure;
  }
  return Usage("policy needs 'put', 'get', 'ls', 'rm' or 'test'");
}

int Run(int argc, char** argv) {
  Args args;
  if (auto done = ParseArgs(argc, argv, &args)) return *done;
  if (args.positional.empty()) return Usage("no command given");
  const std::string& cmd = args.positional[0];
  const auto& p = args.positional;
  if (cmd == "push") return RunPush(args);
  if (!args.labels.empty()) return Usage("--label is for push");
  if (cmd == "pull") return RunPull(args);
  if (cmd == "scan") return RunScan(args);
  if (cmd == "key") return RunKey(args);
  if (cmd == "sign") return RunSign(args);
  if (cmd == "attest") return RunAttest(args);
  if (cmd == "verify") return RunVerify(args);
  if (cmd == "eval") return RunEval(args);
  if (cmd == "promote") return RunPromote(args);
  if (cmd == "history") return RunHistory(args);
  if (cmd == "stats") return RunStats(args);
  if (cmd == "export" || cmd == "import") return RunBundle(args);
  if (cmd == "login" || cmd == "token" || cmd == "audit" || cmd == "access") return RunAccess(args);
  if (cmd == "policy") return RunPolicy(args);

  HttpClient http(args.server);
  Commands commands(&http, std::chrono::seconds(args.retry_seconds < 0 ? 5 : args.retry_seconds),
                    args.json);
  if (cmd == "ls") {
    if (p.size() == 1) return PrintOut(commands.ListRepositories());
    if (p.size() == 2) {
      core::Status s = ValidateRepository(p[1]);
      if (!s.ok()) return Fail(s);
      return PrintOut(commands.ListVersions(p[1]));
    }
    return Usage("ls takes at most one REPO");
  }
  if (cmd == "inspect") {
    if (p.size() != 2) return Usage("inspect needs REF");
    auto ref = ParseReference(p[1]);
    if (!ref.ok()) return Fail(ref.status());
    return PrintOut(commands.Inspect(*ref));
  }
  if (cmd == "alias") {
    if (p.size() >= 2 && p[1] == "set") {
      if (p.size() != 4) return Usage("alias set needs REPO:ALIAS VERSION|DIGEST");
      auto ref = ParseTagReference(p[2]);
      if (!ref.ok()) return Fail(ref.status());
      return PrintOut(commands.SetAlias(*ref, p[3]));
    }
    if (p.size() >= 2 && p[1] == "rm") {
      if (p.size() != 3) return Usage("alias rm needs REPO:ALIAS");
      auto ref = ParseTagReference(p[2]);
      if (!ref.ok()) return Fail(ref.status());
      return PrintOut(commands.RemoveAlias(*ref));
    }
    return Usage("alias needs 'set' or 'rm'");
  }
  if (cmd == "rm") {
    if (p.size() != 2) return Usage("rm needs REPO:VERSION");
    auto ref = ParseTagReference(p[1]);
    if (!ref.ok()) return Fail(ref.status());
    return PrintOut(commands.RemoveVersion(*ref));
  }
  if (cmd == "gc") {
    if (p.size() != 1) return Usage("gc takes no arguments");
    return PrintOut(commands.CollectGarbage());
  }
  return Usage("unknown command '" + cmd + "'");
}

}  // namespace
}  // namespace sigil::cli

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  return sigil::cli::Run(argc, argv);
}
