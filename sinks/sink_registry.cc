#include "sinks/sink_registry.h"

namespace hb {

void SinkRegistry::Register(std::string type, SinkSettingsParser parse, SinkFactory create) {
  entries_[std::move(type)] = Entry{std::move(parse), std::move(create)};
}

SinkParsers SinkRegistry::Parsers() const {
  SinkParsers parsers;
  for (const auto& [type, entry] : entries_) parsers.emplace(type, entry.parse);
  return parsers;
}

std::vector<std::string> SinkRegistry::Types() const {
  std::vector<std::string> types;
  types.reserve(entries_.size());
  for (const auto& [type, entry] : entries_) types.push_back(type);
  return types;
}

StatusOr<SinkPtr> SinkRegistry::Create(const SinkConfig& config, const SinkContext& context) const {
  auto it = entries_.find(config.type);
  if (it == entries_.end()) {
    return Status::InvalidArgument("sink " + config.name + ": unknown type " + config.type);
  }
  if (!it->second.create) {
    return Status::FailedPrecondition("sink " + config.name + ": type " + config.type +
                                      " is not implemented in this version yet");
  }
  return it->second.create(config, context);
}

}  // namespace hb
