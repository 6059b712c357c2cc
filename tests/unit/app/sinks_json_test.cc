#include "bridge/app/sinks_json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace hb {
namespace {

TEST(SinksJson, GivesEachSinksStateWithUtcTimesAndNullsForWhatNeverHappened) {
  const WallTime at = std::chrono::system_clock::from_time_t(1'795'000'000);
  SinkStatusReport failing{"hooks", "webhook", "https://******@hooks.example/x?******", {}};
  failing.delivery.state = "failing";
  failing.delivery.last_error = "POST https://******@hooks.example/x?****** failed: refused";
  failing.delivery.last_error_at = at;
  failing.delivery.consecutive_failures = 3;
  failing.delivery.queue_depth = 12;
  failing.delivery.spooled = 2;
  SinkStatusReport fresh{"stdout", "log", "stdout", {}};
  // A peer's invalid UTF-8 in an error is replaced, never thrown on.
  fresh.delivery.last_error = "bad \xFF byte";
  fresh.delivery.last_error_at = at;
  fresh.delivery.last_success = at;
  fresh.delivery.state = "ok";

  const auto document = nlohmann::json::parse(SinksJson({failing, fresh}));
  ASSERT_EQ(document["sinks"].size(), 2U);
  const auto& hooks = document["sinks"][0];
  EXPECT_EQ(hooks["name"], "hooks");
  EXPECT_EQ(hooks["type"], "webhook");
  EXPECT_EQ(hooks["target"], "https://******@hooks.example/x?******");
  EXPECT_EQ(hooks["state"], "failing");
  EXPECT_TRUE(hooks["last_success"].is_null());
  EXPECT_EQ(hooks["last_error"]["message"], failing.delivery.last_error);
  EXPECT_EQ(hooks["last_error"]["time"], "2026-11-18T11:06:40.000Z");
  EXPECT_EQ(hooks["consecutive_failures"], 3);
  EXPECT_EQ(hooks["queue_depth"], 12);
  EXPECT_EQ(hooks["spooled"], 2);
  EXPECT_EQ(document["sinks"][1]["last_success"], "2026-11-18T11:06:40.000Z");
  EXPECT_EQ(document["sinks"][1]["last_error"]["message"], "bad \xEF\xBF\xBD byte");
  EXPECT_TRUE(nlohmann::json::parse(SinksJson({}))["sinks"].empty());
}

}  // namespace
}  // namespace hb
