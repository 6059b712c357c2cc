#include "sinks/webhook/webhook_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>

#include "bridge/common/redact.h"
#include "bridge/model/protocol_text.h"
#include "config/config_loader.h"
#include "config/config_reader.h"
#include "config/duration.h"
#include "sinks/webhook/webhook_signature.h"

namespace hb {
namespace {

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Headers whose meaning the sink owns: framing (a second Content-Length
// is request smuggling), the Standard Webhooks trio and authentication.
bool IsReservedWebhookHeader(std::string_view name) {
  const std::string lower = Lower(name);
  for (std::string_view reserved :
       {"content-length", "transfer-encoding", "host", "connection", "content-type", "expect",
        "webhook-id", "webhook-timestamp", "webhook-signature", "authorization"}) {
    if (lower == reserved) return true;
  }
  return false;
}

}  // namespace

bool WebhookSinkSettings::IsSafeHeader(std::string_view name) const {
  const std::string lower = Lower(name);
  return std::any_of(safe_headers.begin(), safe_headers.end(),
                     [&](const std::string& safe) { return Lower(safe) == lower; });
}

void WebhookSinkSettings::Emit(YAML::Emitter& out, bool mask_secrets) const {
  auto secret_text = [&](const std::string& value) {
    return mask_secrets && !value.empty() ? std::string(kMasked) : value;
  };
  out << YAML::Key << "url" << YAML::Value << (mask_secrets ? RedactUrl(url) : url);
  out << YAML::Key << "secret" << YAML::Value << secret_text(secret);
  out << YAML::Key << "headers" << YAML::Value << YAML::BeginMap;
  for (const auto& [name, value] : headers) {
    out << YAML::Key << name << YAML::Value << (IsSafeHeader(name) ? value : secret_text(value));
  }
  out << YAML::EndMap;
  out << YAML::Key << "safe_headers" << YAML::Value << YAML::Flow << safe_headers;
  if (!bearer_token.empty() || !basic_username.empty()) {
    out << YAML::Key << "auth" << YAML::Value << YAML::BeginMap;
    if (!bearer_token.empty()) {
      out << YAML::Key << "bearer_token" << YAML::Value << secret_text(bearer_token);
    } else {
      out << YAML::Key << "basic" << YAML::Value << YAML::BeginMap;
      out << YAML::Key << "username" << YAML::Value << basic_username;
      out << YAML::Key << "password" << YAML::Value << secret_text(basic_password);
      out << YAML::EndMap;
    }
    out << YAML::EndMap;
  }
  out << YAML::Key << "connect_timeout" << YAML::Value << FormatDuration(connect_timeout);
  out << YAML::Key << "timeout" << YAML::Value << FormatDuration(timeout);
  out << YAML::Key << "ca_file" << YAML::Value << ca_file;
  out << YAML::Key << "follow_redirects" << YAML::Value << follow_redirects;
}

std::shared_ptr<const SinkSettings> ParseWebhookSinkSettings(ConfigReader& sink) {
  auto settings = std::make_shared<WebhookSinkSettings>();
  settings->url = sink.String("url");
  if (settings->url.empty()) {
    sink.Error("url", "required: the http(s) URL to POST events to");
  } else if (!(settings->url.starts_with("http://") || settings->url.starts_with("https://")) ||
             settings->url.find_first_of(" \t\r\n") != std::string::npos) {
    sink.Error("url", "expected an http(s) URL, got " + Quote(settings->url));
  }
  settings->secret = sink.String("secret");
  if (!WebhookSigningKey(settings->secret)) {
    sink.Error("secret", "a whsec_ secret must be followed by base64");
  }
  settings->headers = sink.StringMap("headers");
  for (const auto& [name, value] : settings->headers) {
    // A header line is built from these: a CR or LF would end it early and
    // let the rest of the value become headers or a request of its own.
    if (!IsValidHeaderName(name)) {
      sink.Error("headers", "header name " + Quote(name) + " is not an HTTP token");
    } else if (IsReservedWebhookHeader(name)) {
      sink.Error("headers", "header " + Quote(name) +
                                " is set by the sink itself (framing, signature or auth)");
    }
    if (!IsValidHeaderValue(value)) {
      sink.Error("headers", "the value of header " + Quote(name) +
                                " holds a control character (CR, LF, NUL, ...)");
    }
  }
  settings->safe_headers = sink.StringList("safe_headers", {});
  for (const std::string& name : settings->safe_headers) {
    if (!settings->headers.contains(name)) {
      sink.Error("safe_headers", Quote(name) + " is not one of this sink's headers");
    }
  }
  ConfigReader auth = sink.Section("auth");
  settings->bearer_token = auth.String("bearer_token");
  ConfigReader basic = auth.Section("basic");
  settings->basic_username = basic.String("username");
  settings->basic_password = basic.String("password");
  if (basic.present() && settings->basic_username.empty()) basic.Error("username", "required");
  basic.Finish();
  if (!settings->bearer_token.empty() && basic.present()) {
    auth.Error("basic", "use either bearer_token or basic, not both");
  }
  auth.Finish();
  settings->connect_timeout = sink.Duration("connect_timeout", settings->connect_timeout);
  settings->timeout = sink.Duration("timeout", settings->timeout);
  if (settings->timeout <= std::chrono::milliseconds(0))
    sink.Error("timeout", "must be greater than 0");
  settings->ca_file = sink.String("ca_file");
  settings->follow_redirects = sink.Bool("follow_redirects", false);
  return settings;
}

std::string WebhookSinkSettings::Target() const { return RedactUrl(url); }

}  // namespace hb
