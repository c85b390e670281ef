// Fuzzes the bundle file reader (cli/bundle_file.h), which `sigil import`
// runs on a tar carried across an air gap. The reader takes a path, so each
// input is written to a file first (in /dev/shm when there is one).
// Invariants: every entry lies inside the file, after its header, with a
// valid unique name; ReadAll and ReadAt return the entry's bytes; an archive
// that opens, written again by TarWriter, opens to the same entries.
//
// A mutated header almost never keeps a valid checksum, which would keep the
// fuzzer at the first check. So when the first byte is odd, the harness
// writes the right checksum into every header before reading (walking the
// archive as the reader does); when even, the bytes are read as they are.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "cli/bundle_file.h"
#include "tests/fuzz/check.h"

using sigil::fuzz::Check;

namespace {

std::string ScratchPath(const char* what) {
  std::error_code ec;
  std::filesystem::path dir = std::filesystem::is_directory("/dev/shm", ec)
                                  ? std::filesystem::path("/dev/shm")
                                  : std::filesystem::temp_directory_path();
  return (dir / ("sigil-tar-fuzz-" + std::to_string(getpid()) + "-" + what)).string();
}

// Writes each header's checksum, walking headers by their octal size field.
void FixChecksums(std::string* tar) {
  uint64_t offset = 0;
  while (offset + 512 <= tar->size()) {
    auto* h = reinterpret_cast<unsigned char*>(tar->data() + offset);
    if (std::all_of(h, h + 512, [](unsigned char c) { return c == 0; })) break;
    std::memset(h + 148, ' ', 8);
    uint32_t sum = 0;
    for (size_t i = 0; i < 512; ++i) sum += h[i];
    std::snprintf(reinterpret_cast<char*>(h + 148), 8, "%06o", sum & 0777777);
    h[155] = ' ';
    uint64_t size = 0;
    for (size_t i = 124; i < 136 && h[i] >= '0' && h[i] <= '7'; ++i) size = size * 8 + (h[i] - '0');
    if (size > tar->size()) break;
    offset += 512 + (size + 511) / 512 * 512;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string input_path = ScratchPath("in.tar");
  static const std::string copy_path = ScratchPath("copy.tar");
  if (size == 0) return 0;
  std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) FixChecksums(&input);
  std::string_view bytes = input;
  size = input.size();
  {
    std::ofstream out(input_path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    Check(out.good());
  }

  sigil::cli::TarLimits limits;
  limits.max_entries = 1000;
  auto reader = sigil::cli::TarReader::Open(input_path, limits);
  if (!reader.ok()) {
    Check(reader.status().reason() == "BUNDLE_FILE_INVALID");
    std::remove(input_path.c_str());
    return 0;
  }
  std::set<std::string> names;
  for (const auto& e : reader->entries()) {
    Check(e.offset >= sigil::cli::kTarBlock && e.offset <= size && e.size <= size - e.offset);
    Check(sigil::cli::CheckTarName(e.name).ok());
    Check(names.insert(e.name).second);
    Check(reader->Find(e.name) == &e);
    auto all = reader->ReadAll(e, e.size);
    Check(all.ok() && *all == bytes.substr(e.offset, e.size));
    char buf[64];
    auto n = reader->ReadAt(e, e.size / 2, buf, sizeof(buf));
    Check(n.ok() && *n == std::min<uint64_t>(sizeof(buf), e.size - e.size / 2));
    Check(bytes.substr(e.offset + e.size / 2, *n) == std::string_view(buf, *n));
  }

  auto writer = sigil::cli::TarWriter::Create(copy_path);
  Check(writer.ok());
  for (const auto& e : reader->entries()) {
    Check(writer->Add(e.name, bytes.substr(e.offset, e.size)).ok());
  }
  Check(writer->Finish().ok());
  auto copy = sigil::cli::TarReader::Open(copy_path, limits);
  Check(copy.ok() && copy->entries().size() == reader->entries().size());
  for (size_t i = 0; i < copy->entries().size(); ++i) {
    const auto& e = copy->entries()[i];
    Check(e.name == reader->entries()[i].name && e.size == reader->entries()[i].size);
  }
  std::remove(input_path.c_str());
  std::remove(copy_path.c_str());
  return 0;
}
