#include "registry/scanning.h"

#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "attest/statement.h"
#include "attest/transparency_log.h"
#include "core/clock.h"
#include "core/json.h"
#include "registry/attestations.h"
#include "signing/dsse.h"
#include "tests/registry/model_fixture.h"
#include "tests/support/temp_dir.h"

namespace sigil::registry {
namespace {

std::string Le64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

// safetensors: one F32 tensor of `floats` elements; data_bytes of data
// follow the header (4 * floats makes a valid file).
std::string Safetensors(uint64_t floats, uint64_t data_bytes) {
  std::string header = R"({"w":{"dtype":"F32","shape":[)" + std::to_string(floats) +
                       R"(],"data_offsets":[0,)" + std::to_string(4 * floats) + "]}}";
  while (header.size() % 8 != 0) header.push_back(' ');
  return Le64(header.size()) + header + std::string(data_bytes, '\x01');
}

// protocol 2: os.system("echo pwned") via GLOBAL + REDUCE.
std::string EvilPickle() {
  std::string arg = "echo pwned";
  return std::string("\x80\x02", 2) + "cos\nsystem\n" + "X" + std::string(1, static_cast<char>(arg.size())) +
         std::string(3, '\0') + arg + "\x85" + "R.";
}

struct Env {
  std::unique_ptr<storage::BlobStore> blobs = storage::NewMemoryBlobStore();
  std::unique_ptr<storage::MetaStore> meta = storage::NewMemoryMetaStore();
  core::ManualClock clock{1'700'000'000'000'000};
  Registry reg{RegistryOpts()};

  RegistryOptions RegistryOpts() {
    RegistryOptions o;
    o.blobs = blobs.get();
    o.meta = meta.get();
    o.clock = &clock;
    o.new_version_state = VersionState::kPending;
    return o;
  }
  ScanningOptions ScanOpts() {
    ScanningOptions o;
    o.registry = &reg;
    o.blobs = blobs.get();
    o.meta = meta.get();
    o.clock = &clock;
    return o;
  }
  std::unique_ptr<Scanning> Start(ScanningOptions o) {
    auto s = Scanning::Start(std::move(o));
    INFO(s.status().ToString());
    REQUIRE(s.ok());
    return std::move(s).value();
  }

  VersionInfo Push(const std::string& repo, const std::string& version,
                   const std::map<std::string, std::string>& files) {
    return fixtures::PushModel(reg, *blobs, repo, version, files);
  }
  VersionState StateOf(const std::string& repo, const std::string& version) {
    auto r = reg.Resolve(repo, version);
    REQUIRE(r.ok());
    return r->info.state;
  }
  size_t ScanRecords() {
    size_t n = 0;
    REQUIRE(meta->Scan("referrers", std::string("scan\0", 5),
                       [&](std::string_view, std::string_view) {
                         ++n;
                         return true;
                       })
                .ok());
    return n;
  }
};

TEST_CASE("a clean version becomes available with its report stored", "[registry][scanning]") {
  Env env;
  VersionInfo v = env.Push("team/m", "1", {{"model.safetensors", Safetensors(4, 16)}});
  CHECK(v.state == VersionState::kPending);
  auto scanning = env.Start(env.ScanOpts());
  REQUIRE(scanning->Enqueue("team/m", "1").ok());
  scanning->WaitIdle();
  CHECK(env.StateOf("team/m", "1") == VersionState::kAvailable);

  auto status = scanning->Status("team/m", "1");
  REQUIRE(status.ok());
  REQUIRE(status->latest.has_value());
  CHECK(status->latest->verdict == "clean");
  CHECK_FALSE(status->latest->attestation_digest.has_value());
  CHECK(core::Sha256::Of(status->latest->report_json) == status->latest->report_digest);
  auto report = core::ParseJson(status->latest->report_json);
  REQUIRE(report.ok());
  CHECK((*report)["verdict"] == "clean");
  CHECK((*report)["files"][0]["path"] == "model.safetensors");
  CHECK((*report)["files"][0]["format"] == "safetensors");
  CHECK(scanning->CheckPullable(status->version).ok());
}

TEST_CASE("a malicious pickle layer quarantines the version with its finding", "[registry][scanning]") {
  Env env;
  std::string evil = EvilPickle();
  env.Push("team/m", "1", {{"weights.safetensors", Safetensors(2, 8)}, {"model.pkl", evil}});
  auto scanning = env.Start(env.ScanOpts());
  REQUIRE(scanning->Enqueue("team/m", "1").ok());
  scanning->WaitIdle();
  CHECK(env.StateOf("team/m", "1") == VersionState::kQuarantined);

  auto status = scanning->Status("team/m", "1");
  REQUIRE(status.ok());
  REQUIRE(status->latest.has_value());
  CHECK(status->latest->verdict == "blocked");
  auto summary = core::ParseJson(status->latest->summary_json);
  REQUIRE(summary.ok());
  REQUIRE((*summary)["findings"].size() >= 1);
  CHECK((*summary)["findings"][0]["path"] == "model.pkl");
  CHECK((*summary)["findings"][0]["global"] == "os.system");

  core::Status pull = scanning->CheckPullable(status->version);
  CHECK(pull.code() == core::Code::kPermissionDenied);
  CHECK(pull.reason() == "QUARANTINED");
  CHECK(pull.detail().find("os.system") != std::string::npos);
  // By digest: the pickle and the weights only this version holds are
  // refused; the config blob is not a model file.
  core::Status blob = scanning->CheckBlobPullable(core::Sha256::Of(evil));
  CHECK(blob.reason() == "QUARANTINED");
  CHECK(scanning->CheckBlobPullable(core::Sha256::Of(Safetensors(2, 8))).reason() == "QUARANTINED");
  CHECK(scanning->CheckBlobPullable(core::Sha256::Of(std::string("{}"))).ok());
}

TEST_CASE("an invalid safetensors file quarantines the version", "[registry][scanning]") {
  Env env;
  // The header promises 16 bytes of data; 8 follow.
  env.Push("team/m", "1", {{"model.safetensors", Safetensors(4, 8)}});
  auto scanning = env.Start(env.ScanOpts());
  REQUIRE(scanning->Enqueue("team/m", "1").ok());
  scanning->WaitIdle();
  CHECK(env.StateOf("team/m", "1") == VersionState::kQuarantined);
  auto status = scanning->Status("team/m", "1");
  REQUIRE(status.ok());
  REQUIRE(status->latest.has_value());
  CHECK(status->latest->verdict == "invalid");
}

TEST_CASE("pending versions and queued jobs are scanned after a restart", "[registry][scanning]") {
  Env env;
  env.Push("team/m", "1", {{"model.safetensors", Safetensors(4, 16)}});
  {
    // No scanner ran yet: the files wait for one.
    auto scanning = env.Start(env.ScanOpts());
    scanning->WaitIdle();
  }
  CHECK(env.StateOf("team/m", "1") == VersionState::kAvailable);

  // A version recorded as pending before any scanner saw it (a crash right
  // after its push), and a re-scan job recorded for an available version.
  env.Push("team/m", "2", {{"model.pkl", EvilPickle()}});
  CHECK(env.StateOf("team/m", "2") == VersionState::kPending);
  REQUIRE(env.reg.SetVersionState("team/m", "1", VersionState::kAvailable).ok());
  REQUIRE(env.meta
              ->Put("jobs",
                    std::string("scan\0team/m\0"
                                "1",
                                13),
                    "{\"queued\": 1}")
              .ok());
  size_t before = env.ScanRecords();
  env.clock.Advance(1'000'000);
  {
    auto scanning = env.Start(env.ScanOpts());
    scanning->WaitIdle();
    auto s2 = scanning->Status("team/m", "2");
    REQUIRE(s2.ok());
    CHECK_FALSE(s2->queued);
  }
  CHECK(env.StateOf("team/m", "2") == VersionState::kQuarantined);
  CHECK(env.StateOf("team/m", "1") == VersionState::kAvailable);
  CHECK(env.ScanRecords() == before + 2);
  // Finished jobs are gone.
  size_t jobs = 0;
  REQUIRE(env.meta
              ->Scan("jobs", std::string("scan\0", 5),
                     [&](std::string_view, std::string_view) {
                       ++jobs;
                       return true;
                     })
              .ok());
  CHECK(jobs == 0);
}

TEST_CASE("a pending version is refused as PENDING_SCAN", "[registry][scanning]") {
  Env env;
  VersionInfo v = env.Push("team/m", "1", {{"model.safetensors", Safetensors(4, 16)}});
  ScanningOptions o = env.ScanOpts();
  auto scanning = env.Start(o);
  // Status before any report: no latest.
  scanning->WaitIdle();
  VersionInfo pending = v;
  pending.state = VersionState::kPending;
  core::Status s = scanning->CheckPullable(pending);
  CHECK(s.code() == core::Code::kFailedPrecondition);
  CHECK(s.reason() == "PENDING_SCAN");
}

TEST_CASE("a re-scan with stricter rules replaces the verdict", "[registry][scanning]") {
  Env env;
  // Unknown content is clean with an info finding.
  env.Push("team/m", "1", {{"notes.bin", "just some bytes, no known format"}});
  {
    auto scanning = env.Start(env.ScanOpts());
    scanning->WaitIdle();
  }
  CHECK(env.StateOf("team/m", "1") == VersionState::kAvailable);
  ScanningOptions strict = env.ScanOpts();
  strict.scan.block_at = scanner::Severity::kInfo;
  auto scanning = env.Start(strict);
  env.clock.Advance(1'000'000);
  auto queued = scanning->Enqueue("team/m", "1");
  REQUIRE(queued.ok());
  CHECK(queued->queued);
  REQUIRE(queued->latest.has_value());
  CHECK(queued->latest->verdict == "clean");
  scanning->WaitIdle();
  CHECK(env.StateOf("team/m", "1") == VersionState::kQuarantined);
  auto status = scanning->Status("team/m", "1");
  REQUIRE(status.ok());
  CHECK(status->latest->verdict == "blocked");
  CHECK(env.ScanRecords() == 2);

  // And back: the default rules release it, blob by digest included.
  auto lenient = env.Start(env.ScanOpts());
  env.clock.Advance(1'000'000);
  REQUIRE(lenient->Enqueue("team/m", "1").ok());
  lenient->WaitIdle();
  CHECK(env.StateOf("team/m", "1") == VersionState::kAvailable);
  CHECK(lenient->CheckBlobPullable(core::Sha256::Of(std::string("just some bytes, no known format"))).ok());
}

TEST_CASE("a blob an available version holds stays pullable by digest", "[registry][scanning]") {
  Env env;
  std::string shared = Safetensors(4, 16);
  env.Push("team/good", "1", {{"model.safetensors", shared}});
  auto scanning = env.Start(env.ScanOpts());
  scanning->WaitIdle();
  CHECK(env.StateOf("team/good", "1") == VersionState::kAvailable);
  env.Push("team/bad", "1", {{"model.safetensors", shared}, {"extra.pkl", EvilPickle()}});
  REQUIRE(scanning->Enqueue("team/bad", "1").ok());
  scanning->WaitIdle();
  CHECK(env.StateOf("team/bad", "1") == VersionState::kQuarantined);
  CHECK(scanning->CheckBlobPullable(core::Sha256::Of(shared)).ok());
  CHECK(scanning->CheckBlobPullable(core::Sha256::Of(EvilPickle())).reason() == "QUARANTINED");
}

TEST_CASE("the quarantine index follows versions that become available or are deleted",
          "[registry][scanning]") {
  Env env;
  std::string shared = Safetensors(4, 16);
  std::string evil = EvilPickle();
  auto scanning = env.Start(env.ScanOpts());
  env.Push("team/bad", "1", {{"model.safetensors", shared}, {"extra.pkl", evil}});
  REQUIRE(scanning->Enqueue("team/bad", "1").ok());
  scanning->WaitIdle();
  CHECK(scanning->CheckBlobPullable(core::Sha256::Of(shared)).reason() == "QUARANTINED");

  // A version holding the shared blob becomes available: it is released.
  env.Push("team/good", "1", {{"model.safetensors", shared}});
  REQUIRE(scanning->Enqueue("team/good", "1").ok());
  scanning->WaitIdle();
  CHECK(env.StateOf("team/good", "1") == VersionState::kAvailable);
  CHECK(scanning->CheckBlobPullable(core::Sha256::Of(shared)).ok());

  // That version deleted: refused again.
  auto good = env.reg.Resolve("team/good", "1");
  REQUIRE(good.ok());
  REQUIRE(env.reg.DeleteVersion("team/good", "1").ok());
  REQUIRE(scanning->Forget(*good).ok());
  CHECK(scanning->CheckBlobPullable(core::Sha256::Of(shared)).reason() == "QUARANTINED");

  // The quarantined holder deleted: nothing left to refuse.
  auto bad = env.reg.Resolve("team/bad", "1");
  REQUIRE(bad.ok());
  REQUIRE(env.reg.DeleteVersion("team/bad", "1").ok());
  REQUIRE(scanning->Forget(*bad).ok());
  CHECK(scanning->CheckBlobPullable(core::Sha256::Of(shared)).ok());
  CHECK(scanning->CheckBlobPullable(core::Sha256::Of(evil)).ok());
}

TEST_CASE("reports are signed by the server key and logged when attestations are configured",
          "[registry][scanning]") {
  Env env;
  testing::TempDir dir;
  auto log_key = signing::PrivateKey::Generate(signing::Algorithm::kEd25519);
  auto server_key = signing::PrivateKey::Generate();
  REQUIRE(log_key.ok());
  REQUIRE(server_key.ok());
  attest::TransparencyLogOptions lo;
  lo.meta = env.meta.get();
  lo.origin = "sigil/test";
  lo.key = *log_key;
  auto log = attest::TransparencyLog::Open(lo);
  REQUIRE(log.ok());
  AttestationOptions ao;
  ao.registry = &env.reg;
  ao.blobs = env.blobs.get();
  ao.meta = env.meta.get();
  ao.clock = &env.clock;
  ao.log = log->get();
  ao.server_key = *server_key;
  auto attestations = Attestations::Open(ao);
  REQUIRE(attestations.ok());

  VersionInfo v = env.Push("team/m", "1", {{"model.pkl", EvilPickle()}});
  ScanningOptions so = env.ScanOpts();
  so.attestations = attestations->get();
  so.server_key = *server_key;
  auto scanning = env.Start(so);
  scanning->WaitIdle();
  CHECK(env.StateOf("team/m", "1") == VersionState::kQuarantined);

  auto status = scanning->Status("team/m", "1");
  REQUIRE(status.ok());
  REQUIRE(status->latest->attestation_digest.has_value());
  auto listed = (*attestations)->List("team/m", "1", attest::kSigilScanV1);
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  const AttestationRecord& rec = (*listed)[0];
  CHECK(rec.server_issued);
  CHECK(rec.content_digest == *status->latest->attestation_digest);
  CHECK(rec.log_index == status->latest->log_index);
  CHECK((*log)->Size() == 1);
  // The envelope verifies with the server key; its predicate is the report.
  auto envelope = signing::ParseEnvelope(rec.content);
  REQUIRE(envelope.ok());
  auto verified =
      attest::VerifyStatement(*envelope, {server_key->public_key()}, 1, v.digest, attest::kSigilScanV1);
  INFO(verified.status().ToString());
  REQUIRE(verified.ok());
  auto predicate = core::ParseJson(verified->statement.predicate_json);
  REQUIRE(predicate.ok());
  CHECK((*predicate)["verdict"] == "blocked");
  CHECK(core::Sha256::Of(status->latest->report_json) == status->latest->report_digest);

  // Only together.
  ScanningOptions half = env.ScanOpts();
  half.attestations = attestations->get();
  CHECK(Scanning::Start(half).status().code() == core::Code::kInvalidArgument);
}

}  // namespace
}  // namespace sigil::registry
