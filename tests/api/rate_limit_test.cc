#include "api/rate_limit.h"

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "core/clock.h"

namespace sigil::api {
namespace {

constexpr int64_t kSecond = 1'000'000;

LimitOptions Limits(double rate, double burst, size_t uploads = 8) {
  LimitOptions o;
  o.requests_per_second = rate;
  o.burst = burst;
  o.uploads_per_token = uploads;
  return o;
}

TEST_CASE("a key gets its burst at once, then the sustained rate", "[api][rate_limit]") {
  core::ManualClock clock;
  RateLimiter limiter(Limits(2, 5), &clock);
  for (int i = 0; i < 5; ++i) REQUIRE(limiter.Admit("tok-a").ok());
  core::Status refused = limiter.Admit("tok-a");
  REQUIRE(refused.code() == core::Code::kResourceExhausted);
  CHECK(refused.reason() == "RATE_LIMITED");
  CHECK(RateLimiter::RetryAfterSeconds(refused) == 1);
  CHECK(refused.detail() == R"({"retry_after_s":1})");

  // 2/s: half a second gives one token back, not two.
  clock.Advance(kSecond / 2);
  CHECK(limiter.Admit("tok-a").ok());
  CHECK(limiter.Admit("tok-a").code() == core::Code::kResourceExhausted);

  // Other keys are not affected.
  CHECK(limiter.Admit("anon:10.0.0.1").ok());

  // Idle long enough, the bucket is full again but never above the burst.
  clock.Advance(3600 * kSecond);
  for (int i = 0; i < 5; ++i) REQUIRE(limiter.Admit("tok-a").ok());
  CHECK(limiter.Admit("tok-a").code() == core::Code::kResourceExhausted);
}

TEST_CASE("Retry-After rounds the wait for one token up to whole seconds", "[api][rate_limit]") {
  struct Case {
    double rate;
    int64_t want;
  };
  for (Case c : {Case{10, 1}, Case{1, 1}, Case{0.5, 2}, Case{0.1, 10}, Case{0.3, 4}}) {
    core::ManualClock clock;
    RateLimiter limiter(Limits(c.rate, 1), &clock);
    REQUIRE(limiter.Admit("k").ok());
    core::Status refused = limiter.Admit("k");
    REQUIRE_FALSE(refused.ok());
    INFO("rate " << c.rate);
    CHECK(RateLimiter::RetryAfterSeconds(refused) == c.want);
    // After the advertised wait the request goes through.
    clock.Advance(c.want * kSecond);
    CHECK(limiter.Admit("k").ok());
  }
}

TEST_CASE("callers are keyed by token id, else by address", "[api][rate_limit]") {
  CHECK(LimitKey("0123456789abcdef", "10.0.0.7") == "token:0123456789abcdef");
  CHECK(LimitKey("", "10.0.0.7") == "anon:10.0.0.7");
}

TEST_CASE("a rate of 0 turns request limiting off", "[api][rate_limit]") {
  core::ManualClock clock;
  RateLimiter limiter(Limits(0, 1), &clock);
  for (int i = 0; i < 1000; ++i) REQUIRE(limiter.Admit("k").ok());
  CHECK(limiter.BucketCount() == 0);
}

TEST_CASE("a clock stepping back neither refills nor drains", "[api][rate_limit]") {
  core::ManualClock clock;
  RateLimiter limiter(Limits(1, 2), &clock);
  REQUIRE(limiter.Admit("k").ok());
  REQUIRE(limiter.Admit("k").ok());
  clock.Advance(-10 * kSecond);
  CHECK_FALSE(limiter.Admit("k").ok());
  clock.Advance(11 * kSecond);
  CHECK(limiter.Admit("k").ok());
}

TEST_CASE("idle buckets are dropped and the number of keys is bounded", "[api][rate_limit]") {
  core::ManualClock clock;
  LimitOptions o = Limits(10, 20);  // refills in 2 s
  o.max_keys = 1000;
  RateLimiter limiter(o, &clock);
  for (int i = 0; i < 5000; ++i) REQUIRE(limiter.Admit("anon:" + std::to_string(i)).ok());
  CHECK(limiter.BucketCount() == 1000);

  // Once idle past the refill time, each call drops a few old buckets.
  clock.Advance(3 * kSecond);
  for (int i = 0; i < 400; ++i) limiter.Admit("busy").IgnoreError();
  CHECK(limiter.BucketCount() == 1);

  // A key pushed out at the cap comes back with a full bucket, which is
  // what it would have had after a refill: no key is ever limited harder.
  for (int i = 0; i < 20; ++i) REQUIRE(limiter.Admit("recent").ok());
  CHECK_FALSE(limiter.Admit("recent").ok());
}

TEST_CASE("upload sessions are counted per key up to the limit", "[api][rate_limit]") {
  RateLimiter limiter(Limits(0, 1, 2));
  REQUIRE(limiter.OpenUpload("tok-a", "u1").ok());
  REQUIRE(limiter.OpenUpload("tok-a", "u2").ok());
  REQUIRE(limiter.OpenUpload("tok-a", "u2").ok());  // already counted
  core::Status refused = limiter.OpenUpload("tok-a", "u3");
  CHECK(refused.code() == core::Code::kResourceExhausted);
  CHECK(refused.reason() == "TOO_MANY_UPLOADS");
  CHECK(limiter.OpenUploads("tok-a") == 2);
  CHECK(limiter.OpenUpload("tok-b", "u4").ok());

  limiter.CloseUpload("u1");
  limiter.CloseUpload("u1");       // twice is harmless
  limiter.CloseUpload("unknown");  // so is an id never opened
  CHECK(limiter.OpenUpload("tok-a", "u3").ok());
  CHECK(limiter.OpenUploads("tok-a") == 2);
  limiter.CloseUpload("u2");
  limiter.CloseUpload("u3");
  CHECK(limiter.OpenUploads("tok-a") == 0);
}

TEST_CASE("sessions that ended without CloseUpload are forgotten at the limit", "[api][rate_limit]") {
  std::set<std::string> alive;
  LimitOptions o = Limits(0, 1, 2);
  o.upload_alive = [&](const std::string& id) { return alive.count(id) != 0; };
  RateLimiter limiter(o);
  alive = {"u1", "u2"};
  REQUIRE(limiter.OpenUpload("k", "u1").ok());
  REQUIRE(limiter.OpenUpload("k", "u2").ok());
  CHECK(limiter.OpenUpload("k", "u3").reason() == "TOO_MANY_UPLOADS");
  alive.erase("u1");  // expired in the upload manager
  CHECK(limiter.OpenUpload("k", "u3").ok());
  CHECK(limiter.OpenUploads("k") == 2);
}

TEST_CASE("an upload limit of 0 turns it off", "[api][rate_limit]") {
  RateLimiter limiter(Limits(0, 1, 0));
  for (int i = 0; i < 100; ++i) REQUIRE(limiter.OpenUpload("k", "u" + std::to_string(i)).ok());
}

TEST_CASE("concurrent callers never get more than the burst", "[api][rate_limit]") {
  core::ManualClock clock;  // frozen: no refill during the test
  RateLimiter limiter(Limits(1, 100), &clock);
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (limiter.Admit("shared").ok()) ++admitted;
        limiter.Admit("own-" + std::to_string(i)).IgnoreError();
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(admitted == 100);
}

}  // namespace
}  // namespace sigil::api
