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

// Appends the instances that match the query to `list`.
void AppendJson(const std::vector<InstanceView>& instances, const InstancesDocumentOptions& options,
                const QueryParams& query, nlohmann::json& list) {
  using nlohmann::json;
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
    // Only for a source outside the default scope (watch.sources), as in
    // the events' data.
    json& listed = list.back();
    if (!view.scope.peer.empty()) listed["peer"] = view.scope.peer;
    if (!view.scope.ns.empty()) listed["namespace"] = view.scope.ns;
    if (!view.scope.partition.empty()) listed["partition"] = view.scope.partition;
  }
}

std::string Document(nlohmann::json list) {
  using nlohmann::json;
  // Check outputs are whatever a health check printed: never fail on them.
  return json{{"instances", std::move(list)}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

std::string InstancesJson(const std::vector<InstanceView>& instances,
                          const InstancesDocumentOptions& options, const QueryParams& query) {
  nlohmann::json list = nlohmann::json::array();
  AppendJson(instances, options, query, list);
  return Document(std::move(list));
}

InstancesEndpoint::InstancesEndpoint(InstancesDocumentOptions options)
    : options_(std::move(options)) {}

std::size_t InstancesEndpoint::Refresh(const TransitionEngine& engine) {
  auto next = std::make_shared<Snapshot>();
  std::size_t copied = 0;
  bool changed = false;
  engine.VisitServiceVersions([&](std::string_view key, std::uint64_t version) {
    auto it = last_->find(key);
    if (it != last_->end() && it->second.version == version) {
      next->emplace_hint(next->end(), it->first, it->second);
      return;
    }
    auto instances =
        std::make_shared<const std::vector<InstanceView>>(engine.ServiceInstances(key));
    copied += instances->size();
    changed = true;
    next->emplace_hint(next->end(), std::string(key), ServicePart{version, std::move(instances)});
  });
  if (!changed && next->size() == last_->size()) return 0;  // nothing moved, nothing left
  last_ = std::move(next);
  MutexLock lock(&mutex_);
  published_ = last_;
  return copied;
}

std::string InstancesEndpoint::Json(const QueryParams& query) const {
  std::shared_ptr<const Snapshot> snapshot;
  {
    MutexLock lock(&mutex_);
    snapshot = published_;
  }
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [key, part] : *snapshot) AppendJson(*part.instances, options_, query, list);
  return Document(std::move(list));
}

}  // namespace hb
