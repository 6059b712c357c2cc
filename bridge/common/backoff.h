#pragma once

#include <chrono>
#include <random>

namespace hb {

// Exponential backoff with ±20% jitter, so many retriers (watches, sinks) do
// not synchronize: initial * 2^(attempt-1), capped at `max`. attempt >= 1.
std::chrono::milliseconds ExponentialBackoff(int attempt, std::chrono::milliseconds initial,
                                             std::chrono::milliseconds max, std::mt19937_64& rng);

}  // namespace hb
