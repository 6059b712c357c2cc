// Hostile peers, through the health-bridge executable: Consul data that
// tries to break the protocols the bridge speaks onward. The bridge must
// deliver the event with the data as Consul has it, and nothing else.

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/consul/consul_test_server.h"
#include "tests/support/http/loopback_socket.h"
#include "tests/support/http/probes.h"
#include "tests/support/http/scripted_http_peer.h"
#include "tests/support/kafka/mock_kafka.h"
#include "tests/support/process/bridge_process.h"
#include "tests/support/process/bridge_under_test.h"
#include "tests/support/process/child_process.h"
#include "tests/support/process/proc_memory.h"

namespace hb {
namespace {

using std::chrono::seconds;
using test_support::BridgeProcess;
using test_support::ScriptedHttpPeer;
using test_support::TopicReader;
using ::testing::HasSubstr;
using ::testing::Not;

using test_support::kBridge;
constexpr char kTopic[] = "hostile.events";

// The ID a review registered: as a raw header value it ends the webhook-id
// line, adds a header, ends the request and starts a second one.
const std::string kSmugglingId =
    "inj-1\r\nX-Injected: yes\r\nContent-Length: 0\r\n\r\nPOST /evil HTTP/1.1\r\nX-a: b";

TEST(HostileConsulDataTest, AServiceIdCannotSmuggleHeadersOrRequestsIntoAnySink) {
  test_support::ConsulTestServer consul;
  ASSERT_NE(consul.Start(), 0);
  test_support::MockKafkaCluster kafka;
  kafka.CreateTopic(kTopic, 1);
  ScriptedHttpPeer receiver;
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

TEST(HostileClientsOfOurPortTest, BombsAndSlowClientsCostNoMemoryAndNeverStarveTheProbes) {
  test_support::ConsulTestServer consul;
  ASSERT_NE(consul.Start(), 0);
  BridgeProcess bridge(kBridge, "consul: {address: '" + consul.address() + "'}\n" +
                                    "server: {listen: '127.0.0.1:0', max_connections: 64}\n");
  ASSERT_TRUE(bridge.ok()) << bridge.process().Stderr();
  const pid_t pid = bridge.process().pid();
  const std::size_t before = test_support::RssKib(pid);

  // The review's bomb: 300 MiB of zeros as a gzip body of a POST /metrics.
  std::string bomb;
  {
    const auto made = test_support::RunToCompletion(
        "/bin/sh", {"-c", "head -c 314572800 /dev/zero | gzip -1 | base64 -w0"});
    ASSERT_EQ(made.exit_code, 0);
    bomb = made.out;  // base64 keeps it one string; its size is what matters
  }
  const int bomber = test_support::ConnectLoopback(bridge.port());
  ASSERT_GE(bomber, 0);
  const std::string head =
      "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
      "Content-Length: " +
      std::to_string(bomb.size()) + "\r\n\r\n";
  ASSERT_EQ(::send(bomber, head.data(), head.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(head.size()));
  ::send(bomber, bomb.data(), bomb.size(), MSG_NOSIGNAL | MSG_DONTWAIT);  // as much as it takes
  // Slowloris: 200 connections that never finish their head.
  std::vector<int> slow;
  for (int i = 0; i < 200; ++i) {
    const int fd = test_support::ConnectLoopback(bridge.port());
    if (fd < 0) continue;
    ::send(fd, "GET /metrics HTTP/1.1\r\nX-a: ", 28, MSG_NOSIGNAL);
    slow.push_back(fd);
  }

  ASSERT_EQ(test_support::ProbeFailures(bridge.port(), 10), "");
  // Nothing of the body was read or inflated: well under the 300 MiB, and
  // under the 64 connections' worth of 8 KiB heads on top of the start.
  EXPECT_LT(test_support::RssKib(pid), before + 16 * 1024) << "RSS went from " << before << " KiB";
  for (const int fd : slow) ::close(fd);
  ::close(bomber);
  EXPECT_EQ(bridge.Stop(), 0) << bridge.process().Stderr();
}

}  // namespace
}  // namespace hb
