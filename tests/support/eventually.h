#pragma once

// Waiting in tests without sleeping for a fixed time. A fixed sleep is too
// short on a loaded CI machine (the test flakes) and too long everywhere
// else (the suite crawls); these poll for a condition up to a deadline and
// return as soon as it holds.
//
//   ASSERT_TRUE(Eventually([&] { return receiver.Accepted() >= 3; }, seconds(10)));
//
// Proving that something does *not* happen needs a fence instead of a wait:
// after the events under test, the test causes a marker that travels the
// same ordered path (a change of a separate marker service, a last event of
// the same instance). Once the marker has arrived, whatever the events
// under test could still cause would have arrived before it:
//
//   EXPECT_TRUE(NothingElseArrives(lines, is_marker, 3, seconds(10)));
//
// Header-only; usable from any thread the test owns.

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>

namespace hb::test_support {

// How often the helpers below look again: short next to any timeout a test
// uses, long enough not to starve the threads the test waits for.
inline constexpr std::chrono::milliseconds kPollInterval{5};

// Calls `condition` until it returns true or `timeout` has passed (it is
// called once more at the deadline, so a slow first call still counts).
// The failure message says how long it waited.
template <typename Condition>
::testing::AssertionResult Eventually(Condition&& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const bool past_deadline = std::chrono::steady_clock::now() >= deadline;
    if (condition()) return ::testing::AssertionSuccess();
    if (past_deadline) {
      return ::testing::AssertionFailure()
             << "the condition did not hold within " << timeout.count() << " ms";
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

// `items()` returns what has arrived so far, in arrival order (a copy: it is
// called repeatedly, e.g. a receiver's list under its lock). Waits up to
// `timeout` for an item that `is_marker` accepts and returns the items
// before the first one; nullopt when no marker arrived in time.
template <typename Items, typename IsMarker>
auto ArrivedBeforeMarker(Items&& items, IsMarker&& is_marker, std::chrono::milliseconds timeout)
    -> std::optional<std::decay_t<decltype(items())>> {
  using List = std::decay_t<decltype(items())>;
  std::optional<List> before;
  (void)Eventually(
      [&] {
        List arrived = items();
        for (auto it = arrived.begin(); it != arrived.end(); ++it) {
          if (is_marker(*it)) {
            arrived.erase(it, arrived.end());
            before = std::move(arrived);
            return true;
          }
        }
        return false;
      },
      timeout);
  return before;
}

// Succeeds when a marker arrives within `timeout` and exactly `expected`
// items arrived before it: nothing else came of the events under test.
template <typename Items, typename IsMarker>
::testing::AssertionResult NothingElseArrives(Items&& items, IsMarker&& is_marker,
                                              std::size_t expected,
                                              std::chrono::milliseconds timeout) {
  const auto before = ArrivedBeforeMarker(items, is_marker, timeout);
  if (!before) {
    return ::testing::AssertionFailure()
           << "the marker did not arrive within " << timeout.count() << " ms";
  }
  if (before->size() != expected) {
    return ::testing::AssertionFailure() << before->size() << " items arrived before the marker, "
                                         << "expected " << expected;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace hb::test_support
