#include "bridge/app/cli.h"

namespace hb {

std::string UsageText() {
  return "usage: health-bridge [--config FILE]       run the bridge (also -c FILE)\n"
         "       health-bridge check-config [FILE]  validate FILE and print the effective\n"
         "                                          configuration, secrets masked\n"
         "       health-bridge test-sink [--config FILE] NAME\n"
         "                                          send one marked test event through the\n"
         "                                          sink NAME; prints the outcome and latency\n"
         "       health-bridge replay [--config FILE] [--sink NAME] DEAD_LETTER_FILE\n"
         "                                          deliver a dead-letter file's events again;\n"
         "                                          what still fails goes to FILE.failed\n"
         "       health-bridge --version\n"
         "       health-bridge --help\n"
         "\n"
         "FILE defaults to $HEALTH_BRIDGE_CONFIG when that is set.\n"
         "\n"
         "Environment:\n"
         "  HEALTH_BRIDGE_CONFIG     the config file, when no --config or FILE is given\n"
         "  CONSUL_HTTP_ADDR         consul.address (host:port or http(s)://host:port)\n"
         "  CONSUL_HTTP_TOKEN        consul.token, the ACL token (service:read, node:read)\n"
         "  CONSUL_HTTP_TOKEN_FILE   consul.token_file, a file holding the token\n"
         "  CONSUL_HTTP_SSL          true/false: https for CONSUL_HTTP_ADDR without a scheme\n"
         "  CONSUL_HTTP_SSL_VERIFY   true/false: verify Consul's certificate\n"
         "  CONSUL_CACERT, CONSUL_CAPATH, CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY,\n"
         "  CONSUL_TLS_SERVER_NAME   consul.tls.*\n"
         "  ${NAME} anywhere in the config file is replaced by that variable (unset: an error).\n"
         "\n"
         "Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.\n"
         "Docs: README.md and docs/ in the source tree; config/examples/full.yaml lists every\n"
         "key with its default.\n";
}

Command ParseCommandLine(const std::vector<std::string>& args,
                         const std::optional<std::string>& config_from_env) {
  Command command;
  auto usage_error = [&](std::string error) {
    command = Command{};
    command.error = std::move(error);
    return command;
  };
  const std::string default_config = config_from_env.value_or("");
  if (args.empty()) {
    if (default_config.empty()) return usage_error("missing --config FILE");
    command.kind = Command::Kind::kRun;
    command.config_path = default_config;
    return command;
  }
  if (args[0] == "--help" || args[0] == "-h") {
    command.kind = Command::Kind::kHelp;
    return args.size() == 1 ? command : usage_error("unexpected argument '" + args[1] + "'");
  }
  if (args[0] == "--version") {
    command.kind = Command::Kind::kVersion;
    return args.size() == 1 ? command : usage_error("unexpected argument '" + args[1] + "'");
  }
  if (args[0] == "test-sink" || args[0] == "replay") {
    const bool replay = args[0] == "replay";
    std::vector<std::string> positional;
    for (std::size_t i = 1; i < args.size(); ++i) {
      const std::string& arg = args[i];
      if (arg == "--config" || arg == "-c" || (replay && arg == "--sink")) {
        if (i + 1 == args.size()) return usage_error(arg + " needs a value");
        (arg == "--sink" ? command.sink : command.config_path) = args[++i];
      } else if (arg.starts_with('-')) {
        return usage_error("unknown argument '" + arg + "'");
      } else {
        positional.push_back(arg);
      }
    }
    if (positional.size() != 1) {
      return usage_error(replay ? "replay takes one DEAD_LETTER_FILE" : "test-sink takes one NAME");
    }
    (replay ? command.file : command.sink) = positional[0];
    if (command.config_path.empty()) command.config_path = default_config;
    if (command.config_path.empty()) return usage_error(args[0] + " needs --config FILE");
    command.kind = replay ? Command::Kind::kReplay : Command::Kind::kTestSink;
    return command;
  }
  if (args[0] == "check-config") {
    if (args.size() > 2) return usage_error("check-config takes one FILE");
    command.config_path = args.size() == 2 ? args[1] : default_config;
    if (command.config_path.empty()) {
      return usage_error("check-config needs a FILE (or HEALTH_BRIDGE_CONFIG)");
    }
    command.kind = Command::Kind::kCheckConfig;
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
  if (command.config_path.empty()) command.config_path = default_config;
  if (command.config_path.empty()) return usage_error("missing --config FILE");
  command.kind = Command::Kind::kRun;
  return command;
}

}  // namespace hb
