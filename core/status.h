// Status and Result<T>: errors as values.
//
// A Status carries a canonical code (mapped to HTTP only in api/), a human
// message, an optional machine-readable reason such as "DIGEST_MISMATCH"
// (defaults to the code's name), and an optional JSON object text with
// details for the client. Result<T> holds either a T or a non-OK Status.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sigil::core {

enum class Code {
  kOk = 0,
  kCancelled,
  kUnknown,
  kInvalidArgument,
  kDeadlineExceeded,
  kNotFound,
  kAlreadyExists,
  kPermissionDenied,
  kResourceExhausted,
  kFailedPrecondition,
  kAborted,
  kOutOfRange,
  kUnimplemented,
  kInternal,
  kUnavailable,
  kDataLoss,
  kUnauthenticated,
};

// "INVALID_ARGUMENT", "NOT_FOUND", ...
std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message, std::string reason = {},
         std::string detail_json = {});

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // Machine-readable reason; the code's name when none was given.
  std::string reason() const;
  // A JSON object as text, or empty.
  const std::string& detail() const { return detail_; }

  Status WithDetail(std::string detail_json) &&;
  // Prefixes the message with context: "opening blob: <message>".
  Status Annotate(std::string_view context) const;
  std::string ToString() const;

  // Explicitly ignores a status whose failure does not matter.
  void IgnoreError() const {}

 private:
  Code code_ = Code::kOk;
  std::string message_;
  std::string reason_;
  std::string detail_;
};

inline Status OkStatus() { return Status(); }
Status InvalidArgument(std::string message, std::string reason = {});
Status NotFound(std::string message, std::string reason = {});
Status AlreadyExists(std::string message, std::string reason = {});
Status FailedPrecondition(std::string message, std::string reason = {});
Status PermissionDenied(std::string message, std::string reason = {});
Status Unauthenticated(std::string message, std::string reason = {});
Status ResourceExhausted(std::string message, std::string reason = {});
Status OutOfRange(std::string message, std::string reason = {});
Status DataLoss(std::string message, std::string reason = {});
Status Internal(std::string message, std::string reason = {});
Status Unavailable(std::string message, std::string reason = {});
Status Aborted(std::string message, std::string reason = {});
Status Cancelled(std::string message, std::string reason = {});
Status DeadlineExceeded(std::string message, std::string reason = {});
Status Unimplemented(std::string message, std::string reason = {});
// From errno: ENOENT -> kNotFound, ENOSPC/EDQUOT -> kResourceExhausted
// (reason "INSUFFICIENT_STORAGE"), EACCES -> kPermissionDenied, else kInternal.
Status ErrnoStatus(int err, std::string_view context);

// Holds a T or a non-OK Status. Never holds an OK status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    if (std::get<0>(v_).ok()) v_ = Status(Code::kInternal, "Result built from OK status");
  }

  bool ok() const { return v_.index() == 1; }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<0>(v_);
  }
  // REQUIRES: ok()
  T& value() & { return std::get<1>(v_); }
  const T& value() const& { return std::get<1>(v_); }
  T&& value() && { return std::get<1>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<Status, T> v_;
};

}  // namespace sigil::core

#define SIGIL_CONCAT_INNER(a, b) a##b
#define SIGIL_CONCAT(a, b) SIGIL_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::sigil::core::Status _sigil_status = (expr);    \
    if (!_sigil_status.ok()) return _sigil_status;   \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(SIGIL_CONCAT(_sigil_result_, __LINE__), lhs, expr)
