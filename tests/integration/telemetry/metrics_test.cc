// The bridge's HTTP server and metrics as operators and Prometheus see them:
// the health-bridge binary against the Consul test server, scraped over
// loopback, checked by promtool and by a real Prometheus server.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "tests/support/consul/consul_test_server.h"
#include "tests/support/eventually.h"
#include "tests/support/process/bridge_process.h"
#include "tests/support/process/bridge_under_test.h"
#include "tests/support/process/child_process.h"
#include "tests/support/prometheus/prometheus_server.h"

namespace hb {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test_support::BridgeProcess;
using ::testing::HasSubstr;
using ::testing::Not;

using test_support::kBridge;
const std::filesystem::path kSource = HB_SOURCE_DIR;

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(consul_.Start(), 0);
    for (const char* id : {"payments-1", "payments-2"}) Register("payments", id);
    Register("billing", "billing-1");
    bridge_ = std::make_unique<BridgeProcess>(
        kBridge, "consul: {address: " + consul_.address() +
                     "}\n"
                     "watch: {unreachable_grace: 1s}\n"
                     "server: {listen: 127.0.0.1:0, instances: {enabled: true, meta: [version]}}\n"
                     "sinks:\n  - name: prometheus\n    type: metrics\n");
    ASSERT_TRUE(bridge_->ok()) << bridge_->process().Stderr();
    port_ = bridge_->port();
  }

  void TearDown() override {
    if (bridge_) {
      EXPECT_EQ(bridge_->Stop(), 0) << bridge_->process().Stderr();
    }
  }

  void Register(const std::string& service, const std::string& id) {
    consul_.RegisterService(nlohmann::json{
        {"ID", id},
        {"Name", service},
        {"Port", 8000},
        {"Meta", {{"version", "1.4"}, {"db_password", "hunter2"}}},
        {"Check", {{"CheckID", "service:" + id}, {"TTL", "1h"}, {"Status", "passing"}}}});
  }

  httplib::Result Get(const std::string& path) {
    httplib::Client client("127.0.0.1", port_);
    return client.Get(path);
  }

  std::string Scrape() {
    auto response = Get("/metrics");
    EXPECT_TRUE(response && response->status == 200);
    return response ? response->body : "";
  }

  // Polls the scrape until it has `line` (an exact series and value).
  ::testing::AssertionResult WaitForSeries(const std::string& line,
                                           milliseconds timeout = seconds(10)) {
    return test_support::Eventually([&] { return Scrape().find(line) != std::string::npos; },
                                    timeout);
  }

  test_support::ConsulTestServer consul_;
  std::unique_ptr<BridgeProcess> bridge_;
  int port_ = 0;
};

TEST_F(MetricsTest, HealthzStaysUpWhileReadyzFollowsConsul) {
  auto healthz = Get("/healthz");
  ASSERT_TRUE(healthz);
  EXPECT_EQ(healthz->status, 200);
  auto readyz = Get("/readyz");
  ASSERT_TRUE(readyz);
  EXPECT_EQ(readyz->status, 200) << readyz->body;

  consul_.Stop();
  EXPECT_TRUE(test_support::Eventually(
      [&] {
        readyz = Get("/readyz");
        return !readyz || readyz->status != 200;
      },
      seconds(15)));
  ASSERT_TRUE(readyz);
  EXPECT_EQ(readyz->status, 503);
  EXPECT_THAT(readyz->body, HasSubstr("Consul unreachable"));
  EXPECT_EQ(Get("/healthz")->status, 200) << "a Consul outage must not restart the bridge";
  EXPECT_THAT(Scrape(), HasSubstr("health_bridge_consul_reachable 0"));
}

TEST_F(MetricsTest, InstancesEndpointListsEveryWatchedInstance) {
  consul_.UpdateCheck("service:payments-2", "critical", "connection refused");
  ASSERT_TRUE(WaitForSeries(
      R"(health_bridge_instance_up{node="node-a",service_id="payments-2",service_name="payments"} 0)"))
      << Scrape();
  auto response = Get("/v1/instances");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->get_header_value("Content-Type"), "application/json");
  const auto document = nlohmann::json::parse(response->body);
  std::map<std::string, nlohmann::json> by_id;
  for (const auto& instance : document["instances"]) by_id[instance["id"]] = instance;
  ASSERT_EQ(by_id.size(), 3U);
  EXPECT_EQ(by_id["payments-1"]["status"], "passing");
  EXPECT_EQ(by_id["payments-1"]["up"], true);
  EXPECT_EQ(by_id["payments-2"]["status"], "critical");
  EXPECT_EQ(by_id["payments-2"]["up"], false);
  const auto& checks = by_id["payments-2"]["checks"];  // serfHealth and the service's TTL
  const auto ttl = std::find_if(checks.begin(), checks.end(), [](const nlohmann::json& check) {
    return check["check_id"] == "service:payments-2";
  });
  ASSERT_NE(ttl, checks.end()) << checks;
  EXPECT_EQ((*ttl)["status"], "critical");
  EXPECT_EQ((*ttl)["output"], "connection refused");
  EXPECT_EQ(by_id["billing-1"]["service"], "billing");
  EXPECT_FALSE(by_id["billing-1"]["since"].get<std::string>().empty());
  // Only the allowed meta keys leave the bridge.
  EXPECT_EQ(by_id["payments-1"]["meta"], (nlohmann::json{{"version", "1.4"}}));
  EXPECT_THAT(response->body, Not(HasSubstr("hunter2")));

  const auto filtered =
      nlohmann::json::parse(Get("/v1/instances?service=payments&status=critical")->body);
  ASSERT_EQ(filtered["instances"].size(), 1U) << filtered;
  EXPECT_EQ(filtered["instances"][0]["id"], "payments-2");
}

TEST_F(MetricsTest, LiveScrapePassesPromtoolCheckMetrics) {
  consul_.UpdateCheck("service:payments-1", "critical");
  consul_.DeregisterService("billing-1");
  ASSERT_TRUE(WaitForSeries(
      R"(health_bridge_deregistrations_total{reason="graceful",service_name="billing"} 1)"))
      << Scrape();
  const auto scrape = std::filesystem::temp_directory_path() /
                      ("hb-scrape-" + std::to_string(::getpid()) + ".prom");
  std::ofstream(scrape) << Scrape();
  const auto result = test_support::RunToCompletion(
      "/bin/sh", {"-c", "/usr/bin/promtool check metrics < \"$0\"", scrape.string()});
  std::filesystem::remove(scrape);
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_EQ(result.out + result.err, "") << "promtool has remarks";
}

TEST_F(MetricsTest, DashboardQueriesOnlyMetricsTheBridgeExports) {
  // Every kind of series exists once something happened of each kind: a
  // transition, a deregistration, and a Consul error.
  consul_.FailNext(1, 500, "injected", "/v1/health/service/payments");
  consul_.UpdateCheck("service:payments-1", "critical");
  consul_.DeregisterService("billing-1");
  ASSERT_TRUE(WaitForSeries("health_bridge_deregistrations_total"));
  ASSERT_TRUE(WaitForSeries("health_bridge_watch_errors_total"))
      << Scrape() << bridge_->process().Stderr();
  std::set<std::string> exported;
  const std::string scrape = Scrape();
  const std::regex type_line("# TYPE (health_bridge_[a-z_]+) (\\w+)");
  for (auto it = std::sregex_iterator(scrape.begin(), scrape.end(), type_line);
       it != std::sregex_iterator(); ++it) {
    exported.insert((*it)[1]);
    if ((*it)[2] == "histogram") {
      for (const char* suffix : {"_bucket", "_sum", "_count"})
        exported.insert((*it)[1].str() + suffix);
    }
  }

  std::ifstream file(kSource / "deploy/grafana/health-bridge.json");
  ASSERT_TRUE(file) << "deploy/grafana/health-bridge.json is missing";
  const auto dashboard = nlohmann::json::parse(file);  // throws (fails) on invalid JSON
  std::set<std::string> queried;
  const std::regex metric_name("health_bridge_[a-z_]+");
  std::function<void(const nlohmann::json&)> visit = [&](const nlohmann::json& node) {
    if (node.is_object()) {
      for (const auto& [key, value] : node.items()) {
        if ((key == "expr" || key == "query") && value.is_string()) {
          const std::string expr = value;
          for (auto it = std::sregex_iterator(expr.begin(), expr.end(), metric_name);
               it != std::sregex_iterator(); ++it) {
            queried.insert(it->str());
          }
        }
        visit(value);
      }
    } else if (node.is_array()) {
      for (const auto& item : node) visit(item);
    }
  };
  visit(dashboard);
  ASSERT_FALSE(queried.empty());
  for (const auto& name : queried) EXPECT_TRUE(exported.count(name)) << name << " is not exported";
}

TEST_F(MetricsTest, RealPrometheusSeesTheInstanceGoDownAndTheDeregistration) {
  test_support::PrometheusServer prometheus({"127.0.0.1:" + std::to_string(port_)});
  ASSERT_TRUE(prometheus.WaitReady(seconds(30))) << prometheus.Log();
  ASSERT_TRUE(prometheus.WaitFor(R"(up{job="health-bridge"})", [](double v) { return v == 1; },
                                 seconds(20)))
      << prometheus.Log();
  const std::string up_query = R"(health_bridge_instance_up{service_id="payments-1"})";
  ASSERT_EQ(prometheus.WaitFor(
                up_query, [](double v) { return v == 1; }, seconds(20)),
            1);

  consul_.UpdateCheck("service:payments-1", "critical", "connection refused");
  EXPECT_EQ(prometheus.WaitFor(
                up_query, [](double v) { return v == 0; }, seconds(20)),
            0);

  consul_.DeregisterService("payments-2");
  const auto deregistrations =
      prometheus.WaitFor(R"(sum(health_bridge_deregistrations_total{service_name="payments"}))",
                         [](double v) { return v >= 1; }, seconds(20));
  ASSERT_TRUE(deregistrations) << prometheus.Log();
  EXPECT_EQ(*deregistrations, 1);
  EXPECT_EQ(prometheus.Query(R"(health_bridge_service_instances_up{service_name="payments"})"), 0);
}

}  // namespace
}  // namespace hb
