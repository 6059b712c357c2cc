#include "bridge/server/instances_json.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "bridge/model/cloud_event.h"

namespace hb {
namespace {

constexpr std::size_t kMaxCheckOutput = 1024;

bool Wanted(const QueryParams& query, std::string_view name, std::string_view value) {
  bool asked = false;
  for (const auto& [key, wanted] : query) {
    if (key != name) continue;
    if (wanted == value) return true;
    asked = true;
  }
  return !asked;
}

}  // namespace

std::string InstancesJson(const std::vector<InstanceView>& instances,
                          const InstancesDocumentOptions& options, const QueryParams& query) {
  using nlohmann::json;
  json list = json::array();
  for (const InstanceView& view : instances) {
    const Instance& instance = *view.instance;
    if (!Wanted(query, "service", instance.service) ||
        !Wanted(query, "status", ToString(view.status))) {
      continue;
    }
    json checks = json::array();
    for (const Check& check : instance.checks) {
      checks.push_back({{"check_id", check.id},
                        {"name", check.name},
                        {"status", ToString(check.status)},
                        {"output", check.output.substr(0, kMaxCheckOutput)}});
    }
    json meta = json::object();
    for (const std::string& key : options.meta_keys) {
      if (auto it = instance.meta.find(key); it != instance.meta.end()) meta[key] = it->second;
    }
    list.push_back({{"datacenter", view.datacenter},
                    {"service", instance.service},
                    {"id", instance.id},
                    {"node", instance.node},
                    {"address", instance.address},
                    {"port", instance.port},
                    {"tags", instance.tags},
                    {"meta", std::move(meta)},
                    {"status", ToString(view.status)},
                    {"up", view.up},
                    {"since", FormatRfc3339(view.since)},
                    {"checks", std::move(checks)}});
  }
  // Check outputs are whatever a health check printed: never fail on them.
  return json{{"instances", std::move(list)}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

InstancesEndpoint::InstancesEndpoint(InstancesDocumentOptions options, CopyView copy_view,
                                     const Clock& clock, std::chrono::milliseconds max_age)
    : options_(std::move(options)),
      copy_view_(std::move(copy_view)),
      clock_(clock),
      max_age_(max_age) {}

std::string InstancesEndpoint::Json(const QueryParams& query) {
  std::shared_ptr<const std::vector<InstanceView>> view;
  {
    // One copy at a time: concurrent clients wait for it and share it.
    MutexLock lock(&mutex_);
    const SteadyTime now = clock_.Now();
    if (!view_ || now - copied_at_ >= max_age_) {
      view_ = std::make_shared<const std::vector<InstanceView>>(copy_view_());
      copied_at_ = now;
    }
    view = view_;
  }
  return InstancesJson(*view, options_, query);
}

}  // namespace hb
