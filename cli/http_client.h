// HttpClient: one libcurl easy handle, reused request after request so that
// the connection to the server is kept alive. Not thread-safe: give each
// thread its own client (a handle is cheap, the connection is the point).
//
// Every request sends an empty `Expect:` header (no `100-continue` round
// trip before a body), has a connect timeout, and is aborted when it moves fewer
// than a byte per second for `stall_seconds` (a stalled server is treated as
// an unreachable one).
//
// After a 413 answer the handle's connections are dropped: a server may
// answer an oversized request before reading its body (sigild then closes
// the connection), so that connection cannot be reused.
//
// https:// servers are always verified (certificate chain and host name),
// against the system's CA store or the CA file of HttpOptions::ca_file (or
// SetDefaultCaFile); there is no way to turn verification off.
//
// Errors: Perform() fails only when no HTTP answer came back (connection
// refused or reset, timeout, stall): kUnavailable with reason
// "SERVER_UNREACHABLE"; an https:// server whose certificate is not trusted:
// kFailedPrecondition with reason "TLS_VERIFY_FAILED" (not retried); a CA
// file that cannot be used: kInvalidArgument with reason "CACERT_INVALID";
// or when the caller's sink refused bytes (its own Status). Any HTTP status,
// 4xx and 5xx included, is a successful Perform();
// ErrorFromResponse() turns a non-2xx answer into a Status from the server's
// JSON error body.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sigil::cli {

inline constexpr std::string_view kUnreachableReason = "SERVER_UNREACHABLE";
inline constexpr std::string_view kDefaultServer = "http://127.0.0.1:7070";

struct HttpRequest {
  std::string method = "GET";  // GET, HEAD, PUT, PATCH, POST, DELETE
  std::string path = {};       // "/api/v1/...", appended to the base URL
  std::vector<std::string> headers = {};  // "Name: value"
  // Request body; must stay alive during Perform(). Sent for PUT/PATCH/POST.
  std::string_view body = {};
  // When set, the body of a 2xx answer goes here instead of into
  // HttpResponse::body, with the answer's HTTP status (200 or 206 tell a
  // whole body from a range). Returning a non-OK Status aborts the transfer
  // and Perform() returns that Status.
  std::function<core::Status(long http_status, const char* data, size_t n)> sink = nullptr;
  // Called with the number of body bytes sent so far in this request.
  std::function<void(uint64_t sent)> on_upload_progress = nullptr;
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lowercased; last one wins
  std::string body;                            // unless a sink took it

  bool ok() const { return status >= 200 && status < 300; }
  // The header's value, or "" when absent. REQUIRES: name is lowercase.
  std::string Header(const std::string& name) const;
};

struct HttpOptions {
  std::chrono::milliseconds connect_timeout{5000};
  // Abort a transfer that moves less than 1 byte/s for this long.
  std::chrono::seconds stall_seconds{30};
  // Largest non-sink body kept in memory (JSON answers, error bodies).
  size_t max_body_bytes = 64 << 20;
  // PEM file of the CA certificates that https:// servers are verified
  // against instead of the system's; empty: the default CA file (below), if
  // any, else the system's.
  std::string ca_file = {};
  // The API token sent as "Authorization: Bearer <token>" on every request;
  // unset: ResolveToken(base_url) ($SIGIL_TOKEN or the credentials file,
  // cli/credentials.h); "": none. A token is never sent over plain http://
  // to a host that is not loopback: Perform() then fails before sending,
  // kInvalidArgument INSECURE_TRANSPORT.
  std::optional<std::string> token = std::nullopt;
};

// The CA file of clients whose options name none. sigil's main sets it from
// --cacert or $SIGIL_CACERT before it makes any client. Thread-safe.
void SetDefaultCaFile(std::string path);
std::string DefaultCaFile();

class HttpClient {
 public:
  // base_url like "http://127.0.0.1:7070" (a trailing '/' is removed).
  explicit HttpClient(std::string base_url, HttpOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  const std::string& base_url() const { return base_url_; }

  core::Result<HttpResponse> Perform(const HttpRequest& request);

 private:
  struct Impl;
  std::string base_url_;
  HttpOptions options_;
  std::string token_;
  core::Status token_status_;  // a credentials file that could not be read
  std::unique_ptr<Impl> impl_;
};

// True for failures worth retrying: no answer from the server, or a 5xx
// other than 501/507, or 429.
bool IsTransientStatus(const core::Status& status);
bool IsTransientHttp(long http_status);

// A Status for a non-2xx answer. The code follows the HTTP status (400
// kInvalidArgument, 404 kNotFound, 409 kAlreadyExists, 413/429/507
// kResourceExhausted, 416 kOutOfRange, 5xx kUnavailable/kInternal ...); the
// reason, message and detail come from the JSON error body when there is
// one. REQUIRES: !response.ok()
core::Status ErrorFromResponse(const HttpResponse& response);

// Perform() plus ErrorFromResponse(): a non-2xx answer becomes its Status.
core::Result<HttpResponse> PerformOk(HttpClient& client, const HttpRequest& request);

// Exponential backoff within a time budget. Wait() sleeps the next delay
// (200 ms doubling to 5 s) and returns false, without sleeping, once the
// budget since construction or the last Reset() would be exceeded.
class Backoff {
 public:
  explicit Backoff(std::chrono::milliseconds budget);
  bool Wait();
  // Progress was made: start the budget and the delays over.
  void Reset();

 private:
  std::chrono::milliseconds budget_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::milliseconds delay_;
};

// Retries request while the failure is transient and the budget lasts;
// returns the last outcome (a transient 5xx answer comes back as a response).
core::Result<HttpResponse> PerformWithRetry(HttpClient& client, const HttpRequest& request,
                                            std::chrono::milliseconds budget);

// Percent-encodes everything but unreserved characters (RFC 3986).
std::string UrlEncode(std::string_view text);

}  // namespace sigil::cli
