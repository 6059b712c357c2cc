#include "config/config_loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "config/duration.h"
#include "sinks/builtin_sinks.h"

namespace hb {
namespace {

using std::chrono::milliseconds;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

class ConfigTest : public ::testing::Test {
 protected:
  ConfigTest() { RegisterBuiltinSinks(registry_); }

  LoadResult Load(std::string_view yaml) {
    return LoadConfigString(yaml, registry_.Parsers(), [this](std::string_view name) {
      auto it = env_.find(std::string(name));
      return it == env_.end() ? std::nullopt : std::optional<std::string>(it->second);
    });
  }

  SinkRegistry registry_;
  std::map<std::string, std::string> env_;
};

TEST(Duration, ParsesGoStyleDurations) {
  EXPECT_EQ(ParseDuration("500ms"), milliseconds(500));
  EXPECT_EQ(ParseDuration("10s"), milliseconds(10'000));
  EXPECT_EQ(ParseDuration("5m"), milliseconds(300'000));
  EXPECT_EQ(ParseDuration("1h"), milliseconds(3'600'000));
  EXPECT_EQ(ParseDuration("1m30s"), milliseconds(90'000));
  EXPECT_EQ(ParseDuration("0"), milliseconds(0));
  EXPECT_EQ(ParseDuration(""), std::nullopt);
  EXPECT_EQ(ParseDuration("10"), std::nullopt);
  EXPECT_EQ(ParseDuration("1.5s"), std::nullopt);
  EXPECT_EQ(ParseDuration("-5s"), std::nullopt);
  EXPECT_EQ(ParseDuration("5 s"), std::nullopt);
  EXPECT_EQ(ParseDuration("5d"), std::nullopt);
  // Overflow is an error, never a wrapped (negative) duration.
  EXPECT_EQ(ParseDuration("2562047788019h"), std::nullopt);
  EXPECT_EQ(ParseDuration("99999999999999999999ms"), std::nullopt);
  EXPECT_EQ(ParseDuration("2562047h2562047h2562047h2562047h"),
            milliseconds(4 * 2562047LL * 3'600'000));
  EXPECT_EQ(ParseDuration("2000000000000h2000000000000h"), std::nullopt);
}

TEST(Duration, FormatsTheShortestExactForm) {
  EXPECT_EQ(FormatDuration(milliseconds(0)), "0s");
  EXPECT_EQ(FormatDuration(milliseconds(90'000)), "1m30s");
  EXPECT_EQ(FormatDuration(milliseconds(1500)), "1s500ms");
  EXPECT_EQ(FormatDuration(milliseconds(86'400'000)), "24h");
}

TEST_F(ConfigTest, EmptyFileGivesTheDocumentedDefaults) {
  auto result = Load("");
  ASSERT_TRUE(result.ok()) << testing::PrintToString(result.errors);
  const BridgeConfig& config = *result.config;
  EXPECT_EQ(config.consul.client.address, "http://127.0.0.1:8500");
  EXPECT_EQ(config.consul.client.wait, std::chrono::minutes(5));
  EXPECT_EQ(config.consul.client.max_connections, 100u);  // half of Consul's per-IP default
  EXPECT_EQ(config.watch.watcher.services.include, std::vector<std::string>{"*"});
  EXPECT_EQ(config.watch.watcher.services.exclude, std::vector<std::string>{"consul"});
  EXPECT_THAT(config.watch.engine.up_statuses,
              ElementsAre(HealthStatus::kPassing, HealthStatus::kWarning));
  EXPECT_EQ(config.server.listen, "0.0.0.0:9464");
  EXPECT_EQ(config.log.format, "json");
  EXPECT_TRUE(config.server.default_metrics_sink);
  // The instance gauges on every config: an implicit metrics sink.
  ASSERT_EQ(config.sinks.size(), 1u);
  EXPECT_EQ(config.sinks[0].name, "metrics");
  EXPECT_EQ(config.sinks[0].type, "metrics");
  EXPECT_EQ(config.sinks[0].filter.services, std::vector<std::string>{"*"});
  // The defaults are the components' own, not copies of them.
  EXPECT_EQ(config.sinks[0].worker.queue_capacity, 10000u);
  EXPECT_EQ(config.sinks[0].worker.queue_capacity, SinkWorkerOptions{}.queue_capacity);
  EXPECT_EQ(config.sinks[0].dead_letter_max_bytes, DeadLetterLimits{}.max_bytes);
  EXPECT_EQ(config.sinks[0].spool_max_bytes, SpoolOptions{}.max_bytes);
  EXPECT_EQ(config.consul.client.max_answer_bytes, ConsulClientOptions{}.max_answer_bytes);
  EXPECT_EQ(config.watch.watcher.unreachable_grace, WatcherOptions{}.unreachable_grace);
  EXPECT_EQ(config.watch.engine, EngineOptions{});
  // The watch follows the consul section's datacenter and backoff.
  EXPECT_EQ(config.watch.watcher.agent_retry_initial, config.consul.client.backoff_initial);
}

TEST_F(ConfigTest, DefaultMetricsSinkGivesWayToTheConfigsOwnOrIsTurnedOff) {
  auto own = Load("sinks: [{name: gauges, type: metrics, services: [payments]}]\n");
  ASSERT_TRUE(own.ok()) << testing::PrintToString(own.errors);
  ASSERT_EQ(own.config->sinks.size(), 1u);
  EXPECT_EQ(own.config->sinks[0].name, "gauges");

  auto off = Load("sinks: [{name: out, type: log}]\nserver: {default_metrics_sink: false}\n");
  ASSERT_TRUE(off.ok()) << testing::PrintToString(off.errors);
  ASSERT_EQ(off.config->sinks.size(), 1u);
  EXPECT_EQ(off.config->sinks[0].type, "log");

  auto taken = Load("sinks: [{name: metrics, type: log}]\n");
  ASSERT_TRUE(taken.ok()) << testing::PrintToString(taken.errors);
  ASSERT_EQ(taken.config->sinks.size(), 2u);
  EXPECT_EQ(taken.config->sinks[1].name, "default-metrics");

  // The effective config names it, so it reads back as the same config.
  const std::string effective = FormatEffectiveConfig(*taken.config, false);
  auto again = Load(effective);
  ASSERT_TRUE(again.ok()) << testing::PrintToString(again.errors);
  EXPECT_EQ(FormatEffectiveConfig(*again.config, false), effective);
}

TEST_F(ConfigTest, ReadsTheDesignExample) {
  env_["WEBHOOK_SECRET"] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  auto result = Load(R"(
consul:
  address: http://consul.service:8500
  wait_time: 55s
watch:
  services: {include: ["*"], exclude: ["consul"], tags: []}
  up_statuses: [passing]
  dampening: {down_after: 10s, up_after: 500ms}
sinks:
  - name: ops-hooks
    type: webhook
    url: http://alert-router:8080/consul
    secret: ${WEBHOOK_SECRET}
    events: ["instance.down", "instance.deregistered", "service.*"]
    services: ["*"]
  - name: offline-topic
    type: kafka
    brokers: kafka-0:9092,kafka-1:9092
    topic: consul.health.events
    properties: {"security.protocol": "SASL_SSL", "linger.ms": 5}
server:
  listen: 127.0.0.1:0
log: {level: debug, format: text}
)");
  ASSERT_TRUE(result.ok()) << testing::PrintToString(result.errors);
  const BridgeConfig& config = *result.config;
  EXPECT_EQ(config.consul.client.wait, std::chrono::seconds(55));
  EXPECT_THAT(config.watch.engine.up_statuses, ElementsAre(HealthStatus::kPassing));
  EXPECT_EQ(config.watch.engine.down_after, std::chrono::seconds(10));
  EXPECT_EQ(config.watch.engine.up_after, milliseconds(500));
  ASSERT_EQ(config.sinks.size(), 3u);  // and the implicit metrics sink
  EXPECT_EQ(config.sinks[0].filter.events.size(), 3u);
  EXPECT_EQ(config.sinks[2].type, "metrics");
  const std::string effective = FormatEffectiveConfig(config, /*mask_secrets=*/false);
  EXPECT_THAT(effective, HasSubstr("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
  EXPECT_THAT(effective, HasSubstr("brokers: kafka-0:9092,kafka-1:9092"));
  EXPECT_THAT(effective, HasSubstr("linger.ms: 5"));
}

TEST_F(ConfigTest, UnsetEnvironmentVariableIsAnErrorNamingItAndTheKey) {
  auto result = Load("sinks:\n  - {name: a, type: webhook, url: 'http://x', secret: '${NOPE}'}\n");
  EXPECT_THAT(result.errors, ElementsAre("sinks[0].secret: environment variable NOPE is not set"));
}

TEST_F(ConfigTest, DoubleDollarEscapesSubstitution) {
  auto result = Load("sinks:\n  - {name: a, type: webhook, url: 'http://x/$${literal}'}\n");
  ASSERT_TRUE(result.ok()) << testing::PrintToString(result.errors);
  EXPECT_THAT(FormatEffectiveConfig(*result.config, true), HasSubstr("http://x/${literal}"));
}

TEST_F(ConfigTest, CollectsEveryProblemWithItsKeyPath) {
  auto result = Load(R"(
consul:
  wiat_time: 5m
  wait_time: -5s
watch:
  up_statuses: [passing, maintenance]
sinks:
  - name: hooks
    type: webhook
    url: ftp://x
  - name: hooks
    type: kafka
    brokers: k:9092
    topic: ""
  - name: other
    type: carrier-pigeon
  - name: evts
    type: log
    events: ["instance.gone"]
    queue: {capacity: 0}
server:
  listen: nowhere
log:
  level: loud
)");
  EXPECT_THAT(
      result.errors,
      ElementsAre(
          "consul.wait_time: must not be negative, got \"-5s\"",
          "consul.wiat_time: unknown key; did you mean wait_time?",
          "watch.up_statuses: expected passing, warning or critical, got \"maintenance\"",
          "sinks[0].url: expected an http(s) URL, got \"ftp://x\"",
          "sinks[1].name: duplicate sink name \"hooks\"",
          "sinks[1].topic: required: the Kafka topic to produce to",
          "sinks[2].type: unknown sink type \"carrier-pigeon\" (known: alertmanager, kafka, log, "
          "metrics, webhook)",
          "sinks[3].events: \"instance.gone\" matches no event type (instance.registered, "
          "instance.up, instance.down, instance.status_changed, instance.deregistered, "
          "service.up, service.down)",
          "sinks[3].queue.capacity: expected an integer from 1 to 10000000, got 0",
          "server.listen: expected host:port such as 0.0.0.0:9464, got \"nowhere\"",
          "log.level: expected trace, debug, info, warn or error, got \"loud\""));
}

TEST_F(ConfigTest, MaxConnectionsIsBoundedAndShownInTheEffectiveConfig) {
  auto result = Load("consul: {max_connections: 40}\n");
  ASSERT_TRUE(result.ok()) << testing::PrintToString(result.errors);
  EXPECT_EQ(result.config->consul.client.max_connections, 40u);
  EXPECT_THAT(FormatEffectiveConfig(*result.config, true), HasSubstr("max_connections: 40"));
  EXPECT_THAT(Load("consul: {max_connections: 2}\n").errors,
              ElementsAre("consul.max_connections: expected an integer from 3 to 10000, got 2"));
  EXPECT_EQ(result.config->consul.client.max_answer_bytes, std::size_t{64} << 20);
  EXPECT_EQ(Load("consul: {max_answer_size: 1MiB}\n").config->consul.client.max_answer_bytes,
            std::size_t{1} << 20);
  EXPECT_FALSE(Load("consul: {max_answer_size: 5GiB}\n").ok());
  EXPECT_FALSE(Load("consul: {max_answer_size: 10}\n").ok());
  EXPECT_THAT(
      Load("consul: {max_connections: 20000}\n").errors,
      ElementsAre("consul.max_connections: expected an integer from 3 to 10000, got 20000"));
}

TEST_F(ConfigTest, ConsulRetryBackoffIsConfigurableAndValidated) {
  const auto defaults = Load("{}\n");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults.config->consul.client.backoff_initial, std::chrono::seconds(1));
  EXPECT_EQ(defaults.config->consul.client.backoff_max, std::chrono::seconds(10));
  const auto set = Load("consul: {retry: {initial_backoff: 200ms, max_backoff: 3s}}\n");
  ASSERT_TRUE(set.ok()) << testing::PrintToString(set.errors);
  EXPECT_EQ(set.config->consul.client.backoff_initial, std::chrono::milliseconds(200));
  EXPECT_EQ(set.config->consul.client.backoff_max, std::chrono::seconds(3));
  EXPECT_THAT(FormatEffectiveConfig(*set.config, true),
              HasSubstr("retry:\n    initial_backoff: 200ms\n    max_backoff: 3s"));
  EXPECT_THAT(Load("consul: {retry: {initial_backoff: 5s, max_backoff: 2s}}\n").errors,
              ElementsAre("consul.retry.max_backoff: must not be shorter than initial_backoff "
                          "(5s), got 2s"));
  EXPECT_THAT(Load("consul: {retry: {initial_backoff: 1ms}}\n").errors,
              ElementsAre("consul.retry.initial_backoff: expected at least 10ms, got 1ms"));
  EXPECT_THAT(Load("consul: {retry: {max_backoff: 1h}}\n").errors,
              ElementsAre("consul.retry.max_backoff: expected at most 10m, got 1h"));
  EXPECT_THAT(Load("consul: {retry: {max_backof: 1s}}\n").errors,
              ElementsAre(HasSubstr("consul.retry.max_backof: unknown key")));
}

TEST_F(ConfigTest, WrongTypesSayWhatWasExpected) {
  auto result = Load("consul: [a]\nwatch: {initial_events: maybe, services: {include: x}}\n");
  EXPECT_THAT(result.errors,
              ElementsAre("consul: expected a mapping, got a list",
                          "watch.services.include: expected a list of strings, got a scalar",
                          "watch.initial_events: expected true or false, got \"maybe\""));
}

TEST_F(ConfigTest, UnknownTopLevelKeyGetsASuggestion) {
  EXPECT_THAT(Load("sinkz: []\n").errors, ElementsAre("sinkz: unknown key; did you mean sinks?"));
  EXPECT_THAT(Load("completely_else: 1\n").errors, ElementsAre("completely_else: unknown key"));
}

TEST_F(ConfigTest, AListOrMapAsAKeyIsAnErrorNotACrash) {  // found by config_fuzz
  EXPECT_THAT(Load("consul:\n  ? [a, b]\n  : x\n").errors,
              ElementsAre("consul: expected plain keys, got a list or map as a key"));
  EXPECT_THAT(Load("? {a: 1}\n: x\n").errors,
              ElementsAre("(top level): expected plain keys, got a list or map as a key"));
}

TEST_F(ConfigTest, YamlSyntaxErrorNamesTheLine) {
  auto result = Load("consul:\n  address: [unclosed\n");
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_THAT(result.errors[0], HasSubstr("YAML syntax error at line"));
}

TEST_F(ConfigTest, ConsulEnvironmentOverridesTheFile) {
  env_["CONSUL_HTTP_ADDR"] = "consul.prod:8501";
  env_["CONSUL_HTTP_SSL"] = "true";
  env_["CONSUL_HTTP_TOKEN"] = "from-env";
  env_["CONSUL_CACERT"] = "/etc/ca.pem";
  env_["CONSUL_HTTP_SSL_VERIFY"] = "false";
  env_["CONSUL_TLS_SERVER_NAME"] = "consul.internal";
  auto result = Load("consul: {address: 'http://file:8500', token: from-file}\n");
  ASSERT_TRUE(result.ok()) << testing::PrintToString(result.errors);
  EXPECT_EQ(result.config->consul.client.address, "https://consul.prod:8501");
  EXPECT_EQ(result.config->consul.client.token, "from-env");
  EXPECT_EQ(result.config->consul.client.tls.ca_file, "/etc/ca.pem");
  EXPECT_TRUE(result.config->consul.client.tls.insecure_skip_verify);
  EXPECT_EQ(result.config->consul.client.tls.server_name, "consul.internal");
}

TEST_F(ConfigTest, TokenFileWinsOverTokenAsInConsulsGoApi) {
  const auto path =
      std::filesystem::temp_directory_path() / ("hb_token_" + std::to_string(::getpid()));
  std::ofstream(path) << "  file-token\n";
  env_["CONSUL_HTTP_TOKEN"] = "env-token";
  env_["CONSUL_HTTP_TOKEN_FILE"] = path.string();
  auto result = Load("");
  std::filesystem::remove(path);
  ASSERT_TRUE(result.ok()) << testing::PrintToString(result.errors);
  EXPECT_EQ(result.config->consul.client.token, "file-token");

  env_["CONSUL_HTTP_TOKEN_FILE"] = "/nonexistent/token";
  EXPECT_THAT(Load("").errors,
              ElementsAre("consul.token_file: cannot read \"/nonexistent/token\""));
}

TEST_F(ConfigTest, EffectiveConfigMasksEverySecret) {
  env_["CONSUL_HTTP_TOKEN"] = "consul-secret-token";
  env_["CONSUL_HTTP_ADDR"] = "http://admin:S3cretPW@127.0.0.1:8500";
  auto result = Load(R"(
sinks:
  - name: hooks
    type: webhook
    url: https://user:HookPW@hooks.example/x?api_key=QUERYSECRET
    secret: raw-signing-secret
    headers: {X-Signature-Seed: header-secret, X-Team: ops}
    safe_headers: [X-Team]
    auth: {basic: {username: bridge, password: basic-secret}}
  - name: topic
    type: kafka
    brokers: [k:9092]
    topic: t
    properties: {sasl.password: kafka-secret, ssl.key.password: jaas-secret, acks: all}
)");
  ASSERT_TRUE(result.ok()) << testing::PrintToString(result.errors);
  const std::string masked = FormatEffectiveConfig(*result.config, true);
  for (const char* secret :
       {"consul-secret-token", "raw-signing-secret", "header-secret", "basic-secret",
        "kafka-secret", "jaas-secret", "S3cretPW", "HookPW", "QUERYSECRET"}) {
    EXPECT_THAT(masked, Not(HasSubstr(secret)));
  }
  EXPECT_THAT(masked, HasSubstr("X-Team: ops"));
  EXPECT_THAT(masked, HasSubstr("acks: all"));
  EXPECT_THAT(masked, HasSubstr("username: bridge"));
  EXPECT_THAT(masked, HasSubstr("https://******@hooks.example/x?******"));
  EXPECT_THAT(masked, HasSubstr("http://******@127.0.0.1:8500"));
}

TEST_F(ConfigTest, WebhookHeadersCannotBreakTheirLineOrReplaceTheSinksOwn) {
  const auto errors = Load(R"(
sinks:
  - name: hooks
    type: webhook
    url: http://x
    headers:
      "X-Ok": "fine"
      "X Bad": "v"
      "X-Injected": "a\r\nContent-Length: 0"
      "Content-Length": "0"
      "webhook-id": "forged"
    safe_headers: [X-Missing]
)")
                          .errors;
  EXPECT_THAT(errors, Contains(AllOf(HasSubstr("headers"), HasSubstr("\"X Bad\""),
                                     HasSubstr("not an HTTP token"))));
  EXPECT_THAT(errors, Contains(AllOf(HasSubstr("\"X-Injected\""), HasSubstr("control"))));
  EXPECT_THAT(errors,
              Contains(AllOf(HasSubstr("\"Content-Length\""), HasSubstr("set by the sink"))));
  EXPECT_THAT(errors, Contains(AllOf(HasSubstr("\"webhook-id\""), HasSubstr("set by the sink"))));
  EXPECT_THAT(errors, Contains(AllOf(HasSubstr("safe_headers"), HasSubstr("X-Missing"))));
  EXPECT_THAT(errors, Not(Contains(HasSubstr("X-Ok"))));
}

TEST_F(ConfigTest, ConsulAddressAndConsulsBooleanVariablesMeanWhatTheySay) {
  EXPECT_THAT(Load("consul: {address: 'htp://127.0.0.1:18500'}\n").errors,
              Contains(AllOf(HasSubstr("consul.address"), HasSubstr("scheme must be http or https"),
                             HasSubstr("\"htp\""))));
  EXPECT_THAT(Load("consul: {address: 'http://:8500'}\n").errors,
              Contains(HasSubstr("consul.address")));
  env_["CONSUL_HTTP_SSL"] = "maybe";
  env_["CONSUL_HTTP_SSL_VERIFY"] = "nope";
  const auto errors = Load("").errors;
  EXPECT_THAT(errors, Contains(AllOf(HasSubstr("CONSUL_HTTP_SSL:"), HasSubstr("\"maybe\""))));
  EXPECT_THAT(errors, Contains(AllOf(HasSubstr("CONSUL_HTTP_SSL_VERIFY:"), HasSubstr("\"nope\""))));
  env_["CONSUL_HTTP_SSL"] = "1";
  env_["CONSUL_HTTP_SSL_VERIFY"] = "F";
  env_["CONSUL_HTTP_ADDR"] = "consul.service:8501";
  const auto loaded = Load("");
  ASSERT_TRUE(loaded.ok()) << testing::PrintToString(loaded.errors);
  EXPECT_EQ(loaded.config->consul.client.address, "https://consul.service:8501");
  EXPECT_TRUE(loaded.config->consul.client.tls.insecure_skip_verify);
}

TEST_F(ConfigTest, CheckConfigSaysWhichValuesCameFromTheEnvironment) {
  env_["CONSUL_HTTP_ADDR"] = "http://10.0.0.1:8500";
  env_["HOOK_SECRET"] = "s3cret";
  const auto loaded =
      Load("sinks:\n  - {name: a, type: webhook, url: 'http://x', secret: '${HOOK_SECRET}'}\n");
  ASSERT_TRUE(loaded.ok()) << testing::PrintToString(loaded.errors);
  const std::string text = FormatEffectiveConfig(*loaded.config, true);
  EXPECT_THAT(text, HasSubstr("# from the environment:\n"));
  EXPECT_THAT(text, HasSubstr("#   consul.address: CONSUL_HTTP_ADDR\n"));
  EXPECT_THAT(text, HasSubstr("#   sinks[0].secret: ${HOOK_SECRET}\n"));
  EXPECT_THAT(text, Not(HasSubstr("s3cret")));
}

TEST_F(ConfigTest, DurationsAndSizesHaveUpperBounds) {
  const auto errors = Load(R"(
state: {shutdown_timeout: 2562047788019h, save_interval: 8000h}
sinks:
  - {name: a, type: log, retry: {max_age: 100000h}, spool: {max_bytes: 2048GiB}}
)")
                          .errors;
  EXPECT_THAT(errors, Contains(AllOf(HasSubstr("state.shutdown_timeout"),
                                     HasSubstr("expected a duration"))));
  EXPECT_THAT(errors, Contains(AllOf(HasSubstr("max_age"), HasSubstr("at most 8784h"))));
  EXPECT_THAT(errors, Contains(AllOf(HasSubstr("max_bytes"), HasSubstr("at most 1024GiB"))));
  EXPECT_THAT(errors, Not(Contains(HasSubstr("save_interval"))));
}

TEST_F(ConfigTest, AnEmptyConfigFileIsRefusedAndAnExplicitEmptyMapIsNot) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("hb-config-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto load_file = [&](const std::string& name, const std::string& text) {
    const auto path = dir / name;
    std::ofstream(path) << text;
    return LoadConfigFile(path.string(), registry_.Parsers(),
                          [](std::string_view) { return std::nullopt; });
  };
  for (const std::string text : {"", "\n  \n", "# only a comment\n", "---\n# c\n...\n"}) {
    const LoadResult result = load_file("empty.yaml", text);
    EXPECT_FALSE(result.ok()) << "accepted: " << testing::PrintToString(text);
    EXPECT_THAT(result.errors,
                Contains(AllOf(HasSubstr("empty.yaml"), HasSubstr("no YAML document"))));
  }
  EXPECT_TRUE(load_file("defaults.yaml", "{}\n").ok());
  EXPECT_TRUE(load_file("marker.yaml", "--- {}\n").ok());
  std::filesystem::remove_all(dir);
}

TEST_F(ConfigTest, EffectiveConfigLoadsBackToTheSameConfig) {
  auto first = Load(R"(
watch: {dampening: {down_after: 1m30s}}
sinks:
  - {name: out, type: log, events: ["service.*"], retry: {max_attempts: 5}}
  - {name: hooks, type: webhook, url: "http://x:1/y", auth: {bearer_token: t}}
  - {name: m, type: metrics}
)");
  ASSERT_TRUE(first.ok()) << testing::PrintToString(first.errors);
  const std::string text = FormatEffectiveConfig(*first.config, false);
  auto second = Load(text);
  ASSERT_TRUE(second.ok()) << testing::PrintToString(second.errors) << text;
  EXPECT_EQ(FormatEffectiveConfig(*second.config, false), text);
}

TEST_F(ConfigTest, AFullQueueOnlyOverflowsToTheSpoolAndTheBlockingSettingsAreRefused) {
  EXPECT_THAT(Load("sinks: [{name: a, type: log, queue: {overflow: spill}}]\n").errors,
              ElementsAre(HasSubstr("sinks[0].queue.overflow: expected spool")));
  EXPECT_THAT(
      Load("sinks: [{name: a, type: log, queue: {overflow: block, block_timeout: 5s}}]\n").errors,
      ElementsAre(HasSubstr("sinks[0].queue.overflow: block was removed"),
                  HasSubstr("sinks[0].queue.block_timeout: was removed")));
}

TEST_F(ConfigTest, TheWatchLoopStallTimeoutDefaultsTo30sAndIsAtLeastTwoHeartbeats) {
  const LoadResult defaults = Load("");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults.config->watch.stall_timeout, std::chrono::seconds(30));
  const LoadResult set = Load("watch: {stall_timeout: 1m}\n");
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set.config->watch.stall_timeout, std::chrono::minutes(1));
  EXPECT_THAT(Load("watch: {stall_timeout: 500ms}\n").errors,
              ElementsAre(HasSubstr("watch.stall_timeout: must be at least 2s")));
}

TEST_F(ConfigTest, SpoolBoundTakesBinaryUnitsAndRefusesTinyOrMalformedSizes) {
  auto loaded = Load(
      "sinks: [{name: a, type: log, spool: {max_bytes: 64MiB}},\n"
      "        {name: b, type: log}]\nstate: {save_interval: 250ms}\n");
  ASSERT_TRUE(loaded.ok()) << testing::PrintToString(loaded.errors);
  EXPECT_EQ(loaded.config->sinks[0].spool_max_bytes, std::uint64_t{64} << 20);
  EXPECT_EQ(loaded.config->sinks[1].spool_max_bytes, std::uint64_t{256} << 20);
  EXPECT_EQ(loaded.config->state.save_interval, std::chrono::milliseconds(250));

  EXPECT_THAT(Load("sinks: [{name: a, type: log, spool: {max_bytes: 64MB}}]\n").errors,
              ElementsAre(HasSubstr("sinks[0].spool.max_bytes: expected a size in bytes")));
  EXPECT_THAT(Load("sinks: [{name: a, type: log, spool: {max_bytes: 4096}}]\n").errors,
              ElementsAre(HasSubstr("sinks[0].spool.max_bytes: must be at least 1MiB")));
  EXPECT_THAT(Load("state: {save_interval: 0s}\n").errors,
              ElementsAre(HasSubstr("state.save_interval: must be greater than 0")));
}

TEST_F(ConfigTest, WebhookAndKafkaSpecificValidation) {
  EXPECT_THAT(
      Load("sinks: [{name: a, type: webhook, url: 'http://x', secret: 'whsec_%%%'}]\n").errors,
      ElementsAre("sinks[0].secret: a whsec_ secret must be followed by base64"));
  EXPECT_THAT(Load("sinks: [{name: a, type: webhook, url: 'http://x', "
                   "auth: {bearer_token: t, basic: {username: u}}}]\n")
                  .errors,
              ElementsAre("sinks[0].auth.basic: use either bearer_token or basic, not both"));
  EXPECT_THAT(Load("sinks: [{name: a, type: kafka, topic: 'bad topic!'}]\n").errors,
              ElementsAre("sinks[0].brokers: required: host:port of at least one broker",
                          "sinks[0].topic: expected a Kafka topic name ([a-zA-Z0-9._-], at most "
                          "249), got \"bad topic!\""));
  EXPECT_THAT(Load("sinks: [{name: a, type: kafka, brokers: k:1, topic: t, mode: both}]\n").errors,
              ElementsAre("sinks[0].mode: expected structured or binary, got \"both\""));
  // librdkafka itself judges the pass-through properties, with its own words.
  EXPECT_THAT(
      Load("sinks: [{name: a, type: kafka, brokers: k:1, topic: t, "
           "properties: {compression.type: zstd, linger.ms: soon, lingr.ms: 5}}]\n")
          .errors,
      ElementsAre(
          HasSubstr("sinks[0].properties.linger.ms: Invalid value for configuration property"),
          "sinks[0].properties.lingr.ms: No such configuration property: "
          "\"lingr.ms\""));
  EXPECT_THAT(Load("sinks: [{name: a, type: log, url: 'http://x'}]\n").errors,
              ElementsAre("sinks[0].url: unknown key"));
}

TEST_F(ConfigTest, ExamplesValidate) {
  env_["WEBHOOK_SECRET"] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  env_["KAFKA_PASSWORD"] = "example";
  for (const char* name : {"minimal.yaml", "full.yaml"}) {
    auto result = LoadConfigFile(std::string(HB_SOURCE_DIR) + "/config/examples/" + name,
                                 registry_.Parsers(), [this](std::string_view var) {
                                   auto it = env_.find(std::string(var));
                                   return it == env_.end() ? std::nullopt
                                                           : std::optional<std::string>(it->second);
                                 });
    EXPECT_TRUE(result.ok()) << name << ": " << testing::PrintToString(result.errors);
  }
}

}  // namespace
}  // namespace hb

namespace hb {
namespace {

class ClusterConfigTest : public ::testing::Test {
 protected:
  ClusterConfigTest() { RegisterBuiltinSinks(registry_); }
  LoadResult Load(std::string_view yaml) {
    return LoadConfigString(yaml, registry_.Parsers(),
                            [](std::string_view) { return std::optional<std::string>(); });
  }
  SinkRegistry registry_;
};

TEST_F(ClusterConfigTest, OffByDefaultWithConsulsDefaults) {
  auto result = Load("");
  ASSERT_TRUE(result.ok());
  const ClusterConfig& cluster = result.config->cluster;
  EXPECT_FALSE(cluster.enabled);
  EXPECT_EQ(cluster.prefix, "health-bridge");
  EXPECT_EQ(cluster.session_ttl, std::chrono::seconds(15));
  EXPECT_EQ(cluster.lock_delay, std::chrono::seconds(15));
  EXPECT_EQ(cluster.member_id, "");
}

TEST_F(ClusterConfigTest, ReadsAndRoundTripsTheSection) {
  auto result = Load(
      "cluster: {enabled: true, prefix: hb/prod, session_ttl: 20s, lock_delay: 5s, "
      "member_id: pod-1}\n");
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(result.errors);
  EXPECT_TRUE(result.config->cluster.enabled);
  EXPECT_EQ(result.config->cluster.prefix, "hb/prod");
  EXPECT_EQ(result.config->cluster.session_ttl, std::chrono::seconds(20));
  EXPECT_EQ(result.config->cluster.lock_delay, std::chrono::seconds(5));
  EXPECT_EQ(result.config->cluster.member_id, "pod-1");
  auto again = Load(FormatEffectiveConfig(*result.config, false));
  ASSERT_TRUE(again.ok()) << ::testing::PrintToString(again.errors);
  EXPECT_EQ(again.config->cluster.prefix, "hb/prod");
}

TEST_F(ClusterConfigTest, BadValuesNameTheKey) {
  const auto errors = [this](std::string_view yaml) {
    auto result = Load(yaml);
    EXPECT_FALSE(result.ok()) << yaml;
    return ::testing::PrintToString(result.errors);
  };
  EXPECT_THAT(errors("cluster: {prefix: /abs}\n"), ::testing::HasSubstr("cluster.prefix"));
  EXPECT_THAT(errors("cluster: {prefix: 'a b'}\n"), ::testing::HasSubstr("cluster.prefix"));
  EXPECT_THAT(errors("cluster: {session_ttl: 500ms}\n"),
              ::testing::HasSubstr("cluster.session_ttl"));
  EXPECT_THAT(errors("cluster: {session_ttl: 25h}\n"), ::testing::HasSubstr("cluster.session_ttl"));
  EXPECT_THAT(errors("cluster: {lock_delay: 2m}\n"), ::testing::HasSubstr("cluster.lock_delay"));
  EXPECT_THAT(errors("cluster: {member_id: 'a/b'}\n"), ::testing::HasSubstr("cluster.member_id"));
  EXPECT_THAT(errors("cluster: {enable: true}\n"), ::testing::HasSubstr("cluster.enable"));
}

}  // namespace
}  // namespace hb
