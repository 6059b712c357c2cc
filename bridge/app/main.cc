#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <vector>

#include "bridge/app/cli.h"
#include "bridge/app/daemon.h"
#include "bridge/app/logging.h"
#include "bridge/app/sink_tools.h"
#include "bridge/common/version.h"
#include "config/config_loader.h"
#include "sinks/builtin_sinks.h"

namespace {

int Main(const std::vector<std::string>& args) {
  using hb::Command;
  // Before any thread exists, so every thread inherits the mask and the
  // daemon receives them through sigwait().
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const char* config_from_env = std::getenv("HEALTH_BRIDGE_CONFIG");
  const Command command =
      hb::ParseCommandLine(args, config_from_env != nullptr && *config_from_env != '\0'
                                     ? std::optional<std::string>(config_from_env)
                                     : std::nullopt);
  switch (command.kind) {
    case Command::Kind::kHelp:
      std::cout << hb::UsageText();
      return hb::kExitOk;
    case Command::Kind::kVersion:
      std::cout << "health-bridge " << hb::kVersion << " (" << hb::kGitRevision << ")\n";
      return hb::kExitOk;
    case Command::Kind::kUsageError:
      std::cerr << "health-bridge: " << command.error << "\n" << hb::UsageText();
      return hb::kExitUsage;
    case Command::Kind::kCheckConfig:
    case Command::Kind::kTestSink:
    case Command::Kind::kReplay:
    case Command::Kind::kRun:
      break;
  }
  hb::SinkRegistry sinks;
  hb::RegisterBuiltinSinks(sinks);
  const hb::ConfigSource load = [&] {
    return hb::LoadConfigFile(command.config_path, sinks.Parsers(), hb::ProcessEnvironment());
  };
  const hb::LoadResult loaded = load();
  if (!loaded.ok()) {
    std::cerr << "health-bridge: " << command.config_path << " is not valid:\n";
    for (const auto& error : loaded.errors) std::cerr << "  " << error << "\n";
    return hb::kExitUsage;
  }
  if (command.kind == Command::Kind::kCheckConfig) {
    std::cout << hb::FormatEffectiveConfig(*loaded.config, /*mask_secrets=*/true);
    return hb::kExitOk;
  }
  if (command.kind == Command::Kind::kTestSink) {
    return hb::TestSink(*loaded.config, sinks, command.sink, std::cout);
  }
  if (command.kind == Command::Kind::kReplay) {
    return hb::ReplayDeadLetters(
        *loaded.config, sinks, command.file,
        command.sink.empty() ? std::nullopt : std::optional<std::string>(command.sink), std::cout);
  }
  hb::SetUpLogging(loaded.config->log);
  spdlog::info("configuration from {}", command.config_path);
  // The one piece of process-wide mutable state, handed down explicitly.
  prometheus::Registry registry;
  return hb::RunDaemon(*loaded.config, sinks, registry, load);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& error) {
    std::cerr << "health-bridge: " << error.what() << "\n";
    return hb::kExitRuntime;
  }
}
