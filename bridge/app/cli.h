#pragma once

#include <string>
#include <vector>

namespace hb {

// What the command line asks for. Parsing never exits; main acts on it.
struct Command {
  enum class Kind { kRun, kCheckConfig, kVersion, kHelp, kUsageError };
  Kind kind = Kind::kUsageError;
  std::string config_path;  // kRun, kCheckConfig
  std::string error;        // kUsageError: what was wrong
};

Command ParseCommandLine(const std::vector<std::string>& args);

// The --help text.
std::string UsageText();

// Exit codes, stable for scripts and supervisors: 0 success, 1 runtime
// failure, 2 usage or configuration error.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;

}  // namespace hb
