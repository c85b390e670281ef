#include "core/status.h"

#include <cerrno>
#include <cstring>

namespace sigil::core {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kCancelled: return "CANCELLED";
    case Code::kUnknown: return "UNKNOWN";
    case Code::kInvalidArgument: return "INVALID_ARGUMENT";
    case Code::kDeadlineExceeded: return "DEADLINE_EXCEEDED";
    case Code::kNotFound: return "NOT_FOUND";
    case Code::kAlreadyExists: return "ALREADY_EXISTS";
    case Code::kPermissionDenied: return "PERMISSION_DENIED";
    case Code::kResourceExhausted: return "RESOURCE_EXHAUSTED";
    case Code::kFailedPrecondition: return "FAILED_PRECONDITION";
    case Code::kAborted: return "ABORTED";
    case Code::kOutOfRange: return "OUT_OF_RANGE";
    case Code::kUnimplemented: return "UNIMPLEMENTED";
    case Code::kInternal: return "INTERNAL";
    case Code::kUnavailable: return "UNAVAILABLE";
    case Code::kDataLoss: return "DATA_LOSS";
    case Code::kUnauthenticated: return "UNAUTHENTICATED";
  }
  return "UNKNOWN";
}

Status::Status(Code code, std::string message, std::string reason, std::string detail_json)
    : code_(code), message_(std::move(message)), reason_(std::move(reason)),
      detail_(std::move(detail_json)) {}

std::string Status::reason() const {
  if (!reason_.empty()) return reason_;
  return std::string(CodeName(code_));
}

Status Status::WithDetail(std::string detail_json) && {
  detail_ = std::move(detail_json);
  return std::move(*this);
}

Status Status::Annotate(std::string_view context) const {
  if (ok()) return *this;
  Status s = *this;
  s.message_ = std::string(context) + ": " + message_;
  return s;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return reason() + ": " + message_;
}

#define SIGIL_DEFINE_STATUS_CTOR(Name, CodeValue)            \
  Status Name(std::string message, std::string reason) {     \
    return Status(Code::CodeValue, std::move(message), std::move(reason)); \
  }
SIGIL_DEFINE_STATUS_CTOR(InvalidArgument, kInvalidArgument)
SIGIL_DEFINE_STATUS_CTOR(NotFound, kNotFound)
SIGIL_DEFINE_STATUS_CTOR(AlreadyExists, kAlreadyExists)
SIGIL_DEFINE_STATUS_CTOR(FailedPrecondition, kFailedPrecondition)
SIGIL_DEFINE_STATUS_CTOR(PermissionDenied, kPermissionDenied)
SIGIL_DEFINE_STATUS_CTOR(Unauthenticated, kUnauthenticated)
SIGIL_DEFINE_STATUS_CTOR(ResourceExhausted, kResourceExhausted)
SIGIL_DEFINE_STATUS_CTOR(OutOfRange, kOutOfRange)
SIGIL_DEFINE_STATUS_CTOR(DataLoss, kDataLoss)
SIGIL_DEFINE_STATUS_CTOR(Internal, kInternal)
SIGIL_DEFINE_STATUS_CTOR(Unavailable, kUnavailable)
SIGIL_DEFINE_STATUS_CTOR(Aborted, kAborted)
SIGIL_DEFINE_STATUS_CTOR(Cancelled, kCancelled)
SIGIL_DEFINE_STATUS_CTOR(DeadlineExceeded, kDeadlineExceeded)
SIGIL_DEFINE_STATUS_CTOR(Unimplemented, kUnimplemented)
#undef SIGIL_DEFINE_STATUS_CTOR

Status ErrnoStatus(int err, std::string_view context) {
  std::string message = std::string(context) + ": " + std::strerror(err);
  switch (err) {
    case ENOENT: return NotFound(std::move(message));
    case ENOSPC:
    case EDQUOT: return ResourceExhausted(std::move(message), "INSUFFICIENT_STORAGE");
    case EACCES:
    case EPERM: return PermissionDenied(std::move(message));
    case EEXIST: return AlreadyExists(std::move(message));
    default: return Internal(std::move(message));
  }
}

}  // namespace sigil::core
