// A malicious webhook receiver, through the health-bridge executable: huge
// answers, slow answers, redirect loops and Retry-After values meant to
// overflow or to hold events forever. The bridge must stay within its
// memory bound, keep answering its probes, keep delivering to every other
// sink, and give up on the hostile one's events at their max_age.

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/consul/hostile_consul_peer.h"
#include "tests/support/eventually.h"
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
using test_support::ReceivedRequest;
using test_support::ScriptedHttpPeer;
using test_support::ScriptedResponse;

using test_support::kBridge;

// Every answer an attack: a 64 MiB error page, an answer held past the sink's
// timeout, a redirect to itself, and 503s whose Retry-After would overflow
// `now + delay`, hold the event a day, or is not a number at all.
ScriptedResponse Hostile(std::size_t n, ScriptedHttpPeer& self) {
  switch (n % 6) {
    case 0:
      return test_support::Answer(500, std::string(std::size_t{64} << 20, 'x'));
    case 1:
      return test_support::Answer(204, "", "", seconds(5));
    case 2: {
      ScriptedResponse answer = test_support::Answer(307);
      answer.headers.emplace_back("Location", self.url("/again"));
      return answer;
    }
    case 3:
      return test_support::Answer(503, "", "9000000000000");
    case 4:
      return test_support::Answer(503, "", "86400");
    default:
      return test_support::Answer(429, "", "soon, maybe");
  }
}

TEST(HostileReceiverTest, AHostileReceiverCostsBoundedMemoryAndNoOtherSinkItsEvents) {
  HostileConsulPeer consul;
  ASSERT_NE(consul.port(), 0);
  consul.AddService("web", Attack::kNone, 3);
  ScriptedHttpPeer hostile;
  hostile.ExpectCloudEvents(false);
  hostile.SetScript(
      [&hostile](std::size_t n, const ReceivedRequest&) { return Hostile(n, hostile); });
  ScriptedHttpPeer good;
  std::ostringstream config;
  config << "consul: {address: '" << consul.address() << "'}\n"
         << "sinks:\n"
         << "  - {name: hostile, type: webhook, url: '" << hostile.url()
         << "', follow_redirects: true, timeout: 1s,\n"
         << "     retry: {initial_backoff: 100ms, max_backoff: 1s, max_age: 4s}}\n"
         << "  - {name: good, type: webhook, url: '" << good.url() << "'}\n";
  BridgeProcess bridge(kBridge, config.str());
  ASSERT_TRUE(bridge.ok()) << bridge.process().Stderr();
  const pid_t pid = bridge.process().pid();

  consul.SetStatus("web", "critical");
  // 3 instance.down and a service.down.
  ASSERT_TRUE(test_support::Eventually([&] { return good.Accepted().size() >= 4; }, seconds(20)))
      << bridge.process().Stderr();
  // The hostile sink's events leave at their max_age: dead-lettered, not
  // held a day by a Retry-After, and not retried in a storm after one
  // overflowed.
  ASSERT_TRUE(test_support::Eventually(
      [&] {
        return bridge
                   .Metric("health_bridge_sink_deliveries_total",
                           "outcome=\"dead_lettered\",sink=\"hostile\"")
                   .value_or(0) >= 4;
      },
      seconds(30)))
      << bridge.process().Stderr();
  EXPECT_LT(hostile.RequestCount(), 200U) << "a retry storm";

  // The good sink keeps getting what follows.
  consul.SetStatus("web", "passing");
  EXPECT_TRUE(test_support::Eventually([&] { return good.Accepted().size() >= 8; }, seconds(20)))
      << bridge.process().Stderr();

  ASSERT_EQ(test_support::ProbeFailures(bridge.port()), "");
  // The webhook sink reads an answer to 64 KiB at most: the 64 MiB bodies
  // never enter memory.
  const std::size_t peak = test_support::PeakRssKib(pid);
  if (test_support::kMemoryBoundsHold) {
    EXPECT_LT(peak, 64U * 1024) << "peak RSS " << peak << " KiB";
  }
  std::cerr << "peak RSS with a hostile receiver: " << peak << " KiB\n";
  hostile.Stop();
  EXPECT_EQ(bridge.Stop(), 0) << bridge.process().Stderr();
}

}  // namespace
}  // namespace hb
