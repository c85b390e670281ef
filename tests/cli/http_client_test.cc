#include "cli/http_client.h"

#include <catch2/catch.hpp>

namespace sigil::cli {
namespace {

HttpResponse Answer(long status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

TEST_CASE("server error bodies become statuses with code, reason and detail", "[cli]") {
  core::Status s = ErrorFromResponse(
      Answer(400, R"({"error":{"code":"BLOB_UNKNOWN","message":"blobs missing",)"
                  R"("detail":{"missing":["sha256:x"]}}})"));
  CHECK(s.code() == core::Code::kInvalidArgument);
  CHECK(s.reason() == "BLOB_UNKNOWN");
  CHECK(s.message() == "blobs missing");
  CHECK(s.detail() == R"({"missing":["sha256:x"]})");

  struct Case {
    long http;
    core::Code code;
  };
  const Case cases[] = {
      {404, core::Code::kNotFound},          {409, core::Code::kAlreadyExists},
      {413, core::Code::kResourceExhausted}, {416, core::Code::kOutOfRange},
      {429, core::Code::kResourceExhausted}, {500, core::Code::kInternal},
      {503, core::Code::kUnavailable},       {507, core::Code::kResourceExhausted},
      {401, core::Code::kUnauthenticated},   {403, core::Code::kPermissionDenied},
  };
  for (const Case& c : cases) {
    INFO(c.http);
    core::Status e = ErrorFromResponse(Answer(c.http, R"({"error":{"code":"X","message":"m"}})"));
    CHECK(e.code() == c.code);
    CHECK(e.reason() == "X");
    CHECK(e.detail().empty());
  }
}

TEST_CASE("answers without a JSON error body still give a status", "[cli]") {
  core::Status s = ErrorFromResponse(Answer(502, "<html>bad gateway</html>"));
  CHECK(s.code() == core::Code::kUnavailable);
  CHECK(s.message() == "HTTP 502: <html>bad gateway</html>");
  core::Status empty = ErrorFromResponse(Answer(404, ""));
  CHECK(empty.code() == core::Code::kNotFound);
  CHECK(empty.message() == "HTTP 404");
  core::Status other_json = ErrorFromResponse(Answer(400, R"({"error":"flat"})"));
  CHECK(other_json.code() == core::Code::kInvalidArgument);
  CHECK(other_json.message() == R"(HTTP 400: {"error":"flat"})");
}

TEST_CASE("transient failures are told apart from final ones", "[cli]") {
  CHECK(IsTransientHttp(500));
  CHECK(IsTransientHttp(502));
  CHECK(IsTransientHttp(503));
  CHECK(IsTransientHttp(429));
  CHECK_FALSE(IsTransientHttp(501));
  CHECK_FALSE(IsTransientHttp(507));
  CHECK_FALSE(IsTransientHttp(404));
  CHECK_FALSE(IsTransientHttp(416));
  CHECK(IsTransientStatus(core::Status(core::Code::kUnavailable, "refused",
                                       std::string(kUnreachableReason))));
  CHECK_FALSE(IsTransientStatus(core::Unavailable("503 from server", "NOT_READY")));
  CHECK_FALSE(IsTransientStatus(core::Internal("disk")));
}

TEST_CASE("an unreachable server is kUnavailable, retried within the budget", "[cli]") {
  // Port 1 on loopback: nothing listens there, connections are refused.
  HttpClient client("http://127.0.0.1:1/");
  CHECK(client.base_url() == "http://127.0.0.1:1");
  auto start = std::chrono::steady_clock::now();
  auto r = PerformWithRetry(client, HttpRequest{.path = "/healthz"},
                            std::chrono::milliseconds(700));
  auto elapsed = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == core::Code::kUnavailable);
  CHECK(r.status().reason() == kUnreachableReason);
  // 200 ms + 400 ms of backoff fit in 700 ms, the next 800 ms does not.
  CHECK(elapsed >= std::chrono::milliseconds(600));
  CHECK(elapsed < std::chrono::milliseconds(3000));
}

TEST_CASE("backoff gives up when the budget is spent and restarts on progress", "[cli]") {
  Backoff b(std::chrono::milliseconds(350));
  CHECK(b.Wait());        // 200 ms
  CHECK_FALSE(b.Wait());  // 200 + 400 > 350
  b.Reset();
  CHECK(b.Wait());
  Backoff none(std::chrono::milliseconds(0));
  CHECK_FALSE(none.Wait());
}

TEST_CASE("URL encoding keeps only unreserved characters", "[cli]") {
  CHECK(UrlEncode("abc-._~XYZ09") == "abc-._~XYZ09");
  CHECK(UrlEncode("a b/c=d&e") == "a%20b%2Fc%3Dd%26e");
  CHECK(UrlEncode("\xff") == "%FF");
}

}  // namespace
}  // namespace sigil::cli
