#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/common/redact.h"
#include "config/bridge_config.h"
#include "config/config_reader.h"

namespace hb {

// A loaded config, or every problem found (never just the first).
struct LoadResult {
  std::optional<BridgeConfig> config;
  std::vector<std::string> errors;
  bool ok() const { return config.has_value(); }
};

// Parses and validates. Consul's environment variables (CONSUL_HTTP_ADDR,
// CONSUL_HTTP_TOKEN, CONSUL_HTTP_TOKEN_FILE, CONSUL_HTTP_SSL,
// CONSUL_HTTP_SSL_VERIFY, CONSUL_CACERT, CONSUL_CAPATH, CONSUL_CLIENT_CERT,
// CONSUL_CLIENT_KEY, CONSUL_TLS_SERVER_NAME) override the file's consul
// keys; the token file, when set, wins over the token (Consul's Go api).
LoadResult LoadConfigString(std::string_view yaml, const SinkParsers& sinks,
                            const Environment& env);
LoadResult LoadConfigFile(const std::string& path, const SinkParsers& sinks,
                          const Environment& env);

// The effective configuration as YAML, with every secret replaced by
// "******" when `mask_secrets`.
std::string FormatEffectiveConfig(const BridgeConfig& config, bool mask_secrets);
// One sink's part of it: equal texts mean equal settings (config reload).
std::string FormatSinkConfig(const SinkConfig& sink, bool mask_secrets);

inline constexpr const char* kMasked = kRedacted;

}  // namespace hb
