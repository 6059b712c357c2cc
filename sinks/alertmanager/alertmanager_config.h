#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/bridge_config.h"

namespace hb {

// type: alertmanager — health events as alerts posted to Alertmanager's
// /api/v2/alerts, every alert to every listed Alertmanager (an HA pair
// deduplicates them itself).
struct AlertmanagerSinkSettings final : SinkSettings {
  // Base URLs ("http://am-0:9093", "https://host/alertmanager"); the sink
  // posts to <url>/api/v2/alerts. A URL that already ends in /api/v2/alerts
  // is used as it is. At least one (required).
  std::vector<std::string> urls;
  // alertname of an instance's alert. Default: ConsulInstanceDown.
  std::string alertname = "ConsulInstanceDown";
  // alertname of a service's alert (no instance up). Default: ConsulServiceDown.
  std::string service_alertname = "ConsulServiceDown";
  // The severity label; "" = no severity label. Default: critical.
  std::string severity = "critical";
  std::map<std::string, std::string> labels;       // static labels. Default: none
  std::map<std::string, std::string> annotations;  // static annotations. Default: none
  // How often firing alerts (and alerts resolved in the last 15 minutes)
  // are posted again, as Prometheus re-sends them. Default: 1m.
  std::chrono::milliseconds resend_interval{std::chrono::minutes(1)};
  // endsAt of a firing alert is this far ahead of each post: Alertmanager
  // resolves it by itself this long after the bridge stopped re-sending.
  // Default: 4 x resend_interval.
  std::chrono::milliseconds expire_after{std::chrono::minutes(4)};
  // Whether instance.down with reason deregistered (a graceful
  // deregistration of an up instance) fires; its instance.deregistered
  // follows at once and would resolve it. Default: false.
  bool alert_on_deregistration = false;
  // Bound on the text of the generated annotations (the failing checks'
  // output can be large); longer text is cut at a UTF-8 boundary and marked.
  // Default: 4KiB.
  std::size_t max_annotation_bytes = 4096;
  // Extra request headers (e.g. X-Scope-OrgID); names must be HTTP tokens,
  // values free of control characters, and the sink's own headers cannot
  // be overridden. check-config masks every value. Default: none.
  std::map<std::string, std::string> headers;
  std::string bearer_token;    // auth.bearer_token. Default: ""
  std::string basic_username;  // auth.basic.username. Default: ""
  std::string basic_password;  // auth.basic.password. Default: ""
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(5)};  // Default: 5s
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};         // Default: 10s
  std::string ca_file;  // CA bundle for https. Default: system CAs

  void Emit(YAML::Emitter& out, bool mask_secrets) const override;
  std::string Target() const override;
};

// The labels the sink sets itself: static labels may not replace them.
inline constexpr std::string_view kAlertmanagerOwnLabels[] = {
    "alertname", "service_name", "service_id", "node", "datacenter", "reason", "severity"};
// The annotations the sink sets itself.
inline constexpr std::string_view kAlertmanagerOwnAnnotations[] = {"summary", "address", "checks"};

// A label or annotation name Alertmanager accepts: [a-zA-Z_][a-zA-Z0-9_]*,
// and not starting with "__" (reserved for internal use).
bool IsValidAlertLabelName(std::string_view name);

std::shared_ptr<const SinkSettings> ParseAlertmanagerSinkSettings(ConfigReader& sink);

}  // namespace hb
