#include "tests/support/prometheus/prometheus_server.h"

#include <httplib.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

namespace hb::test_support {

PrometheusServer::PrometheusServer(const std::vector<std::string>& targets) {
  const std::filesystem::path& directory = server_.directory();
  std::filesystem::create_directories(directory / "data");
  std::ofstream config(directory / "prometheus.yml");
  config << "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
         << "scrape_configs:\n"
         << "  - job_name: health-bridge\n"
         << "    static_configs:\n"
         << "      - targets: [";
  for (std::size_t i = 0; i < targets.size(); ++i) config << (i ? ", " : "") << targets[i];
  config << "]\n";
  config.close();
  server_.Start("/usr/bin/prometheus",
                {"--config.file=" + (directory / "prometheus.yml").string(),
                 "--storage.tsdb.path=" + (directory / "data").string(),
                 "--web.listen-address=" + server_.listen_address(), "--log.level=warn"});
}

bool PrometheusServer::WaitReady(std::chrono::milliseconds timeout) {
  return server_.WaitReady(timeout);
}

std::optional<double> PrometheusServer::Query(const std::string& promql) {
  httplib::Client client("127.0.0.1", server_.port());
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

}  // namespace hb::test_support
