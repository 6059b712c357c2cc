#include "tests/support/consul/test_catalog.h"

#include <algorithm>
#include <set>

#include "config/duration.h"

namespace hb::test_support {
namespace {

using nlohmann::json;

std::optional<std::chrono::milliseconds> GoDuration(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string() || it->get<std::string>().empty()) return std::nullopt;
  return ParseDuration(it->get<std::string>());
}

std::string Str(const json& object, const char* key, std::string fallback = "") {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::move(fallback);
}

std::string Key(const std::string& node, const std::string& id) { return node + "/" + id; }

}  // namespace

TestCatalog::TestCatalog(std::string datacenter, std::chrono::milliseconds check_update_interval,
                         std::shared_ptr<std::uint64_t> raft_index, CatalogPlacement placement)
    : datacenter_(std::move(datacenter)),
      index_(raft_index ? std::move(raft_index) : std::make_shared<std::uint64_t>(1)),
      placement_(std::move(placement)),
      check_update_interval_(check_update_interval) {}

std::uint64_t TestCatalog::Bump() { return ++*index_; }

std::set<std::string> TestCatalog::ServiceNames() const {
  std::set<std::string> names;
  for (const auto& [name, count] : instance_counts_) {
    if (count > 0) names.insert(name);
  }
  return names;
}

void TestCatalog::TouchService(const std::string& name, std::uint64_t index) {
  service_index_[name] = index;
  touched_services_.insert(name);
}

void TestCatalog::TouchNodeServices(const std::string& node, std::uint64_t index) {
  for (const auto& [key, service] : services_) {
    if (service.node == node) TouchService(service.name, index);
  }
}

void TestCatalog::TouchCheck(TestCheck& check, std::uint64_t index) {
  check.modify_index = index;
  checks_index_ = index;
  if (check.service_id.empty()) {
    TouchNodeServices(check.node, index);
  } else if (auto it = services_.find(Key(check.node, check.service_id)); it != services_.end()) {
    TouchService(it->second.name, index);
  }
}

void TestCatalog::EnsureNode(const std::string& name, const std::string& address) {
  if (nodes_.contains(name)) return;
  const std::uint64_t index = Bump();
  TestNode node;
  node.name = name;
  node.address = address;
  // Stable, UUID-shaped, different per node.
  const std::size_t hash = std::hash<std::string>{}(name);
  char id[40];
  std::snprintf(id, sizeof(id), "%08zx-0000-4000-8000-%012zx", hash & 0xffffffff,
                hash & 0xffffffffffff);
  node.id = id;
  node.create_index = node.modify_index = index;
  nodes_[name] = node;
  TestCheck serf;
  serf.node = name;
  serf.id = "serfHealth";
  serf.name = "Serf Health Status";
  serf.status = "passing";
  serf.output = "Agent alive and reachable";
  serf.create_index = index;
  TouchCheck(serf, index);
  PutCheck(Key(name, serf.id), serf);
}

std::string TestCatalog::RegisterService(const std::string& node, const json& body, TestTime now) {
  if (!body.is_object()) return "Request decode failed: expected a JSON object";
  TestService service;
  service.node = node;
  service.name = Str(body, "Name");
  if (service.name.empty()) return "Missing service name";
  service.id = Str(body, "ID", service.name);
  service.address = Str(body, "Address");
  if (body.contains("Port") && body["Port"].is_number_integer()) service.port = body["Port"];
  if (body.contains("Tags") && body["Tags"].is_array()) {
    for (const auto& tag : body["Tags"]) {
      if (tag.is_string()) service.tags.push_back(tag);
    }
  }
  if (body.contains("Meta") && body["Meta"].is_object()) {
    for (const auto& [name, value] : body["Meta"].items()) {
      if (value.is_string()) service.meta[name] = value;
    }
  }
  const std::uint64_t index = Bump();
  const std::string key = Key(node, service.id);
  auto existing = services_.find(key);
  service.create_index = existing == services_.end() ? index : existing->second.create_index;
  service.modify_index = index;
  if (existing != services_.end()) {
    --instance_counts_[existing->second.name];
    service_keys_by_name_[existing->second.name].erase(key);
  }
  ++instance_counts_[service.name];
  service_keys_by_name_[service.name].insert(key);
  services_[key] = service;
  // Consul moves the services table's index (what /v1/catalog/services
  // answers with) on every service write, meta, address or port alike,
  // even when the names-and-tags body it serves stays the same.
  services_index_ = index;
  TouchService(service.name, index);
  return AddServiceChecks(service, body, now);
}

std::string TestCatalog::AddServiceChecks(const TestService& service, const json& body,
                                          TestTime now) {
  std::vector<json> definitions;
  if (body.contains("Check") && body["Check"].is_object()) definitions.push_back(body["Check"]);
  if (body.contains("Checks") && body["Checks"].is_array()) {
    for (const auto& check : body["Checks"]) definitions.push_back(check);
  }
  const std::uint64_t index = *index_;
  for (std::size_t i = 0; i < definitions.size(); ++i) {
    const json& definition = definitions[i];
    if (!definition.is_object()) return "Check definition must be an object";
    TestCheck check;
    check.node = service.node;
    check.service_id = service.id;
    check.id = Str(definition, "CheckID", Str(definition, "ID"));
    if (check.id.empty()) {
      check.id =
          "service:" + service.id + (definitions.size() > 1 ? ":" + std::to_string(i + 1) : "");
    }
    check.name = Str(definition, "Name", "Service '" + service.name + "' check");
    check.notes = Str(definition, "Notes");
    check.ttl = GoDuration(definition, "TTL");
    check.deregister_critical_after = GoDuration(definition, "DeregisterCriticalServiceAfter");
    check.tcp = Str(definition, "TCP");
    check.http = Str(definition, "HTTP");
    if (auto interval = GoDuration(definition, "Interval")) check.interval = *interval;
    if (auto timeout = GoDuration(definition, "Timeout")) check.timeout = *timeout;
    check.type = check.ttl ? "ttl" : !check.tcp.empty() ? "tcp" : !check.http.empty() ? "http" : "";
    if (check.type.empty()) return "Check " + check.id + ": one of TTL, TCP or HTTP is required";
    // A new check starts critical unless its definition says otherwise; a
    // re-registered one keeps the status it had (the agent does).
    const std::string key = Key(service.node, check.id);
    auto existing = checks_.find(key);
    if (existing != checks_.end()) {
      check.status = existing->second.status;
      check.output = existing->second.output;
      check.critical_since = existing->second.critical_since;
      check.create_index = existing->second.create_index;
    } else {
      check.create_index = index;
    }
    const std::string status = Str(definition, "Status");
    if (!status.empty()) check.status = status;
    if (check.ttl) {
      check.ttl_deadline = now + *check.ttl;
      ttl_deadlines_.emplace(*check.ttl_deadline, key);
    }
    check.next_probe = now;
    if (!check.tcp.empty() || !check.http.empty()) probe_deadlines_.emplace(now, key);
    if (check.status == "critical" && !check.critical_since) check.critical_since = now;
    if (check.status != "critical") check.critical_since.reset();
    TouchCheck(check, index);
    PutCheck(key, check);
  }
  return "";
}

std::string TestCatalog::CatalogRegister(const json& body, TestTime now) {
  if (!body.is_object()) return "Request decode failed: expected a JSON object";
  const std::string node = Str(body, "Node");
  if (node.empty()) return "Must provide node";
  EnsureNode(node, Str(body, "Address", "127.0.0.1"));
  if (body.contains("Service") && body["Service"].is_object()) {
    json service = body["Service"];
    if (service.contains("Service") && !service.contains("Name"))
      service["Name"] = service["Service"];
    std::string error = RegisterService(node, service, now);
    if (!error.empty()) return error;
    services_[Key(node, Str(service, "ID", Str(service, "Name")))].via_agent = false;
  }
  std::vector<json> checks;
  if (body.contains("Check") && body["Check"].is_object()) checks.push_back(body["Check"]);
  if (body.contains("Checks") && body["Checks"].is_array()) {
    for (const auto& check : body["Checks"]) checks.push_back(check);
  }
  for (const auto& definition : checks) {
    const std::uint64_t index = Bump();
    TestCheck check;
    check.node = node;
    check.id = Str(definition, "CheckID");
    check.name = Str(definition, "Name", check.id);
    check.status = Str(definition, "Status", "critical");
    check.output = Str(definition, "Output");
    check.notes = Str(definition, "Notes");
    check.service_id = Str(definition, "ServiceID");
    check.create_index = index;
    TouchCheck(check, index);
    PutCheck(Key(node, check.id), check);
  }
  return "";
}

void TestCatalog::RemoveService(const std::string& node, const std::string& id) {
  auto it = services_.find(Key(node, id));
  if (it == services_.end()) return;
  const std::uint64_t index = Bump();
  const std::string name = it->second.name;
  --instance_counts_[name];
  service_keys_by_name_[name].erase(it->first);
  services_.erase(it);
  if (auto owned = check_keys_by_owner_.find(Key(node, id)); owned != check_keys_by_owner_.end()) {
    for (const std::string& key : std::set<std::string>(owned->second)) EraseCheck(key);
  }
  services_index_ = index;
  checks_index_ = index;
  TouchService(name, index);
}

bool TestCatalog::DeregisterService(const std::string& node, const std::string& id) {
  if (!services_.contains(Key(node, id))) return false;
  RemoveService(node, id);
  return true;
}

bool TestCatalog::RemoveAllServices() {
  std::vector<std::pair<std::string, std::string>> doomed;
  doomed.reserve(services_.size());
  for (const auto& [key, service] : services_) doomed.emplace_back(service.node, service.id);
  for (const auto& [node, id] : doomed) RemoveService(node, id);
  return !doomed.empty();
}

bool TestCatalog::CatalogDeregister(const std::string& node, const std::string& service_id) {
  return DeregisterService(node, service_id);
}

bool TestCatalog::UpdateCheck(const std::string& node, const std::string& id,
                              const std::string& status, const std::string& output, TestTime now) {
  auto it = checks_.find(Key(node, id));
  if (it == checks_.end()) return false;
  TestCheck& check = it->second;
  if (check.ttl) {
    check.ttl_deadline = now + *check.ttl;
    ttl_deadlines_.emplace(*check.ttl_deadline, it->first);
  }
  const std::string& agent_output = check.deferred_output ? *check.deferred_output : check.output;
  if (check.status == status && agent_output == output) return true;  // no write, no index bump
  if (check.status == status && check_update_interval_.count() > 0) {
    // The agent keeps a new output of an unchanged status to itself and
    // writes it back once, interval/2 + up to one interval later: a
    // heartbeat moves no index (Consul's check_update_interval).
    check.deferred_output = output;
    if (!check.deferred_write_at) {
      const auto stagger = std::chrono::milliseconds(static_cast<std::int64_t>(
          stagger_() % static_cast<std::uint64_t>(check_update_interval_.count())));
      check.deferred_write_at = now + check_update_interval_ / 2 + stagger;
      deferred_writes_.emplace(*check.deferred_write_at, it->first);
    }
    return true;
  }
  if (status == "critical" && check.status != "critical") check.critical_since = now;
  if (status != "critical") check.critical_since.reset();
  check.status = status;
  check.output = output;
  check.deferred_output.reset();  // written now; the pending write-back finds nothing to do
  TouchCheck(check, Bump());
  return true;
}

bool TestCatalog::WriteDeferredOutputs(TestTime now) {
  bool changed = false;
  while (!deferred_writes_.empty() && deferred_writes_.top().first <= now) {
    const auto [when, key] = deferred_writes_.top();
    deferred_writes_.pop();
    auto it = checks_.find(key);
    if (it == checks_.end() || it->second.deferred_write_at != when) continue;
    TestCheck& check = it->second;
    check.deferred_write_at.reset();
    if (!check.deferred_output) continue;
    const bool differs = *check.deferred_output != check.output;
    check.output = *std::exchange(check.deferred_output, std::nullopt);
    if (!differs) continue;
    TouchCheck(check, Bump());
    changed = true;
  }
  return changed;
}

bool TestCatalog::SetServiceMaintenance(const std::string& node, const std::string& service_id,
                                        bool enable, const std::string& reason, TestTime now) {
  if (!services_.contains(Key(node, service_id))) return false;
  const std::string check_id = "_service_maintenance:" + service_id;
  const std::string key = Key(node, check_id);
  if (!enable) {
    if (checks_.contains(key)) {
      EraseCheck(key);
      const std::uint64_t index = Bump();
      checks_index_ = index;
      TouchService(services_[Key(node, service_id)].name, index);
    }
    return true;
  }
  if (checks_.contains(key)) return true;
  TestCheck check;
  check.node = node;
  check.id = check_id;
  check.name = "Service Maintenance Mode";
  check.status = "critical";
  check.notes = reason.empty() ? "Maintenance mode is enabled for this service, but no reason "
                                 "was provided. This is a default message."
                               : reason;
  check.service_id = service_id;
  check.type = "maintenance";
  check.critical_since = now;
  const std::uint64_t index = Bump();
  check.create_index = index;
  TouchCheck(check, index);
  PutCheck(key, check);
  return true;
}

void TestCatalog::SetNodeMaintenance(const std::string& node, bool enable,
                                     const std::string& reason, TestTime now) {
  const std::string key = Key(node, "_node_maintenance");
  if (!enable) {
    if (checks_.contains(key)) {
      EraseCheck(key);
      const std::uint64_t index = Bump();
      checks_index_ = index;
      TouchNodeServices(node, index);
    }
    return;
  }
  if (checks_.contains(key)) return;
  TestCheck check;
  check.node = node;
  check.id = "_node_maintenance";
  check.name = "Node Maintenance Mode";
  check.status = "critical";
  check.notes = reason.empty() ? "Maintenance mode is enabled for this node, but no reason was "
                                 "provided. This is a default message."
                               : reason;
  check.type = "maintenance";
  check.critical_since = now;
  const std::uint64_t index = Bump();
  check.create_index = index;
  TouchCheck(check, index);
  PutCheck(key, check);
}

bool TestCatalog::SetNodeCheck(const std::string& node, const std::string& check_id,
                               const std::string& status, const std::string& output, TestTime now) {
  return UpdateCheck(node, check_id, status, output, now);
}

const TestCheck* TestCatalog::FindCheck(const std::string& node,
                                        const std::string& check_id) const {
  auto it = checks_.find(Key(node, check_id));
  return it == checks_.end() ? nullptr : &it->second;
}

bool TestCatalog::ExpireTtls(TestTime now) {
  bool changed = false;
  while (!ttl_deadlines_.empty() && ttl_deadlines_.top().first <= now) {
    const auto [deadline, key] = ttl_deadlines_.top();
    ttl_deadlines_.pop();
    auto it = checks_.find(key);
    if (it == checks_.end()) continue;  // deregistered since
    TestCheck& check = it->second;
    if (!check.ttl || check.ttl_deadline != deadline) continue;  // re-armed since
    check.ttl_deadline.reset();                                  // re-armed by the next update
    if (check.status == "critical" && check.output == "TTL expired") continue;
    if (check.status != "critical") check.critical_since = now;
    check.status = "critical";
    check.output = "TTL expired";
    check.deferred_output.reset();
    TouchCheck(check, Bump());
    changed = true;
  }
  return changed;
}

bool TestCatalog::Reap(TestTime now, std::chrono::milliseconds minimum) {
  std::set<std::pair<std::string, std::string>> doomed;
  for (const auto& [key, check] : checks_) {
    if (check.service_id.empty() || !check.deregister_critical_after || !check.critical_since) {
      continue;
    }
    const auto after = std::max(*check.deregister_critical_after, minimum);
    auto service = services_.find(Key(check.node, check.service_id));
    if (service == services_.end() || !service->second.via_agent) continue;
    if (now - *check.critical_since >= after) doomed.emplace(check.node, check.service_id);
  }
  for (const auto& [node, id] : doomed) RemoveService(node, id);
  return !doomed.empty();
}

std::vector<TestCatalog::Probe> TestCatalog::DueProbes(TestTime now) {
  std::vector<Probe> due;
  while (!probe_deadlines_.empty() && probe_deadlines_.top().first <= now) {
    const auto [deadline, key] = probe_deadlines_.top();
    probe_deadlines_.pop();
    auto it = checks_.find(key);
    if (it == checks_.end()) continue;  // deregistered since
    TestCheck& check = it->second;
    if ((check.tcp.empty() && check.http.empty()) || check.next_probe != deadline) continue;
    check.next_probe = now + check.interval;
    probe_deadlines_.emplace(check.next_probe, key);
    due.push_back({key.substr(key.find('/') + 1), check.tcp.empty() ? check.http : check.tcp,
                   !check.http.empty(), check.timeout});
  }
  return due;
}

void TestCatalog::ResetIndex(std::uint64_t to) {
  *index_ = to;
  services_index_ = std::min(services_index_, to);
  checks_index_ = std::min(checks_index_, to);
  for (auto& [name, index] : service_index_) index = std::min(index, to);
  for (auto& [key, node] : nodes_) {
    node.create_index = std::min(node.create_index, to);
    node.modify_index = std::min(node.modify_index, to);
  }
  for (auto& [key, service] : services_) {
    service.create_index = std::min(service.create_index, to);
    service.modify_index = std::min(service.modify_index, to);
  }
  for (auto& [key, check] : checks_) {
    check.create_index = std::min(check.create_index, to);
    check.modify_index = std::min(check.modify_index, to);
  }
}

json TestCatalog::CatalogServices() const {
  json out = json::object();
  for (const auto& [key, service] : services_) {
    json& tags = out[service.name];
    if (tags.is_null()) tags = json::array();
    for (const auto& tag : service.tags) {
      if (std::find(tags.begin(), tags.end(), tag) == tags.end()) tags.push_back(tag);
    }
  }
  return out;
}

std::vector<const TestCheck*> TestCatalog::ChecksOf(const std::string& node,
                                                    const std::string& service_id) const {
  // The node's checks and the service's, in checks_ (key) order.
  std::vector<std::string> keys;
  for (const std::string& owner : {Key(node, ""), Key(node, service_id)}) {
    auto owned = check_keys_by_owner_.find(owner);
    if (owned != check_keys_by_owner_.end())
      keys.insert(keys.end(), owned->second.begin(), owned->second.end());
    if (service_id.empty()) break;
  }
  std::sort(keys.begin(), keys.end());
  std::vector<const TestCheck*> out;
  out.reserve(keys.size());
  for (const std::string& key : keys) out.push_back(&checks_.at(key));
  return out;
}

void TestCatalog::PutCheck(const std::string& key, const TestCheck& check) {
  if (auto existing = checks_.find(key); existing != checks_.end()) {
    check_keys_by_owner_[Key(existing->second.node, existing->second.service_id)].erase(key);
  }
  check_keys_by_owner_[Key(check.node, check.service_id)].insert(key);
  checks_[key] = check;
}

void TestCatalog::EraseCheck(const std::string& key) {
  auto it = checks_.find(key);
  if (it == checks_.end()) return;
  auto owned = check_keys_by_owner_.find(Key(it->second.node, it->second.service_id));
  if (owned != check_keys_by_owner_.end()) {
    owned->second.erase(key);
    if (owned->second.empty()) check_keys_by_owner_.erase(owned);
  }
  checks_.erase(it);
}

json TestCatalog::CheckJson(const TestCheck& check) const {
  std::string service_name;
  json service_tags = json::array();
  if (!check.service_id.empty()) {
    if (auto it = services_.find(Key(check.node, check.service_id)); it != services_.end()) {
      service_name = it->second.name;
      service_tags = it->second.tags;
    }
  }
  json out = {{"Node", check.node},
              {"CheckID", check.id},
              {"Name", check.name},
              {"Status", check.status},
              {"Notes", check.notes},
              {"Output", check.output},
              {"ServiceID", check.service_id},
              {"ServiceName", service_name},
              {"ServiceTags", service_tags},
              {"Type", check.type},
              {"Interval", ""},
              {"Timeout", ""},
              {"ExposedPort", 0},
              {"Definition", json::object()},
              {"Namespace", CheckNamespace(check)},
              {"CreateIndex", check.create_index},
              {"ModifyIndex", check.modify_index}};
  if (!placement_.partition.empty()) out["Partition"] = placement_.partition;
  if (!placement_.peer.empty()) out["PeerName"] = placement_.peer;
  return out;
}

std::string TestCatalog::CheckNamespace(const TestCheck& check) const {
  // A node's checks belong to its partition's default namespace, whichever
  // namespace the services on it are in.
  return check.service_id.empty() ? std::string("default") : placement_.ns;
}

json TestCatalog::HealthService(const std::string& name, bool passing_only,
                                const std::vector<std::string>& tags) const {
  json out = json::array();
  const auto named = service_keys_by_name_.find(name);
  if (named == service_keys_by_name_.end()) return out;
  // Consul sorts by node name; the keys are node/id, so this is it.
  for (const std::string& key : named->second) {
    const TestService& service = services_.at(key);
    const bool has_tags = std::all_of(tags.begin(), tags.end(), [&](const std::string& tag) {
      return std::find(service.tags.begin(), service.tags.end(), tag) != service.tags.end();
    });
    if (!has_tags) continue;
    const auto checks = ChecksOf(service.node, service.id);
    if (passing_only && std::any_of(checks.begin(), checks.end(), [](const TestCheck* check) {
          return check->status != "passing";
        })) {
      continue;
    }
    const TestNode& node = nodes_.at(service.node);
    json checks_json = json::array();
    for (const TestCheck* check : checks) checks_json.push_back(CheckJson(*check));
    json node_json = {{"ID", node.id},
                      {"Node", node.name},
                      {"Address", node.address},
                      {"Datacenter", datacenter_},
                      {"TaggedAddresses", {{"lan", node.address}, {"wan", node.address}}},
                      {"Meta", node.meta},
                      {"CreateIndex", node.create_index},
                      {"ModifyIndex", node.modify_index}};
    json service_json = {{"ID", service.id},
                         {"Service", service.name},
                         {"Tags", service.tags},
                         {"Address", service.address},
                         {"Meta", service.meta},
                         {"Port", service.port},
                         {"Weights", {{"Passing", 1}, {"Warning", 1}}},
                         {"EnableTagOverride", false},
                         {"Namespace", placement_.ns},
                         {"CreateIndex", service.create_index},
                         {"ModifyIndex", service.modify_index}};
    // Nodes live in a partition, not a namespace; imported nodes and
    // services carry the peer they came from.
    if (!placement_.partition.empty()) {
      node_json["Partition"] = placement_.partition;
      service_json["Partition"] = placement_.partition;
    }
    if (!placement_.peer.empty()) {
      node_json["PeerName"] = placement_.peer;
      service_json["PeerName"] = placement_.peer;
    }
    out.push_back({{"Node", std::move(node_json)},
                   {"Service", std::move(service_json)},
                   {"Checks", std::move(checks_json)}});
  }
  return out;
}

std::uint64_t TestCatalog::HealthServiceIndex(const std::string& name) const {
  auto it = service_index_.find(name);
  const std::uint64_t own = it == service_index_.end() ? 0 : it->second;
  const auto count = instance_counts_.find(name);
  const bool exists = count != instance_counts_.end() && count->second > 0;
  // A service without instances answers with the services table's index,
  // so its watch wakes on any catalog write (as real Consul does).
  return exists ? std::max<std::uint64_t>(own, 1) : std::max(own, services_index_);
}

namespace {

void AppendJsonString(std::string& out, const std::string& text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (byte < 0x20) {
      out += "\\u00";
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xF]);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

}  // namespace

std::string TestCatalog::HealthStateText(const std::string& state,
                                         const CheckFilter* filter) const {
  std::string out = "[";
  bool first = true;
  for (const auto& entry : checks_) {
    // A named reference, not a structured binding: lambdas may capture it.
    const auto& check = entry.second;
    if (state != "any" && check.status != state) continue;
    const TestService* service = nullptr;
    if (!check.service_id.empty()) {
      if (auto it = services_.find(Key(check.node, check.service_id)); it != services_.end()) {
        service = &it->second;
      }
    }
    if (filter != nullptr && !filter->Matches([&](std::string_view selector) -> std::string {
          if (selector == "Status") return check.status;
          if (selector == "Node") return check.node;
          if (selector == "CheckID") return check.id;
          if (selector == "Name") return check.name;
          if (selector == "ServiceID") return check.service_id;
          if (selector == "ServiceName") return service == nullptr ? std::string() : service->name;
          return {};
        })) {
      continue;
    }
    if (!first) out.push_back(',');
    first = false;
    // The keys and their order of CheckJson() (nlohmann sorts them).
    out += "{\"CheckID\":";
    AppendJsonString(out, check.id);
    out += ",\"CreateIndex\":" + std::to_string(check.create_index);
    out += ",\"Definition\":{},\"ExposedPort\":0,\"Interval\":\"\",\"ModifyIndex\":" +
           std::to_string(check.modify_index);
    out += ",\"Name\":";
    AppendJsonString(out, check.name);
    out += ",\"Namespace\":";
    AppendJsonString(out, CheckNamespace(check));
    out += ",\"Node\":";
    AppendJsonString(out, check.node);
    out += ",\"Notes\":";
    AppendJsonString(out, check.notes);
    out += ",\"Output\":";
    AppendJsonString(out, check.output);
    if (!placement_.partition.empty()) {
      out += ",\"Partition\":";
      AppendJsonString(out, placement_.partition);
    }
    if (!placement_.peer.empty()) {
      out += ",\"PeerName\":";
      AppendJsonString(out, placement_.peer);
    }
    out += ",\"ServiceID\":";
    AppendJsonString(out, check.service_id);
    out += ",\"ServiceName\":";
    AppendJsonString(out, service == nullptr ? std::string() : service->name);
    out += ",\"ServiceTags\":[";
    if (service != nullptr) {
      for (std::size_t i = 0; i < service->tags.size(); ++i) {
        if (i > 0) out.push_back(',');
        AppendJsonString(out, service->tags[i]);
      }
    }
    out += "],\"Status\":";
    AppendJsonString(out, check.status);
    out += ",\"Timeout\":\"\",\"Type\":";
    AppendJsonString(out, check.type);
    out.push_back('}');
  }
  out.push_back(']');
  return out;
}

const std::set<std::string, std::less<>>& TestCatalog::HealthStateSelectors() {
  static const std::set<std::string, std::less<>> selectors = {
      "Status", "Node", "CheckID", "Name", "ServiceID", "ServiceName"};
  return selectors;
}

json TestCatalog::HealthState(const std::string& state) const {
  json out = json::array();
  for (const auto& [key, check] : checks_) {
    if (state == "any" || check.status == state) out.push_back(CheckJson(check));
  }
  return out;
}

}  // namespace hb::test_support
