#include "bridge/consul/answer_parsers.h"

#include <nlohmann/json.hpp>

namespace hb {
namespace {

using nlohmann::json;

// Typed access with the path kept for the error message. The first error
// wins; later reads become no-ops.
class Fields {
 public:
  explicit Fields(std::string& error) : error_(error) {}

  const json* Member(const json& object, const std::string& path, const char* key, bool required) {
    if (!error_.empty()) return nullptr;
    auto it = object.find(key);
    if (it == object.end() || (it->is_null() && !required)) {
      if (required) error_ = path + "." + key + ": missing";
      return nullptr;
    }
    return &*it;
  }

  std::string String(const json& object, const std::string& path, const char* key,
                     bool required = true) {
    const json* value = Member(object, path, key, required);
    if (value == nullptr) return {};
    if (!value->is_string()) return Fail(path + "." + key, "a string", *value), std::string();
    return value->get<std::string>();
  }

  int Int(const json& object, const std::string& path, const char* key) {
    const json* value = Member(object, path, key, true);
    if (value == nullptr) return 0;
    if (!value->is_number_integer()) return Fail(path + "." + key, "an integer", *value), 0;
    return value->get<int>();
  }

  // An array of strings, or null (Consul writes null for no tags).
  std::vector<std::string> Strings(const json& object, const std::string& path, const char* key) {
    const json* value = Member(object, path, key, false);
    std::vector<std::string> out;
    if (value == nullptr) return out;
    if (!value->is_array()) return Fail(path + "." + key, "an array of strings", *value), out;
    for (std::size_t i = 0; i < value->size(); ++i) {
      const json& item = (*value)[i];
      if (!item.is_string()) {
        Fail(path + "." + key + "[" + std::to_string(i) + "]", "a string", item);
        return out;
      }
      out.push_back(item.get<std::string>());
    }
    return out;
  }

  // An object of strings, or null.
  std::map<std::string, std::string> StringMap(const json& object, const std::string& path,
                                               const char* key) {
    const json* value = Member(object, path, key, false);
    std::map<std::string, std::string> out;
    if (value == nullptr) return out;
    if (!value->is_object()) return Fail(path + "." + key, "an object of strings", *value), out;
    for (const auto& [name, item] : value->items()) {
      if (!item.is_string()) {
        Fail(path + "." + key + "." + name, "a string", item);
        return out;
      }
      out.emplace(name, item.get<std::string>());
    }
    return out;
  }

  const json* Object(const json& object, const std::string& path, const char* key) {
    const json* value = Member(object, path, key, true);
    if (value != nullptr && !value->is_object()) {
      Fail(path + "." + key, "an object", *value);
      return nullptr;
    }
    return value;
  }

  void Fail(const std::string& path, const char* expected, const json& got) {
    if (error_.empty()) error_ = path + ": expected " + expected + ", got " + got.type_name();
  }

  bool ok() const { return error_.empty(); }

 private:
  std::string& error_;
};

StatusOr<json> ParseJson(std::string_view body, const char* what) {
  json root = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    return Status::InvalidArgument(std::string(what) + ": body is not valid JSON");
  }
  return root;
}

}  // namespace

StatusOr<HealthAnswer> ParseHealthService(std::string_view body) {
  auto root = ParseJson(body, "health answer");
  if (!root.ok()) return root.status();
  if (!root->is_array()) {
    return Status::InvalidArgument(std::string("health answer: expected an array, got ") +
                                   root->type_name());
  }
  std::string error;
  Fields fields(error);
  HealthAnswer answer;
  answer.instances.reserve(root->size());
  for (std::size_t i = 0; i < root->size() && fields.ok(); ++i) {
    const json& entry = (*root)[i];
    const std::string path = "[" + std::to_string(i) + "]";
    if (!entry.is_object()) {
      fields.Fail(path, "an object", entry);
      break;
    }
    const json* node = fields.Object(entry, path, "Node");
    const json* service = fields.Object(entry, path, "Service");
    if (node == nullptr || service == nullptr) break;
    Instance instance;
    instance.node = fields.String(*node, path + ".Node", "Node");
    const std::string node_address = fields.String(*node, path + ".Node", "Address", false);
    instance.id = fields.String(*service, path + ".Service", "ID");
    instance.service = fields.String(*service, path + ".Service", "Service");
    instance.address = fields.String(*service, path + ".Service", "Address", false);
    if (instance.address.empty()) instance.address = node_address;
    instance.port = fields.Int(*service, path + ".Service", "Port");
    instance.tags = fields.Strings(*service, path + ".Service", "Tags");
    instance.meta = fields.StringMap(*service, path + ".Service", "Meta");
    // The names key every event and every saved instance; Consul never
    // sends them empty, so an empty one is a broken answer.
    for (const auto& [value, field] :
         {std::pair{&instance.node, ".Node.Node"}, std::pair{&instance.id, ".Service.ID"},
          std::pair{&instance.service, ".Service.Service"}}) {
      if (fields.ok() && value->empty()) error = path + field + ": expected a non-empty string";
    }
    if (!fields.ok()) break;

    const json* checks = fields.Member(entry, path, "Checks", false);
    if (checks != nullptr && !checks->is_array())
      fields.Fail(path + ".Checks", "an array", *checks);
    if (checks != nullptr && checks->is_array()) {
      for (std::size_t c = 0; c < checks->size() && fields.ok(); ++c) {
        const json& item = (*checks)[c];
        const std::string check_path = path + ".Checks[" + std::to_string(c) + "]";
        if (!item.is_object()) {
          fields.Fail(check_path, "an object", item);
          break;
        }
        Check check;
        check.id = fields.String(item, check_path, "CheckID");
        check.name = fields.String(item, check_path, "Name", false);
        const std::string status = fields.String(item, check_path, "Status");
        check.output = fields.String(item, check_path, "Output", false);
        check.notes = fields.String(item, check_path, "Notes", false);
        check.service_id = fields.String(item, check_path, "ServiceID", false);
        check.type = fields.String(item, check_path, "Type", false);
        if (!fields.ok()) break;
        const auto parsed = ParseHealthStatus(status);
        if (!parsed || *parsed == HealthStatus::kMaintenance) {
          error =
              check_path + ".Status: expected passing, warning or critical, got \"" + status + "\"";
          break;
        }
        check.status = *parsed;
        instance.checks.push_back(std::move(check));
      }
    }
    answer.instances.push_back(std::move(instance));
  }
  if (!error.empty()) return Status::InvalidArgument("health answer: " + error);
  return answer;
}

StatusOr<CatalogServices> ParseCatalogServices(std::string_view body) {
  auto root = ParseJson(body, "catalog answer");
  if (!root.ok()) return root.status();
  if (!root->is_object()) {
    return Status::InvalidArgument(std::string("catalog answer: expected an object, got ") +
                                   root->type_name());
  }
  std::string error;
  Fields fields(error);
  CatalogServices services;
  for (const auto& [name, tags] : root->items()) {
    if (name.empty()) return Status::InvalidArgument("catalog answer: empty service name");
    services.emplace(name, fields.Strings(*root, "", name.c_str()));
    if (!fields.ok()) return Status::InvalidArgument("catalog answer: " + error.substr(1));
  }
  return services;
}

StatusOr<AgentSelf> ParseAgentSelf(std::string_view body) {
  auto root = ParseJson(body, "agent/self answer");
  if (!root.ok()) return root.status();
  std::string error;
  Fields fields(error);
  if (!root->is_object()) {
    return Status::InvalidArgument(std::string("agent/self answer: expected an object, got ") +
                                   root->type_name());
  }
  const json* config = fields.Object(*root, "", "Config");
  AgentSelf self;
  if (config != nullptr) {
    self.datacenter = fields.String(*config, ".Config", "Datacenter");
    self.node_name = fields.String(*config, ".Config", "NodeName", false);
  }
  if (!error.empty()) return Status::InvalidArgument("agent/self answer: " + error.substr(1));
  return self;
}

}  // namespace hb
