#include "sinks/kafka/kafka_errors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace hb {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(KafkaErrorsTest, MissingTopicNamesTheTopicAndTheFix) {
  for (auto error : {RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART}) {
    EXPECT_EQ(DescribeKafkaError(error, "consul.health", ""),
              "topic \"consul.health\" does not exist in the cluster: create it, or let the "
              "brokers auto-create topics");
  }
}

TEST(KafkaErrorsTest, DeniedTopicNamesThePrincipalTheTopicAndTheAclToAdd) {
  EXPECT_EQ(
      DescribeKafkaError(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, "consul.health", "bridge"),
      "the brokers deny User:bridge writing to topic \"consul.health\": grant it Write and "
      "Describe on the topic (kafka-acls --add --allow-principal User:bridge --operation "
      "Write --operation Describe --topic consul.health)");
}

TEST(KafkaErrorsTest, WithoutSaslThePrincipalIsThisClient) {
  EXPECT_THAT(DescribeKafkaError(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, "t", ""),
              HasSubstr("deny this client writing to topic \"t\""));
}

TEST(KafkaErrorsTest, DeniedProducerIdAndRefusedCredentialsSayWhatToChange) {
  EXPECT_THAT(
      DescribeKafkaError(RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED, "t", "bridge"),
      AllOf(HasSubstr("User:bridge"), HasSubstr("idempotent"), HasSubstr("Write on topic")));
  EXPECT_THAT(DescribeKafkaError(RD_KAFKA_RESP_ERR__AUTHENTICATION, "t", "bridge"),
              AllOf(HasSubstr("User:bridge"), HasSubstr("sasl.password")));
}

TEST(KafkaErrorsTest, OtherErrorsKeepLibrdkafkasText) {
  EXPECT_EQ(DescribeKafkaError(RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, "t", ""),
            rd_kafka_err2str(RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION));
}

TEST(KafkaErrorsTest, TimeoutSaysWhyWhenTheConnectionsSaidSomething) {
  EXPECT_EQ(DescribeKafkaTimeout(RD_KAFKA_RESP_ERR_NO_ERROR, "", "t", ""),
            "not acknowledged within message.timeout.ms");
  EXPECT_EQ(DescribeKafkaTimeout(RD_KAFKA_RESP_ERR__AUTHENTICATION,
                                 "SASL authentication error: invalid credentials", "t", "bridge"),
            "not acknowledged within message.timeout.ms; last error: the brokers refused the "
            "credentials of User:bridge: check properties sasl.username, sasl.password and "
            "sasl.mechanisms");
  EXPECT_EQ(DescribeKafkaTimeout(RD_KAFKA_RESP_ERR__TRANSPORT,
                                 "127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 "
                                 "failed: Connection refused",
                                 "t", ""),
            "not acknowledged within message.timeout.ms; last error: 127.0.0.1:9092/bootstrap: "
            "Connect to ipv4#127.0.0.1:9092 failed: Connection refused");
}

}  // namespace
}  // namespace hb
