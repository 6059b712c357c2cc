#pragma once

// Sink types by name: how to parse each one's settings and how to build it.
// Filled by RegisterBuiltinSinks() (builtin_sinks.h), an explicit list: no
// static initialisers.

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "bridge/common/clock.h"
#include "bridge/common/status.h"
#include "bridge/model/cloud_event.h"
#include "bridge/router/sink.h"
#include "config/bridge_config.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace hb {

// What a sink may need from the process, handed in by main.
struct SinkContext {
  CloudEventOptions events;
  const Clock* clock = nullptr;
  // The process's one metrics registry (the only global-ish state, owned by
  // main); the metrics sink adds its series to it.
  prometheus::Registry* registry = nullptr;
};

using SinkFactory = std::function<StatusOr<SinkPtr>(const SinkConfig&, const SinkContext&)>;

// Not thread-safe; filled once at startup, then read-only.
class SinkRegistry {
 public:
  // `create` may be empty for a type whose sink this build cannot build yet;
  // its configs still validate, and Create() says so.
  void Register(std::string type, SinkSettingsParser parse, SinkFactory create);

  SinkParsers Parsers() const;
  std::vector<std::string> Types() const;
  StatusOr<SinkPtr> Create(const SinkConfig& config, const SinkContext& context) const;

 private:
  struct Entry {
    SinkSettingsParser parse;
    SinkFactory create;
  };
  std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace hb
