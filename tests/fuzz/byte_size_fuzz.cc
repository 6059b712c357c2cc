// Config sizes ("64MiB"): any bytes give nothing or a size that formats
// and parses back to itself; never a wrapped multiplication.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/byte_size.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto bytes = hb::ParseByteSize(text);
  if (!bytes) return 0;
  if (hb::ParseByteSize(hb::FormatByteSize(*bytes)) != bytes) std::abort();
  return 0;
}
