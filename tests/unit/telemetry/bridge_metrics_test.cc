#include "bridge/telemetry/bridge_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include "tests/support/fake_clock.h"
#include "tests/support/sample_events.h"

namespace hb {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class BridgeMetricsTest : public ::testing::Test {
 protected:
  std::string Scrape() { return prometheus::TextSerializer().Serialize(registry_.Collect()); }

  prometheus::Registry registry_;
  test_support::FakeClock clock_;
  BridgeMetrics metrics_{registry_, clock_};
};

TEST_F(BridgeMetricsTest, BuildInfoIsOne) {
  EXPECT_THAT(Scrape(), HasSubstr("health_bridge_build_info{"));
  EXPECT_THAT(Scrape(), ::testing::ContainsRegex(
                            R"(health_bridge_build_info\{[^}]*version="[0-9.]+"[^}]*\} 1)"));
}

TEST_F(BridgeMetricsTest, ARemovedSinksSeriesGoWithItAndOnlyIts) {
  Event event = test_support::InstanceEvent("payments-1", EventType::kInstanceDown, 5);
  clock_.Advance(std::chrono::seconds(1));  // a zero observed_at means "not observed"
  event.observed_at = clock_.Now();
  for (const char* sink : {"old", "kept"}) {
    metrics_.OnDelivered(sink, event, clock_.Now());
    metrics_.OnRetry(sink, event, "503");
    metrics_.OnDeadLettered(sink, event, "410");
    metrics_.OnQueueDepth(sink, 3);
    metrics_.OnSpoolBytes(sink, 4096);
    metrics_.OnSpoolFull(sink);
    metrics_.OnSpoolWriteError(sink);
    metrics_.OnSpoolDropped(sink, 12);
  }
  metrics_.ForgetSink("old");
  metrics_.ForgetSink("never-seen");
  const std::string scrape = Scrape();
  EXPECT_THAT(scrape, Not(HasSubstr(R"(sink="old")"))) << scrape;
  for (const char* name :
       {"health_bridge_sink_deliveries_total", "health_bridge_sink_queue_depth",
        "health_bridge_sink_delivery_latency_seconds_count",
        "health_bridge_event_end_to_end_latency_seconds_count", "health_bridge_spool_bytes",
        "health_bridge_spool_full_total", "health_bridge_spool_write_errors_total",
        "health_bridge_spool_dropped_bytes_total"}) {
    EXPECT_THAT(scrape, HasSubstr(std::string(name) + "{")) << name << " of the kept sink";
  }
  EXPECT_THAT(scrape, HasSubstr(R"(health_bridge_sink_queue_depth{sink="kept"} 3)"));
}

// Sources found at run time come and go: a dropped source's series go,
// and the dropped and refused counts show.
TEST_F(BridgeMetricsTest, ADroppedSourcesSeriesGoAndChurnIsCounted) {
  WatchState dc2;
  dc2.source = "dc2";
  dc2.watched_services = 4;
  WatchState dc3;
  dc3.source = "dc3";
  dc3.unreachable_since = clock_.Now();
  metrics_.SetSourceStates({dc2, dc3});
  EXPECT_THAT(Scrape(), HasSubstr(R"(health_bridge_source_up{source="dc3"} 0)"));
  metrics_.SetSourceStates({dc2});
  metrics_.SetSourceChurn(1, 2);
  metrics_.SetSourceChurn(1, 2);  // absolute values: counted once
  const std::string scrape = Scrape();
  EXPECT_THAT(scrape, Not(HasSubstr(R"(source="dc3")"))) << scrape;
  EXPECT_THAT(scrape, HasSubstr(R"(health_bridge_source_up{source="dc2"} 1)"));
  EXPECT_THAT(scrape, HasSubstr(R"(health_bridge_source_watched_services{source="dc2"} 4)"));
  EXPECT_THAT(scrape, HasSubstr("health_bridge_sources_dropped_total 1"));
  EXPECT_THAT(scrape, HasSubstr("health_bridge_sources_refused 2"));
}

TEST_F(BridgeMetricsTest, ConsulRefusalsAreCountedByReason) {
  metrics_.OnRefused("too_many_connections");
  metrics_.OnRefused("too_many_connections");
  metrics_.OnRefused("connection_reset");
  const std::string scrape = Scrape();
  EXPECT_THAT(scrape,
              HasSubstr(R"(health_bridge_consul_refusals_total{reason="too_many_connections"} 2)"));
  EXPECT_THAT(scrape,
              HasSubstr(R"(health_bridge_consul_refusals_total{reason="connection_reset"} 1)"));
}

TEST_F(BridgeMetricsTest, ConsulRequestsByOutcomeAndOnlyFailuresAsWatchErrors) {
  metrics_.OnRequestDone("health_service", "ok", std::chrono::seconds(300), true);
  metrics_.OnRequestDone("health_service", "http_5xx", std::chrono::milliseconds(3), false);
  const std::string scrape = Scrape();
  EXPECT_THAT(
      scrape,
      HasSubstr(
          R"(health_bridge_consul_requests_total{endpoint="health_service",outcome="ok"} 1)"));
  EXPECT_THAT(
      scrape,
      HasSubstr(
          R"(health_bridge_consul_requests_total{endpoint="health_service",outcome="http_5xx"} 1)"));
  EXPECT_THAT(
      scrape,
      HasSubstr(
          R"(health_bridge_watch_errors_total{endpoint="health_service",outcome="http_5xx"} 1)"));
  EXPECT_THAT(scrape,
              Not(HasSubstr(
                  R"(health_bridge_watch_errors_total{endpoint="health_service",outcome="ok"})")));
  // A held blocking query lands in its own series, up in the 300 s bucket.
  EXPECT_THAT(
      scrape,
      HasSubstr(
          R"(health_bridge_consul_request_duration_seconds_bucket{blocking="true",endpoint="health_service",le="300"} 1)"));
  EXPECT_THAT(
      scrape,
      HasSubstr(
          R"(health_bridge_consul_request_duration_seconds_bucket{blocking="false",endpoint="health_service",le="0.005"} 1)"));
}

TEST_F(BridgeMetricsTest, DeliveriesByOutcomeQueueDepthAndLatency) {
  clock_.Advance(std::chrono::hours(1));  // a steady time of 0 means "not observed"
  Event event = test_support::InstanceEvent("payments-1", EventType::kInstanceDown, 7);
  event.time = clock_.WallNow();
  clock_.Advance(std::chrono::seconds(1));  // a zero observed_at means "not observed"
  event.observed_at = clock_.Now();
  clock_.Advance(std::chrono::milliseconds(40));
  metrics_.OnRetry("ops-hooks", event, "HTTP 503");
  metrics_.OnDelivered("ops-hooks", event, clock_.Now());
  metrics_.OnDeadLettered("ops-hooks", event, "rejected: HTTP 400");
  metrics_.OnQueueDepth("ops-hooks", 12);
  const std::string scrape = Scrape();
  for (const char* outcome : {"delivered", "retried", "dead_lettered"}) {
    EXPECT_THAT(scrape, HasSubstr(std::string(R"(health_bridge_sink_deliveries_total{outcome=")") +
                                  outcome + R"(",sink="ops-hooks"} 1)"));
  }
  EXPECT_THAT(scrape, HasSubstr(R"(health_bridge_sink_queue_depth{sink="ops-hooks"} 12)"));
  // 40 ms from the Consul answer to the acknowledgement: not in 0.025, in 0.05.
  EXPECT_THAT(
      scrape,
      HasSubstr(
          R"(health_bridge_event_end_to_end_latency_seconds_bucket{sink="ops-hooks",le="0.025"} 0)"));
  EXPECT_THAT(
      scrape,
      HasSubstr(
          R"(health_bridge_event_end_to_end_latency_seconds_bucket{sink="ops-hooks",le="0.05"} 1)"));
}

TEST_F(BridgeMetricsTest, WatchStateGauges) {
  WatchState state;
  state.ready = true;
  state.initial_sync_done = true;
  state.watched_services = 42;
  state.last_success = std::chrono::system_clock::from_time_t(1'800'000'000);
  metrics_.SetWatchState(state);
  std::string scrape = Scrape();
  EXPECT_THAT(scrape, HasSubstr("health_bridge_ready 1"));
  EXPECT_THAT(scrape, HasSubstr("health_bridge_consul_reachable 1"));
  EXPECT_THAT(scrape, HasSubstr("health_bridge_watched_services 42"));
  EXPECT_THAT(scrape, HasSubstr("health_bridge_last_successful_sync_timestamp_seconds 1800000000"));
  state.unreachable_since = clock_.Now();
  state.ready = false;
  metrics_.SetWatchState(state);
  scrape = Scrape();
  EXPECT_THAT(scrape, HasSubstr("health_bridge_consul_reachable 0"));
  EXPECT_THAT(scrape, HasSubstr("health_bridge_ready 0"));
}

}  // namespace
}  // namespace hb
