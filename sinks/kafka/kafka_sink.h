#pragma once

// The Kafka sink: an idempotent librdkafka producer. One Deliver() call
// produces the whole batch, then serves delivery reports until every message
// is acknowledged or failed, so the router learns each event's fate.

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <memory>
#include <string>

#include "bridge/common/mutex.h"
#include "bridge/common/status.h"
#include "bridge/model/cloud_event.h"
#include "bridge/router/sink.h"
#include "sinks/kafka/kafka_config.h"
#include "sinks/sink_registry.h"

namespace hb {

class KafkaSink final : public Sink {
 public:
  // Fails when librdkafka rejects the configuration (the message names the
  // property). Does not wait for the brokers: they may come up later.
  static StatusOr<std::unique_ptr<KafkaSink>> Create(std::string name,
                                                     const KafkaSinkSettings& settings,
                                                     CloudEventOptions options);
  // Use Create().
  struct PassKey {
    explicit PassKey() = default;
  };
  KafkaSink(PassKey, std::string name, KafkaSinkSettings settings, CloudEventOptions options);
  ~KafkaSink() override;

  KafkaSink(const KafkaSink&) = delete;
  KafkaSink& operator=(const KafkaSink&) = delete;

  std::string_view Name() const override { return name_; }
  // Pipelining is where Kafka's throughput comes from.
  std::size_t MaxBatch() const override { return 1000; }
  void Deliver(std::span<const EventPtr> events,
               std::span<DeliveryResult> results) noexcept override;
  bool Shutdown(std::chrono::milliseconds timeout) noexcept override;
  // Purges what is queued or in flight: it is reported as failed (retry).
  void Interrupt() noexcept override { interrupted_ = true; }

 private:
  struct HandleDeleter {
    void operator()(rd_kafka_t* handle) const { rd_kafka_destroy(handle); }
  };
  using Handle = std::unique_ptr<rd_kafka_t, HandleDeleter>;

  Status Connect();
  // Produces one event; on a local failure (queue full aside) sets `result`.
  bool Produce(const Event& event, DeliveryResult& result);
  // Serves delivery reports until none is outstanding. Every produced
  // message gets one within message.timeout.ms; past that (plus a margin)
  // the rest are purged, which reports them too.
  void AwaitReports();
  // After a fatal error (the idempotent producer lost its guarantees) the
  // producer is unusable: start a fresh one (also when the last restart
  // failed and there is none).
  void RecoverFromFatalError();
  static void OnDeliveryReport(rd_kafka_t* handle, const rd_kafka_message_t* message, void* opaque);
  DeliveryResult Classify(rd_kafka_resp_err_t error) const;

  const std::string name_;
  const KafkaSinkSettings settings_;
  const CloudEventOptions options_;
  std::chrono::milliseconds message_timeout_{};
  Handle producer_;
  std::size_t outstanding_ = 0;  // produced, not yet reported (worker thread only)
  // Reused for every message (librdkafka copies them): no allocation per
  // event for its key and value.
  std::string key_buffer_;
  std::string value_buffer_;
  std::atomic<bool> interrupted_{false};
  // The last error librdkafka reported about the connections (SASL refused,
  // connection refused...) since a message was last acknowledged: it says
  // why messages time out. Its error callback may run on the thread that
  // polls, which is not always the worker's (Shutdown).
  mutable Mutex last_error_mutex_;
  rd_kafka_resp_err_t last_error_ GUARDED_BY(last_error_mutex_) = RD_KAFKA_RESP_ERR_NO_ERROR;
  std::string last_error_reason_ GUARDED_BY(last_error_mutex_);
};

StatusOr<SinkPtr> CreateKafkaSink(const SinkConfig& config, const SinkContext& context);

}  // namespace hb
