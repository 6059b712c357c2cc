// The alerts the Alertmanager sink builds from events, and their JSON.

#include "sinks/alertmanager/alertmanager_alerts.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "bridge/model/cloud_event.h"
#include "tests/support/sample_events.h"

namespace hb {
namespace {

using test_support::InstanceEvent;
using ::testing::HasSubstr;
using ::testing::Not;

AlertmanagerSinkSettings Settings() {
  AlertmanagerSinkSettings settings;
  settings.urls = {"http://127.0.0.1:9093"};
  settings.labels = {{"team", "payments"}};
  settings.annotations = {{"runbook_url", "https://runbooks.example/consul"}};
  return settings;
}

nlohmann::json Parsed(const Alert& alert, WallTime firing_ends_at = {}) {
  const Alert* alerts[] = {&alert};
  const auto body = nlohmann::json::parse(AlertsJson(alerts, firing_ends_at));
  EXPECT_TRUE(body.is_array());
  EXPECT_EQ(body.size(), 1U);
  return body.at(0);
}

TEST(AlertmanagerAlertsTest, InstanceDownCarriesItsIdentityAsLabelsAndItsChecksAsAnnotations) {
  Event event = InstanceEvent("payments-1", EventType::kInstanceDown, 2731);
  event.checks.push_back(
      {"serfHealth", "Serf Health Status", HealthStatus::kPassing, "alive", "", "", ""});
  const Alert alert = InstanceAlert(event, DownReason::kCritical, Settings());

  EXPECT_EQ(alert.labels, (std::map<std::string, std::string>{{"alertname", "ConsulInstanceDown"},
                                                              {"datacenter", "dc1"},
                                                              {"node", "node-a"},
                                                              {"reason", "critical"},
                                                              {"service_id", "payments-1"},
                                                              {"service_name", "payments"},
                                                              {"severity", "critical"},
                                                              {"team", "payments"}}));
  EXPECT_EQ(alert.annotations.at("address"), "10.1.2.3:8080");
  // Only the failing check, with its name, status and output.
  EXPECT_EQ(alert.annotations.at("checks"), "Service TTL (critical): TTL expired");
  EXPECT_EQ(alert.annotations.at("summary"),
            "payments/payments-1 on node node-a (dc1) is down: critical");
  EXPECT_EQ(alert.annotations.at("runbook_url"), "https://runbooks.example/consul");
  EXPECT_TRUE(alert.firing());
}

TEST(AlertmanagerAlertsTest, MaintenanceShowsItsReasonAndIpv6AddressesAreBracketed) {
  Event event = InstanceEvent("payments-1", EventType::kInstanceDown, 2731);
  event.address = "2001:db8::7";
  event.checks = {{"_service_maintenance:payments-1", "Service Maintenance Mode",
                   HealthStatus::kCritical, "", "rolling kernel update", "payments-1", ""}};
  const Alert alert = InstanceAlert(event, DownReason::kMaintenance, Settings());
  EXPECT_EQ(alert.labels.at("reason"), "maintenance");
  EXPECT_EQ(alert.annotations.at("address"), "[2001:db8::7]:8080");
  EXPECT_EQ(alert.annotations.at("checks"),
            "Service Maintenance Mode (maintenance): rolling kernel update");
}

TEST(AlertmanagerAlertsTest, ServiceAlertHasItsOwnNameAndNoInstanceLabels) {
  Event event;
  event.type = EventType::kServiceDown;
  event.datacenter = "dc1";
  event.service = "payments";
  event.instances_total = 3;
  AlertmanagerSinkSettings settings = Settings();
  settings.severity = "";  // no severity label at all
  const Alert alert = ServiceAlert(event, settings);
  EXPECT_EQ(alert.labels, (std::map<std::string, std::string>{{"alertname", "ConsulServiceDown"},
                                                              {"datacenter", "dc1"},
                                                              {"service_name", "payments"},
                                                              {"team", "payments"}}));
  EXPECT_EQ(alert.annotations.at("summary"), "payments (dc1) has no instance up: 0 of 3 up");
}

TEST(AlertmanagerAlertsTest, HostileLabelValuesAreEscapedAndInvalidUtf8Replaced) {
  Event event = InstanceEvent("pay\"ments\\1", EventType::kInstanceDown, 2731);
  event.node = "node\n\"}],\"labels\":{\"alertname\":\"Injected";
  event.service = std::string("caf\xC3\xA9-\xFF\xFE-\x01", 10);
  event.checks[0].output = "<script>\"\t\x7f";
  const Alert alert = InstanceAlert(event, DownReason::kCritical, Settings());
  const auto json = Parsed(alert, std::chrono::system_clock::now());

  // Still one alert with exactly the sink's labels: nothing got out of its string.
  EXPECT_EQ(json.at("labels").size(), 8U);
  EXPECT_EQ(json.at("labels").at("alertname"), "ConsulInstanceDown");
  EXPECT_EQ(json.at("labels").at("node"), event.node);
  EXPECT_EQ(json.at("labels").at("service_id"), "pay\"ments\\1");
  // Valid UTF-8 kept, invalid bytes replaced by U+FFFD, control characters escaped.
  EXPECT_EQ(json.at("labels").at("service_name"), "caf\xC3\xA9-\xEF\xBF\xBD\xEF\xBF\xBD-\x01");
  EXPECT_THAT(json.at("annotations").at("checks").get<std::string>(),
              HasSubstr("<script>\"\t\x7f"));
  const Alert* alerts[] = {&alert};
  const std::string text = AlertsJson(alerts, {});
  EXPECT_THAT(text, Not(HasSubstr("\n")));
  EXPECT_THAT(text, HasSubstr("\\u0001"));
}

TEST(AlertmanagerAlertsTest, LargeCheckOutputIsCutAtACharacterBoundaryWithinTheBound) {
  Event event = InstanceEvent("payments-1", EventType::kInstanceDown, 2731);
  std::string output;
  while (output.size() < 100000) output += "\xE2\x82\xAC";  // "€", three bytes
  event.checks[0].output = output;
  for (int i = 0; i < 50; ++i) {
    event.checks.push_back({"check-" + std::to_string(i), "HTTP " + std::to_string(i),
                            HealthStatus::kCritical, output, "", "payments-1", "http"});
  }
  AlertmanagerSinkSettings settings = Settings();
  settings.max_annotation_bytes = 1024;
  const Alert alert = InstanceAlert(event, DownReason::kCritical, settings);
  const std::string& checks = alert.annotations.at("checks");
  EXPECT_LE(checks.size(), 1024U);
  EXPECT_THAT(checks, ::testing::StartsWith("Service TTL (critical): \xE2\x82\xAC"));
  EXPECT_THAT(checks, ::testing::EndsWith(" [truncated]"));
  // Cut between characters: it round-trips as valid UTF-8 without replacement.
  const auto json = Parsed(alert);
  EXPECT_EQ(json.at("annotations").at("checks"), checks);
  for (const auto& [name, value] : alert.annotations) EXPECT_LE(value.size(), 1024U) << name;
}

TEST(AlertmanagerAlertsTest, TruncateTextKeepsShortTextAndNeverSplitsACharacter) {
  EXPECT_EQ(TruncateText("short", 100), "short");
  EXPECT_EQ(TruncateText("0123456789abcdefghij", 15), "012 [truncated]");
  // "é" is two bytes; a cut inside it moves back before it.
  EXPECT_EQ(TruncateText("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", 15),
            "\xC3\xA9 [truncated]");
  EXPECT_EQ(TruncateText("abcdef", 4), "abcd");
}

TEST(AlertmanagerAlertsTest, FiringAlertEndsInTheFutureAndResolvedOneAtItsResolution) {
  const Event event = InstanceEvent("payments-1", EventType::kInstanceDown, 2731);
  Alert alert = InstanceAlert(event, DownReason::kCritical, Settings());
  const WallTime start = WallTime(std::chrono::seconds(1795515303));
  alert.starts_at = start;
  auto json = Parsed(alert, start + std::chrono::minutes(4));
  EXPECT_EQ(json.at("startsAt"), "2026-11-24T10:15:03.000Z");
  EXPECT_EQ(json.at("endsAt"), "2026-11-24T10:19:03.000Z");

  alert.resolved_at = start + std::chrono::seconds(30);
  json = Parsed(alert, start + std::chrono::minutes(4));
  EXPECT_EQ(json.at("endsAt"), "2026-11-24T10:15:33.000Z");
  // A clock that stepped back never makes endsAt precede startsAt.
  alert.resolved_at = start - std::chrono::seconds(30);
  EXPECT_EQ(Parsed(alert).at("endsAt"), "2026-11-24T10:15:03.000Z");
}

TEST(AlertmanagerAlertsTest, PreviousDownReasonFollowsThePreviousStatus) {
  Event up = InstanceEvent("payments-1", EventType::kInstanceUp, 2732);
  up.previous_status = HealthStatus::kMaintenance;
  EXPECT_EQ(PreviousDownReason(up), DownReason::kMaintenance);
  up.previous_status = HealthStatus::kCritical;
  EXPECT_EQ(PreviousDownReason(up), DownReason::kCritical);
  up.previous_status = HealthStatus::kPassing;
  EXPECT_EQ(PreviousDownReason(up), std::nullopt);
  up.previous_status.reset();
  EXPECT_EQ(PreviousDownReason(up), std::nullopt);
}

TEST(AlertmanagerAlertsTest, AlertKeysSeparateInstancesFromServices) {
  const Event instance = InstanceEvent("payments-1", EventType::kInstanceDown, 1);
  Event service;
  service.type = EventType::kServiceDown;
  service.datacenter = "dc1";
  service.service = "payments";
  EXPECT_EQ(AlertKey(instance), "instance:dc1/node-a/payments-1");
  EXPECT_EQ(AlertKey(service), "service:dc1/payments");
}

}  // namespace
}  // namespace hb
