#pragma once

// What the Alertmanager sink tells Alertmanager: health events as alerts
// (labels, annotations, times) and the JSON body of POST /api/v2/alerts.
// Pure functions. Every text in an alert but the configured ones comes from
// Consul and is treated as hostile: it is JSON-escaped (invalid UTF-8
// replaced) and the generated annotations are bounded.

#include <cstddef>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "bridge/common/clock.h"
#include "bridge/model/event.h"
#include "sinks/alertmanager/alertmanager_config.h"

namespace hb {

struct Alert {
  // Alertmanager identifies an alert by its labels: a resolve must repeat
  // the labels of the alert it resolves exactly.
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  WallTime starts_at{};
  // Set once resolved; a firing alert's endsAt is chosen at each post.
  std::optional<WallTime> resolved_at;

  bool firing() const { return !resolved_at.has_value(); }
};

// The key of the alert an event is about: "instance:<dc>/<node>/<id>" or
// "service:<dc>/<service>".
std::string AlertKey(const Event& event);

// The alert of a down instance: its labels, and annotations with a summary,
// the address and the failing checks' names and output (at most
// max_annotation_bytes each). `reason` is why it is down.
Alert InstanceAlert(const Event& event, DownReason reason,
                    const AlertmanagerSinkSettings& settings);
// The alert of a service without an up instance.
Alert ServiceAlert(const Event& event, const AlertmanagerSinkSettings& settings);
// The down reason an instance had before `event` (an up or deregistered
// event), from its previous status; nullopt when it was not down.
std::optional<DownReason> PreviousDownReason(const Event& event);

// The JSON array Alertmanager's POST /api/v2/alerts takes. Firing alerts get
// endsAt = `firing_ends_at`; resolved ones their resolved_at (never before
// startsAt, which Alertmanager rejects).
std::string AlertsJson(std::span<const Alert* const> alerts, WallTime firing_ends_at);

// `text` cut to at most `limit` bytes at a UTF-8 character boundary, with
// " [truncated]" at the end when it was cut.
std::string TruncateText(std::string_view text, std::size_t limit);

}  // namespace hb
