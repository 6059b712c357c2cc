#include "bridge/app/sink_factory.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "bridge/model/cloud_event.h"

namespace hb {
namespace {

std::string DeadLetterPath(const SinkConfig& sink, const StateConfig& state) {
  if (!sink.dead_letter_file.empty()) return sink.dead_letter_file;
  if (state.dir.empty()) return "";
  return (std::filesystem::path(state.dir) / (sink.name + ".dead.jsonl")).string();
}

// Opens the sink's spool; its events stay on disk until the sink's worker
// pages them in.
StatusOr<std::unique_ptr<Spool>> OpenSpool(const SinkConfig& sink, const StateConfig& state,
                                           DeliveryObserver* observer) {
  SpoolRecovery recovery;
  auto spool = Spool::Open(
      {std::filesystem::path(state.dir) / "spool" / sink.name, sink.spool_max_bytes}, recovery);
  if (!spool.ok()) return spool.status();
  for (const auto& problem : recovery.problems) {
    spdlog::error("sink {}: spool damaged (crash mid-write or corruption): {}", sink.name, problem);
  }
  if (observer != nullptr) {
    if (recovery.dropped_bytes > 0) observer->OnSpoolDropped(sink.name, recovery.dropped_bytes);
    observer->OnSpoolBytes(sink.name, (*spool)->bytes());
  }
  return spool;
}

}  // namespace

std::string TargetOf(const SinkConfig& sink) {
  return sink.settings != nullptr ? sink.settings->Target() : std::string();
}

SinkRoute RouteFor(const SinkConfig& sink) {
  SinkRoute route;
  route.filter = sink.filter;
  route.worker = sink.worker;
  route.type = sink.type;
  route.target = TargetOf(sink);
  return route;
}

StatusOr<BuiltSink> BuildSink(const SinkConfig& sink, const StateConfig& state,
                              const SinkRegistry& registry, const SinkContext& context,
                              DeliveryObserver* observer) {
  BuiltSink built;
  auto created = registry.Create(sink, context);
  if (!created.ok()) return created.status();
  built.sink = std::move(*created);
  const CloudEventOptions events = context.events;
  auto dead_letter = DeadLetterFile::Open(
      sink.name, DeadLetterPath(sink, state),
      [events](const Event& event) { return SerializeCloudEvent(event, events); },
      DeadLetterLimits{sink.dead_letter_max_bytes});
  if (!dead_letter.ok()) return dead_letter.status();
  built.storage.dead_letter = std::move(*dead_letter);
  if (!state.dir.empty()) {
    auto spool = OpenSpool(sink, state, observer);
    if (!spool.ok()) {
      return Status::FailedPrecondition("sink " + sink.name + ": " + spool.status().message());
    }
    built.storage.spool = std::move(*spool);
  }
  built.route = RouteFor(sink);
  return built;
}

Status AddSinks(const BridgeConfig& config, const SinkRegistry& registry,
                const SinkContext& context, DeliveryObserver* observer, Router& router) {
  for (const SinkConfig& sink : config.sinks) {
    auto built = BuildSink(sink, config.state, registry, context, observer);
    if (!built.ok()) return built.status();
    router.AddSink(std::move(built->route), std::move(built->sink), std::move(built->storage));
    // Ready to take events: whether the destination answers shows with the
    // first delivery, in the log and on /v1/sinks.
    spdlog::info("sink {} ({}) delivers to {}", sink.name, sink.type, TargetOf(sink));
  }
  return Status::Ok();
}

}  // namespace hb
