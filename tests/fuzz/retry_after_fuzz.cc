// A webhook receiver's Retry-After: any bytes give nothing or a delay within
// [0, kMaxRetryAfter]; never an overflow or a crash.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "sinks/webhook/webhook_sink.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view value(reinterpret_cast<const char*>(data), size);
  const hb::WallTime now = std::chrono::system_clock::from_time_t(1445412450);
  const auto delay = hb::ParseRetryAfter(value, now);
  if (delay && (delay->count() < 0 || *delay > hb::kMaxRetryAfter)) std::abort();
  return 0;
}
