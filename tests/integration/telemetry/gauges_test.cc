// The instance gauges never lie: the first scrape after /readyz turns 200,
// after a restart with saved state, or after a reload, holds exactly the
// series of every instance Consul knows (up, down, in maintenance, just
// deregistered), on any config. The real binary against the Consul test
// server, scraped over loopback.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/support/consul/consul_test_server.h"
#include "tests/support/eventually.h"
#include "tests/support/process/bridge_process.h"
#include "tests/support/process/bridge_under_test.h"
#include "tests/support/schema/event_schema.h"

namespace hb {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test_support::BridgeProcess;

using test_support::kBridge;

// Series name and labels as the scrape writes them -> value.
using Series = std::map<std::string, double>;

// The per-instance and per-service gauges of one scrape.
Series Gauges(const std::string& scrape) {
  static const std::regex line(
      R"(^(health_bridge_(?:instance_up|instance_status|service_instances|service_instances_up)\{[^}]*\}) (\S+)$)");
  Series out;
  std::istringstream lines(scrape);
  for (std::string text; std::getline(lines, text);) {
    std::smatch match;
    if (std::regex_match(text, match, line)) out[match[1]] = std::stod(match[2]);
  }
  return out;
}

std::string Describe(const Series& series) {
  std::string text;
  for (const auto& [name, value] : series) text += name + " " + std::to_string(value) + "\n";
  return text;
}

// An instance of "orders" on the test server's node: its up gauge and its
// four status series; `status` empty for one that left the catalog.
void ExpectInstance(Series& expected, const std::string& id, int up, const std::string& status) {
  const std::string labels = "node=\"node-a\",service_id=\"" + id + "\",service_name=\"orders\"";
  expected["health_bridge_instance_up{" + labels + "}"] = up;
  for (const char* each : {"critical", "maintenance", "passing", "warning"}) {
    expected["health_bridge_instance_status{" + labels + ",status=\"" + each + "\"}"] =
        status == each ? 1 : 0;
  }
}

void ExpectService(Series& expected, int up, int total) {
  expected[R"(health_bridge_service_instances_up{service_name="orders"})"] = up;
  expected[R"(health_bridge_service_instances{service_name="orders"})"] = total;
}

class GaugesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(consul_.Start(), 0);
    state_dir_ = std::filesystem::temp_directory_path() /
                 ("hb-gauges-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(state_dir_);
    // Up, down, in maintenance, and one a test deregisters.
    for (const char* id : {"orders-1", "orders-2", "orders-3", "orders-4"}) Register(id);
    consul_.UpdateCheck("service:orders-2", "critical", "connection refused");
    ASSERT_TRUE(consul_.SetServiceMaintenance("orders-3", true, "deploy"));
  }

  void TearDown() override {
    if (bridge_) {
      EXPECT_EQ(bridge_->Stop(), 0) << bridge_->process().Stderr();
    }
    bridge_.reset();
    std::filesystem::remove_all(state_dir_);
  }

  void Register(const std::string& id) {
    consul_.RegisterService(nlohmann::json{
        {"ID", id},
        {"Name", "orders"},
        {"Port", 8000},
        {"Check", {{"CheckID", "service:" + id}, {"TTL", "1h"}, {"Status", "passing"}}}});
  }

  std::string Config(const std::string& sinks) const {
    return "consul: {address: " + consul_.address() + "}\nstate: {dir: " + state_dir_.string() +
           "}\nsinks:\n" + sinks;
  }

  void Start(const std::string& config) {
    bridge_ = std::make_unique<BridgeProcess>(kBridge, config);
    ASSERT_TRUE(bridge_->ok()) << bridge_->process().Stderr();
  }

  httplib::Result Get(const std::string& path) {
    httplib::Client client("127.0.0.1", bridge_->port());
    return client.Get(path);
  }

  std::string Scrape() {
    auto metrics = Get("/metrics");
    return metrics && metrics->status == 200 ? metrics->body : "";
  }

  // Polls /readyz until 200, then scrapes once: what Prometheus would see
  // first from a bridge its readiness probe let through.
  std::string FirstScrapeAfterReady() {
    EXPECT_TRUE(test_support::Eventually(
        [&] {
          auto ready = Get("/readyz");
          return ready && ready->status == 200;
        },
        seconds(20)));
    const std::string scrape = Scrape();
    EXPECT_FALSE(scrape.empty());
    return scrape;
  }

  // Polls until the gauges are exactly `expected` (state reached by events).
  ::testing::AssertionResult WaitForGauges(const Series& expected) {
    return test_support::Eventually([&] { return Gauges(Scrape()) == expected; }, seconds(15));
  }

  // The gauges while orders-1 is up, orders-2 down, orders-3 in maintenance
  // and orders-4 up.
  static Series Before() {
    Series expected;
    ExpectInstance(expected, "orders-1", 1, "passing");
    ExpectInstance(expected, "orders-2", 0, "critical");
    ExpectInstance(expected, "orders-3", 0, "maintenance");
    ExpectInstance(expected, "orders-4", 1, "passing");
    ExpectService(expected, 2, 4);
    return expected;
  }

  // Before(), then orders-4 deregistered: at 0 with no status, for its TTL.
  void DeregisterOrders4() {
    ASSERT_TRUE(consul_.DeregisterService("orders-4"));
    Series expected = Before();
    ExpectInstance(expected, "orders-4", 0, "");
    ExpectService(expected, 1, 3);
    ASSERT_TRUE(WaitForGauges(expected)) << Describe(Gauges(Scrape()));
  }

  // The reload found the new sink holding its view, rather than giving up
  // waiting for it.
  void ExpectSeededAtOnce() {
    EXPECT_THAT(bridge_->process().Stderr(),
                ::testing::Not(::testing::HasSubstr("did not take the current state")));
  }

  test_support::ConsulTestServer consul_;
  std::filesystem::path state_dir_;
  std::unique_ptr<BridgeProcess> bridge_;
};

constexpr char kGauges[] = "  - name: gauges\n    type: metrics\n";

TEST_F(GaugesTest, RestartWithSavedStateAndNothingChangedRestatesEveryInstance) {
  Start(Config(kGauges));
  ASSERT_TRUE(WaitForGauges(Before())) << Describe(Gauges(Scrape()));
  ASSERT_EQ(bridge_->Stop(), 0) << bridge_->process().Stderr();

  Start(Config(kGauges));
  EXPECT_THAT(bridge_->process().Stderr(), ::testing::HasSubstr("restored the state"));
  EXPECT_EQ(Gauges(FirstScrapeAfterReady()), Before());
}

TEST_F(GaugesTest, RestartWithSavedStateAndChangesWhileStoppedShowsTheNewState) {
  Start(Config(kGauges));
  ASSERT_TRUE(WaitForGauges(Before())) << Describe(Gauges(Scrape()));
  ASSERT_EQ(bridge_->Stop(), 0) << bridge_->process().Stderr();

  // While it was away: orders-1 failed, orders-2 recovered, orders-4 left
  // the catalog; orders-3 is still in maintenance (no event for it).
  consul_.UpdateCheck("service:orders-1", "critical", "timeout");
  consul_.UpdateCheck("service:orders-2", "passing");
  ASSERT_TRUE(consul_.DeregisterService("orders-4"));

  Start(Config(kGauges));
  Series expected;
  ExpectInstance(expected, "orders-1", 0, "critical");
  ExpectInstance(expected, "orders-2", 1, "passing");
  ExpectInstance(expected, "orders-3", 0, "maintenance");
  ExpectInstance(expected, "orders-4", 0, "");
  ExpectService(expected, 1, 3);
  EXPECT_EQ(Gauges(FirstScrapeAfterReady()), expected);
}

// After a reload that rebuilt or replaced the metrics sink, the new one
// holds the engine's view: every instance, and the one that just left (at
// 0, no status) for the rest of its deregistered_series_ttl.
Series AfterReload() {
  Series expected;
  ExpectInstance(expected, "orders-1", 1, "passing");
  ExpectInstance(expected, "orders-2", 0, "critical");
  ExpectInstance(expected, "orders-3", 0, "maintenance");
  ExpectInstance(expected, "orders-4", 0, "");
  ExpectService(expected, 1, 3);
  return expected;
}

TEST_F(GaugesTest, ReloadRenamingTheMetricsSinkMovesEverySeries) {
  Start(Config(kGauges));
  ASSERT_TRUE(WaitForGauges(Before()));
  DeregisterOrders4();
  ASSERT_TRUE(bridge_->Metric("health_bridge_sink_queue_depth", "sink=\"gauges\""));

  ASSERT_TRUE(bridge_->Reload(Config("  - name: prom\n    type: metrics\n")))
      << bridge_->process().Stderr();
  const std::string scrape = FirstScrapeAfterReady();
  EXPECT_EQ(Gauges(scrape), AfterReload());
  ExpectSeededAtOnce();
  EXPECT_EQ(bridge_->Metric("health_bridge_sink_queue_depth", "sink=\"gauges\""), std::nullopt)
      << "a removed sink's series go with it";
  EXPECT_THAT(scrape, ::testing::Not(::testing::HasSubstr("sink=\"gauges\"")));
  EXPECT_TRUE(bridge_->Metric("health_bridge_sink_queue_depth", "sink=\"prom\""));
}

TEST_F(GaugesTest, ReloadChangingAMetricsSettingKeepsEverySeries) {
  Start(Config(kGauges));
  ASSERT_TRUE(WaitForGauges(Before()));
  DeregisterOrders4();

  ASSERT_TRUE(bridge_->Reload(
      Config("  - name: gauges\n    type: metrics\n    deregistered_series_ttl: 10m\n")))
      << bridge_->process().Stderr();
  EXPECT_EQ(Gauges(FirstScrapeAfterReady()), AfterReload());
  ExpectSeededAtOnce();
}

TEST_F(GaugesTest, ReloadRemovingTheMetricsSinkHandsOverToTheDefaultOne) {
  Start(Config(kGauges + std::string("  - name: out\n    type: log\n")));
  ASSERT_TRUE(WaitForGauges(Before()));
  DeregisterOrders4();
  // Its events tell the same story as its series: no status any more.
  ASSERT_TRUE(bridge_->process().WaitForStdout("instance.deregistered", seconds(10)));
  EXPECT_EQ(test_support::LogLinesSchemaViolations(bridge_->process().Stdout()), "");
  std::istringstream lines(bridge_->process().Stdout());
  int departures = 0;
  for (std::string line; std::getline(lines, line);) {
    const auto event = nlohmann::json::parse(line);
    if (event["data"]["instance_id"] != "orders-4") continue;
    ++departures;
    EXPECT_TRUE(event["data"]["status"].is_null()) << line;
    EXPECT_EQ(event["data"]["previous_status"], "passing") << line;
  }
  EXPECT_EQ(departures, 2) << "instance.down (deregistered) and instance.deregistered";

  // Without a metrics sink of its own, the config gets the default one.
  ASSERT_TRUE(bridge_->Reload(Config("  - name: out\n    type: log\n")))
      << bridge_->process().Stderr();
  const std::string scrape = FirstScrapeAfterReady();
  EXPECT_EQ(Gauges(scrape), AfterReload());
  EXPECT_THAT(scrape, ::testing::Not(::testing::HasSubstr("sink=\"gauges\"")));
  EXPECT_TRUE(bridge_->Metric("health_bridge_sink_queue_depth", "sink=\"metrics\""));
}

TEST_F(GaugesTest, WebhookOnlyConfigServesEveryInstanceFromTheFirstScrape) {
  // Nothing listens on the webhook's port: deliveries are retried, and the
  // gauges do not depend on them.
  Start("consul: {address: " + consul_.address() +
        "}\nsinks:\n  - name: hooks\n    type: webhook\n    url: http://127.0.0.1:9/hook\n");
  EXPECT_EQ(Gauges(FirstScrapeAfterReady()), Before());
}

}  // namespace
}  // namespace hb
