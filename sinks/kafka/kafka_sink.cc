#include "sinks/kafka/kafka_sink.h"

#include <spdlog/spdlog.h>

#include <array>
#include <charconv>
#include <cstring>
#include <thread>

#include "bridge/common/version.h"
#include "bridge/model/protocol_text.h"
#include "sinks/kafka/kafka_errors.h"

namespace hb {
namespace {

using std::chrono::milliseconds;

// Defaults that differ from librdkafka's; `properties` override them.
// message.timeout.ms: librdkafka's 5 minutes would hold the sink's worker
// (and its shutdown) that long when the cluster is down; the router retries
// with backoff instead, keeping the events. topic.metadata.propagation.max.ms:
// below the message timeout, so a missing topic fails as "unknown topic",
// which says what to fix, rather than as a timeout. linger.ms: health
// events are few and latency matters more than batching.
constexpr std::array<std::pair<const char*, const char*>, 5> kProducerDefaults{{
    {"client.id", "health-bridge"},
    {"enable.idempotence", "true"},
    {"message.timeout.ms", "30000"},
    {"topic.metadata.propagation.max.ms", "10000"},
    {"linger.ms", "5"},
}};

// Failures that another attempt cannot fix: the message itself is wrong.
bool IsPermanent(rd_kafka_resp_err_t error) {
  switch (error) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
      return true;
    default:
      return false;
  }
}

spdlog::level::level_enum SyslogLevel(int level) {
  if (level <= 3) return spdlog::level::err;
  if (level == 4) return spdlog::level::warn;
  if (level <= 6) return spdlog::level::info;
  return spdlog::level::debug;
}

struct HeadersDeleter {
  void operator()(rd_kafka_headers_t* headers) const { rd_kafka_headers_destroy(headers); }
};
using Headers = std::unique_ptr<rd_kafka_headers_t, HeadersDeleter>;

void AddHeader(rd_kafka_headers_t* headers, std::string_view name, std::string_view value) {
  rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                      static_cast<ssize_t>(value.size()));
}

}  // namespace

KafkaSink::KafkaSink(PassKey, std::string name, KafkaSinkSettings settings,
                     CloudEventOptions options)
    : name_(std::move(name)), settings_(std::move(settings)), options_(std::move(options)) {}

KafkaSink::~KafkaSink() = default;

StatusOr<std::unique_ptr<KafkaSink>> KafkaSink::Create(std::string name,
                                                       const KafkaSinkSettings& settings,
                                                       CloudEventOptions options) {
  auto sink = std::make_unique<KafkaSink>(PassKey{}, std::move(name), settings, std::move(options));
  if (Status status = sink->Connect(); !status.ok()) return status;
  return sink;
}

Status KafkaSink::Connect() {
  KafkaConf conf(rd_kafka_conf_new());
  std::array<char, 512> error{};
  auto set = [&](const std::string& key, const std::string& value) {
    if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), error.data(), error.size()) !=
        RD_KAFKA_CONF_OK) {
      return Status::InvalidArgument("sink " + name_ + ": properties." + key + ": " + error.data());
    }
    return Status::Ok();
  };
  for (const auto& [key, value] : kProducerDefaults) {
    if (Status status = set(key, value); !status.ok()) return status;
  }
  if (Status status = set("bootstrap.servers", settings_.brokers); !status.ok()) return status;
  for (const auto& [key, value] : settings_.properties) {
    if (Status status = set(key, value); !status.ok()) return status;
  }
  std::array<char, 32> timeout{};
  std::size_t timeout_size = timeout.size();
  rd_kafka_conf_get(conf.get(), "message.timeout.ms", timeout.data(), &timeout_size);
  // librdkafka wrote its own validated integer; from_chars cannot overflow.
  long long timeout_ms = 0;
  std::from_chars(timeout.data(), timeout.data() + std::strlen(timeout.data()), timeout_ms);
  message_timeout_ = milliseconds(timeout_ms);

  rd_kafka_conf_set_opaque(conf.get(), this);
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &KafkaSink::OnDeliveryReport);
  // librdkafka's own threads call these; spdlog is thread-safe and name_
  // is immutable.
  rd_kafka_conf_set_log_cb(conf.get(), [](const rd_kafka_t* handle, int level, const char* facility,
                                          const char* message) {
    const auto* sink = static_cast<const KafkaSink*>(rd_kafka_opaque(handle));
    spdlog::log(SyslogLevel(level), "sink {}: kafka {}: {}", sink->name_, facility, message);
  });
  // Without an error callback librdkafka logs each error a second time;
  // the log callback already has the connection failures, so only what
  // they do not say is logged here.
  rd_kafka_conf_set_error_cb(
      conf.get(), [](rd_kafka_t* handle, int code, const char* reason, void* opaque) {
        auto& sink = *static_cast<KafkaSink*>(opaque);
        {
          const MutexLock lock(&sink.last_error_mutex_);
          sink.last_error_ = static_cast<rd_kafka_resp_err_t>(code);
          sink.last_error_reason_ = reason;
        }
        if (code != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN && code != RD_KAFKA_RESP_ERR__FATAL) return;
        spdlog::warn("sink {}: kafka: {} ({})", sink.name_, reason, rd_kafka_name(handle));
      });
  // rd_kafka_new takes the configuration only when it succeeds.
  producer_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), error.data(), error.size()));
  if (!producer_) return Status::InvalidArgument("sink " + name_ + ": " + error.data());
  conf.release();  // NOLINT(bugprone-unused-return-value): owned by producer_ now
  return Status::Ok();
}

void KafkaSink::OnDeliveryReport(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  auto& sink = *static_cast<KafkaSink*>(opaque);
  auto& result = *static_cast<DeliveryResult*>(message->_private);
  result = sink.Classify(message->err);
  if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const MutexLock lock(&sink.last_error_mutex_);
    sink.last_error_ = RD_KAFKA_RESP_ERR_NO_ERROR;
  }
  --sink.outstanding_;
}

DeliveryResult KafkaSink::Classify(rd_kafka_resp_err_t error) const {
  if (error == RD_KAFKA_RESP_ERR_NO_ERROR) return DeliveryResult::Ok();
  const auto user = settings_.properties.find("sasl.username");
  const std::string_view principal =
      user == settings_.properties.end() ? std::string_view() : std::string_view(user->second);
  std::string text;
  if (error == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT) {
    const MutexLock lock(&last_error_mutex_);
    text = DescribeKafkaTimeout(last_error_, last_error_reason_, settings_.topic, principal);
  } else {
    text = DescribeKafkaError(error, settings_.topic, principal);
  }
  if (IsPermanent(error)) return DeliveryResult::Reject(std::move(text));
  return DeliveryResult::Retry(std::move(text));
}

bool KafkaSink::Produce(const Event& event, DeliveryResult& result) {
  std::string& key = key_buffer_;
  std::string& value = value_buffer_;
  event.WriteSubject(key);
  const bool binary = settings_.mode == "binary";
  Headers headers(rd_kafka_headers_new(binary ? 8 : 1));
  if (binary) {
    // CloudEvents Kafka binding, binary mode: attributes as ce_ headers,
    // datacontenttype as content-type, the value is the data alone.
    for (const auto& [attribute, text] : CloudEventAttributes(event, options_)) {
      if (attribute == "datacontenttype") {
        AddHeader(headers.get(), "content-type", text);
      } else {
        // Consul text (subject, source) must not carry control bytes into
        // a header that consumers may copy onto an HTTP line.
        AddHeader(headers.get(), "ce_" + attribute, HeaderSafe(text));
      }
    }
    SerializeCloudEventData(event, options_, value);
  } else {
    AddHeader(headers.get(), "content-type", "application/cloudevents+json");
    SerializeCloudEvent(event, options_, value);
  }
  const auto timestamp =
      std::chrono::duration_cast<milliseconds>(event.time.time_since_epoch()).count();

  // rd_kafka_produceva rather than the RD_KAFKA_V_* macros, whose C casts
  // do not belong in C++.
  std::array<rd_kafka_vu_t, 7> fields{};
  fields[0].vtype = RD_KAFKA_VTYPE_TOPIC;
  fields[0].u.cstr = settings_.topic.c_str();
  fields[1].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
  fields[1].u.i = RD_KAFKA_MSG_F_COPY;
  fields[2].vtype = RD_KAFKA_VTYPE_KEY;
  fields[2].u.mem = {key.data(), key.size()};
  fields[3].vtype = RD_KAFKA_VTYPE_VALUE;
  fields[3].u.mem = {value.data(), value.size()};
  fields[4].vtype = RD_KAFKA_VTYPE_HEADERS;
  fields[4].u.headers = headers.get();
  fields[5].vtype = RD_KAFKA_VTYPE_TIMESTAMP;
  fields[5].u.i64 = timestamp;
  fields[6].vtype = RD_KAFKA_VTYPE_OPAQUE;
  fields[6].u.ptr = &result;

  for (;;) {
    rd_kafka_error_t* produce_error =
        rd_kafka_produceva(producer_.get(), fields.data(), fields.size());
    const rd_kafka_resp_err_t error =
        produce_error == nullptr ? RD_KAFKA_RESP_ERR_NO_ERROR : rd_kafka_error_code(produce_error);
    if (produce_error != nullptr) rd_kafka_error_destroy(produce_error);
    if (error == RD_KAFKA_RESP_ERR_NO_ERROR) {
      headers.release();  // NOLINT(bugprone-unused-return-value): the message owns them now
      ++outstanding_;
      return true;
    }
    if (error != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      result = Classify(error);
      return false;
    }
    // The local queue is full: serving reports makes room.
    rd_kafka_poll(producer_.get(), 100);
  }
}

void KafkaSink::AwaitReports() {
  const auto deadline = std::chrono::steady_clock::now() + message_timeout_ + milliseconds(5000);
  // rd_kafka_flush() rather than rd_kafka_poll(): the whole batch is already
  // produced, and flush sends it at once instead of after linger.ms (an
  // event reached the bench's consumer in 10 ms at the median instead of
  // 14.5); it serves the delivery reports the same way.
  while (outstanding_ > 0 && !interrupted_ && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_flush(producer_.get(), 100);
  }
  if (outstanding_ > 0) {
    spdlog::warn(
        "sink {}: {} messages unacknowledged {}; purging", name_, outstanding_,
        interrupted_ ? "at the end of shutdown's grace period" : "past message.timeout.ms");
    rd_kafka_purge(producer_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    while (outstanding_ > 0) rd_kafka_poll(producer_.get(), 100);
  }
}

void KafkaSink::RecoverFromFatalError() {
  // No producer: the last restart failed, so try again.
  if (producer_) {
    std::array<char, 512> reason{};
    const rd_kafka_resp_err_t fatal =
        rd_kafka_fatal_error(producer_.get(), reason.data(), reason.size());
    if (fatal == RD_KAFKA_RESP_ERR_NO_ERROR) return;
    spdlog::error("sink {}: kafka producer failed fatally ({}: {}); starting a new one", name_,
                  rd_kafka_err2name(fatal), reason.data());
    producer_.reset();
  }
  if (Status status = Connect(); !status.ok()) {
    spdlog::error("sink {}: {}", name_, status.message());
  }
}

void KafkaSink::Deliver(std::span<const EventPtr> events,
                        std::span<DeliveryResult> results) noexcept {
  try {
    // A fatal error in the last batch (or a failed restart) is handled
    // before this one is produced.
    RecoverFromFatalError();
    if (!producer_ || interrupted_) {
      for (auto& result : results) {
        result = DeliveryResult::Retry(interrupted_ ? "shutting down" : "no kafka producer");
      }
      return;
    }
    for (std::size_t i = 0; i < events.size(); ++i) {
      // Short enough for std::string's inline storage: no allocation per
      // event for what the delivery report overwrites.
      results[i] = DeliveryResult::Retry("unacknowledged");
      Produce(*events[i], results[i]);
    }
    AwaitReports();
  } catch (const std::exception& error) {
    // Only allocation can throw above, before a message is produced for the
    // slot, so no report will write into `results` later.
    AwaitReports();
    for (auto& result : results) {
      if (result.kind != DeliveryResult::Kind::kOk) result = DeliveryResult::Retry(error.what());
    }
  }
}

bool KafkaSink::Shutdown(milliseconds timeout) noexcept {
  if (!producer_) return true;
  // Deliver() always waits for its reports, so this only flushes what the
  // idempotent producer itself still holds (nothing, normally).
  const rd_kafka_resp_err_t error = rd_kafka_flush(
      producer_.get(), static_cast<int>(std::min(timeout, settings_.flush_timeout).count()));
  return error == RD_KAFKA_RESP_ERR_NO_ERROR && rd_kafka_outq_len(producer_.get()) == 0;
}

StatusOr<SinkPtr> CreateKafkaSink(const SinkConfig& config, const SinkContext& context) {
  const auto* settings = dynamic_cast<const KafkaSinkSettings*>(config.settings.get());
  if (settings == nullptr) return Status::Internal("sink " + config.name + ": not a kafka sink");
  auto sink = KafkaSink::Create(config.name, *settings, context.events);
  if (!sink.ok()) return sink.status();
  return SinkPtr(std::move(sink).value());
}

}  // namespace hb
