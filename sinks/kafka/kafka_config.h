#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "config/bridge_config.h"

namespace hb {

// type: kafka — an idempotent librdkafka producer.
struct KafkaSinkSettings final : SinkSettings {
  std::string brokers;              // bootstrap servers, "host:port,..." (required)
  std::string topic;                // required, non-empty
  std::string mode = "structured";  // structured or binary (CloudEvents Kafka binding)
  // Passed to librdkafka as is (SASL, SSL, compression, linger...); values
  // whose names look secret are masked. Default: none.
  std::map<std::string, std::string> properties;
  std::chrono::milliseconds flush_timeout{std::chrono::seconds(10)};  // Default: 10s

  void Emit(YAML::Emitter& out, bool mask_secrets) const override;
  std::string Target() const override;
};

struct KafkaConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
// A librdkafka configuration until rd_kafka_new() takes it.
using KafkaConf = std::unique_ptr<rd_kafka_conf_t, KafkaConfDeleter>;

// Whether a librdkafka property holds a secret (sasl.password,
// ssl.key.password, ssl.key.pem, sasl.oauthbearer.config, ...).
bool IsSecretKafkaProperty(std::string_view name);

std::shared_ptr<const SinkSettings> ParseKafkaSinkSettings(ConfigReader& sink);

}  // namespace hb
