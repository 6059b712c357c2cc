#pragma once

#include <chrono>
#include <random>

namespace hb {

// Jitter needs no statistical quality, and every watch holds one of these:
// 8 bytes of state where std::mt19937_64 has 2.5 KB (25 MB at 10,000
// watched services).
using JitterRng = std::minstd_rand;

// Exponential backoff with ±20% jitter, so many retriers (watches, sinks) do
// not synchronize: initial * 2^(attempt-1), capped at `max`. attempt >= 1.
std::chrono::milliseconds ExponentialBackoff(int attempt, std::chrono::milliseconds initial,
                                             std::chrono::milliseconds max, JitterRng& rng);

}  // namespace hb
