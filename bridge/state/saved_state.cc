#include "bridge/state/saved_state.h"

#include <nlohmann/json.hpp>

namespace hb {
namespace {

using nlohmann::json;

constexpr int kFormatVersion = 1;

json EncodeInstance(const SavedInstance& saved) {
  const Instance& instance = saved.instance;
  json checks = json::array();
  for (const Check& check : instance.checks) {
    checks.push_back({{"id", check.id},
                      {"name", check.name},
                      {"status", ToString(check.status)},
                      {"output", check.output},
                      {"notes", check.notes},
                      {"service_id", check.service_id},
                      {"type", check.type}});
  }
  return {{"datacenter", saved.datacenter},
          {"service", saved.service},
          {"node", instance.node},
          {"id", instance.id},
          {"address", instance.address},
          {"port", instance.port},
          {"tags", instance.tags},
          {"meta", instance.meta},
          {"checks", std::move(checks)},
          {"reported_status", ToString(saved.reported_status)},
          {"reported_up", saved.reported_up},
          {"index", saved.index},
          {"since_ms",
           std::chrono::duration_cast<std::chrono::milliseconds>(saved.since.time_since_epoch())
               .count()}};
}

// Reads one typed field or records why it cannot.
class Reader {
 public:
  Reader(const json& object, std::string path) : object_(object), path_(std::move(path)) {}

  template <typename T>
  T Get(const char* key) {
    if (!error_.empty()) return T{};
    auto it = object_.find(key);
    if (it == object_.end()) {
      error_ = path_ + "." + key + ": missing";
      return T{};
    }
    try {
      return it->template get<T>();
    } catch (const json::exception&) {
      error_ = path_ + "." + key + ": wrong type (" + it->type_name() + ")";
      return T{};
    }
  }

  HealthStatus Status(const char* key) {
    const auto text = Get<std::string>(key);
    if (!error_.empty()) return HealthStatus::kCritical;
    auto status = ParseHealthStatus(text);
    if (!status) error_ = path_ + "." + key + ": unknown status \"" + text + "\"";
    return status.value_or(HealthStatus::kCritical);
  }

  const std::string& error() const { return error_; }

 private:
  const json& object_;
  const std::string path_;
  std::string error_;
};

}  // namespace

namespace {

// The scope's fields, only when set: a file of a bridge with one source is
// the same as before sources existed.
void EncodeScope(json& out, const SourceScope& scope) {
  if (!scope.peer.empty()) out["peer"] = scope.peer;
  if (!scope.ns.empty()) out["namespace"] = scope.ns;
  if (!scope.partition.empty()) out["partition"] = scope.partition;
  if (scope.named_in_subject) out["named_in_subject"] = true;
}

// Empty on success, else what is wrong at `path`.
std::string DecodeScope(const json& in, const std::string& path, SourceScope& scope) {
  for (auto [name, field] : {std::pair{"peer", &scope.peer}, std::pair{"namespace", &scope.ns},
                             std::pair{"partition", &scope.partition}}) {
    const auto it = in.find(name);
    if (it == in.end()) continue;
    if (!it->is_string()) return path + "." + name + ": expected a string";
    *field = it->get<std::string>();
  }
  if (const auto it = in.find("named_in_subject"); it != in.end()) {
    if (!it->is_boolean()) return path + ".named_in_subject: expected true or false";
    scope.named_in_subject = it->get<bool>();
  }
  return "";
}

}  // namespace

std::string EncodeSavedState(const SavedState& state) {
  json services = json::array();
  for (const auto& service : state.services) {
    json entry = {{"datacenter", service.datacenter}, {"service", service.service}};
    EncodeScope(entry, service.scope);
    services.push_back(std::move(entry));
  }
  json instances = json::array();
  for (const auto& instance : state.instances) {
    json entry = EncodeInstance(instance);
    EncodeScope(entry, instance.scope);
    instances.push_back(std::move(entry));
  }
  return json{{"version", kFormatVersion}, {"services", services}, {"instances", instances}}.dump();
}

StatusOr<SavedState> DecodeSavedState(std::string_view text) {
  json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return Status::DataLoss("saved state: not valid JSON");
  if (!root.is_object()) return Status::DataLoss("saved state: expected a JSON object");
  if (root.value("version", 0) != kFormatVersion) {
    return Status::DataLoss("saved state: unsupported version (expected " +
                            std::to_string(kFormatVersion) + ")");
  }
  const auto services = root.find("services");
  const auto instances = root.find("instances");
  if (services == root.end() || !services->is_array() || instances == root.end() ||
      !instances->is_array()) {
    return Status::DataLoss("saved state: expected arrays 'services' and 'instances'");
  }
  SavedState state;
  for (std::size_t i = 0; i < services->size(); ++i) {
    const json& entry = (*services)[i];
    if (!entry.is_object()) {
      return Status::DataLoss("saved state: services[" + std::to_string(i) +
                              "]: expected an object");
    }
    Reader read(entry, "services[" + std::to_string(i) + "]");
    SavedService service{read.Get<std::string>("datacenter"), read.Get<std::string>("service"), {}};
    if (!read.error().empty()) return Status::DataLoss("saved state: " + read.error());
    if (std::string bad = DecodeScope(entry, "services[" + std::to_string(i) + "]", service.scope);
        !bad.empty()) {
      return Status::DataLoss("saved state: " + bad);
    }
    state.services.push_back(std::move(service));
  }
  for (std::size_t i = 0; i < instances->size(); ++i) {
    const json& entry = (*instances)[i];
    const std::string path = "instances[" + std::to_string(i) + "]";
    if (!entry.is_object())
      return Status::DataLoss("saved state: " + path + ": expected an object");
    Reader read(entry, path);
    SavedInstance saved;
    saved.datacenter = read.Get<std::string>("datacenter");
    saved.service = read.Get<std::string>("service");
    if (std::string bad = DecodeScope(entry, path, saved.scope); !bad.empty()) {
      return Status::DataLoss("saved state: " + bad);
    }
    saved.instance.service = saved.service;
    saved.instance.node = read.Get<std::string>("node");
    saved.instance.id = read.Get<std::string>("id");
    saved.instance.address = read.Get<std::string>("address");
    saved.instance.port = read.Get<int>("port");
    saved.instance.tags = read.Get<std::vector<std::string>>("tags");
    saved.instance.meta = read.Get<std::map<std::string, std::string>>("meta");
    saved.reported_status = read.Status("reported_status");
    saved.reported_up = read.Get<bool>("reported_up");
    saved.index = read.Get<std::uint64_t>("index");
    saved.since = WallTime(std::chrono::milliseconds(read.Get<std::int64_t>("since_ms")));
    const auto checks = read.Get<json>("checks");
    if (!read.error().empty()) return Status::DataLoss("saved state: " + read.error());
    if (!checks.is_array())
      return Status::DataLoss("saved state: " + path + ".checks: expected an array");
    for (std::size_t c = 0; c < checks.size(); ++c) {
      if (!checks[c].is_object()) {
        return Status::DataLoss("saved state: " + path + ".checks[" + std::to_string(c) +
                                "]: expected an object");
      }
      Reader check_read(checks[c], path + ".checks[" + std::to_string(c) + "]");
      Check check;
      check.id = check_read.Get<std::string>("id");
      check.name = check_read.Get<std::string>("name");
      check.status = check_read.Status("status");
      check.output = check_read.Get<std::string>("output");
      check.notes = check_read.Get<std::string>("notes");
      check.service_id = check_read.Get<std::string>("service_id");
      check.type = check_read.Get<std::string>("type");
      if (!check_read.error().empty())
        return Status::DataLoss("saved state: " + check_read.error());
      saved.instance.checks.push_back(std::move(check));
    }
    state.instances.push_back(std::move(saved));
  }
  return state;
}

}  // namespace hb
