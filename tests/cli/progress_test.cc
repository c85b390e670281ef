#include "cli/progress.h"

#include <catch2/catch.hpp>

namespace sigil::cli {
namespace {

TEST_CASE("byte counts are formatted in binary units", "[cli]") {
  CHECK(FormatBytes(0) == "0 B");
  CHECK(FormatBytes(1023) == "1023 B");
  CHECK(FormatBytes(1024) == "1.0 KiB");
  CHECK(FormatBytes(1536) == "1.5 KiB");
  CHECK(FormatBytes(12 * 1024 * 1024 + 512 * 1024) == "12.5 MiB");
  CHECK(FormatBytes(uint64_t{3} * 1024 * 1024 * 1024 + uint64_t{205} * 1024 * 1024) ==
        "3.20 GiB");
  CHECK(FormatBytes(uint64_t{2} << 40) == "2.00 TiB");
}

TEST_CASE("durations are formatted compactly", "[cli]") {
  CHECK(FormatDuration(0) == "0s");
  CHECK(FormatDuration(42.4) == "42s");
  CHECK(FormatDuration(187) == "3m07s");
  CHECK(FormatDuration(7500) == "2h05m");
  CHECK(FormatDuration(-1) == "--");
}

TEST_CASE("a progress line shows bar, percentage, bytes, rate and ETA", "[cli]") {
  uint64_t mib = 1 << 20;
  CHECK(FormatProgress(5 * mib, 10 * mib, 1.0 * mib, 10) ==
        "[#####     ]  50%  5.0 MiB / 10.0 MiB  1.0 MiB/s  ETA 5s");
  CHECK(FormatProgress(0, 10 * mib, 0, 4) == "[    ]   0%  0 B / 10.0 MiB");
  CHECK(FormatProgress(10 * mib, 10 * mib, 2.0 * mib, 4) ==
        "[####] 100%  10.0 MiB / 10.0 MiB  2.0 MiB/s  ETA 0s");
  // More than the total (a retried chunk) is shown as the total.
  CHECK(FormatProgress(11, 10, 0, 2) == "[##] 100%  10 B / 10 B");
  // Nothing to transfer is complete.
  CHECK(FormatProgress(0, 0, 0, 2) == "[##] 100%  0 B / 0 B");
}

TEST_CASE("progress counters add, skip and take back", "[cli]") {
  Progress p("x", 100, /*enabled=*/false);
  p.Start();
  p.Add(30);
  p.Undo(10);
  CHECK(p.done() == 20);
  p.Undo(50);  // never below zero
  CHECK(p.done() == 0);
  p.Finish();
}

}  // namespace
}  // namespace sigil::cli
