#include "bridge/model/event_codec.h"

#include <nlohmann/json.hpp>

namespace hb {
namespace {

using nlohmann::json;

// Throws json::exception (caught by DecodeEvent) on an unknown name.
template <typename T, typename Parse>
T ParseOrThrow(const json& value, const char* field, Parse parse) {
  auto parsed = parse(value.get<std::string>());
  if (!parsed) throw json::other_error::create(501, std::string("unknown ") + field, &value);
  return *parsed;
}

}  // namespace

std::string EncodeEvent(const Event& event, std::optional<WallTime> queued_at) {
  json out = {{"type", ToString(event.type)},
              {"id", event.id},
              {"dc", event.datacenter},
              {"service", event.service},
              {"index", event.consul_index},
              {"time_ms",
               std::chrono::duration_cast<std::chrono::milliseconds>(event.time.time_since_epoch())
                   .count()}};
  if (queued_at) {
    out["queued_ms"] =
        std::chrono::duration_cast<std::chrono::milliseconds>(queued_at->time_since_epoch())
            .count();
  }
  if (event.reconciled) out["reconciled"] = true;
  if (event.silent) out["silent"] = true;
  if (event.epoch) out["epoch"] = *event.epoch;
  if (!event.scope.peer.empty()) out["peer"] = event.scope.peer;
  if (!event.scope.ns.empty()) out["ns"] = event.scope.ns;
  if (!event.scope.partition.empty()) out["partition"] = event.scope.partition;
  if (event.scope.named_in_subject) out["named"] = true;
  if (event.IsInstanceEvent()) {
    out["instance_id"] = event.instance_id;
    out["node"] = event.node;
    out["address"] = event.address;
    out["port"] = event.port;
    out["tags"] = event.tags;
    out["meta"] = event.meta;
    json& checks = out["checks"] = json::array();
    for (const Check& check : event.checks) {
      checks.push_back({check.id, check.name, ToString(check.status), check.output, check.notes,
                        check.service_id, check.type});
    }
    if (event.status) out["status"] = ToString(*event.status);
    if (event.previous_status) out["previous_status"] = ToString(*event.previous_status);
    if (event.reason) out["reason"] = ToString(*event.reason);
  } else {
    out["up"] = event.instances_up;
    out["total"] = event.instances_total;
  }
  return out.dump();
}

StatusOr<Event> DecodeEvent(std::string_view encoded, std::optional<WallTime>* queued_at) {
  const json in = json::parse(encoded, nullptr, /*allow_exceptions=*/false);
  if (!in.is_object()) return Status::DataLoss("spooled event: not a JSON object");
  const char* field = "type";
  // Whether the record has `name`, which becomes the field an error names.
  const auto has = [&](const char* name) {
    field = name;
    return in.contains(name);
  };
  try {
    Event event;
    event.type = ParseOrThrow<EventType>(in.at(field), field, ParseEventType);
    event.id = in.at(field = "id").get<std::string>();
    event.datacenter = in.at(field = "dc").get<std::string>();
    event.service = in.at(field = "service").get<std::string>();
    event.consul_index = in.at(field = "index").get<std::uint64_t>();
    event.time = WallTime(std::chrono::milliseconds(in.at(field = "time_ms").get<std::int64_t>()));
    if (queued_at != nullptr) {
      queued_at->reset();
      if (has("queued_ms")) {
        *queued_at = WallTime(std::chrono::milliseconds(in.at(field).get<std::int64_t>()));
      }
    }
    event.reconciled = in.value(field = "reconciled", false);
    event.silent = in.value(field = "silent", false);
    if (in.contains("epoch")) event.epoch = in.at(field = "epoch").get<std::uint64_t>();
    event.scope.peer = in.value(field = "peer", std::string());
    event.scope.ns = in.value(field = "ns", std::string());
    event.scope.partition = in.value(field = "partition", std::string());
    event.scope.named_in_subject = in.value(field = "named", false);
    if (in.contains("instance_id")) {
      event.instance_id = in.at(field = "instance_id").get<std::string>();
      event.node = in.at(field = "node").get<std::string>();
      event.address = in.at(field = "address").get<std::string>();
      event.port = in.at(field = "port").get<int>();
      event.tags = in.at(field = "tags").get<std::vector<std::string>>();
      event.meta = in.at(field = "meta").get<std::map<std::string, std::string>>();
      for (const json& check : in.at(field = "checks")) {
        event.checks.push_back({check.at(0).get<std::string>(), check.at(1).get<std::string>(),
                                ParseOrThrow<HealthStatus>(check.at(2), field, ParseHealthStatus),
                                check.at(3).get<std::string>(), check.at(4).get<std::string>(),
                                check.at(5).get<std::string>(), check.at(6).get<std::string>()});
      }
      if (has("status")) {
        event.status = ParseOrThrow<HealthStatus>(in.at(field), field, ParseHealthStatus);
      }
      if (has("previous_status")) {
        event.previous_status = ParseOrThrow<HealthStatus>(in.at(field), field, ParseHealthStatus);
      }
      if (has("reason")) {
        event.reason = ParseOrThrow<DownReason>(in.at(field), field, ParseDownReason);
      }
    } else {
      event.instances_up = in.at(field = "up").get<int>();
      event.instances_total = in.at(field = "total").get<int>();
    }
    return event;
  } catch (const json::exception&) {
    return Status::DataLoss(std::string("spooled event: field '") + field +
                            "' is missing or has the wrong type");
  }
}

}  // namespace hb
