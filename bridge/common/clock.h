#pragma once

// Time as an injected dependency: the transition engine's dampening, the
// router's backoff and event timestamps read a Clock so tests drive time.

#include <chrono>

namespace hb {

using SteadyTime = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;

// Implementations are safe for concurrent use.
class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time for deadlines and durations.
  virtual SteadyTime Now() const = 0;
  // Wall-clock time for timestamps that leave the process (event `time`).
  virtual WallTime WallNow() const = 0;
};

class SystemClock final : public Clock {
 public:
  SteadyTime Now() const override { return std::chrono::steady_clock::now(); }
  WallTime WallNow() const override { return std::chrono::system_clock::now(); }
};

}  // namespace hb
