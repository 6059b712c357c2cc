#include "sinks/log/log_sink.h"

#include <cerrno>
#include <system_error>

#include "sinks/log/log_config.h"

namespace hb {

LogSink::LogSink(std::string name, std::FILE* stream, CloudEventOptions options)
    : name_(std::move(name)), stream_(stream), options_(std::move(options)) {}

void LogSink::Deliver(std::span<const EventPtr> events,
                      std::span<DeliveryResult> results) noexcept {
  try {
    buffer_.clear();
    for (const auto& event : events) {
      buffer_ += SerializeCloudEvent(*event, options_);
      buffer_ += '\n';
    }
    // One write per batch keeps lines whole even when stdout is a pipe
    // shared with the log.
    if (std::fwrite(buffer_.data(), 1, buffer_.size(), stream_) != buffer_.size() ||
        std::fflush(stream_) != 0) {
      const std::string error =
          std::string("write failed: ") + std::system_category().message(errno);
      for (auto& result : results) result = DeliveryResult::Retry(error);
      return;
    }
    for (auto& result : results) result = DeliveryResult::Ok();
  } catch (const std::exception& error) {
    for (auto& result : results) result = DeliveryResult::Retry(error.what());
  }
}

bool LogSink::Shutdown(std::chrono::milliseconds) noexcept { return std::fflush(stream_) == 0; }

StatusOr<SinkPtr> CreateLogSink(const SinkConfig& config, const SinkContext& context) {
  const auto* settings = dynamic_cast<const LogSinkSettings*>(config.settings.get());
  if (settings == nullptr) return Status::Internal("sink " + config.name + ": not a log sink");
  std::FILE* stream = settings->stream == "stderr" ? stderr : stdout;
  return SinkPtr(std::make_unique<LogSink>(config.name, stream, context.events));
}

}  // namespace hb
