#include "bridge/model/cloud_event.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>

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

namespace {

// SerializeCloudEvent() writes the text ToCloudEvent().dump() would, byte
// for byte, without building the document: its tree of std::maps cost ~11
// us per event, most of a sink's CPU. Members go in nlohmann's order
// (std::map: sorted by name); a test holds the two paths equal.
class CompactWriter {
 public:
  explicit CompactWriter(std::string& out) : out_(out) {}

  void BeginObject() { Begin('{'); }
  void EndObject() { End('}'); }
  void BeginArray() { Begin('['); }
  void EndArray() { End(']'); }
  void Key(std::string_view name) {
    Separate();
    out_ += '"';
    out_ += name;
    out_ += "\":";
    after_key_ = true;
  }
  // Printable ASCII needs no escaping and is nearly every string here; the
  // rest (quotes, control characters, UTF-8, invalid UTF-8) goes through
  // nlohmann, so escaping and replacement stay exactly its own.
  void String(std::string_view text) {
    Separate();
    Quoted(text);
  }
  // A member name that may need escaping (a meta key).
  void QuotedKey(std::string_view name) {
    Separate();
    Quoted(name);
    out_ += ':';
    after_key_ = true;
  }
  void Number(std::uint64_t value) { Literal(std::to_string(value)); }
  void Number(int value) { Literal(std::to_string(value)); }
  void Bool(bool value) { Literal(value ? "true" : "false"); }
  void StatusOrNull(const std::optional<HealthStatus>& status) {
    if (status) {
      String(ToString(*status));
    } else {
      Literal("null");
    }
  }

 private:
  void Quoted(std::string_view text) {
    const bool plain = std::all_of(text.begin(), text.end(), [](char c) {
      const auto byte = static_cast<unsigned char>(c);
      return byte >= 0x20 && byte < 0x80 && c != '"' && c != '\\';
    });
    if (plain) {
      out_ += '"';
      out_ += text;
      out_ += '"';
    } else {
      out_ += json(std::string(text)).dump(-1, ' ', false, json::error_handler_t::replace);
    }
  }
  void Literal(std::string_view text) {
    Separate();
    out_ += text;
  }
  void Begin(char bracket) {
    Separate();
    out_ += bracket;
    first_[++depth_] = true;
  }
  void End(char bracket) {
    out_ += bracket;
    --depth_;
  }
  void Separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_[depth_]) out_ += ',';
    first_[depth_] = false;
  }

  std::string& out_;
  std::array<bool, 8> first_{true};  // per nesting level: nothing written yet
  std::size_t depth_ = 0;
  bool after_key_ = false;
};

void WriteData(CompactWriter& w, const Event& event, const CloudEventOptions& options) {
  w.BeginObject();
  if (!event.IsInstanceEvent()) {
    w.Key("consul_index"), w.Number(event.consul_index);
    w.Key("datacenter"), w.String(event.datacenter);
    w.Key("event"), w.String(ToString(event.type));
    w.Key("instances_total"), w.Number(event.instances_total);
    w.Key("instances_up"), w.Number(event.instances_up);
    w.Key("reconciled"), w.Bool(event.reconciled);
    w.Key("service"), w.String(event.service);
    w.EndObject();
    return;
  }
  w.Key("address"), w.String(event.address);
  w.Key("checks"), w.BeginArray();
  for (const Check& check : event.checks) {
    const std::string_view output = TruncateUtf8(check.output, options.max_check_output_bytes);
    w.BeginObject();
    w.Key("check_id"), w.String(check.id);
    w.Key("name"), w.String(check.name);
    w.Key("output"), w.String(output);
    if (output.size() < check.output.size()) w.Key("output_truncated"), w.Bool(true);
    w.Key("status"), w.String(ToString(check.status));
    w.EndObject();
  }
  w.EndArray();
  w.Key("consul_index"), w.Number(event.consul_index);
  w.Key("datacenter"), w.String(event.datacenter);
  w.Key("event"), w.String(ToString(event.type));
  w.Key("instance_id"), w.String(event.instance_id);
  w.Key("meta"), w.BeginObject();
  for (const auto& [name, value] : event.meta) w.QuotedKey(name), w.String(value);
  w.EndObject();
  w.Key("node"), w.String(event.node);
  w.Key("port"), w.Number(event.port);
  w.Key("previous_status"), w.StatusOrNull(event.previous_status);
  if (event.reason) w.Key("reason"), w.String(ToString(*event.reason));
  w.Key("reconciled"), w.Bool(event.reconciled);
  w.Key("service"), w.String(event.service);
  w.Key("status"), w.StatusOrNull(event.status);
  w.Key("tags"), w.BeginArray();
  for (const auto& tag : event.tags) w.String(tag);
  w.EndArray();
  w.EndObject();
}

}  // namespace

std::string SerializeCloudEvent(const Event& event, const CloudEventOptions& options) {
  const std::string subject = event.Subject();
  std::string out;
  out.reserve(1024);
  CompactWriter w(out);
  w.BeginObject();
  w.Key("data"), WriteData(w, event, options);
  w.Key("datacontenttype"), w.String("application/json");
  w.Key("id"), w.String(event.id);
  w.Key("partitionkey"), w.String(subject);
  w.Key("source"), w.String(Source(event, options));
  w.Key("specversion"), w.String("1.0");
  w.Key("subject"), w.String(subject);
  w.Key("time"), w.String(FormatRfc3339(event.time));
  w.Key("type"), w.String(options.type_prefix + "." + std::string(ToString(event.type)));
  w.EndObject();
  return out;
}

}  // namespace hb
