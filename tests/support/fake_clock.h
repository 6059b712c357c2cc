#pragma once

// A Clock that moves only when a test says so.

#include <atomic>
#include <chrono>

#include "bridge/common/clock.h"

namespace hb::test_support {

// Safe for concurrent use: Advance() may run on the test thread while a
// component reads Now() on its own thread.
class FakeClock final : public Clock {
 public:
  // Starts at an arbitrary but fixed point so tests are reproducible:
  // wall time 2026-11-24T10:15:03Z.
  FakeClock() : wall_base_(std::chrono::seconds(1795515303)) {}

  SteadyTime Now() const override { return SteadyTime(offset()); }
  WallTime WallNow() const override {
    return wall_base_ + std::chrono::duration_cast<WallTime::duration>(offset());
  }

  void Advance(std::chrono::nanoseconds by) { offset_ns_ += by.count(); }

 private:
  std::chrono::nanoseconds offset() const { return std::chrono::nanoseconds(offset_ns_.load()); }

  const WallTime wall_base_;
  std::atomic<std::int64_t> offset_ns_{0};
};

}  // namespace hb::test_support
