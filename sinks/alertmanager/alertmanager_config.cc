#include "sinks/alertmanager/alertmanager_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <span>

#include "bridge/common/glob.h"
#include "bridge/common/redact.h"
#include "bridge/model/protocol_text.h"
#include "config/byte_size.h"
#include "config/config_loader.h"
#include "config/config_reader.h"
#include "config/duration.h"

namespace hb {
namespace {

using std::chrono::milliseconds;

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Headers whose meaning the sink owns: framing (a second Content-Length is
// request smuggling), the JSON body's type and authentication.
bool IsReservedHeader(std::string_view name) {
  const std::string lower = Lower(name);
  for (std::string_view reserved : {"content-length", "transfer-encoding", "host", "connection",
                                    "content-type", "expect", "authorization"}) {
    if (lower == reserved) return true;
  }
  return false;
}

bool IsHttpUrl(std::string_view url) {
  return (url.starts_with("http://") || url.starts_with("https://")) &&
         url.find_first_of(" \t\r\n") == std::string_view::npos;
}

// Alertmanager keeps a label whose value is empty as no label at all.
void CheckNames(ConfigReader& sink, std::string_view key,
                const std::map<std::string, std::string>& entries,
                std::span<const std::string_view> own, std::string_view what) {
  for (const auto& [name, value] : entries) {
    const std::string path = std::string(key) + "." + name;
    if (!IsValidAlertLabelName(name)) {
      sink.Error(path, "not a valid " + std::string(what) +
                           " name: expected [a-zA-Z_][a-zA-Z0-9_]*, not starting with __");
    } else if (std::find(own.begin(), own.end(), name) != own.end()) {
      sink.Error(path, "the sink sets " + std::string(what) + " " + Quote(name) +
                           " itself; choose another name");
    } else if (value.empty()) {
      sink.Error(path, "empty value (Alertmanager drops an empty " + std::string(what) + ")");
    }
  }
}

// A sink whose filter lets a firing event through but not the events that
// resolve it would keep its alerts firing forever: the resend renews them.
void CheckResolvesAreRouted(ConfigReader& sink) {
  // Raw: the loader reads and checks the list itself; reading it through the
  // reader again would report its mistakes twice.
  const YAML::Node node = sink.Raw("events");
  std::vector<std::string> events{"*"};
  if (node.IsSequence()) {
    events.clear();
    for (const auto& item : node) {
      if (!item.IsScalar()) return;
      events.push_back(item.Scalar());
    }
  } else if (node.IsDefined() && !node.IsNull()) {
    return;
  }
  auto routed = [&](std::string_view type) { return GlobMatchAny(events, type); };
  for (const auto& [fires, resolves] :
       {std::pair{"instance.down",
                  std::vector<std::string_view>{"instance.up", "instance.deregistered"}},
        std::pair{"service.down", std::vector<std::string_view>{"service.up"}}}) {
    if (!routed(fires)) continue;
    for (std::string_view resolve : resolves) {
      if (!routed(resolve)) {
        sink.Error("events", std::string("routes ") + fires + " but not " + std::string(resolve) +
                                 ", which resolves its alert: the alert would never resolve");
      }
    }
  }
}

}  // namespace

bool IsValidAlertLabelName(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

void AlertmanagerSinkSettings::Emit(YAML::Emitter& out, bool mask_secrets) const {
  auto secret_text = [&](const std::string& value) {
    return mask_secrets && !value.empty() ? std::string(kMasked) : value;
  };
  std::vector<std::string> shown_urls;
  shown_urls.reserve(urls.size());
  for (const auto& url : urls) shown_urls.push_back(mask_secrets ? RedactUrl(url) : url);
  out << YAML::Key << "urls" << YAML::Value << YAML::Flow << shown_urls;
  out << YAML::Key << "alertname" << YAML::Value << alertname;
  out << YAML::Key << "service_alertname" << YAML::Value << service_alertname;
  out << YAML::Key << "severity" << YAML::Value << severity;
  out << YAML::Key << "labels" << YAML::Value << YAML::BeginMap;
  for (const auto& [name, value] : labels) out << YAML::Key << name << YAML::Value << value;
  out << YAML::EndMap;
  out << YAML::Key << "annotations" << YAML::Value << YAML::BeginMap;
  for (const auto& [name, value] : annotations) out << YAML::Key << name << YAML::Value << value;
  out << YAML::EndMap;
  out << YAML::Key << "resend_interval" << YAML::Value << FormatDuration(resend_interval);
  out << YAML::Key << "expire_after" << YAML::Value << FormatDuration(expire_after);
  out << YAML::Key << "alert_on_deregistration" << YAML::Value << alert_on_deregistration;
  out << YAML::Key << "max_annotation_bytes" << YAML::Value << FormatByteSize(max_annotation_bytes);
  out << YAML::Key << "headers" << YAML::Value << YAML::BeginMap;
  for (const auto& [name, value] : headers) {
    // Any header may carry a credential (X-Scope-OrgID, X-Api-Key, ...).
    out << YAML::Key << name << YAML::Value << secret_text(value);
  }
  out << YAML::EndMap;
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
}

std::shared_ptr<const SinkSettings> ParseAlertmanagerSinkSettings(ConfigReader& sink) {
  auto settings = std::make_shared<AlertmanagerSinkSettings>();
  settings->urls = sink.StringList("urls", {});
  if (settings->urls.empty()) {
    sink.Error("urls", "required: the http(s) base URL of at least one Alertmanager");
  }
  for (std::size_t i = 0; i < settings->urls.size(); ++i) {
    const std::string key = "urls[" + std::to_string(i) + "]";
    if (!IsHttpUrl(settings->urls[i])) {
      sink.Error(key, "expected an http(s) URL, got " + Quote(settings->urls[i]));
    } else if (settings->urls[i].find_first_of("?#") != std::string::npos) {
      // The sink appends /api/v2/alerts to the base URL.
      sink.Error(key,
                 "expected a base URL without query or fragment, got " + Quote(settings->urls[i]));
    }
  }
  std::vector<std::string> sorted = settings->urls;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    sink.Error("urls", "lists the same Alertmanager twice");
  }

  settings->alertname = sink.String("alertname", settings->alertname);
  if (settings->alertname.empty()) sink.Error("alertname", "must not be empty");
  settings->service_alertname = sink.String("service_alertname", settings->service_alertname);
  if (settings->service_alertname.empty()) sink.Error("service_alertname", "must not be empty");
  settings->severity = sink.String("severity", settings->severity);
  settings->labels = sink.StringMap("labels");
  CheckNames(sink, "labels", settings->labels, kAlertmanagerOwnLabels, "label");
  settings->annotations = sink.StringMap("annotations");
  CheckNames(sink, "annotations", settings->annotations, kAlertmanagerOwnAnnotations, "annotation");

  settings->resend_interval = sink.Duration("resend_interval", settings->resend_interval);
  if (settings->resend_interval < std::chrono::seconds(1)) {
    sink.Error("resend_interval", "must be at least 1s");
  }
  const bool expire_set = sink.Has("expire_after");
  settings->expire_after = sink.Duration("expire_after", 4 * settings->resend_interval);
  if (settings->expire_after <= settings->resend_interval) {
    sink.Error("expire_after", expire_set ? "must be longer than resend_interval (" +
                                                FormatDuration(settings->resend_interval) +
                                                "), or firing alerts resolve between two posts"
                                          : "must be longer than resend_interval");
  }
  settings->alert_on_deregistration = sink.Bool("alert_on_deregistration", false);
  settings->max_annotation_bytes =
      sink.Bytes("max_annotation_bytes", settings->max_annotation_bytes, 256);
  if (settings->max_annotation_bytes > (std::size_t{1} << 20)) {
    sink.Error("max_annotation_bytes", "at most 1MiB: every alert carries it on every post");
  }

  CheckResolvesAreRouted(sink);
  settings->headers = sink.StringMap("headers");
  for (const auto& [name, value] : settings->headers) {
    // A header line is built from these: a CR or LF would end it early and
    // let the rest of the value become headers or a request of its own.
    if (!IsValidHeaderName(name)) {
      sink.Error("headers", "header name " + Quote(name) + " is not an HTTP token");
    } else if (IsReservedHeader(name)) {
      sink.Error("headers",
                 "header " + Quote(name) + " is set by the sink itself (framing, body or auth)");
    }
    if (!IsValidHeaderValue(value)) {
      sink.Error("headers", "the value of header " + Quote(name) +
                                " holds a control character (CR, LF, NUL, ...)");
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
  if (settings->connect_timeout <= milliseconds(0)) {
    sink.Error("connect_timeout", "must be greater than 0");
  }
  settings->timeout = sink.Duration("timeout", settings->timeout);
  if (settings->timeout <= milliseconds(0)) sink.Error("timeout", "must be greater than 0");
  settings->ca_file = sink.String("ca_file");
  return settings;
}

std::string AlertmanagerSinkSettings::Target() const {
  std::string target;
  for (const auto& url : urls) target += (target.empty() ? "" : ", ") + RedactUrl(url);
  return target;
}

}  // namespace hb
