// End to end through the health-bridge executable: Consul test server →
// bridge (type: alertmanager, from its YAML config) → the real Alertmanager
// → its webhook receiver.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "tests/support/alertmanager/alertmanager_server.h"
#include "tests/support/consul/consul_test_server.h"
#include "tests/support/eventually.h"
#include "tests/support/http/scripted_http_peer.h"
#include "tests/support/process/bridge_process.h"
#include "tests/support/process/bridge_under_test.h"
#include "tests/support/test_dir.h"

namespace hb {
namespace {

using nlohmann::json;
using std::chrono::seconds;
using test_support::AlertmanagerServer;
using test_support::BridgeProcess;
using test_support::FindAlert;
using test_support::ScriptedHttpPeer;

using test_support::kBridge;

TEST(AlertmanagerBridgeTest, CriticalCheckPagesThroughAlertmanagerAndRecoveryResolvesIt) {
  test_support::ConsulTestServer consul;
  ASSERT_NE(consul.Start(), 0);
  consul.RegisterService(json{{"ID", "payments-1"},
                              {"Name", "payments"},
                              {"Address", "10.1.2.3"},
                              {"Port", 8080},
                              {"Check",
                               {{"CheckID", "service:payments-1"},
                                {"Name", "HTTP /health"},
                                {"TTL", "1h"},
                                {"Status", "passing"}}}});
  ScriptedHttpPeer receiver;
  receiver.ExpectCloudEvents(false);  // Alertmanager's notifications
  AlertmanagerServer::Options options;
  options.receiver_url = receiver.url("/notify");
  AlertmanagerServer alertmanager(options);
  ASSERT_TRUE(alertmanager.WaitReady(seconds(20))) << alertmanager.Log();

  std::ostringstream config;
  config << "consul: {address: " << consul.address() << "}\n"
         << "sinks:\n"
         << "  - name: alerts\n"
         << "    type: alertmanager\n"
         << "    urls: [" << alertmanager.url() << "]\n"
         << "    labels: {team: payments}\n"
         << "    retry: {initial_backoff: 100ms, max_backoff: 1s}\n";
  BridgeProcess bridge(kBridge, config.str());
  ASSERT_TRUE(bridge.ok()) << bridge.process().Stderr();

  ASSERT_TRUE(consul.UpdateCheck("service:payments-1", "critical", "HTTP 503: connection pool"));
  const json alerts = alertmanager.WaitForAlerts(
      [](const json& all) {
        return FindAlert(all, {{"service_id", "payments-1"}}).has_value();
      },
      seconds(20));
  const auto alert = FindAlert(alerts, {{"service_id", "payments-1"}});
  ASSERT_TRUE(alert) << alerts.dump() << bridge.process().Stderr();
  EXPECT_EQ((*alert)["labels"]["alertname"], "ConsulInstanceDown");
  EXPECT_EQ((*alert)["labels"]["service_name"], "payments");
  EXPECT_EQ((*alert)["labels"]["reason"], "critical");
  EXPECT_EQ((*alert)["labels"]["team"], "payments");
  EXPECT_EQ((*alert)["annotations"]["checks"],
            "HTTP /health (critical): HTTP 503: connection pool");
  // Its only instance down: the service's own alert fires as well.
  const json both = alertmanager.WaitForAlerts(
      [](const json& all) {
        return FindAlert(all, {{"alertname", "ConsulServiceDown"}}).has_value();
      },
      seconds(20));
  EXPECT_TRUE(FindAlert(both, {{"alertname", "ConsulServiceDown"}})) << both.dump();

  // The receiver gets the page, and once the check passes its resolution.
  auto notified = [&](const std::string& status) {
    return test_support::Eventually(
        [&] {
          for (const auto& request : receiver.Accepted()) {
            if (json::parse(request.body)["status"] == status) return true;
          }
          return false;
        },
        seconds(20));
  };
  EXPECT_TRUE(notified("firing")) << alertmanager.Log();

  ASSERT_TRUE(consul.UpdateCheck("service:payments-1", "passing"));
  const json after =
      alertmanager.WaitForAlerts([](const json& all) { return all.empty(); }, seconds(20));
  EXPECT_TRUE(after.empty()) << after.dump();
  EXPECT_TRUE(notified("resolved")) << alertmanager.Log();
  EXPECT_EQ(bridge.Metric("health_bridge_alertmanager_firing_alerts", "sink=\"alerts\""), 0);
  EXPECT_EQ(bridge.Stop(), 0) << bridge.process().Stderr();
}

TEST(AlertmanagerBridgeTest, AfterARestartTheFiringAlertIsResentFromTheSavedState) {
  test_support::ConsulTestServer consul;
  ASSERT_NE(consul.Start(), 0);
  consul.RegisterService(
      json{{"ID", "payments-1"},
           {"Name", "payments"},
           {"Port", 8080},
           {"Check", {{"CheckID", "service:payments-1"}, {"TTL", "1h"}, {"Status", "passing"}}}});
  AlertmanagerServer alertmanager({});
  ASSERT_TRUE(alertmanager.WaitReady(seconds(20))) << alertmanager.Log();
  const test_support::TestDir state("hb-alertmanager-restart");
  std::ostringstream config;
  config << "consul: {address: " << consul.address() << "}\n"
         << "state: {dir: " << state.path().string() << ", save_interval: 100ms}\n"
         << "sinks:\n"
         << "  - name: alerts\n"
         << "    type: alertmanager\n"
         << "    urls: [" << alertmanager.url() << "]\n"
         << "    resend_interval: 1s\n"
         << "    expire_after: 30s\n";
  auto endsAt = [&] {
    const auto alerts = alertmanager.Alerts();
    const auto alert = alerts ? FindAlert(*alerts, {{"service_id", "payments-1"}}) : std::nullopt;
    return alert ? std::optional<std::string>((*alert)["endsAt"]) : std::nullopt;
  };

  auto before = std::make_unique<BridgeProcess>(kBridge, config.str());
  ASSERT_TRUE(before->ok()) << before->process().Stderr();
  ASSERT_TRUE(consul.UpdateCheck("service:payments-1", "critical", "down"));
  alertmanager.WaitForAlerts([&](const json&) { return endsAt().has_value(); }, seconds(20));
  ASSERT_TRUE(endsAt()) << before->process().Stderr();
  EXPECT_EQ(before->Stop(), 0) << before->process().Stderr();
  // Nothing resends it now: its endsAt stays where the last post put it.
  const std::string last_end = *endsAt();

  // The next run has no event for it (it did not change), only the saved
  // state: the alert must fire on, its endsAt moving again.
  BridgeProcess after(kBridge, config.str());
  ASSERT_TRUE(after.ok()) << after.process().Stderr();
  alertmanager.WaitForAlerts(
      [&](const json&) {
        const auto end = endsAt();
        return end && *end > last_end;  // RFC 3339 UTC text orders as time
      },
      seconds(20));
  const auto end = endsAt();
  ASSERT_TRUE(end) << after.process().Stderr();
  EXPECT_GT(*end, last_end) << after.process().Stderr();
  // The instance's alert and its service's (its only instance is down).
  EXPECT_EQ(after.Metric("health_bridge_alertmanager_firing_alerts", "sink=\"alerts\""), 2);
  EXPECT_EQ(after.Stop(), 0) << after.process().Stderr();
}

}  // namespace
}  // namespace hb
