#include "core/status.h"

#include <catch2/catch.hpp>

namespace sigil::core {
namespace {

Result<int> Half(int n) {
  if (n % 2 != 0) return InvalidArgument("odd", "ODD_NUMBER");
  return n / 2;
}

Result<int> Quarter(int n) {
  ASSIGN_OR_RETURN(int half, Half(n));
  ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

Status CheckEven(int n) {
  RETURN_IF_ERROR(Half(n).status());
  return OkStatus();
}

TEST_CASE("status carries code, reason and detail", "[core]") {
  Status ok;
  CHECK(ok.ok());
  CHECK(ok.ToString() == "OK");

  Status s = NotFound("no such blob");
  CHECK(s.code() == Code::kNotFound);
  CHECK(s.reason() == "NOT_FOUND");

  Status r = InvalidArgument("bad", "DIGEST_MISMATCH").WithDetail(R"({"expected":"x"})");
  CHECK(r.reason() == "DIGEST_MISMATCH");
  CHECK(r.detail() == R"({"expected":"x"})");
  CHECK(r.Annotate("commit").message() == "commit: bad");
}

TEST_CASE("result holds a value or an error, never an OK status", "[core]") {
  CHECK(Quarter(8).value() == 2);
  auto odd = Quarter(6);
  REQUIRE_FALSE(odd.ok());
  CHECK(odd.status().code() == Code::kInvalidArgument);
  CHECK(odd.status().reason() == "ODD_NUMBER");

  Result<int> from_ok = OkStatus();
  CHECK_FALSE(from_ok.ok());
  CHECK(from_ok.status().code() == Code::kInternal);

  CHECK(CheckEven(4).ok());
  CHECK(CheckEven(3).code() == Code::kInvalidArgument);
}

TEST_CASE("errno statuses map to canonical codes", "[core]") {
  CHECK(ErrnoStatus(ENOENT, "open").code() == Code::kNotFound);
  CHECK(ErrnoStatus(ENOSPC, "write").code() == Code::kResourceExhausted);
  CHECK(ErrnoStatus(ENOSPC, "write").reason() == "INSUFFICIENT_STORAGE");
  CHECK(ErrnoStatus(EIO, "write").code() == Code::kInternal);
}

}  // namespace
}  // namespace sigil::core
