// Tensors as the validator sees them: an element type and a place in a file.
//
// Files are read through a ReadAtFn (a blob store, a local file), never
// loaded whole. Where a tensor lives is found by the caller (registry/ and
// cli/ use the scanner's parse of safetensors headers and PyTorch
// checkpoints), so this module depends only on core.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sigil::validator {

// Element types, named as safetensors names them ("F32", "BF16", ...).
enum class DType { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };

// "F32" -> kF32. Errors: kInvalidArgument UNSUPPORTED_DTYPE for other names.
core::Result<DType> ParseDType(std::string_view name);
std::string_view DTypeName(DType dtype);
size_t DTypeSize(DType dtype);
// F64, F32, F16 and BF16: the types statistics are computed for.
bool IsFloat(DType dtype);

// A dense, row-major tensor stored contiguously in a file.
struct TensorRef {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<uint64_t> shape;
  uint64_t offset = 0;  // bytes from the start of the file

  uint64_t Count() const;  // product of the shape (1 for a scalar)
  uint64_t Bytes() const { return Count() * DTypeSize(dtype); }
};

// Fills out with exactly n bytes at offset of a file of known size, or
// returns the error that prevented it. Called with offset + n <= size.
using ReadAtFn = std::function<core::Status(uint64_t offset, size_t n, char* out)>;

// Reads a local file with pread; for the client and tests.
// Errors: those of open(2), annotated with the path.
core::Result<ReadAtFn> FileReader(const std::string& path, uint64_t* size);

}  // namespace sigil::validator
