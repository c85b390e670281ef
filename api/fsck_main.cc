// sigil-fsck: checks a stopped sigild's data directory (registry/check.h).
//
//   sigil-fsck --data DIR [--checkpoint FILE]...
//
// Prints each problem found and a summary; exits 0 when there is none,
// 1 when there are problems, 2 on usage errors or when the check cannot run.
#include <cstdio>
#include <string>
#include <vector>

#include "core/fs.h"
#include "registry/check.h"

namespace {

constexpr char kUsage[] =
    "usage: sigil-fsck --data DIR [--checkpoint FILE]...\n"
    "  Checks a sigild data directory while sigild is stopped: blobs hash to\n"
    "  their names, versions' manifests and blobs exist, aliases and their\n"
    "  history agree, attestations are in the transparency log, the log's\n"
    "  hashes match its leaves (and each checkpoint FILE, a signed note from\n"
    "  GET /api/v1/log/checkpoint), upload offsets fit their data files.\n";

int Run(int argc, char** argv) {
  sigil::registry::CheckOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "--data" || arg == "--checkpoint") && i + 1 < argc) {
      std::string value = argv[++i];
      if (arg == "--data") {
        options.data_dir = value;
      } else {
        auto note = sigil::core::ReadFile(value, 1 << 20);
        if (!note.ok()) {
          std::fprintf(stderr, "sigil-fsck: %s\n", note.status().ToString().c_str());
          return 2;
        }
        options.checkpoints.push_back(*note);
      }
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "sigil-fsck: unexpected argument '%s'\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  if (options.data_dir.empty()) {
    std::fprintf(stderr, "sigil-fsck: --data is required\n%s", kUsage);
    return 2;
  }
  auto report = sigil::registry::CheckDataDir(options);
  if (!report.ok()) {
    std::fprintf(stderr, "sigil-fsck: %s\n", report.status().ToString().c_str());
    return 2;
  }
  for (const auto& p : report->problems) std::printf("%s: %s\n", p.kind.c_str(), p.message.c_str());
  std::printf(
      "%s: %llu blobs (%llu bytes), %llu versions, %llu aliases (%llu history events), %llu attestations, "
      "log size %llu, %llu upload sessions; %zu problems\n",
      options.data_dir.c_str(), static_cast<unsigned long long>(report->blobs),
      static_cast<unsigned long long>(report->blob_bytes), static_cast<unsigned long long>(report->versions),
      static_cast<unsigned long long>(report->aliases), static_cast<unsigned long long>(report->alias_events),
      static_cast<unsigned long long>(report->attestations), static_cast<unsigned long long>(report->log_size),
      static_cast<unsigned long long>(report->uploads), report->problems.size());
  return report->ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
