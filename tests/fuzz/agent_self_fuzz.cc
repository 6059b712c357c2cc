// GET /v1/agent/self bodies: never a crash or an exception; an answer
// without a Config object is an error, never an empty datacenter taken as
// the agent's.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "bridge/consul/answer_parsers.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const auto agent = hb::ParseAgentSelf(body);
  if (agent.ok() && body.find("Config") == std::string_view::npos &&
      body.find("\\u") == std::string_view::npos) {
    std::abort();
  }
  return 0;
}
