#include "policies/evaluate.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <set>

#include <nlohmann/json.hpp>

#include "signing/trust_store.h"
#include "validator/eval_spec.h"

namespace sigil::policies {
namespace {

constexpr int64_t kMicrosPerDay = 86'400'000'000;

std::string JoinList(const std::vector<std::string>& items) {
  if (items.empty()) return "none";
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

std::string JoinSet(const std::set<std::string>& items) {
  return JoinList(std::vector<std::string>(items.begin(), items.end()));
}

bool Contains(const std::vector<std::string>& list, std::string_view s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

bool AnyGlob(const std::vector<std::string>& globs, std::string_view s) {
  for (const auto& g : globs) {
    if (signing::GlobMatch(g, s)) return true;
  }
  return false;
}

// Shortest text that reads back as the same double, so reasons are stable.
std::string Num(double d) {
  char buf[64];
  if (d == std::trunc(d) && std::fabs(d) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", d);
    return buf;
  }
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  return buf;
}

class Builder {
 public:
  void Add(std::string rule, bool passed, std::string reason) {
    rules_.push_back({std::move(rule), passed, std::move(reason)});
  }
  std::vector<RuleResult> Take() { return std::move(rules_); }

 private:
  std::vector<RuleResult> rules_;
};

bool Fresh(const Policy& p, const AttestationEvidence& a, int64_t now) {
  if (!p.freshness) return true;
  return now - a.signed_time_micros <= p.freshness->max_age_days * kMicrosPerDay;
}

void CheckSignatures(const SignatureRule& rule, const Evidence& ev, Builder& out) {
  std::set<std::string> counted, ignored, unverified;
  for (const auto& s : ev.signatures) {
    bool trusted = Contains(rule.keys, s.key_id);
    for (const auto& r : s.key_roles) trusted = trusted || Contains(rule.roles, r);
    if (!s.verified) {
      unverified.insert(s.key_id);
    } else if (trusted) {
      counted.insert(s.key_id);
    } else {
      ignored.insert(s.key_id);
    }
  }
  for (const auto& k : counted) ignored.erase(k);
  int found = static_cast<int>(counted.size());
  std::string reason = std::to_string(rule.threshold);
  if (rule.of != 0) reason += " of " + std::to_string(rule.of);
  reason += " required signatures: found " + std::to_string(found);
  if (found > 0) reason += " (keys " + JoinSet(counted) + ")";
  if (!ignored.empty()) reason += "; not trusted by this policy: " + JoinSet(ignored);
  if (!unverified.empty()) reason += "; did not verify: " + JoinSet(unverified);
  out.Add("signatures", found >= rule.threshold, reason);
}

void CheckAttestation(const Policy& p, const AttestationRule& rule, const Evidence& ev,
                      Builder& out) {
  std::string name = "attestation " + rule.predicate_type;
  std::set<std::string> good_keys, stale_keys, other_keys;
  for (const auto& a : ev.attestations) {
    if (a.predicate_type != rule.predicate_type || !a.verified) continue;
    for (const auto& k : a.key_ids) {
      if (!rule.keys.empty() && !Contains(rule.keys, k)) {
        other_keys.insert(k);
      } else if (!Fresh(p, a, ev.now_micros)) {
        stale_keys.insert(k);
      } else {
        good_keys.insert(k);
      }
    }
  }
  if (!good_keys.empty()) {
    out.Add(name, true, "present, signed by " + JoinSet(good_keys));
    return;
  }
  std::string reason = "missing attestation " + rule.predicate_type;
  if (!stale_keys.empty()) {
    reason += "; only older than " + std::to_string(p.freshness->max_age_days) +
              " days, signed by " + JoinSet(stale_keys);
  }
  if (!other_keys.empty()) reason += "; signed only by keys not allowed: " + JoinSet(other_keys);
  out.Add(name, false, reason);
}

void CheckFreshness(const Policy& p, const Evidence& ev, Builder& out) {
  std::set<std::string> stale;
  int considered = 0;
  for (const auto& a : ev.attestations) {
    if (!a.verified) continue;
    ++considered;
    if (!Fresh(p, a, ev.now_micros)) {
      int64_t days = (ev.now_micros - a.signed_time_micros) / kMicrosPerDay;
      stale.insert(a.predicate_type + " (" + std::to_string(days) + " days old)");
    }
  }
  std::string limit = "no older than " + std::to_string(p.freshness->max_age_days) + " days";
  if (stale.empty()) {
    out.Add("freshness", true,
            std::to_string(considered) + " verified attestations, all " + limit);
  } else {
    out.Add("freshness", false, "attestations must be " + limit + "; stale: " + JoinSet(stale));
  }
}

// "ssh-ed25519 AAAA...last12chars": enough to tell keys apart in a reason.
std::string ShortKey(std::string_view key) {
  SshPublicKeyText k = SplitSshPublicKey(key);
  if (k.base64.size() <= 20) return k.type + " " + k.base64;
  return k.type + " " + k.base64.substr(0, 4) + "..." + k.base64.substr(k.base64.size() - 12);
}

void CheckCommitSignature(const CommitRule& rule, const CommitEvidence& c, Builder& out) {
  const std::string subject = "commit " + c.commit;
  if (!c.signature_valid) {
    out.Add("provenance.commit_signature", false,
            subject + " has no valid signature" + (c.detail.empty() ? "" : ": " + c.detail));
    return;
  }
  if (rule.signers.empty()) {
    out.Add("provenance.commit_signature", true,
            subject + " carries a valid signature by " + ShortKey(c.signer_key));
    return;
  }
  SshPublicKeyText signer = SplitSshPublicKey(c.signer_key);
  bool allowed = false;
  for (const auto& s : rule.signers) {
    SshPublicKeyText k = SplitSshPublicKey(s);
    allowed = allowed || (!signer.type.empty() && k.type == signer.type && k.base64 == signer.base64);
  }
  out.Add("provenance.commit_signature", allowed,
          subject + " is signed by " + ShortKey(c.signer_key) +
              (allowed ? ", an allowed signer" : ", not an allowed signer"));
}

void CheckProvenance(const ProvenanceRule& rule, const Evidence& ev, Builder& out) {
  if (!ev.provenance) {
    out.Add("provenance", false, "no verified provenance for this version");
    return;
  }
  const auto& pv = *ev.provenance;
  if (!rule.builders.empty()) {
    bool ok = Contains(rule.builders, pv.builder_id);
    out.Add("provenance.builder", ok,
            ok ? "builder " + pv.builder_id + " is allowed"
               : "builder '" + pv.builder_id + "' is not one of " + JoinList(rule.builders));
  }
  if (!rule.source_repositories.empty()) {
    bool ok = AnyGlob(rule.source_repositories, pv.source_repository);
    out.Add("provenance.source_repository", ok,
            ok ? "source " + pv.source_repository + " is allowed"
               : "source '" + pv.source_repository + "' matches none of " +
                     JoinList(rule.source_repositories));
  }
  if (rule.commit) {
    const auto& cr = *rule.commit;
    if (!pv.commit) {
      out.Add("provenance.commit", false, "provenance names no commit");
    } else {
      const auto& c = *pv.commit;
      if (!c.exists_in_mirror) {
        out.Add("provenance.commit", false,
                "commit " + c.commit + " is not in the local mirror" +
                    (c.detail.empty() ? "" : ": " + c.detail));
      } else if (!cr.branches.empty()) {
        std::vector<std::string> allowed;
        for (const auto& b : c.reachable_from) {
          if (AnyGlob(cr.branches, b)) allowed.push_back(b);
        }
        std::sort(allowed.begin(), allowed.end());
        out.Add("provenance.commit", !allowed.empty(),
                allowed.empty() ? "commit " + c.commit + " is not reachable from " +
                                      JoinList(cr.branches)
                                : "commit " + c.commit + " is reachable from " + JoinList(allowed));
      } else {
        out.Add("provenance.commit", true, "commit " + c.commit + " is in the local mirror");
      }
      if (cr.signed_commit) CheckCommitSignature(cr, c, out);
    }
  }
  if (rule.dataset_digests_registered) {
    std::set<std::string> missing;
    for (const auto& d : pv.datasets) {
      if (!d.registered) missing.insert(d.digest.ToString());
    }
    out.Add("provenance.datasets", missing.empty(),
            missing.empty() ? std::to_string(pv.datasets.size()) + " dataset digests, all registered"
                            : "dataset digests not registered: " + JoinSet(missing));
  }
  if (rule.subjects_match_files) {
    std::set<std::pair<std::string, std::string>> files, subjects;
    for (const auto& f : ev.files) files.insert({f.path, f.digest.ToString()});
    for (const auto& s : pv.subjects) subjects.insert({s.path, s.digest.ToString()});
    std::set<std::string> unmatched_files, extra_subjects;
    for (const auto& f : files) {
      if (!subjects.count(f)) unmatched_files.insert(f.first);
    }
    for (const auto& s : subjects) {
      if (!files.count(s)) extra_subjects.insert(s.first);
    }
    bool ok = unmatched_files.empty() && extra_subjects.empty();
    std::string reason = ok ? std::to_string(files.size()) + " files match the provenance subjects"
                            : "provenance subjects do not match the files";
    if (!unmatched_files.empty()) reason += "; files not in subjects: " + JoinSet(unmatched_files);
    if (!extra_subjects.empty()) reason += "; subjects not among files: " + JoinSet(extra_subjects);
    out.Add("provenance.subjects", ok, reason);
  }
}

void CheckScan(const ScanRule& rule, const Evidence& ev, Builder& out) {
  std::string ceiling(scanner::SeverityName(rule.max_severity));
  if (!ev.scan) {
    out.Add("scan", false, "no scan report for this version");
    return;
  }
  std::string worst(scanner::SeverityName(ev.scan->max_severity));
  bool ok = ev.scan->max_severity <= rule.max_severity;
  out.Add("scan", ok,
          "scan verdict " + ev.scan->verdict + ", worst finding " + worst +
              (ok ? ", within " : ", above the allowed ") + ceiling);
}

void CheckEvaluation(const EvaluationRule& rule, const Evidence& ev, Builder& out) {
  if (!ev.evaluation) {
    out.Add("evaluation", false, "no evaluation report for this version");
    return;
  }
  const auto& e = *ev.evaluation;
  out.Add("evaluation", e.passed,
          e.passed ? "evaluation report passed" : "evaluation report did not pass");
  if (rule.spec_digest) {
    bool ok = e.spec_digest && *e.spec_digest == *rule.spec_digest;
    out.Add("evaluation.spec", ok,
            ok ? "run on spec " + rule.spec_digest->ToString()
               : "must run on spec " + rule.spec_digest->ToString() + ", ran on " +
                     (e.spec_digest ? e.spec_digest->ToString() : std::string("no named spec")));
  }
  for (const auto& [metric, b] : rule.thresholds) {
    std::string name = "evaluation.threshold." + metric;
    auto it = e.metrics.find(metric);
    std::string bounds;
    if (b.min) bounds += ">= " + Num(*b.min);
    if (b.max) bounds += std::string(bounds.empty() ? "" : " and ") + "<= " + Num(*b.max);
    if (it == e.metrics.end()) {
      out.Add(name, false, "metric " + metric + " missing from the report (needs " + bounds + ")");
      continue;
    }
    double v = it->second;
    bool ok = (!b.min || v >= *b.min) && (!b.max || v <= *b.max);
    out.Add(name, ok, metric + " = " + Num(v) + (ok ? ", meets " : ", fails ") + bounds);
  }
  for (const auto& [metric, tolerance] : rule.max_regression_vs_current) {
    std::string name = "evaluation.regression." + metric;
    if (!e.current_metrics) {
      out.Add(name, true, "no current version on the target alias to compare with");
      continue;
    }
    auto cur = e.current_metrics->find(metric);
    auto mine = e.metrics.find(metric);
    if (mine == e.metrics.end()) {
      out.Add(name, false, "metric " + metric + " missing from the report");
      continue;
    }
    if (cur == e.current_metrics->end()) {
      out.Add(name, true, "current version has no " + metric + " to compare with");
      continue;
    }
    // How much worse, in the metric's own direction (a larger loss is worse).
    double drop = validator::HigherIsBetter(metric) ? cur->second - mine->second : mine->second - cur->second;
    bool ok = drop <= tolerance;
    out.Add(name, ok,
            metric + " " + Num(mine->second) + " vs current " + Num(cur->second) +
                (ok ? ", within " : ", regresses beyond ") + "tolerance " + Num(tolerance));
  }
}

void CheckResidency(const Policy& p, const Context& ctx, Builder& out) {
  if (!p.residency) return;
  const auto& r = *p.residency;
  std::string cls = r.classification.empty() ? "" : " (" + r.classification + ")";
  auto where = [](const std::string& site, const std::string& region) {
    return "site '" + site + "', region '" + region + "'";
  };
  auto check = [&](const std::optional<std::vector<std::string>>& list, const std::string& rule,
                   const std::string& verb, const std::string& subject, bool ok_match) {
    if (!list) {
      out.Add(rule, true, verb + " is not restricted by this policy" + cls);
      return;
    }
    out.Add(rule, ok_match,
            (ok_match ? verb + " allowed at " : verb + " not allowed at ") + subject +
                "; allowed: " + JoinList(*list) + cls);
  };
  auto matches = [](const std::optional<std::vector<std::string>>& list,
                    std::initializer_list<std::string_view> names) {
    if (!list) return true;
    for (auto n : names) {
      if (!n.empty() && AnyGlob(*list, n)) return true;
    }
    return false;
  };
  switch (ctx.action) {
    case Action::kStore:
      check(r.store, "residency.store", "storing", where(ctx.site, ctx.region),
            matches(r.store, {ctx.site, ctx.region}));
      break;
    case Action::kPull:
      check(r.pull, "residency.pull", "pulling", where(ctx.site, ctx.region),
            matches(r.pull, {ctx.site, ctx.region}));
      break;
    case Action::kExport:
      check(r.export_to, "residency.export", "export", "region '" + ctx.export_region + "'",
            matches(r.export_to, {ctx.export_region}));
      break;
    case Action::kPromote:
      break;
  }
}

}  // namespace

std::string_view ActionName(Action action) {
  switch (action) {
    case Action::kPromote: return "promote";
    case Action::kStore: return "store";
    case Action::kPull: return "pull";
    case Action::kExport: return "export";
  }
  return "unknown";
}

Decision Evaluate(const Policy& policy, const Evidence& evidence, const Context& context) {
  Builder out;
  bool repo_ok = CoversRepository(policy, evidence.repository);
  out.Add("scope.repository", repo_ok,
          repo_ok ? "repository " + evidence.repository + " is covered"
                  : "repository " + evidence.repository + " matches none of " +
                        JoinList(policy.repositories));
  if (context.action == Action::kPromote) {
    bool stage_ok = CoversStage(policy, context.stage);
    out.Add("scope.stage", stage_ok,
            stage_ok ? "stage '" + context.stage + "' is covered"
                     : "stage '" + context.stage + "' is not one of " + JoinList(policy.stages));
    if (policy.signatures) CheckSignatures(*policy.signatures, evidence, out);
    for (const auto& a : policy.attestations) CheckAttestation(policy, a, evidence, out);
    if (policy.freshness) CheckFreshness(policy, evidence, out);
    if (policy.provenance) CheckProvenance(*policy.provenance, evidence, out);
    if (policy.scan) CheckScan(*policy.scan, evidence, out);
    if (policy.evaluation) CheckEvaluation(*policy.evaluation, evidence, out);
  } else {
    CheckResidency(policy, context, out);
  }
  Decision d;
  d.policy_name = policy.name;
  d.policy_digest = policy.digest;
  d.rules = out.Take();
  d.passed = std::all_of(d.rules.begin(), d.rules.end(),
                         [](const RuleResult& r) { return r.passed; });
  return d;
}

nlohmann::json DecisionToJson(const Decision& d) {
  nlohmann::json rules = nlohmann::json::array();
  for (const auto& r : d.rules) {
    rules.push_back({{"rule", r.rule}, {"passed", r.passed}, {"reason", r.reason}});
  }
  return {{"verdict", d.passed ? "PASS" : "FAIL"},
          {"policy", {{"name", d.policy_name}, {"digest", d.policy_digest.ToString()}}},
          {"rules", rules}};
}

}  // namespace sigil::policies
