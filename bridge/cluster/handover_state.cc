#include "bridge/cluster/handover_state.h"

#include <nlohmann/json.hpp>

#include "bridge/consul/consul_client.h"

namespace hb {

std::string HandoverStateKey(std::string_view prefix, std::string_view service) {
  return std::string(prefix) + "/state/" + PercentEncode(service);
}

std::string EncodeHandoverState(const ReportedService& state, std::size_t limit) {
  nlohmann::json instances = nlohmann::json::array();
  for (const auto& [key, instance] : state.instances) {
    instances.push_back(nlohmann::json::array(
        {key.first, key.second, instance.up, ToString(instance.status), instance.index}));
  }
  const nlohmann::json value = {{"v", 1}, {"up", state.up}, {"instances", std::move(instances)}};
  // Invalid UTF-8 in a node name or id (Consul allows it) is replaced, not
  // thrown on: the pair then fails to match, and the instance is re-emitted
  // as new and gone, never lost.
  std::string encoded = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (encoded.size() > limit) return "";
  return encoded;
}

StatusOr<ReportedService> DecodeHandoverState(std::string_view value) {
  if (value.size() > kMaxHandoverStateBytes) {
    return Status::InvalidArgument("handover state: larger than " +
                                   std::to_string(kMaxHandoverStateBytes) + " bytes");
  }
  const nlohmann::json parsed = nlohmann::json::parse(value, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return Status::InvalidArgument("handover state: not a JSON object");
  }
  const auto version = parsed.find("v");
  if (version == parsed.end() || !version->is_number_unsigned() || *version != 1) {
    return Status::InvalidArgument("handover state: \"v\" must be 1");
  }
  const auto up = parsed.find("up");
  const auto instances = parsed.find("instances");
  if (up == parsed.end() || !up->is_boolean()) {
    return Status::InvalidArgument("handover state: \"up\" must be a boolean");
  }
  if (instances == parsed.end() || !instances->is_array()) {
    return Status::InvalidArgument("handover state: \"instances\" must be an array");
  }
  ReportedService state;
  state.up = up->get<bool>();
  std::size_t i = 0;
  for (const auto& row : *instances) {
    const std::string where = "handover state: instances[" + std::to_string(i++) + "]";
    if (!row.is_array() || row.size() != 5 || !row[0].is_string() || !row[1].is_string() ||
        !row[2].is_boolean() || !row[3].is_string() || !row[4].is_number_unsigned()) {
      return Status::InvalidArgument(
          where +
          ": expected [node, instance id, up, status, index] (string, string, boolean, "
          "string, unsigned integer)");
    }
    const auto status = ParseHealthStatus(row[3].get<std::string>());
    if (!status) return Status::InvalidArgument(where + ": unknown status");
    auto [it, added] = state.instances.try_emplace(
        {row[0].get<std::string>(), row[1].get<std::string>()},
        ReportedInstance{row[2].get<bool>(), *status, row[4].get<std::uint64_t>()});
    if (!added) return Status::InvalidArgument(where + ": the same instance twice");
  }
  return state;
}

}  // namespace hb
