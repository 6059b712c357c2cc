#pragma once

// The real Prometheus server (Debian's `prometheus`) as a test peer: it
// scrapes the given targets on loopback every second and answers PromQL
// through its HTTP API. Started and stopped by PID like every test peer.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/prometheus/server_process.h"

namespace hb::test_support {

class PrometheusServer {
 public:
  // `targets` are "127.0.0.1:port" of job "health-bridge".
  explicit PrometheusServer(const std::vector<std::string>& targets);

  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  // Waits until Prometheus answers queries.
  bool WaitReady(std::chrono::milliseconds timeout);
  // The value of an instant query returning one sample; nullopt for none.
  std::optional<double> Query(const std::string& promql);
  // Polls Query() until `accept` holds for its value or `timeout` passes.
  std::optional<double> WaitFor(const std::string& promql,
                                const std::function<bool(double)>& accept,
                                std::chrono::milliseconds timeout);
  std::string Log() const { return server_.Log(); }

 private:
  ServerProcess server_{"prometheus"};
};

}  // namespace hb::test_support
