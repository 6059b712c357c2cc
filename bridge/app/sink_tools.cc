#include "bridge/app/sink_tools.h"

#include <prometheus/registry.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <thread>

#include "bridge/common/clock.h"
#include "bridge/model/cloud_event_reader.h"
#include "bridge/model/protocol_text.h"

namespace hb {
namespace {

using std::chrono::milliseconds;

// A transient failure gets this many attempts in all, a second apart: a
// tool run by hand should answer within seconds, not wait out an outage.
constexpr int kAttempts = 3;
constexpr milliseconds kPause{1000};

const SinkConfig* SinkNamed(const BridgeConfig& config, const std::string& name) {
  const auto it = std::find_if(config.sinks.begin(), config.sinks.end(),
                               [&](const SinkConfig& sink) { return sink.name == name; });
  return it == config.sinks.end() ? nullptr : &*it;
}

std::string SinkNames(const BridgeConfig& config) {
  std::string names;
  for (const SinkConfig& sink : config.sinks) names += (names.empty() ? "" : ", ") + sink.name;
  return names.empty() ? "none" : names;
}

// One sink built from the config, with what its factory needs.
class StandaloneSink {
 public:
  StandaloneSink(const BridgeConfig& config, const SinkRegistry& registry)
      : config_(config), registry_(registry) {}

  StatusOr<Sink*> Get(const std::string& name) {
    if (auto it = sinks_.find(name); it != sinks_.end()) return it->second.get();
    const SinkConfig* sink = SinkNamed(config_, name);
    if (sink == nullptr) {
      return Status::NotFound("no sink named \"" + LogSafe(name) +
                              "\" in the configuration (sinks: " + SinkNames(config_) + ")");
    }
    const SinkContext context{
        {config_.events.type_prefix, config_.events.source}, &clock_, &metrics_};
    auto created = registry_.Create(*sink, context);
    if (!created.ok()) return created.status();
    Sink* raw = created->get();
    sinks_.emplace(name, std::move(*created));
    return raw;
  }

  ~StandaloneSink() {
    for (auto& [name, sink] : sinks_) sink->Shutdown(std::chrono::seconds(5));
  }

 private:
  const BridgeConfig& config_;
  const SinkRegistry& registry_;
  SystemClock clock_;
  prometheus::Registry metrics_;  // a metrics sink's series go here, and nowhere
  std::map<std::string, SinkPtr> sinks_;
};

DeliveryResult DeliverWithRetries(Sink& sink, const Event& event) {
  const std::vector<EventPtr> batch{std::make_shared<const Event>(event)};
  DeliveryResult result;
  for (int attempt = 1; attempt <= kAttempts; ++attempt) {
    std::vector<DeliveryResult> results(1);
    sink.Deliver(batch, results);
    result = std::move(results[0]);
    if (result.kind != DeliveryResult::Kind::kRetry) return result;
    if (attempt < kAttempts) std::this_thread::sleep_for(kPause);
  }
  return result;
}

std::string HostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "health-bridge";
  return name;
}

Event TestEvent(const std::string& datacenter) {
  const WallTime now = std::chrono::system_clock::now();
  const auto stamp = std::chrono::duration_cast<milliseconds>(now.time_since_epoch()).count();
  Event event;
  event.type = EventType::kInstanceUp;
  event.datacenter = datacenter.empty() ? "health-bridge-test" : datacenter;
  event.service = "health-bridge-test";
  event.node = HostName();
  event.instance_id = "health-bridge-test-" + std::to_string(stamp);
  event.meta = {{"health_bridge_test", "true"}};
  event.status = HealthStatus::kPassing;
  event.time = now;
  event.id = InstanceEventId(event.datacenter, event.node, event.instance_id, 0, "instance.up");
  return event;
}

}  // namespace

int TestSink(const BridgeConfig& config, const SinkRegistry& registry, const std::string& name,
             std::ostream& out) {
  StandaloneSink sinks(config, registry);
  auto sink = sinks.Get(name);
  if (!sink.ok()) {
    out << "test-sink: " << sink.status().message() << "\n";
    return sink.status().code() == StatusCode::kNotFound ? 2 : 1;
  }
  const Event event = TestEvent(config.consul.client.datacenter);
  out << "test-sink: sending a test event (service health-bridge-test, instance "
      << event.instance_id << ", id " << event.id << ") through sink " << name << "\n";
  const auto started = std::chrono::steady_clock::now();
  const DeliveryResult result = DeliverWithRetries(**sink, event);
  const auto took =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started);
  if (result.kind == DeliveryResult::Kind::kOk) {
    out << "test-sink: delivered in " << took.count() << " ms\n";
    return 0;
  }
  out << "test-sink: "
      << (result.kind == DeliveryResult::Kind::kRetry ? "failed (transient, "
                                                      : "rejected (permanent, ")
      << kAttempts << " attempts at most) after " << took.count() << " ms: " << result.error
      << "\n";
  return 1;
}

int ReplayDeadLetters(const BridgeConfig& config, const SinkRegistry& registry,
                      const std::string& file, const std::optional<std::string>& sink_override,
                      std::ostream& out) {
  std::ifstream in(file);
  if (!in) {
    out << "replay: cannot read " << file << "\n";
    return 2;
  }
  const std::string failed_path = file + ".failed";
  std::ofstream failed;
  std::size_t delivered = 0;
  std::size_t kept = 0;
  std::size_t number = 0;
  auto keep = [&](const std::string& line, const std::string& why) {
    if (!failed.is_open()) failed.open(failed_path, std::ios::app);
    nlohmann::json entry = nlohmann::json::parse(line, nullptr, false);
    if (!entry.is_object()) entry = nlohmann::json{{"unreadable_line", line}};
    entry["replay_error"] = why;
    failed << entry.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    ++kept;
    out << "replay: line " << number << ": kept in " << failed_path << ": " << why << "\n";
  };

  StandaloneSink sinks(config, registry);
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto entry = nlohmann::json::parse(line, nullptr, false);
    if (!entry.is_object() || !entry.contains("event") || !entry["event"].is_object()) {
      keep(line, "not a dead letter (a JSON object with an \"event\")");
      continue;
    }
    std::string name = sink_override.value_or("");
    if (name.empty() && entry.contains("sink") && entry["sink"].is_string()) name = entry["sink"];
    if (name.empty()) {
      keep(line, "names no sink: give --sink NAME");
      continue;
    }
    auto event = ReadCloudEvent(entry["event"].dump());
    if (!event.ok()) {
      keep(line, "the event cannot be read: " + event.status().message());
      continue;
    }
    auto sink = sinks.Get(name);
    if (!sink.ok()) {
      keep(line, sink.status().message());
      continue;
    }
    const DeliveryResult result = DeliverWithRetries(**sink, *event);
    if (result.kind != DeliveryResult::Kind::kOk) {
      keep(line, "sink " + name + ": " + result.error);
      continue;
    }
    ++delivered;
  }
  out << "replay: " << delivered << " of " << delivered + kept << " events from " << file
      << " delivered";
  if (kept > 0) out << "; " << kept << " kept in " << failed_path;
  out << "\n";
  return kept == 0 ? 0 : 1;
}

}  // namespace hb
