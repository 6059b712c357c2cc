// A malicious Consul, through the health-bridge executable: answers that
// bomb, drip, lie about their index, carry huge or countless headers,
// break UTF-8, nest without end, or put control bytes in every string.
// What a user relies on, whatever Consul sends: the bridge's memory stays
// within a stated bound, /healthz and /readyz answer (readyz with one
// printable line saying what is wrong), the events of the services Consul
// answers well keep coming, and hostile text reaches sinks and logs only
// encoded: no forged log line, header or request.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "tests/support/consul/hostile_consul_peer.h"
#include "tests/support/eventually.h"
#include "tests/support/http/loopback_server.h"
#include "tests/support/http/probes.h"
#include "tests/support/http/scripted_http_peer.h"
#include "tests/support/process/bridge_process.h"
#include "tests/support/process/bridge_under_test.h"
#include "tests/support/process/child_process.h"
#include "tests/support/process/proc_memory.h"
#include "tests/support/sanitizer_build.h"

namespace hb {
namespace {

using std::chrono::seconds;
using test_support::Attack;
using test_support::BridgeProcess;
using test_support::HostileConsulPeer;
using test_support::ScriptedHttpPeer;
using ::testing::HasSubstr;
using ::testing::Not;

using test_support::kBridge;

bool Printable(const std::string& text) {
  return std::all_of(text.begin(), text.end(),
                     [](unsigned char c) { return c >= 0x20 && c < 0x7f; });
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Accepted webhook events of `type` about instances of `service`.
std::size_t EventsAbout(const ScriptedHttpPeer& receiver, const std::string& service,
                        const std::string& type) {
  std::size_t count = 0;
  for (const auto& request : receiver.Accepted()) {
    const auto event = nlohmann::json::parse(request.body);
    if (event["type"] == "io.healthbridge." + type &&
        event["data"].value("service", "") == service) {
      ++count;
    }
  }
  return count;
}

// Every attack on one service's health answers at once, next to two
// services Consul answers well. The answer cap is 16 MiB, so a bomb
// inflating to 400 MiB is cut after 16 MiB.
TEST(HostileConsulTest, AttackedServicesCostBoundedMemoryAndNoOneElsesEvents) {
  HostileConsulPeer consul;
  ASSERT_NE(consul.port(), 0);
  consul.AddService("web", Attack::kNone, 2);
  consul.AddService("api", Attack::kNone);
  const std::vector<std::pair<std::string, Attack>> attacked = {
      {"bomb", Attack::kGzipBomb},
      {"garbage-index", Attack::kGarbageIndex},
      {"negative-index", Attack::kNegativeIndex},
      {"huge-header", Attack::kHugeHeader},
      {"bad-utf8", Attack::kInvalidUtf8},
      {"deep", Attack::kDeepNesting},
      {"zstd", Attack::kZstd}};
  for (const auto& [name, attack] : attacked) consul.AddService(name, attack);
  // Thousands of small headers are within curl's limits: read, not fatal.
  consul.AddService("many-headers", Attack::kManyHeaders);

  ScriptedHttpPeer receiver;
  std::ostringstream config;
  config << "consul: {address: '" << consul.address() << "', max_answer_size: 16MiB}\n"
         << "sinks:\n"
         << "  - {name: hooks, type: webhook, url: '" << receiver.url() << "'}\n";
  BridgeProcess bridge(kBridge, config.str(), {}, seconds(60));
  ASSERT_TRUE(bridge.ok()) << bridge.process().Stderr();
  const pid_t pid = bridge.process().pid();
  // A service that drips its answers holds one connection until the read's
  // deadline (30 s for a first read), each time; ADrippingServiceDoesNot-
  // HoldUpStartUp shows one present from the start. Here it comes later.
  consul.AddService("drip", Attack::kSlowDrip);
  ASSERT_TRUE(test_support::Eventually(
      [&] { return consul.Requests("/v1/health/service/drip") > 0; }, seconds(20)));

  // Each attack reached the bridge.
  for (const auto& [name, attack] : attacked) {
    EXPECT_GE(consul.Requests("/v1/health/service/" + name), 1U) << name;
  }
  ASSERT_TRUE(test_support::Eventually(
      [&] {
        return bridge.Metric("health_bridge_consul_requests_total",
                             "endpoint=\"health_service\",outcome=\"too_large\"")
                       .value_or(0) >= 1 &&
               bridge.Metric("health_bridge_consul_requests_total",
                             "endpoint=\"health_service\",outcome=\"malformed\"")
                       .value_or(0) >= 1;
      },
      seconds(20)))
      << bridge.process().Stderr();

  // The log names what is wrong with each, on one line.
  for (const char* what : {"service bomb: Consul's answer cannot be used: resource exhausted",
                           "service garbage-index: Consul's answer cannot be used",
                           "answer in Content-Encoding \"zstd\"; only gzip is accepted",
                           "service huge-header: 3 reads failed in a row",
                           "a response header over curl's 100 KiB limit"}) {
    EXPECT_TRUE(bridge.process().WaitForStderr(what, seconds(20))) << what << "\n"
                                                                   << bridge.process().Stderr();
  }

  // Everyone else's events keep coming.
  consul.SetStatus("web", "critical");
  ASSERT_TRUE(test_support::Eventually(
      [&] { return EventsAbout(receiver, "web", "instance.down") == 2; }, seconds(20)))
      << bridge.process().Stderr();
  consul.SetStatus("many-headers", "critical");
  ASSERT_TRUE(test_support::Eventually(
      [&] { return EventsAbout(receiver, "many-headers", "instance.down") == 1; }, seconds(20)))
      << bridge.process().Stderr();
  consul.SetStatus("api", "warning");
  ASSERT_TRUE(test_support::Eventually(
      [&] { return EventsAbout(receiver, "api", "instance.status_changed") == 1; }, seconds(20)))
      << bridge.process().Stderr();
  // Nothing about the attacked services was made up.
  for (const auto& [name, attack] : attacked) {
    EXPECT_EQ(EventsAbout(receiver, name, "instance.deregistered"), 0U) << name;
  }

  ASSERT_EQ(test_support::ProbeFailures(bridge.port()), "");

  // The stated bound: the bridge's own start (under 32 MiB) plus the 16 MiB
  // answer cap (an answer's buffer never grows past it), with room for the
  // other attacks' reads.
  const std::size_t peak = test_support::PeakRssKib(pid);
  if (test_support::kMemoryBoundsHold) {
    EXPECT_LT(peak, 64U * 1024) << "peak RSS " << peak << " KiB";
  }
  std::cerr << "peak RSS under attack: " << peak << " KiB\n";
  EXPECT_EQ(bridge.Stop(), 0) << bridge.process().Stderr();
}

// The default answer cap against the chart's memory limit (256Mi): a gzip
// bomb inflating to 400 MiB is cut at consul.max_answer_size (64 MiB), whose
// buffer never grows past it, and costs the bridge at most that on top of
// its own memory, read after read.
TEST(HostileConsulTest, AGzipBombAtTheDefaultCapCostsAtMostTheCapOnTopOfTheBridge) {
  HostileConsulPeer consul;
  ASSERT_NE(consul.port(), 0);
  consul.AddService("web", Attack::kNone, 2);
  consul.AddService("bomb", Attack::kGzipBomb);
  ScriptedHttpPeer receiver;
  std::ostringstream config;
  config << "consul: {address: '" << consul.address() << "'}\n"
         << "sinks:\n"
         << "  - {name: hooks, type: webhook, url: '" << receiver.url() << "'}\n";
  BridgeProcess bridge(kBridge, config.str(), {}, seconds(60));
  ASSERT_TRUE(bridge.ok()) << bridge.process().Stderr();
  // Three bombs read to the cap, one after another (with backoff).
  ASSERT_TRUE(test_support::Eventually(
      [&] {
        return bridge
                   .Metric("health_bridge_consul_requests_total",
                           "endpoint=\"health_service\",outcome=\"too_large\"")
                   .value_or(0) >= 3;
      },
      seconds(60)))
      << bridge.process().Stderr();
  EXPECT_THAT(bridge.process().Stderr(),
              HasSubstr("answer larger than 67108864 bytes (consul.max_answer_size)"));
  ASSERT_EQ(test_support::ProbeFailures(bridge.port()), "");
  consul.SetStatus("web", "critical");
  ASSERT_TRUE(test_support::Eventually(
      [&] { return EventsAbout(receiver, "web", "instance.down") == 2; }, seconds(20)))
      << bridge.process().Stderr();

  // The stated bound (README, Security): the bridge's own start (under
  // 32 MiB here) plus the 64 MiB cap: 96 MiB, well within the chart's 256Mi.
  const std::size_t peak = test_support::PeakRssKib(bridge.process().pid());
  if (test_support::kMemoryBoundsHold) {
    EXPECT_LT(peak, 96U * 1024) << "peak RSS " << peak << " KiB";
  }
  std::cerr << "peak RSS with a bomb at the default cap: " << peak << " KiB\n";
  EXPECT_EQ(bridge.Stop(), 0) << bridge.process().Stderr();
}

// A service whose answers drip (a byte a second) from the start: its first
// read fails at its deadline (30 s) and the service is marked failed and
// retried with backoff, while the start-up goes on without it: readiness
// comes with that first deadline, not after three of them (93 s before),
// and the other services' events flow meanwhile.
TEST(HostileConsulTest, ADrippingServiceDoesNotHoldUpStartUp) {
  HostileConsulPeer consul;
  ASSERT_NE(consul.port(), 0);
  consul.AddService("web", Attack::kNone, 2);
  consul.AddService("drip", Attack::kSlowDrip);
  ScriptedHttpPeer receiver;
  std::ostringstream config;
  config << "consul: {address: '" << consul.address() << "'}\n"
         << "sinks:\n"
         << "  - {name: hooks, type: webhook, url: '" << receiver.url() << "'}\n";
  // Well under three read deadlines, with room for a slow (sanitized) start.
  BridgeProcess bridge(kBridge, config.str(), {}, seconds(55));
  ASSERT_TRUE(bridge.ok()) << "no initial sync within 55 s\n" << bridge.process().Stderr();
  EXPECT_THAT(bridge.process().Stderr(),
              HasSubstr("service drip: its answer did not arrive within the read's deadline"));
  EXPECT_GE(bridge
                .Metric("health_bridge_consul_requests_total",
                        "endpoint=\"health_service\",outcome=\"timeout\"")
                .value_or(0),
            1);
  ASSERT_EQ(test_support::ProbeFailures(bridge.port()), "");

  consul.SetStatus("web", "critical");
  ASSERT_TRUE(test_support::Eventually(
      [&] { return EventsAbout(receiver, "web", "instance.down") == 2; }, seconds(20)))
      << bridge.process().Stderr();
  // The dripping service is retried, and never made up.
  EXPECT_TRUE(test_support::Eventually(
      [&] { return consul.Requests("/v1/health/service/drip") >= 2; }, seconds(20)));
  EXPECT_EQ(EventsAbout(receiver, "drip", "instance.up"), 0U);
  EXPECT_EQ(EventsAbout(receiver, "drip", "instance.deregistered"), 0U);
  EXPECT_EQ(bridge.Stop(), 0) << bridge.process().Stderr();
}

// The same with a connection budget too small for a query per service:
// every service is covered by the change detector and read in one shared
// read slot. An attacked service backs off alone; the slot keeps serving
// the services whose checks change.
TEST(HostileConsulTest, AttackedCoveredServicesNeverStarveTheSharedReads) {
  HostileConsulPeer consul;
  ASSERT_NE(consul.port(), 0);
  consul.AddService("web", Attack::kNone, 2);
  for (const auto& [name, attack] :
       std::vector<std::pair<std::string, Attack>>{{"bomb", Attack::kGzipBomb},
                                                   {"garbage-index", Attack::kGarbageIndex},
                                                   {"deep", Attack::kDeepNesting},
                                                   {"evil", Attack::kControlBytes}}) {
    consul.AddService(name, attack);
  }
  ScriptedHttpPeer receiver;
  std::ostringstream config;
  config << "consul: {address: '" << consul.address()
         << "', max_answer_size: 16MiB, max_connections: 3}\n"
         << "sinks:\n"
         << "  - {name: hooks, type: webhook, url: '" << receiver.url() << "'}\n";
  BridgeProcess bridge(kBridge, config.str(), {}, seconds(60));
  ASSERT_TRUE(bridge.ok()) << bridge.process().Stderr();
  ASSERT_EQ(bridge.Metric("health_bridge_watched_services"), 5);
  ASSERT_TRUE(bridge.process().WaitForStderr("0 services get a blocking query each; the other 5",
                                             seconds(1)))
      << bridge.process().Stderr();

  for (int round = 0; round < 3; ++round) {
    consul.SetStatus("web", round % 2 == 0 ? "critical" : "passing");
    const std::string type = round % 2 == 0 ? "instance.down" : "instance.up";
    const std::size_t expected = round == 2 ? 4 : 2;
    ASSERT_TRUE(test_support::Eventually(
        [&] { return EventsAbout(receiver, "web", type) == expected; }, seconds(30)))
        << "round " << round << "\n"
        << bridge.process().Stderr();
  }
  // The hostile text of a covered service's checks comes through too.
  consul.SetStatus("evil", "critical");
  const std::string evil = HostileConsulPeer::ServiceNameFor("evil", Attack::kControlBytes);
  EXPECT_TRUE(test_support::Eventually(
      [&] { return EventsAbout(receiver, evil, "instance.down") == 1; }, seconds(30)))
      << bridge.process().Stderr();
  httplib::Client client("127.0.0.1", bridge.port());
  client.set_read_timeout(seconds(3));
  const auto readyz = client.Get("/readyz");
  ASSERT_TRUE(readyz);
  EXPECT_EQ(readyz->status, 200) << readyz->body;
  if (test_support::kMemoryBoundsHold) {
    EXPECT_LT(test_support::PeakRssKib(bridge.process().pid()), 96U * 1024);
  }
  EXPECT_EQ(bridge.Stop(), 0) << bridge.process().Stderr();
}

// CR LF, NUL, ESC and DEL in every string Consul sends about a service:
// the events arrive, the text in them as Consul has it, and no sink or log
// line breaks where the text says.
TEST(HostileConsulTest, ControlBytesInEveryFieldComeOutEncodedInLogsHeadersAndEvents) {
  HostileConsulPeer consul;
  ASSERT_NE(consul.port(), 0);
  consul.AddService("evil", Attack::kControlBytes);
  consul.AddService("web", Attack::kNone);
  const std::string evil = HostileConsulPeer::ServiceNameFor("evil", Attack::kControlBytes);
  const std::string control(test_support::kControlText);

  ScriptedHttpPeer receiver;
  std::ostringstream config;
  config << "consul: {address: '" << consul.address() << "'}\n"
         << "sinks:\n"
         << "  - {name: hooks, type: webhook, url: '" << receiver.url() << "'}\n"
         << "  - {name: stdout, type: log, stream: stdout}\n"
         << "  - {name: gauges, type: metrics}\n";
  BridgeProcess bridge(kBridge, config.str());
  ASSERT_TRUE(bridge.ok()) << bridge.process().Stderr();

  consul.SetStatus("evil", "critical");
  consul.SetStatus("web", "critical");
  ASSERT_TRUE(test_support::Eventually(
      [&] {
        return EventsAbout(receiver, evil, "instance.down") == 1 &&
               EventsAbout(receiver, "web", "instance.down") == 1;
      },
      seconds(20)))
      << bridge.process().Stderr();

  // One request per event, and no header the text tried to add.
  EXPECT_EQ(receiver.RequestCount(), receiver.Accepted().size());
  for (const auto& request : receiver.Accepted()) {
    EXPECT_EQ(request.path, "/hook");
    EXPECT_EQ(request.Header("x-forged"), "");
    EXPECT_EQ(request.Header("content-length"), std::to_string(request.body.size()));
  }
  // The event carries every field as Consul has it.
  for (const auto& request : receiver.Accepted()) {
    const auto event = nlohmann::json::parse(request.body);
    if (event["data"]["service"] != evil || !event["data"].contains("instance_id")) continue;
    const auto& data = event["data"];
    EXPECT_EQ(data["instance_id"], evil + "-0" + control);
    EXPECT_EQ(data["node"], "node-0" + control);
    EXPECT_THAT(event["id"].get<std::string>(), Not(HasSubstr("\n")));
    EXPECT_THAT(event["id"].get<std::string>(), HasSubstr("%0D%0A"));
  }

  // The log sink: one JSON event per line, nothing raw that a terminal or
  // a line-based collector would act on.
  ASSERT_TRUE(bridge.process().WaitForStdout("instance.down", seconds(10)));
  const std::string out = bridge.process().Stdout();
  EXPECT_EQ(out.find('\r'), std::string::npos);
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
  EXPECT_EQ(out.find('\0'), std::string::npos);
  std::size_t evil_lines = 0;
  for (const auto& line : Lines(out)) {
    const auto event = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(event.is_object() && event.contains("data")) << "a forged line: " << line;
    if (event["data"].value("service", "") == evil) ++evil_lines;
  }
  EXPECT_GE(evil_lines, 1U);

  // The bridge's own log: every line starts with its timestamp.
  const std::regex timestamp("^[0-9]{4}-[0-9]{2}-[0-9]{2}T");
  for (const auto& line : Lines(bridge.process().Stderr())) {
    EXPECT_TRUE(std::regex_search(line, timestamp)) << "a forged log line: " << line;
  }
  // /metrics: every line a comment or a sample whose label values hold no
  // raw control byte; the hostile instance's series are there, its text
  // percent-encoded; and promtool, Prometheus' own parser, accepts it all.
  httplib::Client client("127.0.0.1", bridge.port());
  const auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  const std::regex sample(
      R"(^(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*|[a-zA-Z_:][a-zA-Z0-9_:]*)"
      R"((\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\x00-\x1f\x7f]|\\[\\"n])*",?)*\})? \S+( \S+)?)$)");
  for (const auto& line : Lines(metrics->body)) {
    EXPECT_TRUE(std::regex_match(line, sample)) << "a forged metrics line: " << line;
  }
  EXPECT_THAT(metrics->body,
              HasSubstr("health_bridge_instance_up{node=\"node-0%0D%0A{\\\"forged\\\":true}"
                        "%0D%0AX-Forged: yes%0D%0A%0D%0A%00%1B[31m%7F\",service_id=\"evil"));
  const auto scrape = std::filesystem::temp_directory_path() /
                      ("hb-hostile-scrape-" + std::to_string(::getpid()) + ".prom");
  std::ofstream(scrape) << metrics->body;
  const auto promtool = test_support::RunToCompletion(
      "/bin/sh", {"-c", "/usr/bin/promtool check metrics < \"$0\"", scrape.string()});
  std::filesystem::remove(scrape);
  EXPECT_EQ(promtool.exit_code, 0) << promtool.out << promtool.err;
  EXPECT_EQ(promtool.out + promtool.err, "") << "promtool has remarks";
  EXPECT_EQ(bridge.Stop(), 0) << bridge.process().Stderr();
}

// Consul's catalog itself is hostile: nothing can be watched, and /readyz
// says so on one printable line while /healthz stays up; once Consul
// answers well the bridge syncs and turns ready.
TEST(HostileConsulTest, AHostileCatalogKeepsTheBridgeUnreadyWithAOneLineReason) {
  for (const Attack attack :
       {Attack::kNegativeIndex, Attack::kGzipBomb, Attack::kHugeHeader, Attack::kDeepNesting}) {
    HostileConsulPeer consul;
    ASSERT_NE(consul.port(), 0);
    consul.AddService("web", Attack::kNone);
    consul.AttackEndpoint("/v1/catalog/services", attack);
    const int port = UnusedLoopbackPort();
    std::ostringstream config;
    config << "consul: {address: '" << consul.address() << "', max_answer_size: 16MiB}\n"
           << "server: {listen: '127.0.0.1:" << port << "'}\n"
           << "watch: {unreachable_grace: 1s}\n";
    BridgeProcess bridge(kBridge, config.str(), {}, std::chrono::milliseconds(100));
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(seconds(3));
    std::string reason;
    ASSERT_TRUE(test_support::Eventually(
        [&] {
          const auto readyz = client.Get("/readyz");
          if (!readyz || readyz->status != 503) return false;
          reason = readyz->body;
          return reason.find("Consul unreachable") != std::string::npos;
        },
        seconds(20)))
        << bridge.process().Stderr();
    while (!reason.empty() && reason.back() == '\n') reason.pop_back();
    EXPECT_TRUE(Printable(reason)) << reason;
    EXPECT_LT(reason.size(), 200U) << reason;
    const auto healthz = client.Get("/healthz");
    ASSERT_TRUE(healthz);
    EXPECT_EQ(healthz->status, 200);

    consul.AttackEndpoint("/v1/catalog/services", Attack::kNone);
    EXPECT_TRUE(test_support::Eventually(
        [&] {
          const auto readyz = client.Get("/readyz");
          return readyz && readyz->status == 200;
        },
        seconds(90)))
        << bridge.process().Stderr();
    if (test_support::kMemoryBoundsHold) {
      EXPECT_LT(test_support::PeakRssKib(bridge.process().pid()), 96U * 1024);
    }
    EXPECT_EQ(bridge.Stop(), 0) << bridge.process().Stderr();
  }
}

}  // namespace
}  // namespace hb
