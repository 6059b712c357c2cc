#include "bridge/model/cloud_event.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "bridge/model/cloud_event_reader.h"
#include "bridge/model/event_codec.h"

namespace hb {
namespace {

using nlohmann::json;

// 2026-11-24T10:15:03.120Z
constexpr WallTime kTime = WallTime(std::chrono::milliseconds(1795515303120));

Event SampleInstanceEvent(EventType type) {
  Event event;
  event.type = type;
  event.id = "dc1/node-a/payments-1/2731/" + std::string(ToString(type));
  event.datacenter = "dc1";
  event.service = "payments";
  event.instance_id = "payments-1";
  event.node = "node-a";
  event.address = "10.1.2.3";
  event.port = 8080;
  event.tags = {"v2"};
  event.meta = {{"version", "2.4.1"}};
  Check check;
  check.id = "service:payments-1";
  check.name = "Service TTL";
  check.status = HealthStatus::kCritical;
  check.output = "TTL expired";
  event.checks = {check};
  event.status = HealthStatus::kCritical;
  event.previous_status = HealthStatus::kPassing;
  if (type == EventType::kInstanceDown) event.reason = DownReason::kCritical;
  if (type == EventType::kInstanceRegistered) event.previous_status.reset();
  event.consul_index = 2731;
  event.time = kTime;
  return event;
}

Event SampleServiceEvent(EventType type) {
  Event event;
  event.type = type;
  event.id = "dc1/payments/2731/" + std::string(ToString(type));
  event.datacenter = "dc1";
  event.service = "payments";
  event.instances_up = type == EventType::kServiceUp ? 1 : 0;
  event.instances_total = 2;
  event.consul_index = 2731;
  event.time = kTime;
  return event;
}

std::string GoldenPath(EventType type) {
  std::string name(ToString(type));
  return std::string(HB_SOURCE_DIR) + "/tests/unit/model/golden/" + name + ".json";
}

// Each event type against its golden file, compared as JSON (key order and
// whitespace do not matter). HB_UPDATE_GOLDEN=1 rewrites the files.
TEST(CloudEvent, EveryEventTypeMatchesItsGoldenJson) {
  for (auto type : kAllEventTypes) {
    const bool service_event = type == EventType::kServiceUp || type == EventType::kServiceDown;
    const Event event = service_event ? SampleServiceEvent(type) : SampleInstanceEvent(type);
    const json actual = json::parse(SerializeCloudEvent(event, CloudEventOptions{}));
    if (std::getenv("HB_UPDATE_GOLDEN") != nullptr) {
      std::ofstream(GoldenPath(type)) << actual.dump(2) << "\n";
      continue;
    }
    std::ifstream in(GoldenPath(type));
    ASSERT_TRUE(in) << "missing golden file " << GoldenPath(type);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(actual, json::parse(text.str())) << ToString(type) << "\n" << actual.dump(2);
  }
}

TEST(CloudEvent, CarriesTheRequiredAttributes) {
  const json event = ToCloudEvent(SampleInstanceEvent(EventType::kInstanceDown), {});
  EXPECT_EQ(event["specversion"], "1.0");
  EXPECT_EQ(event["id"], "dc1/node-a/payments-1/2731/instance.down");
  EXPECT_EQ(event["source"], "consul://dc1");
  EXPECT_EQ(event["type"], "io.healthbridge.instance.down");
  EXPECT_EQ(event["subject"], "payments/payments-1");
  EXPECT_EQ(event["partitionkey"], "payments/payments-1");
  EXPECT_EQ(event["time"], "2026-11-24T10:15:03.120Z");
  EXPECT_EQ(event["datacontenttype"], "application/json");
  EXPECT_EQ(event["data"]["reason"], "critical");
}

TEST(CloudEvent, HonoursTypePrefixAndSource) {
  CloudEventOptions options;
  options.type_prefix = "com.example.health";
  options.source = "consul://prod-eu";
  const json event = ToCloudEvent(SampleServiceEvent(EventType::kServiceDown), options);
  EXPECT_EQ(event["type"], "com.example.health.service.down");
  EXPECT_EQ(event["source"], "consul://prod-eu");
  EXPECT_EQ(event["subject"], "payments");
}

TEST(CloudEvent, LongCheckOutputIsTruncatedAtACharacterBoundaryAndSaysSo) {
  Event event = SampleInstanceEvent(EventType::kInstanceDown);
  event.checks[0].output = std::string(10, 'x') + "\xC3\xA9" + std::string(100, 'y');  // é
  CloudEventOptions options;
  options.max_check_output_bytes = 11;  // would split the two-byte é
  const json data = CloudEventData(event, options);
  EXPECT_EQ(data["checks"][0]["output"], std::string(10, 'x'));
  EXPECT_EQ(data["checks"][0]["output_truncated"], true);
  options.max_check_output_bytes = 1024;
  EXPECT_FALSE(CloudEventData(event, options)["checks"][0].contains("output_truncated"));
}

TEST(CloudEvent, AttributesListMatchesTheStructuredEvent) {
  const Event event = SampleInstanceEvent(EventType::kInstanceUp);
  const json structured = ToCloudEvent(event, {});
  const auto attributes = CloudEventAttributes(event, {});
  EXPECT_EQ(attributes.size(), 8u);
  for (const auto& [name, value] : attributes) EXPECT_EQ(structured[name], value) << name;
}

// SerializeCloudEvent() writes the text directly: it must be canonical JSON,
// byte for byte what nlohmann's compact dump of it gives (members sorted,
// every string that needs escaping escaped as nlohmann does), and binary
// mode's payload must be exactly its "data".
TEST(CloudEvent, SerializedTextIsExactlyTheDocumentsCompactDump) {
  auto reference = [](const Event& event, const CloudEventOptions& options) {
    return ToCloudEvent(event, options).dump(-1, ' ', false, json::error_handler_t::replace);
  };
  std::vector<Event> events;
  for (EventType type :
       {EventType::kInstanceRegistered, EventType::kInstanceUp, EventType::kInstanceDown,
        EventType::kInstanceStatusChanged, EventType::kInstanceDeregistered}) {
    events.push_back(SampleInstanceEvent(type));
  }
  events.push_back(SampleServiceEvent(EventType::kServiceUp));
  events.push_back(SampleServiceEvent(EventType::kServiceDown));
  Event awkward = SampleInstanceEvent(EventType::kInstanceDown);
  awkward.status.reset();
  awkward.tags = {"quote\"d", "back\\slash", "tab\there", "", "caf\xc3\xa9",
                  // Text is checked eight bytes at a time: one byte to escape
                  // in a later word, and the edges of plain (0x1f is
                  // escaped, 0x20 and 0x7f are not).
                  "a plain prefix, then a \"quote", "sixteen bytes...\x1f, then \x7f, then more",
                  "sixteen bytes...\x7f, then more"};
  awkward.meta = {{"k\"ey", "line\nbreak"},
                  {"ctrl", std::string("a\x01"
                                       "b")},
                  {"", ""}};
  Check node_check;
  node_check.id = "serfHealth";
  node_check.name = "Serf Health Status";
  node_check.status = HealthStatus::kPassing;
  node_check.output = "broken \xff\xfe utf-8 and \xe2\x82 cut";
  awkward.checks.push_back(node_check);
  Check long_check = awkward.checks.front();
  long_check.output = std::string(2000, 'x');
  awkward.checks.push_back(long_check);
  awkward.checks.emplace_back();  // every field empty
  events.push_back(awkward);
  Event bare;  // defaults everywhere
  events.push_back(bare);

  CloudEventOptions custom;
  custom.type_prefix = "com.example";
  custom.source = "urn:\"src\"";
  custom.max_check_output_bytes = 5;
  for (const Event& event : events) {
    for (const CloudEventOptions& options : {CloudEventOptions{}, custom}) {
      const std::string structured = SerializeCloudEvent(event, options);
      EXPECT_EQ(structured, reference(event, options)) << event.id;
      std::string data = "stale text the call must replace";
      SerializeCloudEventData(event, options, data);
      EXPECT_EQ(structured.substr(0, data.size() + 8), "{\"data\":" + data) << event.id;
      for (const auto& [name, value] : CloudEventAttributes(event, options)) {
        EXPECT_EQ(json::parse(structured)[name], value) << event.id << " " << name;
      }
    }
  }
}

TEST(FormatRfc3339, PrintsUtcWithMilliseconds) {
  EXPECT_EQ(FormatRfc3339(WallTime(std::chrono::milliseconds(0))), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(kTime), "2026-11-24T10:15:03.120Z");
}

}  // namespace
}  // namespace hb

namespace hb {
namespace {

// Cluster mode stamps each event with its owner's epoch: the CloudEvents
// extension `hbepoch`, a number in JSON and text in binary-mode headers,
// and nothing at all outside cluster mode.
TEST(CloudEvent, ClusterEpochIsTheHbepochExtension) {
  Event event = SampleInstanceEvent(EventType::kInstanceDown);
  EXPECT_FALSE(ToCloudEvent(event, {}).contains("hbepoch"));
  event.epoch = 7;
  const json structured = ToCloudEvent(event, {});
  EXPECT_EQ(structured["hbepoch"], 7);
  EXPECT_EQ(SerializeCloudEvent(event, {}), structured.dump());
  const auto attributes = CloudEventAttributes(event, {});
  ASSERT_EQ(attributes.size(), 9u);
  EXPECT_EQ(attributes.back(), (std::pair<std::string, std::string>{"hbepoch", "7"}));
  auto read = ReadCloudEvent(SerializeCloudEvent(event, {}));
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->epoch, 7u);
  auto decoded = DecodeEvent(EncodeEvent(event));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->epoch, 7u) << "a spooled event keeps its epoch";
}

}  // namespace
}  // namespace hb
