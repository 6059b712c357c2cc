#include "sinks/builtin_sinks.h"

#include "sinks/alertmanager/alertmanager_config.h"
#include "sinks/alertmanager/alertmanager_sink.h"
#include "sinks/kafka/kafka_config.h"
#include "sinks/kafka/kafka_sink.h"
#include "sinks/log/log_config.h"
#include "sinks/log/log_sink.h"
#include "sinks/metrics/metrics_config.h"
#include "sinks/metrics/metrics_sink.h"
#include "sinks/webhook/webhook_config.h"
#include "sinks/webhook/webhook_sink.h"

namespace hb {

void RegisterBuiltinSinks(SinkRegistry& registry) {
  registry.Register("log", ParseLogSinkSettings, CreateLogSink);
  registry.Register("kafka", ParseKafkaSinkSettings, CreateKafkaSink);
  registry.Register("webhook", ParseWebhookSinkSettings, CreateWebhookSink);
  registry.Register("metrics", ParseMetricsSinkSettings, CreateMetricsSink);
  registry.Register("alertmanager", ParseAlertmanagerSinkSettings, CreateAlertmanagerSink);
}

}  // namespace hb
