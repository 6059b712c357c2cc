#include "bridge/model/source_scope.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "bridge/model/cloud_event.h"
#include "bridge/model/cloud_event_reader.h"
#include "bridge/model/event_codec.h"
#include "bridge/model/protocol_text.h"

namespace hb {
namespace {

Event InstanceDown(std::string datacenter, SourceScope scope) {
  Event event;
  event.type = EventType::kInstanceDown;
  event.datacenter = std::move(datacenter);
  event.scope = std::move(scope);
  event.service = "payments";
  event.instance_id = "payments-1";
  event.node = "node-a";
  event.status = HealthStatus::kCritical;
  event.previous_status = HealthStatus::kPassing;
  event.reason = DownReason::kCritical;
  event.consul_index = 7;
  event.id = InstanceEventId(event.datacenter, event.scope, event.node, event.instance_id, 7,
                             "instance.down");
  return event;
}

TEST(SourceScope, KeysNameEveryPartThatApplies) {
  EXPECT_EQ(SourceKey("dc1", {}), "dc1");
  EXPECT_EQ(SourceKey("dc1", {"east", "", "", false}), "dc1/peer:east");
  EXPECT_EQ(SourceKey("dc1", {"", "team-a", "eu", false}), "dc1/ns:team-a/partition:eu");
  // A part can never pass for a separator.
  EXPECT_EQ(SourceKey("dc/1", {"a/b", "", "", false}), "dc%2F1/peer:a%2Fb");
}

TEST(SourceScope, CloudEventSourceNamesTheScope) {
  EXPECT_EQ(CloudEventSource("dc1", {}), "consul://dc1");
  EXPECT_EQ(CloudEventSource("dc1", {"east", "", "", false}), "consul://dc1?peer=east");
  EXPECT_EQ(CloudEventSource("dc1", {"", "team-a", "eu", false}),
            "consul://dc1?ns=team-a&partition=eu");
}

TEST(SourceScope, DefaultScopeIdsStayAsTheyWere) {
  EXPECT_EQ(InstanceEventId("dc1", SourceScope{}, "node-a", "payments-1", 7, "instance.down"),
            InstanceEventId("dc1", "node-a", "payments-1", 7, "instance.down"));
  EXPECT_EQ(ServiceEventId("dc1", SourceScope{}, "payments", 7, "service.down"),
            ServiceEventId("dc1", "payments", 7, "service.down"));
}

// The same service name, instance ID and node in five sources: ids,
// sources, subjects (the Kafka key) and spool keys all differ.
TEST(SourceScope, TheSameInstanceInDifferentSourcesNeverShares) {
  const std::vector<Event> events = {
      InstanceDown("dc1", {"", "", "", true}),
      InstanceDown("dc2", {"", "", "", true}),
      InstanceDown("dc1", {"east", "", "", true}),
      InstanceDown("dc1", {"", "team-a", "", true}),
      InstanceDown("dc1", {"", "team-a", "eu", true}),
  };
  std::set<std::string> ids, subjects, pairs;
  for (const Event& event : events) {
    const nlohmann::json document = ToCloudEvent(event, {});
    ids.insert(document["id"].get<std::string>());
    subjects.insert(event.Subject());
    EXPECT_EQ(document["subject"], event.Subject());
    EXPECT_EQ(document["partitionkey"], event.Subject());
    pairs.insert(document["source"].get<std::string>() + " " + document["id"].get<std::string>());
  }
  EXPECT_EQ(ids.size(), events.size());
  EXPECT_EQ(subjects.size(), events.size());
  EXPECT_EQ(pairs.size(), events.size());
  EXPECT_EQ(events[2].Subject(), "dc1/peer:east/payments/payments-1");
  EXPECT_EQ(events[1].Subject(), "dc2/payments/payments-1");
}

TEST(SourceScope, DataNamesPeerNamespaceAndPartition) {
  const Event scoped = InstanceDown("dc1", {"east", "team-a", "eu", true});
  const nlohmann::json data = CloudEventData(scoped, {});
  EXPECT_EQ(data["peer"], "east");
  EXPECT_EQ(data["namespace"], "team-a");
  EXPECT_EQ(data["partition"], "eu");
  EXPECT_EQ(data["datacenter"], "dc1");
  EXPECT_EQ(ToCloudEvent(scoped, {})["source"], "consul://dc1?peer=east&ns=team-a&partition=eu");
  // The canonical text keeps its members sorted with the new ones in.
  std::string text;
  SerializeCloudEvent(scoped, {}, text);
  EXPECT_EQ(text, ToCloudEvent(scoped, {}).dump());

  // The default scope writes none of them: events look as they always did.
  const nlohmann::json plain = CloudEventData(InstanceDown("dc1", {}), {});
  EXPECT_FALSE(plain.contains("peer"));
  EXPECT_FALSE(plain.contains("namespace"));
  EXPECT_FALSE(plain.contains("partition"));
  EXPECT_EQ(ToCloudEvent(InstanceDown("dc1", {}), {})["subject"], "payments/payments-1");

  Event service_event = scoped;
  service_event.type = EventType::kServiceDown;
  service_event.instance_id.clear();
  service_event.reason.reset();
  std::string service_text;
  SerializeCloudEvent(service_event, {}, service_text);
  EXPECT_EQ(service_text, ToCloudEvent(service_event, {}).dump());
  EXPECT_EQ(CloudEventData(service_event, {})["peer"], "east");
}

TEST(SourceScope, SpoolAndDeadLetterRoundTripsKeepTheScope) {
  const Event scoped = InstanceDown("dc1", {"east", "team-a", "eu", true});
  auto decoded = DecodeEvent(EncodeEvent(scoped));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->scope, scoped.scope);
  EXPECT_EQ(decoded->Subject(), scoped.Subject());

  auto read = ReadCloudEvent(SerializeCloudEvent(scoped, {}));
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->scope, scoped.scope);
  EXPECT_EQ(SerializeCloudEvent(*read, {}), SerializeCloudEvent(scoped, {}));
}

}  // namespace
}  // namespace hb
