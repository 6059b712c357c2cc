#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/bridge_config.h"

namespace hb {

// type: webhook — one POST per event, Standard Webhooks signatures.
struct WebhookSinkSettings final : SinkSettings {
  std::string url;  // http(s) URL (required)
  // Signing secret: "whsec_<base64>" (the decoded bytes are the key) or raw
  // text. Default: "" = unsigned.
  std::string secret;
  // Extra request headers; names must be HTTP tokens, values free of
  // control characters, and the sink's own headers cannot be overridden.
  // Default: none.
  std::map<std::string, std::string> headers;
  // Names of `headers` whose values check-config may print; every other
  // value is masked, whatever its name. Default: none.
  std::vector<std::string> safe_headers;
  std::string bearer_token;    // auth.bearer_token. Default: ""
  std::string basic_username;  // auth.basic.username. Default: ""
  std::string basic_password;  // auth.basic.password. Default: ""
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(5)};  // Default: 5s
  std::chrono::milliseconds timeout{std::chrono::seconds(15)};         // Default: 15s
  std::string ca_file;            // CA bundle for https. Default: system CAs
  bool follow_redirects = false;  // Default: false (Standard Webhooks)

  void Emit(YAML::Emitter& out, bool mask_secrets) const override;
  std::string Target() const override;
  // Whether `name` (case-insensitive) is listed in safe_headers.
  bool IsSafeHeader(std::string_view name) const;
};

std::shared_ptr<const SinkSettings> ParseWebhookSinkSettings(ConfigReader& sink);

}  // namespace hb
