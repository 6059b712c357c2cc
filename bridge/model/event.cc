#include "bridge/model/event.h"

namespace hb {

std::string_view ToString(EventType type) {
  switch (type) {
    case EventType::kInstanceRegistered:
      return "instance.registered";
    case EventType::kInstanceUp:
      return "instance.up";
    case EventType::kInstanceDown:
      return "instance.down";
    case EventType::kInstanceStatusChanged:
      return "instance.status_changed";
    case EventType::kInstanceDeregistered:
      return "instance.deregistered";
    case EventType::kServiceUp:
      return "service.up";
    case EventType::kServiceDown:
      return "service.down";
  }
  return "instance.registered";
}

std::optional<EventType> ParseEventType(std::string_view text) {
  for (auto type : kAllEventTypes) {
    if (ToString(type) == text) return type;
  }
  return std::nullopt;
}

std::string_view ToString(DownReason reason) {
  switch (reason) {
    case DownReason::kCritical:
      return "critical";
    case DownReason::kWarning:
      return "warning";
    case DownReason::kMaintenance:
      return "maintenance";
    case DownReason::kDeregistered:
      return "deregistered";
  }
  return "critical";
}

std::optional<DownReason> ParseDownReason(std::string_view text) {
  for (const DownReason reason : {DownReason::kCritical, DownReason::kWarning,
                                  DownReason::kMaintenance, DownReason::kDeregistered}) {
    if (ToString(reason) == text) return reason;
  }
  return std::nullopt;
}

std::string Event::Subject() const {
  std::string subject;
  WriteSubject(subject);
  return subject;
}

void Event::WriteSubject(std::string& out) const {
  out.clear();
  if (scope.named_in_subject) {
    AppendSourceKey(out, datacenter, scope);
    out.push_back('/');
  }
  out.append(service);
  if (!instance_id.empty()) out.append("/").append(instance_id);
}

}  // namespace hb
