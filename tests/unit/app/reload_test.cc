// A reload (SIGHUP) applied to running parts: sinks are added and removed,
// the watch settings change in place, and what is read only at start keeps
// its running value.

#include "bridge/app/reload.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "config/config_loader.h"
#include "sinks/builtin_sinks.h"

namespace hb {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<std::string> Names(const std::vector<std::pair<std::string, std::size_t>>& depths) {
  std::vector<std::string> names;
  for (const auto& [name, depth] : depths) names.push_back(name);
  return names;
}

std::vector<std::string> Names(const std::vector<SinkConfig>& sinks) {
  std::vector<std::string> names;
  for (const auto& sink : sinks) names.push_back(sink.name);
  return names;
}

// A watcher that is never started (its Consul is never asked) and a router
// with the sinks of the running config.
class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RegisterBuiltinSinks(registry_);
    context_.clock = &clock_;
    context_.registry = &metrics_registry_;
    ConsulClientOptions options;
    options.address = "http://127.0.0.1:1";
    auto client = ConsulClient::Create(options);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    client_ = std::move(client).value();
    watcher_ = std::make_unique<Watcher>(
        WatcherOptions{}, *client_, std::make_unique<TransitionEngine>(EngineOptions{}, clock_),
        router_, clock_);
  }

  BridgeConfig Load(const std::string& yaml) {
    LoadResult loaded =
        LoadConfigString(yaml, registry_.Parsers(), [](std::string_view) { return std::nullopt; });
    EXPECT_TRUE(loaded.ok()) << ::testing::PrintToString(loaded.errors);
    return loaded.ok() ? *loaded.config : BridgeConfig{};
  }

  // Starts the sinks of `config`, as the daemon does at start.
  void Run(const BridgeConfig& config) {
    BridgeConfig none = config;
    none.sinks.clear();
    ApplyReload(none, config, Live());
  }

  LiveBridge Live() {
    return {router_, *watcher_, registry_, context_, &metrics_, views_, metrics_};
  }

  static std::string Config(const std::string& address, const std::string& sinks,
                            const std::string& include = "\"*\"") {
    return "consul: {address: \"" + address + "\"}\n" + "watch: {services: {include: [" + include +
           "]}}\n" + "server: {default_metrics_sink: false}\n" + "sinks:\n" + sinks;
  }
  static std::string LogSink(const std::string& name) {
    return "  - {name: " + name + ", type: log, stream: stderr}\n";
  }

  SystemClock clock_;
  SinkRegistry registry_;
  prometheus::Registry metrics_registry_;
  SinkContext context_;
  BridgeMetrics metrics_{metrics_registry_, clock_};
  ViewTracker views_{&metrics_, clock_};
  Router router_{clock_, &views_};
  std::unique_ptr<ConsulClient> client_;
  std::unique_ptr<Watcher> watcher_;
};

TEST_F(ReloadTest, AddsTheNewSinksAndRemovesTheDroppedOnes) {
  const BridgeConfig current = Load(Config("http://127.0.0.1:1", LogSink("kept") + LogSink("old")));
  Run(current);
  ASSERT_THAT(Names(router_.QueueDepths()), ElementsAre("kept", "old"));

  const BridgeConfig next = Load(Config("http://127.0.0.1:1", LogSink("kept") + LogSink("new")));
  const BridgeConfig effective = ApplyReload(current, next, Live());
  EXPECT_THAT(Names(router_.QueueDepths()), ElementsAre("kept", "new"));
  EXPECT_THAT(Names(effective.sinks), ElementsAre("kept", "new"));

  const BridgeConfig empty = Load(Config("http://127.0.0.1:1", ""));
  EXPECT_THAT(Names(ApplyReload(effective, empty, Live()).sinks), IsEmpty());
  EXPECT_THAT(router_.QueueDepths(), IsEmpty());
}

TEST_F(ReloadTest, StartOnlySettingsKeepTheirRunningValueAndTheWatchTakesTheNewOnes) {
  const BridgeConfig current = Load(Config("http://127.0.0.1:1", LogSink("log")));
  Run(current);
  const BridgeConfig next =
      Load(Config("http://127.0.0.1:2", LogSink("log"), "\"payments-*\", \"orders\""));
  const BridgeConfig effective = ApplyReload(current, next, Live());
  EXPECT_EQ(effective.consul.client.address, current.consul.client.address) << "read once at start";
  EXPECT_THAT(effective.watch.watcher.services.include, ElementsAre("payments-*", "orders"));
  EXPECT_THAT(Names(router_.QueueDepths()), ElementsAre("log"));
}

TEST_F(ReloadTest, ASinkWithNewSettingsIsRebuiltUnderItsName) {
  const BridgeConfig current = Load(Config("http://127.0.0.1:1", LogSink("log")));
  Run(current);
  const BridgeConfig next =
      Load(Config("http://127.0.0.1:1", "  - {name: log, type: log, stream: stdout}\n"));
  const BridgeConfig effective = ApplyReload(current, next, Live());
  ASSERT_EQ(effective.sinks.size(), 1U);
  EXPECT_EQ(FormatSinkConfig(effective.sinks[0], false), FormatSinkConfig(next.sinks[0], false));
  EXPECT_THAT(Names(router_.QueueDepths()), ElementsAre("log"));
}

// A source's filters change on reload; the list of sources only at the
// next restart (its queries, indexes and budget shares are set at start).
TEST_F(ReloadTest, SourceFiltersApplyAndAChangedListOfSourcesWaitsForARestart) {
  const std::string head =
      "consul: {address: \"http://127.0.0.1:1\"}\n"
      "server: {default_metrics_sink: false}\nsinks:\n" +
      LogSink("log") + "watch:\n  sources:\n";
  const BridgeConfig current = Load(head + "    - {}\n    - datacenter: dc2\n");
  Run(current);
  const BridgeConfig filtered =
      Load(head + "    - {}\n    - {datacenter: dc2, services: {include: [\"payments*\"]}}\n");
  const BridgeConfig effective = ApplyReload(current, filtered, Live());
  ASSERT_EQ(effective.watch.watcher.sources.size(), 2U);
  EXPECT_THAT(effective.watch.watcher.sources[1].services.include, ElementsAre("payments*"));

  const BridgeConfig more = Load(head + "    - {}\n    - datacenter: dc2\n    - peer: east\n");
  const BridgeConfig kept = ApplyReload(effective, more, Live());
  EXPECT_EQ(kept.watch.watcher.sources, effective.watch.watcher.sources)
      << "the running sources stay";
}

}  // namespace
}  // namespace hb
