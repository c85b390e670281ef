// RateLimiter: per-caller request rate and concurrent upload sessions.
//
// A caller is a key: a token id, or "anon:<ip>" for unauthenticated
// requests. Requests are admitted by a token bucket per key (rate
// requests_per_second, capacity burst); a refusal is kResourceExhausted
// with reason RATE_LIMITED and detail {"retry_after_s": N}, which api/
// answers as 429 with a Retry-After header. Upload sessions are counted per
// key; opening one more than uploads_per_token is kResourceExhausted with
// reason TOO_MANY_UPLOADS (also 429).
//
// Memory is bounded: a bucket idle long enough to have refilled is the same
// as no bucket and is dropped (least recently used first, a few per call),
// and at most max_keys buckets are kept (the least recently used goes
// first). Upload counts live only while their sessions are open.
//
// Thread-safety: every method may be called from many threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <set>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/clock.h"
#include "core/status.h"

namespace sigil::api {

struct LimitOptions {
  // Sustained requests per second per key; 0 turns request limiting off.
  double requests_per_second = 50;
  // Requests a key may make at once after being idle (>= 1).
  double burst = 100;
  // Open upload sessions per key; 0 turns the upload limit off.
  size_t uploads_per_token = 8;
  // Most keys with a bucket; beyond it the least recently used is dropped.
  size_t max_keys = 100'000;
  // Optional: whether an upload session still exists. Sessions end without
  // CloseUpload when they expire (or the server restarts); when a key is at
  // its limit, OpenUpload first forgets sessions for which this is false.
  // Called with the limiter's lock held: it must not call back into it.
  std::function<bool(const std::string& session_id)> upload_alive = nullptr;
};

// The key of a caller: "token:<id>" for an authenticated token, else
// "anon:<address>" (behind a proxy, the proxy's address: every anonymous
// caller shares it).
std::string LimitKey(const std::string& token_id, const std::string& remote_address);

class RateLimiter {
 public:
  // clock must outlive the limiter.
  explicit RateLimiter(LimitOptions o, core::Clock* clock = core::Clock::Real());

  // Takes one token from key's bucket: OK, or kResourceExhausted
  // RATE_LIMITED with detail {"retry_after_s": N} (N >= 1, whole seconds
  // until a token is back).
  core::Status Admit(const std::string& key);

  // Counts a new upload session against key: OK, or kResourceExhausted
  // TOO_MANY_UPLOADS (nothing counted) when key already has
  // uploads_per_token open. Opening a session_id already counted is OK.
  core::Status OpenUpload(const std::string& key, const std::string& session_id);
  // The session was committed, cancelled or expired; unknown ids are ignored.
  void CloseUpload(const std::string& session_id);

  // For tests and metrics.
  size_t BucketCount();
  size_t OpenUploads(const std::string& key);

  // The Retry-After seconds of a RATE_LIMITED status (1 when absent).
  static int64_t RetryAfterSeconds(const core::Status& status);

 private:
  struct Bucket {
    std::string key;
    double tokens = 0;
    int64_t updated_micros = 0;
  };
  using Lru = std::list<Bucket>;  // least recently used first

  // Drops up to a few idle buckets from the front. REQUIRES: mu_ held.
  void EvictIdleLocked(int64_t now);
  void ForgetUploadLocked(const std::string& session_id);

  const LimitOptions options_;
  core::Clock* const clock_;
  // Time for an empty bucket to refill completely.
  const int64_t refill_micros_;
  std::mutex mu_;
  Lru lru_;
  std::unordered_map<std::string, Lru::iterator> buckets_;
  std::unordered_map<std::string, std::string> upload_owner_;  // session id -> key
  std::unordered_map<std::string, std::set<std::string>> uploads_;  // key -> its sessions
};

}  // namespace sigil::api
