#include "tests/support/consul/session_store.h"

#include <algorithm>
#include <cstdio>

#include "config/duration.h"

namespace hb::test_support {
namespace {

using nlohmann::json;

// A duration as Go's time.Duration.String() writes it, the form Consul's
// error texts and TTL fields use: "500ms", "10s", "1m0s", "24h0m0s".
std::string GoDurationText(std::chrono::milliseconds duration) {
  const long long ms = duration.count();
  if (ms == 0) return "0s";
  if (ms < 1000) return std::to_string(ms) + "ms";
  const long long hours = ms / 3600000;
  const long long minutes = (ms / 60000) % 60;
  const long long millis = ms % 60000;
  std::string seconds = std::to_string(millis / 1000);
  if (millis % 1000 != 0) {
    char fraction[8];
    std::snprintf(fraction, sizeof(fraction), ".%03lld", millis % 1000);
    std::string text = fraction;
    while (text.back() == '0') text.pop_back();
    seconds += text;
  }
  if (hours > 0) return std::to_string(hours) + "h" + std::to_string(minutes) + "m" + seconds + "s";
  if (minutes > 0) return std::to_string(minutes) + "m" + seconds + "s";
  return seconds + "s";
}

std::chrono::milliseconds Scaled(std::chrono::milliseconds duration, double factor) {
  return std::chrono::milliseconds(
      static_cast<std::int64_t>(static_cast<double>(duration.count()) * factor));
}

// A list of check IDs (NodeChecks, the deprecated Checks) or of
// {"ID": ...} objects (ServiceChecks).
bool ReadCheckIds(const json& value, std::vector<std::string>& out) {
  out.clear();
  if (value.is_null()) return true;
  if (!value.is_array()) return false;
  for (const json& item : value) {
    if (item.is_string()) {
      out.push_back(item.get<std::string>());
    } else if (item.is_object() && item.contains("ID") && item["ID"].is_string()) {
      out.push_back(item["ID"].get<std::string>());
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

SessionStore::SessionStore(SessionRules rules) : rules_(rules) {}

std::string SessionStore::NewId() {
  char text[40];
  const std::uint64_t high = random_();
  const std::uint64_t low = random_();
  std::snprintf(text, sizeof(text), "%08llx-%04llx-%04llx-%04llx-%012llx",
                static_cast<unsigned long long>(high >> 32),
                static_cast<unsigned long long>((high >> 16) & 0xffff),
                static_cast<unsigned long long>(high & 0xffff),
                static_cast<unsigned long long>(low >> 48), low & 0xffffffffffffULL);
  return text;
}

SessionStore::CreateResult SessionStore::Create(const json& body, const std::string& default_node,
                                                TestCatalog& catalog, TestTime now) {
  const auto fail = [](int status, std::string error) {
    CreateResult result;
    result.status = status;
    result.error = std::move(error);
    return result;
  };
  if (!body.is_null() && !body.is_object()) {
    return fail(400, "Request decode failed: expected a JSON object");
  }
  TestSession session;
  session.node = default_node;
  session.node_checks = {"serfHealth"};
  if (body.is_object()) {
    for (const auto& [field, value] : body.items()) {
      if (field == "Name" || field == "Node" || field == "Behavior" || field == "TTL") {
        if (!value.is_string()) {
          return fail(400, "Request decode failed: " + field + " must be a string");
        }
        const std::string text = value.get<std::string>();
        if (field == "Name") session.name = text;
        if (field == "Node") session.node = text;
        if (field == "Behavior") session.behavior = text;
        if (field == "TTL") session.ttl_text = text;
      } else if (field == "LockDelay") {
        if (value.is_number_unsigned() || value.is_number_integer()) {
          // A bare number is nanoseconds, except that one below 1000 is read
          // as seconds (clients write 15 meaning 15s).
          const std::int64_t number = value.get<std::int64_t>();
          if (number < 0) return fail(400, "Request decode failed: LockDelay must not be negative");
          session.lock_delay = number < 1000
                                   ? std::chrono::seconds(number)
                                   : std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::nanoseconds(number));
        } else if (value.is_string()) {
          auto parsed = ParseDuration(value.get<std::string>());
          if (!parsed) {
            return fail(400, "Request decode failed: time: invalid duration \"" +
                                 value.get<std::string>() + "\"");
          }
          session.lock_delay = *parsed;
        } else {
          return fail(400, "Request decode failed: LockDelay must be a duration");
        }
      } else if (field == "NodeChecks" || field == "Checks") {
        if (!ReadCheckIds(value, session.node_checks)) {
          return fail(400, "Request decode failed: " + field + " must be a list of check IDs");
        }
      } else if (field == "ServiceChecks" && !ReadCheckIds(value, session.service_checks)) {
        return fail(400, "Request decode failed: ServiceChecks must be a list of {\"ID\": ...}");
      }
    }
  }
  // Consul holds no lock back for longer than a minute, whatever was asked.
  session.lock_delay = std::min(session.lock_delay, kMaxLockDelay);
  if (session.node.empty()) return fail(500, "Must provide Node");
  if (session.behavior != "release" && session.behavior != "delete") {
    return fail(500, "Invalid Behavior setting '" + session.behavior + "'");
  }
  if (!session.ttl_text.empty()) {
    auto ttl = ParseDuration(session.ttl_text);
    if (!ttl) {
      return fail(500, "Session TTL '" + session.ttl_text + "' invalid: time: invalid duration \"" +
                           session.ttl_text + "\"");
    }
    if (ttl->count() != 0 && (*ttl < rules_.min_ttl || *ttl > kMaxTtl)) {
      // Consul prints the asked TTL in nanoseconds (Go's %d of a Duration).
      return fail(500, "Invalid Session TTL '" +
                           std::to_string(std::chrono::nanoseconds(*ttl).count()) +
                           "', must be between [" + GoDurationText(rules_.min_ttl) + "=" +
                           GoDurationText(kMaxTtl) + "]");
    }
    if (ttl->count() != 0) session.asked_ttl = session.ttl = *ttl;
  }
  if (!catalog.HasNode(session.node)) return fail(500, "Missing node registration");
  for (const auto* list : {&session.node_checks, &session.service_checks}) {
    for (const std::string& check_id : *list) {
      const TestCheck* check = catalog.FindCheck(session.node, check_id);
      if (check == nullptr) return fail(500, "Missing check '" + check_id + "' registration");
      if (check->status == "critical") {
        return fail(500, "Check '" + check_id + "' is in critical state");
      }
    }
  }
  session.id = NewId();
  session.create_index = session.modify_index = index_ = catalog.NextIndex();
  if (session.ttl) session.reap_at = now + Scaled(*session.ttl, rules_.reap_multiplier);
  CreateResult result;
  result.id = session.id;
  sessions_[session.id] = std::move(session);
  return result;
}

const TestSession* SessionStore::Renew(const std::string& id, TestTime now) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return nullptr;
  TestSession& session = it->second;
  if (session.asked_ttl) {
    session.ttl = std::max(*session.asked_ttl, Scaled(*session.asked_ttl, rules_.ttl_handback));
    if (*session.ttl != *session.asked_ttl) session.ttl_text = GoDurationText(*session.ttl);
    session.reap_at = now + Scaled(*session.ttl, rules_.reap_multiplier);
  }
  return &session;
}

std::optional<TestSession> SessionStore::Remove(const std::string& id, TestCatalog& catalog) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  TestSession session = std::move(it->second);
  sessions_.erase(it);
  index_ = catalog.NextIndex();
  return session;
}

const TestSession* SessionStore::Find(const std::string& id) const {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : &it->second;
}

std::vector<std::string> SessionStore::Expired(TestTime now) const {
  std::vector<std::string> out;
  for (const auto& [id, session] : sessions_) {
    if (session.reap_at && *session.reap_at <= now) out.push_back(id);
  }
  return out;
}

std::vector<std::string> SessionStore::WithFailedChecks(const TestCatalog& catalog) const {
  std::vector<std::string> out;
  for (const auto& [id, session] : sessions_) {
    if (!catalog.HasNode(session.node)) {
      out.push_back(id);
      continue;
    }
    bool failed = false;
    for (const auto* list : {&session.node_checks, &session.service_checks}) {
      for (const std::string& check_id : *list) {
        const TestCheck* check = catalog.FindCheck(session.node, check_id);
        failed = failed || check == nullptr || check->status == "critical";
      }
    }
    if (failed) out.push_back(id);
  }
  return out;
}

json SessionStore::Json(const TestSession& session) const {
  json service_checks = nullptr;
  if (!session.service_checks.empty()) {
    service_checks = json::array();
    for (const auto& id : session.service_checks) {
      service_checks.push_back({{"ID", id}, {"Namespace", ""}});
    }
  }
  return {{"ID", session.id},
          {"Name", session.name},
          {"Node", session.node},
          {"LockDelay", std::chrono::nanoseconds(session.lock_delay).count()},
          {"Behavior", session.behavior},
          {"TTL", session.ttl_text},
          {"NodeChecks", session.node_checks.empty() ? json(nullptr) : json(session.node_checks)},
          {"ServiceChecks", service_checks},
          {"CreateIndex", session.create_index},
          {"ModifyIndex", session.modify_index}};
}

json SessionStore::Info(const std::string& id) const {
  json out = json::array();
  if (const TestSession* session = Find(id)) out.push_back(Json(*session));
  return out;
}

json SessionStore::List() const {
  json out = json::array();
  for (const auto& [id, session] : sessions_) out.push_back(Json(session));
  return out;
}

json SessionStore::OnNode(const std::string& node) const {
  json out = json::array();
  for (const auto& [id, session] : sessions_) {
    if (session.node == node) out.push_back(Json(session));
  }
  return out;
}

void SessionStore::ResetIndex(std::uint64_t to) {
  index_ = std::min(index_, to);
  for (auto& [id, session] : sessions_) {
    session.create_index = std::min(session.create_index, to);
    session.modify_index = std::min(session.modify_index, to);
  }
}

}  // namespace hb::test_support
