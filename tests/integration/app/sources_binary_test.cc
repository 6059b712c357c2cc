// watch.sources as an operator sees it: the running bridge's /readyz and
// /metrics while a further datacenter is cut off, and the events of the
// log sink once it is back.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/support/consul/consul_test_server.h"
#include "tests/support/eventually.h"
#include "tests/support/process/bridge_process.h"
#include "tests/support/process/bridge_under_test.h"
#include "tests/support/process/child_process.h"

namespace hb {
namespace {

using std::chrono::seconds;
using test_support::BridgeProcess;
using test_support::ChildProcess;
using test_support::ConsulScope;
using test_support::Eventually;
using ::testing::HasSubstr;

using test_support::kBridge;

nlohmann::json Payments(const std::string& id) {
  return {{"ID", id},
          {"Name", "payments"},
          {"Port", 8000},
          {"Check", {{"CheckID", "service:" + id}, {"TTL", "30m"}, {"Status", "passing"}}}};
}

// (status, body) of /readyz.
std::pair<int, std::string> Readyz(int port) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(3);
  auto answer = client.Get("/readyz");
  if (!answer) return {0, ""};
  return {answer->status, answer->body};
}

TEST(SourcesBinary, ACutOffDatacenterIsShownUnavailableWhileTheBridgeStaysReady) {
  test_support::ConsulTestServer consul;
  ASSERT_NE(consul.Start(), 0);
  ASSERT_TRUE(consul.AddDatacenter("dc2"));
  ASSERT_EQ(consul.RegisterService(Payments("payments-1")), "");
  ASSERT_EQ(consul.RegisterService(ConsulScope{.datacenter = "dc2"}, Payments("payments-1")), "");
  ChildProcess::Options options;
  options.env["CONSUL_HTTP_ADDR"] = consul.address();
  BridgeProcess bridge(kBridge,
                       "consul: {retry: {initial_backoff: 50ms, max_backoff: 200ms}}\n"
                       "watch:\n"
                       "  sources:\n"
                       "    - {}\n"
                       "    - datacenter: dc2\n"
                       "sinks:\n"
                       "  - {name: stdout, type: log}\n",
                       options);
  ASSERT_TRUE(bridge.ok()) << bridge.process().Stderr();
  ASSERT_TRUE(Eventually([&] { return Readyz(bridge.port()).first == 200; }, seconds(20)));
  ASSERT_TRUE(
      Eventually([&] { return bridge.Metric("health_bridge_source_up", "source=\"dc2\"") == 1.0; },
                 seconds(20)));

  ASSERT_TRUE(consul.CutDatacenter("dc2", true));
  ASSERT_TRUE(
      Eventually([&] { return bridge.Metric("health_bridge_source_up", "source=\"dc2\"") == 0.0; },
                 seconds(20)))
      << bridge.process().Stderr();
  EXPECT_EQ(bridge.Metric("health_bridge_source_up", "source=\"dc1\""), 1.0);
  EXPECT_EQ(bridge.Metric("health_bridge_consul_reachable"), 1.0);
  const auto [status, body] = Readyz(bridge.port());
  EXPECT_EQ(status, 200);
  EXPECT_THAT(body, HasSubstr("ready; source dc2 unavailable: Consul has no path to the "
                              "datacenter (HTTP 500)"));

  // Changed while cut off, reported once it is back, reconciled, keyed
  // apart from dc1's instance of the same name.
  ASSERT_TRUE(
      consul.UpdateCheck(ConsulScope{.datacenter = "dc2"}, "service:payments-1", "critical"));
  ASSERT_TRUE(consul.CutDatacenter("dc2", false));
  ASSERT_TRUE(Eventually(
      [&] {
        return bridge.process().Stdout().find("dc2/payments/payments-1") != std::string::npos;
      },
      seconds(20)))
      << bridge.process().Stderr();
  ASSERT_TRUE(Eventually([&] { return Readyz(bridge.port()).second == "ready\n"; }, seconds(20)));
  EXPECT_EQ(bridge.Metric("health_bridge_source_up", "source=\"dc2\""), 1.0);
  bool found = false;
  const std::string out = bridge.process().Stdout();
  for (std::size_t start = 0; start < out.size();) {
    std::size_t end = out.find('\n', start);
    if (end == std::string::npos) end = out.size();
    const auto line = nlohmann::json::parse(out.substr(start, end - start), nullptr, false);
    start = end + 1;
    if (!line.is_object() || line.value("subject", "") != "dc2/payments/payments-1") continue;
    if (line["data"]["event"] != "instance.down") continue;
    found = true;
    EXPECT_EQ(line["data"]["datacenter"], "dc2");
    EXPECT_EQ(line["data"]["reconciled"], true);
    EXPECT_EQ(line["source"], "consul://dc2");
  }
  EXPECT_TRUE(found) << out;
  EXPECT_EQ(bridge.Stop(), 0);
}

// `datacenter: all` as an operator sees it: a datacenter past
// watch.max_sources refused and shown so, one that leaves the WAN shown
// unavailable, then dropped (its series gone, counted), and the refused
// one admitted once the dropped one's connections are free.
TEST(SourcesBinary, DatacentersFoundAtRunTimeComeAndGoInReadyzAndMetrics) {
  test_support::ConsulTestServer consul;
  ASSERT_NE(consul.Start(), 0);
  ASSERT_TRUE(consul.AddDatacenter("dc2"));
  for (const std::string dc : {"", "dc2"}) {
    ASSERT_EQ(consul.RegisterService(ConsulScope{.datacenter = dc}, Payments("payments-1")), "");
  }
  ChildProcess::Options options;
  options.env["CONSUL_HTTP_ADDR"] = consul.address();
  BridgeProcess bridge(kBridge,
                       "consul:\n"
                       "  max_connections: 10\n"
                       "  wait_time: 1s\n"
                       "  retry: {initial_backoff: 50ms, max_backoff: 200ms}\n"
                       "watch:\n"
                       "  max_sources: 2\n"
                       "  source_grace: 1s\n"
                       "  source_list_interval: 1s\n"
                       "  sources:\n"
                       "    - datacenter: all\n"
                       "sinks:\n"
                       "  - {name: stdout, type: log}\n",
                       options);
  ASSERT_TRUE(bridge.ok()) << bridge.process().Stderr();
  ASSERT_TRUE(Eventually(
      [&] { return Readyz(bridge.port()) == std::pair<int, std::string>(200, "ready\n"); },
      seconds(20)))
      << Readyz(bridge.port()).second;
  ASSERT_TRUE(
      Eventually([&] { return bridge.Metric("health_bridge_source_up", "source=\"dc2\"") == 1.0; },
                 seconds(20)));

  // A third datacenter joins: past max_sources, refused and said so.
  ASSERT_TRUE(consul.AddDatacenter("dc3"));
  ASSERT_TRUE(Eventually([&] { return bridge.Metric("health_bridge_sources_refused") == 1.0; },
                         seconds(20)))
      << bridge.process().Stderr();
  auto [status, body] = Readyz(bridge.port());
  EXPECT_EQ(status, 200);
  EXPECT_THAT(body, HasSubstr("source dc3 unavailable: not watched: watch.max_sources (2)"));
  EXPECT_EQ(bridge.Metric("health_bridge_source_up", "source=\"dc3\""), 0.0);

  // dc2 leaves the WAN: unavailable, then dropped; dc3 takes its place.
  ASSERT_TRUE(consul.RemoveDatacenter("dc2"));
  ASSERT_TRUE(Eventually(
      [&] { return bridge.Metric("health_bridge_sources_dropped_total") == 1.0; }, seconds(20)))
      << bridge.process().Stderr();
  ASSERT_TRUE(
      Eventually([&] { return bridge.Metric("health_bridge_source_up", "source=\"dc3\"") == 1.0; },
                 seconds(30)))
      << bridge.process().Stderr();
  EXPECT_FALSE(bridge.Metric("health_bridge_source_up", "source=\"dc2\"").has_value());
  EXPECT_EQ(bridge.Metric("health_bridge_sources_refused"), 0.0);
  ASSERT_TRUE(Eventually([&] { return Readyz(bridge.port()).second == "ready\n"; }, seconds(20)));
  // Nothing of dc2 was reported down: it left, its instances did not fail.
  EXPECT_EQ(bridge.process().Stdout().find("dc2/payments"), std::string::npos)
      << bridge.process().Stdout();
  EXPECT_EQ(bridge.Stop(), 0);
}

}  // namespace
}  // namespace hb
