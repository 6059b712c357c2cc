#include "sinks/kafka/kafka_config.h"

#include <librdkafka/rdkafka.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <memory>

#include "bridge/common/redact.h"
#include "config/config_loader.h"
#include "config/config_reader.h"
#include "config/duration.h"

namespace hb {

bool IsSecretKafkaProperty(std::string_view name) {
  for (std::string_view marker : {"password", "secret", "oauthbearer.config", "ssl.key", "token"}) {
    if (name.find(marker) != std::string_view::npos) return true;
  }
  return false;
}

void KafkaSinkSettings::Emit(YAML::Emitter& out, bool mask_secrets) const {
  out << YAML::Key << "brokers" << YAML::Value << brokers;
  out << YAML::Key << "topic" << YAML::Value << topic;
  out << YAML::Key << "mode" << YAML::Value << mode;
  out << YAML::Key << "flush_timeout" << YAML::Value << FormatDuration(flush_timeout);
  out << YAML::Key << "properties" << YAML::Value << YAML::BeginMap;
  for (const auto& [name, value] : properties) {
    out << YAML::Key << name << YAML::Value
        << (mask_secrets && IsSecretKafkaProperty(name) ? std::string(kMasked) : value);
  }
  out << YAML::EndMap;
}

std::shared_ptr<const SinkSettings> ParseKafkaSinkSettings(ConfigReader& sink) {
  auto settings = std::make_shared<KafkaSinkSettings>();
  const auto brokers = sink.StringList("brokers", {}, /*allow_comma_string=*/true);
  for (const auto& broker : brokers) {
    settings->brokers += (settings->brokers.empty() ? "" : ",") + broker;
  }
  if (brokers.empty()) sink.Error("brokers", "required: host:port of at least one broker");
  settings->topic = sink.String("topic");
  const bool valid_topic = std::all_of(settings->topic.begin(), settings->topic.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
  if (settings->topic.empty()) {
    sink.Error("topic", "required: the Kafka topic to produce to");
  } else if (!valid_topic || settings->topic.size() > 249) {
    sink.Error("topic", "expected a Kafka topic name ([a-zA-Z0-9._-], at most 249), got " +
                            Quote(settings->topic));
  }
  settings->mode = sink.String("mode", settings->mode);
  if (settings->mode != "structured" && settings->mode != "binary") {
    sink.Error("mode", "expected structured or binary, got " + Quote(settings->mode));
  }
  settings->properties = sink.StringMap("properties");
  // librdkafka knows its properties best: ask it now, so a typo stops the
  // bridge at startup with the key path instead of failing at first use.
  const KafkaConf scratch(rd_kafka_conf_new());
  std::array<char, 512> error{};
  for (const auto& [name, value] : settings->properties) {
    if (rd_kafka_conf_set(scratch.get(), name.c_str(), value.c_str(), error.data(), error.size()) !=
        RD_KAFKA_CONF_OK) {
      sink.Error("properties." + name, error.data());
    }
  }
  settings->flush_timeout = sink.Duration("flush_timeout", settings->flush_timeout);
  return settings;
}

std::string KafkaSinkSettings::Target() const {
  return "topic " + topic + " at " + RedactUrl(brokers);
}

}  // namespace hb
