// The metrics sink: what a scrape shows after each kind of event.

#include "sinks/metrics/metrics_sink.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <optional>
#include <regex>
#include <sstream>

#include "tests/support/fake_clock.h"
#include "tests/support/sample_events.h"

namespace hb {
namespace {

using std::chrono::minutes;
using test_support::InstanceEvent;
using test_support::Shared;

class MetricsSinkTest : public ::testing::Test {
 protected:
  MetricsSinkTest() {
    settings_.deregistered_series_ttl = minutes(5);
    sink_ = std::make_unique<MetricsSink>("metrics", settings_, registry_, clock_);
  }

  void Deliver(std::vector<Event> events) {
    std::vector<EventPtr> batch;
    batch.reserve(events.size());
    for (auto& event : events) batch.push_back(Shared(std::move(event)));
    std::vector<DeliveryResult> results(batch.size());
    sink_->Deliver(batch, results);
    for (const auto& result : results) ASSERT_EQ(result.kind, DeliveryResult::Kind::kOk);
  }

  // The value of the one series of `name` whose labels include `labels`, as
  // a scrape would show it; nullopt when there is no such series.
  std::optional<double> Value(const std::string& name,
                              const std::map<std::string, std::string>& labels) {
    for (const auto& family : registry_.Collect()) {
      if (family.name != name) continue;
      for (const auto& metric : family.metric) {
        std::map<std::string, std::string> have;
        for (const auto& pair : metric.label) have[pair.name] = pair.value;
        const bool match = std::all_of(labels.begin(), labels.end(), [&](const auto& wanted) {
          auto it = have.find(wanted.first);
          return it != have.end() && it->second == wanted.second;
        });
        if (!match) continue;
        if (family.type == prometheus::MetricType::Counter) return metric.counter.value;
        return metric.gauge.value;
      }
    }
    return std::nullopt;
  }

  std::optional<double> Up(const std::string& instance) {
    return Value("health_bridge_instance_up",
                 {{"service_name", "payments"}, {"service_id", instance}, {"node", "node-a"}});
  }
  std::optional<double> Status(const std::string& instance, const std::string& status) {
    return Value("health_bridge_instance_status", {{"service_id", instance}, {"status", status}});
  }

  static Event Silent(Event event) {
    event.silent = true;
    return event;
  }
  static Event WithStatus(Event event, HealthStatus status) {
    event.status = status;
    return event;
  }
  // As the engine reports an instance that left the catalog.
  static Event Departed(Event event, HealthStatus last) {
    event.status.reset();
    event.previous_status = last;
    if (event.type == EventType::kInstanceDown) event.reason = DownReason::kDeregistered;
    return event;
  }

  prometheus::Registry registry_;
  test_support::FakeClock clock_;
  MetricsSinkSettings settings_;
  std::unique_ptr<MetricsSink> sink_;
};

TEST_F(MetricsSinkTest, InitialSyncSetsTheGaugesWithoutCountingEvents) {
  Deliver({Silent(InstanceEvent("payments-1", EventType::kInstanceRegistered, 5)),
           Silent(InstanceEvent("payments-1", EventType::kInstanceUp, 5)),
           Silent(InstanceEvent("payments-2", EventType::kInstanceRegistered, 5))});
  EXPECT_EQ(Up("payments-1"), 1);
  EXPECT_EQ(Up("payments-2"), 0);
  EXPECT_EQ(Status("payments-1", "passing"), 1);
  EXPECT_EQ(Status("payments-1", "critical"), 0);
  EXPECT_EQ(Value("health_bridge_service_instances_up", {{"service_name", "payments"}}), 1);
  EXPECT_EQ(Value("health_bridge_service_instances", {{"service_name", "payments"}}), 2);
  EXPECT_EQ(Value("health_bridge_events_total", {{"type", "instance.up"}}), std::nullopt);
}

TEST_F(MetricsSinkTest, DownSetsUpToZeroAndExactlyOneStatusSeries) {
  Deliver({InstanceEvent("payments-1", EventType::kInstanceRegistered, 5),
           InstanceEvent("payments-1", EventType::kInstanceUp, 5),
           InstanceEvent("payments-1", EventType::kInstanceDown, 6)});
  EXPECT_EQ(Up("payments-1"), 0);
  EXPECT_EQ(Status("payments-1", "critical"), 1);
  for (const char* other : {"passing", "warning", "maintenance"}) {
    EXPECT_EQ(Status("payments-1", other), 0) << other;
  }
  EXPECT_EQ(Value("health_bridge_service_instances_up", {{"service_name", "payments"}}), 0);
  EXPECT_EQ(Value("health_bridge_events_total", {{"type", "instance.down"}}), 1);
  EXPECT_EQ(Value("health_bridge_instance_transitions_total",
                  {{"service_name", "payments"}, {"direction", "down"}}),
            1);
}

TEST_F(MetricsSinkTest, DeregistrationTellsReapingFromGracefulAndKeepsAZeroSeriesForATime) {
  Deliver({InstanceEvent("payments-1", EventType::kInstanceRegistered, 5),
           InstanceEvent("payments-2", EventType::kInstanceRegistered, 5),
           InstanceEvent("payments-2", EventType::kInstanceUp, 5)});
  // payments-1 was critical when it vanished: reaped. payments-2 left while
  // passing: a graceful shutdown. A departed instance has no status, only
  // the previous one.
  Deliver(
      {Departed(InstanceEvent("payments-1", EventType::kInstanceDeregistered, 7),
                HealthStatus::kCritical),
       Departed(InstanceEvent("payments-2", EventType::kInstanceDown, 8), HealthStatus::kPassing),
       Departed(InstanceEvent("payments-2", EventType::kInstanceDeregistered, 8),
                HealthStatus::kPassing)});
  EXPECT_EQ(Value("health_bridge_deregistrations_total",
                  {{"service_name", "payments"}, {"reason", "reaped"}}),
            1);
  EXPECT_EQ(Value("health_bridge_deregistrations_total",
                  {{"service_name", "payments"}, {"reason", "graceful"}}),
            1);
  EXPECT_EQ(Up("payments-2"), 0) << "exported as 0 first, so the drop is visible";
  for (const char* status : {"passing", "warning", "critical", "maintenance"}) {
    EXPECT_EQ(Status("payments-2", status), 0) << status << ": it has no status any more";
  }
  EXPECT_EQ(Value("health_bridge_service_instances", {{"service_name", "payments"}}), 0);

  clock_.Advance(minutes(6));
  Deliver({InstanceEvent("payments-3", EventType::kInstanceRegistered, 9)});
  EXPECT_EQ(Up("payments-1"), std::nullopt) << "series of gone instances do not pile up";
  EXPECT_EQ(Up("payments-2"), std::nullopt);
  EXPECT_EQ(Status("payments-2", "passing"), std::nullopt);
  EXPECT_EQ(Up("payments-3"), 0);
}

TEST_F(MetricsSinkTest, ReRegistrationIsNotRemovedByTheOldSeriesExpiry) {
  Deliver({InstanceEvent("payments-1", EventType::kInstanceRegistered, 5),
           InstanceEvent("payments-1", EventType::kInstanceDeregistered, 6)});
  clock_.Advance(minutes(1));
  Deliver({InstanceEvent("payments-1", EventType::kInstanceRegistered, 7),
           InstanceEvent("payments-1", EventType::kInstanceUp, 7)});
  clock_.Advance(minutes(5));
  Deliver({InstanceEvent("payments-2", EventType::kInstanceRegistered, 8)});
  EXPECT_EQ(Up("payments-1"), 1);
  EXPECT_EQ(Value("health_bridge_service_instances", {{"service_name", "payments"}}), 2);
}

TEST_F(MetricsSinkTest, TheViewRestatesTheStateIdempotentlyWithoutCounting) {
  Deliver({InstanceEvent("payments-1", EventType::kInstanceRegistered, 5),
           InstanceEvent("payments-1", EventType::kInstanceUp, 5)});
  // The engine's view, as sent to a sink at start or after a reload: one
  // up or down per instance, silent, whatever the sink already knew.
  for (int round = 0; round < 2; ++round) {
    Deliver({Silent(WithStatus(InstanceEvent("payments-1", EventType::kInstanceUp, 5),
                               HealthStatus::kPassing)),
             Silent(WithStatus(InstanceEvent("payments-2", EventType::kInstanceDown, 6),
                               HealthStatus::kMaintenance))});
  }
  EXPECT_EQ(Up("payments-1"), 1);
  EXPECT_EQ(Up("payments-2"), 0);
  EXPECT_EQ(Status("payments-2", "maintenance"), 1);
  EXPECT_EQ(Value("health_bridge_service_instances_up", {{"service_name", "payments"}}), 1);
  EXPECT_EQ(Value("health_bridge_service_instances", {{"service_name", "payments"}}), 2);
  EXPECT_EQ(Value("health_bridge_events_total", {{"type", "instance.up"}}), 1);
  EXPECT_EQ(Value("health_bridge_instance_transitions_total",
                  {{"service_name", "payments"}, {"direction", "down"}}),
            std::nullopt);
}

TEST_F(MetricsSinkTest, RestatedDepartureKeepsTheSeriesForTheRestOfItsTtlOnly) {
  // A new sink (after a reload) learns from the view that payments-1 left
  // two minutes ago and payments-2 ten minutes ago.
  Event recent = Departed(InstanceEvent("payments-1", EventType::kInstanceDeregistered, 7),
                          HealthStatus::kPassing);
  recent.time = clock_.WallNow() - minutes(2);
  Event old = Departed(InstanceEvent("payments-2", EventType::kInstanceDeregistered, 6),
                       HealthStatus::kPassing);
  old.time = clock_.WallNow() - minutes(10);
  Deliver({Silent(recent), Silent(old)});
  EXPECT_EQ(Up("payments-1"), 0);
  for (const char* status : {"passing", "warning", "critical", "maintenance"}) {
    EXPECT_EQ(Status("payments-1", status), 0) << status;
  }
  EXPECT_EQ(Up("payments-2"), std::nullopt) << "its TTL is over";
  EXPECT_EQ(Value("health_bridge_service_instances", {{"service_name", "payments"}}), 0);
  EXPECT_EQ(Value("health_bridge_deregistrations_total",
                  {{"service_name", "payments"}, {"reason", "graceful"}}),
            std::nullopt)
      << "restating is not counting";

  clock_.Advance(minutes(3) + std::chrono::seconds(1));
  Deliver({InstanceEvent("payments-3", EventType::kInstanceRegistered, 9)});
  EXPECT_EQ(Up("payments-1"), std::nullopt) << "gone when the other sinks' copies go";
}

TEST_F(MetricsSinkTest, ShutdownTakesEverySeriesOfTheSinkAlong) {
  Deliver({InstanceEvent("payments-1", EventType::kInstanceRegistered, 5),
           InstanceEvent("payments-1", EventType::kInstanceUp, 5)});
  ASSERT_EQ(Up("payments-1"), 1);
  // Removed, renamed or rebuilt by a reload: its successor starts from the
  // engine's view, never from these.
  EXPECT_TRUE(sink_->Shutdown(std::chrono::milliseconds(0)));
  EXPECT_EQ(Up("payments-1"), std::nullopt);
  EXPECT_EQ(Status("payments-1", "passing"), std::nullopt);
  EXPECT_EQ(Value("health_bridge_service_instances", {{"service_name", "payments"}}), std::nullopt);
  // A successor registering the same series keeps them when the old sink
  // is destroyed later.
  MetricsSink successor("metrics", settings_, registry_, clock_);
  std::vector<EventPtr> batch{
      test_support::Shared(InstanceEvent("payments-1", EventType::kInstanceDown, 6))};
  std::vector<DeliveryResult> results(1);
  successor.Deliver(batch, results);
  sink_.reset();
  EXPECT_EQ(Up("payments-1"), 0);
}

TEST(MetricLabelValueTest, EncodesWhatTheExpositionFormatCannotCarryAndKeepsTheRest) {
  EXPECT_EQ(MetricLabelValue("payments-1"), "payments-1");
  EXPECT_EQ(MetricLabelValue("a b/c:d\"e\\f"), "a b/c:d\"e\\f") << "escaped by the serializer";
  EXPECT_EQ(MetricLabelValue("\xC3\xBC\xE2\x82\xAC\xF0\x9F\x98\x80"),
            "\xC3\xBC\xE2\x82\xAC\xF0\x9F\x98\x80");
  EXPECT_EQ(MetricLabelValue(std::string("a\r\nb\0c\x1b\x7f", 8)), "a%0D%0Ab%00c%1B%7F");
  EXPECT_EQ(MetricLabelValue("50%"), "50%25") << "so distinct texts stay distinct";
  EXPECT_EQ(MetricLabelValue("\xFF"), "%FF");
  EXPECT_EQ(MetricLabelValue("\xC0\xAF"), "%C0%AF") << "overlong";
  EXPECT_EQ(MetricLabelValue("\xED\xA0\x80"), "%ED%A0%80") << "a surrogate";
  EXPECT_EQ(MetricLabelValue("x\xE2\x82"), "x%E2%82") << "cut short";
  EXPECT_EQ(MetricLabelValue("\xF4\x90\x80\x80"), "%F4%90%80%80") << "past U+10FFFF";
}

// Consul's text is free: CR, LF, NUL, ESC and DEL in a service name, ID and
// node. Every line of the exposition stays one valid sample, and two IDs
// that differ only in such bytes keep series of their own.
TEST_F(MetricsSinkTest, HostileTextInLabelsCannotBreakTheExposition) {
  static constexpr char kHostile[] = "\r\n# TYPE forged gauge\nforged 1\r\n\0\x1b[31m\x7f\"}";
  const std::string hostile(kHostile, sizeof(kHostile) - 1);
  auto first = InstanceEvent("svc" + hostile, EventType::kInstanceUp, 5, "payments" + hostile);
  first.node = "node" + hostile;
  first.status = HealthStatus::kPassing;
  auto second = first;
  second.instance_id = "svc%0D%0A# TYPE forged gauge%0Aforged 1%0D%0A%00%1B[31m%7F\"}";
  second.id = "second";
  second.type = EventType::kInstanceDown;
  second.status = HealthStatus::kCritical;
  Deliver({first, second});

  const std::string service = MetricLabelValue("payments" + hostile);
  const std::string node = MetricLabelValue("node" + hostile);
  EXPECT_EQ(Value("health_bridge_instance_up", {{"service_name", service},
                                                {"service_id", MetricLabelValue(first.instance_id)},
                                                {"node", node}}),
            1);
  EXPECT_EQ(
      Value("health_bridge_instance_up", {{"service_name", service},
                                          {"service_id", MetricLabelValue(second.instance_id)},
                                          {"node", node}}),
      0);
  EXPECT_EQ(Value("health_bridge_service_instances", {{"service_name", service}}), 2);

  // Prometheus' text format, line by line: a comment, or a metric name,
  // labels whose values hold no raw control byte, and a number.
  const std::string text = prometheus::TextSerializer().Serialize(registry_.Collect());
  const std::regex line_format(
      R"(^(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*|[a-zA-Z_:][a-zA-Z0-9_:]*)"
      R"((\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\x00-\x1f\x7f]|\\[\\"n])*",?)*\})? \S+( \S+)?)$)");
  std::istringstream in(text);
  std::size_t forged = 0;
  for (std::string line; std::getline(in, line);) {
    EXPECT_TRUE(std::regex_match(line, line_format)) << "not one valid line: " << line;
    if (line.rfind("forged", 0) == 0 || line.rfind("# TYPE forged", 0) == 0) ++forged;
  }
  EXPECT_EQ(forged, 0U);
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_EQ(text.find('\0'), std::string::npos);
}

}  // namespace
}  // namespace hb
