// `sigil verify DIR|REF --trusted-keys FILE` and the evidence step of
// `sigil pull --verify` (the checks themselves are in verify.h).
//
// Online (a REF, or a pull): GET .../evidence for the exact manifest digest,
// verify it against the manifest's bytes, and check the checkpoint's
// consistency with the ones this client saw before through
// GET /api/v1/log/proof/consistency; the checkpoint is then remembered.
// Offline (a pulled DIR): DIR/.sigil/evidence.json and manifest.json, every
// file rehashed; checkpoints seen before are only compared, never added.
#pragma once

#include <chrono>
#include <string>

#include "cli/http_client.h"
#include "cli/refs.h"
#include "cli/verify.h"
#include "core/status.h"

namespace sigil::cli {

// $XDG_STATE_HOME/sigil/checkpoints (else ~/.local/state/sigil/checkpoints),
// or "" when neither is set.
std::string DefaultCheckpointDir();

struct OnlineVerification {
  VerifyReport report;
  std::string evidence_json;
};

// Fetches and verifies the evidence of the version whose manifest is
// manifest_bytes. Errors: only when the server cannot answer; failed checks
// are in the report.
core::Result<OnlineVerification> VerifyOnline(HttpClient& http, const std::string& repository,
                                              const std::string& manifest_bytes, const TrustedKeys& trusted,
                                              const std::string& checkpoint_dir,
                                              std::chrono::milliseconds retry_budget);

// sigil verify REF: FetchVersion, then VerifyOnline.
core::Result<OnlineVerification> VerifyReference(HttpClient& http, const Reference& ref,
                                                 const TrustedKeys& trusted,
                                                 const std::string& checkpoint_dir,
                                                 std::chrono::milliseconds retry_budget);

// sigil verify DIR: offline, from DIR/.sigil/.
VerifyReport VerifyPulledDir(const std::string& dir, const TrustedKeys& trusted,
                             const std::string& checkpoint_dir);

// Refuses a manifest with a file under DIR/.sigil/ (where the evidence goes).
// kInvalidArgument PATH_INVALID.
core::Status RefuseEvidenceTitles(const std::string& manifest_bytes);

// Writes DIR/.sigil/evidence.json and DIR/.sigil/manifest.json atomically.
core::Status StoreEvidence(const std::string& dir, const std::string& evidence_json,
                           const std::string& manifest_bytes);

}  // namespace sigil::cli
