#pragma once

#include <optional>
#include <string>
#include <vector>

namespace hb {

// What the command line asks for. Parsing never exits; main acts on it.
struct Command {
  enum class Kind { kRun, kCheckConfig, kTestSink, kReplay, kVersion, kHelp, kUsageError };
  Kind kind = Kind::kUsageError;
  std::string config_path;  // kRun, kCheckConfig, kTestSink, kReplay
  std::string sink;         // kTestSink: the sink; kReplay: --sink, or "" for each line's own
  std::string file;         // kReplay: the dead-letter file
  std::string error;        // kUsageError: what was wrong
};

// `config_from_env` is HEALTH_BRIDGE_CONFIG: the config file when the
// command line names none.
Command ParseCommandLine(const std::vector<std::string>& args,
                         const std::optional<std::string>& config_from_env = std::nullopt);

// The --help text.
std::string UsageText();

// Exit codes, stable for scripts and supervisors: 0 success, 1 runtime
// failure, 2 usage or configuration error.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;

}  // namespace hb
