#include "bridge/app/cli.h"

#include <gtest/gtest.h>

namespace hb {
namespace {

TEST(ParseCommandLine, RunNeedsAConfigFile) {
  auto command = ParseCommandLine({"--config", "bridge.yaml"});
  EXPECT_EQ(command.kind, Command::Kind::kRun);
  EXPECT_EQ(command.config_path, "bridge.yaml");
  EXPECT_EQ(ParseCommandLine({"-c", "x.yaml"}).config_path, "x.yaml");
  EXPECT_EQ(ParseCommandLine({"--config=y.yaml"}).config_path, "y.yaml");
  EXPECT_EQ(ParseCommandLine({}).error, "missing --config FILE");
  EXPECT_EQ(ParseCommandLine({"--config"}).error, "--config needs a FILE");
}

TEST(ParseCommandLine, CheckConfigTakesOneFile) {
  auto command = ParseCommandLine({"check-config", "a.yaml"});
  EXPECT_EQ(command.kind, Command::Kind::kCheckConfig);
  EXPECT_EQ(command.config_path, "a.yaml");
  EXPECT_EQ(ParseCommandLine({"check-config"}).kind, Command::Kind::kUsageError);
}

TEST(ParseCommandLine, UnknownFlagIsAUsageError) {
  auto command = ParseCommandLine({"--config", "a.yaml", "--verbose"});
  EXPECT_EQ(command.kind, Command::Kind::kUsageError);
  EXPECT_EQ(command.error, "unknown argument '--verbose'");
}

TEST(ParseCommandLine, HealthBridgeConfigNamesTheFileWhenTheCommandLineDoesNot) {
  const std::optional<std::string> env = "/etc/health-bridge/config.yaml";
  EXPECT_EQ(ParseCommandLine({}, env).kind, Command::Kind::kRun);
  EXPECT_EQ(ParseCommandLine({}, env).config_path, "/etc/health-bridge/config.yaml");
  EXPECT_EQ(ParseCommandLine({"-c", "mine.yaml"}, env).config_path, "mine.yaml");
  EXPECT_EQ(ParseCommandLine({"check-config"}, env).kind, Command::Kind::kCheckConfig);
  EXPECT_EQ(ParseCommandLine({"check-config"}, env).config_path, "/etc/health-bridge/config.yaml");
  EXPECT_EQ(ParseCommandLine({"check-config", "x.yaml"}, env).config_path, "x.yaml");
  EXPECT_EQ(ParseCommandLine({"check-config"}).error,
            "check-config needs a FILE (or HEALTH_BRIDGE_CONFIG)");
}

TEST(UsageText, NamesTheEnvironmentAndTheDocs) {
  const std::string text = UsageText();
  for (const char* name : {"HEALTH_BRIDGE_CONFIG", "CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN",
                           "CONSUL_HTTP_TOKEN_FILE", "CONSUL_HTTP_SSL", "CONSUL_HTTP_SSL_VERIFY",
                           "CONSUL_CACERT", "CONSUL_TLS_SERVER_NAME", "docs/"}) {
    EXPECT_NE(text.find(name), std::string::npos) << name;
  }
}

TEST(ParseCommandLine, TestSinkAndReplayTakeTheirArguments) {
  auto test_sink = ParseCommandLine({"test-sink", "--config", "c.yaml", "hooks"});
  EXPECT_EQ(test_sink.kind, Command::Kind::kTestSink);
  EXPECT_EQ(test_sink.sink, "hooks");
  EXPECT_EQ(test_sink.config_path, "c.yaml");
  EXPECT_EQ(ParseCommandLine({"test-sink", "hooks"}, std::string("env.yaml")).config_path,
            "env.yaml");
  EXPECT_EQ(ParseCommandLine({"test-sink", "hooks"}).error, "test-sink needs --config FILE");
  EXPECT_EQ(ParseCommandLine({"test-sink", "-c", "c.yaml"}).error, "test-sink takes one NAME");

  auto replay = ParseCommandLine({"replay", "-c", "c.yaml", "hooks.dead.jsonl", "--sink", "b"});
  EXPECT_EQ(replay.kind, Command::Kind::kReplay);
  EXPECT_EQ(replay.file, "hooks.dead.jsonl");
  EXPECT_EQ(replay.sink, "b");
  EXPECT_EQ(ParseCommandLine({"replay", "-c", "c.yaml"}).error,
            "replay takes one DEAD_LETTER_FILE");
  EXPECT_EQ(ParseCommandLine({"replay", "-c", "c.yaml", "f", "--now"}).error,
            "unknown argument '--now'");
}

TEST(ParseCommandLine, VersionAndHelp) {
  EXPECT_EQ(ParseCommandLine({"--version"}).kind, Command::Kind::kVersion);
  EXPECT_EQ(ParseCommandLine({"--help"}).kind, Command::Kind::kHelp);
  EXPECT_EQ(ParseCommandLine({"-h"}).kind, Command::Kind::kHelp);
  EXPECT_EQ(ParseCommandLine({"--help", "x"}).kind, Command::Kind::kUsageError);
}

}  // namespace
}  // namespace hb
