#include "cli/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/credentials.h"
#include "core/json.h"

namespace sigil::cli {
namespace {

using core::Code;
using core::Status;

std::once_flag g_curl_init;

std::mutex g_default_ca_mu;
std::string g_default_ca;

struct CurlSlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r' || s[b] == '\n')) ++b;
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (e > b && space(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

// State of one transfer, seen by the callbacks.
struct Transfer {
  CURL* curl = nullptr;
  const HttpRequest* request = nullptr;
  HttpResponse* response = nullptr;
  size_t max_body = 0;
  Status sink_status;
  bool body_too_large = false;
};

size_t OnHeader(char* data, size_t size, size_t nitems, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * nitems;
  std::string_view line(data, n);
  if (line.substr(0, 5) == "HTTP/") {
    // A new status line (after a 1xx, or a redirect): forget earlier headers.
    t->response->headers.clear();
    return n;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    t->response->headers[Lower(Trim(line.substr(0, colon)))] = Trim(line.substr(colon + 1));
  }
  return n;
}

size_t OnBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * nmemb;
  long code = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
  if (t->request->sink && code >= 200 && code < 300) {
    t->sink_status = t->request->sink(code, data, n);
    return t->sink_status.ok() ? n : 0;
  }
  if (t->response->body.size() + n > t->max_body) {
    t->body_too_large = true;
    return 0;
  }
  t->response->body.append(data, n);
  return n;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t ulnow) {
  auto* t = static_cast<Transfer*>(user);
  if (t->request->on_upload_progress && ulnow > 0) {
    t->request->on_upload_progress(static_cast<uint64_t>(ulnow));
  }
  return 0;
}

Code CodeForHttp(long status) {
  switch (status) {
    case 400: return Code::kInvalidArgument;
    case 401: return Code::kUnauthenticated;
    case 403: return Code::kPermissionDenied;
    case 404: return Code::kNotFound;
    case 409: return Code::kAlreadyExists;
    case 412: return Code::kFailedPrecondition;
    case 413:
    case 429:
    case 507: return Code::kResourceExhausted;
    case 416: return Code::kOutOfRange;
    case 501: return Code::kUnimplemented;
    case 502:
    case 503:
    case 504: return Code::kUnavailable;
    default: break;
  }
  if (status >= 500) return Code::kInternal;
  if (status >= 400) return Code::kInvalidArgument;
  return Code::kUnknown;
}

}  // namespace

void SetDefaultCaFile(std::string path) {
  std::lock_guard<std::mutex> lock(g_default_ca_mu);
  g_default_ca = std::move(path);
}

std::string DefaultCaFile() {
  std::lock_guard<std::mutex> lock(g_default_ca_mu);
  return g_default_ca;
}

std::string HttpResponse::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

struct HttpClient::Impl {
  CURL* curl = nullptr;
};

HttpClient::HttpClient(std::string base_url, HttpOptions options)
    : base_url_(std::move(base_url)), options_(options), impl_(std::make_unique<Impl>()) {
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
  std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  impl_->curl = curl_easy_init();
  if (options_.token.has_value()) {
    token_ = *options_.token;
  } else {
    auto token = ResolveToken(base_url_);
    if (token.ok()) token_ = std::move(*token);
    else token_status_ = token.status();
  }
}

HttpClient::~HttpClient() {
  if (impl_->curl != nullptr) curl_easy_cleanup(impl_->curl);
}

core::Result<HttpResponse> HttpClient::Perform(const HttpRequest& request) {
  CURL* curl = impl_->curl;
  if (curl == nullptr) return core::Internal("curl_easy_init failed");
  if (!token_status_.ok()) return token_status_;
  if (!token_.empty()) RETURN_IF_ERROR(CheckTokenTransport(base_url_));
  // Reset keeps the connection cache, so the next request reuses the
  // kept-alive connection.
  curl_easy_reset(curl);

  HttpResponse response;
  Transfer t;
  t.curl = curl;
  t.request = &request;
  t.response = &response;
  t.max_body = options_.max_body_bytes;

  std::string url = base_url_ + request.path;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.stall_seconds.count()));
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  // Paths go out exactly as built (names were validated before).
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "sigil");
  // Verification stays on whatever the CA: a server must prove its name.
  const std::string ca_file = options_.ca_file.empty() ? DefaultCaFile() : options_.ca_file;
  if (!ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file.c_str());
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  char curl_error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
  if (request.on_upload_progress) {
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &OnProgress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
  }

  const std::string& m = request.method;
  if (m == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (m == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (m == "PUT" || m == "PATCH" || m == "POST") {
    // POSTFIELDS sends from our buffer without a copy; the method is then
    // overridden. An empty body still sends Content-Length: 0.
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.empty() ? "" : request.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
    if (m != "POST") curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, m.c_str());
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, m.c_str());
  }

  curl_slist* list = curl_slist_append(nullptr, "Expect:");
  if (!token_.empty()) {
    std::string authorization = "Authorization: Bearer " + token_;
    if (curl_slist* next = curl_slist_append(list, authorization.c_str())) list = next;
  }
  bool has_content_type = false;
  for (const std::string& h : request.headers) {
    if (Lower(h.substr(0, 13)) == "content-type:") has_content_type = true;
    if (curl_slist* next = curl_slist_append(list, h.c_str())) list = next;
  }
  if (!has_content_type && (m == "PUT" || m == "PATCH" || m == "POST")) {
    if (curl_slist* next = curl_slist_append(list, "Content-Type: application/octet-stream")) {
      list = next;
    }
  }
  std::unique_ptr<curl_slist, CurlSlistDeleter> headers(list);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());

  CURLcode rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  // Unset the list and the error buffer before they are freed: the handle
  // outlives this call.
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  if (response.status == 413) {
    // A server may answer an oversized request before reading its body,
    // and the connection is then unusable: a new handle drops it.
    curl_easy_cleanup(curl);
    impl_->curl = curl_easy_init();
  }
  if (rc != CURLE_OK) {
    if (!t.sink_status.ok()) return t.sink_status;
    if (t.body_too_large) {
      return core::ResourceExhausted(m + " " + request.path + ": answer larger than " +
                                     std::to_string(options_.max_body_bytes) + " bytes");
    }
    std::string why = curl_error[0] != '\0' ? curl_error : curl_easy_strerror(rc);
    if (rc == CURLE_PEER_FAILED_VERIFICATION) {
      // Retrying cannot help: the certificate or the trusted CAs must change.
      return Status(Code::kFailedPrecondition,
                    url + ": the server's TLS certificate is not trusted (" + why +
                        "); name the CA that signed it with --cacert FILE or $SIGIL_CACERT",
                    "TLS_VERIFY_FAILED");
    }
    if (rc == CURLE_SSL_CACERT_BADFILE) {
      return Status(Code::kInvalidArgument, "CA file '" + ca_file + "' cannot be used: " + why,
                    "CACERT_INVALID");
    }
    return Status(Code::kUnavailable,
                  m + " " + url + ": " + why, std::string(kUnreachableReason));
  }
  return response;
}

bool IsTransientHttp(long http_status) {
  if (http_status == 429) return true;
  return http_status >= 500 && http_status != 501 && http_status != 507;
}

bool IsTransientStatus(const Status& status) {
  return status.code() == Code::kUnavailable && status.reason() == kUnreachableReason;
}

Status ErrorFromResponse(const HttpResponse& response) {
  Code code = CodeForHttp(response.status);
  std::string fallback = "HTTP " + std::to_string(response.status);
  auto parsed = core::ParseJson(response.body);
  if (parsed.ok() && parsed->is_object() && parsed->contains("error") &&
      (*parsed)["error"].is_object()) {
    const core::Json& e = (*parsed)["error"];
    std::string reason = e.contains("code") && e["code"].is_string() ? e["code"].get<std::string>()
                                                                      : std::string();
    std::string message = e.contains("message") && e["message"].is_string()
                              ? e["message"].get<std::string>()
                              : fallback;
    std::string detail;
    if (e.contains("detail") && e["detail"].is_object() && !e["detail"].empty()) {
      detail = core::DumpJson(e["detail"]);
    }
    return Status(code, message, reason, detail);
  }
  std::string body = response.body.substr(0, 200);
  return Status(code, body.empty() ? fallback : fallback + ": " + Trim(body));
}

core::Result<HttpResponse> PerformOk(HttpClient& client, const HttpRequest& request) {
  ASSIGN_OR_RETURN(HttpResponse response, client.Perform(request));
  if (!response.ok()) return ErrorFromResponse(response);
  return response;
}

Backoff::Backoff(std::chrono::milliseconds budget) : budget_(budget) { Reset(); }

void Backoff::Reset() {
  start_ = std::chrono::steady_clock::now();
  delay_ = std::chrono::milliseconds(200);
}

bool Backoff::Wait() {
  auto elapsed = std::chrono::steady_clock::now() - start_;
  if (elapsed + delay_ > budget_) return false;
  std::this_thread::sleep_for(delay_);
  delay_ = std::min(delay_ * 2, std::chrono::milliseconds(5000));
  return true;
}

core::Result<HttpResponse> PerformWithRetry(HttpClient& client, const HttpRequest& request,
                                            std::chrono::milliseconds budget) {
  Backoff backoff(budget);
  while (true) {
    core::Result<HttpResponse> r = client.Perform(request);
    bool transient = r.ok() ? IsTransientHttp(r->status) : IsTransientStatus(r.status());
    if (!transient || !backoff.Wait()) return r;
  }
}

std::string UrlEncode(std::string_view text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace sigil::cli
