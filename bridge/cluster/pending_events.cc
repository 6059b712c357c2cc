#include "bridge/cluster/pending_events.h"

#include <nlohmann/json.hpp>

#include "bridge/consul/consul_client.h"
#include "bridge/model/event_codec.h"

namespace hb {
namespace {

constexpr std::string_view kHead = R"({"v":1,"events":[)";
constexpr std::string_view kTail = "]}";

}  // namespace

std::string PendingEventsKey(std::string_view prefix, std::string_view service) {
  return std::string(prefix) + "/pending/" + PercentEncode(service);
}

PendingEventsValue EncodePendingEvents(const std::vector<std::string>& encoded, std::size_t limit) {
  PendingEventsValue out;
  // The newest events first: they are the ones a successor cannot rebuild
  // from anything else (the older ones are the likelier to have been
  // acknowledged by the time it reads them).
  std::size_t bytes = kHead.size() + kTail.size();
  std::size_t first = encoded.size();
  while (first > 0) {
    const std::size_t added = encoded[first - 1].size() + (first == encoded.size() ? 0 : 1);
    if (bytes + added > limit) break;
    bytes += added;
    --first;
  }
  out.kept = encoded.size() - first;
  out.left_out = first;
  out.value.reserve(bytes);
  out.value += kHead;
  for (std::size_t i = first; i < encoded.size(); ++i) {
    if (i != first) out.value += ',';
    out.value += encoded[i];
  }
  out.value += kTail;
  return out;
}

StatusOr<std::vector<Event>> DecodePendingEvents(std::string_view value) {
  // A little above the cap: a value written under a larger cap is still
  // read, one far beyond it is not ours.
  if (value.size() > 2 * kMaxPendingEventsBytes) {
    return Status::InvalidArgument("pending events: larger than " +
                                   std::to_string(2 * kMaxPendingEventsBytes) + " bytes");
  }
  const nlohmann::json parsed = nlohmann::json::parse(value, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return Status::InvalidArgument("pending events: not a JSON object");
  }
  const auto version = parsed.find("v");
  if (version == parsed.end() || !version->is_number_unsigned() || *version != 1) {
    return Status::InvalidArgument("pending events: \"v\" must be 1");
  }
  const auto events = parsed.find("events");
  if (events == parsed.end() || !events->is_array()) {
    return Status::InvalidArgument("pending events: \"events\" must be an array");
  }
  std::vector<Event> out;
  out.reserve(events->size());
  std::size_t i = 0;
  for (const auto& row : *events) {
    const std::string where = "pending events: events[" + std::to_string(i++) + "]";
    if (!row.is_object()) return Status::InvalidArgument(where + ": not an object");
    auto event = DecodeEvent(row.dump());
    if (!event.ok()) return Status::InvalidArgument(where + ": " + event.status().message());
    out.push_back(std::move(*event));
  }
  return out;
}

}  // namespace hb
