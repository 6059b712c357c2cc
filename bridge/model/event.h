#pragma once

// A health event: the output of the transition engine and the input of every
// sink. docs/design.md's event table defines when each type fires.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/common/clock.h"
#include "bridge/model/health.h"
#include "bridge/model/source_scope.h"

namespace hb {

enum class EventType : std::uint8_t {
  kInstanceRegistered,
  kInstanceUp,
  kInstanceDown,
  kInstanceStatusChanged,
  kInstanceDeregistered,
  kServiceUp,
  kServiceDown,
};
inline constexpr EventType kAllEventTypes[] = {
    EventType::kInstanceRegistered,   EventType::kInstanceUp,
    EventType::kInstanceDown,         EventType::kInstanceStatusChanged,
    EventType::kInstanceDeregistered, EventType::kServiceUp,
    EventType::kServiceDown};

// "instance.registered", ..., "service.down": the `data.event` value and the
// suffix of the CloudEvents `type`.
std::string_view ToString(EventType type);
std::optional<EventType> ParseEventType(std::string_view text);

// Why an up instance went down: its aggregated status when that is not an
// up status (critical, maintenance, or warning when warning is configured as
// down), or deregistered when it left the catalog.
enum class DownReason : std::uint8_t { kCritical, kWarning, kMaintenance, kDeregistered };
std::string_view ToString(DownReason reason);
std::optional<DownReason> ParseDownReason(std::string_view text);

struct Event {
  EventType type = EventType::kInstanceRegistered;
  // Stable for the same transition, so consumers deduplicate redeliveries:
  // "<dc>/<node>/<instance_id>/<consul_index>/<event>" for instance events,
  // "<dc>/<service>/<consul_index>/<event>" for service events, each text
  // part encoded by AppendIdPart() (bridge/model/protocol_text.h); outside
  // the default scope "<dc>" is the whole SourceKey().
  std::string id;
  std::string datacenter;
  // Peer, namespace and partition of the source (source_scope.h).
  SourceScope scope{};
  std::string service;

  // Instance events only (empty for service events).
  std::string instance_id;
  std::string node;
  std::string address;
  int port = 0;
  std::vector<std::string> tags;
  std::map<std::string, std::string> meta;
  std::vector<Check> checks;
  std::optional<HealthStatus> status;           // aggregated, after the change
  std::optional<HealthStatus> previous_status;  // before it; none when first seen
  std::optional<DownReason> reason;             // instance.down only

  // Service events carry the counts after the change.
  int instances_up = 0;
  int instances_total = 0;

  std::uint64_t consul_index = 0;
  // Emitted by reconciling the first sync against saved state: the change
  // happened while the bridge was not running.
  bool reconciled = false;
  // Emitted by the initial sync without saved state: it keeps state-holding
  // sinks (metrics) exact but is not a notification, so it is only delivered
  // to sinks that want the full state (watch.initial_events: false).
  bool silent = false;
  // Cluster mode: the epoch (the Consul lock's LockIndex) under which the
  // emitting replica owned the service; a consumer drops events whose epoch
  // is below one it has seen for the service. Sent as the CloudEvents
  // extension `hbepoch`; none outside cluster mode.
  std::optional<std::uint64_t> epoch;

  WallTime time{};           // when the transition was detected
  SteadyTime observed_at{};  // when the Consul answer behind it arrived

  bool IsInstanceEvent() const { return !instance_id.empty(); }
  // "<service>/<instance_id>" (or "<service>" for service events): the
  // CloudEvents subject and partitionkey, and the Kafka message key. With
  // scope.named_in_subject, SourceKey() and a '/' come first.
  std::string Subject() const;
  // Subject() into `out`, replacing its text and keeping its storage.
  void WriteSubject(std::string& out) const;
};

}  // namespace hb
