// GET /v1/health/service/<name> bodies: never a crash, and never an empty
// instance list for a body that is not an empty JSON array (an empty list
// would deregister every instance).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "bridge/consul/answer_parsers.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const auto answer = hb::ParseHealthService(body);
  if (answer.ok() && answer->instances.empty() && body.find(']') == std::string_view::npos &&
      body.find("null") == std::string_view::npos) {
    std::abort();  // "no instances" from a body that holds no list
  }
  if (answer.ok()) {
    for (const auto& instance : answer->instances) {
      if (instance.id.empty() || instance.service.empty()) std::abort();
    }
  }
  return 0;
}
