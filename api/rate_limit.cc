#include "api/rate_limit.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/json.h"

namespace sigil::api {
namespace {

// Idle buckets dropped per call: enough to keep up with new keys (each call
// adds at most one) without making any call slow.
constexpr int kEvictPerCall = 4;

int64_t RefillMicros(const LimitOptions& o) {
  if (o.requests_per_second <= 0) return 0;
  return static_cast<int64_t>(std::ceil(std::max(o.burst, 1.0) / o.requests_per_second * 1e6));
}

}  // namespace

std::string LimitKey(const std::string& token_id, const std::string& remote_address) {
  return token_id.empty() ? "anon:" + remote_address : "token:" + token_id;
}

RateLimiter::RateLimiter(LimitOptions o, core::Clock* clock)
    : options_(std::move(o)), clock_(clock), refill_micros_(RefillMicros(options_)) {}

void RateLimiter::EvictIdleLocked(int64_t now) {
  for (int i = 0; i < kEvictPerCall && !lru_.empty(); ++i) {
    const Bucket& oldest = lru_.front();
    if (now - oldest.updated_micros < refill_micros_ && buckets_.size() <= options_.max_keys) return;
    buckets_.erase(oldest.key);
    lru_.pop_front();
  }
}

core::Status RateLimiter::Admit(const std::string& key) {
  if (options_.requests_per_second <= 0) return core::OkStatus();
  const double rate = options_.requests_per_second;
  const double burst = std::max(options_.burst, 1.0);
  const int64_t now = clock_->NowMicros();
  std::lock_guard<std::mutex> lock(mu_);
  EvictIdleLocked(now);
  Lru::iterator it;
  if (auto found = buckets_.find(key); found != buckets_.end()) {
    it = found->second;
    // A clock stepping back refills nothing rather than draining.
    double elapsed_s = static_cast<double>(std::max<int64_t>(now - it->updated_micros, 0)) / 1e6;
    it->tokens = std::min(burst, it->tokens + elapsed_s * rate);
    it->updated_micros = std::max(now, it->updated_micros);
    lru_.splice(lru_.end(), lru_, it);
  } else {
    lru_.push_back(Bucket{key, burst, now});
    it = std::prev(lru_.end());
    buckets_[key] = it;
    if (buckets_.size() > options_.max_keys) {
      buckets_.erase(lru_.front().key);
      lru_.pop_front();
    }
  }
  if (it->tokens >= 1) {
    it->tokens -= 1;
    return core::OkStatus();
  }
  const int64_t retry_after = std::max<int64_t>(1, static_cast<int64_t>(std::ceil((1 - it->tokens) / rate)));
  core::Json detail = {{"retry_after_s", retry_after}};
  std::ostringstream why;
  why << "too many requests from " << key << " (limit " << rate << "/s, burst " << burst << "); retry in "
      << retry_after << " s";
  return core::ResourceExhausted(why.str(), "RATE_LIMITED")
      .WithDetail(core::DumpJson(detail));
}

core::Status RateLimiter::OpenUpload(const std::string& key, const std::string& session_id) {
  if (options_.uploads_per_token == 0) return core::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  if (upload_owner_.count(session_id) != 0) return core::OkStatus();
  auto& open = uploads_[key];
  if (open.size() >= options_.uploads_per_token && options_.upload_alive) {
    for (auto it = open.begin(); it != open.end();) {
      if (options_.upload_alive(*it)) {
        ++it;
      } else {
        upload_owner_.erase(*it);
        it = open.erase(it);
      }
    }
  }
  if (open.size() >= options_.uploads_per_token) {
    core::Json detail = {{"limit", options_.uploads_per_token}};
    return core::ResourceExhausted(key + " already has " + std::to_string(open.size()) +
                                       " open upload sessions (the limit); finish or cancel one first",
                                   "TOO_MANY_UPLOADS")
        .WithDetail(core::DumpJson(detail));
  }
  open.insert(session_id);
  upload_owner_[session_id] = key;
  return core::OkStatus();
}

void RateLimiter::CloseUpload(const std::string& session_id) {
  std::lock_guard<std::mutex> lock(mu_);
  ForgetUploadLocked(session_id);
}

void RateLimiter::ForgetUploadLocked(const std::string& session_id) {
  auto owner = upload_owner_.find(session_id);
  if (owner == upload_owner_.end()) return;
  auto open = uploads_.find(owner->second);
  if (open != uploads_.end()) {
    open->second.erase(session_id);
    if (open->second.empty()) uploads_.erase(open);
  }
  upload_owner_.erase(owner);
}

size_t RateLimiter::BucketCount() {
  std::lock_guard<std::mutex> lock(mu_);
  return buckets_.size();
}

size_t RateLimiter::OpenUploads(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = uploads_.find(key);
  return it == uploads_.end() ? 0 : it->second.size();
}

int64_t RateLimiter::RetryAfterSeconds(const core::Status& status) {
  auto detail = core::ParseJson(status.detail());
  if (detail.ok() && detail->is_object()) {
    auto n = core::GetInt(*detail, "retry_after_s");
    if (n.ok()) return std::max<int64_t>(1, *n);
  }
  return 1;
}

}  // namespace sigil::api
