// What an operator sees of a running bridge: /v1/sinks with a webhook that
// refuses connections, the start-up lines naming each target, debug logging
// of Consul requests and deliveries, errors that name the request and carry
// a remedy, and recovery within the configured backoff once Consul is back.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>

#include "tests/support/consul/consul_test_server.h"
#include "tests/support/eventually.h"
#include "tests/support/http/loopback_server.h"
#include "tests/support/process/bridge_process.h"
#include "tests/support/process/bridge_under_test.h"
#include "tests/support/process/child_process.h"

namespace hb {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test_support::BridgeProcess;
using test_support::ChildProcess;
using test_support::Eventually;
using ::testing::HasSubstr;
using ::testing::Not;

using test_support::kBridge;

void RegisterPayments(test_support::ConsulTestServer& consul) {
  consul.RegisterService(nlohmann::json{
      {"ID", "payments-1"},
      {"Name", "payments"},
      {"Port", 8000},
      {"Check", {{"CheckID", "service:payments-1"}, {"TTL", "30m"}, {"Status", "passing"}}}});
}

ChildProcess::Options ConsulAt(const test_support::ConsulTestServer& consul) {
  ChildProcess::Options options;
  options.env["CONSUL_HTTP_ADDR"] = consul.address();
  return options;
}

std::optional<nlohmann::json> Sinks(int port) {
  httplib::Client client("127.0.0.1", port);
  auto answer = client.Get("/v1/sinks");
  if (!answer || answer->status != 200) return std::nullopt;
  return nlohmann::json::parse(answer->body);
}

const nlohmann::json* SinkNamed(const nlohmann::json& document, const std::string& name) {
  for (const auto& sink : document["sinks"]) {
    if (sink["name"] == name) return &sink;
  }
  return nullptr;
}

std::size_t CountOf(const std::string& text, const std::string& needle) {
  std::size_t count = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

TEST(OperatorView, SinksEndpointShowsAWebhookThatRefusesConnections) {
  test_support::ConsulTestServer consul;
  ASSERT_NE(consul.Start(), 0);
  RegisterPayments(consul);
  const int refusing = UnusedLoopbackPort();
  const std::string url =
      "http://hook-user:HookPW@127.0.0.1:" + std::to_string(refusing) + "/hook?api_key=QuerySecret";
  const std::string shown = "http://******@127.0.0.1:" + std::to_string(refusing) + "/hook?******";
  // Consul's address with credentials in it, as some proxies take them.
  ChildProcess::Options consul_with_password = ConsulAt(consul);
  consul_with_password.env["CONSUL_HTTP_ADDR"] =
      "http://admin:S3cretPW@127.0.0.1:" + std::to_string(consul.port());
  BridgeProcess bridge(kBridge,
                       "sinks:\n"
                       "  - {name: hooks, type: webhook, url: '" +
                           url +
                           "', connect_timeout: 200ms,\n"
                           "     retry: {initial_backoff: 50ms, max_backoff: 200ms}}\n"
                           "  - {name: stdout, type: log}\n",
                       consul_with_password);
  ASSERT_TRUE(bridge.ok()) << bridge.process().Stderr();

  // Start-up names every target, secrets masked, and where it serves.
  const std::string log = bridge.process().Stderr();
  EXPECT_THAT(log, HasSubstr("watching Consul at http://******@127.0.0.1:" +
                             std::to_string(consul.port())));
  EXPECT_THAT(log, HasSubstr("sink hooks (webhook) delivers to " + shown));
  EXPECT_THAT(log, HasSubstr("sink stdout (log) delivers to stdout"));
  EXPECT_THAT(log, HasSubstr("at http://127.0.0.1:" + std::to_string(bridge.port())));

  // Before any event: the sink's probe found nothing listening there.
  nlohmann::json before;
  ASSERT_TRUE(Eventually(
      [&] {
        auto sinks = Sinks(bridge.port());
        if (!sinks) return false;
        before = *sinks;
        const nlohmann::json* probed = SinkNamed(before, "hooks");
        return probed != nullptr && (*probed)["state"] == "unreachable";
      },
      seconds(20)))
      << before.dump();
  const nlohmann::json* hooks = SinkNamed(before, "hooks");
  EXPECT_EQ((*hooks)["type"], "webhook");
  EXPECT_EQ((*hooks)["target"], shown);
  EXPECT_THAT((*hooks)["last_error"]["message"].get<std::string>(),
              HasSubstr("connecting to " + shown + " failed"));
  EXPECT_EQ(SinkNamed(before, "stdout")->at("state"), "starting");
  EXPECT_THAT(bridge.process().Stderr(), HasSubstr("sink hooks: connecting to " + shown));

  consul.UpdateCheck("service:payments-1", "critical", "connection refused");
  nlohmann::json after;
  ASSERT_TRUE(Eventually(
      [&] {
        auto sinks = Sinks(bridge.port());
        if (!sinks) return false;
        after = *sinks;
        const nlohmann::json* failing = SinkNamed(after, "hooks");
        const nlohmann::json* out = SinkNamed(after, "stdout");
        return failing != nullptr && (*failing)["state"] == "failing" && out != nullptr &&
               (*out)["state"] == "ok";
      },
      seconds(20)))
      << after.dump();
  hooks = SinkNamed(after, "hooks");
  EXPECT_THAT((*hooks)["last_error"]["message"].get<std::string>(),
              HasSubstr("POST " + shown + " failed"));
  EXPECT_TRUE((*hooks)["last_error"]["time"].is_string());
  EXPECT_TRUE((*hooks)["last_success"].is_null());
  EXPECT_GE((*hooks)["queue_depth"].get<int>(), 1) << "the events wait for the receiver";
  EXPECT_GE((*hooks)["consecutive_failures"].get<int>(), 1);
  EXPECT_EQ((*hooks)["spooled"], 0);
  EXPECT_TRUE(SinkNamed(after, "stdout")->at("last_success").is_string());

  EXPECT_THAT(after.dump(), Not(HasSubstr("HookPW")));
  EXPECT_THAT(after.dump(), Not(HasSubstr("QuerySecret")));
  EXPECT_THAT(bridge.process().Stderr(), Not(HasSubstr("HookPW")));
  EXPECT_THAT(bridge.process().Stderr(), Not(HasSubstr("QuerySecret")));
  EXPECT_THAT(bridge.process().Stderr(), Not(HasSubstr("S3cretPW")));
  EXPECT_EQ(bridge.Stop(), 0);
}

TEST(OperatorView, ShutdownSaysWhereTheUndeliveredEventsWent) {
  test_support::ConsulTestServer consul;
  ASSERT_NE(consul.Start(), 0);
  RegisterPayments(consul);
  const std::string sinks =
      "state: {shutdown_timeout: 200ms}\n"
      "sinks:\n  - {name: hooks, type: webhook, url: 'http://127.0.0.1:" +
      std::to_string(UnusedLoopbackPort()) + "/hook', connect_timeout: 100ms}\n";
  BridgeProcess bridge(kBridge, sinks, ConsulAt(consul));
  ASSERT_TRUE(bridge.ok()) << bridge.process().Stderr();
  consul.UpdateCheck("service:payments-1", "critical", "connection refused");
  ASSERT_TRUE(bridge.process().WaitForStderr("sink hooks: delivery failed", milliseconds(20000)))
      << bridge.process().Stderr();
  EXPECT_EQ(bridge.Stop(), 0);
  // Without state.dir there are no dead-letter files: the log says so.
  EXPECT_THAT(bridge.process().Stderr(),
              HasSubstr("without state.dir they were dead-lettered to this log (error lines)"));
}

TEST(OperatorView, DebugLogShowsEachConsulRequestAndDeliveryAndInfoDoesNot) {
  test_support::ConsulTestServer consul;
  ASSERT_NE(consul.Start(), 0);
  RegisterPayments(consul);
  const std::string sinks = "sinks:\n  - {name: stdout, type: log}\n";

  BridgeProcess debug(kBridge, "log: {level: debug, format: text}\n" + sinks, ConsulAt(consul));
  ASSERT_TRUE(debug.ok()) << debug.process().Stderr();
  consul.UpdateCheck("service:payments-1", "critical", "connection refused");
  ASSERT_TRUE(debug.process().WaitForStderr("sink stdout: event ", milliseconds(20000)))
      << debug.process().Stderr();
  const std::string lines = debug.process().Stderr();
  // Each request: its path, the index asked for and answered, the time taken.
  EXPECT_TRUE(std::regex_search(
      lines, std::regex(R"(consul GET /v1/health/service/payments \(index [0-9]+\): HTTP 200, )"
                        R"(index [0-9]+, [0-9]+ ms)")))
      << lines;
  EXPECT_THAT(lines, HasSubstr("consul GET /v1/catalog/services (index 0): HTTP 200"));
  EXPECT_TRUE(
      std::regex_search(lines, std::regex(R"(sink stdout: event dc1/node-a/payments-1/)"
                                          R"([0-9]+/instance.down delivered \(attempt 1\))")))
      << lines;
  EXPECT_EQ(debug.Stop(), 0);

  consul.UpdateCheck("service:payments-1", "passing", "");
  BridgeProcess info(kBridge, sinks, ConsulAt(consul));
  ASSERT_TRUE(info.ok()) << info.process().Stderr();
  consul.UpdateCheck("service:payments-1", "critical", "connection refused");
  ASSERT_TRUE(info.process().WaitForStdout("instance.down", milliseconds(20000)));
  EXPECT_EQ(info.Stop(), 0);
  EXPECT_THAT(info.process().Stderr(), Not(HasSubstr("consul GET")));
  EXPECT_THAT(info.process().Stderr(), Not(HasSubstr("delivered (attempt")));
  EXPECT_THAT(info.process().Stderr(), Not(HasSubstr(" debug ")));
}

TEST(OperatorView, RecoveryAfterConsulReturnsTakesAtMostTheConfiguredBackoffCap) {
  test_support::ConsulTestServer consul;
  ASSERT_NE(consul.Start(), 0);
  RegisterPayments(consul);
  constexpr auto kCap = milliseconds(2000);
  BridgeProcess bridge(kBridge,
                       "consul: {retry: {initial_backoff: 100ms, max_backoff: 2s}}\n"
                       "log: {level: debug, format: text}\n"
                       "sinks:\n  - {name: stdout, type: log}\n",
                       ConsulAt(consul));
  ASSERT_TRUE(bridge.ok()) << bridge.process().Stderr();

  consul.Stop();
  // 100, 200, 400, 800, 1600 ms, then the cap: from the sixth failure in a
  // row each query waits the cap (±20%) before its next try.
  ASSERT_TRUE(
      bridge.process().WaitForStderr("failure 7 in a row, retrying in", milliseconds(30000)))
      << bridge.process().Stderr();
  const std::size_t recovered_before = CountOf(bridge.process().Stderr(), "Consul answers again");
  ASSERT_NE(consul.Start(), 0);
  const auto back = std::chrono::steady_clock::now();
  ASSERT_TRUE(Eventually(
      [&] { return CountOf(bridge.process().Stderr(), "Consul answers again") > recovered_before; },
      seconds(30)))
      << bridge.process().Stderr();
  const auto took =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - back);
  // The cap plus its jitter, and two seconds for a loaded machine; the
  // previous fixed cap (60 s, 30 s for the first request) is far above.
  std::cout << "answered " << took.count() << " ms after Consul came back\n";
  EXPECT_LE(took, kCap * 12 / 10 + milliseconds(2000)) << bridge.process().Stderr();
  EXPECT_EQ(bridge.Stop(), 0);
}

TEST(OperatorView, ABridgeStartedBeforeConsulSyncsWithinTheBackoffCapOfConsulStarting) {
  test_support::ConsulTestServer consul;
  ASSERT_NE(consul.Start(), 0);  // picks the port
  RegisterPayments(consul);
  consul.Stop();
  constexpr auto kCap = milliseconds(2000);
  const auto config = std::filesystem::temp_directory_path() /
                      ("hb-operator-start-" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(config) << "server: {listen: 127.0.0.1:0}\nlog: {format: text, level: debug}\n"
                        << "consul: {retry: {initial_backoff: 100ms, max_backoff: 2s}}\n"
                        << "sinks:\n  - {name: stdout, type: log}\n";
  ChildProcess bridge(kBridge, {"--config", config.string()}, ConsulAt(consul));
  // The first request's retries double from 100 ms to the cap.
  ASSERT_TRUE(bridge.WaitForStderr("/v1/agent/self failed, retrying in 2000 ms", seconds(30)))
      << bridge.Stderr();
  ASSERT_NE(consul.Start(), 0);
  const auto back = std::chrono::steady_clock::now();
  ASSERT_TRUE(bridge.WaitForStderr("initial sync complete", seconds(30))) << bridge.Stderr();
  const auto took =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - back);
  std::cout << "synced " << took.count() << " ms after Consul started\n";
  EXPECT_LE(took, kCap + milliseconds(2000)) << bridge.Stderr();
  bridge.Signal(SIGTERM);
  EXPECT_EQ(bridge.Wait(milliseconds(20000)), 0);
  std::filesystem::remove(config);
}

TEST(OperatorView, ConsulErrorsNameTheRequestAndA403SaysWhatTheTokenNeeds) {
  test_support::ConsulTestServerOptions options;
  options.acl_token = "the-right-token";
  test_support::ConsulTestServer consul(options);
  ASSERT_NE(consul.Start(), 0);
  const auto config = std::filesystem::temp_directory_path() /
                      ("hb-operator-view-" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(config) << "server: {listen: 127.0.0.1:0}\nlog: {format: text}\n"
                        << "sinks:\n  - {name: stdout, type: log}\n";
  ChildProcess::Options env = ConsulAt(consul);
  env.env["CONSUL_HTTP_TOKEN"] = "a-wrong-token";
  ChildProcess bridge(kBridge, {"--config", config.string()}, env);
  ASSERT_TRUE(bridge.WaitForStderr("HTTP 403", milliseconds(20000))) << bridge.Stderr();
  const std::string log = bridge.Stderr();
  EXPECT_THAT(log,
              HasSubstr("GET " + consul.address() + "/v1/agent/self: HTTP 403: ACL not found"));
  for (const char* hint : {"CONSUL_HTTP_TOKEN,", "CONSUL_HTTP_TOKEN_FILE", "consul.token_file",
                           R"(service_prefix "" { policy = "read" })"}) {
    EXPECT_THAT(log, HasSubstr(hint)) << "the text log escapes nothing but control bytes";
  }
  EXPECT_THAT(log, Not(HasSubstr("a-wrong-token"))) << "a token is never logged";
  std::smatch port;
  ASSERT_TRUE(std::regex_search(log, port, std::regex("on port ([0-9]+)")));
  httplib::Client client("127.0.0.1", std::stoi(port[1]));
  auto ready = client.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_THAT(ready->body, HasSubstr("CONSUL_HTTP_TOKEN_FILE"));
  EXPECT_THAT(ready->body, HasSubstr("node_prefix"));
  bridge.Signal(SIGTERM);
  EXPECT_EQ(bridge.Wait(milliseconds(20000)), 0);
  std::filesystem::remove(config);
}

TEST(OperatorView, AnHtmlErrorPageFromANonConsulServerIsOneLineAndNeverInReadyz) {
  test_support::ConsulTestServer consul;
  ASSERT_NE(consul.Start(), 0);
  consul.FailNext(1000000, 404,
                  "<!DOCTYPE html>\n<html>\n<head>\n<title>404 Not Found</title>\n</head>\n"
                  "<body>\n<h1>Not Found</h1>\n<p>The requested URL was not found.</p>\n"
                  "</body>\n</html>\n");
  const auto config = std::filesystem::temp_directory_path() /
                      ("hb-operator-html-" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(config) << "server: {listen: 127.0.0.1:0}\nlog: {format: text}\n"
                        << "sinks:\n  - {name: stdout, type: log}\n";
  ChildProcess bridge(kBridge, {"--config", config.string()}, ConsulAt(consul));
  ASSERT_TRUE(bridge.WaitForStderr("HTTP 404", milliseconds(20000))) << bridge.Stderr();
  const std::string log = bridge.Stderr();
  EXPECT_THAT(log, HasSubstr("/v1/agent/self: HTTP 404: 404 Not Found"));
  EXPECT_THAT(log, Not(HasSubstr("<html>")));
  EXPECT_THAT(log, Not(HasSubstr("DOCTYPE")));
  std::smatch port;
  ASSERT_TRUE(std::regex_search(log, port, std::regex("on port ([0-9]+)")));
  httplib::Client client("127.0.0.1", std::stoi(port[1]));
  auto ready = client.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_THAT(ready->body, Not(HasSubstr("<")));
  EXPECT_EQ(std::count(ready->body.begin(), ready->body.end(), '\n'), 1) << ready->body;
  bridge.Signal(SIGTERM);
  EXPECT_EQ(bridge.Wait(milliseconds(20000)), 0);
  std::filesystem::remove(config);
}

}  // namespace
}  // namespace hb
