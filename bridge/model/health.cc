#include "bridge/model/health.h"

#include <algorithm>

namespace hb {

std::string_view ToString(HealthStatus status) {
  switch (status) {
    case HealthStatus::kPassing:
      return "passing";
    case HealthStatus::kWarning:
      return "warning";
    case HealthStatus::kCritical:
      return "critical";
    case HealthStatus::kMaintenance:
      return "maintenance";
  }
  return "critical";
}

std::optional<HealthStatus> ParseHealthStatus(std::string_view text) {
  if (text == "passing") return HealthStatus::kPassing;
  if (text == "warning") return HealthStatus::kWarning;
  if (text == "critical") return HealthStatus::kCritical;
  if (text == "maintenance") return HealthStatus::kMaintenance;
  return std::nullopt;
}

bool Check::IsMaintenance() const {
  return id == "_node_maintenance" || id.starts_with("_service_maintenance:");
}

HealthStatus AggregateStatus(std::span<const Check> checks) {
  auto worst = HealthStatus::kPassing;
  for (const auto& check : checks) {
    if (check.IsMaintenance()) return HealthStatus::kMaintenance;
    worst = std::max(worst, check.status);
  }
  return worst;
}

}  // namespace hb
