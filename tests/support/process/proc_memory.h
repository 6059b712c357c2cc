#pragma once

// A child process's memory as the kernel counts it, for tests that bound
// what a hostile peer can make the bridge hold.

#include <sys/types.h>

#include <cstddef>
#include <fstream>
#include <string>
#include <string_view>

#include "tests/support/sanitizer_build.h"

namespace hb::test_support {

// Under ASan the freed-memory quarantine and the shadow pages dwarf any
// bound: the release pass proves the memory bounds, the sanitizer passes
// everything else.
inline constexpr bool kMemoryBoundsHold = !kSanitizerBuild;

// A field of /proc/PID/status in KiB ("VmRSS", "VmHWM"); 0 once it is gone.
inline std::size_t ProcStatusKib(pid_t pid, std::string_view field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  const std::string prefix = std::string(field) + ":";
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with(prefix)) return std::stoul(line.substr(prefix.size()));
  }
  return 0;
}

// Resident memory now.
inline std::size_t RssKib(pid_t pid) { return ProcStatusKib(pid, "VmRSS"); }
// The most resident memory since the start (the kernel's high-water mark).
inline std::size_t PeakRssKib(pid_t pid) { return ProcStatusKib(pid, "VmHWM"); }

}  // namespace hb::test_support
