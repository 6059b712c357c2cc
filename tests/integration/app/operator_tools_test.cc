// `health-bridge test-sink` and `health-bridge replay`, run as an operator
// would, against a real webhook receiver on loopback.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bridge/model/cloud_event.h"
#include "tests/support/http/scripted_http_peer.h"
#include "tests/support/process/bridge_under_test.h"
#include "tests/support/process/child_process.h"
#include "tests/support/sample_events.h"

namespace hb {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;
using test_support::RunResult;
using test_support::RunToCompletion;
using test_support::ScriptedHttpPeer;
using ::testing::HasSubstr;

using test_support::kBridge;

class OperatorToolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("hb-tools-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    config_ = dir_ / "config.yaml";
    std::ofstream(config_) << "sinks:\n"
                           << "  - {name: hooks, type: webhook, url: '" << receiver_.url() << "'}\n"
                           << "  - {name: nowhere, type: webhook, url: 'http://127.0.0.1:1/x',"
                           << " connect_timeout: 200ms}\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  RunResult Run(std::vector<std::string> args) {
    args.insert(args.begin() + 1, {"--config", config_.string()});
    return RunToCompletion(kBridge, args, {}, seconds(60));
  }

  fs::path dir_;
  fs::path config_;
  ScriptedHttpPeer receiver_;
};

TEST_F(OperatorToolsTest, TestSinkSendsOneMarkedEventAndSaysHowItWent) {
  const RunResult sent = Run({"test-sink", "hooks"});
  EXPECT_EQ(sent.exit_code, 0) << sent.out << sent.err;
  EXPECT_THAT(sent.out, ::testing::ContainsRegex("delivered in [0-9]+ ms"));
  ASSERT_EQ(receiver_.Accepted().size(), 1U);
  const auto event = nlohmann::json::parse(receiver_.Accepted()[0].body);
  EXPECT_EQ(event["data"]["service"], "health-bridge-test");
  EXPECT_EQ(event["data"]["meta"]["health_bridge_test"], "true");
  EXPECT_EQ(receiver_.Accepted()[0].Header("webhook-id"), event["id"].get<std::string>());

  const RunResult refused = Run({"test-sink", "nowhere"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.out, HasSubstr("failed (transient"));
  EXPECT_THAT(refused.out, HasSubstr("POST http://127.0.0.1:1/x failed"));

  const RunResult unknown = Run({"test-sink", "hookz"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.out, HasSubstr("no sink named \"hookz\""));
  EXPECT_THAT(unknown.out, HasSubstr("sinks: hooks, nowhere"));
}

TEST_F(OperatorToolsTest, ReplayDeliversDeadLettersAgainAndKeepsWhatStillFails) {
  // Dead letters as a sink writes them: the CloudEvent under "event".
  const CloudEventOptions options;
  const Event first = test_support::InstanceEvent("payments-1", EventType::kInstanceDown, 41);
  const Event second = test_support::InstanceEvent("payments-2", EventType::kInstanceUp, 42);
  const fs::path dead = dir_ / "hooks.dead.jsonl";
  {
    std::ofstream out(dead);
    for (const Event* event : {&first, &second}) {
      out << nlohmann::json{{"sink", "hooks"},
                            {"reason", "HTTP 503"},
                            {"attempts", 12},
                            {"event", nlohmann::json::parse(SerializeCloudEvent(*event, options))}}
                 .dump()
          << "\n";
    }
    out << "{truncated line\n";
  }
  const RunResult replayed = Run({"replay", dead.string()});
  EXPECT_EQ(replayed.exit_code, 1) << "one line could not be replayed";
  EXPECT_THAT(replayed.out, HasSubstr("2 of 3 events from " + dead.string() + " delivered"));
  ASSERT_EQ(receiver_.Accepted().size(), 2U);
  EXPECT_EQ(receiver_.Accepted()[0].body, SerializeCloudEvent(first, options))
      << "delivered again exactly as it was first sent";
  EXPECT_EQ(receiver_.Accepted()[1].Header("webhook-id"), second.id);
  std::ifstream kept(dead.string() + ".failed");
  std::string line;
  ASSERT_TRUE(std::getline(kept, line));
  EXPECT_THAT(line, HasSubstr("not a dead letter"));

  // --sink sends them elsewhere; a sink that refuses keeps them all.
  const RunResult elsewhere = Run({"replay", "--sink", "nowhere", dead.string()});
  EXPECT_EQ(elsewhere.exit_code, 1);
  EXPECT_THAT(elsewhere.out, HasSubstr("0 of 3 events"));
}

}  // namespace
}  // namespace hb
