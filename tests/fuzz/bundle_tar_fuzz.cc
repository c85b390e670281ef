// Fuzzes the bundle file reader (cli/bundle_file.h), which `sigil import`
// runs on a tar carried across an air gap. The reader takes a path, so each
// input is written to a file first (in /dev/shm when there is one).
// Invariants: every entry lies inside the file, after its header, with a
// valid unique name; ReadAll and ReadAt return the entry's bytes; an archive
// that opens, written again by TarWriter, opens to the same entries.
#include <unistd.h>

#include <cstdio>
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string input_path = ScratchPath("in.tar");
  static const std::string copy_path = ScratchPath("copy.tar");
  std::string_view bytes = sigil::fuzz::AsText(data, size);
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
