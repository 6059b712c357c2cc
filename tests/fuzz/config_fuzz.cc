// health-bridge config files: any bytes give a config or a list of errors,
// never a crash or an exception; a rejected config always says why.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/config_loader.h"
#include "sinks/builtin_sinks.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const hb::SinkParsers parsers = [] {
    hb::SinkRegistry registry;
    hb::RegisterBuiltinSinks(registry);
    return registry.Parsers();
  }();
  // A fixed environment: ${VAR} resolves for HB_FUZZ only.
  const hb::Environment env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "HB_FUZZ") return "value";
    return std::nullopt;
  };
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  const hb::LoadResult result = hb::LoadConfigString(yaml, parsers, env);
  if (!result.ok() && result.errors.empty()) std::abort();
  if (result.ok()) hb::FormatEffectiveConfig(*result.config, /*mask_secrets=*/true);
  return 0;
}
