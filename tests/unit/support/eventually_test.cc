// The test-support waits: they return as soon as a condition holds, fail
// with a message after their deadline, and prove "nothing else arrived" by
// a marker rather than by sleeping.

#include "tests/support/eventually.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hb::test_support {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// What a receiver peer looks like to a test: items appended by another
// thread, read as a copy.
class Inbox {
 public:
  void Add(std::string item) {
    std::lock_guard lock(mutex_);
    items_.push_back(std::move(item));
  }
  std::vector<std::string> Items() const {
    std::lock_guard lock(mutex_);
    return items_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> items_;
};

bool IsMarker(const std::string& item) { return item == "marker"; }

TEST(Eventually, ReturnsOnceTheConditionHolds) {
  int calls = 0;
  EXPECT_TRUE(Eventually([&] { return ++calls == 3; }, seconds(30)));
  EXPECT_EQ(calls, 3);
}

TEST(Eventually, SeesWhatAnotherThreadDoes) {
  std::atomic<bool> done{false};
  std::jthread worker([&] { done = true; });
  EXPECT_TRUE(Eventually([&] { return done.load(); }, seconds(30)));
}

TEST(Eventually, FailsAfterItsDeadlineSayingHowLongItWaited) {
  int calls = 0;
  const auto result = Eventually([&] { return ++calls < 0; }, milliseconds(20));
  EXPECT_FALSE(result);
  EXPECT_EQ(std::string(result.message()), "the condition did not hold within 20 ms");
  EXPECT_GE(calls, 2) << "the condition is checked again at the deadline";
}

TEST(NothingElseArrives, HoldsWhenExactlyTheExpectedItemsPrecedeTheMarker) {
  Inbox inbox;
  std::jthread sender([&] {
    for (const char* item : {"a", "b", "c", "marker", "after the marker"}) inbox.Add(item);
  });
  EXPECT_TRUE(NothingElseArrives([&] { return inbox.Items(); }, IsMarker, 3, seconds(30)));
}

TEST(NothingElseArrives, FailsWhenMoreArrivedBeforeTheMarker) {
  Inbox inbox;
  for (const char* item : {"a", "b", "c", "a duplicate", "marker"}) inbox.Add(item);
  const auto result = NothingElseArrives([&] { return inbox.Items(); }, IsMarker, 3, seconds(30));
  EXPECT_FALSE(result);
  EXPECT_EQ(std::string(result.message()), "4 items arrived before the marker, expected 3");
}

TEST(NothingElseArrives, FailsWhenTheMarkerNeverComes) {
  Inbox inbox;
  inbox.Add("a");
  const auto result =
      NothingElseArrives([&] { return inbox.Items(); }, IsMarker, 1, milliseconds(20));
  EXPECT_FALSE(result);
  EXPECT_EQ(std::string(result.message()), "the marker did not arrive within 20 ms");
}

TEST(ArrivedBeforeMarker, ReturnsTheItemsBeforeTheFirstMarker) {
  Inbox inbox;
  for (const char* item : {"a", "b", "marker", "c", "marker"}) inbox.Add(item);
  const auto before = ArrivedBeforeMarker([&] { return inbox.Items(); }, IsMarker, seconds(30));
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ(*before, (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace hb::test_support
