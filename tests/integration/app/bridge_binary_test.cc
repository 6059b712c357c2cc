// The health-bridge executable as an operator runs it: exit codes, what
// goes to stdout and stderr, config validation before anything starts, and
// the daemon end to end against the Consul test server until SIGTERM.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/consul/consul_test_server.h"
#include "tests/support/process/bridge_under_test.h"
#include "tests/support/process/child_process.h"
#include "tests/support/schema/event_schema.h"

namespace hb {
namespace {

using std::chrono::milliseconds;
using test_support::ChildProcess;
using test_support::RunResult;
using test_support::RunToCompletion;
using ::testing::HasSubstr;
using ::testing::Not;

using test_support::kBridge;
const std::filesystem::path kExamples = std::filesystem::path(HB_SOURCE_DIR) / "config/examples";

// Consul's variables from the developer's shell must not leak into a test.
ChildProcess::Options CleanEnv(std::map<std::string, std::optional<std::string>> extra = {}) {
  ChildProcess::Options options;
  for (const char* name :
       {"CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_TOKEN_FILE", "CONSUL_CACERT",
        "CONSUL_CLIENT_CERT", "CONSUL_CLIENT_KEY", "CONSUL_TLS_SERVER_NAME", "CONSUL_HTTP_SSL",
        "CONSUL_HTTP_SSL_VERIFY", "HEALTH_BRIDGE_CONFIG"}) {
    options.env[name] = std::nullopt;
  }
  for (auto& [name, value] : extra) options.env[name] = value;
  return options;
}

std::filesystem::path WriteTemp(const std::string& name, const std::string& text) {
  const auto path =
      std::filesystem::temp_directory_path() / ("hb-" + std::to_string(::getpid()) + "-" + name);
  std::ofstream(path) << text;
  return path;
}

TEST(BridgeBinary, VersionAndHelpGoToStdoutAndExitZero) {
  const RunResult version = RunToCompletion(kBridge, {"--version"}, CleanEnv());
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_THAT(version.out, ::testing::StartsWith("health-bridge "));
  const RunResult help = RunToCompletion(kBridge, {"--help"}, CleanEnv());
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("check-config [FILE]"));
  EXPECT_EQ(help.err, "");
}

TEST(BridgeBinary, HealthBridgeConfigNamesTheConfigFile) {
  const auto minimal = (kExamples / "minimal.yaml").string();
  const RunResult checked =
      RunToCompletion(kBridge, {"check-config"}, CleanEnv({{"HEALTH_BRIDGE_CONFIG", minimal}}));
  EXPECT_EQ(checked.exit_code, 0) << checked.err;
  EXPECT_THAT(checked.out, HasSubstr("sinks:"));
}

TEST(BridgeBinary, LogsNameLevelsAsTheConfigDoesAndMarkTheirTimesUtc) {
  // Nothing listens on port 1: the watch warns that Consul is unreachable.
  for (const char* format : {"json", "text"}) {
    const auto path = WriteTemp(std::string("log-") + format + ".yaml",
                                std::string("consul: {address: 'http://127.0.0.1:1'}\n"
                                            "server: {listen: '127.0.0.1:0'}\n"
                                            "log: {level: warn, format: ") +
                                    format + "}\n");
    ChildProcess bridge(kBridge, {"--config", path.string()}, CleanEnv());
    const bool warned = bridge.WaitForStderr("Consul request failed", std::chrono::seconds(20));
    bridge.Signal(SIGTERM);
    bridge.Wait(std::chrono::seconds(10));
    ASSERT_TRUE(warned) << bridge.Stderr();
    const std::string log = bridge.Stderr();
    if (std::string(format) == "json") {
      EXPECT_THAT(log, HasSubstr("\"level\":\"warn\""));
      EXPECT_THAT(log, ::testing::ContainsRegex(R"("ts":"[0-9T:.-]+Z")"));
    } else {
      EXPECT_THAT(log, ::testing::ContainsRegex(R"([0-9]T[0-9:.]+Z warn Consul request failed)"));
    }
    EXPECT_THAT(log, Not(HasSubstr("warning")));
    std::filesystem::remove(path);
  }
}

TEST(BridgeBinary, UnknownFlagGivesUsageOnStderrAndExitsTwo) {
  const RunResult result = RunToCompletion(kBridge, {"--frobnicate"}, CleanEnv());
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("unknown argument '--frobnicate'"));
  EXPECT_THAT(result.err, HasSubstr("usage: health-bridge"));
  EXPECT_EQ(result.out, "");
  EXPECT_EQ(RunToCompletion(kBridge, {}, CleanEnv()).exit_code, 2);
}

TEST(BridgeBinary, EveryShippedExampleValidates) {
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kExamples)) {
    if (entry.path().extension() != ".yaml") continue;
    const RunResult result =
        RunToCompletion(kBridge, {"check-config", entry.path().string()},
                        CleanEnv({{"WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
                                  {"KAFKA_PASSWORD", "pw"},
                                  {"CONSUL_HTTP_TOKEN", "tok"}}));
    EXPECT_EQ(result.exit_code, 0) << entry.path() << "\n" << result.err;
    ++checked;
  }
  EXPECT_GE(checked, 2);
}

TEST(BridgeBinary, CheckConfigPrintsTheEffectiveConfigWithSecretsMasked) {
  const RunResult result = RunToCompletion(
      kBridge, {"check-config", (kExamples / "minimal.yaml").string()},
      CleanEnv({{"CONSUL_HTTP_TOKEN", "0b5f-very-secret"}, {"CONSUL_HTTP_ADDR", "consul:8500"}}));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("http://consul:8500"));  // the env overrides the file
  EXPECT_THAT(result.out, HasSubstr("******"));
  EXPECT_THAT(result.out, Not(HasSubstr("0b5f-very-secret")));
}

TEST(BridgeBinary, ABrokenConfigListsEveryProblemWithItsPathAndExitsTwo) {
  const auto path = WriteTemp("broken.yaml", R"(consul:
  adress: http://127.0.0.1:8500
watch:
  wait: -5s
sinks:
  - name: out
    type: log
  - name: out
    type: log
  - name: hooks
    type: carrier-pigeon
)");
  const RunResult result = RunToCompletion(kBridge, {"check-config", path.string()}, CleanEnv());
  std::filesystem::remove(path);
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("consul.adress"));
  EXPECT_THAT(result.err, HasSubstr("address"));  // did you mean
  EXPECT_THAT(result.err, HasSubstr("watch.wait"));
  EXPECT_THAT(result.err, HasSubstr("sinks[1].name"));
  EXPECT_THAT(result.err, HasSubstr("sinks[2].type"));
  EXPECT_EQ(result.out, "");
}

TEST(BridgeBinary, ABadConfigNeverStartsTheBridge) {
  const auto path = WriteTemp("unset.yaml",
                              "sinks:\n  - name: out\n    type: log\n"
                              "consul:\n  token: ${HB_TEST_UNSET_VARIABLE}\n");
  const RunResult result =
      RunToCompletion(kBridge, {"--config", path.string()},
                      CleanEnv({{"HB_TEST_UNSET_VARIABLE", std::nullopt}}), milliseconds(10000));
  std::filesystem::remove(path);
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("HB_TEST_UNSET_VARIABLE"));
  EXPECT_THAT(result.err, Not(HasSubstr("starting")));
}

TEST(BridgeBinary, AMissingConfigFileIsNamed) {
  const RunResult result = RunToCompletion(kBridge, {"-c", "/nonexistent/bridge.yaml"}, CleanEnv());
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("/nonexistent/bridge.yaml"));
}

TEST(BridgeBinary, RunsAgainstConsulPrintsEventsAndStopsCleanlyOnSigterm) {
  test_support::ConsulTestServer consul;
  ASSERT_NE(consul.Start(), 0);
  consul.RegisterService(nlohmann::json{
      {"ID", "payments-1"},
      {"Name", "payments"},
      {"Port", 8000},
      {"Check", {{"CheckID", "service:payments-1"}, {"TTL", "30s"}, {"Status", "passing"}}}});
  // minimal.yaml, on a port of its own: tests run in parallel.
  const auto config = WriteTemp("minimal-loopback.yaml",
                                "server: {listen: 127.0.0.1:0}\n"
                                "sinks:\n  - name: stdout\n    type: log\n");
  ChildProcess bridge(kBridge, {"--config", config.string()},
                      CleanEnv({{"CONSUL_HTTP_ADDR", consul.address()}}));
  ASSERT_TRUE(bridge.WaitForStderr("initial sync complete", milliseconds(20000)))
      << bridge.Stderr();
  EXPECT_EQ(bridge.Stdout(), "");  // the initial sync is silent

  consul.UpdateCheck("service:payments-1", "critical", "connection refused");
  ASSERT_TRUE(bridge.WaitForStdout("service.down", milliseconds(20000))) << bridge.Stderr();
  std::vector<nlohmann::json> events;
  std::istringstream lines(bridge.Stdout());
  for (std::string line; std::getline(lines, line);) {
    events.push_back(nlohmann::json::parse(line));  // every stdout line is one CloudEvent
  }
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(test_support::LogLinesSchemaViolations(bridge.Stdout()), "");
  EXPECT_EQ(events[0]["type"], "io.healthbridge.instance.down");
  EXPECT_EQ(events[0]["specversion"], "1.0");
  EXPECT_EQ(events[0]["data"]["instance_id"], "payments-1");
  EXPECT_EQ(events[0]["data"]["reason"], "critical");
  EXPECT_EQ(events[1]["type"], "io.healthbridge.service.down");

  bridge.Signal(SIGTERM);
  EXPECT_EQ(bridge.Wait(milliseconds(20000)), 0) << bridge.Stderr();
  EXPECT_THAT(bridge.Stderr(), HasSubstr("stopped"));
}

TEST(BridgeBinary, ARotatedTokenFileIsReadAgainAfterA403AndWatchingGoesOn) {
  test_support::ConsulTestServerOptions options;
  options.acl_token = "token-before";
  test_support::ConsulTestServer consul(options);
  ASSERT_NE(consul.Start(), 0);
  consul.RegisterService(nlohmann::json{
      {"ID", "payments-1"},
      {"Name", "payments"},
      {"Port", 8000},
      {"Check", {{"CheckID", "service:payments-1"}, {"TTL", "30s"}, {"Status", "passing"}}}});
  const auto token_file = WriteTemp("consul.token", "token-before\n");
  const auto config = WriteTemp("token-file.yaml", "consul: {token_file: '" + token_file.string() +
                                                       "'}\n"
                                                       "server: {listen: 127.0.0.1:0}\n"
                                                       "sinks:\n  - name: stdout\n    type: log\n");
  ChildProcess bridge(kBridge, {"--config", config.string()},
                      CleanEnv({{"CONSUL_HTTP_ADDR", consul.address()}}));
  ASSERT_TRUE(bridge.WaitForStderr("initial sync complete", milliseconds(20000)))
      << bridge.Stderr();

  // Rotation as Vault or a projected Secret does it: Consul first, then the file.
  consul.SetAclToken("token-after");
  std::ofstream(token_file) << "token-after\n";
  consul.UpdateCheck("service:payments-1", "critical", "connection refused");
  ASSERT_TRUE(
      bridge.WaitForStderr("read again after an HTTP 403: the token changed", milliseconds(20000)))
      << bridge.Stderr();
  ASSERT_TRUE(bridge.WaitForStdout("service.down", milliseconds(20000))) << bridge.Stderr();

  // SIGHUP reads the token file again too, before any 403; and a config
  // file left empty by a truncated write is refused: the running
  // configuration (its sink included) stays.
  std::ofstream(token_file) << "token-third\n";
  std::ofstream(config, std::ios::trunc).flush();
  bridge.Signal(SIGHUP);
  ASSERT_TRUE(bridge.WaitForStderr("read again on reload: the token changed", milliseconds(20000)))
      << bridge.Stderr();
  ASSERT_TRUE(bridge.WaitForStderr("the running one stays", milliseconds(20000)))
      << bridge.Stderr();
  consul.SetAclToken("token-third");
  consul.UpdateCheck("service:payments-1", "passing", "ok");
  ASSERT_TRUE(bridge.WaitForStdout("service.up", milliseconds(20000))) << bridge.Stderr();
  EXPECT_THAT(bridge.Stderr(), Not(HasSubstr("token-after"))) << "a token is never logged";
  EXPECT_THAT(bridge.Stderr(), Not(HasSubstr("token-third"))) << "a token is never logged";
  bridge.Signal(SIGTERM);
  EXPECT_EQ(bridge.Wait(milliseconds(20000)), 0) << bridge.Stderr();
  std::filesystem::remove(token_file);
  std::filesystem::remove(config);
}

}  // namespace
}  // namespace hb
