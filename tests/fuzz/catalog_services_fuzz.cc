// GET /v1/catalog/services bodies: never a crash; an accepted answer has
// no empty service name.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "bridge/consul/answer_parsers.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  if (const auto services = hb::ParseCatalogServices(body); services.ok()) {
    for (const auto& [name, tags] : *services) {
      if (name.empty()) std::abort();
    }
  }
  hb::ParseAgentSelf(body).ok();  // the third Consul answer the watch reads
  return 0;
}
