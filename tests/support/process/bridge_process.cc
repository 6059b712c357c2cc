#include "tests/support/process/bridge_process.h"

#include <atomic>
#include <csignal>
#include <fstream>
#include <regex>

namespace hb::testing {
namespace {

std::filesystem::path UniqueConfigPath() {
  static std::atomic<int> next{0};
  return std::filesystem::temp_directory_path() /
         ("hb-bridge-" + std::to_string(::getpid()) + "-" + std::to_string(next++) + ".yaml");
}

}  // namespace

BridgeProcess::BridgeProcess(const std::filesystem::path& binary, const std::string& config,
                             ChildProcess::Options options, std::chrono::milliseconds sync_timeout)
    : config_(UniqueConfigPath()) {
  std::ofstream(config_) << "server: {listen: 127.0.0.1:0}\n"
                         << "log: {format: text}\n"
                         << config;
  for (const char* name : {"CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_TOKEN_FILE",
                           "CONSUL_CACERT", "CONSUL_CLIENT_CERT", "CONSUL_CLIENT_KEY",
                           "CONSUL_TLS_SERVER_NAME", "CONSUL_HTTP_SSL_VERIFY"}) {
    options.env.try_emplace(name, std::nullopt);
  }
  process_ = std::make_unique<ChildProcess>(
      binary, std::vector<std::string>{"--config", config_.string()}, options);
  if (!process_->WaitForStderr("initial sync complete", sync_timeout)) return;
  std::smatch match;
  const std::string log = process_->Stderr();
  if (std::regex_search(log, match, std::regex("on port ([0-9]+)"))) port_ = std::stoi(match[1]);
}

BridgeProcess::~BridgeProcess() {
  process_.reset();
  std::error_code ignored;
  std::filesystem::remove(config_, ignored);
}

std::optional<int> BridgeProcess::Stop(std::chrono::milliseconds timeout) {
  process_->Signal(SIGTERM);
  return process_->Wait(timeout);
}

}  // namespace hb::testing
