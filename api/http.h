// The HTTP request and response as the routes see them: plain values with no
// socket types, so the routes are testable without a socket.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/blob_store.h"
#include "storage/uploads.h"

namespace sigil::api {

struct HttpRequest {
  std::string method;  // "GET", "PUT", ...
  std::string path;    // percent-encoded, without the query
  std::map<std::string, std::string> query;    // decoded
  std::map<std::string, std::string> headers;  // names lowercased
  std::string_view body;                       // owned by the caller
  // Upload bodies (PATCH and PUT on /api/v1/uploads/{id}, PUT
  // /api/v1/blobs/{digest}) with a Content-Length are not buffered: the
  // route reads them from here as they arrive, and body stays empty.
  storage::ChunkSource* body_stream = nullptr;
  uint64_t body_stream_length = 0;  // the Content-Length of body_stream
  // The client's IP address (behind a proxy, the proxy's).
  std::string remote_address;

  // The header's value, or empty.
  std::string Header(const std::string& lowercase_name) const;
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type = "application/json";
  std::string body;
  // A byte range of a blob to send instead of body (GET), or only announce
  // (HEAD: file_length is the Content-Length, nothing is sent).
  std::unique_ptr<storage::BlobReader> file;
  uint64_t file_offset = 0;
  uint64_t file_length = 0;
  bool head_only = false;

  void AddHeader(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

// Splits a raw query string ("a=1&b=x%20y") into decoded pairs; a repeated
// key keeps its last value.
std::map<std::string, std::string> ParseQuery(std::string_view raw);
// Splits at '/' ("a//b" -> "a", "", "b"; "" -> one empty part).
std::vector<std::string> SplitPath(std::string_view path);
// Decodes %XX escapes ('+' stays '+'). Fails on a malformed escape.
bool PercentDecode(std::string_view in, std::string* out);

}  // namespace sigil::api
