#include "bridge/model/cloud_event_reader.h"

#include <charconv>
#include <chrono>
#include <nlohmann/json.hpp>

namespace hb {
namespace {

using nlohmann::json;

// Reads fields of one object, remembering the first problem.
class Fields {
 public:
  Fields(const json& object, std::string path) : object_(object), path_(std::move(path)) {}

  const json* Get(const char* name, json::value_t kind, bool required = true) {
    const auto it = object_.find(name);
    if (it == object_.end() || it->is_null()) {
      if (required) Fail(name, "is missing");
      return nullptr;
    }
    const bool matches =
        it->type() == kind || (kind == json::value_t::number_integer && it->is_number_integer());
    if (!matches) {
      Fail(name, std::string("is not a ") + json(kind).type_name());
      return nullptr;
    }
    return &*it;
  }
  std::string String(const char* name, bool required = true) {
    const json* value = Get(name, json::value_t::string, required);
    return value == nullptr ? "" : value->get<std::string>();
  }
  std::int64_t Integer(const char* name) {
    const json* value = Get(name, json::value_t::number_integer);
    return value == nullptr ? 0 : value->get<std::int64_t>();
  }
  void Fail(std::string_view name, std::string_view what) {
    if (error_.empty()) error_ = path_ + std::string(name) + " " + std::string(what);
  }
  const std::string& error() const { return error_; }

 private:
  const json& object_;
  std::string path_;
  std::string error_;
};

// The digits at [at, at + width) of `text` as a number; -1 unless they are
// all digits.
int Digits(std::string_view text, std::size_t at, std::size_t width) {
  int value = 0;
  const char* begin = text.data() + at;
  const auto [stop, error] = std::from_chars(begin, begin + width, value);
  return error == std::errc() && stop == begin + width && *begin != '-' && *begin != '+' ? value
                                                                                         : -1;
}

// The form FormatRfc3339() writes: "2026-11-24T10:15:03.120Z".
std::optional<WallTime> ParseRfc3339(const std::string& text) {
  constexpr std::string_view kSeparators = "--T::.Z";
  constexpr std::size_t kSeparatorAt[] = {4, 7, 10, 13, 16, 19, 23};
  if (text.size() != 24) return std::nullopt;
  for (std::size_t i = 0; i < kSeparators.size(); ++i) {
    if (text[kSeparatorAt[i]] != kSeparators[i]) return std::nullopt;
  }
  const int year = Digits(text, 0, 4);
  const int month = Digits(text, 5, 2);
  const int day = Digits(text, 8, 2);
  const int hour = Digits(text, 11, 2);
  const int minute = Digits(text, 14, 2);
  const int second = Digits(text, 17, 2);
  const int millis = Digits(text, 20, 3);
  if (year < 0 || month < 0 || day < 0 || millis < 0 || hour < 0 || hour > 23 || minute < 0 ||
      minute > 59 || second < 0 || second > 60) {
    return std::nullopt;
  }
  const std::chrono::year_month_day date{std::chrono::year(year),
                                         std::chrono::month(static_cast<unsigned>(month)),
                                         std::chrono::day(static_cast<unsigned>(day))};
  if (!date.ok()) return std::nullopt;
  const auto time = std::chrono::sys_days(date) + std::chrono::hours(hour) +
                    std::chrono::minutes(minute) + std::chrono::seconds(second) +
                    std::chrono::milliseconds(millis);
  return std::chrono::time_point_cast<WallTime::duration>(time);
}

std::optional<HealthStatus> StatusField(Fields& fields, const json& data, const char* name) {
  if (!data.contains(name) || data[name].is_null()) return std::nullopt;
  const std::string text = fields.String(name);
  auto status = ParseHealthStatus(text);
  if (!status) fields.Fail(name, "is not a health status");
  return status;
}

}  // namespace

StatusOr<Event> ReadCloudEvent(std::string_view text) {
  json document = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!document.is_object()) return Status::InvalidArgument("not a JSON object");
  Fields attributes(document, "");
  Event event;
  event.id = attributes.String("id");
  const std::string time = attributes.String("time");
  const json* data_value = attributes.Get("data", json::value_t::object);
  if (!attributes.error().empty()) return Status::InvalidArgument(attributes.error());
  if (auto epoch = document.find("hbepoch"); epoch != document.end()) {
    if (!epoch->is_number_unsigned()) return Status::InvalidArgument("hbepoch is not an epoch");
    event.epoch = epoch->get<std::uint64_t>();
  }
  if (auto parsed = ParseRfc3339(time)) {
    event.time = *parsed;
  } else {
    return Status::InvalidArgument("time is not RFC 3339: " + time);
  }
  const json& data = *data_value;
  Fields fields(data, "data.");
  const auto type = ParseEventType(fields.String("event"));
  if (!fields.error().empty()) return Status::InvalidArgument(fields.error());
  if (!type) return Status::InvalidArgument("data.event is not an event type");
  event.type = *type;
  event.service = fields.String("service");
  event.datacenter = fields.String("datacenter");
  event.consul_index = static_cast<std::uint64_t>(fields.Integer("consul_index"));
  if (const json* reconciled = fields.Get("reconciled", json::value_t::boolean)) {
    event.reconciled = reconciled->get<bool>();
  }
  for (auto [name, field] :
       {std::pair{"peer", &event.scope.peer}, std::pair{"namespace", &event.scope.ns},
        std::pair{"partition", &event.scope.partition}}) {
    if (data.contains(name)) *field = fields.String(name);
  }
  if (event.type == EventType::kServiceUp || event.type == EventType::kServiceDown) {
    event.instances_up = static_cast<int>(fields.Integer("instances_up"));
    event.instances_total = static_cast<int>(fields.Integer("instances_total"));
  } else {
    event.instance_id = fields.String("instance_id");
    event.node = fields.String("node");
    event.address = fields.String("address");
    event.port = static_cast<int>(fields.Integer("port"));
    if (const json* tags = fields.Get("tags", json::value_t::array)) {
      for (const json& tag : *tags) {
        if (tag.is_string()) event.tags.push_back(tag.get<std::string>());
      }
    }
    if (const json* meta = fields.Get("meta", json::value_t::object)) {
      for (const auto& [key, value] : meta->items()) {
        if (value.is_string()) event.meta[key] = value.get<std::string>();
      }
    }
    event.status = StatusField(fields, data, "status");
    event.previous_status = StatusField(fields, data, "previous_status");
    if (data.contains("reason")) {
      event.reason = ParseDownReason(fields.String("reason"));
      if (!event.reason) fields.Fail("reason", "is not a down reason");
    }
    if (const json* checks = fields.Get("checks", json::value_t::array)) {
      for (const json& entry : *checks) {
        if (!entry.is_object()) continue;
        Fields check_fields(entry, "data.checks[].");
        Check check;
        check.id = check_fields.String("check_id");
        check.name = check_fields.String("name");
        check.output = check_fields.String("output");
        check.status =
            ParseHealthStatus(check_fields.String("status")).value_or(HealthStatus::kCritical);
        if (!check_fields.error().empty()) return Status::InvalidArgument(check_fields.error());
        event.checks.push_back(std::move(check));
      }
    }
  }
  if (!fields.error().empty()) return Status::InvalidArgument(fields.error());
  // A bridge with several sources names the source in the subject: the
  // event is delivered again with the subject it first had.
  if (auto subject = document.find("subject"); subject != document.end() && subject->is_string()) {
    Event named = event;
    named.scope.named_in_subject = true;
    if (subject->get<std::string>() == named.Subject()) event.scope.named_in_subject = true;
  }
  return event;
}

}  // namespace hb
