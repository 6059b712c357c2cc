#include "bridge/app/cli.h"

namespace hb {

std::string UsageText() {
  return "usage: health-bridge --config FILE      run the bridge (also -c FILE)\n"
         "       health-bridge check-config FILE  validate FILE and print the effective\n"
         "                                        configuration, secrets masked\n"
         "       health-bridge --version\n"
         "       health-bridge --help\n"
         "\n"
         "Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.\n";
}

Command ParseCommandLine(const std::vector<std::string>& args) {
  Command command;
  auto usage_error = [&](std::string error) {
    command = Command{};
    command.error = std::move(error);
    return command;
  };
  if (args.empty()) return usage_error("missing --config FILE");
  if (args[0] == "--help" || args[0] == "-h") {
    command.kind = Command::Kind::kHelp;
    return args.size() == 1 ? command : usage_error("unexpected argument '" + args[1] + "'");
  }
  if (args[0] == "--version") {
    command.kind = Command::Kind::kVersion;
    return args.size() == 1 ? command : usage_error("unexpected argument '" + args[1] + "'");
  }
  if (args[0] == "check-config") {
    if (args.size() != 2) return usage_error("check-config takes exactly one FILE");
    command.kind = Command::Kind::kCheckConfig;
    command.config_path = args[1];
    return command;
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--config" || arg == "-c") {
      if (i + 1 == args.size()) return usage_error(arg + " needs a FILE");
      command.config_path = args[++i];
    } else if (arg.starts_with("--config=")) {
      command.config_path = arg.substr(9);
    } else {
      return usage_error("unknown argument '" + arg + "'");
    }
  }
  if (command.config_path.empty()) return usage_error("missing --config FILE");
  command.kind = Command::Kind::kRun;
  return command;
}

}  // namespace hb
