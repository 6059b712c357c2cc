#pragma once

#include <cstdio>
#include <string>

#include "bridge/model/cloud_event.h"
#include "bridge/router/sink.h"
#include "sinks/sink_registry.h"

namespace hb {

// Writes each event as one CloudEvents JSON line to stdout or stderr, so a
// user can watch events without any other system (and pipe them to jq).
// Runs on its worker thread only, like every sink.
class LogSink final : public Sink {
 public:
  // `stream` is not owned (stdout or stderr).
  LogSink(std::string name, std::FILE* stream, CloudEventOptions options);

  std::string_view Name() const override { return name_; }
  std::size_t MaxBatch() const override { return 512; }
  void Deliver(std::span<const EventPtr> events,
               std::span<DeliveryResult> results) noexcept override;
  bool Shutdown(std::chrono::milliseconds timeout) noexcept override;

 private:
  const std::string name_;
  std::FILE* const stream_;
  const CloudEventOptions options_;
  std::string buffer_;
};

StatusOr<SinkPtr> CreateLogSink(const SinkConfig& config, const SinkContext& context);

}  // namespace hb
