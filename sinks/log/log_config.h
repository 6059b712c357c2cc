#pragma once

#include <memory>
#include <string>

#include "config/bridge_config.h"

namespace hb {

// type: log — CloudEvents JSON, one per line.
struct LogSinkSettings final : SinkSettings {
  std::string stream = "stdout";  // stdout or stderr. Default: stdout
  void Emit(YAML::Emitter& out, bool mask_secrets) const override;
  std::string Target() const override;
};

std::shared_ptr<const SinkSettings> ParseLogSinkSettings(ConfigReader& sink);

}  // namespace hb
