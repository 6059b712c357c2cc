// Hostile clients of the bridge's own port while Consul changes: slowloris
// connections, a compressed bomb of a body, more connections than
// server.max_connections, a request head that never ends. The events must
// keep flowing at the same time, the probes answer within the chart's
// timeout, and memory stays within its bound.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/consul/hostile_consul_peer.h"
#include "tests/support/eventually.h"
#include "tests/support/http/loopback_socket.h"
#include "tests/support/http/probes.h"
#include "tests/support/http/scripted_http_peer.h"
#include "tests/support/process/bridge_process.h"
#include "tests/support/process/bridge_under_test.h"
#include "tests/support/process/proc_memory.h"
#include "tests/support/sanitizer_build.h"

namespace hb {
namespace {

using std::chrono::seconds;
using test_support::Attack;
using test_support::BridgeProcess;
using test_support::HostileConsulPeer;
using test_support::ScriptedHttpPeer;

using test_support::kBridge;

TEST(HostileClientsTest, AnAttackOnOurPortDelaysNoEventAndNoProbe) {
  HostileConsulPeer consul;
  ASSERT_NE(consul.port(), 0);
  consul.AddService("web", Attack::kNone, 2);
  ScriptedHttpPeer receiver;
  std::ostringstream config;
  config << "consul: {address: '" << consul.address() << "'}\n"
         << "server: {listen: '127.0.0.1:0', max_connections: 32}\n"
         << "sinks:\n"
         << "  - {name: hooks, type: webhook, url: '" << receiver.url() << "'}\n";
  BridgeProcess bridge(kBridge, config.str());
  ASSERT_TRUE(bridge.ok()) << bridge.process().Stderr();

  std::vector<int> attackers;
  // Eight times server.max_connections of slowloris heads.
  for (int i = 0; i < 256; ++i) {
    const int fd = test_support::ConnectLoopback(bridge.port());
    if (fd < 0) continue;
    ::send(fd, "GET /metrics HTTP/1.1\r\nX-a: ", 28, MSG_NOSIGNAL);
    attackers.push_back(fd);
  }
  // A gzip body claiming 1 GiB, and a head that never ends.
  if (const int fd = test_support::ConnectLoopback(bridge.port()); fd >= 0) {
    const std::string head =
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
        "Content-Length: 1073741824\r\n\r\n";
    ::send(fd, head.data(), head.size(), MSG_NOSIGNAL);
    const std::string junk(1 << 20, '\0');
    ::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    attackers.push_back(fd);
  }
  if (const int fd = test_support::ConnectLoopback(bridge.port()); fd >= 0) {
    const std::string endless = "GET / HTTP/1.1\r\nX-Long: " + std::string(1 << 20, 'a');
    ::send(fd, endless.data(), endless.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    attackers.push_back(fd);
  }

  // Events flow meanwhile.
  consul.SetStatus("web", "critical");
  EXPECT_TRUE(
      test_support::Eventually([&] { return receiver.Accepted().size() >= 3; }, seconds(20)))
      << bridge.process().Stderr();
  ASSERT_EQ(test_support::ProbeFailures(bridge.port(), 5), "");
  consul.SetStatus("web", "passing");
  EXPECT_TRUE(
      test_support::Eventually([&] { return receiver.Accepted().size() >= 6; }, seconds(20)))
      << bridge.process().Stderr();
  // The bound: 32 connections' 8 KiB heads on top of the bridge's start;
  // no body is read, nothing inflated.
  const std::size_t peak = test_support::PeakRssKib(bridge.process().pid());
  if (test_support::kMemoryBoundsHold) {
    EXPECT_LT(peak, 48U * 1024) << "peak RSS " << peak << " KiB";
  }
  std::cerr << "peak RSS with hostile clients: " << peak << " KiB\n";
  for (const int fd : attackers) ::close(fd);
  EXPECT_EQ(bridge.Stop(), 0) << bridge.process().Stderr();
}

}  // namespace
}  // namespace hb
