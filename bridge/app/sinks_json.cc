#include "bridge/app/sinks_json.h"

#include <nlohmann/json.hpp>

#include "bridge/model/cloud_event.h"

namespace hb {

std::string SinksJson(const std::vector<SinkStatusReport>& sinks) {
  // Ordered: a person reads it, name first.
  using json = nlohmann::ordered_json;
  auto time = [](const std::optional<WallTime>& at) -> json {
    return at ? json(FormatRfc3339(*at)) : json(nullptr);
  };
  json list = json::array();
  for (const SinkStatusReport& sink : sinks) {
    const SinkDeliveryStatus& delivery = sink.delivery;
    json last_error = nullptr;
    if (delivery.last_error_at) {
      last_error = {{"message", delivery.last_error}, {"time", time(delivery.last_error_at)}};
    }
    list.push_back({{"name", sink.name},
                    {"type", sink.type},
                    {"target", sink.target},
                    {"state", std::string(delivery.state)},
                    {"last_success", time(delivery.last_success)},
                    {"last_error", std::move(last_error)},
                    {"consecutive_failures", delivery.consecutive_failures},
                    {"queue_depth", delivery.queue_depth},
                    {"spooled", delivery.spooled}});
  }
  // Peers' text (an error page's title) may hold invalid UTF-8: replaced,
  // never thrown on.
  return json{{"sinks", std::move(list)}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace hb
