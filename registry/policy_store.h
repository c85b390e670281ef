// PolicyStore: the operator's policy documents (policies/policy.h), stored
// versioned, and the residency checks the routes make with them.
//
// A policy is named by the "name" field of its document. Putting a document
// under a name stores a new version of it (1, 2, ...); the same bytes as the
// latest version again store nothing and return that version. Old versions
// stay readable by number, so a decision's policy digest can always be looked
// up. The latest version of each name is the one in force; deleting a name
// puts a tombstone version (the name stops applying, its history stays).
//
// Keys (MetaStore column family "meta"):
//   policy\0<name>\0<16 hex version> -> {"digest", "created", "by",
//                                       "document" (the exact bytes; "" for a
//                                       deletion), "deleted"?}
//
// Residency: CheckResidency evaluates every policy in force that covers the
// repository and states a residency rule for the action (store, pull,
// export); each must pass. A refusal is kPermissionDenied with reason
// RESIDENCY_DENIED, a message naming the policy and the rule
// ("policy eu-health: residency.pull: pulling not allowed at site
// 'us-east-1', region 'us-east'; allowed: eu-*"), and
// detail {"decisions": [DecisionToJson...]}. No policy covering the
// repository (or none with a residency rule) allows everything. A caller
// with no site (context.site empty, context.token_name set) refused by a rule
// gets "(token <name> has no site)" appended to the message ("an anonymous
// caller" for token_name "anonymous").
//
// Policy names are 1 to 64 characters of [A-Za-z0-9._-] (they appear in keys
// and URL paths); others are refused with POLICY_INVALID. A stored document
// is parsed again when read; one that no longer parses is kDataLoss.
//
// The policies in force are cached in memory (loaded on first use, dropped by
// every Put and Delete through this object), so the residency checks of
// every pull cost no metadata read; one MetaStore has one PolicyStore.
//
// Put, Delete need the admin role (registry/access.h RequireAccess).
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/digest.h"
#include "core/status.h"
#include "policies/evaluate.h"
#include "policies/policy.h"
#include "storage/meta_store.h"

namespace sigil::registry {

struct PolicyRecord {
  std::string name;
  uint64_t version = 0;
  core::Digest digest;  // of document
  int64_t created_micros = 0;
  std::string created_by;  // the principal's name
  bool deleted = false;
  std::string document;  // exact bytes ("" when deleted)
  policies::Policy policy;  // parsed document (default when deleted)
};

struct PolicyStoreOptions {
  storage::MetaStore* meta = nullptr;
  core::Clock* clock = core::Clock::Real();
};

class PolicyStore {
 public:
  explicit PolicyStore(PolicyStoreOptions options) : options_(options) {}

  // Parses (policies::ParsePolicy; errors kInvalidArgument POLICY_INVALID)
  // and stores a new version. created: false when it equals the latest.
  struct PutResult {
    PolicyRecord record;
    bool created = false;
  };
  core::Result<PutResult> Put(std::string_view document);
  // version 0: the latest. kNotFound POLICY_UNKNOWN (also for a deleted
  // name's latest). A numbered version is returned even when it is a
  // deletion (deleted true, document "").
  core::Result<PolicyRecord> Get(std::string_view name, uint64_t version = 0);
  // The latest version of every name not deleted, by name.
  core::Result<std::vector<PolicyRecord>> List();
  // Every version of a name, oldest first (deletions included);
  // kNotFound POLICY_UNKNOWN for a name never stored.
  core::Result<std::vector<PolicyRecord>> History(std::string_view name);
  // kNotFound POLICY_UNKNOWN when the name has no live version.
  core::Status Delete(std::string_view name);

  // The policies in force that cover the repository, and the stage when
  // stage is set (policies::CoversRepository / CoversStage), by name.
  core::Result<std::vector<PolicyRecord>> Applicable(std::string_view repository,
                                                     std::optional<std::string_view> stage);

  // context.action must be kStore, kPull or kExport; evidence needs only the
  // repository. OK or kPermissionDenied RESIDENCY_DENIED as above.
  core::Status CheckResidency(std::string_view repository, const policies::Context& context);

  // Whether some policy in force states a residency list for the action
  // (store, pull or export): when none does, CheckResidency passes for every
  // repository and callers may skip work (finding a blob's repositories).
  core::Result<bool> RestrictsResidency(policies::Action action);

 private:
  core::Result<std::vector<PolicyRecord>> ScanVersions(std::string_view prefix);
  core::Result<std::optional<PolicyRecord>> Latest(std::string_view name);
  // Writes the record and drops the cache. REQUIRES: put_mu_ held.
  core::Status Append(PolicyRecord record);
  core::Result<std::shared_ptr<const std::vector<PolicyRecord>>> InForce();

  PolicyStoreOptions options_;
  std::mutex put_mu_;  // read the latest version, then write the next
  std::mutex cache_mu_;
  std::shared_ptr<const std::vector<PolicyRecord>> in_force_;  // latest live versions by name; null: load
};

}  // namespace sigil::registry
