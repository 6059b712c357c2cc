// Consul's Retry-After (a 429 from its rate limiter): any bytes give
// nothing or a delay within [0, limit]; a number of seconds under the limit
// is read as written; never an overflow.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "bridge/consul/consul_client.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view value(reinterpret_cast<const char*>(data), size);
  constexpr std::chrono::milliseconds kLimit = std::chrono::minutes(10);
  const auto delay = hb::ParseRetryAfter(value, kLimit);
  if (!delay) return 0;
  if (delay->count() < 0 || *delay > kLimit) std::abort();
  std::string_view digits = value;
  while (!digits.empty() && digits.front() == ' ') digits.remove_prefix(1);
  while (!digits.empty() && digits.back() == ' ') digits.remove_suffix(1);
  if (digits.empty() ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    std::abort();  // only delay-seconds give a delay
  }
  const std::size_t first = std::min(digits.find_first_not_of('0'), digits.size());
  const std::string_view number = digits.substr(first);
  if (number.size() <= 3) {
    const auto seconds = number.empty() ? 0 : std::stoll(std::string(number));
    if (seconds <= 600 && *delay != std::chrono::seconds(seconds)) std::abort();
  }
  return 0;
}
