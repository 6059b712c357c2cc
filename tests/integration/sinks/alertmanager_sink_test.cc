// The Alertmanager sink against the real Alertmanager (Debian's
// prometheus-alertmanager) on loopback, and against a scripted HTTP peer
// where a test must count or refuse posts.

#include "sinks/alertmanager/alertmanager_sink.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "bridge/model/cloud_event.h"
#include "bridge/router/dead_letter.h"
#include "bridge/router/sink_worker.h"
#include "tests/support/alertmanager/alertmanager_server.h"
#include "tests/support/dead_letters.h"
#include "tests/support/eventually.h"
#include "tests/support/http/loopback_server.h"
#include "tests/support/http/scripted_http_peer.h"
#include "tests/support/sample_events.h"
#include "tests/support/test_dir.h"

namespace hb {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using test_support::AlertmanagerServer;
using test_support::Answer;
using test_support::FindAlert;
using test_support::InstanceEvent;
using test_support::ReceivedRequest;
using test_support::ScriptedHttpPeer;
using test_support::Shared;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using Kind = DeliveryResult::Kind;

constexpr milliseconds kWait = seconds(20);

Event Down(const std::string& instance, std::uint64_t index = 10) {
  return InstanceEvent(instance, EventType::kInstanceDown, index);
}

Event Up(const std::string& instance, std::uint64_t index = 20) {
  Event event = InstanceEvent(instance, EventType::kInstanceUp, index);
  event.previous_status = HealthStatus::kCritical;
  return event;
}

Event Silent(Event event) {
  event.silent = true;
  return event;
}

WallTime ParseTime(const std::string& text) {
  std::tm tm{};
  int millis = 0;
  std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d.%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
              &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &millis);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return std::chrono::system_clock::from_time_t(timegm(&tm)) + milliseconds(millis);
}

// test_support::Eventually() with this file's deadline.
::testing::AssertionResult WaitUntil(const std::function<bool()>& condition,
                                     milliseconds timeout = kWait) {
  return test_support::Eventually(condition, timeout);
}

// Alertmanager's notifications received by the webhook receiver.
std::vector<json> Notifications(const ScriptedHttpPeer& receiver) {
  std::vector<json> out;
  for (const ReceivedRequest& request : receiver.Accepted())
    out.push_back(json::parse(request.body));
  return out;
}

std::optional<json> WaitForNotification(const ScriptedHttpPeer& receiver,
                                        const std::function<bool(const json&)>& accept) {
  std::optional<json> found;
  WaitUntil([&] {
    for (const json& notification : Notifications(receiver)) {
      if (accept(notification)) {
        found = notification;
        return true;
      }
    }
    return false;
  });
  return found;
}

// The value of the one series of `family` whose labels include `labels`.
double MetricValue(prometheus::Registry& registry, const std::string& family,
                   const std::map<std::string, std::string>& labels) {
  for (const auto& collected : registry.Collect()) {
    if (collected.name != family) continue;
    for (const auto& metric : collected.metric) {
      bool all = true;
      for (const auto& wanted : labels) {
        all = all && std::any_of(metric.label.begin(), metric.label.end(), [&](const auto& l) {
                return l.name == wanted.first && l.value == wanted.second;
              });
      }
      if (all) {
        return collected.type == prometheus::MetricType::Counter ? metric.counter.value
                                                                 : metric.gauge.value;
      }
    }
  }
  return -1;
}

AlertmanagerServer::Options NotifyingTo(const ScriptedHttpPeer& receiver) {
  AlertmanagerServer::Options options;
  options.receiver_url = receiver.url("/notify");
  return options;
}

std::vector<std::string> ServiceIds(const json& alerts) {
  std::vector<std::string> ids;
  for (const auto& alert : alerts) ids.push_back(alert["labels"].value("service_id", ""));
  return ids;
}

class AlertmanagerSinkTest : public ::testing::Test {
 protected:
  static AlertmanagerSinkSettings Settings(std::vector<std::string> urls) {
    AlertmanagerSinkSettings settings;
    settings.urls = std::move(urls);
    settings.labels = {{"team", "payments"}};
    settings.timeout = seconds(5);
    settings.connect_timeout = seconds(2);
    return settings;
  }

  std::unique_ptr<AlertmanagerSink> NewSink(const AlertmanagerSinkSettings& settings,
                                            prometheus::Registry* registry = nullptr) {
    auto sink = AlertmanagerSink::Create("alerts", settings, clock_, registry);
    EXPECT_TRUE(sink.ok()) << sink.status().ToString();
    return std::move(sink).value();
  }

  static std::vector<DeliveryResult> Deliver(AlertmanagerSink& sink,
                                             const std::vector<Event>& events) {
    std::vector<EventPtr> batch;
    for (const Event& event : events) batch.push_back(Shared(event));
    std::vector<DeliveryResult> results(batch.size());
    sink.Deliver(batch, results);
    return results;
  }

  static DeliveryResult DeliverOne(AlertmanagerSink& sink, const Event& event) {
    return Deliver(sink, {event}).at(0);
  }

  static std::unique_ptr<AlertmanagerServer> StartAlertmanager(
      AlertmanagerServer::Options options = {}) {
    auto server = std::make_unique<AlertmanagerServer>(std::move(options));
    EXPECT_TRUE(server->WaitReady(kWait)) << server->Log();
    return server;
  }

  SystemClock clock_;
};

TEST_F(AlertmanagerSinkTest, FiringAlertShowsItsLabelsAndResolvesAfterRecovery) {
  ScriptedHttpPeer receiver;
  receiver.ExpectCloudEvents(false);  // Alertmanager's notifications
  auto alertmanager = StartAlertmanager(NotifyingTo(receiver));
  auto sink = NewSink(Settings({alertmanager->url()}));

  ASSERT_EQ(DeliverOne(*sink, Down("payments-1")).kind, Kind::kOk);
  const json alerts = alertmanager->WaitForAlerts(
      [](const json& all) {
        return FindAlert(all, {{"service_id", "payments-1"}}).has_value();
      },
      kWait);
  const auto alert = FindAlert(alerts, {{"service_id", "payments-1"}});
  ASSERT_TRUE(alert) << alerts.dump() << alertmanager->Log();
  EXPECT_EQ((*alert)["labels"], (json{{"alertname", "ConsulInstanceDown"},
                                      {"service_name", "payments"},
                                      {"service_id", "payments-1"},
                                      {"node", "node-a"},
                                      {"datacenter", "dc1"},
                                      {"reason", "critical"},
                                      {"severity", "critical"},
                                      {"team", "payments"}}));
  EXPECT_EQ((*alert)["annotations"]["checks"], "Service TTL (critical): TTL expired");
  EXPECT_EQ((*alert)["annotations"]["address"], "10.1.2.3:8080");
  EXPECT_EQ((*alert)["status"]["state"], "active");
  // Firing with endsAt four resend intervals ahead: it does not resolve by itself.
  EXPECT_GT(ParseTime((*alert)["endsAt"]),
            std::chrono::system_clock::now() + std::chrono::minutes(3));

  const auto firing =
      WaitForNotification(receiver, [](const json& n) { return n["status"] == "firing"; });
  ASSERT_TRUE(firing) << alertmanager->Log();
  EXPECT_EQ(ServiceIds((*firing)["alerts"]), std::vector<std::string>{"payments-1"});

  ASSERT_EQ(DeliverOne(*sink, Up("payments-1")).kind, Kind::kOk);
  const json after = alertmanager->WaitForAlerts(
      [](const json& all) {
        return !FindAlert(all, {{"service_id", "payments-1"}});
      },
      kWait);
  EXPECT_FALSE(FindAlert(after, {{"service_id", "payments-1"}})) << after.dump();
  const auto resolved =
      WaitForNotification(receiver, [](const json& n) { return n["status"] == "resolved"; });
  ASSERT_TRUE(resolved) << alertmanager->Log();
  EXPECT_EQ((*resolved)["alerts"][0]["labels"]["service_id"], "payments-1");
  EXPECT_TRUE(sink->FiringAlerts().empty());
}

TEST_F(AlertmanagerSinkTest, GroupedNotificationLeavesOutTheSilencedInstance) {
  ScriptedHttpPeer receiver;
  receiver.ExpectCloudEvents(false);  // Alertmanager's notifications
  auto alertmanager = StartAlertmanager(NotifyingTo(receiver));
  alertmanager->Silence({{"service_id", "payments-3"}});
  auto sink = NewSink(Settings({alertmanager->url()}));

  const auto results = Deliver(*sink, {Down("payments-1"), Down("payments-2"), Down("payments-3")});
  for (const auto& result : results) ASSERT_EQ(result.kind, Kind::kOk) << result.error;

  // One notification for the service's group, without the silenced instance.
  const auto notification =
      WaitForNotification(receiver, [](const json& n) { return n["status"] == "firing"; });
  ASSERT_TRUE(notification) << alertmanager->Log();
  EXPECT_EQ((*notification)["groupLabels"],
            (json{{"alertname", "ConsulInstanceDown"}, {"service_name", "payments"}}));
  EXPECT_THAT(ServiceIds((*notification)["alerts"]),
              UnorderedElementsAre("payments-1", "payments-2"));
  const json alerts =
      alertmanager->WaitForAlerts([](const json& all) { return all.size() == 3; }, kWait);
  const auto silenced = FindAlert(alerts, {{"service_id", "payments-3"}});
  ASSERT_TRUE(silenced) << alerts.dump();
  EXPECT_EQ((*silenced)["status"]["state"], "suppressed");
  for (const json& n : Notifications(receiver)) {
    EXPECT_THAT(ServiceIds(n["alerts"]), ::testing::Not(::testing::Contains("payments-3")));
  }
}

TEST_F(AlertmanagerSinkTest, ServiceAlertFiresAndResolvesUnderItsOwnName) {
  auto alertmanager = StartAlertmanager();
  auto sink = NewSink(Settings({alertmanager->url()}));
  Event down;
  down.type = EventType::kServiceDown;
  down.datacenter = "dc1";
  down.service = "payments";
  down.instances_total = 2;
  down.time = std::chrono::system_clock::now();
  ASSERT_EQ(DeliverOne(*sink, down).kind, Kind::kOk);
  const json alerts = alertmanager->WaitForAlerts(
      [](const json& all) {
        return FindAlert(all, {{"alertname", "ConsulServiceDown"}}).has_value();
      },
      kWait);
  const auto alert = FindAlert(alerts, {{"alertname", "ConsulServiceDown"}});
  ASSERT_TRUE(alert) << alerts.dump();
  EXPECT_EQ((*alert)["labels"]["service_name"], "payments");
  EXPECT_FALSE((*alert)["labels"].contains("service_id"));

  Event up = down;
  up.type = EventType::kServiceUp;
  up.instances_up = 1;
  ASSERT_EQ(DeliverOne(*sink, up).kind, Kind::kOk);
  const json after =
      alertmanager->WaitForAlerts([](const json& all) { return all.empty(); }, kWait);
  EXPECT_TRUE(after.empty()) << after.dump();
}

TEST_F(AlertmanagerSinkTest, EveryAlertmanagerGetsEveryAlertAndADeadOneHoldsNothingBack) {
  auto first = StartAlertmanager();
  auto second = StartAlertmanager();
  const std::string dead = "http://127.0.0.1:" + std::to_string(UnusedLoopbackPort());
  prometheus::Registry registry;
  auto sink = NewSink(Settings({first->url(), dead, second->url()}), &registry);

  ASSERT_EQ(DeliverOne(*sink, Down("payments-1")).kind, Kind::kOk);
  EXPECT_EQ(MetricValue(registry, "health_bridge_alertmanager_firing_alerts", {}), 1);
  for (auto* alertmanager : {first.get(), second.get()}) {
    const json alerts =
        alertmanager->WaitForAlerts([](const json& all) { return !all.empty(); }, kWait);
    EXPECT_TRUE(FindAlert(alerts, {{"service_id", "payments-1"}})) << alerts.dump();
  }
  ASSERT_EQ(DeliverOne(*sink, Up("payments-1")).kind, Kind::kOk);
  for (auto* alertmanager : {first.get(), second.get()}) {
    const json alerts =
        alertmanager->WaitForAlerts([](const json& all) { return all.empty(); }, kWait);
    EXPECT_TRUE(alerts.empty()) << alerts.dump();
  }
  // The dead one is counted, so an HA pair running on one leg shows.
  const std::string posts = "health_bridge_alertmanager_posts_total";
  EXPECT_EQ(MetricValue(registry, posts,
                        {{"alertmanager", dead + "/api/v2/alerts"}, {"outcome", "failed"}}),
            2);
  EXPECT_EQ(MetricValue(registry, posts,
                        {{"alertmanager", first->url() + "/api/v2/alerts"}, {"outcome", "ok"}}),
            2);
  EXPECT_EQ(MetricValue(registry, "health_bridge_alertmanager_firing_alerts", {}), 0);

  // With none reachable the event is retried, and the error names the endpoint.
  auto lonely = NewSink(Settings({dead}));
  const DeliveryResult result = DeliverOne(*lonely, Down("payments-2"));
  EXPECT_EQ(result.kind, Kind::kRetry);
  EXPECT_THAT(result.error, HasSubstr(dead + "/api/v2/alerts"));
  EXPECT_TRUE(lonely->FiringAlerts().empty());
}

TEST_F(AlertmanagerSinkTest, FiringAlertIsResentBeforeItExpiresAndExpiresOnceTheBridgeStops) {
  auto alertmanager = StartAlertmanager();
  AlertmanagerSinkSettings settings = Settings({alertmanager->url()});
  settings.resend_interval = seconds(1);
  settings.expire_after = seconds(3);
  auto sink = NewSink(settings);
  ASSERT_EQ(DeliverOne(*sink, Down("payments-1")).kind, Kind::kOk);
  const json first =
      alertmanager->WaitForAlerts([](const json& all) { return !all.empty(); }, kWait);
  ASSERT_FALSE(first.empty());
  const WallTime first_end = ParseTime(first[0]["endsAt"]);

  // Past the first post's endsAt the alert still fires: the resends moved it.
  ASSERT_TRUE(
      WaitUntil([&] { return std::chrono::system_clock::now() > first_end + milliseconds(500); }));
  const auto still = alertmanager->Alerts();
  ASSERT_TRUE(still);
  const auto alert = FindAlert(*still, {{"service_id", "payments-1"}});
  ASSERT_TRUE(alert) << still->dump();
  EXPECT_EQ((*alert)["status"]["state"], "active");
  EXPECT_GT(ParseTime((*alert)["endsAt"]), first_end);

  // The bridge stops: nothing resends, Alertmanager resolves it by itself.
  sink->Shutdown(seconds(1));
  sink.reset();
  const json after =
      alertmanager->WaitForAlerts([](const json& all) { return all.empty(); }, kWait);
  EXPECT_TRUE(after.empty()) << after.dump();
}

TEST_F(AlertmanagerSinkTest, AfterARestartSilentStateRefiresAndARealRecoveryResolvesTheOldAlert) {
  auto alertmanager = StartAlertmanager();
  const auto settings = Settings({alertmanager->url()});
  {
    auto before = NewSink(settings);
    ASSERT_EQ(DeliverOne(*before, Down("payments-1")).kind, Kind::kOk);
    ASSERT_EQ(DeliverOne(*before, Down("payments-2")).kind, Kind::kOk);
  }
  // The next process: the engine restates its view (silent), then the
  // reconciled recovery of payments-2 that happened while it was away.
  auto after = NewSink(settings);
  Event recovered = Up("payments-2");
  recovered.reconciled = true;
  const auto results = Deliver(*after, {Silent(Down("payments-1")), recovered});
  ASSERT_EQ(results[0].kind, Kind::kOk);
  ASSERT_EQ(results[1].kind, Kind::kOk);
  EXPECT_EQ(after->FiringAlerts().size(), 1U);
  const json alerts =
      alertmanager->WaitForAlerts([](const json& all) { return all.size() == 1; }, kWait);
  EXPECT_EQ(ServiceIds(alerts), std::vector<std::string>{"payments-1"}) << alerts.dump();
}

TEST_F(AlertmanagerSinkTest, RouterRetriesWhileAlertmanagerIsDownAndDeadLettersWhatItRefuses) {
  const test_support::TestDir dir("alertmanager_sink_test");
  auto dead_letters = [&] { return test_support::DeadLetterStorage(dir.path(), "alerts"); };
  SinkWorkerOptions options;
  options.retry.initial_backoff = milliseconds(50);
  options.retry.max_backoff = milliseconds(200);

  auto alertmanager = StartAlertmanager();
  alertmanager->Stop();
  auto storage = dead_letters();
  SinkWorker worker(options, NewSink(Settings({alertmanager->url()})), storage, clock_, nullptr);
  ASSERT_TRUE(worker.Enqueue(Shared(Down("payments-1"))));
  // Alertmanager comes back: the event, retried meanwhile, gets there.
  alertmanager->Restart();
  ASSERT_TRUE(alertmanager->WaitReady(kWait)) << alertmanager->Log();
  const json alerts =
      alertmanager->WaitForAlerts([](const json& all) { return !all.empty(); }, kWait);
  EXPECT_TRUE(FindAlert(alerts, {{"service_id", "payments-1"}})) << alerts.dump();
  EXPECT_TRUE(WaitUntil([&] { return worker.QueueDepth() == 0; }));
  EXPECT_EQ(worker.Shutdown(seconds(5)), 0U);

  // What every Alertmanager refuses for good is dead-lettered, with its words.
  ScriptedHttpPeer refusing([](std::size_t, const ReceivedRequest&) {
    return Answer(400, "{\"message\":\"invalid label set\"}");
  });
  refusing.ExpectCloudEvents(false);  // posted alerts, not events
  auto refused_storage = dead_letters();
  SinkWorker refused(options, NewSink(Settings({refusing.url("")})), refused_storage, clock_,
                     nullptr);
  ASSERT_TRUE(refused.Enqueue(Shared(Down("payments-2"))));
  EXPECT_TRUE(WaitUntil([&] { return refused.QueueDepth() == 0; }));
  EXPECT_EQ(refused.Shutdown(seconds(5)), 0U);
  const auto lines = test_support::ReadDeadLetters(dir.path(), "alerts");
  ASSERT_EQ(lines.size(), 1U);
  EXPECT_THAT(lines[0].dump(), HasSubstr("payments-2"));
  EXPECT_THAT(lines[0].dump(), HasSubstr("invalid label set"));
}

TEST_F(AlertmanagerSinkTest, BasicAuthIsSentAsAlertmanagersWebConfigDemands) {
  AlertmanagerServer::Options options;
  options.basic_auth = true;
  auto alertmanager = StartAlertmanager(options);
  AlertmanagerSinkSettings settings = Settings({alertmanager->url()});
  settings.basic_username = AlertmanagerServer::kBasicUsername;
  settings.basic_password = "wrong";
  auto refused = NewSink(settings);
  const DeliveryResult result = DeliverOne(*refused, Down("payments-1"));
  EXPECT_EQ(result.kind, Kind::kReject);
  EXPECT_THAT(result.error, HasSubstr("HTTP 401"));

  settings.basic_password = AlertmanagerServer::kBasicPassword;
  auto sink = NewSink(settings);
  ASSERT_EQ(DeliverOne(*sink, Down("payments-1")).kind, Kind::kOk);
  const json alerts =
      alertmanager->WaitForAlerts([](const json& all) { return !all.empty(); }, kWait);
  EXPECT_TRUE(FindAlert(alerts, {{"service_id", "payments-1"}})) << alerts.dump();
}

TEST_F(AlertmanagerSinkTest, HttpsIsVerifiedAgainstTheConfiguredCa) {
  AlertmanagerServer::Options options;
  options.tls = true;
  auto alertmanager = StartAlertmanager(options);
  AlertmanagerSinkSettings settings = Settings({alertmanager->url()});
  auto unverified = NewSink(settings);
  const DeliveryResult refused = DeliverOne(*unverified, Down("payments-1"));
  EXPECT_EQ(refused.kind, Kind::kRetry);
  EXPECT_THAT(refused.error, HasSubstr("certificate"));

  settings.ca_file = alertmanager->ca_file();
  auto sink = NewSink(settings);
  ASSERT_EQ(DeliverOne(*sink, Down("payments-1")).kind, Kind::kOk);
  const json alerts =
      alertmanager->WaitForAlerts([](const json& all) { return !all.empty(); }, kWait);
  EXPECT_TRUE(FindAlert(alerts, {{"service_id", "payments-1"}})) << alerts.dump();
}

// Against a scripted peer: what is posted, and when nothing is.

class ScriptedAlertmanagerTest : public AlertmanagerSinkTest {
 protected:
  // Stands in for Alertmanager: what it gets are alerts, not events.
  ScriptedAlertmanagerTest() { peer_.ExpectCloudEvents(false); }

  std::vector<json> Posts() const {
    std::vector<json> posts;
    for (const auto& request : peer_.Accepted()) posts.push_back(json::parse(request.body));
    return posts;
  }

  ScriptedHttpPeer peer_;
};

TEST_F(ScriptedAlertmanagerTest, SilentEventsPostOnlyWhatAlertmanagerMayNotKnow) {
  auto sink = NewSink(Settings({peer_.url("")}));
  // The engine's view at start: healthy instances (up, or registered
  // passing), and two down ones, told as instance.down and as a registered
  // instance with a down status.
  Event healthy = InstanceEvent("payments-8", EventType::kInstanceRegistered, 5);
  Event in_maintenance = InstanceEvent("payments-9", EventType::kInstanceRegistered, 5);
  in_maintenance.status = HealthStatus::kMaintenance;
  in_maintenance.checks = {{"_node_maintenance", "Node Maintenance Mode", HealthStatus::kCritical,
                            "", "rack move", "", ""}};
  const auto results = Deliver(*sink, {Silent(Up("payments-1")), Silent(healthy),
                                       Silent(Down("payments-2")), Silent(in_maintenance)});
  for (const auto& result : results) EXPECT_EQ(result.kind, Kind::kOk);
  ASSERT_EQ(peer_.RequestCount(), 1U);
  EXPECT_THAT(ServiceIds(Posts()[0]), UnorderedElementsAre("payments-2", "payments-9"));
  EXPECT_EQ(peer_.Accepted()[0].path, "/api/v2/alerts");
  const auto maintenance = FindAlert(Posts()[0], {{"service_id", "payments-9"}});
  ASSERT_TRUE(maintenance);
  EXPECT_EQ((*maintenance)["labels"]["reason"], "maintenance");

  // A reload restates the same view: nothing new to say.
  Event down_again = InstanceEvent("payments-9", EventType::kInstanceStatusChanged, 6);
  down_again.status = HealthStatus::kCritical;
  Deliver(*sink, {Silent(Up("payments-1")), Silent(Down("payments-2")), Silent(down_again)});
  EXPECT_EQ(peer_.RequestCount(), 1U);

  // A silent up of what this sink fired resolves it.
  EXPECT_EQ(DeliverOne(*sink, Silent(Up("payments-2"))).kind, Kind::kOk);
  ASSERT_EQ(peer_.RequestCount(), 2U);
  const json resolve = Posts()[1][0];
  EXPECT_EQ(resolve["labels"]["service_id"], "payments-2");
  EXPECT_LE(ParseTime(resolve["endsAt"]), std::chrono::system_clock::now());
  const auto fired = FindAlert(Posts()[0], {{"service_id", "payments-2"}});
  EXPECT_EQ(resolve["startsAt"], (*fired)["startsAt"]);

  // A real up of an instance that was never down says nothing either.
  Event from_passing = Up("payments-3");
  from_passing.previous_status = HealthStatus::kPassing;
  EXPECT_EQ(DeliverOne(*sink, from_passing).kind, Kind::kOk);
  EXPECT_EQ(peer_.RequestCount(), 2U);
  EXPECT_EQ(sink->FiringAlerts().size(), 1U);
}

TEST_F(ScriptedAlertmanagerTest, TestSinksMarkedEventPostsAResolvedAlertThatNotifiesNobody) {
  auto sink = NewSink(Settings({peer_.url("")}));
  Event probe =
      InstanceEvent("health-bridge-test-1", EventType::kInstanceUp, 0, "health-bridge-test");
  probe.meta = {{"health_bridge_test", "true"}};
  probe.previous_status.reset();
  ASSERT_EQ(DeliverOne(*sink, probe).kind, Kind::kOk);
  ASSERT_EQ(peer_.RequestCount(), 1U);
  const json alert = Posts()[0][0];
  EXPECT_EQ(alert["labels"]["service_name"], "health-bridge-test");
  EXPECT_EQ(alert["startsAt"], alert["endsAt"]);  // resolved from the start
  EXPECT_TRUE(sink->FiringAlerts().empty());
}

TEST_F(ScriptedAlertmanagerTest, GracefulDeregistrationFiresNothingUnlessAsked) {
  Event down = Down("payments-1");
  down.reason = DownReason::kDeregistered;
  Event gone = InstanceEvent("payments-1", EventType::kInstanceDeregistered, 11);
  gone.previous_status = HealthStatus::kPassing;
  auto quiet = NewSink(Settings({peer_.url("")}));
  Deliver(*quiet, {down});
  Deliver(*quiet, {gone});
  EXPECT_EQ(peer_.RequestCount(), 0U);

  AlertmanagerSinkSettings settings = Settings({peer_.url("")});
  settings.alert_on_deregistration = true;
  auto loud = NewSink(settings);
  Deliver(*loud, {down});
  Deliver(*loud, {gone});
  ASSERT_EQ(peer_.RequestCount(), 2U);
  EXPECT_EQ(Posts()[0][0]["labels"]["reason"], "deregistered");
  EXPECT_EQ(Posts()[1][0]["labels"], Posts()[0][0]["labels"]);  // the same alert, resolved
}

TEST_F(ScriptedAlertmanagerTest, StatusChangeOfAFiringInstanceUpdatesItsAnnotationsOnly) {
  auto sink = NewSink(Settings({peer_.url("")}));
  ASSERT_EQ(DeliverOne(*sink, Down("payments-1")).kind, Kind::kOk);
  Event maintenance = InstanceEvent("payments-1", EventType::kInstanceStatusChanged, 12);
  maintenance.status = HealthStatus::kMaintenance;
  maintenance.checks = {{"_service_maintenance:payments-1", "Service Maintenance Mode",
                         HealthStatus::kCritical, "", "kernel update", "payments-1", ""}};
  ASSERT_EQ(DeliverOne(*sink, maintenance).kind, Kind::kOk);
  ASSERT_EQ(peer_.RequestCount(), 2U);
  EXPECT_EQ(Posts()[1][0]["labels"], Posts()[0][0]["labels"]);
  EXPECT_EQ(Posts()[1][0]["annotations"]["checks"],
            "Service Maintenance Mode (maintenance): kernel update");
}

TEST_F(ScriptedAlertmanagerTest, AnswersAreClassifiedAndOneRefusedAlertDoesNotSinkItsBatch) {
  peer_.SetScript([](std::size_t, const ReceivedRequest& request) {
    if (request.body.find("payments-busy") != std::string::npos) {
      return Answer(503, "overloaded", "7");
    }
    if (request.body.find("payments-bad") != std::string::npos) {
      return Answer(400, "{\"code\":400,\"message\":\"start time must be before end time\"}");
    }
    return Answer(200);
  });
  auto sink = NewSink(Settings({peer_.url("")}));
  const DeliveryResult busy = DeliverOne(*sink, Down("payments-busy"));
  EXPECT_EQ(busy.kind, Kind::kRetry);
  EXPECT_EQ(busy.retry_after, seconds(7));
  EXPECT_THAT(busy.error, HasSubstr("HTTP 503: overloaded"));

  const auto results = Deliver(*sink, {Down("payments-bad"), Down("payments-1")});
  EXPECT_EQ(results[0].kind, Kind::kReject);
  EXPECT_THAT(results[0].error, HasSubstr("start time must be before end time"));
  EXPECT_EQ(results[1].kind, Kind::kOk);
  const auto firing = sink->FiringAlerts();
  EXPECT_EQ(firing.size(), 1U);
  EXPECT_TRUE(firing.contains("instance:dc1/node-a/payments-1"));
}

TEST_F(ScriptedAlertmanagerTest, BearerTokenAndHeadersAreSent) {
  AlertmanagerSinkSettings settings = Settings({peer_.url("/alertmanager/")});
  settings.bearer_token = "am-token";
  settings.headers = {{"X-Scope-OrgID", "tenant-1"}};
  auto sink = NewSink(settings);
  ASSERT_EQ(DeliverOne(*sink, Down("payments-1")).kind, Kind::kOk);
  const auto requests = peer_.Accepted();
  ASSERT_EQ(requests.size(), 1U);
  EXPECT_EQ(requests[0].path, "/alertmanager/api/v2/alerts");
  EXPECT_EQ(requests[0].Header("authorization"), "Bearer am-token");
  EXPECT_EQ(requests[0].Header("x-scope-orgid"), "tenant-1");
  EXPECT_EQ(requests[0].Header("content-type"), "application/json");
}

TEST_F(ScriptedAlertmanagerTest, ResendPostsFiringAndRecentlyResolvedAlertsAndSkipsADeadPeer) {
  const std::string dead = "http://127.0.0.1:" + std::to_string(UnusedLoopbackPort());
  prometheus::Registry registry;
  auto sink = NewSink(Settings({peer_.url(""), dead}), &registry);
  std::vector<Event> batch;
  for (int i = 0; i < 70; ++i) batch.push_back(Down("payments-" + std::to_string(i)));
  Deliver(*sink, std::vector<Event>(batch.begin(), batch.begin() + 64));
  Deliver(*sink, std::vector<Event>(batch.begin() + 64, batch.end()));
  ASSERT_EQ(DeliverOne(*sink, Up("payments-0")).kind, Kind::kOk);
  const std::size_t before = peer_.RequestCount();
  const std::string posts = "health_bridge_alertmanager_posts_total";
  const std::map<std::string, std::string> dead_failed{{"alertmanager", dead + "/api/v2/alerts"},
                                                       {"outcome", "failed"}};
  const double dead_before = MetricValue(registry, posts, dead_failed);

  sink->ResendNow();
  // 70 alerts in two posts to the live peer; the dead one tried once.
  ASSERT_EQ(peer_.RequestCount(), before + 2);
  EXPECT_EQ(MetricValue(registry, posts, dead_failed), dead_before + 1);
  const std::vector<json> posted = Posts();
  json resent = json::array();
  for (std::size_t i = before; i < before + 2; ++i) {
    for (const auto& alert : posted.at(i)) resent.push_back(alert);
  }
  ASSERT_EQ(resent.size(), 70U);
  const auto now = std::chrono::system_clock::now();
  const auto resolved = FindAlert(resent, {{"service_id", "payments-0"}});
  ASSERT_TRUE(resolved);
  EXPECT_LE(ParseTime((*resolved)["endsAt"]), now);
  const auto firing = FindAlert(resent, {{"service_id", "payments-69"}});
  ASSERT_TRUE(firing);
  EXPECT_GT(ParseTime((*firing)["endsAt"]), now + std::chrono::minutes(3));
}

TEST_F(ScriptedAlertmanagerTest, AResendRunningAlongsideDeliveriesNeverUndoesAResolve) {
  auto sink = NewSink(Settings({peer_.url("")}));
  constexpr int kAlerts = 640;  // ten posts per resend round
  for (int start = 0; start < kAlerts; start += 64) {
    std::vector<Event> batch;
    for (int i = start; i < start + 64; ++i) batch.push_back(Down("payments-" + std::to_string(i)));
    Deliver(*sink, batch);
  }
  std::thread resender([&] {
    for (int round = 0; round < 3; ++round) sink->ResendNow();
  });
  for (int i = 0; i < kAlerts; i += 7) {
    ASSERT_EQ(DeliverOne(*sink, Up("payments-" + std::to_string(i))).kind, Kind::kOk);
  }
  resender.join();

  // The last word Alertmanager got about each instance is the sink's.
  std::map<std::string, bool> last_firing;
  const auto now = std::chrono::system_clock::now();
  for (const json& post : Posts()) {
    for (const auto& alert : post) {
      last_firing[alert["labels"]["service_id"]] = ParseTime(alert["endsAt"]) > now;
    }
  }
  ASSERT_EQ(last_firing.size(), static_cast<std::size_t>(kAlerts));
  for (int i = 0; i < kAlerts; ++i) {
    EXPECT_EQ(last_firing["payments-" + std::to_string(i)], i % 7 != 0) << i;
  }
  EXPECT_EQ(sink->FiringAlerts().size(), static_cast<std::size_t>(kAlerts - (kAlerts + 6) / 7));
}

TEST_F(ScriptedAlertmanagerTest, InterruptAbortsAPostTheAlertmanagerHolds) {
  peer_.SetScript(
      [](std::size_t, const ReceivedRequest&) { return Answer(200, "", "", seconds(30)); });
  auto sink = NewSink(Settings({peer_.url("")}));
  std::thread interrupter([&] {
    WaitUntil([&] { return peer_.RequestCount() > 0; });
    sink->Interrupt();
  });
  const auto start = std::chrono::steady_clock::now();
  const DeliveryResult result = DeliverOne(*sink, Down("payments-1"));
  interrupter.join();
  EXPECT_EQ(result.kind, Kind::kRetry);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(5));
  peer_.Stop();
}

}  // namespace
}  // namespace hb
