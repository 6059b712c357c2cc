#include "bridge/common/backoff.h"

#include <algorithm>
#include <cmath>

namespace hb {

std::chrono::milliseconds ExponentialBackoff(int attempt, std::chrono::milliseconds initial,
                                             std::chrono::milliseconds max, JitterRng& rng) {
  const double base =
      static_cast<double>(initial.count()) * std::pow(2.0, std::clamp(attempt - 1, 0, 40));
  const double capped = std::min(base, static_cast<double>(max.count()));
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  return std::chrono::milliseconds(static_cast<std::int64_t>(capped * jitter(rng)));
}

}  // namespace hb
