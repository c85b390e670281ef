#include "validator/tensor.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "core/fs.h"

namespace sigil::validator {
namespace {

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  size_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::kF64, "F64", 8}, {DType::kF32, "F32", 4}, {DType::kF16, "F16", 2}, {DType::kBF16, "BF16", 2},
    {DType::kI64, "I64", 8}, {DType::kI32, "I32", 4}, {DType::kI16, "I16", 2}, {DType::kI8, "I8", 1},
    {DType::kU8, "U8", 1},   {DType::kBool, "BOOL", 1},
};

const DTypeInfo& Info(DType dtype) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.dtype == dtype) return info;
  }
  return kDTypes[0];  // unreachable for a valid enum value
}

}  // namespace

core::Result<DType> ParseDType(std::string_view name) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.name == name) return info.dtype;
  }
  return core::InvalidArgument("unsupported dtype '" + std::string(name) + "'", "UNSUPPORTED_DTYPE");
}

std::string_view DTypeName(DType dtype) { return Info(dtype).name; }

size_t DTypeSize(DType dtype) { return Info(dtype).size; }

bool IsFloat(DType dtype) {
  return dtype == DType::kF64 || dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16;
}

uint64_t TensorRef::Count() const {
  for (uint64_t d : shape) {
    if (d == 0) return 0;
  }
  uint64_t count = 1;
  for (uint64_t d : shape) {
    // Saturates, so that bounds checks see an impossible size rather than a
    // product that wrapped around to a small one.
    if (__builtin_mul_overflow(count, d, &count)) return UINT64_MAX;
  }
  return count;
}

core::Result<ReadAtFn> FileReader(const std::string& path, uint64_t* size) {
  int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) return core::ErrnoStatus(errno, "open " + path);
  // The descriptor lives as long as the last copy of the returned function.
  auto fd = std::make_shared<core::UniqueFd>(raw);
  struct stat st;
  if (::fstat(fd->get(), &st) != 0) return core::ErrnoStatus(errno, "stat " + path);
  if (size != nullptr) *size = static_cast<uint64_t>(st.st_size);
  return ReadAtFn([fd, path](uint64_t offset, size_t n, char* out) -> core::Status {
    while (n > 0) {
      core::Result<size_t> got = core::PreadSome(fd->get(), out, n, offset);
      if (!got.ok()) return got.status().Annotate(path);
      if (*got == 0) return core::DataLoss(path + ": unexpected end of file at offset " + std::to_string(offset));
      out += *got;
      offset += *got;
      n -= *got;
    }
    return core::OkStatus();
  });
}

}  // namespace sigil::validator
