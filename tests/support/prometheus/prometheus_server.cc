#include "tests/support/prometheus/prometheus_server.h"

#include <httplib.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "tests/support/http/loopback_server.h"

namespace hb::testing {

PrometheusServer::PrometheusServer(const std::vector<std::string>& targets) {
  directory_ = std::filesystem::temp_directory_path() /
               ("hb-prometheus-" + std::to_string(::getpid()) + "-" +
                std::to_string(reinterpret_cast<std::uintptr_t>(this)));
  std::filesystem::create_directories(directory_ / "data");
  std::ofstream config(directory_ / "prometheus.yml");
  config << "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
         << "scrape_configs:\n"
         << "  - job_name: health-bridge\n"
         << "    static_configs:\n"
         << "      - targets: [";
  for (std::size_t i = 0; i < targets.size(); ++i) config << (i ? ", " : "") << targets[i];
  config << "]\n";
  config.close();
  port_ = UnusedLoopbackPort();
  process_ = std::make_unique<ChildProcess>(
      "/usr/bin/prometheus",
      std::vector<std::string>{"--config.file=" + (directory_ / "prometheus.yml").string(),
                               "--storage.tsdb.path=" + (directory_ / "data").string(),
                               "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                               "--log.level=warn"});
}

PrometheusServer::~PrometheusServer() {
  process_.reset();  // SIGKILLs it if still running
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
}

bool PrometheusServer::WaitReady(std::chrono::milliseconds timeout) {
  httplib::Client client("127.0.0.1", port_);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto response = client.Get("/-/ready"); response && response->status == 200) return true;
    if (!process_->Running()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

std::optional<double> PrometheusServer::Query(const std::string& promql) {
  httplib::Client client("127.0.0.1", port_);
  auto response = client.Get("/api/v1/query", httplib::Params{{"query", promql}}, {});
  if (!response || response->status != 200) return std::nullopt;
  const auto body = nlohmann::json::parse(response->body, nullptr, false);
  if (body.is_discarded() || body["status"] != "success") return std::nullopt;
  const auto& result = body["data"]["result"];
  if (!result.is_array() || result.size() != 1) return std::nullopt;
  return std::stod(result[0]["value"][1].get<std::string>());
}

std::optional<double> PrometheusServer::WaitFor(const std::string& promql,
                                                const std::function<bool(double)>& accept,
                                                std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::optional<double> value;
  while (std::chrono::steady_clock::now() < deadline) {
    value = Query(promql);
    if (value && accept(*value)) return value;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return value;
}

}  // namespace hb::testing
