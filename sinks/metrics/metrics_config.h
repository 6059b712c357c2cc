#pragma once

#include <chrono>
#include <memory>

#include "config/bridge_config.h"

namespace hb {

// type: metrics — Prometheus series kept from the events.
struct MetricsSinkSettings final : SinkSettings {
  // How long a deregistered instance's series stays exported (as 0) before
  // it is removed; longer than a scrape interval. Default: 5m.
  std::chrono::milliseconds deregistered_series_ttl{std::chrono::minutes(5)};
  void Emit(YAML::Emitter& out, bool mask_secrets) const override;
  std::string Target() const override;
};

std::shared_ptr<const SinkSettings> ParseMetricsSinkSettings(ConfigReader& sink);

}  // namespace hb
