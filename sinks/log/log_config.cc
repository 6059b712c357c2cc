#include "sinks/log/log_config.h"

#include <yaml-cpp/yaml.h>

#include "config/config_reader.h"

namespace hb {

void LogSinkSettings::Emit(YAML::Emitter& out, bool) const {
  out << YAML::Key << "stream" << YAML::Value << stream;
}

std::shared_ptr<const SinkSettings> ParseLogSinkSettings(ConfigReader& sink) {
  auto settings = std::make_shared<LogSinkSettings>();
  settings->stream = sink.String("stream", settings->stream);
  if (settings->stream != "stdout" && settings->stream != "stderr") {
    sink.Error("stream", "expected stdout or stderr, got " + Quote(settings->stream));
  }
  return settings;
}

std::string LogSinkSettings::Target() const { return stream; }

}  // namespace hb
