#include "bridge/model/cloud_event.h"

#include <ctime>
#include <nlohmann/json.hpp>

namespace hb {
namespace {

using nlohmann::json;

// Cuts `text` to at most `limit` bytes without splitting a UTF-8 sequence.
std::string_view TruncateUtf8(std::string_view text, std::size_t limit) {
  if (text.size() <= limit) return text;
  std::size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
}

std::string Source(const Event& event, const CloudEventOptions& options) {
  return options.source.empty() ? "consul://" + event.datacenter : options.source;
}

json StatusOrNull(const std::optional<HealthStatus>& status) {
  return status ? json(ToString(*status)) : json(nullptr);
}

}  // namespace

std::string FormatRfc3339(WallTime time) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch());
  const std::time_t seconds = static_cast<std::time_t>(ms.count() / 1000);
  int millis = static_cast<int>(ms.count() % 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  const std::size_t length = std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(text + length, sizeof(text) - length, ".%03dZ", millis < 0 ? 0 : millis);
  return text;
}

json CloudEventData(const Event& event, const CloudEventOptions& options) {
  json data = json::object();
  data["event"] = ToString(event.type);
  if (!event.IsInstanceEvent()) {
    data["service"] = event.service;
    data["datacenter"] = event.datacenter;
    data["instances_up"] = event.instances_up;
    data["instances_total"] = event.instances_total;
    data["consul_index"] = event.consul_index;
    data["reconciled"] = event.reconciled;
    return data;
  }
  if (event.reason) data["reason"] = ToString(*event.reason);
  data["service"] = event.service;
  data["instance_id"] = event.instance_id;
  data["node"] = event.node;
  data["address"] = event.address;
  data["port"] = event.port;
  data["tags"] = event.tags;
  data["meta"] = event.meta;
  data["status"] = StatusOrNull(event.status);
  data["previous_status"] = StatusOrNull(event.previous_status);
  json checks = json::array();
  for (const Check& check : event.checks) {
    const std::string_view output = TruncateUtf8(check.output, options.max_check_output_bytes);
    json entry = {{"check_id", check.id},
                  {"name", check.name},
                  {"status", ToString(check.status)},
                  {"output", output}};
    if (output.size() < check.output.size()) entry["output_truncated"] = true;
    checks.push_back(std::move(entry));
  }
  data["checks"] = std::move(checks);
  data["datacenter"] = event.datacenter;
  data["consul_index"] = event.consul_index;
  data["reconciled"] = event.reconciled;
  return data;
}

std::vector<std::pair<std::string, std::string>> CloudEventAttributes(
    const Event& event, const CloudEventOptions& options) {
  const std::string subject = event.Subject();
  return {{"specversion", "1.0"},
          {"id", event.id},
          {"source", Source(event, options)},
          {"type", options.type_prefix + "." + std::string(ToString(event.type))},
          {"subject", subject},
          {"time", FormatRfc3339(event.time)},
          {"datacontenttype", "application/json"},
          {"partitionkey", subject}};
}

json ToCloudEvent(const Event& event, const CloudEventOptions& options) {
  json out = json::object();
  for (auto& [name, value] : CloudEventAttributes(event, options)) out[name] = std::move(value);
  out["data"] = CloudEventData(event, options);
  return out;
}

std::string SerializeCloudEvent(const Event& event, const CloudEventOptions& options) {
  return ToCloudEvent(event, options).dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace hb
