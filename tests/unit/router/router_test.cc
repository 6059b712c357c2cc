#include "bridge/router/router.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "bridge/model/event_codec.h"
#include "tests/support/dead_letters.h"
#include "tests/support/eventually.h"
#include "tests/support/fake_clock.h"
#include "tests/support/sample_events.h"
#include "tests/support/test_dir.h"
#include "tests/unit/router/recording_sink.h"

namespace hb {
namespace {

using std::chrono::milliseconds;
using test_support::InstanceEvent;
using test_support::RecordingSink;
using test_support::Shared;

constexpr milliseconds kWait{5000};

class RouterTest : public ::testing::Test {
 protected:
  SinkStorage DeadLetters(const std::string& sink) {
    return test_support::DeadLetterStorage(dir_.path(), sink);
  }
  std::vector<nlohmann::json> ReadDeadLetters(const std::string& sink) {
    return test_support::ReadDeadLetters(dir_.path(), sink);
  }

  // Dead letters plus a spool in dir_/spool/<sink>, holding what an
  // earlier router left there.
  SinkStorage Spooled(const std::string& sink, std::uint64_t segment_bytes = 4 << 20,
                      std::uint64_t max_bytes = 256 << 20) {
    SinkStorage storage = DeadLetters(sink);
    SpoolRecovery recovery;
    auto spool = Spool::Open({dir_ / "spool" / sink, max_bytes, segment_bytes}, recovery);
    EXPECT_TRUE(spool.ok()) << spool.status().ToString();
    storage.spool = std::move(spool).value();
    return storage;
  }
  std::size_t SpooledEvents(const std::string& sink) {
    return Spooled(sink).spool->unacknowledged();
  }

  static SinkRoute FastRetries() {
    SinkRoute route;
    route.worker.retry.initial_backoff = milliseconds(1);
    route.worker.retry.max_backoff = milliseconds(5);
    return route;
  }

  SystemClock clock_;
  test_support::TestDir dir_{"router_test"};
};

TEST_F(RouterTest, DeliversOnlyEventsMatchingTheSinkFilter) {
  RecordingSink::Log log;
  Router router(clock_);
  SinkRoute route = FastRetries();
  route.filter.events = {"instance.down", "service.*"};
  route.filter.services = {"pay*"};
  router.AddSink(route, std::make_unique<RecordingSink>("hooks", log), DeadLetters("hooks"));

  auto service_down = InstanceEvent("", EventType::kServiceDown, 9);
  service_down.id = "dc1/payments/9/service.down";
  router.Publish({InstanceEvent("payments-1", EventType::kInstanceUp, 1),
                  InstanceEvent("payments-1", EventType::kInstanceDown, 2),
                  InstanceEvent("orders-1", EventType::kInstanceDown, 3, "orders"), service_down});
  ASSERT_TRUE(log.WaitForAcked(2, kWait));
  router.Shutdown(kWait);
  EXPECT_EQ(log.Acked(), (std::vector<std::string>{"dc1/node-a/payments-1/2/instance.down",
                                                   "dc1/payments/9/service.down"}));
}

TEST_F(RouterTest, RequiredTagsFilterInstanceEventsButNotServiceEvents) {
  RecordingSink::Log log;
  Router router(clock_);
  SinkRoute route = FastRetries();
  route.filter.tags = {"v2"};
  router.AddSink(route, std::make_unique<RecordingSink>("v2-only", log), DeadLetters("v2-only"));

  auto tagged = InstanceEvent("payments-1", EventType::kInstanceDown, 1);
  tagged.tags = {"primary", "v2"};
  auto untagged = InstanceEvent("payments-2", EventType::kInstanceDown, 2);
  untagged.tags = {"v1"};
  auto service_down = InstanceEvent("", EventType::kServiceDown, 3);
  service_down.id = "service-down";
  router.Publish({tagged, untagged, service_down});
  ASSERT_TRUE(log.WaitForAcked(2, kWait));
  router.Shutdown(kWait);
  EXPECT_EQ(log.Acked(), (std::vector<std::string>{tagged.id, "service-down"}));
}

TEST_F(RouterTest, SilentEventsReachOnlySinksThatHoldState) {
  RecordingSink::Log notify_log;
  RecordingSink::Log state_log;
  Router router(clock_);
  router.AddSink(FastRetries(), std::make_unique<RecordingSink>("notify", notify_log),
                 DeadLetters("notify"));
  router.AddSink(FastRetries(),
                 std::make_unique<RecordingSink>("metrics", state_log, nullptr, 1, true),
                 DeadLetters("metrics"));
  auto initial = InstanceEvent("payments-1", EventType::kInstanceUp, 1);
  initial.silent = true;
  auto change = InstanceEvent("payments-1", EventType::kInstanceDown, 2);
  router.Publish({initial, change});
  ASSERT_TRUE(state_log.WaitForAcked(2, kWait));
  ASSERT_TRUE(notify_log.WaitForAcked(1, kWait));
  router.Shutdown(kWait);
  EXPECT_EQ(notify_log.Acked(), std::vector<std::string>{change.id});
  EXPECT_EQ(state_log.Acked(), (std::vector<std::string>{initial.id, change.id}));
}

TEST_F(RouterTest, RetriesTransientFailuresUntilAcknowledged) {
  RecordingSink::Log log;
  Router router(clock_);
  router.AddSink(FastRetries(),
                 std::make_unique<RecordingSink>("flaky", log,
                                                 [](const Event&, int attempt) {
                                                   return attempt < 4 ? DeliveryResult::Retry("503")
                                                                      : DeliveryResult::Ok();
                                                 }),
                 DeadLetters("flaky"));
  auto event = InstanceEvent("payments-1", EventType::kInstanceDown, 7);
  router.Publish({event});
  ASSERT_TRUE(log.WaitForAcked(1, kWait));
  router.Shutdown(kWait);
  EXPECT_EQ(log.Acked(), std::vector<std::string>{event.id});
  EXPECT_EQ(log.attempts.size(), 4u);
  EXPECT_TRUE(ReadDeadLetters("flaky").empty());
}

TEST_F(RouterTest, SinkStatusesShowAFailingDestinationAndItsRecovery) {
  RecordingSink::Log log;
  std::atomic<bool> refusing{true};
  Router router(clock_);
  SinkRoute route = FastRetries();
  route.type = "webhook";
  route.target = "http://******@hooks.example/consul";
  router.AddSink(std::move(route),
                 std::make_unique<RecordingSink>("hooks", log,
                                                 [&refusing](const Event&, int) {
                                                   return refusing ? DeliveryResult::Retry(
                                                                         "POST ... failed: refused")
                                                                   : DeliveryResult::Ok();
                                                 }),
                 DeadLetters("hooks"));
  auto status = [&router] {
    const auto statuses = router.SinkStatuses();
    EXPECT_EQ(statuses.size(), 1U);
    return statuses.at(0);
  };
  const SinkStatusReport before = status();
  EXPECT_EQ(before.name, "hooks");
  EXPECT_EQ(before.type, "webhook");
  EXPECT_EQ(before.target, "http://******@hooks.example/consul");
  EXPECT_EQ(before.delivery.state, "starting");
  EXPECT_FALSE(before.delivery.last_error_at);

  router.Publish({InstanceEvent("payments-1", EventType::kInstanceDown, 7)});
  SinkStatusReport failing;
  ASSERT_TRUE(test_support::Eventually(
      [&] {
        failing = status();
        return failing.delivery.state == "failing";
      },
      kWait));
  EXPECT_EQ(failing.delivery.last_error, "POST ... failed: refused");
  EXPECT_TRUE(failing.delivery.last_error_at);
  EXPECT_FALSE(failing.delivery.last_success);
  EXPECT_GE(failing.delivery.consecutive_failures, 1);
  EXPECT_EQ(failing.delivery.queue_depth, 1U);

  refusing = false;
  ASSERT_TRUE(log.WaitForAcked(1, kWait));
  SinkStatusReport recovered;
  ASSERT_TRUE(test_support::Eventually(
      [&] {
        recovered = status();
        return recovered.delivery.state == "ok";
      },
      kWait));
  EXPECT_TRUE(recovered.delivery.last_success);
  EXPECT_EQ(recovered.delivery.consecutive_failures, 0);
  EXPECT_EQ(recovered.delivery.queue_depth, 0U);
  EXPECT_EQ(recovered.delivery.last_error, "POST ... failed: refused") << "the last error stays";
  router.Shutdown(kWait);
}

// The review's case: 503 with Retry-After a day, max_age a moment. The
// attempted event and every event queued behind the closed gate reach the
// dead-letter file at their max_age, not a day later, and the destination
// is not asked again before the day it named.
TEST_F(RouterTest, MaxAgeHoldsWhateverRetryAfterTheDestinationAsksFor) {
  RecordingSink::Log log;
  Router router(clock_);
  SinkRoute route = FastRetries();
  route.worker.retry.max_age = milliseconds(300);
  router.AddSink(
      route,
      std::make_unique<RecordingSink>(
          "slow", log,
          [](const Event&, int) { return DeliveryResult::Retry("503", std::chrono::hours(24)); }),
      DeadLetters("slow"));
  std::vector<Event> events;
  for (int i = 1; i <= 5; ++i) {
    events.push_back(InstanceEvent("payments-" + std::to_string(i), EventType::kInstanceDown, 7));
  }
  router.Publish(events);
  ASSERT_TRUE(test_support::Eventually([&] { return ReadDeadLetters("slow").size() >= 5; }, kWait))
      << "still waiting for the destination's Retry-After";
  // The attempted one and those that waited behind the gate it closed
  // expire together: the queued ones first.
  std::map<std::string, nlohmann::json> dead;
  for (const auto& line : ReadDeadLetters("slow")) dead[line["event"]["id"]] = line;
  ASSERT_EQ(dead.size(), 5U);
  const std::string attempted = events.front().id;
  EXPECT_EQ(dead[attempted]["reason"],
            "expired: not delivered within max_age (300ms); gave up after 1 attempts: 503");
  EXPECT_EQ(dead[attempted]["attempts"], 1);
  for (const Event& event : events) {
    if (event.id == attempted) continue;
    EXPECT_EQ(dead[event.id]["reason"],
              "expired: not delivered within max_age (300ms), never attempted");
    EXPECT_EQ(dead[event.id]["attempts"], 0);
  }
  {
    std::lock_guard lock(log.mutex);
    EXPECT_EQ(log.attempts.size(), 1U) << "asked again before the Retry-After it named";
  }
  EXPECT_EQ(router.Shutdown(kWait), 0U) << "nothing is left queued";
}

// max_age counts from the queue, not from a first attempt: later events of
// an instance whose head waits out a long backoff expire with it, though
// never attempted. The clock is a fake one: the queue is checked whenever
// the worker wakes, here for a newer event.
TEST_F(RouterTest, QueuedEventsBehindAStuckHeadExpireAtMaxAgeNeverAttempted) {
  test_support::FakeClock fake;
  RecordingSink::Log log;
  Router router(fake);
  SinkRoute route;
  route.worker.retry.initial_backoff = std::chrono::hours(1);
  route.worker.retry.max_backoff = std::chrono::hours(1);
  route.worker.retry.max_age = std::chrono::minutes(30);
  router.AddSink(
      route,
      std::make_unique<RecordingSink>(
          "stuck", log, [](const Event&, int) { return DeliveryResult::Retry("timed out"); }),
      DeadLetters("stuck"));
  const Event head = InstanceEvent("payments-1", EventType::kInstanceDown, 1);
  const Event behind = InstanceEvent("payments-1", EventType::kInstanceUp, 2);
  const Event other = InstanceEvent("payments-2", EventType::kInstanceDown, 3);
  router.Publish({head, behind, other});
  ASSERT_TRUE(test_support::Eventually(
      [&] {
        std::lock_guard lock(log.mutex);
        return !log.attempts.empty();
      },
      kWait));
  fake.Advance(std::chrono::minutes(30));
  const Event fresh = InstanceEvent("payments-3", EventType::kInstanceDown, 4);
  router.Publish({fresh});
  ASSERT_TRUE(
      test_support::Eventually([&] { return ReadDeadLetters("stuck").size() >= 3; }, kWait));
  std::map<std::string, std::string> reasons;
  for (const auto& line : ReadDeadLetters("stuck")) {
    reasons[line["event"]["id"].get<std::string>()] = line["reason"].get<std::string>();
  }
  EXPECT_EQ(reasons.size(), 3U);
  EXPECT_EQ(reasons[behind.id], "expired: not delivered within max_age (30m), never attempted");
  EXPECT_EQ(reasons[other.id], "expired: not delivered within max_age (30m), never attempted");
  EXPECT_THAT(reasons[head.id], ::testing::HasSubstr("gave up after 1 attempts: timed out"));
  EXPECT_FALSE(reasons.contains(fresh.id)) << "queued just now";
  router.Shutdown(milliseconds(0));
}

// A full queue overflows to the spool; the spilled events expire too, once
// the expired ones ahead of them make room to read them back.
TEST_F(RouterTest, SpilledEventsExpireAtMaxAgeWithTheQueuedOnes) {
  RecordingSink::Log log;
  Router router(clock_);
  SinkRoute route = FastRetries();
  route.worker.queue_capacity = 2;
  route.worker.retry.max_age = milliseconds(300);
  router.AddSink(
      route,
      std::make_unique<RecordingSink>(
          "slow", log,
          [](const Event&, int) { return DeliveryResult::Retry("503", std::chrono::hours(24)); }),
      Spooled("slow"));
  std::vector<Event> events;
  for (int i = 1; i <= 10; ++i) {
    events.push_back(InstanceEvent("payments-" + std::to_string(i), EventType::kInstanceDown, 7));
  }
  router.Publish(events);
  ASSERT_TRUE(
      test_support::Eventually([&] { return ReadDeadLetters("slow").size() >= 10; }, kWait));
  for (const auto& line : ReadDeadLetters("slow")) {
    EXPECT_THAT(line["reason"].get<std::string>(),
                ::testing::HasSubstr("expired: not delivered within max_age (300ms)"));
  }
  EXPECT_EQ(router.Shutdown(kWait), 0U);
  EXPECT_EQ(SpooledEvents("slow"), 0U) << "every expired event was acknowledged in the spool";
}

// The spool stores when each event was queued: an event spooled by an
// earlier run keeps its age (a restart does not reset max_age), and a
// record written before that was stored counts from the restart. The
// fake clock's steady time starts at its epoch, as after a reboot: an age
// longer than the steady clock has run still counts in full.
TEST_F(RouterTest, SpooledEventsKeepTheirAgeAcrossARestart) {
  const Event stale = InstanceEvent("payments-1", EventType::kInstanceDown, 1);
  const Event recent = InstanceEvent("payments-2", EventType::kInstanceDown, 2);
  const Event legacy = InstanceEvent("payments-3", EventType::kInstanceDown, 3);
  test_support::FakeClock fake;
  {
    SinkStorage storage = Spooled("hooks");
    ASSERT_TRUE(
        storage.spool->Append(EncodeEvent(stale, fake.WallNow() - std::chrono::hours(2))).ok());
    ASSERT_TRUE(
        storage.spool->Append(EncodeEvent(recent, fake.WallNow() - std::chrono::minutes(1))).ok());
    ASSERT_TRUE(storage.spool->Append(EncodeEvent(legacy)).ok());
  }
  RecordingSink::Log log;
  Router router(fake);
  SinkRoute route = FastRetries();
  route.worker.retry.max_age = std::chrono::hours(1);
  router.AddSink(route, std::make_unique<RecordingSink>("hooks", log), Spooled("hooks"));
  ASSERT_TRUE(log.WaitForAcked(2, kWait));
  router.Shutdown(kWait);
  EXPECT_EQ(log.Acked(), (std::vector<std::string>{recent.id, legacy.id}));
  const auto dead = ReadDeadLetters("hooks");
  ASSERT_EQ(dead.size(), 1U);
  EXPECT_EQ(dead[0]["event"]["id"], stale.id);
  EXPECT_EQ(dead[0]["reason"], "expired: not delivered within max_age (1h), never attempted");
  EXPECT_EQ(SpooledEvents("hooks"), 0U);
}

TEST_F(RouterTest, KeepsPerInstanceOrderWhileAnEarlierEventIsRetried) {
  RecordingSink::Log log;
  Router router(clock_);
  // The first event of payments-1 fails until every event of the healthy
  // payments-2 has been delivered: were payments-2 held back behind it, the
  // retries would never end and the wait below would time out. Counting
  // instead of timing keeps the test exact on a loaded machine.
  std::atomic<int> delivered_p2 = 0;
  router.AddSink(FastRetries(),
                 std::make_unique<RecordingSink>(
                     "ordered", log,
                     [&](const Event& event, int attempt) {
                       if (event.instance_id == "payments-2") {
                         ++delivered_p2;
                       } else if (event.consul_index == 1 && (attempt <= 3 || delivered_p2 < 4)) {
                         return DeliveryResult::Retry("timeout");
                       }
                       return DeliveryResult::Ok();
                     },
                     /*max_batch=*/8),
                 DeadLetters("ordered"));
  std::vector<Event> events;
  for (std::uint64_t index = 1; index <= 4; ++index) {
    events.push_back(InstanceEvent("payments-1", EventType::kInstanceStatusChanged, index));
    events.push_back(InstanceEvent("payments-2", EventType::kInstanceStatusChanged, index));
  }
  router.Publish(events);
  ASSERT_TRUE(log.WaitForAcked(8, kWait));
  router.Shutdown(kWait);

  std::map<std::string, std::vector<std::string>> by_instance;
  for (const auto& id : log.Acked()) by_instance[id.substr(11, 10)].push_back(id);
  for (const auto& [instance, ids] : by_instance) {
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end())) << instance;
    EXPECT_EQ(ids.size(), 4u) << instance;
  }
  EXPECT_TRUE(ReadDeadLetters("ordered").empty());
}

TEST_F(RouterTest, RejectedEventGoesToTheDeadLetterFileWithItsReason) {
  RecordingSink::Log log;
  Router router(clock_);
  router.AddSink(FastRetries(),
                 std::make_unique<RecordingSink>("strict", log,
                                                 [](const Event& event, int) {
                                                   return event.consul_index == 1
                                                              ? DeliveryResult::Reject("HTTP 400")
                                                              : DeliveryResult::Ok();
                                                 }),
                 DeadLetters("strict"));
  auto bad = InstanceEvent("payments-1", EventType::kInstanceDown, 1);
  auto good = InstanceEvent("payments-1", EventType::kInstanceUp, 2);
  router.Publish({bad, good});
  ASSERT_TRUE(log.WaitForAcked(1, kWait));
  router.Shutdown(kWait);
  EXPECT_EQ(log.Acked(), std::vector<std::string>{good.id});
  const auto dead = ReadDeadLetters("strict");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0]["event"]["id"], bad.id);
  EXPECT_EQ(dead[0]["sink"], "strict");
  EXPECT_EQ(dead[0]["reason"], "rejected: HTTP 400");
}

TEST_F(RouterTest, GivesUpAfterMaxAttemptsAndDeadLetters) {
  RecordingSink::Log log;
  Router router(clock_);
  SinkRoute route = FastRetries();
  route.worker.retry.max_attempts = 3;
  router.AddSink(
      route,
      std::make_unique<RecordingSink>(
          "down", log, [](const Event&, int) { return DeliveryResult::Retry("refused"); }),
      DeadLetters("down"));
  auto event = InstanceEvent("payments-1", EventType::kInstanceDown, 1);
  router.Publish({event});
  EXPECT_EQ(router.Shutdown(kWait), 0u);
  EXPECT_EQ(log.attempts.size(), 3u);
  const auto dead = ReadDeadLetters("down");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0]["reason"], "gave up after 3 attempts: refused");
  EXPECT_EQ(dead[0]["attempts"], 3);
}

TEST_F(RouterTest, SlowSinkDoesNotHoldBackOtherSinks) {
  RecordingSink::Log stuck_log;
  stuck_log.release = false;  // its Deliver() hangs until released
  RecordingSink::Log fast_log;
  Router router(clock_);
  SinkRoute small_queue = FastRetries();
  small_queue.worker.queue_capacity = 2;
  router.AddSink(small_queue, std::make_unique<RecordingSink>("stuck", stuck_log),
                 Spooled("stuck"));
  router.AddSink(FastRetries(), std::make_unique<RecordingSink>("fast", fast_log),
                 DeadLetters("fast"));
  for (std::uint64_t index = 1; index <= 50; ++index) {
    router.Publish({InstanceEvent("payments-" + std::to_string(index % 5),
                                  EventType::kInstanceStatusChanged, index)});
  }
  EXPECT_TRUE(fast_log.WaitForAcked(50, kWait));
  stuck_log.SetRelease(true);
  EXPECT_TRUE(stuck_log.WaitForAcked(50, kWait));
  router.Shutdown(kWait);
}

TEST_F(RouterTest, WithoutASpoolAFullQueueDeadLettersAtOnceWithTheReason) {
  RecordingSink::Log log;
  log.release = false;  // the sink hangs: Publish() must not wait for it
  Router router(clock_);
  SinkRoute route = FastRetries();
  route.worker.queue_capacity = 2;
  router.AddSink(route, std::make_unique<RecordingSink>("tiny", log), DeadLetters("tiny"));
  std::vector<Event> events;
  for (std::uint64_t index = 1; index <= 500; ++index) {
    events.push_back(
        InstanceEvent("payments-" + std::to_string(index), EventType::kInstanceDown, index));
  }
  router.Publish(events);
  // The hung sink holds at most one event and its queue two.
  EXPECT_GE(ReadDeadLetters("tiny").size(), events.size() - 3);
  log.SetRelease(true);
  router.Shutdown(kWait);
  // Every event is accounted for: acknowledged or in the dead-letter file.
  const auto dead = ReadDeadLetters("tiny");
  EXPECT_EQ(log.Acked().size() + dead.size(), events.size());
  ASSERT_FALSE(dead.empty());
  EXPECT_EQ(dead[0]["reason"],
            "queue full (capacity 2) and no spool to overflow to (state.dir is not set)");
}

TEST_F(RouterTest, WithoutASpoolSilentEventsForAStatefulSinkAreQueuedPastTheCapacity) {
  RecordingSink::Log log;
  log.release = false;
  Router router(clock_);
  SinkRoute tiny = FastRetries();
  tiny.worker.queue_capacity = 2;
  router.AddSink(tiny,
                 std::make_unique<RecordingSink>("metrics", log, nullptr, 1, /*wants_silent=*/true),
                 DeadLetters("metrics"));
  std::vector<Event> view;
  for (std::uint64_t index = 1; index <= 50; ++index) {
    view.push_back(InstanceEvent("i" + std::to_string(index), EventType::kInstanceUp, index));
    view.back().silent = true;
  }
  router.Publish(view);
  log.SetRelease(true);
  ASSERT_TRUE(log.WaitForAcked(view.size(), kWait)) << "a restated state is never dropped";
  router.Shutdown(kWait);
  EXPECT_TRUE(ReadDeadLetters("metrics").empty());
}

TEST_F(RouterTest, AFullQueueOverflowsToTheSpoolAndIsPagedBackInOrder) {
  RecordingSink::Log stuck_log;
  stuck_log.release = false;  // hangs until released
  RecordingSink::Log healthy_log;
  Router router(clock_);
  SinkRoute tiny = FastRetries();
  tiny.worker.queue_capacity = 2;
  router.AddSink(tiny, std::make_unique<RecordingSink>("stuck", stuck_log, nullptr, 3),
                 Spooled("stuck", /*segment_bytes=*/4096));
  router.AddSink(tiny, std::make_unique<RecordingSink>("healthy", healthy_log),
                 Spooled("healthy", 4096));
  // A dozen answers, each with many events of a few instances.
  std::vector<std::string> ids;
  std::uint64_t index = 0;
  for (int answer = 0; answer < 12; ++answer) {
    std::vector<Event> events;
    for (int i = 0; i < 50; ++i) {
      events.push_back(InstanceEvent("payments-" + std::to_string(i % 7),
                                     i % 2 == 0 ? EventType::kInstanceDown : EventType::kInstanceUp,
                                     ++index));
      ids.push_back(events.back().id);
    }
    router.Publish(std::move(events));
  }
  ASSERT_TRUE(healthy_log.WaitForAcked(ids.size(), kWait)) << "the stuck sink held nothing back";
  EXPECT_EQ(healthy_log.Acked(), ids);
  stuck_log.SetRelease(true);
  ASSERT_TRUE(stuck_log.WaitForAcked(ids.size(), kWait));
  EXPECT_EQ(router.Shutdown(kWait), 0U);
  // One instance at a time per batch keeps the order of each instance; a
  // single queue of pages keeps the overall order too.
  EXPECT_EQ(stuck_log.Acked(), ids);
  EXPECT_TRUE(ReadDeadLetters("stuck").empty()) << "overflow is not loss";
  EXPECT_EQ(SpooledEvents("stuck"), 0U);
}

TEST_F(RouterTest, PastAFullSpoolEventsAreDeadLetteredAtOnceWithTheReason) {
  RecordingSink::Log log;
  log.release = false;  // hangs: everything waits
  Router router(clock_);
  SinkRoute tiny = FastRetries();
  tiny.worker.queue_capacity = 2;
  router.AddSink(tiny, std::make_unique<RecordingSink>("small", log),
                 Spooled("small", /*segment_bytes=*/1024, /*max_bytes=*/4096));
  std::vector<Event> events;
  for (std::uint64_t index = 1; index <= 100; ++index) {
    events.push_back(InstanceEvent("i" + std::to_string(index % 5), EventType::kInstanceUp, index));
  }
  router.Publish(events);
  const auto dead = ReadDeadLetters("small");
  ASSERT_FALSE(dead.empty()) << "4 KiB holds fewer than 100 events";
  EXPECT_NE(dead.front()["reason"].get<std::string>().find("is full (max_bytes 4096)"),
            std::string::npos)
      << dead.front()["reason"];
  log.SetRelease(true);
  router.Shutdown(kWait);
  // The rest, spooled, is delivered: nothing is lost, nothing counted twice.
  EXPECT_EQ(log.Acked().size() + dead.size(), events.size());
}

TEST_F(RouterTest, ShutdownDeadLettersWhatCouldNotBeDelivered) {
  RecordingSink::Log log;
  Router router(clock_);
  SinkRoute route;
  route.worker.retry.initial_backoff = std::chrono::minutes(10);
  router.AddSink(
      route,
      std::make_unique<RecordingSink>(
          "offline", log, [](const Event&, int) { return DeliveryResult::Retry("refused"); }),
      DeadLetters("offline"));
  router.Publish({InstanceEvent("payments-1", EventType::kInstanceDown, 1),
                  InstanceEvent("payments-1", EventType::kInstanceDeregistered, 2)});
  EXPECT_EQ(router.Shutdown(milliseconds(100)), 2u);
  const auto dead = ReadDeadLetters("offline");
  ASSERT_EQ(dead.size(), 2u);
  EXPECT_EQ(dead[0]["reason"], "undelivered at shutdown");
}

// Hangs in Deliver() until interrupted, like a Kafka batch waiting for a
// dead cluster.
class HangingSink final : public Sink {
 public:
  std::string_view Name() const override { return "hanging"; }
  void Deliver(std::span<const EventPtr>, std::span<DeliveryResult> results) noexcept override {
    std::unique_lock lock(mutex_);
    delivering_ = true;
    changed_.notify_all();
    changed_.wait(lock, [this] { return interrupted_; });
    for (auto& result : results) result = DeliveryResult::Retry("interrupted");
  }
  bool Shutdown(milliseconds) noexcept override { return true; }
  void Interrupt() noexcept override {
    std::lock_guard lock(mutex_);
    interrupted_ = true;
    changed_.notify_all();
  }
  void WaitUntilDelivering() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return delivering_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool delivering_ = false;
  bool interrupted_ = false;
};

TEST_F(RouterTest, ShutdownInterruptsADeliveryThatOutlastsTheGracePeriod) {
  Router router(clock_);
  auto sink = std::make_unique<HangingSink>();
  HangingSink& hanging = *sink;
  router.AddSink(SinkRoute{}, std::move(sink), DeadLetters("hanging"));
  router.Publish({InstanceEvent("payments-1", EventType::kInstanceDown, 1)});
  hanging.WaitUntilDelivering();
  // Without the interrupt this would never return.
  EXPECT_EQ(router.Shutdown(milliseconds(100)), 1u);
  const auto dead = ReadDeadLetters("hanging");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0]["reason"], "undelivered at shutdown");
}

TEST_F(RouterTest, RemovedSinkStopsReceivingWhileOthersContinue) {
  RecordingSink::Log kept_log;
  RecordingSink::Log removed_log;
  Router router(clock_);
  router.AddSink(FastRetries(), std::make_unique<RecordingSink>("kept", kept_log),
                 DeadLetters("kept"));
  router.AddSink(FastRetries(), std::make_unique<RecordingSink>("removed", removed_log),
                 DeadLetters("removed"));
  router.Publish({InstanceEvent("payments-1", EventType::kInstanceDown, 1)});
  ASSERT_TRUE(removed_log.WaitForAcked(1, kWait));
  EXPECT_EQ(router.RemoveSink("removed", kWait), 0U);
  EXPECT_EQ(router.RemoveSink("removed", kWait), std::nullopt);
  router.Publish({InstanceEvent("payments-1", EventType::kInstanceUp, 2)});
  ASSERT_TRUE(kept_log.WaitForAcked(2, kWait));
  router.Shutdown(kWait);
  EXPECT_EQ(removed_log.Acked().size(), 1u);
}

TEST_F(RouterTest, SpooledEventsLeftAtShutdownResumeInOrderOnTheNextStart) {
  const auto down = [](const Event&, int) { return DeliveryResult::Retry("connection refused"); };
  {
    RecordingSink::Log log;
    Router router(clock_);
    router.AddSink(FastRetries(), std::make_unique<RecordingSink>("hooks", log, down),
                   Spooled("hooks"));
    router.Publish({InstanceEvent("a", EventType::kInstanceUp, 1),
                    InstanceEvent("b", EventType::kInstanceUp, 2),
                    InstanceEvent("a", EventType::kInstanceDown, 3),
                    InstanceEvent("b", EventType::kInstanceDown, 4)});
    EXPECT_EQ(router.Shutdown(milliseconds(200)), 4U);
  }
  EXPECT_TRUE(ReadDeadLetters("hooks").empty()) << "kept in the spool, not dead-lettered";

  RecordingSink::Log log;
  Router router(clock_);
  SinkStorage storage = Spooled("hooks");
  ASSERT_EQ(storage.spool->unacknowledged(), 4U);
  router.AddSink(FastRetries(), std::make_unique<RecordingSink>("hooks", log), std::move(storage));
  router.Publish({InstanceEvent("a", EventType::kInstanceUp, 5)});
  ASSERT_TRUE(log.WaitForAcked(5, kWait));
  router.Shutdown(kWait);
  const auto acked = log.Acked();
  const auto position = [&](const std::string& id) {
    return std::find(acked.begin(), acked.end(), id) - acked.begin();
  };
  EXPECT_LT(position("dc1/node-a/a/1/instance.up"), position("dc1/node-a/a/3/instance.down"));
  EXPECT_LT(position("dc1/node-a/a/3/instance.down"), position("dc1/node-a/a/5/instance.up"));
  EXPECT_LT(position("dc1/node-a/b/2/instance.up"), position("dc1/node-a/b/4/instance.down"));

  EXPECT_EQ(SpooledEvents("hooks"), 0U) << "every delivered event was acknowledged in the spool";
}

TEST_F(RouterTest, ReplacingASinkHandsItsQueuedEventsToTheNewOneInOrder) {
  RecordingSink::Log old_log;
  RecordingSink::Log new_log;
  Router router(clock_);
  router.AddSink(
      FastRetries(),
      std::make_unique<RecordingSink>(
          "hooks", old_log, [](const Event&, int) { return DeliveryResult::Retry("HTTP 503"); }),
      Spooled("hooks"));
  router.Publish({InstanceEvent("a", EventType::kInstanceUp, 1),
                  InstanceEvent("a", EventType::kInstanceDown, 2)});
  ASSERT_TRUE(router.ReplaceSink("hooks", FastRetries(),
                                 std::make_unique<RecordingSink>("hooks", new_log)));
  EXPECT_FALSE(router.ReplaceSink("nobody", FastRetries(),
                                  std::make_unique<RecordingSink>("nobody", new_log)));
  router.Publish({InstanceEvent("a", EventType::kInstanceUp, 3)});
  ASSERT_TRUE(new_log.WaitForAcked(3, kWait));
  router.Shutdown(kWait);
  EXPECT_EQ(new_log.Acked(),
            (std::vector<std::string>{"dc1/node-a/a/1/instance.up", "dc1/node-a/a/2/instance.down",
                                      "dc1/node-a/a/3/instance.up"}));
  EXPECT_TRUE(ReadDeadLetters("hooks").empty());
}

TEST_F(RouterTest, ARemovedSpooledSinkKeepsWhatItHasForTheSinkAddedBackUnderItsName) {
  RecordingSink::Log log;
  Router router(clock_);
  router.AddSink(FastRetries(),
                 std::make_unique<RecordingSink>(
                     "gone", log, [](const Event&, int) { return DeliveryResult::Retry("down"); }),
                 Spooled("gone"));
  router.Publish({InstanceEvent("a", EventType::kInstanceDown, 1)});
  EXPECT_EQ(router.RemoveSink("gone", milliseconds(100)), 1U);
  EXPECT_TRUE(ReadDeadLetters("gone").empty()) << "nothing undelivered is thrown away";
  // The reload is undone: the same name, a spool read anew.
  RecordingSink::Log back;
  router.AddSink(FastRetries(), std::make_unique<RecordingSink>("gone", back), Spooled("gone"));
  ASSERT_TRUE(back.WaitForAcked(1, kWait));
  EXPECT_EQ(back.Acked()[0], "dc1/node-a/a/1/instance.down");
  router.Shutdown(kWait);
}

// The README's memory bound, counted: whatever the backlog, a sink holds in
// memory at most its queue capacity, one batch being delivered and one
// retrying event per instance; the rest waits in the spool.
TEST_F(RouterTest, MemoryHoldsAtMostTheQueueABatchAndOneRetryPerInstanceWhateverTheBacklog) {
  constexpr std::size_t kCapacity = 16;
  constexpr std::size_t kBatch = 4;
  constexpr std::size_t kInstances = 5;
  constexpr std::size_t kBound = kCapacity + kBatch + kInstances;
  std::atomic<SinkWorker*> observed{nullptr};
  std::atomic<std::size_t> peak{0};
  auto note = [&] {
    if (SinkWorker* worker = observed.load()) {
      std::size_t now = worker->InMemory();
      std::size_t seen = peak.load();
      while (now > seen && !peak.compare_exchange_weak(seen, now)) {
      }
    }
  };
  RecordingSink::Log log;
  SinkStorage storage = Spooled("bounded", /*segment_bytes=*/16 << 10);
  SinkWorkerOptions options;
  options.queue_capacity = kCapacity;
  options.retry.initial_backoff = milliseconds(1);
  options.retry.max_backoff = milliseconds(2);
  SinkWorker worker(options,
                    std::make_unique<RecordingSink>(
                        "bounded", log,
                        [&](const Event&, int attempt) {
                          note();
                          // Every event fails twice: retries pile up too.
                          return attempt <= 2 ? DeliveryResult::Retry("busy")
                                              : DeliveryResult::Ok();
                        },
                        kBatch),
                    storage, clock_, nullptr);
  observed = &worker;
  constexpr std::size_t kEvents = 3000;
  std::size_t most_waiting = 0;
  for (std::size_t sent = 0; sent < kEvents; sent += 100) {
    std::vector<EventPtr> chunk;
    for (std::size_t i = sent; i < sent + 100; ++i) {
      chunk.push_back(Shared(InstanceEvent("payments-" + std::to_string(i % kInstances),
                                           EventType::kInstanceUp, i + 1)));
    }
    EXPECT_EQ(worker.Enqueue(chunk), chunk.size());
    note();
    most_waiting = std::max(most_waiting, worker.QueueDepth());
  }
  ASSERT_TRUE(log.WaitForAcked(kEvents, kWait * 4));
  EXPECT_EQ(worker.Shutdown(kWait), 0U);
  EXPECT_GT(most_waiting, kBound) << "the backlog outgrew memory: the test proves nothing";
  EXPECT_LE(peak.load(), kBound);
  EXPECT_EQ(storage.spool->unacknowledged(), 0U);
}

// Random answers, random capacities and batch sizes, random failures and
// restarts: every event is acknowledged or dead-lettered (never lost), and
// each instance's acknowledged events come in publication order.
TEST_F(RouterTest, RandomizedOverflowRestartsAndFailuresKeepOrderAndLoseNothing) {
  for (unsigned seed = 1; seed <= 12; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    const std::string name = "random" + std::to_string(seed);
    RecordingSink::Log log;
    std::vector<std::string> published;
    std::set<std::string> rejected;
    std::mutex rejected_mutex;
    std::uint64_t index = 0;
    const int restarts = 1 + static_cast<int>(rng() % 3);
    for (int life = 0; life <= restarts; ++life) {
      Router router(clock_);
      SinkRoute route = FastRetries();
      route.worker.queue_capacity = 1 + rng() % 6;
      std::mt19937 sink_rng(rng());
      const std::size_t batch = 1 + rng() % 4;
      router.AddSink(route,
                     std::make_unique<RecordingSink>(
                         name, log,
                         [&, sink_rng](const Event& event, int) mutable {
                           const unsigned roll = sink_rng() % 10;
                           if (roll < 4) return DeliveryResult::Retry("flaky");
                           if (roll == 4) {
                             std::lock_guard lock(rejected_mutex);
                             rejected.insert(event.id);
                             return DeliveryResult::Reject("bad event");
                           }
                           return DeliveryResult::Ok();
                         },
                         batch),
                     Spooled(name, /*segment_bytes=*/1024));
      const int answers = 1 + static_cast<int>(rng() % 6);
      for (int answer = 0; answer < answers; ++answer) {
        std::vector<Event> events;
        const int count = 1 + static_cast<int>(rng() % 40);
        for (int i = 0; i < count; ++i) {
          events.push_back(InstanceEvent(
              "i" + std::to_string(rng() % 4),
              rng() % 2 ? EventType::kInstanceUp : EventType::kInstanceDown, ++index));
          published.push_back(events.back().id);
        }
        router.Publish(std::move(events));
      }
      // The last life drains everything; the others stop midway.
      router.Shutdown(life == restarts ? kWait * 4 : milliseconds(rng() % 20));
    }
    if (SpooledEvents(name) != 0) {
      // Still flaky at the very end: one more life with a healthy sink.
      Router router(clock_);
      router.AddSink(FastRetries(), std::make_unique<RecordingSink>(name, log), Spooled(name));
      router.Shutdown(kWait * 4);
    }
    EXPECT_EQ(SpooledEvents(name), 0U);
    const std::vector<std::string> acked = log.Acked();
    std::set<std::string> acked_set(acked.begin(), acked.end());
    std::set<std::string> dead;
    for (const auto& line : ReadDeadLetters(name))
      dead.insert(line["event"]["id"].get<std::string>());
    for (const auto& id : published) {
      EXPECT_TRUE(acked_set.contains(id) || dead.contains(id)) << id << " was lost";
    }
    EXPECT_EQ(dead, rejected) << "only rejected events are dead-lettered";
    // Per instance, first acknowledgements in publication order.
    std::map<std::string, std::size_t> position;
    for (std::size_t i = 0; i < published.size(); ++i) position[published[i]] = i;
    std::map<std::string, std::size_t> last_by_instance;
    std::set<std::string> seen;
    for (const auto& id : acked) {
      if (!seen.insert(id).second) continue;
      const std::string instance = id.substr(0, id.find('/', id.find('/', 4) + 1));
      const std::size_t at = position.at(id);
      auto [it, first] = last_by_instance.emplace(instance, at);
      if (!first) {
        EXPECT_LT(it->second, at) << id << " overtook an earlier event of its instance";
        it->second = at;
      }
    }
  }
}

TEST_F(RouterTest, ReplacingAnOverflowingSinkKeepsItsSpilledEventsInOrder) {
  RecordingSink::Log old_log;
  old_log.release = false;
  RecordingSink::Log new_log;
  Router router(clock_);
  SinkRoute tiny = FastRetries();
  tiny.worker.queue_capacity = 2;
  router.AddSink(tiny, std::make_unique<RecordingSink>("hooks", old_log), Spooled("hooks"));
  std::vector<Event> events;
  std::vector<std::string> ids;
  for (std::uint64_t index = 1; index <= 40; ++index) {
    events.push_back(InstanceEvent("a", EventType::kInstanceUp, index));
    ids.push_back(events.back().id);
  }
  router.Publish(events);
  std::thread release([&] { old_log.SetRelease(true); });
  ASSERT_TRUE(router.ReplaceSink("hooks", tiny, std::make_unique<RecordingSink>("hooks", new_log)));
  release.join();
  router.Publish({InstanceEvent("a", EventType::kInstanceDown, 41)});
  ids.push_back("dc1/node-a/a/41/instance.down");
  ASSERT_TRUE(new_log.WaitForAcked(1, kWait));
  router.Shutdown(kWait);
  // What the old sink acknowledged, then the rest, in order.
  std::vector<std::string> all = old_log.Acked();
  const auto more = new_log.Acked();
  all.insert(all.end(), more.begin(), more.end());
  EXPECT_EQ(all, ids);
}

TEST_F(RouterTest, RemovingAnOverflowingSinkKeepsItsSpilledEventsInTheSpoolToo) {
  RecordingSink::Log log;
  Router router(clock_);
  SinkRoute tiny = FastRetries();
  tiny.worker.queue_capacity = 2;
  router.AddSink(tiny,
                 std::make_unique<RecordingSink>(
                     "gone", log, [](const Event&, int) { return DeliveryResult::Retry("down"); }),
                 Spooled("gone"));
  std::vector<Event> events;
  for (std::uint64_t index = 1; index <= 30; ++index) {
    events.push_back(InstanceEvent("i" + std::to_string(index % 3), EventType::kInstanceUp, index));
  }
  router.Publish(events);
  EXPECT_EQ(router.RemoveSink("gone", milliseconds(50)), events.size());
  EXPECT_TRUE(ReadDeadLetters("gone").empty());
}

}  // namespace
}  // namespace hb
