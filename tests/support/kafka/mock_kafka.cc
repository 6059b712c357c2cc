#include "tests/support/kafka/mock_kafka.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <filesystem>
#include <limits>
#include <set>
#include <stdexcept>
#include <string_view>

namespace hb::test_support {
namespace {

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
using Conf = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

void Set(rd_kafka_conf_t* conf, const char* key, const std::string& value) {
  std::array<char, 512> error{};
  if (rd_kafka_conf_set(conf, key, value.c_str(), error.data(), error.size()) != RD_KAFKA_CONF_OK) {
    throw std::runtime_error(std::string(key) + ": " + error.data());
  }
}

KafkaHandle NewHandle(rd_kafka_type_t type, Conf conf) {
  std::array<char, 512> error{};
  KafkaHandle handle(rd_kafka_new(type, conf.get(), error.data(), error.size()));
  if (!handle) throw std::runtime_error(std::string("rd_kafka_new: ") + error.data());
  (void)conf.release();  // owned by the handle now
  return handle;
}

void Check(rd_kafka_resp_err_t error, const char* what) {
  if (error != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error(std::string(what) + ": " + rd_kafka_err2str(error));
  }
}

// The ports of "127.0.0.1:port,127.0.0.1:port,...".
std::set<int> Ports(std::string_view bootstraps) {
  std::set<int> ports;
  while (!bootstraps.empty()) {
    const std::size_t comma = std::min(bootstraps.find(','), bootstraps.size());
    const std::string_view address = bootstraps.substr(0, comma);
    const std::string_view port = address.substr(address.rfind(':') + 1);
    int value = 0;
    std::from_chars(port.data(), port.data() + port.size(), value);
    ports.insert(value);
    bootstraps.remove_prefix(std::min(comma + 1, bootstraps.size()));
  }
  return ports;
}

// Kafka brokers set TCP_NODELAY on every connection; librdkafka's mock
// brokers do not, so a second response on a connection waited for the
// client's delayed ACK: 40 ms stalls that a real cluster never has. The mock
// offers no hook, so its listening sockets are found among this process's
// descriptors; accepted connections inherit the option on Linux.
void DisableNagleOnListeners(const std::set<int>& ports) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    int fd = -1;
    const std::string name = entry.path().filename().string();
    std::from_chars(name.data(), name.data() + name.size(), fd);
    int listening = 0;
    socklen_t size = sizeof(listening);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) != 0 || listening == 0) {
      continue;
    }
    sockaddr_in address{};
    socklen_t address_size = sizeof(address);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &address_size) != 0 ||
        address.sin_family != AF_INET || !ports.contains(ntohs(address.sin_port))) {
      continue;
    }
    const int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  }
}

}  // namespace

MockKafkaCluster::MockKafkaCluster(int brokers) : brokers_(brokers) {
  Conf conf(rd_kafka_conf_new());
  // The handle only hosts the cluster: keep it from logging to stderr.
  Set(conf.get(), "log_level", "0");
  owner_ = NewHandle(RD_KAFKA_PRODUCER, std::move(conf));
  cluster_ = rd_kafka_mock_cluster_new(owner_.get(), brokers);
  if (cluster_ == nullptr) throw std::runtime_error("rd_kafka_mock_cluster_new failed");
  DisableNagleOnListeners(Ports(bootstraps()));
}

MockKafkaCluster::~MockKafkaCluster() { rd_kafka_mock_cluster_destroy(cluster_); }

std::string MockKafkaCluster::bootstraps() const {
  return rd_kafka_mock_cluster_bootstraps(cluster_);
}

void MockKafkaCluster::CreateTopic(const std::string& topic, int partitions, int replication) {
  Check(rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, replication),
        "create topic");
}

void MockKafkaCluster::SetBrokerDown(int broker) {
  Check(rd_kafka_mock_broker_set_down(cluster_, broker), "broker down");
}

void MockKafkaCluster::SetBrokerUp(int broker) {
  Check(rd_kafka_mock_broker_set_up(cluster_, broker), "broker up");
}

void MockKafkaCluster::SetTopicError(const std::string& topic, rd_kafka_resp_err_t error) {
  rd_kafka_mock_topic_set_error(cluster_, topic.c_str(), error);
}

void MockKafkaCluster::PushRequestErrors(int16_t api_key,
                                         const std::vector<rd_kafka_resp_err_t>& errors) {
  rd_kafka_mock_push_request_errors_array(cluster_, api_key, errors.size(), errors.data());
}

std::string ConsumedMessage::Header(const std::string& name) const {
  const auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

TopicReader::TopicReader(const std::string& bootstraps, std::string topic, int partitions,
                         const std::map<std::string, std::string>& settings)
    : topic_(std::move(topic)) {
  Conf conf(rd_kafka_conf_new());
  Set(conf.get(), "bootstrap.servers", bootstraps);
  Set(conf.get(), "group.id", "health-bridge-test-reader");
  Set(conf.get(), "enable.auto.commit", "false");
  Set(conf.get(), "log_level", "2");  // the sink under test does the talking
  for (const auto& [name, value] : settings) Set(conf.get(), name.c_str(), value);
  consumer_ = NewHandle(RD_KAFKA_CONSUMER, std::move(conf));
  rd_kafka_poll_set_consumer(consumer_.get());
  rd_kafka_topic_partition_list_t* assignment = rd_kafka_topic_partition_list_new(partitions);
  for (int partition = 0; partition < partitions; ++partition) {
    rd_kafka_topic_partition_list_add(assignment, topic_.c_str(), partition)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  const rd_kafka_resp_err_t error = rd_kafka_assign(consumer_.get(), assignment);
  rd_kafka_topic_partition_list_destroy(assignment);
  Check(error, "assign");
}

std::vector<ConsumedMessage> TopicReader::ReadAtLeast(std::size_t count,
                                                      std::chrono::milliseconds timeout) {
  std::vector<ConsumedMessage> messages;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (messages.size() < count && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* message = rd_kafka_consumer_poll(consumer_.get(), 100);
    if (message == nullptr) continue;
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ConsumedMessage consumed;
      consumed.partition = message->partition;
      consumed.offset = message->offset;
      consumed.key.assign(static_cast<const char*>(message->key), message->key_len);
      consumed.value.assign(static_cast<const char*>(message->payload), message->len);
      rd_kafka_headers_t* headers = nullptr;
      if (rd_kafka_message_headers(message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name = nullptr;
        const void* value = nullptr;
        std::size_t size = 0;
        for (std::size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) ==
                                RD_KAFKA_RESP_ERR_NO_ERROR;
             ++i) {
          consumed.headers.emplace(name, std::string(static_cast<const char*>(value), size));
        }
      }
      messages.push_back(std::move(consumed));
    }
    rd_kafka_message_destroy(message);
  }
  return messages;
}

std::vector<ConsumedMessage> TopicReader::ReadFor(std::chrono::milliseconds quiet) {
  return ReadAtLeast(std::numeric_limits<std::size_t>::max(), quiet);
}

}  // namespace hb::test_support
