// Access control end to end: every route against every kind of caller
// (roles, repository scopes, missing, garbage, expired and revoked tokens),
// the audit log of each attempt, and the client's tokens (sigil login, token,
// audit, access; never a token over plain http to another host).
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/http_client.h"
#include "core/digest.h"
#include "core/fs.h"
#include "tests/integration/process.h"
#include "tests/support/temp_dir.h"

namespace sigil::testing {
namespace {

using cli::HttpClient;
using cli::HttpRequest;
using cli::HttpResponse;
using nlohmann::json;

constexpr const char* kIn = "health/model";    // in the scoped tokens' health/*
constexpr const char* kOut = "finance/model";  // outside it

struct Env {
  TempDir tmp;
  // Hundreds of requests a second: no rate limit here (it has its own tests).
  Sigild server{tmp.Sub("data"), {"--rate-limit", "0"}};
  std::map<std::string, std::string> env{{"XDG_STATE_HOME", tmp.Sub("state")}};
  HttpClient admin{"", TokenOptions()};

  Env() : admin(Start(server), TokenOptions()) {}
  static std::string Start(Sigild& s) {
    REQUIRE(s.Start());
    return s.url();
  }

  RunResult Sigil(std::vector<std::string> args, std::map<std::string, std::string> extra = {}) {
    args.insert(args.begin(), {"--server", server.url()});
    std::map<std::string, std::string> e = env;
    for (auto& [k, v] : extra) e[k] = v;
    RunResult r = RunSigil(args, e, tmp.path());
    INFO("sigil stderr: " << r.err);
    return r;
  }

  HttpResponse Do(HttpClient& http, const std::string& method, const std::string& path,
                  std::string_view body = {}) {
    auto r = http.Perform(HttpRequest{.method = method, .path = path, .body = body});
    REQUIRE(r.ok());
    return *r;
  }
  json Json(HttpClient& http, const std::string& method, const std::string& path, std::string_view body = {},
            long status = 200) {
    HttpResponse r = Do(http, method, path, body);
    INFO(method << " " << path << ": " << r.status << " " << r.body);
    REQUIRE(r.status == status);
    return json::parse(r.body);
  }

  // A token made through the API; returns its text.
  std::string MakeToken(const std::string& name, const std::string& role, const std::string& repos,
                        const std::string& expires = "") {
    json body = {{"name", name}, {"role", role}, {"repos", {repos}}};
    if (!expires.empty()) body["expires"] = expires;
    json created = Json(admin, "POST", "/api/v1/tokens", body.dump(), 201);
    CHECK(created["record"]["name"] == name);
    CHECK(created["record"]["role"] == role);
    CHECK_FALSE(created["record"].contains("hash_hex"));
    std::string token = created["token"];
    CHECK(token.rfind("sgl_", 0) == 0);
    return token;
  }

  void PushModel(const std::string& dir, const std::string& ref) {
    RunResult r = Sigil({"push", dir, ref});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
  }

  void WaitAvailable(const std::string& repo, const std::string& version) {
    std::string state;
    for (int i = 0; i < 400 && state != "available"; ++i) {
      if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(25));
      state = Json(admin, "GET", "/api/v1/models/" + repo + "/versions/" + version)["state"];
    }
    REQUIRE(state == "available");
  }

  // What a refused request must leave alone.
  json Snapshot() {
    json s = json::object();
    for (const char* repo : {kIn, kOut}) {
      std::string base = std::string("/api/v1/models/") + repo;
      json versions = json::array();
      json listed = Json(admin, "GET", base + "/versions");
      for (const auto& v : listed["versions"]) {
        versions.push_back({v["version"], v["digest"], v["labels"]});
      }
      json info = Json(admin, "GET", base);
      s[repo] = {{"versions", versions},
                 {"aliases", info["aliases"]},
                 {"labels", info["labels"]},
                 {"anonymous_read", Json(admin, "GET", base + "/access")["anonymous_read"]}};
    }
    json tokens = json::array();
    json listed = Json(admin, "GET", "/api/v1/tokens");
    for (const auto& t : listed["tokens"]) {
      tokens.push_back({t["name"], t["revoked"]});
    }
    s["tokens"] = tokens;
    s["trust"] = Json(admin, "GET", "/api/v1/trust/keys")["keys"].size();
    return s;
  }

  json LastAudit() {
    json entries = Json(admin, "GET", "/api/v1/audit?limit=1")["entries"];
    REQUIRE(entries.size() == 1);
    return entries[0];
  }

  uint64_t LogSize() {
    HttpResponse r = Do(admin, "GET", "/api/v1/log/checkpoint");
    REQUIRE(r.status == 200);
    // origin \n size \n root ...
    size_t a = r.body.find('\n');
    return std::stoull(r.body.substr(a + 1, r.body.find('\n', a + 1) - a - 1));
  }
};

enum class Need { kNone, kReader, kPusher, kPromoter, kAdmin };

struct Route {
  std::string method;
  std::string path;  // "{repo}" is replaced by the repository
  std::string body;
  Need need;
  std::string audit_action;  // what the audit log names it
  bool on_repo;              // scoped: out-of-scope tokens are refused
};

std::vector<Route> Routes(const std::string& blob_digest, const std::string& blob, const std::string& manifest) {
  const std::string v = "/api/v1/models/{repo}/versions/1";
  return {
      // Exempt: no token needed.
      {"GET", "/healthz", "", Need::kNone, "", false},
      {"GET", "/readyz", "", Need::kNone, "", false},
      {"GET", "/metrics", "", Need::kNone, "", false},
      {"GET", "/api/v1/log/checkpoint", "", Need::kNone, "", false},
      {"GET", "/api/v1/keys/server", "", Need::kNone, "", false},
      // Reads.
      {"GET", "/api/v1/models", "", Need::kReader, "pull", false},
      {"GET", "/api/v1/models/{repo}", "", Need::kReader, "pull", true},
      {"GET", "/api/v1/models/{repo}/access", "", Need::kReader, "pull", true},
      {"GET", "/api/v1/models/{repo}/versions", "", Need::kReader, "pull", true},
      {"GET", v, "", Need::kReader, "pull", true},
      {"GET", v + "/manifest", "", Need::kReader, "pull", true},
      {"GET", v + "/files/weights.bin", "", Need::kReader, "pull", true},
      {"HEAD", v + "/files/weights.bin", "", Need::kReader, "pull", true},
      {"GET", v + "/scan", "", Need::kReader, "pull", true},
      {"GET", v + "/attestations", "", Need::kReader, "pull", true},
      {"GET", v + "/evidence", "", Need::kReader, "pull", true},
      {"GET", "/api/v1/models/{repo}/aliases/prod/history", "", Need::kReader, "pull", true},
      {"POST", v + "/policy-test", R"({"document": "{}", "stage": "prod"})", Need::kReader, "policy.test", true},
      {"GET", v + "/evaluations", "", Need::kReader, "pull", true},
      {"GET", "/api/v1/models/{repo}/aliases", "", Need::kReader, "pull", true},
      {"GET", "/api/v1/models/{repo}/aliases/prod", "", Need::kReader, "pull", true},
      {"GET", "/api/v1/blobs/" + blob_digest, "", Need::kReader, "pull", false},
      {"HEAD", "/api/v1/blobs/" + blob_digest, "", Need::kReader, "pull", false},
      {"GET", "/api/v1/jobs", "", Need::kReader, "pull", false},
      {"GET", "/api/v1/jobs/no-such-job", "", Need::kReader, "pull", false},
      {"GET", "/api/v1/trust/keys", "", Need::kReader, "pull", false},
      {"GET", "/api/v1/log/entries/0", "", Need::kReader, "pull", false},
      {"GET", "/api/v1/log/proof/consistency?from=1", "", Need::kReader, "pull", false},
      {"GET", "/api/v1/log/proof/inclusion?index=0", "", Need::kReader, "pull", false},
      {"GET", "/api/v1/tokens/self", "", Need::kReader, "token.self", false},
      // Pushes.
      {"PUT", "/api/v1/blobs/" + blob_digest, blob, Need::kPusher, "push", false},
      {"POST", "/api/v1/uploads", "", Need::kPusher, "push", false},
      {"GET", "/api/v1/uploads/no-such-upload", "", Need::kPusher, "push", false},
      {"PUT", "/api/v1/models/{repo}/labels", R"({"labels": {"team": "nlp"}})", Need::kPusher, "push", true},
      {"PUT", "/api/v1/models/{repo}/versions/2", manifest, Need::kPusher, "push", true},
      {"PUT", v + "/labels", R"({"labels": {"stage": "test"}})", Need::kPusher, "push", true},
      {"POST", v + "/scan", "", Need::kPusher, "push", true},
      {"POST", v + "/sign", "", Need::kPusher, "push", true},
      {"POST", v + "/attestations", "{}", Need::kPusher, "push", true},
      {"POST", v + "/evaluations", R"({"model": 1})", Need::kPusher, "push", true},
      {"POST", "/api/v1/jobs/no-such-job/cancel", "", Need::kPusher, "push", false},
      // Promotion goes through promotion jobs (no policy is stored here:
      // they fail and move nothing); moving an alias by hand is an audited
      // admin override.
      {"POST", v + "/promotions", R"({"to": "prod"})", Need::kPromoter, "promote", true},
      {"PUT", "/api/v1/models/{repo}/aliases/prod", R"({"ref": "2"})", Need::kAdmin, "alias.override", true},
      // Administration.
      {"DELETE", "/api/v1/models/{repo}/aliases/doomed", "", Need::kAdmin, "delete", true},
      {"DELETE", "/api/v1/models/{repo}/versions/2", "", Need::kAdmin, "delete", true},
      {"PUT", "/api/v1/models/{repo}/access", R"({"anonymous_read": false})", Need::kAdmin, "access.set", true},
      {"POST", "/api/v1/gc", "", Need::kAdmin, "gc", false},
      {"POST", "/api/v1/trust/reload", "", Need::kAdmin, "trust.reload", false},
      {"POST", "/api/v1/trust/keys", R"({"public_key": "x"})", Need::kAdmin, "trust.add", false},
      {"POST", "/api/v1/trust/keys/abc/revoke", "", Need::kAdmin, "trust.revoke", false},
      {"GET", "/api/v1/tokens", "", Need::kAdmin, "token.list", false},
      {"POST", "/api/v1/tokens", R"({"name": "made", "role": "reader", "repos": ["x/*"]})", Need::kAdmin,
       "token.create", false},
      {"DELETE", "/api/v1/tokens/no-such-token", "", Need::kAdmin, "token.revoke", false},
      {"GET", "/api/v1/audit", "", Need::kAdmin, "audit-read", false},
  };
}

struct Caller {
  std::string name;   // the audit log's token name
  std::string token;  // "" for none
  Need role;          // kNone: not authenticated
  bool scoped;        // health/* only
};

void Replace(std::string* s, const std::string& from, const std::string& to) {
  for (size_t i = s->find(from); i != std::string::npos; i = s->find(from, i + to.size())) {
    s->replace(i, from.size(), to);
  }
}

TEST_CASE("every route against every caller: roles, scopes, bad tokens, and the audit log",
          "[integration][access]") {
  Env e;
  // Data: version 1 in both repositories, alias prod and doomed on each.
  std::string model = e.tmp.Sub("model");
  WriteRandomFile(model + "/weights.bin", 4096, 7);
  e.PushModel(model, std::string(kIn) + ":1");
  e.PushModel(model, std::string(kOut) + ":1");
  for (const char* repo : {kIn, kOut}) {
    e.WaitAvailable(repo, "1");
    for (const char* alias : {"prod", "doomed"}) {
      e.Json(e.admin, "PUT", std::string("/api/v1/models/") + repo + "/aliases/" + alias, R"({"ref": "1"})");
    }
  }
  std::string manifest =
      e.Do(e.admin, "GET", std::string("/api/v1/models/") + kIn + "/versions/1/manifest").body;
  std::string blob = "a small blob";
  std::string blob_digest = core::Sha256::Of(blob).ToString();
  e.Json(e.admin, "PUT", "/api/v1/blobs/" + blob_digest, blob, 201);

  std::string expired = e.MakeToken("expired", "admin", "**", "1s");
  auto expiry = std::chrono::steady_clock::now() + std::chrono::milliseconds(1200);
  std::string revoked = e.MakeToken("revoked", "admin", "**");
  HttpClient revoked_client(e.server.url(), TokenOptions(revoked));
  CHECK(e.Do(revoked_client, "GET", "/api/v1/tokens/self").status == 200);
  e.Json(e.admin, "DELETE", "/api/v1/tokens/revoked");
  // At once: no cache to wait out.
  CHECK(e.Do(revoked_client, "GET", "/api/v1/tokens/self").status == 401);

  std::vector<Caller> callers = {
      {"anonymous", "", Need::kNone, false},
      {"invalid-token", "sgl_0123456789abcdef_" + std::string(43, 'A'), Need::kNone, false},
      {"invalid-token", "not a token at all", Need::kNone, false},
      {"expired", expired, Need::kNone, false},
      {"revoked", revoked, Need::kNone, false},
      {"reader", e.MakeToken("reader", "reader", "health/*"), Need::kReader, true},
      {"pusher", e.MakeToken("pusher", "pusher", "health/*"), Need::kPusher, true},
      {"promoter", e.MakeToken("promoter", "promoter", "health/*"), Need::kPromoter, true},
      {"scoped-admin", e.MakeToken("scoped-admin", "admin", "health/*"), Need::kAdmin, true},
  };
  std::this_thread::sleep_until(expiry);
  {
    HttpClient expired_client(e.server.url(), TokenOptions(expired));
    HttpResponse r = e.Do(expired_client, "GET", "/api/v1/tokens/self");
    CHECK(r.status == 401);
    CHECK(r.Header("www-authenticate") == "Bearer realm=\"sigil\"");
  }

  uint64_t log_before = e.LogSize();
  int checked_audits = 0;
  for (const Caller& caller : callers) {
    HttpClient http(e.server.url(), TokenOptions(caller.token));
    for (const char* repo : {kOut, kIn}) {
      for (Route route : Routes(blob_digest, blob, manifest)) {
        if (!route.on_repo && std::string(repo) == kIn) continue;  // once is enough
        Replace(&route.path, "{repo}", repo);
        bool in_scope = !route.on_repo || !caller.scoped || std::string(repo) == kIn;
        long expect = 0;  // 0: allowed
        if (route.need != Need::kNone) {
          if (caller.role == Need::kNone) {
            expect = 401;
          } else if (!in_scope || caller.role < route.need) {
            expect = 403;
          }
        }
        bool changes = route.method != "GET" && route.method != "HEAD";
        json before = expect != 0 && changes ? e.Snapshot() : json();
        HttpResponse r = e.Do(http, route.method, route.path, route.body);
        INFO(caller.name << " (" << caller.token.substr(0, 12) << ") " << route.method << " " << route.path
                         << " -> " << r.status << " " << r.body.substr(0, 300));
        if (expect == 0) {
          CHECK(r.status != 401);
          CHECK(r.status != 403);
          CHECK(r.status < 500);
        } else {
          REQUIRE(r.status == expect);
          if (route.method != "HEAD") {
            json err = json::parse(r.body)["error"];
            if (expect == 403) {
              CHECK((err["code"] == "ROLE_INSUFFICIENT" || err["code"] == "REPOSITORY_OUT_OF_SCOPE"));
            }
          }
          if (expect == 401) CHECK(r.Header("www-authenticate") == "Bearer realm=\"sigil\"");
          if (changes) CHECK(e.Snapshot() == before);
        }
        if (route.need == Need::kNone) continue;  // exempt: not audited
        if (changes || expect != 0) {
          json entry = e.LastAudit();
          INFO("audit: " << entry.dump());
          CHECK(entry["token"] == caller.name);
          CHECK(entry["action"] == route.audit_action);
          CHECK(entry["method"] == route.method);
          CHECK(entry["status"] == r.status);
          CHECK(entry["result"] == (expect != 0 ? "refused" : "allowed"));
          if (route.on_repo) CHECK(entry["repository"] == repo);
          if (caller.role != Need::kNone) CHECK_FALSE(entry["role"].get<std::string>().empty());
          ++checked_audits;
        }
      }
    }
  }
  CHECK(checked_audits > 300);
  // Every audit entry is a transparency-log leaf.
  uint64_t log_after = e.LogSize();
  CHECK(log_after >= log_before + static_cast<uint64_t>(checked_audits));
  json last = e.LastAudit();
  uint64_t index = last["log_index"];
  CHECK(index < log_after);
  json leaf = e.Json(e.admin, "GET", "/api/v1/log/entries/" + std::to_string(index));
  CHECK(leaf.contains("leaf"));

  // The audit log filters by repository and action.
  json refused_out = e.Json(e.admin, "GET", std::string("/api/v1/audit?repo=") + "finance%2Fmodel&action=promote");
  REQUIRE_FALSE(refused_out["entries"].empty());
  for (const auto& entry : refused_out["entries"]) {
    CHECK(entry["repository"] == kOut);
    CHECK(entry["action"] == "promote");
  }
}

TEST_CASE("listings show only what a token may pull; anonymous reads follow the repository",
          "[integration][access]") {
  Env e;
  std::string model = e.tmp.Sub("model");
  WriteRandomFile(model + "/weights.bin", 1024, 3);
  e.PushModel(model, std::string(kIn) + ":1");
  e.PushModel(model, std::string(kOut) + ":1");
  HttpClient reader(e.server.url(), TokenOptions(e.MakeToken("reader", "reader", "health/*")));
  json repos = e.Json(reader, "GET", "/api/v1/models")["repositories"];
  REQUIRE(repos.size() == 1);
  CHECK(repos[0]["name"] == kIn);
  CHECK(e.Json(e.admin, "GET", "/api/v1/models")["repositories"].size() == 2);

  HttpClient anonymous(e.server.url(), TokenOptions(""));
  std::string path = std::string("/api/v1/models/") + kIn + "/versions/1";
  CHECK(e.Do(anonymous, "GET", path).status == 401);
  RunResult set = e.Sigil({"access", "set", kIn, "--anonymous-read", "true"});
  REQUIRE(set.exit_code == 0);
  CHECK(e.Do(anonymous, "GET", path).status == 200);
  CHECK(e.Do(anonymous, "GET", std::string("/api/v1/models/") + kOut + "/versions/1").status == 401);
  // Reads only.
  CHECK(e.Do(anonymous, "PUT", std::string("/api/v1/models/") + kIn + "/aliases/prod", R"({"ref": "1"})").status ==
        401);
  CHECK(e.LastAudit()["token"] == "anonymous");

  // sigil pull without a token: the blobs of an anonymous-read repository
  // are served, others are not.
  RunResult pulled = e.Sigil({"pull", std::string(kIn) + ":1", e.tmp.Sub("anon-pull")}, {{"SIGIL_TOKEN", ""}});
  CHECK(pulled.exit_code == 0);
  CHECK(ReadWholeFile(e.tmp.Sub("anon-pull") + "/weights.bin") == ReadWholeFile(model + "/weights.bin"));
  std::string blob = "/api/v1/blobs/" + FileDigest(model + "/weights.bin");
  CHECK(e.Do(anonymous, "GET", blob).status == 200);
  RunResult off = e.Sigil({"access", "set", kIn, "--anonymous-read", "false"});
  REQUIRE(off.exit_code == 0);
  CHECK(e.Do(anonymous, "GET", blob).status == 401);
}

TEST_CASE("sigil login, token, audit and access through the client", "[integration][access]") {
  Env e;
  std::string model = e.tmp.Sub("model");
  WriteRandomFile(model + "/weights.bin", 2048, 5);

  // An admin makes a pusher token for health/* with the client.
  RunResult created = e.Sigil({"token", "create", "--name", "ci", "--role", "pusher", "--repos", "health/*",
                               "--site", "hospital-a", "--expires", "30d"});
  REQUIRE(created.exit_code == 0);
  std::string token = created.out.substr(0, created.out.find('\n'));
  REQUIRE(token.rfind("sgl_", 0) == 0);

  // sigil login stores it 0600 (directory 0700), keyed by the server.
  std::string token_file = e.tmp.Sub("ci.token");
  WriteTextFile(token_file, token + "\n");
  std::map<std::string, std::string> as_ci = {{"SIGIL_TOKEN", ""}, {"XDG_CONFIG_HOME", e.tmp.Sub("ci-config")}};
  RunResult login = e.Sigil({"login", "--token-file", token_file}, as_ci);
  INFO(login.err);
  REQUIRE(login.exit_code == 0);
  CHECK(login.out.find("as ci") != std::string::npos);
  std::string credentials = e.tmp.Sub("ci-config") + "/sigil/credentials.json";
  struct stat st {};
  REQUIRE(::stat(credentials.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(::stat((e.tmp.Sub("ci-config") + "/sigil").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  CHECK(json::parse(ReadWholeFile(credentials))["servers"][e.server.url()]["token"] == token);

  // A wrong token is not stored.
  WriteTextFile(token_file, "sgl_0000000000000000_" + std::string(43, 'B'));
  RunResult bad_login = e.Sigil({"login", "--token-file", token_file},
                                {{"SIGIL_TOKEN", ""}, {"XDG_CONFIG_HOME", e.tmp.Sub("bad-config")}});
  CHECK(bad_login.exit_code == 1);
  CHECK_FALSE(core::PathExists(e.tmp.Sub("bad-config") + "/sigil/credentials.json"));

  // With the stored token: push in scope works, out of scope is refused.
  RunResult in = e.Sigil({"push", model, "health/model:1"}, as_ci);
  CHECK(in.exit_code == 0);
  RunResult out = e.Sigil({"--retry-time", "0", "push", model, "finance/model:1"}, as_ci);
  CHECK(out.exit_code == 1);
  CHECK(out.err.find("REPOSITORY_OUT_OF_SCOPE") != std::string::npos);
  // A pusher cannot promote or delete.
  RunResult promote = e.Sigil({"alias", "set", "health/model:prod", "1"}, as_ci);
  CHECK(promote.exit_code == 1);
  CHECK(promote.err.find("ROLE_INSUFFICIENT") != std::string::npos);
  RunResult remove = e.Sigil({"rm", "health/model:1"}, as_ci);
  CHECK(remove.exit_code == 1);
  // ... nor read the audit log.
  CHECK(e.Sigil({"audit"}, as_ci).exit_code == 1);

  // The admin sees each attempt.
  RunResult audit = e.Sigil({"audit", "--repo", "health/model"});
  REQUIRE(audit.exit_code == 0);
  INFO(audit.out);
  CHECK(audit.out.find("TOKEN") != std::string::npos);
  bool promote_refused = false, push_allowed = false;
  for (size_t a = 0, b; (b = audit.out.find('\n', a)) != std::string::npos; a = b + 1) {
    std::string line = audit.out.substr(a, b - a);
    if (line.find(" ci ") == std::string::npos) continue;
    CHECK(line.find("hospital-a") != std::string::npos);
    if (line.find("alias.override") != std::string::npos && line.find("refused") != std::string::npos) {
      promote_refused = true;
    }
    if (line.find("push") != std::string::npos && line.find("allowed") != std::string::npos) push_allowed = true;
  }
  CHECK(promote_refused);
  CHECK(push_allowed);
  RunResult refused_out = e.Sigil({"--json", "audit", "--repo", "finance/model", "--action", "push"});
  REQUIRE(refused_out.exit_code == 0);
  json entries = json::parse(refused_out.out)["entries"];
  REQUIRE_FALSE(entries.empty());
  CHECK(entries.back()["token"] == "ci");
  CHECK(entries.back()["result"] == "refused");

  // token ls shows it without its secret; revoke takes effect at once.
  RunResult ls = e.Sigil({"token", "ls"});
  REQUIRE(ls.exit_code == 0);
  CHECK(ls.out.find("ci") != std::string::npos);
  CHECK(ls.out.find(token) == std::string::npos);
  REQUIRE(e.Sigil({"token", "revoke", "ci"}).exit_code == 0);
  RunResult after = e.Sigil({"ls", "health/model"}, as_ci);
  CHECK(after.exit_code == 1);
  CHECK(after.err.find("TOKEN_REVOKED") != std::string::npos);

  // Every existing flow works with a token: pull with the admin's.
  RunResult pulled = e.Sigil({"pull", "health/model:1", e.tmp.Sub("pulled")});
  CHECK(pulled.exit_code == 0);
  CHECK(FileDigest(e.tmp.Sub("pulled/weights.bin")) == FileDigest(model + "/weights.bin"));
}

// A local address that is not loopback, if this machine has one.
std::string NonLoopbackAddress() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return "";
  std::string found;
  for (ifaddrs* i = list; i != nullptr && found.empty(); i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    auto* in = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
    if ((ntohl(in->sin_addr.s_addr) >> 24) == 127) continue;
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    found = text;
  }
  ::freeifaddrs(list);
  return found;
}

TEST_CASE("the client never sends a token over plain http to a host that is not loopback",
          "[integration][access]") {
  TempDir tmp;
  RunResult r = RunSigil({"--server", "http://example.invalid:7070", "ls"}, {{"SIGIL_TOKEN", TestToken()}},
                         tmp.path());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("INSECURE_TRANSPORT") != std::string::npos);

  // Nothing reaches a listener on a real non-loopback address either.
  std::string address = NonLoopbackAddress();
  if (address.empty()) return;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  ::inet_pton(AF_INET, address.c_str(), &addr.sin_addr);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(::listen(fd, 4) == 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::string url = "http://" + address + ":" + std::to_string(ntohs(addr.sin_port));
  RunResult refused = RunSigil({"--server", url, "--retry-time", "0", "ls"}, {{"SIGIL_TOKEN", TestToken()}},
                               tmp.path());
  CHECK(refused.exit_code == 2);
  pollfd p{fd, POLLIN, 0};
  CHECK(::poll(&p, 1, 100) == 0);  // no connection was attempted
  // Without a token the same client does connect (the check is the token's).
  pid_t pid = StartSigil({"--server", url, "--retry-time", "0", "ls"}, {{"SIGIL_TOKEN", ""}}, tmp.path());
  CHECK(::poll(&p, 1, 5000) == 1);
  int client = ::accept(fd, nullptr, nullptr);
  if (client >= 0) ::close(client);
  WaitSigil(pid, tmp.path());
  ::close(fd);
}

}  // namespace
}  // namespace sigil::testing
