#include "tests/support/process/bridge_process.h"

#include <httplib.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

namespace hb::test_support {
namespace {

std::filesystem::path UniqueConfigPath() {
  static std::atomic<int> next{0};
  return std::filesystem::temp_directory_path() /
         ("hb-bridge-" + std::to_string(::getpid()) + "-" + std::to_string(next++) + ".yaml");
}

// Tests listen on loopback and an ephemeral port; a test that configures
// the server itself must say so too. The log is text unless the test
// configures it (then it must keep `format: text`: the port is read from it).
void WriteConfig(const std::filesystem::path& path, const std::string& config) {
  auto has = [&config](const std::string& key) {
    return config.starts_with(key + ":") || config.find("\n" + key + ":") != std::string::npos;
  };
  std::ofstream(path, std::ios::trunc) << (has("server") ? "" : "server: {listen: 127.0.0.1:0}\n")
                                       << (has("log") ? "" : "log: {format: text}\n") << config;
}

std::size_t CountOf(const std::string& text, const std::string& needle) {
  std::size_t count = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

}  // namespace

BridgeProcess::BridgeProcess(const std::filesystem::path& binary, const std::string& config,
                             ChildProcess::Options options, std::chrono::milliseconds sync_timeout)
    : config_(UniqueConfigPath()) {
  WriteConfig(config_, config);
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

void BridgeProcess::Kill() {
  process_->Signal(SIGKILL);
  process_->Wait(std::chrono::seconds(10));
}

bool BridgeProcess::Reload(const std::string& config, std::chrono::milliseconds timeout) {
  constexpr char kDone[] = "reload: done";
  constexpr char kRefused[] = "the running one stays";
  const std::string before = process_->Stderr();
  const std::size_t done = CountOf(before, kDone);
  const std::size_t refused = CountOf(before, kRefused);
  WriteConfig(config_, config);
  process_->Signal(SIGHUP);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string log = process_->Stderr();
    if (CountOf(log, kDone) > done) return true;
    if (CountOf(log, kRefused) > refused) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::optional<double> BridgeProcess::Metric(const std::string& name,
                                            const std::string& labels) const {
  httplib::Client client("127.0.0.1", port_);
  client.set_read_timeout(std::chrono::seconds(5));
  const auto response = client.Get("/metrics");
  if (!response || response->status != 200) return std::nullopt;
  std::istringstream lines(response->body);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with(name)) continue;
    const std::string rest = line.substr(name.size());
    const bool unlabelled = labels.empty() && rest.starts_with(' ');
    const bool labelled =
        !labels.empty() && rest.starts_with('{') && rest.find(labels) != std::string::npos;
    if (unlabelled || labelled) return std::stod(rest.substr(rest.rfind(' ') + 1));
  }
  return std::nullopt;
}

}  // namespace hb::test_support
