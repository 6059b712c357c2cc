#include "sinks/kafka/kafka_errors.h"

namespace hb {

std::string DescribeKafkaError(rd_kafka_resp_err_t error, std::string_view topic,
                               std::string_view principal) {
  const std::string quoted = "\"" + std::string(topic) + "\"";
  const std::string who =
      principal.empty() ? std::string("this client") : "User:" + std::string(principal);
  switch (error) {
    // librdkafka reports a topic the metadata does not list as its own
    // UNKNOWN_TOPIC once topic.metadata.propagation.max.ms has passed, and
    // as the broker's UNKNOWN_TOPIC_OR_PART otherwise.
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
      return "topic " + quoted +
             " does not exist in the cluster: create it, or let the brokers auto-create topics";
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
      return "the brokers deny " + who + " writing to topic " + quoted +
             ": grant it Write and Describe on the topic (kafka-acls --add --allow-principal " +
             who + " --operation Write --operation Describe --topic " + std::string(topic) + ")";
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
      return "the brokers deny " + who + " an idempotent producer id: grant it Write on topic " +
             quoted + " (or IdempotentWrite on the cluster)";
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
      return "the brokers refused the credentials of " + who +
             ": check properties sasl.username, sasl.password and sasl.mechanisms";
    default:
      return rd_kafka_err2str(error);
  }
}

std::string DescribeKafkaTimeout(rd_kafka_resp_err_t last_error, std::string_view last_reason,
                                 std::string_view topic, std::string_view principal) {
  std::string text = "not acknowledged within message.timeout.ms";
  if (last_error == RD_KAFKA_RESP_ERR_NO_ERROR) return text;
  const std::string described = DescribeKafkaError(last_error, topic, principal);
  // Where there is nothing to add to librdkafka's reason, the reason
  // itself names the broker and what failed.
  text += "; last error: ";
  text += described == rd_kafka_err2str(last_error) ? std::string(last_reason) : described;
  return text;
}

}  // namespace hb
