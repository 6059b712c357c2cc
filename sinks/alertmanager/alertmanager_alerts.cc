#include "sinks/alertmanager/alertmanager_alerts.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "bridge/model/cloud_event.h"

namespace hb {
namespace {

constexpr std::string_view kTruncatedMark = " [truncated]";
// A check's output gets at least this much of the annotation, however many
// checks fail.
constexpr std::size_t kMinCheckOutputBytes = 128;

bool IsContinuationByte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Label values come from Consul and make the alert's identity: they are cut
// the same way every time, so a resolve still matches its alert.
std::string LabelValue(std::string_view value, const AlertmanagerSinkSettings& settings) {
  return TruncateText(value, settings.max_annotation_bytes);
}

std::map<std::string, std::string> BaseLabels(const Event& event, std::string_view alertname,
                                              const AlertmanagerSinkSettings& settings) {
  std::map<std::string, std::string> labels = settings.labels;
  labels["alertname"] = alertname;
  labels["service_name"] = LabelValue(event.service, settings);
  labels["datacenter"] = LabelValue(event.datacenter, settings);
  if (!settings.severity.empty()) labels["severity"] = settings.severity;
  // Alertmanager drops empty labels; leaving them out keeps what is sent
  // equal to what it stores.
  std::erase_if(labels, [](const auto& label) { return label.second.empty(); });
  return labels;
}

std::string Address(const Event& event) {
  if (event.address.empty()) return "";
  const bool ipv6 = event.address.find(':') != std::string::npos;
  std::string address = ipv6 ? "[" + event.address + "]" : event.address;
  if (event.port > 0) address += ":" + std::to_string(event.port);
  return address;
}

// One line per check that is not passing: "<name> (<status>): <output>",
// with a maintenance check's reason (its notes) as the output.
std::string FailingChecks(const Event& event, std::size_t limit) {
  std::size_t failing = 0;
  for (const Check& check : event.checks) {
    if (check.IsMaintenance() || check.status != HealthStatus::kPassing) ++failing;
  }
  if (failing == 0) return "";
  const std::size_t per_check = std::max(kMinCheckOutputBytes, limit / failing);
  std::string text;
  for (const Check& check : event.checks) {
    const bool maintenance = check.IsMaintenance();
    if (!maintenance && check.status == HealthStatus::kPassing) continue;
    if (!text.empty()) text += '\n';
    text += TruncateText(check.name.empty() ? check.id : check.name, per_check);
    text += " (";
    text += maintenance ? "maintenance" : ToString(check.status);
    text += ')';
    const std::string& output = maintenance ? check.notes : check.output;
    if (!output.empty()) text += ": " + TruncateText(output, per_check);
    // The whole text is cut below: no need to build more than that.
    if (text.size() > limit) break;
  }
  return TruncateText(text, limit);
}

void PutAnnotation(Alert& alert, std::string name, std::string value) {
  if (!value.empty()) alert.annotations[std::move(name)] = std::move(value);
}

}  // namespace

std::string TruncateText(std::string_view text, std::size_t limit) {
  if (text.size() <= limit) return std::string(text);
  const bool marked = limit > kTruncatedMark.size();
  std::size_t keep = marked ? limit - kTruncatedMark.size() : limit;
  while (keep > 0 && IsContinuationByte(text[keep])) --keep;
  std::string out(text.substr(0, keep));
  if (marked) out += kTruncatedMark;
  return out;
}

std::string AlertKey(const Event& event) {
  if (event.IsInstanceEvent()) {
    return "instance:" + event.datacenter + "/" + event.node + "/" + event.instance_id;
  }
  return "service:" + event.datacenter + "/" + event.service;
}

Alert InstanceAlert(const Event& event, DownReason reason,
                    const AlertmanagerSinkSettings& settings) {
  Alert alert;
  alert.labels = BaseLabels(event, settings.alertname, settings);
  alert.labels["service_id"] = LabelValue(event.instance_id, settings);
  alert.labels["node"] = LabelValue(event.node, settings);
  alert.labels["reason"] = ToString(reason);
  std::erase_if(alert.labels, [](const auto& label) { return label.second.empty(); });
  alert.annotations = settings.annotations;
  const std::size_t limit = settings.max_annotation_bytes;
  std::string summary = event.service + "/" + event.instance_id + " on node " + event.node + " (" +
                        event.datacenter + ") is down: " + std::string(ToString(reason));
  PutAnnotation(alert, "summary", TruncateText(summary, limit));
  PutAnnotation(alert, "address", TruncateText(Address(event), limit));
  PutAnnotation(alert, "checks", FailingChecks(event, limit));
  alert.starts_at = event.time;
  return alert;
}

Alert ServiceAlert(const Event& event, const AlertmanagerSinkSettings& settings) {
  Alert alert;
  alert.labels = BaseLabels(event, settings.service_alertname, settings);
  alert.annotations = settings.annotations;
  std::string summary = event.service + " (" + event.datacenter +
                        ") has no instance up: " + std::to_string(event.instances_up) + " of " +
                        std::to_string(event.instances_total) + " up";
  PutAnnotation(alert, "summary", TruncateText(summary, settings.max_annotation_bytes));
  alert.starts_at = event.time;
  return alert;
}

std::optional<DownReason> PreviousDownReason(const Event& event) {
  if (!event.previous_status) return std::nullopt;
  switch (*event.previous_status) {
    case HealthStatus::kPassing:
      return std::nullopt;
    case HealthStatus::kWarning:
      return DownReason::kWarning;
    case HealthStatus::kCritical:
      return DownReason::kCritical;
    case HealthStatus::kMaintenance:
      return DownReason::kMaintenance;
  }
  return std::nullopt;
}

std::string AlertsJson(std::span<const Alert* const> alerts, WallTime firing_ends_at) {
  nlohmann::json body = nlohmann::json::array();
  for (const Alert* alert : alerts) {
    const WallTime ends_at =
        alert->firing() ? firing_ends_at : std::max(*alert->resolved_at, alert->starts_at);
    body.push_back({{"labels", alert->labels},
                    {"annotations", alert->annotations},
                    {"startsAt", FormatRfc3339(alert->starts_at)},
                    {"endsAt", FormatRfc3339(ends_at)}});
  }
  // Consul's text is not promised to be UTF-8: invalid bytes become U+FFFD
  // instead of an exception or a body Alertmanager rejects.
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace hb
