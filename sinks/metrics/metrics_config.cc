#include "sinks/metrics/metrics_config.h"

#include <yaml-cpp/yaml.h>

#include "config/config_reader.h"
#include "config/duration.h"

namespace hb {

void MetricsSinkSettings::Emit(YAML::Emitter& out, bool) const {
  out << YAML::Key << "deregistered_series_ttl" << YAML::Value
      << FormatDuration(deregistered_series_ttl);
}

std::shared_ptr<const SinkSettings> ParseMetricsSinkSettings(ConfigReader& sink) {
  auto settings = std::make_shared<MetricsSinkSettings>();
  settings->deregistered_series_ttl =
      sink.Duration("deregistered_series_ttl", settings->deregistered_series_ttl);
  return settings;
}

std::string MetricsSinkSettings::Target() const { return "/metrics"; }

}  // namespace hb
