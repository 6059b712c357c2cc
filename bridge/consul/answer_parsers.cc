#include "bridge/consul/answer_parsers.h"

#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <optional>

namespace hb {
namespace {

// simdjson's DOM parser validates the whole body before anything is read,
// so a body that breaks off is "not valid JSON" whatever came before the
// break. It reads seven to ten times faster than building an nlohmann
// document (BM_ParseHealthAnswer), and every change of a service makes
// Consul send all of its instances again.
using simdjson::SUCCESS;
using simdjson::dom::element;
using simdjson::dom::element_type;

// The names the error messages have always used (nlohmann's).
const char* TypeName(element value) {
  switch (value.type()) {
    case element_type::ARRAY:
      return "array";
    case element_type::OBJECT:
      return "object";
    case element_type::STRING:
      return "string";
    case element_type::BOOL:
      return "boolean";
    case element_type::NULL_VALUE:
      return "null";
    default:
      return "number";
  }
}

// Typed access with the path kept for the error message. The first error
// wins; later reads become no-ops.
class Fields {
 public:
  explicit Fields(std::string& error) : error_(error) {}

  // The member `key` of `object`: nothing when it is absent (an error if
  // required) or null and optional.
  std::optional<element> Member(element object, const std::string& path, const char* key,
                                bool required) {
    if (!error_.empty()) return std::nullopt;
    element value;
    const bool found = object.at_key(key).get(value) == SUCCESS;
    if (!found || (value.is_null() && !required)) {
      if (required && !found) error_ = path + "." + key + ": missing";
      return std::nullopt;
    }
    return value;
  }

  std::string String(element object, const std::string& path, const char* key,
                     bool required = true) {
    const auto value = Member(object, path, key, required);
    if (!value) return {};
    std::string_view text;
    if (value->get_string().get(text) != SUCCESS) {
      return Fail(path + "." + key, "a string", *value), std::string();
    }
    return std::string(text);
  }

  std::uint64_t Uint64(element object, const std::string& path, const char* key,
                       bool required = true) {
    const auto value = Member(object, path, key, required);
    if (!value) return 0;
    std::uint64_t out = 0;
    if (value->get_uint64().get(out) == SUCCESS) return out;
    return Fail(path + "." + key, "an unsigned integer", *value), 0;
  }

  int Int(element object, const std::string& path, const char* key) {
    const auto value = Member(object, path, key, true);
    if (!value) return 0;
    // Narrowed to int as nlohmann's get<int>() did: ports fit.
    std::int64_t signed_value = 0;
    if (value->get_int64().get(signed_value) == SUCCESS) return static_cast<int>(signed_value);
    std::uint64_t unsigned_value = 0;
    if (value->get_uint64().get(unsigned_value) == SUCCESS) {
      return static_cast<int>(unsigned_value);
    }
    return Fail(path + "." + key, "an integer", *value), 0;
  }

  // An array of strings, or null (Consul writes null for no tags).
  std::vector<std::string> Strings(element object, const std::string& path, const char* key) {
    const auto value = Member(object, path, key, false);
    if (!value) return {};
    return StringsOf(*value, path + "." + key);
  }

  std::vector<std::string> StringsOf(element value, const std::string& path) {
    std::vector<std::string> out;
    if (value.is_null()) return out;
    simdjson::dom::array items;
    if (value.get_array().get(items) != SUCCESS) {
      return Fail(path, "an array of strings", value), out;
    }
    out.reserve(items.size());
    std::size_t i = 0;
    for (element item : items) {
      std::string_view text;
      if (item.get_string().get(text) != SUCCESS) {
        Fail(path + "[" + std::to_string(i) + "]", "a string", item);
        return out;
      }
      out.emplace_back(text);
      ++i;
    }
    return out;
  }

  // An object of strings, or null.
  std::map<std::string, std::string> StringMap(element object, const std::string& path,
                                               const char* key) {
    const auto value = Member(object, path, key, false);
    std::map<std::string, std::string> out;
    if (!value) return out;
    simdjson::dom::object items;
    if (value->get_object().get(items) != SUCCESS) {
      return Fail(path + "." + key, "an object of strings", *value), out;
    }
    for (const auto field : items) {
      std::string_view text;
      if (field.value.get_string().get(text) != SUCCESS) {
        Fail(path + "." + key + "." + std::string(field.key), "a string", field.value);
        return out;
      }
      out.emplace(field.key, text);
    }
    return out;
  }

  std::optional<element> Object(element object, const std::string& path, const char* key) {
    const auto value = Member(object, path, key, true);
    if (value && !value->is_object()) {
      Fail(path + "." + key, "an object", *value);
      return std::nullopt;
    }
    return value;
  }

  void Fail(const std::string& path, const char* expected, element got) {
    if (error_.empty()) error_ = path + ": expected " + expected + ", got " + TypeName(got);
  }

  bool ok() const { return error_.empty(); }

 private:
  std::string& error_;
};

// Parses `body` into `root`; the parser owns what `root` points into.
bool ParseJson(simdjson::dom::parser& parser, std::string_view body, element& root) {
  return parser.parse(body.data(), body.size()).get(root) == SUCCESS;
}

Status NotJson(const char* what) {
  return Status::InvalidArgument(std::string(what) + ": body is not valid JSON");
}

std::optional<Check> ReadCheck(Fields& fields, element item, const std::string& path,
                               std::string& error) {
  if (!item.is_object()) {
    fields.Fail(path, "an object", item);
    return std::nullopt;
  }
  Check check;
  check.id = fields.String(item, path, "CheckID");
  check.name = fields.String(item, path, "Name", false);
  const std::string status = fields.String(item, path, "Status");
  check.output = fields.String(item, path, "Output", false);
  check.notes = fields.String(item, path, "Notes", false);
  check.service_id = fields.String(item, path, "ServiceID", false);
  check.type = fields.String(item, path, "Type", false);
  if (!fields.ok()) return std::nullopt;
  const auto parsed = ParseHealthStatus(status);
  if (!parsed || *parsed == HealthStatus::kMaintenance) {
    error = path + ".Status: expected passing, warning or critical, got \"" + status + "\"";
    return std::nullopt;
  }
  check.status = *parsed;
  return check;
}

}  // namespace

StatusOr<HealthAnswer> ParseHealthService(std::string_view body) {
  simdjson::dom::parser parser;
  element root;
  if (!ParseJson(parser, body, root)) return NotJson("health answer");
  simdjson::dom::array entries;
  if (root.get_array().get(entries) != SUCCESS) {
    return Status::InvalidArgument(std::string("health answer: expected an array, got ") +
                                   TypeName(root));
  }
  std::string error;
  Fields fields(error);
  HealthAnswer answer;
  answer.instances.reserve(entries.size());
  std::size_t i = 0;
  for (element entry : entries) {
    const std::string path = "[" + std::to_string(i++) + "]";
    if (!entry.is_object()) {
      fields.Fail(path, "an object", entry);
      break;
    }
    const auto node = fields.Object(entry, path, "Node");
    const auto service = fields.Object(entry, path, "Service");
    if (!node || !service) break;
    const std::string node_path = path + ".Node";
    const std::string service_path = path + ".Service";
    Instance instance;
    instance.node = fields.String(*node, node_path, "Node");
    const std::string node_address = fields.String(*node, node_path, "Address", false);
    instance.id = fields.String(*service, service_path, "ID");
    instance.service = fields.String(*service, service_path, "Service");
    instance.address = fields.String(*service, service_path, "Address", false);
    if (instance.address.empty()) instance.address = node_address;
    instance.port = fields.Int(*service, service_path, "Port");
    instance.tags = fields.Strings(*service, service_path, "Tags");
    instance.meta = fields.StringMap(*service, service_path, "Meta");
    instance.modify_index = fields.Uint64(*service, service_path, "ModifyIndex", false);
    // The names key every event and every saved instance; Consul never
    // sends them empty, so an empty one is a broken answer.
    for (const auto& [value, field] :
         {std::pair{&instance.node, ".Node.Node"}, std::pair{&instance.id, ".Service.ID"},
          std::pair{&instance.service, ".Service.Service"}}) {
      if (fields.ok() && value->empty()) error = path + field + ": expected a non-empty string";
    }
    if (!fields.ok()) break;

    const auto checks = fields.Member(entry, path, "Checks", false);
    if (checks) {
      simdjson::dom::array items;
      if (checks->get_array().get(items) != SUCCESS) {
        fields.Fail(path + ".Checks", "an array", *checks);
        break;
      }
      instance.checks.reserve(items.size());
      std::size_t c = 0;
      for (element item : items) {
        const std::string check_path = path + ".Checks[" + std::to_string(c++) + "]";
        auto check = ReadCheck(fields, item, check_path, error);
        if (!check) break;
        instance.modify_index =
            std::max(instance.modify_index, fields.Uint64(item, check_path, "ModifyIndex", false));
        instance.checks.push_back(std::move(*check));
      }
      if (!fields.ok()) break;
    }
    answer.instances.push_back(std::move(instance));
  }
  if (!error.empty()) return Status::InvalidArgument("health answer: " + error);
  return answer;
}

StatusOr<std::vector<CheckRow>> ParseHealthState(std::string_view body) {
  simdjson::dom::parser parser;
  element root;
  if (!ParseJson(parser, body, root)) return NotJson("health state answer");
  simdjson::dom::array entries;
  if (root.get_array().get(entries) != SUCCESS) {
    return Status::InvalidArgument(std::string("health state answer: expected an array, got ") +
                                   TypeName(root));
  }
  std::string error;
  Fields fields(error);
  std::vector<CheckRow> rows;
  rows.reserve(entries.size());
  std::size_t i = 0;
  for (element entry : entries) {
    const std::string path = "[" + std::to_string(i++) + "]";
    if (!entry.is_object()) {
      fields.Fail(path, "an object", entry);
      break;
    }
    CheckRow row;
    row.node = fields.String(entry, path, "Node");
    row.check_id = fields.String(entry, path, "CheckID");
    row.service_id = fields.String(entry, path, "ServiceID", false);
    row.service_name = fields.String(entry, path, "ServiceName", false);
    row.status = fields.String(entry, path, "Status");
    row.modify_index = fields.Uint64(entry, path, "ModifyIndex");
    if (fields.ok() && (row.node.empty() || row.check_id.empty())) {
      error = path + ": expected a non-empty Node and CheckID";
    }
    if (fields.ok() && !row.service_id.empty() && row.service_name.empty()) {
      error = path + ".ServiceName: expected a non-empty string for a service check";
    }
    if (!fields.ok()) break;
    rows.push_back(std::move(row));
  }
  if (!error.empty()) return Status::InvalidArgument("health state answer: " + error);
  return rows;
}

StatusOr<CatalogServices> ParseCatalogServices(std::string_view body) {
  simdjson::dom::parser parser;
  element root;
  if (!ParseJson(parser, body, root)) return NotJson("catalog answer");
  simdjson::dom::object entries;
  if (root.get_object().get(entries) != SUCCESS) {
    return Status::InvalidArgument(std::string("catalog answer: expected an object, got ") +
                                   TypeName(root));
  }
  std::string error;
  Fields fields(error);
  CatalogServices services;
  for (const auto entry : entries) {
    if (entry.key.empty()) return Status::InvalidArgument("catalog answer: empty service name");
    services.emplace(entry.key, fields.StringsOf(entry.value, std::string(entry.key)));
    if (!fields.ok()) return Status::InvalidArgument("catalog answer: " + error);
  }
  return services;
}

StatusOr<AgentSelf> ParseAgentSelf(std::string_view body) {
  simdjson::dom::parser parser;
  element root;
  if (!ParseJson(parser, body, root)) return NotJson("agent/self answer");
  if (!root.is_object()) {
    return Status::InvalidArgument(std::string("agent/self answer: expected an object, got ") +
                                   TypeName(root));
  }
  std::string error;
  Fields fields(error);
  const auto config = fields.Object(root, "", "Config");
  AgentSelf self;
  if (config) {
    self.datacenter = fields.String(*config, ".Config", "Datacenter");
    self.node_name = fields.String(*config, ".Config", "NodeName", false);
  }
  if (!error.empty()) return Status::InvalidArgument("agent/self answer: " + error.substr(1));
  return self;
}

StatusOr<PeeringStates> ParsePeerings(std::string_view body) {
  simdjson::dom::parser parser;
  element root;
  if (!ParseJson(parser, body, root)) return NotJson("peerings answer");
  simdjson::dom::array entries;
  if (root.get_array().get(entries) != SUCCESS) {
    return Status::InvalidArgument(std::string("peerings answer: expected a list, got ") +
                                   TypeName(root));
  }
  std::string error;
  Fields fields(error);
  PeeringStates states;
  std::size_t i = 0;
  for (const element entry : entries) {
    const std::string path = "[" + std::to_string(i++) + "]";
    if (!entry.is_object()) {
      return Status::InvalidArgument("peerings answer: " + path + ": expected an object, got " +
                                     std::string(TypeName(entry)));
    }
    std::string name = fields.String(entry, path, "Name");
    std::string state = fields.String(entry, path, "State");
    if (!error.empty()) return Status::InvalidArgument("peerings answer: " + error);
    states.insert_or_assign(std::move(name), std::move(state));
  }
  return states;
}

}  // namespace hb
