#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "config/bridge_config.h"

namespace hb {

// type: webhook — one POST per event, Standard Webhooks signatures.
struct WebhookSinkSettings final : SinkSettings {
  std::string url;  // http(s) URL (required)
  // Signing secret: "whsec_<base64>" (the decoded bytes are the key) or raw
  // text. Default: "" = unsigned.
  std::string secret;
  std::map<std::string, std::string> headers;  // extra request headers. Default: none
  std::string bearer_token;                    // auth.bearer_token. Default: ""
  std::string basic_username;                  // auth.basic.username. Default: ""
  std::string basic_password;                  // auth.basic.password. Default: ""
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(5)};  // Default: 5s
  std::chrono::milliseconds timeout{std::chrono::seconds(15)};         // Default: 15s
  std::string ca_file;            // CA bundle for https. Default: system CAs
  bool follow_redirects = false;  // Default: false (Standard Webhooks)

  void Emit(YAML::Emitter& out, bool mask_secrets) const override;
};

// Whether an HTTP header carries credentials (Authorization, *token*, ...).
bool IsSecretHeader(std::string_view name);

std::shared_ptr<const SinkSettings> ParseWebhookSinkSettings(ConfigReader& sink);

}  // namespace hb
