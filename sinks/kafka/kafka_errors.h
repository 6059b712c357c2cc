#pragma once

// What a failed Kafka delivery tells the operator. librdkafka's own texts
// ("Broker: Topic authorization failed") say what happened but not to
// which topic or principal, nor what to change; these do.

#include <librdkafka/rdkafka.h>

#include <string>
#include <string_view>

namespace hb {

// `topic` is the sink's topic; `principal` its SASL user ("" without SASL).
std::string DescribeKafkaError(rd_kafka_resp_err_t error, std::string_view topic,
                               std::string_view principal);

// A message that was not acknowledged within message.timeout.ms. On its own
// a timeout does not say why; the last error librdkafka reported about the
// connections does (`last_error` NO_ERROR: none since the last delivery),
// e.g. that the brokers refused the credentials or refused connections.
std::string DescribeKafkaTimeout(rd_kafka_resp_err_t last_error, std::string_view last_reason,
                                 std::string_view topic, std::string_view principal);

}  // namespace hb
