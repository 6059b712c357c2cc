// Request heads from clients of the bridge's port: any bytes give a head, a
// wait for more, or a refusal with a reason; never a crash. The query
// parser runs on whatever target was accepted.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "bridge/server/request_head.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view received(reinterpret_cast<const char*>(data), size);
  const hb::HeadParse parsed = hb::ParseRequestHead(received, 8192);
  if (parsed.state == hb::HeadParse::State::kMalformed && parsed.error.empty()) std::abort();
  if (parsed.state == hb::HeadParse::State::kComplete) {
    if (!parsed.head.path.starts_with('/')) std::abort();
    hb::ParseQuery(parsed.head.query);
  }
  return 0;
}
