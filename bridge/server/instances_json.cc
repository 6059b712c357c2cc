#include "bridge/server/instances_json.h"

#include <nlohmann/json.hpp>

#include "bridge/model/cloud_event.h"

namespace hb {

std::string InstancesJson(const std::vector<InstanceView>& instances) {
  using nlohmann::json;
  json list = json::array();
  for (const InstanceView& view : instances) {
    const Instance& instance = *view.instance;
    json checks = json::array();
    for (const Check& check : instance.checks) {
      checks.push_back({{"check_id", check.id},
                        {"name", check.name},
                        {"status", ToString(check.status)},
                        {"output", check.output}});
    }
    list.push_back({{"datacenter", view.datacenter},
                    {"service", instance.service},
                    {"id", instance.id},
                    {"node", instance.node},
                    {"address", instance.address},
                    {"port", instance.port},
                    {"tags", instance.tags},
                    {"meta", instance.meta},
                    {"status", ToString(view.status)},
                    {"up", view.up},
                    {"since", FormatRfc3339(view.since)},
                    {"checks", std::move(checks)}});
  }
  // Check outputs are whatever a health check printed: never fail on them.
  return json{{"instances", std::move(list)}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace hb
