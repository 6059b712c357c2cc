// Hostile peers, through the health-bridge executable: Consul data that
// tries to break the protocols the bridge speaks onward. The bridge must
// deliver the event with the data as Consul has it, and nothing else.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/consul/consul_test_server.h"
#include "tests/support/http/webhook_receiver.h"
#include "tests/support/kafka/mock_kafka.h"
#include "tests/support/process/bridge_process.h"

namespace hb {
namespace {

using std::chrono::seconds;
using testing::BridgeProcess;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::TopicReader;
using testing::WebhookReceiver;

const std::filesystem::path kBridge = HB_BRIDGE_BINARY;
constexpr char kTopic[] = "hostile.events";

// The ID a review registered: as a raw header value it ends the webhook-id
// line, adds a header, ends the request and starts a second one.
const std::string kSmugglingId =
    "inj-1\r\nX-Injected: yes\r\nContent-Length: 0\r\n\r\nPOST /evil HTTP/1.1\r\nX-a: b";

TEST(HostileConsulDataTest, AServiceIdCannotSmuggleHeadersOrRequestsIntoAnySink) {
  testing::ConsulTestServer consul;
  ASSERT_NE(consul.Start(), 0);
  testing::MockKafkaCluster kafka;
  kafka.CreateTopic(kTopic, 1);
  WebhookReceiver receiver;
  std::ostringstream config;
  config << "consul: {address: " << consul.address() << "}\n"
         << "sinks:\n"
         << "  - {name: hooks, type: webhook, url: '" << receiver.url()
         << "', events: [instance.registered]}\n"
         << "  - {name: topic, type: kafka, mode: binary, brokers: '" << kafka.bootstraps()
         << "', topic: " << kTopic << ", events: [instance.registered]}\n";
  BridgeProcess bridge(kBridge, config.str());
  ASSERT_TRUE(bridge.ok()) << bridge.process().Stderr();

  consul.RegisterService(nlohmann::json{{"ID", kSmugglingId}, {"Name", "payments"}, {"Port", 80}});

  ASSERT_TRUE(receiver.WaitForAccepted(1, seconds(20))) << bridge.process().Stderr();
  TopicReader reader(kafka.bootstraps(), kTopic, 1);
  const auto messages = reader.ReadAtLeast(1, seconds(20));
  ASSERT_EQ(messages.size(), 1U) << bridge.process().Stderr();

  const auto hook = receiver.Accepted().at(0);
  EXPECT_EQ(receiver.RequestCount(), 1U) << "a second request was smuggled in";
  EXPECT_EQ(hook.path, "/hook");
  EXPECT_EQ(hook.Header("x-injected"), "");
  EXPECT_EQ(hook.Header("content-length"), std::to_string(hook.body.size()));
  const auto event = nlohmann::json::parse(hook.body);
  const std::string id = event["id"];
  EXPECT_THAT(id, Not(HasSubstr("\r")));
  EXPECT_THAT(id, Not(HasSubstr("\n")));
  EXPECT_THAT(id, HasSubstr("/inj-1%0D%0AX-Injected:%20yes%0D%0A"));
  // The receiver (cpp-httplib) percent-decodes header values it parses, so
  // the webhook-id it reports is the decoded id: what matters is that the
  // encoded id arrived as one header of one request.
  EXPECT_EQ(hook.Header("webhook-id").find("dc1/node-a/inj-1\r\nX-Injected: yes"), 0U);
  // The event itself carries the ID exactly as Consul has it.
  EXPECT_EQ(event["data"]["instance_id"], kSmugglingId);

  // Kafka binary mode: the same id, and no header value with a line break.
  EXPECT_EQ(messages[0].Header("ce_id"), id);
  for (const auto& [name, value] : messages[0].headers) {
    EXPECT_THAT(value, Not(HasSubstr("\n"))) << name;
    EXPECT_THAT(value, Not(HasSubstr("\r"))) << name;
  }
  EXPECT_THAT(messages[0].Header("ce_subject"), HasSubstr("inj-1%0D%0AX-Injected: yes"));
  EXPECT_EQ(nlohmann::json::parse(messages[0].value)["instance_id"], kSmugglingId);
}

}  // namespace
}  // namespace hb
