// Config durations ("1m30s"): any bytes give nothing or a non-negative
// duration that formats and parses back to itself; never an overflow into
// a negative one ("2562047788019h").

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/duration.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto duration = hb::ParseDuration(text);
  if (!duration) return 0;
  if (duration->count() < 0) std::abort();
  if (hb::ParseDuration(hb::FormatDuration(*duration)) != duration) std::abort();
  return 0;
}
