// The web config file (TLS and basic auth of the bridge's port): any bytes
// give a config or an error naming the file; never a crash or an exception.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "bridge/server/web_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  const auto parsed = hb::ParseWebConfig(yaml, "web.yml");
  if (!parsed.ok() && parsed.status().message().find("web.yml") == std::string::npos) std::abort();
  return 0;
}
